"""Argo Rollouts' own analysis tests, translated: the floor of gate semantics.

Each case is named after the Go test it comes from (argoproj/argo-rollouts:
`utils/evaluate/evaluate_test.go`, `analysis/analysis_test.go`, the Prometheus,
Datadog and Kayenta provider tests). An Argo metric becomes a gate (its
conditions become bounds: `successCondition: result >= 0.9` is `pass_min: 0.9`,
`failureCondition: result < 0.9` is `min: 0.9`), its measurements a list of
recorded values. Every case runs twice, as a user meets it:

* through `interlock analyze PLAN GATE FILE --json`, the command line;
* through the reducer, as a one-service rollout whose gate gets exactly these
  measurements, where the verdict becomes what the rollout does: failed or
  error roll back, inconclusive pauses, successful lets the stage pass.

`argo` is what Argo decides; `interlock` is what interlock decides, the same
unless the case is one of the documented, deliberate differences (README,
"Coming from Argo Rollouts"), and then `why` says which.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import Driver, Err

from core.commands import Measure
from core.schedule import next_deadline
from tui.cli import main


@dataclass(frozen=True)
class Case:
    go: str
    """The Go test (and sub-case) this comes from."""
    gate: dict[str, Any]
    items: list[dict[str, Any]]
    argo: str
    """Argo's metric phase after these measurements."""
    interlock: str | None = None
    """interlock's, where it differs on purpose (None: the same as Argo's)."""
    why: str = ""
    verdicts: list[str] = field(default_factory=list)
    """Per-measurement verdicts `analyze` prints, when the case checks them."""

    @property
    def expected(self) -> str:
        return self.interlock or self.argo


OK, BAD, MID = {"value": 0.001}, {"value": 0.5}, {"value": 0.008}
ERR = {"error": "query failed"}
NODATA = {"value": None}
NAN = {"value": "NaN"}


def _argo_counters(successes: int, failures: int) -> list[dict[str, Any]]:
    return [OK] * successes + [BAD] * failures


CASES: list[Case] = []  # filled in below, grouped by Argo test file


def case_id(c: Case) -> str:
    return c.go


# -- running a case ------------------------------------------------------------------


def _plan(gate: dict[str, Any]) -> dict[str, Any]:
    return {
        "rollout": "argo-parity",
        "policy": {"on_failure": "rollback_self"},
        "defaults": {"stages": [50, 100], "bake": 36000, "gates": ["g"]},
        "gates": {"g": {"metric": "error_rate", "interval": 10, **gate}},
        "services": {"svc": {"from": {"version": "1"}, "to": {"version": "2"}}},
    }


def through_analyze(c: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    plan, data = tmp_path / "plan.yaml", tmp_path / "measurements.json"
    plan.write_text(yaml.safe_dump(_plan(c.gate)))
    data.write_text(json.dumps(c.items))
    assert main(["analyze", str(plan), "g", str(data), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _answer(item: dict[str, Any]) -> Any:
    if "error" in item:
        return Err(item["error"])
    value = item["value"]
    if isinstance(value, str):
        value = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}[value]
    return value


REACTION = {"failed": "rolling_back", "error": "rolling_back", "inconclusive": "paused",
            "successful": "running", "running": "running"}
"""What the rollout does with the gate's verdict."""


def through_engine(c: Case) -> tuple[str, str]:
    """(the gate's phase, the rollout's phase) after the reducer took the case's measurements."""
    d = Driver(_plan(c.gate))
    d.start()
    d.settle()
    phase = "running"
    for item in c.items:
        if phase != "running":
            break  # a decided gate measures no more, as in Argo
        deadline = next_deadline(d.state)
        assert deadline is not None
        d.tick(deadline)
        measures = d.inflight(Measure)
        assert len(measures) == 1, measures
        d.answer(measures[0], _answer(item))
        runs = d.state.groups[0].gates
        if runs:
            phase = runs[0].phase
        else:  # rolled back: the gates went with the stage; the reason names the verdict
            phase = "error" if "on svc errored" in d.state.reason else "failed"
    return phase, d.state.phase


# -- dry run: measured, shown, never acted on ---------------------------------------------


@pytest.mark.parametrize("verdict", ["failed", "inconclusive", "error"])
def test_a_dry_run_gate_never_pauses_or_rolls_back(verdict: str) -> None:
    # TestAssessRunStatusErrorMessageAnalysisPhaseFailInDryRunMode, ...MultipleFailuresInDryRunMode:
    # a dry-run metric's verdict does not touch the run's phase.
    item = {"failed": BAD, "inconclusive": MID, "error": ERR}[verdict]
    gate = {"max": 0.01, "pass_max": 0.005, "count": 3, "consecutive_error_limit": 0, "dry_run": True}
    acting = {k: v for k, v in gate.items() if k != "dry_run"}
    assert through_engine(Case("acting", acting, [item], verdict)) == (verdict, REACTION[verdict])
    assert through_engine(Case("dry run", gate, [item], verdict)) == (verdict, "running")
    d = Driver(_plan({**gate, "dry_run": True}))
    d.start()
    state = d.run(lambda _cmd, _state: _answer(item))
    assert state.phase == "completed"
    assert all(s.phase == "promoted" for s in state.services.values())


DRY_RUN_PLAN = """\
rollout: dry-run
environment: sim
defaults: {stages: [50, 100], bake: 2m, gates: [errors]}
gates:
  errors: {metric: error_rate, max: 0.01, interval: 30s, count: 2, dry_run: true}
services:
  svc:
    from: {version: "1"}
    to: {version: "2"}
    sim: {from: {error_rate: 0.001}, to: {error_rate: 0.2}}
"""


def test_a_dry_run_gate_shows_its_verdict_headless_and_in_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, journal = tmp_path / "dry.yaml", tmp_path / "j.db"
    plan.write_text(DRY_RUN_PLAN)
    assert main(["run", str(plan), "--headless", "--journal", str(journal)]) == 0
    out = capsys.readouterr().out
    assert "svc: gate errors (dry run): error_rate" in out
    assert "svc gate errors failed (dry run: shown, not acted on)" in out
    assert "rollout completed" in out
    assert "rolled_back" not in out and "paused" not in out
    assert main(["log", "--journal", str(journal)]) == 0
    log = capsys.readouterr().out
    assert log.count("svc gate errors failed (dry run: shown, not acted on)") == 2  # one per stage
    # Without dry_run the same plan rolls back.
    plan.write_text(DRY_RUN_PLAN.replace(", dry_run: true", ""))
    assert main(["run", str(plan), "--headless", "--journal", str(tmp_path / "k.db")]) == 1
    assert "(dry run" not in capsys.readouterr().out


def test_the_console_detail_pane_says_dry_run_with_the_verdict() -> None:
    from core.events import Measured as MeasuredEvent
    from tui.widgets.detail import gate_table
    from tui.widgets.history import MetricHistory

    gate = {"max": 0.01, "count": 3, "dry_run": True}
    d = Driver(_plan(gate))
    d.start()
    d.settle()
    d.tick(next_deadline(d.state))
    d.answer(d.inflight(Measure)[0], 0.5)
    history = MetricHistory(d.state.ctx)
    history.record(e for e in d.events if isinstance(e, MeasuredEvent))
    text = gate_table(d.state, history, "svc").plain
    assert "dry run: shown, never acted on" in text
    assert "failed" in text and "(dry run)" in text
    acting = Driver(_plan({"max": 0.01, "count": 3}))
    assert "dry run" not in gate_table(acting.state, MetricHistory(acting.state.ctx), "svc").plain
