"""Scoring a drill from its journal: how fast the machinery (and the people) reacted.

Pure: the scorecard is a function of the drill, the journaled events, the
bad-traffic count the world kept and whether the journal's hash chain holds.
So the same seed gives the same scorecard byte for byte, and a scorecard can
be recomputed later from the journal alone. Times are simulated seconds from
the incident (the first fault injected; the rollout's start when there is none):

- detect: the first measurement that is not successful (failed, inconclusive
  or errored) on an affected service, by a gate that acts (not a dry run), a
  pre-flight check or hook that did not pass, or, when the drill breaks an
  adapter, the first adapter failure;
- decide: the rollout enters rolling_back, held or paused (a gate's verdict or
  an operator's order);
- restore: every affected service is back at 0% and stays there, after at least
  one of them was exposed since the incident (nothing restored is not a restore).
  Affected means the expected rollback set, or when the drill names none, the actual one.

A drill cannot pass vacuously: when one of its faults never fired, every
expectation about what the fault should cause (rollback set, detect, decide,
restore, final phase, requests served while bad) fails and says so. The scorecard
names the measurement that detected the fault and the reason of the decision,
with the arithmetic (`core.verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from core.context import initial_state
from core.drill import SCRIPT_OPERATOR, SERVICE_FAULTS, LoadedDrill
from core.expectations import Expectation, FaultTimes, expectations
from core.events import CheckFinished, CommandFailed, Event, ExposureRead, FaultInjected, Measured, OperatorAction
from core.replay import steps
from core.state import RolloutState
from core.verdict import of_event

DECIDED = frozenset({"rolling_back", "rolled_back", "aborted", "held", "paused"})


@dataclass(frozen=True)
class HumanScore:
    """What a person at the console did after the incident (not the script)."""

    pause_s: float | None
    rollback_s: float | None
    rollback_service: str | None
    rollback_right: bool | None
    """Whether the service rolled back is one the drill expects rolled back."""


@dataclass(frozen=True)
class Scorecard:
    drill: str
    passed: bool
    detect_s: float | None
    decide_s: float | None
    restore_s: float | None
    rolled_back: list[str]
    untouched: list[str]
    collateral: list[str]
    final: str
    bad_requests: int | None
    """None when the environment cannot count them (a live drill)."""
    journal_intact: bool
    faults: list[FaultTimes]
    expectations: list[Expectation]
    human: HumanScore | None = None
    seed: int = 0
    detected_by: str | None = None
    """The detecting measurement and its arithmetic (or the adapter failure)."""
    decided_by: str | None = None
    """Why the rollout rolled back, held or paused, as the rollout said."""

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's object first, then the extensions (never renamed)."""
        return {
            "drill": self.drill,
            "passed": self.passed,
            "detect_s": self.detect_s,
            "restore_s": self.restore_s,
            "rolled_back": self.rolled_back,
            "untouched": self.untouched,
            "expectations": [
                {"name": e.name, "passed": e.passed, "detail": e.detail} for e in self.expectations
            ],
            "decide_s": self.decide_s,
            "final": self.final,
            "bad_requests": self.bad_requests,
            "collateral": self.collateral,
            "journal_intact": self.journal_intact,
            "seed": self.seed,
            "faults": [
                {"index": f.index, "what": f.what, "trigger": f.trigger,
                 "injected_s": f.injected_s, "cleared_s": f.cleared_s}
                for f in self.faults
            ],
            "detected_by": self.detected_by,
            "decided_by": self.decided_by,
            "human": None if self.human is None else {
                "pause_s": self.human.pause_s,
                "rollback_s": self.human.rollback_s,
                "rollback_service": self.human.rollback_service,
                "rollback_right": self.human.rollback_right,
            },
        }


def _secs(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class _Trace:
    """What replaying the journal saw, in the times the scorecard needs."""

    start: float = 0.0
    incident: float | None = None
    faults: dict[int, list[float | None]] = field(default_factory=dict)
    detect: float | None = None
    detected_by: str | None = None
    decide: float | None = None
    decided_by: str | None = None
    moved: set[str] = field(default_factory=set)
    human_pause: float | None = None
    human_rollback: tuple[float, str | None] | None = None


Step = tuple[Event, RolloutState, RolloutState]
"""An event, the state before it and the state after it."""


def _replay(loaded: LoadedDrill, events: Sequence[Event]) -> tuple[RolloutState, list[Step]]:
    state = initial_state(loaded.plan, loaded.graph)
    states = list(steps(state, events))
    return (states[-1][2] if states else state), states


def _affected_for_detection(loaded: LoadedDrill, rolled_back: list[str]) -> set[str] | None:
    """Services whose failing measurement counts as detection; None: any, and adapter failures."""
    faults = [f.inject for f in loaded.drill.faults]
    if any(f.kind not in SERVICE_FAULTS for f in faults):
        return None
    out = set(loaded.drill.expect.rolled_back or ()) | set(rolled_back)
    for inject in faults:
        assert inject.service is not None
        out.add(inject.service)
        out.update(loaded.graph.blast_radius.get(inject.service, ()))
    return out


def _trace(loaded: LoadedDrill, steps: list[Step], rolled_back: list[str]) -> _Trace:
    trace = _Trace()
    detectable = _affected_for_detection(loaded, rolled_back)
    previous = "planned"
    for event, before, state in steps:
        if state.started_at is not None:
            trace.start = state.started_at
        trace.moved.update(n for n, s in state.services.items() if s.moved)
        if isinstance(event, FaultInjected):
            index = int(event.fault.get("index", 0))
            times = trace.faults.setdefault(index, [None, None])
            slot = 1 if event.fault.get("cleared") else 0
            if times[slot] is None:
                times[slot] = event.at
            if slot == 0 and trace.incident is None:
                trace.incident = event.at
        incident = trace.incident if trace.incident is not None else trace.start
        if trace.incident is not None or not loaded.drill.faults:
            if trace.detect is None:
                found = _detection(event, before, detectable)
                if found is not None:
                    trace.detect, trace.detected_by = event.at, found
            phase = state.effective_phase
            if trace.decide is None and phase in DECIDED and phase != previous and event.at >= incident:
                trace.decide = event.at
                trace.decided_by = state.reason or (state.hold.reason if state.hold else "") or None
            if isinstance(event, OperatorAction) and event.operator != SCRIPT_OPERATOR:
                if event.action == "pause" and trace.human_pause is None:
                    trace.human_pause = event.at
                if event.action == "rollback" and trace.human_rollback is None:
                    trace.human_rollback = (event.at, event.service)
        previous = state.effective_phase
    return trace


def _detection(event: Event, before: RolloutState, detectable: set[str] | None) -> str | None:
    """What detected the fault, in words, if this event did: a measurement its gate judged
    not successful (by the gate's own judge), or an adapter failure."""
    if isinstance(event, Measured):
        if detectable is not None and event.service not in detectable:
            return None
        gate = before.ctx.gates.get(event.gate)
        if gate is not None and gate.dry_run:
            return None  # shown, never acted on: the rollout did not detect anything by it
        if event.error is not None:
            return f"{event.service}: gate {event.gate} measurement error: {event.error}"
        found = of_event(before, event)
        if found is None or found.phase in ("successful", "ignored", "continue"):
            return None
        return f"{event.service}: gate {event.gate}: {found.text}"
    if isinstance(event, CheckFinished) and not event.passed:
        if detectable is not None and event.service not in detectable:
            return None
        return f"{event.service or 'rollout'}: {event.check} failed: {event.detail}"
    if detectable is None:
        if isinstance(event, CommandFailed):
            return f"adapter failed: {event.error}"
        if isinstance(event, ExposureRead) and event.error is not None:
            return f"read-back failed: {event.error}"
    return None


def _restored(steps: list[Step], affected: set[str], since: float) -> float | None:
    """When every affected exposure was back at 0% for good, having been above 0% since
    `since` (None if it never was: nothing exposed, nothing restored)."""
    if not affected:
        return None
    restored: float | None = None
    exposed = False
    for event, _before, state in steps:
        if event.at < since:
            continue
        at_zero = all(state.services[n].exposure == 0 for n in affected if n in state.services)
        exposed = exposed or not at_zero
        if not exposed:
            continue
        if at_zero and restored is None:
            restored = event.at
        elif not at_zero:
            restored = None
    return restored


def score(
    loaded: LoadedDrill,
    events: Sequence[Event],
    *,
    bad_requests: float | None,
    journal_intact: bool,
) -> Scorecard:
    """The scorecard of one drill run, from the events its journal holds."""
    drill, expect = loaded.drill, loaded.drill.expect
    final, steps = _replay(loaded, events)
    rolled_back = sorted(n for n, s in final.services.items() if s.phase == "rolled_back")
    trace = _trace(loaded, steps, rolled_back)
    rolled_back = [n for n in rolled_back if n in trace.moved]
    untouched = sorted(
        n for n in trace.moved if final.services[n].phase not in ("rolled_back", "rolling_back")
    )
    incident = trace.incident if trace.incident is not None else trace.start
    affected = set(expect.rolled_back) if expect.rolled_back else set(rolled_back)
    restore = _restored(steps, affected, incident)

    def since(at: float | None) -> float | None:
        return _secs(at - incident) if at is not None else None

    detect_s, decide_s, restore_s = since(trace.detect), since(trace.decide), since(restore)
    if expect.rolled_back is not None:
        collateral = sorted(set(rolled_back) - set(expect.rolled_back))
    else:
        collateral = sorted(set(rolled_back) & set(expect.untouched or ()))
    faults = [
        FaultTimes(
            index=i,
            what=fault.describe(),
            trigger=fault.at.describe(),
            injected_s=_since_start(trace, trace.faults.get(i, [None, None])[0]),
            cleared_s=_since_start(trace, trace.faults.get(i, [None, None])[1]),
        )
        for i, fault in enumerate(drill.faults, start=1)
    ]
    checks = expectations(loaded, final, faults, rolled_back, untouched, trace.moved, collateral,
                           (detect_s, decide_s, restore_s), bad_requests, journal_intact)
    human = None
    if trace.human_pause is not None or trace.human_rollback is not None:
        service = trace.human_rollback[1] if trace.human_rollback else None
        right_set = set(expect.rolled_back) if expect.rolled_back is not None else set(rolled_back)
        human = HumanScore(
            pause_s=since(trace.human_pause),
            rollback_s=since(trace.human_rollback[0]) if trace.human_rollback else None,
            rollback_service=service,
            rollback_right=None if service is None else service in right_set,
        )
    return Scorecard(
        drill=drill.drill,
        passed=all(c.passed for c in checks),
        detect_s=detect_s,
        decide_s=decide_s,
        restore_s=restore_s,
        rolled_back=rolled_back,
        untouched=untouched,
        collateral=collateral,
        final=final.effective_phase,
        bad_requests=None if bad_requests is None else round(bad_requests),
        journal_intact=journal_intact,
        faults=faults,
        expectations=checks,
        human=human,
        seed=drill.seed,
        detected_by=trace.detected_by if detect_s is not None else None,
        decided_by=trace.decided_by if decide_s is not None else None,
    )


def _since_start(trace: _Trace, at: float | None) -> float | None:
    return None if at is None else _secs(at - trace.start)
