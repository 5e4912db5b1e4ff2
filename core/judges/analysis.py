"""Retrospective analysis: would this gate have fired on last week's incident?

``interlock analyze PLAN GATE MEASUREMENTS.json`` replays recorded
measurements, in order, through one gate's judgement and its Argo-style
assessment, and reports the run's phase after every measurement and where
it was decided. After the decision the gate stops measuring, as it would in
a rollout: later measurements are listed as ``skipped``.

The file is a JSON list. Each item is one measurement:

* ``{"value": x}`` (``null`` means no data), optionally with
  ``"baseline": y`` for a ``compare: baseline`` threshold gate; ``x`` may be
  ``NaN``, ``Infinity`` or ``-Infinity`` (bare, as Python's JSON reads them, or
  as Prometheus writes them: ``"NaN"``, ``"+Inf"``, ``"-Inf"``). NaN is no data;
  infinities are judged like any number;
* ``{"error": "message"}`` — the metric query failed;
* ``{"canary": [...], "baseline": [...]}`` — samples of both versions
  (Mann–Whitney judgement), or binned prediction counts (``judge: drift``);
* ``{"errors": e, "requests": n}`` — the canary's counts (``judge: sequential``),
  or ``{"canary": {"errors": e, "requests": n}, "baseline": {...}}`` to
  judge the canary against the baseline;
* ``{"slow": k, "requests": n, "baseline_requests": m}`` (optionally with ``"value"`` and
  ``"baseline"``, the two quantiles) — one look of a ``quantile`` gate: the canary's
  requests slower than (1 + max_increase) x the baseline's quantile. It is judged by the
  same anytime-valid test as in a rollout (``core.gates.record``), and so is a quantile
  gate given only ``{"value": x, "baseline": y}``: as a live gate whose metric source
  cannot count slow requests, by the two quantiles.

Any item may carry ``"at"`` (seconds), echoed in the report. Problems are
reported all at once, as ``FILE:LINE:COL: [i].field: what is wrong``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, cast

from core.events import Measured
from core.gates import GatePhase, GateRun, record, tally
from core.judges import drift
from core.judges.measure import SPRT_PHASE, MeasurementPhase, judge_samples, sequential_test, wald_verdict
from core.judges.measure import classify as classify_value
from core.judges.mixture import MixtureState, ratio_update
from core.judges.sequential import sprt_update
from core.plan import Gate
from core.judges.measurements import Measurement, parse_measurements
from core.problems import InputError, Path, located

@dataclass(frozen=True, slots=True)
class Step:
    index: int
    phase: GatePhase
    """The run's phase after this measurement."""
    verdict: str
    """This measurement's own judgement: successful, failed, inconclusive, error,
    ignored, continue (a sequential test still undecided) or skipped."""
    detail: str = ""
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    phase: GatePhase
    decided_at: int | None
    steps: tuple[Step, ...]
    dry_run: bool = False
    """The gate is a dry run: in a rollout this verdict would be shown, never acted on."""

    def to_json(self) -> dict[str, Any]:
        def step(s: Step) -> dict[str, Any]:
            out: dict[str, Any] = {"index": s.index, "phase": s.phase, "verdict": s.verdict, "detail": s.detail}
            if s.at is not None:
                out["at"] = s.at
            return out

        steps = [step(s) for s in self.steps]
        out = {"phase": self.phase, "decided_at": self.decided_at, "measurements": steps}
        return out | {"dry_run": True} if self.dry_run else out


# -- reading the file ------------------------------------------------------------


_BOTH = '{"canary": [...], "baseline": [...]}'
ACCEPTS = {
    "threshold": ({"value", "error", "samples"}, f'a value ({{"value": x}}) or samples ({_BOTH})'),
    "mann_whitney": ({"error", "samples"}, f"samples of both versions ({_BOTH})"),
    "drift": ({"value", "error", "samples"}, f"histogram counts ({_BOTH}) or a value"),
    "sequential": ({"error", "counts", "arm_counts"}, 'error counts ({"errors": e, "requests": n})'),
    "quantile": ({"value", "error", "tail"},
                 'slow requests ({"slow": k, "requests": n, "baseline_requests": m}) or two quantiles'),
}
"""Judge → (measurement kinds it takes, how to say so)."""


def _judge(gate: Gate) -> str:
    judge = getattr(gate, "judge", "threshold")
    return judge if judge in ACCEPTS else "threshold"


def check(gate: Gate, measurements: list[Measurement]) -> list[tuple[Path, str]]:
    """Measurements this gate cannot judge, as (path, message)."""
    judge = _judge(gate)
    kinds, wanted = ACCEPTS[judge]
    problems: list[tuple[Path, str]] = []
    for i, m in enumerate(measurements):
        if m.kind not in kinds:
            problems.append(((i,), f"a {judge} gate judges {wanted}"))
        elif judge == "drift" and m.kind == "samples":
            try:
                drift.psi(m.baseline, m.canary)
            except ValueError as exc:
                problems.append(((i, "canary"), str(exc)))
    if judge == "sequential":
        two = any(m.kind == "arm_counts" for m in measurements)
        if two and any(m.kind == "counts" for m in measurements):
            problems.append(((), "give either canary counts or canary and baseline counts, not both"))
        try:
            sequential_test(gate, two)
        except ValueError as exc:
            problems.append(((), f"gate: {exc}"))
    return problems


def _judge_one(gate: Gate, m: Measurement) -> tuple[MeasurementPhase | None, str]:
    """One measurement through a per-measurement judge: (its phase, None when ignored; a detail)."""
    if m.kind == "error":
        return "error", m.error or ""
    if m.kind == "samples":
        phase, detail, _ = judge_samples(gate, m.canary, m.baseline)
        return phase, detail
    if m.value is None or m.value != m.value:
        detail = "no data" if m.value is None else "NaN: no data"
    else:
        detail = f"value {m.value:.6g}"
    if m.baseline_value is not None:
        detail += f", baseline {m.baseline_value:.6g}"
    return classify_value(gate, m.value, m.baseline_value, None), detail


def _sequential(gate: Gate, ms: list[Measurement]) -> Replay:
    state = sequential_test(gate, any(m.kind == "arm_counts" for m in ms))
    steps: list[Step] = []
    phase: GatePhase = "running"
    decided_at: int | None = None
    streak = counted = 0
    for i, m in enumerate(ms):
        if phase != "running":
            steps.append(Step(i, phase, "skipped", at=m.at))
            continue
        if m.kind == "error":
            streak += 1
            verdict, detail = "error", m.error or ""
        else:
            streak, counted = 0, counted + 1
            if isinstance(state, MixtureState):
                state = ratio_update(state, m.counts[0], m.counts[1], m.counts[2], m.counts[3])
                verdict = "failed" if state.crossed else "continue"
                detail = f"mixture log-likelihood ratio {state.llr:.3f} (fail at {state.bound:.3f})"
            else:
                state = sprt_update(state, m.counts[0], m.counts[1])
                verdict = SPRT_PHASE[state.decision] or "continue"
                detail = f"log-likelihood ratio {state.llr:.3f} (pass at {state.lower:.3f}, fail at {state.upper:.3f})"
        if state.decision == "continue" and streak > gate.consecutive_error_limit:
            phase = "error"
        elif isinstance(state, MixtureState):
            # An anytime-valid test that never crossed saw nothing wrong in `count` looks
            # (Argo: successful).
            if state.decision == "accept_h1":
                phase = "failed"
            elif state.decision == "accept_h0" or (gate.count is not None and counted >= gate.count):
                phase = "successful"
        else:  # the same verdict a live gate reaches (`core.gates.record`)
            phase = cast(GatePhase, wald_verdict(state, counted, gate.count))
        if phase != "running" and decided_at is None:
            decided_at = i
        steps.append(Step(i, phase, verdict, detail, m.at))
    return Replay(phase, decided_at, tuple(steps), gate.dry_run)


def replay(gate: Gate, measurements: list[Measurement]) -> Replay:
    """The gate's run measurement by measurement. Raises ValueError on a measurement it cannot judge."""
    problems = check(gate, measurements)
    if problems:
        path, message = problems[0]
        raise ValueError(f"{path}: {message}")
    if _judge(gate) == "sequential":
        return _sequential(gate, measurements)
    if _judge(gate) == "quantile":
        return _live(gate, measurements)

    def look(run: GateRun, _i: int, m: Measurement) -> tuple[GateRun, str, str]:
        phase, detail = _judge_one(gate, m)
        return tally(gate, run, phase), phase or "ignored", detail

    return _walk(gate, measurements, look)


Look = Callable[[GateRun, int, Measurement], "tuple[GateRun, str, str]"]
"""One measurement through a gate run: (the run after it, its verdict, the detail shown)."""


def _walk(gate: Gate, ms: list[Measurement], look: Look) -> Replay:
    """The run measurement by measurement; after the decision, later ones are skipped."""
    run = GateRun(service="", gate="", next_at=None)
    steps: list[Step] = []
    decided_at: int | None = None
    for i, m in enumerate(ms):
        if run.phase != "running":
            steps.append(Step(i, run.phase, "skipped", at=m.at))
            continue
        run, verdict, detail = look(run, i, m)
        if run.phase != "running" and decided_at is None:
            decided_at = i
        steps.append(Step(i, run.phase, verdict, detail, m.at))
    return Replay(run.phase, decided_at, tuple(steps), gate.dry_run)


def _live(gate: Gate, ms: list[Measurement]) -> Replay:
    """Each measurement through the live gate's own rules (`core.gates.record`) and its
    arithmetic (`core.verdict.explain`), as a rollout's `Measured` events would be."""
    from core.verdict import explain  # the verdict module reads gate runs; it imports no judge replay

    def look(run: GateRun, i: int, m: Measurement) -> tuple[GateRun, str, str]:
        at = m.at if m.at is not None else i * gate.interval
        canary = base = None
        if m.kind == "tail":
            limit = math.nan if m.baseline_value is None else m.baseline_value * (1.0 + (gate.max_increase or 0.0))
            canary, base = [float(m.counts[0]), float(m.counts[1]), limit], [float(m.counts[2])]
        event = Measured(at=at, value=m.value, baseline=m.baseline_value, error=m.error,
                         canary_data=canary, baseline_data=base)
        verdict = explain(gate, run, event)
        after = record(gate, run, at, m.value, m.baseline_value, m.error, canary_data=canary, baseline_data=base)
        return after, verdict.phase, verdict.text

    return _walk(gate, ms, look)


def analyze(gate: Gate, text: str, *, file: str = "<measurements>") -> Replay:
    """Parse, check against the gate, replay. Bad input raises InputError (all problems at once)."""
    measurements, source = parse_measurements(text, file=file)
    problems = check(gate, measurements)
    if problems:
        raise InputError([located(source, p, msg) for p, msg in problems])
    return replay(gate, measurements)


def render_text(replay_: Replay) -> str:
    """A plain table for the terminal: one line per measurement, then the verdict."""
    lines = [f"{'#':>4}  {'verdict':<12} {'run phase':<12} detail"]
    for s in replay_.steps:
        lines.append(f"{s.index:>4}  {s.verdict:<12} {s.phase:<12} {s.detail}".rstrip())
    where = "never decided" if replay_.decided_at is None else f"decided at measurement {replay_.decided_at}"
    dry = " (dry run: shown, never acted on)" if replay_.dry_run else ""
    lines.append(f"gate {replay_.phase}{dry}: {where}")
    return "\n".join(lines)
