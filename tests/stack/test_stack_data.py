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
from adapters.sim.world import SimWorld
from core import Engine, compile_plan, fold, initial_state, load_plan, parse_plan
from core.clock import VirtualClock
from core.datagates import contract_gates
from core.events import Event, ExposureApplied, Measured
from core.ports import Record, RunInfo
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


def wait_for(prom: PrometheusServer, metric: str, until: Any, timeout: float = 20.0, window: float = 4.0) -> float | None:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = measure(prom, metric, window)
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


ENGINE_PLAN = """\
rollout: data-on-the-stack
services:
  features:
    from: {version: "3.1", produces: {features: 6}}
  embedder:
    depends_on: [features]
    from: {version: "2.4", consumes: {features: [6]}}
    to:   {version: "3.0", consumes: {features: [6]}}
contracts:
  features:
    schema:
      type: object
      required: [user_id, vector, ts]
      properties:
        user_id: {type: string, minLength: 1}
        vector: {type: array, items: {type: number}, minItems: 8}
        ts: {type: integer, minimum: 0}
    checks: {freshness: {max_age: 15m}, schema: {max_invalid: 1%}, interval: 5s}
"""


class Recorded:
    """A journal in memory (the engine's events are what this test reads)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def create_run(self, info: RunInfo) -> None:
        pass

    def runs(self) -> list[RunInfo]:
        return []

    def append(self, run_id: str, events: list[Event], operator: str = "") -> None:
        self.events.extend(events)

    def records(self, run_id: str, after: int = 0) -> Iterator[Record]:
        for seq, event in enumerate(self.events[after:], start=after + 1):
            yield Record(seq=seq, event=event)

    def close(self) -> None:
        pass


def run_engine(prom: PrometheusServer) -> list[Event]:
    """The engine on the plan above: exposure through an in-process world, the embedder's data
    contracts measured through Prometheus. Stops at the first exposure, or at the end."""
    plan, _ = parse_plan(ENGINE_PLAN, "engine.yaml")
    graph = compile_plan(plan)
    world = SimWorld(plan, graph, seed=1)
    journal = Recorded()

    async def go() -> None:
        metrics = PrometheusMetrics(prom.url, queries=QUERIES, clock=VirtualClock())
        engine = Engine(initial_state(plan, graph), clock=VirtualClock(), journal=journal, run_id="run-1",
                        flags=world.flags, router=world.router, metrics=metrics)
        engine.subscribe(lambda _state, events: engine.stop() if any(
            isinstance(e, ExposureApplied) and e.percent > 0 for e in events) else None)
        try:
            await engine.run()
        finally:
            await metrics.aclose()

    asyncio.run(go())
    return list(journal.events)


def test_the_engine_checks_the_data_through_prometheus_before_the_first_user(
    stack: tuple[Served, PrometheusServer],
) -> None:
    served, prom = stack
    clear_faults(served)
    wait_for(prom, "data_invalid@features", lambda v: v == 0, window=10.0)  # earlier tests' drift is over
    events = run_engine(prom)
    checked = [e for e in events if isinstance(e, Measured)]
    assert [e.value is not None for e in checked] == [True, True], events
    first = next(i for i, e in enumerate(events) if isinstance(e, ExposureApplied) and e.percent > 0)
    assert {e.gate for e in checked if events.index(e) < first} == {"features:freshness", "features:schema"}

    post_fault(served, {"kind": "stale_data", "service": "features", "version": "old", "age": 7200})
    try:
        wait_for(prom, "data_freshness@features", lambda v: v > 7000)
        events = run_engine(prom)
    finally:
        clear_faults(served)
    assert [e for e in events if isinstance(e, ExposureApplied) and e.percent > 0] == []
    stale = [e for e in events if isinstance(e, Measured) and e.gate == "features:freshness"]
    assert stale and stale[0].value is not None and stale[0].value > 7000
    plan, _ = parse_plan(ENGINE_PLAN, "engine.yaml")
    final = fold(initial_state(plan, compile_plan(plan)), events)
    assert final.phase == "rolled_back"
    assert "gate features:freshness on embedder failed before the first user" in final.reason
