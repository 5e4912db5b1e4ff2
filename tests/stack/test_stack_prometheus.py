"""The Prometheus adapter against a real Prometheus scraping a tiny exporter every second.

The exporter's counters grow at known rates (10 requests/s per series, errors
at 1% for ranker 5.0 and 5% for ranker 6.0), so the templates' answers are
known exactly once two scrapes have landed."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.clock import RealClock
from adapters.http_retry import RetryPolicy
from adapters.prometheus import PrometheusMetrics
from adapters.stack.prometheus import PrometheusServer, wait_until_value
from core.clock import VirtualClock
from core.ports import AdapterError

ERROR_RATE = (
    'sum(rate(interlock_errors_total{service="$service",version="$version"}[$window]))'
    ' / sum(rate(interlock_requests_total{service="$service",version="$version"}[$window]))'
)
QUERIES = {
    "error_rate": ERROR_RATE,
    "ratio_gauge": 'interlock_error_ratio{service="$service",version="$version"}',
    "every_ratio": "interlock_error_ratio",
    "broken": "sum(rate(interlock_errors_total[$window]",
}


@pytest.fixture(scope="module")
def prom(prometheus: PrometheusServer) -> PrometheusServer:
    # rate() over a window needs two scrapes inside it
    wait_until_value(prometheus, 'count_over_time(interlock_requests_total{version="6.0"}[10s]) >= 3', timeout=20)
    return prometheus


def measure(prom: PrometheusServer, metric: str, service: str = "ranker", version: str = "6.0",
            window: float = 5.0, clock=None, at: float | None = None, **kwargs) -> float | None:
    async def go() -> float | None:
        source = PrometheusMetrics(prom.url, queries=QUERIES, clock=clock or VirtualClock(), **kwargs)
        try:
            return await source.query(metric, service, version, window, time.time() if at is None else at)
        finally:
            await source.aclose()

    return asyncio.run(go())


def test_error_rates_per_version_come_out_of_the_templates(prom: PrometheusServer) -> None:
    assert measure(prom, "error_rate", version="6.0") == pytest.approx(0.05, rel=1e-4)
    assert measure(prom, "error_rate", version="5.0") == pytest.approx(0.01, rel=1e-4)


def test_the_window_reaches_prometheus(prom: PrometheusServer) -> None:
    # a window shorter than the scrape interval holds fewer than two samples: no data
    assert measure(prom, "error_rate", window=0.5) is None
    assert measure(prom, "error_rate", window=4.0) == pytest.approx(0.05, rel=1e-4)


def test_a_version_without_series_is_no_data(prom: PrometheusServer) -> None:
    assert measure(prom, "error_rate", version="7.0") is None


def test_zero_over_zero_is_no_data_not_zero(prom: PrometheusServer) -> None:
    assert measure(prom, "error_rate", service="idle", version="1.0") is None
    assert measure(prom, "ratio_gauge", service="idle", version="1.0") is None  # an exported NaN
    assert measure(prom, "ratio_gauge") == 0.05


def test_several_series_are_an_error(prom: PrometheusServer) -> None:
    with pytest.raises(AdapterError, match="the query returned 2 series"):
        measure(prom, "every_ratio")


def test_a_broken_query_is_reported_with_prometheus_reason(prom: PrometheusServer) -> None:
    with pytest.raises(AdapterError, match=r"prometheus: bad_data: .*parse error"):
        measure(prom, "broken")


def test_a_real_clock_asks_about_the_engines_moment(prom: PrometheusServer) -> None:
    # an hour ago the exporter did not exist: evaluated then, there is no data
    assert measure(prom, "ratio_gauge", clock=RealClock(), at=time.time() - 3600) is None
    assert measure(prom, "ratio_gauge", clock=RealClock(), at=time.time()) == 0.05
    # a scaled clock's seconds are not Prometheus's: the adapter lets Prometheus use its own now
    assert measure(prom, "ratio_gauge", clock=RealClock(speed=60), at=time.time() - 3600) == 0.05


def test_a_prometheus_that_stops_answering_fails_within_the_bounded_retries(prom: PrometheusServer) -> None:
    prom.proc.pause()
    try:
        started = time.monotonic()
        with pytest.raises(AdapterError, match=r"timed out after 0\.3s \(gave up after 2 attempts\)"):
            measure(prom, "ratio_gauge", timeout=0.3, policy=RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.05))
        assert time.monotonic() - started < 2.0
    finally:
        prom.proc.resume()
    assert measure(prom, "ratio_gauge") == 0.05
