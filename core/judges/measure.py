"""How one measurement is judged: the rule a live gate (`core.gates.record`) and a replay
(`core.judges.analysis`, `interlock analyze`) both apply, written once.

A value against the gate's bounds (`classify`), two samples through Mann-Whitney or two
histograms through a divergence (`judge_samples`), and the sequential test a gate starts
(`sequential_test`), whose decisions become measurement phases through `SPRT_PHASE`. How
the phases of many measurements add up to a gate's verdict is `core.gates.tally`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from core.judges import drift
from core.judges.mann_whitney import Classification, Direction, classify as mw_classify
from core.judges.mixture import MixtureState, ratio_start
from core.judges.sequential import SprtState, sprt_start
from core.plan import Gate

MeasurementPhase = Literal["successful", "failed", "inconclusive", "error"]

SPRT_PHASE: dict[str, MeasurementPhase | None] = {"accept_h1": "failed", "accept_h0": "successful", "continue": None}
"""A sequential test's decision after a measurement, as that measurement's phase (None: no
decision yet)."""


NO_DATA: dict[str, MeasurementPhase | None] = {
    "fail": "failed", "inconclusive": "inconclusive", "error": "error", "ignore": None,
}
"""What a measurement without data is, by the gate's `no_data`. `error` is Argo's: an Error
measurement, which counts towards `consecutive_error_limit` and not towards `count`."""


def classify(
    gate: Gate, value: float | None, baseline: float | None, error: str | None
) -> MeasurementPhase | None:
    """The phase of one measurement, or None when the gate ignores it."""
    if error is not None:
        return "error"
    # Missing: None, or NaN (the only value unequal to itself).
    if value is None or value != value or (gate.compare == "baseline" and (baseline is None or baseline != baseline)):
        return NO_DATA[gate.no_data]
    assert value is not None
    if gate.compare == "baseline":
        assert baseline is not None
        if gate.max_increase is not None and value > baseline * (1.0 + gate.max_increase):
            return "failed"
        if gate.max_decrease is not None and value < baseline * (1.0 - gate.max_decrease):
            return "failed"
        return "successful"
    if (gate.max is not None and value > gate.max) or (gate.min is not None and value < gate.min):
        return "failed"
    if gate.pass_max is not None or gate.pass_min is not None:
        passes = (gate.pass_max is None or value <= gate.pass_max) and (
            gate.pass_min is None or value >= gate.pass_min
        )
        if passes:
            return "successful"
        # Argo: without a failure condition, a measurement that misses the success condition
        # fails; with one, it is inconclusive (TestEvaluateResultNoFailureConditionAndNotSuccessful).
        return "inconclusive" if gate.max is not None or gate.min is not None else "failed"
    return "successful"


def direction_of(gate: Gate) -> Direction:
    """Which way a Mann–Whitney gate looks: its `direction`, else what its bounds imply."""
    explicit = getattr(gate, "direction", None)
    if explicit is not None:
        return explicit  # type: ignore[no-any-return]
    if gate.max_increase is not None and gate.max_decrease is None:
        return "increase"
    if gate.max_decrease is not None and gate.max_increase is None:
        return "decrease"
    return "either"


def mann_whitney_result(gate: Gate, canary: Sequence[float], baseline: Sequence[float]) -> Classification:
    """Mann–Whitney of the two samples with the gate's direction, confidence and bounds (the
    gate's phase is `mann_whitney`; the verdict's words read the same result)."""
    return mw_classify(
        canary,
        baseline,
        direction=direction_of(gate),
        confidence=getattr(gate, "confidence", 0.98),
        allowed_increase=1.0 + (gate.max_increase or 0.0),
        allowed_decrease=1.0 - (gate.max_decrease or 0.0),
        min_samples=getattr(gate, "min_samples", 5),
        critical=getattr(gate, "critical", False),
    )


def mann_whitney(
    gate: Gate, canary: Sequence[float], baseline: Sequence[float]
) -> tuple[MeasurementPhase | None, str]:
    result = mann_whitney_result(gate, canary, baseline)
    if result.result == "NoData":
        return NO_DATA[gate.no_data], result.reason
    return ("successful" if result.result == "Pass" else "failed"), result.reason


def drift_value(gate: Gate, canary: Sequence[float], baseline: Sequence[float]) -> tuple[float, str]:
    if getattr(gate, "divergence", "psi") == "js":
        value = drift.js_divergence(baseline, canary)
        return value, f"JS divergence {value:.6g}"
    value = drift.psi(baseline, canary)
    return value, f"PSI {value:.6g}"


def judge_samples(
    gate: Gate, canary: Sequence[float], baseline: Sequence[float]
) -> tuple[MeasurementPhase | None, str, float | None]:
    """The phase of one canary-and-baseline measurement under a gate (None when ignored), and why.

    A drift gate bounds the divergence of the two histograms with its
    max / pass_max; any other gate classifies the samples with Mann–Whitney:
    Pass → successful, High or Low → failed, NoData → as `no_data` says.
    The third item is the divergence a drift gate measured (None for Mann–Whitney).
    """
    if gate.judge == "drift":
        value, detail = drift_value(gate, canary, baseline)
        return classify(gate.model_copy(update={"compare": None}), value, None, None), detail, value
    phase, detail = mann_whitney(gate, canary, baseline)
    return phase, detail, None


def failing_ratio(gate: Gate) -> float:
    """The canary/baseline error-rate ratio a two-sample sequential gate must catch:
    1 + max_increase, or (without `compare: baseline`) max over pass_max (default max/2)."""
    if gate.compare == "baseline":
        if gate.max_increase is None or gate.max_increase <= 0:
            raise ValueError("a sequential comparison with the baseline needs max_increase above 0%")
        return 1.0 + gate.max_increase
    if gate.max is None:
        raise ValueError("a sequential gate needs max (the failing error rate)")
    return gate.max / (gate.pass_max if gate.pass_max is not None else gate.max / 2)


def sequential_test(gate: Gate, two_sample: bool) -> SprtState | MixtureState:
    """A fresh sequential test for a gate: with ``two_sample``, the canary against the live
    baseline, anytime-valid (null: no more errors than the baseline; see
    `core.judges.mixture`); else Wald's SPRT of ``pass_max`` (default max/2) vs ``max``.

    Raises ValueError when the gate lacks what the test needs.
    """
    alpha, beta = getattr(gate, "alpha", 0.01), getattr(gate, "beta", 0.05)
    if two_sample:
        return ratio_start(failing_ratio(gate), alpha)
    if gate.max is None:
        raise ValueError("a sequential gate needs max (the failing error rate)")
    p0 = gate.pass_max if gate.pass_max is not None else gate.max / 2
    return sprt_start(p0, gate.max, alpha, beta, calibrated=getattr(gate, "calibrated", True))




def wald_verdict(state: SprtState, looks: int, count: int | None) -> str:
    """Wald's test after `looks` measurements with counts: `failed` or `successful` once it
    decided, `inconclusive` when the gate's `count` truncated it first, else `running`."""
    if state.decision == "accept_h1":
        return "failed"
    if state.decision == "accept_h0":
        return "successful"
    if count is not None and looks >= count:
        return "inconclusive"
    return "running"
