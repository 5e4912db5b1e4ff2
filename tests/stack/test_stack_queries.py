"""Metric queries checked before they judge (issue 11, point 6), against a real Prometheus
scraping the exporter every second (the fixtures of test_stack_prometheus).

Before the first stage every gate's query runs once: an error, several series, or a
`[$window]` shorter than twice the scrape interval Prometheus reports refuses the run
with the gate's name and the fix. During a run, a query answering several series holds
the rollout with its reason; it never rolls a healthy canary back (it used to: five
errors in a row, and the rollback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_stack_prometheus import QUERIES, prom  # noqa: F401 - the module's fixture

from adapters.journal_sqlite import SqliteJournal
from adapters.prometheus import PrometheusMetrics
from adapters.sim.world import SimWorld
from adapters.stack.prometheus import PrometheusServer
from core.clock import VirtualClock
from core.context import initial_state
from core.engine import Engine
from core.events import GateMisconfigured, Measured
from core.order import compile_plan
from core.planload import parse_plan
from core.ports import RunInfo
from tui.session.startup import check_queries


def plan_with(gate: dict, interval: str = "4s"):  # type: ignore[no-untyped-def]
    text = (
        "rollout: queries\n"
        "defaults: {stages: [50, 100], bake: 20s, gates: [g]}\n"
        f"gates:\n  g: {{metric: {gate['metric']}, max: 0.5, interval: {interval}}}\n"
        "services:\n  ranker: {from: {version: '5.0'}, to: {version: '6.0'}}\n"
    )
    plan, source = parse_plan(text, "plan.yaml")
    return plan, compile_plan(plan, source)


def checked(prom: PrometheusServer, metric: str, interval: str = "4s") -> list[str]:
    plan, graph = plan_with({"metric": metric}, interval)

    async def go() -> list[str]:
        source = PrometheusMetrics(prom.url, queries=QUERIES, clock=VirtualClock())
        try:
            return await check_queries(plan, graph, source)
        finally:
            await source.aclose()

    return asyncio.run(go())


def test_a_good_query_passes_the_check(prom: PrometheusServer) -> None:
    assert checked(prom, "error_rate") == []


def test_several_series_refuse_naming_the_gate_and_the_fix(prom: PrometheusServer) -> None:
    lines = checked(prom, "every_ratio")
    assert lines and all(line.startswith("gate g (ranker ") for line in lines)
    assert "the query returned 2 series" in lines[0] and "aggregate it to one (sum or avg)" in lines[0]


def test_a_query_prometheus_rejects_refuses(prom: PrometheusServer) -> None:
    (line, *_) = checked(prom, "broken", interval="10s")
    assert line.startswith("gate g (ranker ") and "bad_data" in line and "parse error" in line


def test_a_window_shorter_than_two_scrapes_refuses_with_the_interval_prometheus_reports(prom: PrometheusServer) -> None:
    (line,) = checked(prom, "error_rate", interval="1s")  # the stack's Prometheus scrapes every second
    assert line == (
        "gate g (ranker 6.0, metric error_rate): its query's [$window] would be 1s, shorter than twice the "
        "scrape interval Prometheus reports (1s): rate() over it has no data, ever; make the window at least 2s "
        "(the gate's interval; for mann_whitney, interval / samples)"
    )


def test_a_query_answering_several_series_holds_and_never_rolls_back(prom: PrometheusServer, tmp_path: Path) -> None:
    plan, graph = plan_with({"metric": "every_ratio"})
    clock = VirtualClock()
    world = SimWorld(plan, graph, seed=0, state_path=tmp_path / "sim.json", clock=clock)
    metrics = PrometheusMetrics(prom.url, queries=QUERIES, clock=clock)
    journal = SqliteJournal(tmp_path / "j.db")
    journal.create_run(RunInfo("r", "queries", "plan.yaml", "", 0, "virtual", 1.0, "", "ana"))
    engine = Engine(initial_state(plan, graph), clock=clock, journal=journal, run_id="r",
                    flags=world.flags, router=world.router, metrics=metrics)

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await engine.run()
        finally:
            await metrics.aclose()

    state = asyncio.run(go())
    events = [r.event for r in journal.records("r")]
    journal.close()
    assert state.effective_phase == "held" and state.phase == "running"
    assert "gate g on ranker cannot judge: prometheus: the query returned 2 series" in state.hold.reason
    assert state.services["ranker"].exposure == 50.0, "the healthy canary stays where it was"
    assert any(isinstance(e, GateMisconfigured) for e in events)
    assert not [e for e in events if isinstance(e, Measured) and e.error], "never counted against the canary"
