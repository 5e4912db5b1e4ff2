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
from tui.cli.main import main


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


NO_DATA_DEFAULT = ("interlock's default no_data is inconclusive: a gap pauses the rollout at once "
                   "(set no_data: error for Argo's)")
NAN_IS_NO_DATA = "NaN is no data in interlock (0/0: no requests), never a number a bound can pass"
NEVER_PASS_BLIND = "interlock never passes a measurement without data; no_data: ignore waits for real data"

FL4_CSL4 = {"max": 0.01, "failure_limit": 4, "consecutive_success_limit": 4}
CSL_ONLY = {"max": 0.01, "failure_limit": -1}
COUNTERS_7 = [OK, BAD, BAD, BAD, OK, OK, OK]
"""failed 3, successful 4, consecutive successes 3, count 7: the counters Argo's tests set."""

CASES: list[Case] = [
    # utils/evaluate/evaluate_test.go: one measurement, its phase
    Case("TestEvaluateResultWithSuccess", {"max": 0.01, "pass_max": 0.005, "count": 1}, [OK], "successful"),
    Case("TestEvaluateResultWithFailure", {"max": 0.01, "pass_max": 0.9, "count": 1}, [BAD], "failed"),
    Case("TestEvaluateResultInconclusive", {"max": 0.01, "pass_max": 0.005, "count": 1}, [MID], "inconclusive"),
    Case("TestEvaluateResultNoSuccessConditionAndNotFailing", {"max": 0.01, "count": 1}, [OK], "successful"),
    Case("TestEvaluateResultNoFailureConditionAndNotSuccessful", {"pass_max": 0.005, "count": 1}, [MID], "failed"),
    Case("TestEvaluateResultNoFailureConditionAndNoSuccessCondition", {"count": 1}, [{"value": 123}], "successful"),
    Case("TestEvaluateResultWithErrorOnSuccessCondition", {"pass_max": 0.005, "count": 1}, [ERR], "running",
         verdicts=["error"]),
    Case("TestEvaluateResultErrorMessageWithNilResult", {"pass_min": 0.95, "count": 1, "no_data": "error"},
         [NODATA], "running", verdicts=["error"]),
    Case("TestEvaluateResultErrorMessageWithEmptySlice", {"pass_min": 0.95, "count": 1, "no_data": "error"},
         [NODATA] * 5, "error", verdicts=["error"] * 5),
    Case("TestEvaluateResultErrorMessageWithNilResult (interlock's default no_data)",
         {"pass_min": 0.95, "count": 1}, [NODATA], "running", "inconclusive", NO_DATA_DEFAULT),
    # analysis/analysis_test.go: assessMetricStatus over a run of measurements
    Case("TestAssessMetricStatusFailureLimit (failureLimit 2)", {"max": 0.01, "failure_limit": 2}, [BAD] * 3,
         "failed"),
    Case("TestAssessMetricStatusFailureLimit (failureLimit 3)", {"max": 0.01, "failure_limit": 3}, [BAD] * 3,
         "running"),
    Case("TestAssessMetricStatusConsecutiveSuccessLimit (indefinite, limit 3)",
         {**CSL_ONLY, "consecutive_success_limit": 3}, COUNTERS_7, "successful"),
    Case("TestAssessMetricStatusConsecutiveSuccessLimit (indefinite, limit 5)",
         {**CSL_ONLY, "consecutive_success_limit": 5}, COUNTERS_7, "running"),
    Case("TestAssessMetricStatusConsecutiveSuccessLimit (count 7 reached, limit 5)",
         {**CSL_ONLY, "consecutive_success_limit": 5, "count": 7}, COUNTERS_7, "failed"),
    Case("TestAssessMetricStatusConsecutiveSuccessLimit (count 7 reached, limit 3)",
         {**CSL_ONLY, "consecutive_success_limit": 3, "count": 7}, COUNTERS_7, "successful"),
    Case("TestAssessMetricStatusConsecutiveSuccessLimit (count 9 not reached, limit 5)",
         {**CSL_ONLY, "consecutive_success_limit": 5, "count": 9}, COUNTERS_7, "running"),
    Case("TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit (indefinite, neither)", FL4_CSL4,
         COUNTERS_7, "running"),
    Case("TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit (indefinite, failureLimit violated)",
         FL4_CSL4, [OK] * 3 + [BAD] * 5, "failed"),
    Case("TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit (indefinite, successes satisfied)",
         FL4_CSL4, [BAD] * 3 + [OK] * 4, "successful"),
    Case("TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit (count 10 reached, neither)",
         {**FL4_CSL4, "count": 10}, [OK, BAD, OK, OK, BAD, BAD, BAD, OK, OK, OK], "inconclusive"),
    Case("TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit (count 10, failureLimit violated)",
         {**FL4_CSL4, "count": 10}, [OK, OK, OK, BAD, BAD, BAD, BAD, BAD], "failed"),
    Case("TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit (count 10, successes satisfied)",
         {**FL4_CSL4, "count": 10}, [BAD] * 4 + [OK] * 4, "successful"),
    Case("TestAssessMetricStatusInconclusiveLimit (inconclusiveLimit 2)",
         {"max": 0.01, "pass_max": 0.005, "inconclusive_limit": 2}, [MID] * 3, "inconclusive"),
    Case("TestAssessMetricStatusInconclusiveLimit (inconclusiveLimit 3)",
         {"max": 0.01, "pass_max": 0.005, "inconclusive_limit": 3}, [MID] * 3, "running"),
    Case("TestAssessMetricStatusConsecutiveErrors (5 in a row)", {"max": 0.01}, [ERR] * 5, "error"),
    Case("TestAssessMetricStatusConsecutiveErrors (4 in a row)", {"max": 0.01}, [ERR] * 4, "running"),
    Case("TestAssessMetricStatusCountReached (all successful)", {"max": 0.01, "pass_max": 0.005, "count": 10},
         [OK] * 10, "successful"),
    Case("TestAssessMetricStatusCountReached (5 inconclusive)", {"max": 0.01, "pass_max": 0.005, "count": 10},
         [OK] * 5 + [MID] * 5, "inconclusive"),
    Case("TestRunMeasurementsResetConsecutiveErrorCounter", {"max": 0.01}, [ERR] * 4 + [OK] + [ERR] * 4,
         "running", verdicts=["error"] * 4 + ["successful"] + ["error"] * 4),
    Case("TestAssessRunStatusErrorMessageAnalysisPhaseFailInDryRunMode",
         {"max": 0.01, "count": 2, "dry_run": True}, [OK, BAD], "failed"),
    Case("TestAssessRunStatusMultipleFailuresInDryRunMode", {"max": 0.01, "failure_limit": 1, "dry_run": True},
         [BAD, BAD], "failed"),
    # metricproviders/prometheus/prometheus_test.go
    Case("TestProcessScalarResponse", {"min": 10, "max": 10, "count": 1}, [{"value": 10}], "successful"),
    Case("TestProcessNaNResponse/inconclusive", {"pass_min": 0.9, "min": 0.9, "count": 1}, [NAN], "inconclusive",
         why=NAN_IS_NO_DATA + "; inconclusive here by no_data, as Argo by its conditions"),
    Case("TestProcessNaNResponse/success", {"pass_min": 0.9, "no_data": "ignore", "count": 1}, [NAN],
         "successful", "running", NEVER_PASS_BLIND + " (isNaN(result) has no counterpart)"),
    Case("TestProcessNaNResponse/failure", {"pass_min": 0.9, "count": 1}, [NAN], "failed", "inconclusive",
         NAN_IS_NO_DATA + "; no_data: fail gives Argo's verdict"),
    Case("TestProcessNaNResponse/failure (no_data: fail)", {"pass_min": 0.9, "count": 1, "no_data": "fail"},
         [NAN], "failed"),
    Case("analysis.md NaN and Infinity (failure condition only)", {"max": 0.01, "count": 1}, [NAN], "successful",
         "inconclusive", NAN_IS_NO_DATA + ": Argo passes `result > 0.01` on NaN, a canary with no traffic"),
    Case("TestProcessInfResponse/success", {"pass_min": 0.9, "count": 1}, [{"value": "+Inf"}], "successful"),
    Case("TestProcessInfResponse/failure", {"max": 1e300, "count": 1}, [{"value": "+Inf"}], "failed"),
    Case("TestProcessInvalidResponse", {"max": 0.01, "count": 1, "no_data": "error"}, [NODATA], "running",
         verdicts=["error"]),
    Case("TestRunWithQueryError", {"max": 0.01, "count": 1}, [ERR], "running", verdicts=["error"]),
    # metricproviders/datadog/datadogV2_test.go (TestRunSuiteV2)
    Case("TestRunSuiteV2/value does not match condition then fail", {"max": 0.001, "pass_max": 0.001, "count": 1},
         [{"value": 0.006121378742186943}], "failed"),
    Case("TestRunSuiteV2/error with no default and no data", {"pass_max": 0.05, "count": 1, "no_data": "error"},
         [NODATA], "running", verdicts=["error"]),
    Case("TestRunSuiteV2/success with default and no data", {"pass_max": 0.05, "count": 1, "no_data": "ignore"},
         [NODATA], "successful", "running", NEVER_PASS_BLIND + " (default(result, 0) has no counterpart)"),
    Case("TestRunSuiteV2/fail when bad default and no data", {"pass_max": 0.05, "count": 1, "no_data": "fail"},
         [NODATA], "failed"),
    Case("TestRunSuiteV2/success bad default and good data", {"pass_max": 0.05, "count": 1, "no_data": "fail"},
         [{"value": 0.006}], "successful"),
    # metricproviders/kayenta/kayenta_test.go: the score against thresholds pass 90, marginal 75
    Case("TestResumeSuccessfully", {"pass_min": 90, "min": 75, "count": 1}, [{"value": 100}], "successful"),
    Case("TestResumeFailure", {"pass_min": 90, "min": 75, "count": 1}, [{"value": 60}], "failed"),
    Case("TestResumeInconclusive", {"pass_min": 90, "min": 75, "count": 1}, [{"value": 80}], "inconclusive"),
    Case("TestResumeMissingScore", {"pass_min": 90, "min": 75, "count": 1, "no_data": "error"}, [NODATA],
         "running", verdicts=["error"]),
    Case("TestRunBadJobResponse", {"pass_min": 90, "min": 75, "count": 1}, [ERR], "running", verdicts=["error"]),
]


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
    code = main(["analyze", str(plan), "g", str(data), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == (1 if result["phase"] == "failed" else 0)  # exit 1 when the gate fails
    return result


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


@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_analyze_decides_as_argo(c: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = through_analyze(c, tmp_path, capsys)
    assert result["phase"] == c.expected, c.why
    if c.verdicts:
        assert [m["verdict"] for m in result["measurements"]][: len(c.verdicts)] == c.verdicts
    assert result.get("dry_run", False) == c.gate.get("dry_run", False)


@pytest.mark.parametrize("c", CASES, ids=case_id)
def test_the_engine_decides_and_acts_as_argo(c: Case) -> None:
    phase, rollout = through_engine(c)
    assert phase == c.expected, c.why
    assert rollout == ("running" if c.gate.get("dry_run") else REACTION[phase])


def test_the_table_covers_the_argo_tests_it_names() -> None:
    names = {c.go.split(" (")[0].split("/")[0] for c in CASES}
    assert {
        "TestEvaluateResultNoFailureConditionAndNotSuccessful", "TestEvaluateResultErrorMessageWithNilResult",
        "TestEvaluateResultErrorMessageWithEmptySlice", "TestAssessMetricStatusConsecutiveSuccessLimit",
        "TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit", "TestProcessNaNResponse",
        "TestRunSuiteV2", "TestResumeInconclusive",
    } <= names
    assert all(c.why for c in CASES if c.interlock is not None), "every difference says why"


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
    assert "rolled back" not in out and "rolled_back" not in out and "paused" not in out
    assert main(["log", "--journal", str(journal)]) == 0
    log = capsys.readouterr().out
    assert log.count("svc gate errors failed (dry run: shown, not acted on)") == 2  # one per stage
    # Without dry_run the same plan rolls back.
    plan.write_text(DRY_RUN_PLAN.replace(", dry_run: true", ""))
    assert main(["run", str(plan), "--headless", "--journal", str(tmp_path / "k.db")]) == 1
    assert "(dry run" not in capsys.readouterr().out


def test_the_console_detail_pane_says_dry_run_with_the_verdict() -> None:
    from core.events import Measured as MeasuredEvent
    from tui.console.widgets.detail import gate_table
    from tui.console.widgets.history import MetricHistory

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


def test_a_success_streak_gate_without_count_waits_past_the_bake_for_its_streak() -> None:
    # Argo's "wait for a condition" (inline analysis, failureLimit -1, consecutiveSuccessLimit):
    # the stage passes only once the successes come in a row, even after its bake is over.
    plan = _plan({**CSL_ONLY, "consecutive_success_limit": 3})
    plan["defaults"]["bake"] = 60
    answers = iter([0.5] * 10 + [0.001] * 50)
    d = Driver(plan)
    d.start()
    state = d.run(lambda _cmd, _state: next(answers), until=lambda s: s.groups[0].stage == 1)
    first_stage = [e for e in d.events if getattr(e, "gate", None) == "g"][:13]
    assert len(first_stage) == 13 and state.groups[0].stage == 1
    assert first_stage[-1].at == 130.0  # 10 failures, then 3 successes; the bake ended at 60 s
    # An open-ended gate without a streak to wait for passes when the bake ends.
    answers = iter([0.001] * 50)
    plain = _plan({"max": 0.01})
    plain["defaults"]["bake"] = 60
    d = Driver(plain)
    d.start()
    d.run(lambda _cmd, _state: next(answers), until=lambda s: s.groups[0].stage == 1)
    assert d.now == 60.0


ARGO_METRIC_FIELDS = (
    "name", "interval", "initialDelay", "count", "successCondition", "failureCondition", "failureLimit",
    "inconclusiveLimit", "consecutiveErrorLimit", "consecutiveSuccessLimit", "provider",
)
"""Every field of Argo's `v1alpha1.Metric` (pkg/apis/rollouts/v1alpha1/analysis_types.go)."""


def test_the_readme_maps_every_argo_metric_field_onto_a_gate_field() -> None:
    from core.plan import Gate

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Coming from Argo Rollouts", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    argo_cells = " ".join(row.split("|")[1] for row in rows)
    for name in (*ARGO_METRIC_FIELDS, "dryRun"):
        assert f"`{name}" in argo_cells or f"`provider.{name}" in argo_cells or (
            name == "provider" and "`provider." in argo_cells), name
    named = {word.strip("`").split(":")[0] for row in rows for word in row.split("|")[2].split() if word.startswith("`")}
    gate_fields = set(Gate.model_fields)
    assert {"interval", "initial_delay", "count", "pass_max", "max", "failure_limit", "inconclusive_limit",
            "consecutive_error_limit", "consecutive_success_limit", "dry_run"} <= named & gate_fields
