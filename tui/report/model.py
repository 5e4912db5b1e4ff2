"""A finished (or running) rollout as a post-deployment review reads it, from its journal.

Everything here comes from folding the run's records through `core.folding`, the one fold
`resume`, `watch` and `log` use: the report's timeline, stages, measurements, decisions,
cascade and durations are what the engine computed when it wrote the journal, never a
second derivation. Measurements carry the verdict the reducer reached on them
(`core.verdict_of_event`) and the limits their gate judged them by, so a chart can draw
canary, baseline and threshold side by side. `tui.report.markdown` and `tui.report.html`
only lay this out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core import (
    Abandoned,
    Adopted,
    Gate,
    Measured,
    OperatorAction,
    Record,
    RolloutState,
    RunInfo,
    Scorecard,
    folding,
    verdict_of_event,
)
from tui import printer

AUTOMATIC = "interlock"
"""Who made a decision no person asked for (a gate's verdict, a stage passing, a hold)."""

ENDS_A_STAGE = {"promoted": "passed", "rolling_back": "rolled back", "rolled_back": "rolled back"}
"""A group phase that ends its current stage, and what the stage's outcome is then."""

DECIDING = frozenset({"paused", "held", "rolling_back", "aborted"})
"""Rollout phases whose start is a decision worth a row of its own."""


@dataclass(frozen=True)
class Point:
    """One measurement, with the verdict the gate reached on it and the limits it judged by."""

    at: float
    value: float | None
    baseline: float | None
    phase: str
    """successful, failed, inconclusive, error, ignored or continue (`core.verdict`)."""
    text: str
    limits: tuple[float, ...] = ()


@dataclass
class GateSeries:
    """One gate's measurements at one stage of one service."""

    gate: str
    metric: str
    threshold: str
    """The rule in words (`≤ baseline +10%`, `≤ 0.01`)."""
    points: list[Point] = field(default_factory=list)
    outcome: str = "running"
    """The gate's phase when the stage ended."""


@dataclass
class StageRun:
    """One stage of one service: when it began and ended, how it ended, its gates."""

    index: int
    """0-based index into the group's stages."""
    count: int
    """How many stages the group has."""
    percent: float
    started: float
    ended: float | None = None
    outcome: str = "running"
    """passed, rolled back, aborted or running (the run ended on it)."""
    gates: dict[str, GateSeries] = field(default_factory=dict)


@dataclass
class ServiceReport:
    name: str
    versions: tuple[str, str]
    group: tuple[str, ...]
    stages: list[StageRun] = field(default_factory=list)
    phase: str = "waiting"
    exposure: float = 0.0
    first_exposed: float | None = None
    settled: float | None = None
    """When it was promoted or back at 0% after a rollback."""


@dataclass(frozen=True)
class Decision:
    at: float
    who: str
    what: str
    why: str


@dataclass(frozen=True)
class CascadeStep:
    """One service taken back by a rollback: from what exposure, when it began and ended."""

    service: str
    from_percent: float
    began: float
    ended: float | None


@dataclass
class Report:
    info: RunInfo
    state: RolloutState
    started: float
    ended: float
    timeline: list[tuple[float, str]] = field(default_factory=list)
    services: dict[str, ServiceReport] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    cascade: list[CascadeStep] = field(default_factory=list)
    frozen_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent paused and held."""
    scorecard: Scorecard | None = None
    drill_context: str = ""
    notes: list[str] = field(default_factory=list)
    """Lines for the reader under the outcome (a drill run reported without its drill file)."""

    @property
    def phase(self) -> str:
        return self.state.effective_phase

    @property
    def duration(self) -> float:
        return max(0.0, self.ended - self.started)


def limits(gate: Gate, baseline: float | None) -> tuple[float, ...]:
    """The values a measurement must stay within: `max`/`min`, or the baseline's allowed
    change for a `compare: baseline` gate (as the console's chart draws them)."""
    if gate.compare == "baseline":
        if baseline is None:
            return ()
        out = []
        if gate.max_increase is not None:
            out.append(baseline * (1 + gate.max_increase))
        if gate.max_decrease is not None:
            out.append(baseline * (1 - gate.max_decrease))
        return tuple(out)
    return tuple(bound for bound in (gate.max, gate.min) if bound is not None)


def build(info: RunInfo, initial: RolloutState, records: Iterable[Record]) -> Report:
    """Fold `records` from `initial` (the run's plan, compiled) into a report."""
    builder = _Builder(info, initial)
    before = initial
    for record, after in folding(initial, records):
        builder.take(record, before, after)
        before = after
    return builder.finish(before)


class _Builder:
    def __init__(self, info: RunInfo, initial: RolloutState) -> None:
        ctx = initial.ctx
        self.report = Report(info=info, state=initial, started=0.0, ended=0.0)
        for name in printer.rollout_order(initial):
            self.report.services[name] = ServiceReport(
                name=name, versions=ctx.versions[name], group=ctx.graph.group(name))
        self.frozen_since: tuple[str, float] | None = None
        self.cascade_index: dict[str, int] = {}

    def take(self, record: Record, before: RolloutState, after: RolloutState) -> None:
        event, at = record.event, record.event.at
        report = self.report
        if after.started_at is not None and before.started_at is None:
            report.started = after.started_at
        line = None if isinstance(event, Measured) else printer.describe(event, after, before)
        if line is not None:
            report.timeline.append((at, line))
        change = printer.phase_line(before, after)
        if change is not None:
            report.timeline.append((after.at, f"▸ {change}"))
        if isinstance(event, Measured):
            self._measured(event, before, after)
        elif isinstance(event, (OperatorAction, Adopted, Abandoned)):
            self._operator(event, record.operator)
        if after.groups is not before.groups:
            self._stages(before, after, at)
        if after.services is not before.services:
            self._services(before, after, at)
        self._rollout(before, after, event, at)

    # -- pieces --------------------------------------------------------------

    def _measured(self, event: Measured, before: RolloutState, after: RolloutState) -> None:
        gate = before.ctx.gates.get(event.gate)
        service = self.report.services.get(event.service)
        if gate is None or service is None or not service.stages:
            return
        stage = service.stages[-1]
        verdict = verdict_of_event(before, event)
        value = event.value
        if value is None and verdict is not None and isinstance(verdict.data.get("value"), (int, float)):
            value = float(verdict.data["value"])
        baseline = event.baseline
        if baseline is None and verdict is not None and isinstance(verdict.data.get("baseline"), (int, float)):
            baseline = float(verdict.data["baseline"])
        series = stage.gates.get(event.gate)
        if series is None:
            series = stage.gates[event.gate] = GateSeries(event.gate, gate.metric, printer.threshold_text(gate))
        phase = verdict.phase if verdict is not None else ("error" if event.error else "ignored")
        text = verdict.text if verdict is not None else (event.error or "no data")
        series.points.append(Point(event.at, value, baseline, phase, text, limits(gate, baseline)))
        runs = after.groups[after.group_of(event.service)].gates
        run = next((r for r in runs if r.service == event.service and r.gate == event.gate), None)
        if run is not None:
            series.outcome = run.phase
        elif phase in ("failed", "inconclusive", "error"):
            series.outcome = phase  # this measurement ended its stage: it decided the gate

    def _operator(self, event: OperatorAction | Adopted | Abandoned, recorded_by: str) -> None:
        who = event.operator or recorded_by or "operator"
        if isinstance(event, OperatorAction):
            what = event.action + (f" {event.service}" if event.service else "")
            why = event.reason or "—"
        elif isinstance(event, Adopted):
            found = ", ".join(f"{k.replace(':', ' ', 1)} {v:g}%" for k, v in sorted(event.targets.items()))
            what, why = f"adopt the world as found ({found})", event.reason or "—"
        else:
            what, why = "abandon the run", event.reason or "—"
        self.report.decisions.append(Decision(event.at, who, what, why))

    def _stages(self, before: RolloutState, after: RolloutState, at: float) -> None:
        ctx = after.ctx
        for index, (old, new) in enumerate(zip(before.groups, after.groups)):
            if old is new or (old.stage == new.stage and old.phase == new.phase):
                continue
            spec = ctx.groups[index]
            names = " + ".join(spec.services)
            if new.stage != old.stage and old.stage >= 0:
                passed = "passed" if new.stage > old.stage else "ended"
                gates = self._end_stage(spec.services, passed, at)
                who = "approved by an operator" if old.approved else AUTOMATIC
                self.report.decisions.append(Decision(
                    at, who, f"{names}: {spec.stages[old.stage].percent:g}% → {spec.stages[new.stage].percent:g}%",
                    f"stage passed: bake over, {gates}"))
            if new.stage != old.stage and new.stage >= 0:
                for name in spec.services:
                    self.report.services[name].stages.append(StageRun(
                        index=new.stage, count=len(spec.stages), percent=spec.stages[new.stage].percent, started=at))
            if new.phase != old.phase and new.phase in ENDS_A_STAGE:
                gates = self._end_stage(spec.services, ENDS_A_STAGE[new.phase], at)
                if new.phase == "promoted":
                    self.report.decisions.append(Decision(
                        at, AUTOMATIC, f"{names}: promoted at 100%", f"last stage passed: bake over, {gates}"))

    def _end_stage(self, names: tuple[str, ...], outcome: str, at: float) -> str:
        """End the current stage of `names` with `outcome`; returns its gates' outcomes in words.
        A gate still running when its stage passed passed with it (no bound crossed by the
        end of the bake); one still running when it was rolled back was not decided."""
        words = []
        for name in names:
            stages = self.report.services[name].stages
            if not stages or stages[-1].ended is not None:
                continue
            stage = stages[-1]
            stage.ended, stage.outcome = at, outcome
            for series in stage.gates.values():
                if series.outcome == "running":
                    series.outcome = "passed" if outcome == "passed" else "not decided"
                who = f"{name} " if len(names) > 1 else ""
                words.append(f"{who}{series.gate} {printer.words(series.outcome)}")
        return ", ".join(words) or "no gates"

    def _services(self, before: RolloutState, after: RolloutState, at: float) -> None:
        for name, service in self.report.services.items():
            old, new = before.services[name], after.services[name]
            if old is new:
                continue
            if service.first_exposed is None and new.exposure > 0:
                service.first_exposed = at
            if new.phase != old.phase:
                if new.phase == "rolling_back":
                    self.cascade_index[name] = len(self.report.cascade)
                    self.report.cascade.append(CascadeStep(name, max(old.exposure, old.target), at, None))
                if new.phase in ("rolled_back", "promoted"):
                    service.settled = at
                if new.phase == "rolled_back" and name in self.cascade_index:
                    i = self.cascade_index[name]
                    step = self.report.cascade[i]
                    self.report.cascade[i] = CascadeStep(step.service, step.from_percent, step.began, at)

    def _rollout(self, before: RolloutState, after: RolloutState, event: object, at: float) -> None:
        old, new = before.effective_phase, after.effective_phase
        if old == new:
            return
        if self.frozen_since is not None:
            phase, since = self.frozen_since
            self.report.frozen_s[phase] = self.report.frozen_s.get(phase, 0.0) + at - since
            self.frozen_since = None
        if new in ("paused", "held"):
            self.frozen_since = (new, at)
        if new in DECIDING and not isinstance(event, OperatorAction):
            why = after.reason or (after.hold.reason if after.hold is not None else "") or "—"
            self.report.decisions.append(Decision(at, AUTOMATIC, f"rollout {printer.words(new)}", why))

    def finish(self, state: RolloutState) -> Report:
        report = self.report
        report.state = state
        report.ended = state.at
        if self.frozen_since is not None:
            phase, since = self.frozen_since
            report.frozen_s[phase] = report.frozen_s.get(phase, 0.0) + state.at - since
        for name, service in report.services.items():
            service.phase = state.services[name].phase
            service.exposure = state.services[name].exposure
        return report
