"""The Prometheus adapter: templates, answer shapes, NaN and no data, errors."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from adapters.clock import RealClock
from adapters.http_retry import RetryPolicy
from adapters.prometheus import PrometheusMetrics, fmt_window, render
from core.clock import VirtualClock
from core.ports import AdapterError

QUERIES = {
    "error_rate": 'sum(rate(errors_total{service="$service",version="$version"}[$window]))',
    "latency_p99": 'histogram_quantile(0.99, sum by (le) (rate(latency_bucket{service="${service}"}[$window])))',
}


def vector(*values: str) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"instance": f"i{i}"}, "value": [1700000000.0, v]} for i, v in enumerate(values)]}}


def metrics(answer, *, clock=None, seen: list | None = None, token: str | None = None) -> PrometheusMetrics:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        status, body = answer(request) if callable(answer) else answer
        return httpx.Response(status, text=body if isinstance(body, str) else json.dumps(body))

    return PrometheusMetrics(
        "http://prom.test:9090", queries=QUERIES, clock=clock, token=token, transport=httpx.MockTransport(handler),
        policy=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
    )


def query(m: PrometheusMetrics, metric: str = "error_rate", at: float = 1_700_000_000.0):
    return asyncio.run(m.query(metric, "ranker", "6.0", 30.0, at))


@pytest.mark.parametrize("seconds, text", [(30, "30s"), (300.0, "300s"), (1.5, "1500ms"), (0.0004, "1ms")])
def test_windows_are_written_as_prometheus_durations(seconds: float, text: str) -> None:
    assert fmt_window(seconds) == text


def test_templates_substitute_service_version_and_window() -> None:
    assert render(QUERIES["error_rate"], "ranker", "6.0", 60) == 'sum(rate(errors_total{service="ranker",version="6.0"}[60s]))'
    assert "service=\"ranker\"" in render(QUERIES["latency_p99"], "ranker", "6.0", 60)


def test_label_values_cannot_break_out_of_their_quotes() -> None:
    promql = render('up{version="$version"}', "s", '1"} or vector(1) #', 30)
    assert promql == 'up{version="1\\"} or vector(1) #"}'


def test_an_unknown_placeholder_is_reported() -> None:
    with pytest.raises(AdapterError, match=r"placeholder other than \$service, \$version, \$window"):
        render("up{x=\"$servcie\"}", "s", "v", 30)


def test_one_series_gives_its_value_and_the_query_is_sent() -> None:
    seen: list[httpx.Request] = []
    assert query(metrics((200, vector("0.0125")), seen=seen)) == 0.0125
    (request,) = seen
    assert request.url.path == "/api/v1/query"
    assert request.url.params["query"] == 'sum(rate(errors_total{service="ranker",version="6.0"}[30s]))'


def test_a_scalar_answer_is_read_too() -> None:
    answer = {"status": "success", "data": {"resultType": "scalar", "result": [1700000000.0, "3"]}}
    assert query(metrics((200, answer))) == 3.0


def test_no_series_is_no_data() -> None:
    assert query(metrics((200, vector()))) is None


def test_nan_is_no_data_but_infinity_is_a_value() -> None:
    assert query(metrics((200, vector("NaN")))) is None
    assert query(metrics((200, vector("+Inf")))) == float("inf")


def test_several_series_are_an_error_that_says_to_aggregate() -> None:
    with pytest.raises(AdapterError, match="returned 2 series .*aggregate it to one"):
        query(metrics((200, vector("1", "2"))))


def test_a_prometheus_error_answer_is_reported_with_its_reason() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query": 1:5: parse error'}
    with pytest.raises(AdapterError, match=r'prometheus: bad_data: invalid parameter "query": 1:5: parse error'):
        query(metrics((400, body)))


def test_an_execution_error_is_reported() -> None:
    body = {"status": "error", "errorType": "execution", "error": "query timed out in expression evaluation"}
    with pytest.raises(AdapterError, match="execution: query timed out"):
        query(metrics((422, body)))


def test_5xx_is_retried_then_reported() -> None:
    calls = []

    def answer(request):
        calls.append(1)
        return 503, "Service Unavailable"

    with pytest.raises(AdapterError, match=r"HTTP 503: Service Unavailable \(gave up after 2 attempts\)"):
        query(metrics(answer))
    assert len(calls) == 2


def test_malformed_answers_are_errors() -> None:
    with pytest.raises(AdapterError, match="not JSON"):
        query(metrics((200, "<html>")))
    with pytest.raises(AdapterError, match="expected a scalar or a vector, got 'matrix'"):
        query(metrics((200, {"status": "success", "data": {"resultType": "matrix", "result": []}})))
    with pytest.raises(AdapterError, match="is not a number"):
        query(metrics((200, vector("many"))))


def test_an_unknown_metric_names_the_plan_setting() -> None:
    with pytest.raises(AdapterError, match="no query for metric 'drift' in the plan's metrics.queries"):
        query(metrics((200, vector("1"))), "drift")


def test_time_is_sent_only_when_the_clock_is_wall_time() -> None:
    def sent_time(clock) -> str | None:
        seen: list[httpx.Request] = []
        query(metrics((200, vector("1")), clock=clock, seen=seen), at=1_700_000_123.25)
        return seen[0].url.params.get("time")

    assert sent_time(RealClock()) == "1700000123.250"
    assert sent_time(RealClock(speed=60)) is None
    assert sent_time(VirtualClock()) is None
    assert sent_time(None) is None


def test_a_bearer_token_is_sent_and_never_shown() -> None:
    seen: list[httpx.Request] = []
    m = metrics((401, {"status": "error", "error": "bad token prom-secret-1"}), seen=seen, token="prom-secret-1")
    with pytest.raises(AdapterError) as info:
        query(m)
    assert seen[0].headers["Authorization"] == "Bearer prom-secret-1"
    assert "prom-secret-1" not in str(info.value) and "prom-secret-1" not in repr(m)
