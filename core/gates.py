"""Gate judgement with Argo Rollouts' analysis semantics, as pure functions.

A gate takes measurements one by one. Each is classified (successful, failed,
inconclusive, error), counted, and the run is assessed exactly as Argo does:
failed once failures exceed `failure_limit`, inconclusive once inconclusives
exceed `inconclusive_limit`, error once *consecutive* errors exceed
`consecutive_error_limit` (an error is not a failure, and any real
measurement resets the streak), successful once `count` measurements are in,
else still running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from core.plan import Gate

MeasurementPhase = Literal["successful", "failed", "inconclusive", "error"]
GatePhase = Literal["running", "successful", "failed", "inconclusive", "error"]
DECIDED: frozenset[str] = frozenset({"successful", "failed", "inconclusive", "error"})


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement as the console shows it."""

    at: float
    value: float | None
    baseline: float | None
    phase: MeasurementPhase | None
    """None when the measurement was ignored (`no_data: ignore`)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class GateRun:
    """One gate's analysis at one stage of one service."""

    service: str
    gate: str
    next_at: float | None
    """When the next measurement is due; None while one is in flight or when done."""
    pending: int | None = None
    """The in-flight measurement's command id."""
    count: int = 0
    """Measurements that count towards `count` (every one but errors and ignored)."""
    successes: int = 0
    failures: int = 0
    inconclusives: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    phase: GatePhase = "running"
    samples: tuple[Sample, ...] = ()


def _is_missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def classify(
    gate: Gate, value: float | None, baseline: float | None, error: str | None
) -> MeasurementPhase | None:
    """The phase of one measurement, or None when the gate ignores it."""
    if error is not None:
        return "error"
    if _is_missing(value) or (gate.compare == "baseline" and _is_missing(baseline)):
        return {"fail": "failed", "inconclusive": "inconclusive", "ignore": None}[gate.no_data]
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
        return "successful" if passes else "inconclusive"
    return "successful"


def assess(gate: Gate, run: GateRun) -> GatePhase:
    """Argo's assessment of a run from its counters."""
    if gate.failure_limit >= 0 and run.failures > gate.failure_limit:
        return "failed"
    if run.inconclusives > gate.inconclusive_limit:
        return "inconclusive"
    if run.consecutive_errors > gate.consecutive_error_limit:
        return "error"
    if gate.count is not None and run.count >= gate.count:
        return "successful"
    return "running"


def record(
    gate: Gate,
    run: GateRun,
    at: float,
    value: float | None,
    baseline: float | None,
    error: str | None,
    keep: int = 64,
) -> GateRun:
    """The run after one more measurement (its phase re-assessed)."""
    phase = classify(gate, value, baseline, error)
    sample = Sample(at=at, value=value, baseline=baseline, phase=phase, error=error)
    samples = (run.samples + (sample,))[-keep:]
    if phase is None:
        return replace(run, samples=samples, pending=None)
    if phase == "error":
        run = replace(run, errors=run.errors + 1, consecutive_errors=run.consecutive_errors + 1)
    else:
        run = replace(
            run,
            count=run.count + 1,
            consecutive_errors=0,
            successes=run.successes + (phase == "successful"),
            failures=run.failures + (phase == "failed"),
            inconclusives=run.inconclusives + (phase == "inconclusive"),
        )
    run = replace(run, samples=samples, pending=None)
    return replace(run, phase=assess(gate, run))
