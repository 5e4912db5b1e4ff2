"""Gate judgement with Argo Rollouts' analysis semantics, as pure functions.

A gate takes measurements one by one. Each is classified (successful, failed,
inconclusive, error) the way Argo's `EvaluateResult` does: with only success
bounds (`pass_max`/`pass_min`) a miss fails, with only failure bounds
(`max`/`min`) anything else passes, with both the middle is inconclusive.
Each is counted, and the run is assessed exactly as Argo's
`assessMetricStatus`: failed once failures exceed `failure_limit`,
inconclusive once inconclusives exceed `inconclusive_limit`, error once
*consecutive* errors exceed `consecutive_error_limit` (an error is not a
failure and does not count towards `count`; any real measurement resets the
streak), successful once `consecutive_success_limit` successes come in a row,
and once `count` measurements are in: successful, or, when a
`consecutive_success_limit` was not reached, inconclusive (failed if
`failure_limit` is -1). Else still running.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.evolve import DICT_ONLY, evolve, evolved
from typing import Any, Callable, Literal, NamedTuple, Sequence, cast

from core.judges.measure import (
    SPRT_PHASE,
    MeasurementPhase,
    classify,
    judge_samples,
    sequential_test,
    wald_verdict,
)
from core.judges.mixture import MixtureState, ratio_update, tail_start, tail_update
from core.judges.sequential import SprtState, sprt_update
from core.plan import Gate

_new = object.__new__
_set = object.__setattr__
_tuple = tuple.__new__

GatePhase = Literal["running", "successful", "failed", "inconclusive", "error"]
DECIDED: frozenset[str] = frozenset({"successful", "failed", "inconclusive", "error"})


class Sample(NamedTuple):
    """One measurement as the console shows it. A tuple: every answer makes one and a run
    keeps the last 64, and a tuple is built in one allocation (an instance with a `__dict__`
    takes two and a dict)."""

    at: float
    value: float | None
    baseline: float | None
    phase: MeasurementPhase | None
    """None when the measurement was ignored (`no_data: ignore`)."""
    error: str | None = None


@dataclass(frozen=True)
class GateRun:
    """One gate's analysis at one stage of one service."""

    __slots__ = DICT_ONLY  # a copy is cheaper (`core.evolve`)

    service: str
    gate: str
    next_at: float | None
    """When the next measurement is due; None while one is in flight or when done."""
    pending: int | None = None
    """The in-flight measurement's command id."""
    asked_at: float | None = None
    """When the in-flight measurement was asked for (meaningful while `pending`)."""
    count: int = 0
    """Measurements that count towards `count` (every one but errors and ignored)."""
    successes: int = 0
    failures: int = 0
    inconclusives: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    consecutive_successes: int = 0
    """Successful measurements in a row (any other measurement but an ignored one resets it)."""
    phase: GatePhase = "running"
    samples: tuple[Sample, ...] = ()
    sprt: SprtState | MixtureState | None = None
    """The sequential (or quantile) judge's evidence so far."""
    no_data_since: float | None = None
    """Start of the window of the first of the ignored no-data measurements in a row."""


def assess(gate: Gate, run: GateRun) -> GatePhase:
    """Argo's assessment of a run from its counters (`assessMetricStatus`)."""
    return _assess(gate, run.failures, run.inconclusives, run.consecutive_errors,
                   run.consecutive_successes, run.count)


def _assess(
    gate: Gate, failures: int, inconclusives: int, consecutive_errors: int, consecutive_successes: int,
    count: int,
) -> GatePhase:
    if gate.failure_limit >= 0 and failures > gate.failure_limit:
        return "failed"
    if inconclusives > gate.inconclusive_limit:
        return "inconclusive"
    if consecutive_errors > gate.consecutive_error_limit:
        return "error"
    wanted = gate.consecutive_success_limit
    if wanted > 0 and consecutive_successes >= wanted:
        return "successful"
    if gate.count is not None and count >= gate.count:
        if wanted > 0:  # the successes in a row never came
            return "inconclusive" if gate.failure_limit >= 0 else "failed"
        return "successful"
    return "running"


def limit_problems(gate: Gate) -> list[tuple[str, str]]:
    """(field, what is wrong) for limits `count` measurements can never reach: Argo's
    `ValidateMetric` (count >= failureLimit + consecutiveSuccessLimit, or >= the success
    limit alone when failing is off, and count >= inconclusiveLimit)."""
    problems: list[tuple[str, str]] = []
    successes = gate.consecutive_success_limit
    if successes and gate.judge == "sequential":
        problems.append(("consecutive_success_limit",
                         "a sequential gate decides on its evidence; consecutive_success_limit does not apply"))
    count, failures = gate.count, gate.failure_limit
    if count is None:
        return problems
    if failures >= 0 and count < failures + successes:
        limits = f"failure_limit + consecutive_success_limit ({failures} + {successes})" if successes else (
            f"failure_limit ({failures})")
        problems.append(("count", f"count ({count}) must be at least {limits}, as Argo requires"))
    elif failures < 0 and count < successes:
        problems.append(("count", f"count ({count}) must be at least consecutive_success_limit ({successes}), "
                                  "as Argo requires"))
    if count < gate.inconclusive_limit:
        problems.append(("count", f"count ({count}) must be at least inconclusive_limit ({gate.inconclusive_limit}), "
                                  "as Argo requires"))
    return problems


def tally(gate: Gate, run: GateRun, phase: MeasurementPhase | None) -> GateRun:
    """The run's counters after one more measurement of `phase` (None: ignored), re-assessed.

    As Argo's `runMeasurements`: an error adds to the error streak and resets the success
    streak but is no measurement (`count` stays); any other phase counts, resets the error
    streak, and only a success extends the success streak."""
    if phase is None:
        return run
    return evolve(run, **_tallied(gate, run, phase))


def _tallied(gate: Gate, run: GateRun, phase: MeasurementPhase) -> dict[str, Any]:
    """`tally`'s changes to the run, its new `phase` included (`record` makes them and its
    own in one copy: an answer is the replay's most common event)."""
    if phase == "error":
        streak = run.consecutive_errors + 1
        return {"errors": run.errors + 1, "consecutive_errors": streak, "consecutive_successes": 0,
                "phase": _assess(gate, run.failures, run.inconclusives, streak, 0, run.count)}
    count = run.count + 1
    successes = run.consecutive_successes + 1 if phase == "successful" else 0
    failures = run.failures + (phase == "failed")
    inconclusives = run.inconclusives + (phase == "inconclusive")
    return {"count": count, "consecutive_errors": 0, "consecutive_successes": successes,
            "successes": run.successes + (phase == "successful"), "failures": failures,
            "inconclusives": inconclusives,
            "phase": _assess(gate, failures, inconclusives, 0, successes, count)}


def _judge(
    gate: Gate,
    run: GateRun,
    value: float | None,
    baseline: float | None,
    error: str | None,
    canary_data: Sequence[float] | None,
    baseline_data: Sequence[float] | None,
) -> tuple[MeasurementPhase | None, float | None, float | None, GateRun]:
    """(phase, value shown, baseline shown, run with judge state) for one measurement.

    A sequential gate's measurement with counts returns the run with its test updated
    and the phase None (`record` then judges by the test); without counts, the phase
    its `no_data` gives and the run as it was."""
    if error is not None or gate.judge == "threshold":
        return classify(gate, value, baseline, error), value, baseline, run
    if gate.judge == "quantile":
        return _quantile(gate, run, value, baseline, canary_data, baseline_data)
    if gate.judge == "sequential":
        if not canary_data or len(canary_data) < 2:
            return classify(gate, None, None, None), None, None, run
        state = run.sprt or sequential_test(gate, gate.compare != "configured")
        errors, requests = int(canary_data[0]), int(canary_data[1])
        shown = errors / requests if requests else None
        if isinstance(state, MixtureState):
            if not baseline_data or len(baseline_data) < 2:
                return classify(gate, None, None, None), None, None, run
            b_errors, b_requests = int(baseline_data[0]), int(baseline_data[1])
            state = ratio_update(state, errors, requests, b_errors, b_requests)
            shown_base = b_errors / b_requests if b_requests else None
            return ("failed" if state.crossed else "successful"), shown, shown_base, evolve(run, sprt=state)
        state = sprt_update(state, errors, requests)
        return SPRT_PHASE[state.decision], shown, None, evolve(run, sprt=state)
    if not canary_data or not baseline_data:
        return classify(gate, None, None, None), None, None, run
    phase, _detail, divergence = judge_samples(gate, canary_data, baseline_data)
    if gate.judge == "drift":
        return phase, divergence, None, run
    mean = sum(canary_data) / len(canary_data)
    base_mean = sum(baseline_data) / len(baseline_data)
    return phase, mean, base_mean, run


MIN_TAIL_BASELINE = 3
"""A quantile gate places the baseline's quantile only when the baseline's window holds at
least this many requests beyond it (300 for a p99): fewer, and the threshold itself is mostly
noise, so the measurement adds no evidence (it passes, as a look that saw nothing wrong).
With 300, the p99's sampling error (about ±10% for a log-normal of sigma 0.5) stays within
a +10% margin on average; `bench/judgement.py` measures the false alarms at 1 request/s."""


def _quantile(
    gate: Gate, run: GateRun, value: float | None, baseline: float | None,
    canary_data: Sequence[float] | None, baseline_data: Sequence[float] | None,
) -> tuple[MeasurementPhase | None, float | None, float | None, GateRun]:
    """The canary's slow requests (above (1 + max_increase) x the baseline's quantile) in an
    anytime-valid test; without counts (a metric source that cannot count them), the
    threshold rule on the two quantiles."""
    if not canary_data or len(canary_data) < 2:
        return classify(gate, value, baseline, None), value, baseline, run
    level = gate.level
    assert level is not None
    base_requests = baseline_data[0] if baseline_data else 0.0
    if base_requests * (1.0 - level) < MIN_TAIL_BASELINE:
        return "successful", value, baseline, run
    state = run.sprt if isinstance(run.sprt, MixtureState) else tail_start(1.0 - level, gate.alpha)
    state = tail_update(state, int(canary_data[0]), int(canary_data[1]))
    return ("failed" if state.crossed else "successful"), value, baseline, evolve(run, sprt=state)


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
    if error is not None or gate.judge == "threshold":  # no test to update (`_judge`'s first case)
        phase: MeasurementPhase | None = classify(gate, value, baseline, error)
        tested = False
    else:
        before = run
        phase, value, baseline, run = _judge(gate, run, value, baseline, error, canary_data, baseline_data)
        tested = run is not before  # a sequential or quantile gate's test took this measurement's counts
    since = run.no_data_since
    if phase is None and not tested:
        # Ignored no data (`no_data: ignore`): bounded by `no_data_timeout`, after which
        # it counts as inconclusive; a window too short for the data never waits forever.
        since = at - gate.interval if since is None else since
        if at - since >= gate.no_data_wait:
            phase, since = "inconclusive", None
        else:
            samples = _kept(run.samples, _sample(at, None, None, None, error), keep)
            return evolve(run, samples=samples, pending=None, no_data_since=since,
                          next_at=_next_at(schedule, run.phase, run.count, run.next_at))
    elif phase is not None:
        since = None
    if value != value:
        value = None  # NaN would make equal histories compare unequal
    if baseline != baseline:
        baseline = None
    samples = _kept(run.samples, _sample(at, value, baseline, phase, error), keep)
    if tested and isinstance(run.sprt, SprtState):
        # Wald's test decides on its own; an anytime-valid test's looks are tallied as Argo's.
        counted = run.count + 1
        final = cast(GatePhase, wald_verdict(run.sprt, counted, gate.count))
        return evolve(run, samples=samples, pending=None, count=counted, consecutive_errors=0,
                      failures=run.failures + (final == "failed"), phase=final, no_data_since=None,
                      next_at=_next_at(schedule, final, counted, run.next_at))
    if phase is None:
        return evolve(run, samples=samples, pending=None, no_data_since=since,
                      next_at=_next_at(schedule, run.phase, run.count, run.next_at))
    changes = _tallied(gate, run, phase)
    changes["samples"] = samples
    changes["pending"] = None
    changes["no_data_since"] = since
    if schedule is not None and changes["phase"] == "running":  # `_next_at`, written out
        changes["next_at"] = schedule(changes.get("count", run.count))
    return evolved(run, changes)


def running_after(
    gate: Gate, run: GateRun, at: float, value: float | None, baseline: float | None, error: str | None,
    canary_data: Sequence[float] | None, next_at: float | None, keep: int = 64,
) -> GateRun | None:
    """`record(gate, run, at, value, baseline, error, keep, canary_data, schedule=...)` in one
    copy, when the run is still running after the answer and `next_at` is its next
    measurement; None when it is not (decided, or the answer is ignored no data) and for
    any answer that changes a judge's state (an error, or a test's counts), for the caller
    to take `record`'s path. Here are an error-free answer to a threshold gate and to a
    quantile gate without counts (`_quantile` then classifies the two quantiles and keeps
    no test): most answers of a long bake (`core.quiet.quiet_measurement`). Their counters,
    sample and schedule are written out instead of through `_tallied`, `_assess` and
    `_next_at`."""
    if error is not None:
        return None
    judge = gate.judge
    if judge != "threshold" and (judge != "quantile" or (canary_data and len(canary_data) >= 2)):
        return None
    phase = classify(gate, value, baseline, None)
    if phase is None or phase == "error":  # ignored, or no data counted as an error
        return None
    count = run.count + 1
    failures = run.failures
    inconclusives = run.inconclusives
    successes = run.successes
    if phase == "successful":
        streak = run.consecutive_successes + 1
        successes += 1
    else:
        streak = 0
        if phase == "failed":
            failures += 1
        elif phase == "inconclusive":
            inconclusives += 1
    if _assess(gate, failures, inconclusives, 0, streak, count) != "running":
        return None
    if value != value:
        value = None  # NaN would make equal histories compare unequal
    if baseline != baseline:
        baseline = None
    samples = _kept(run.samples, _tuple(Sample, (at, value, baseline, phase, None)), keep)
    values = run.__dict__.copy()  # `evolved(run, changes)`, without building the changes' dict
    values["next_at"] = next_at
    values["pending"] = None
    values["count"] = count
    values["successes"] = successes
    values["failures"] = failures
    values["inconclusives"] = inconclusives
    values["consecutive_errors"] = 0
    values["consecutive_successes"] = streak
    values["phase"] = "running"
    values["samples"] = samples
    values["no_data_since"] = None
    new = _new(GateRun)
    _set(new, "__dict__", values)
    return new


def _kept(samples: tuple[Sample, ...], sample: Sample, keep: int) -> tuple[Sample, ...]:
    """The run's window after `sample`: the last `keep` (a full window is sliced before the
    append, so the longer tuple is never built)."""
    if len(samples) >= keep:
        return samples[len(samples) + 1 - keep:] + (sample,)
    return samples + (sample,)


def _sample(
    at: float, value: float | None, baseline: float | None, phase: MeasurementPhase | None, error: str | None
) -> Sample:
    """`Sample(at, value, baseline, phase, error)` without the keyword handling of its
    constructor: every answer makes one."""
    return _tuple(Sample, (at, value, baseline, phase, error))


def _next_at(
    schedule: Callable[[int], float | None] | None, phase: GatePhase, count: int, current: float | None
) -> float | None:
    return schedule(count) if schedule is not None and phase == "running" else current
