"""Data-contract checks on the real stack: `interlock sim serve` exports the data each
version reads (`adapters.sim.data.InputExport`), a real Prometheus scrapes it every
second, and the Prometheus adapter answers the four data metrics through the query
templates a plan writes, `$contract` filled in. Faults posted to the admin API spoil
the feed, and the contract's own gates (`core.datagates`) judge what Prometheus says."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.prometheus import PrometheusMetrics
from adapters.sim.serve import ServeConfig, SimServer, serve
from adapters.stack.prometheus import PrometheusServer, start_prometheus, wait_until_value
from conftest import start_or_skip
from core import load_plan
from core.clock import VirtualClock
from core.datagates import contract_gates
from core.events import Measured
from core.gates import GateRun
from core.verdict import explain

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "examples" / "recsys-data.yaml"
SERIES = '{service="$service",version="$version",contract="$contract"}'
QUERIES = {
    "data_freshness": f"time() - max(interlock_input_newest_timestamp_seconds{SERIES})",
    "data_volume": f"sum(increase(interlock_input_rows_total{SERIES}[$window]))",
    "data_missing": (f"sum(increase(interlock_input_records_incomplete_total{SERIES}[$window]))"
                     f" / sum(increase(interlock_input_records_sampled_total{SERIES}[$window]))"),
    "data_invalid": (f"sum(increase(interlock_input_records_invalid_total{SERIES}[$window]))"
                     f" / sum(increase(interlock_input_records_sampled_total{SERIES}[$window]))"),
}


class Served:
    """`sim serve` on its own event loop in a thread (its admin port is Prometheus's target)."""

    def __init__(self) -> None:
        self.server: SimServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.server is None:
            assert time.monotonic() < deadline, "sim serve did not start"
            time.sleep(0.02)

    def _run(self) -> None:
        async def go() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await serve(ServeConfig(plan=str(PLAN), seed=5, latency_scale=0.0), self._stop, self._started)

        asyncio.run(go())

    def _started(self, server: SimServer) -> None:
        self.server = server

    @property
    def admin(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.admin_port}"

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, PrometheusServer]]:
    served = Served()
    prom = None
    try:
        prom = start_or_skip("Prometheus", lambda: start_prometheus(
            tmp_path_factory.mktemp("data-prom"), [served.admin], scrape_interval=1.0))
        wait_until_value(prom, "count_over_time(interlock_input_rows_total[10s]) >= 3", timeout=30)
        yield served, prom
    finally:
        if prom is not None:
            prom.stop()
        served.close()


def measure(prom: PrometheusServer, metric: str, window: float = 4.0,
            service: str = "embedder", version: str = "3.0") -> float | None:
    async def go() -> float | None:
        source = PrometheusMetrics(prom.url, queries=QUERIES, clock=VirtualClock())
        try:
            return await source.query(metric, service, version, window, time.time())
        finally:
            await source.aclose()

    return asyncio.run(go())


def post_fault(served: Served, fault: dict[str, Any]) -> None:
    answer = httpx.post(f"http://{served.admin}/faults", json=fault, timeout=5)
    assert answer.status_code == 200, answer.text


def clear_faults(served: Served) -> None:
    assert httpx.request("DELETE", f"http://{served.admin}/faults", timeout=5).status_code == 200


def wait_for(prom: PrometheusServer, metric: str, until: Any, timeout: float = 20.0) -> float | None:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = measure(prom, metric)
        if value is not None and until(value):
            return value
        time.sleep(0.3)
    raise AssertionError(f"{metric} never came true, last {value!r}")


def judged(name: str, value: float | None) -> tuple[str, str]:
    """(phase, words) of one measurement by the plan's own contract gate."""
    plan, _ = load_plan(PLAN)
    verdict = explain(contract_gates(plan)[name], GateRun("embedder", name, next_at=None),
                      Measured(at=0.0, service="embedder", gate=name, value=value))
    return verdict.phase, verdict.text


def test_a_healthy_feed_passes_every_check_through_prometheus(stack: tuple[Served, PrometheusServer]) -> None:
    served, prom = stack
    clear_faults(served)
    fresh = wait_for(prom, "data_freshness@features", lambda v: v < 60)
    assert judged("features:freshness", fresh)[0] == "successful"
    assert wait_for(prom, "data_volume@features", lambda v: v > 0) > 0
    assert wait_for(prom, "data_missing@features", lambda v: v == 0) == 0
    assert wait_for(prom, "data_invalid@features", lambda v: v == 0) == 0
    # the same template for another contract and reader
    assert measure(prom, "data_freshness@embeddings", service="ranker", version="6.0") is not None


def test_stale_data_fails_freshness_and_volume_dries_up(stack: tuple[Served, PrometheusServer]) -> None:
    served, prom = stack
    clear_faults(served)
    post_fault(served, {"kind": "stale_data", "service": "features", "version": "old", "age": 7200})
    try:
        age = wait_for(prom, "data_freshness@features", lambda v: v > 7000)
        phase, text = judged("features:freshness", age)
        assert phase == "failed"
        assert re.match(r"data_freshness@features 2h00m\d\ds > max 15m00s ✗$", text), text
        assert wait_for(prom, "data_volume@features", lambda v: v == 0) == 0  # nothing arrives
    finally:
        clear_faults(served)
    assert wait_for(prom, "data_freshness@features", lambda v: v < 60) < 60


def test_missing_fields_and_schema_drift_show_in_the_sampled_payloads(
    stack: tuple[Served, PrometheusServer],
) -> None:
    served, prom = stack
    clear_faults(served)
    post_fault(served, {"kind": "schema_drift", "service": "features", "version": "old", "field": "vector"})
    post_fault(served, {"kind": "missing_fields", "service": "features", "version": "old", "value": 0.5})
    try:
        invalid = wait_for(prom, "data_invalid@features", lambda v: v > 0.9)
        assert judged("features:schema", invalid)[0] == "failed"
        missing = wait_for(prom, "data_missing@features", lambda v: 0.3 < v < 0.7)
        phase, text = judged("features:completeness", missing)
        assert phase == "failed" and "> max 2%" in text
    finally:
        clear_faults(served)
