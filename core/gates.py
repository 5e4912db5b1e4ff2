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

from dataclasses import dataclass

from core.evolve import build, evolve
from typing import Callable, Literal, Sequence

from core.judges.sequential import SprtState
from core.plan import Gate

MeasurementPhase = Literal["successful", "failed", "inconclusive", "error"]
GatePhase = Literal["running", "successful", "failed", "inconclusive", "error"]
DECIDED: frozenset[str] = frozenset({"successful", "failed", "inconclusive", "error"})


@dataclass(frozen=True)
class Sample:
    """One measurement as the console shows it."""

    at: float
    value: float | None
    baseline: float | None
    phase: MeasurementPhase | None
    """None when the measurement was ignored (`no_data: ignore`)."""
    error: str | None = None


@dataclass(frozen=True)
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
    sprt: SprtState | None = None
    """The sequential judge's evidence so far."""
    no_data_since: float | None = None
    """Start of the window of the first of the ignored no-data measurements in a row."""


def _is_missing(value: float | None) -> bool:
    return value is None or value != value  # NaN is the only value unequal to itself


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
    return _assess(gate, run.failures, run.inconclusives, run.consecutive_errors, run.count)


def _assess(gate: Gate, failures: int, inconclusives: int, streak: int, count: int) -> GatePhase:
    if gate.failure_limit >= 0 and failures > gate.failure_limit:
        return "failed"
    if inconclusives > gate.inconclusive_limit:
        return "inconclusive"
    if streak > gate.consecutive_error_limit:
        return "error"
    if gate.count is not None and count >= gate.count:
        return "successful"
    return "running"


def _judge(
    gate: Gate,
    run: GateRun,
    value: float | None,
    baseline: float | None,
    error: str | None,
    canary_data: Sequence[float] | None,
    baseline_data: Sequence[float] | None,
) -> tuple[MeasurementPhase | None, float | None, float | None, GateRun]:
    """(phase, value shown, baseline shown, run with judge state) for one measurement."""
    if error is not None or gate.judge == "threshold":
        return classify(gate, value, baseline, error), value, baseline, run
    if gate.judge == "sequential":
        if not canary_data or len(canary_data) < 2:
            return classify(gate, None, None, None), None, None, run
        from core.judges.analysis import sequential_test
        from core.judges.sequential import sprt_update, two_sample_update

        two_sample = gate.compare == "baseline"
        state = run.sprt or sequential_test(gate, two_sample)
        errors, requests = int(canary_data[0]), int(canary_data[1])
        if two_sample:
            if not baseline_data or len(baseline_data) < 2:
                return classify(gate, None, None, None), None, None, run
            state = two_sample_update(state, errors, requests, int(baseline_data[0]), int(baseline_data[1]))
            shown_base = baseline_data[0] / baseline_data[1] if baseline_data[1] else None
        else:
            state = sprt_update(state, errors, requests)
            shown_base = None
        shown = errors / requests if requests else None
        phase: MeasurementPhase | None = {
            "accept_h1": "failed", "accept_h0": "successful", "continue": None
        }[state.decision]
        return phase, shown, shown_base, evolve(run, sprt=state)
    if not canary_data or not baseline_data:
        return classify(gate, None, None, None), None, None, run
    from core.judges.analysis import judge_samples

    phase, _detail = judge_samples(gate, canary_data, baseline_data)
    if gate.judge == "drift":
        from core.judges import drift

        shown = (drift.js_divergence if gate.divergence == "js" else drift.psi)(baseline_data, canary_data)
        return phase, shown, None, run
    mean = sum(canary_data) / len(canary_data)
    base_mean = sum(baseline_data) / len(baseline_data)
    return phase, mean, base_mean, run


def record(
    gate: Gate,
    run: GateRun,
    at: float,
    value: float | None,
    baseline: float | None,
    error: str | None,
    keep: int = 64,
    canary_data: Sequence[float] | None = None,
    baseline_data: Sequence[float] | None = None,
    schedule: Callable[[int], float | None] | None = None,
) -> GateRun:
    """The run after one more measurement (its phase re-assessed).

    A sequential gate decides on its accumulated evidence: accepting H1 fails the gate
    and accepting H0 passes it, whatever the counters say; while it cannot decide, each
    measurement counts towards `count` and reaching it undecided is inconclusive.
    `schedule(count)` gives the next measurement's time while the run is still running."""
    phase, value, baseline, run = _judge(gate, run, value, baseline, error, canary_data, baseline_data)
    since = run.no_data_since
    if phase is None and not (gate.judge == "sequential" and run.sprt is not None and error is None):
        # Ignored no data (`no_data: ignore`): bounded by `no_data_timeout`, after which
        # it counts as inconclusive; a window too short for the data never waits forever.
        since = at - gate.interval if since is None else since
        if at - since >= gate.no_data_wait:
            phase, since = "inconclusive", None
        else:
            samples = (run.samples + (build(Sample, (at, None, None, None, error)),))[-keep:]
            return evolve(run, samples=samples, pending=None, no_data_since=since,
                          next_at=_next_at(schedule, run.phase, run.count, run.next_at))
    elif phase is not None:
        since = None
    if value != value:
        value = None  # NaN would make equal histories compare unequal
    if baseline != baseline:
        baseline = None
    sample = build(Sample, (at, value, baseline, phase, error))
    samples = (run.samples + (sample,))[-keep:]
    if gate.judge == "sequential" and error is None and run.sprt is not None:
        counted = run.count + 1
        if run.sprt.decision == "accept_h1":
            final: GatePhase = "failed"
        elif run.sprt.decision == "accept_h0":
            final = "successful"
        elif gate.count is not None and counted >= gate.count:
            final = "inconclusive"
        else:
            final = "running"
        return evolve(run, samples=samples, pending=None, count=counted, consecutive_errors=0,
                      failures=run.failures + (final == "failed"), phase=final,
                      next_at=_next_at(schedule, final, counted, run.next_at))
    if phase is None:
        return evolve(run, samples=samples, pending=None,
                      next_at=_next_at(schedule, run.phase, run.count, run.next_at))
    if phase == "error":
        count, successes, failures, inconclusives = run.count, run.successes, run.failures, run.inconclusives
        errors, streak = run.errors + 1, run.consecutive_errors + 1
    else:
        count, errors, streak = run.count + 1, run.errors, 0
        successes = run.successes + (phase == "successful")
        failures = run.failures + (phase == "failed")
        inconclusives = run.inconclusives + (phase == "inconclusive")
    phase_now = _assess(gate, failures, inconclusives, streak, count)
    return evolve(
        run,
        samples=samples,
        pending=None,
        count=count,
        successes=successes,
        failures=failures,
        inconclusives=inconclusives,
        errors=errors,
        consecutive_errors=streak,
        phase=phase_now,
        next_at=_next_at(schedule, phase_now, count, run.next_at),
        no_data_since=since,
    )


def _next_at(
    schedule: Callable[[int], float | None] | None, phase: GatePhase, count: int, current: float | None
) -> float | None:
    return schedule(count) if schedule is not None and phase == "running" else current
