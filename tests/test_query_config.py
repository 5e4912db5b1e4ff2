"""Metric queries checked before they judge (issue 11, point 6), the parts without a
server: `validate` names a gate metric with no query at FILE:LINE:COL, and a gate that
cannot judge as configured holds the rollout (the operator's resume measures again)
instead of counting against the canary. Real Prometheus: tests/stack/test_stack_queries.py."""

from __future__ import annotations

from pathlib import Path

from helpers import Driver, independent_plan

from core.actions import available
from core.commands import Measure
from core.events import GateMisconfigured
from tui.cli.main import EXIT_BAD_INPUT, main

PLAN = """\
rollout: q
environment:
  flags: {kind: http, url: "http://127.0.0.1:9"}
  metrics: {kind: prometheus, url: "http://127.0.0.1:9",
            queries: {error_rate: 'sum(rate(errors_total{version="$version"}[$window]))'}}
defaults: {gates: [errors, latency, fast]}
gates:
  errors: {metric: error_rate, max: 0.01}
  latency: {metric: latency_p99, max: 300}
  fast: {metric: error_rate, judge: sequential, max: 0.01}
  unused: {metric: nothing_here, max: 1}
services:
  a: {from: {version: '1'}, to: {version: '2'}}
"""


def test_validate_names_every_gate_metric_without_a_query(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN, encoding="utf-8")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:9:21: gates.latency.metric: no query for metric 'latency_p99' in environment.metrics.queries "
        "(queries: error_rate); add one, or the gate cannot measure",
        f"{path}:10:37: gates.fast.judge: no query for metric 'requests' in environment.metrics.queries "
        "(queries: error_rate); add one, or the gate cannot measure",
    ]


def test_a_gate_that_cannot_judge_holds_and_resume_measures_it_again() -> None:
    doc = independent_plan("a", stages=[50, 100], bake=120)
    doc["gates"] = {"errors": {"metric": "error_rate", "max": 0.01, "interval": 30}}
    doc["defaults"]["gates"] = ["errors"]
    d = Driver(doc)
    (up,) = d.start()
    d.ack(up)
    (measure,) = d.tick(30.0)
    assert isinstance(measure, Measure)
    assert d.feed(GateMisconfigured(at=30.0, cmd_id=measure.cmd_id, service="a", gate="errors",
                                    error="prometheus: the query returned 2 series")) == []
    assert d.state.effective_phase == "held" and d.state.phase == "running"
    assert d.state.hold.reason == ("gate errors on a cannot judge: prometheus: the query returned 2 series; "
                                   "fix the configuration, then resume")
    assert d.state.groups[0].gates[0].failures == 0 and d.state.groups[0].gates[0].errors == 0
    assert d.tick(1000.0) == [] and d.state.services["a"].exposure == 50.0, "nothing moves, nothing rolls back"
    assert "resume" in available(d.state)
    (again,) = d.op("resume", at=1000.0)
    assert isinstance(again, Measure) and again.gate == "errors" and d.state.hold is None
    assert d.state.groups[0].bake_until == 120.0 + 970.0, "the held time does not count as bake"
