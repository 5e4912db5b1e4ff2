"""Hypothesis against the reducer: random small plans, random plausible event
sequences, and DESIGN.md's invariants checked after every single event.

The in-test world behaves like the engine with adversarial adapters: it only
answers commands that were actually dispatched (per service, exposure changes
complete in dispatch order, as the engine's per-service lock guarantees), it
may fail any exposure change, error or withhold any measurement, change a
flag behind the console's back, and an operator presses random keys at random
moments. After the random part, a patient operator (approve, resume, answer
well) must always bring the rollout to an end.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.actions import ALL_VERBS, available
from core.commands import Command, Measure, ReadExposure, SetExposure, SetMirror
from core.context import initial_state
from core.coverage import measurement_gaps
from core.events import (
    CommandFailed,
    Event,
    ExposureApplied,
    ExposureRead,
    Measured,
    MeasurementGap,
    MirrorApplied,
    OperatorAction,
    Resumed,
    RolloutStarted,
    Tick,
    event_from_dict,
)
from core.order import compile_plan
from core.plan import Plan
from core.problems import InputError
from core.reducer import reduce, reduce_fully
from core.rollback import rollback_cascade
from core.schedule import next_deadline
from core.shadow import duration as shadow_duration
from core.state import TERMINAL, RolloutState, exposure_keys

FROZEN = ("paused", "held")

# -- plans ---------------------------------------------------------------------


@st.composite
def gate_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "metric": "m",
        "interval": draw(st.sampled_from([10, 30])),
        "initial_delay": draw(st.sampled_from([0, 5])),
        "failure_limit": draw(st.sampled_from([0, 1, -1])),
        "inconclusive_limit": draw(st.sampled_from([0, 1])),
        "consecutive_error_limit": draw(st.sampled_from([0, 1, 4])),
        "no_data": draw(st.sampled_from(["fail", "inconclusive", "error", "ignore"])),
        "consecutive_success_limit": draw(st.sampled_from([0, 0, 2])),
        "dry_run": draw(st.sampled_from([False, False, True])),
    }
    count = draw(st.sampled_from([None, 1, 2, 3]))
    if count is not None:
        spec["count"] = count
        if count < max(spec["failure_limit"], 0) + spec["consecutive_success_limit"]:
            spec["consecutive_success_limit"] = 0  # a streak the count cannot reach: validate refuses it
    if draw(st.booleans()):
        spec.update(compare="baseline", max_increase="10%")
    else:
        spec["max"] = 1.0
        if draw(st.booleans()):
            spec["pass_max"] = 0.5
    return spec


@st.composite
def plan_documents(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 5))
    names = [f"s{i}" for i in range(n)]
    static = {name for name in names[1:] if draw(st.integers(0, 5)) == 0}
    services: dict[str, Any] = {}
    for i, name in enumerate(names):
        deps = [names[j] for j in range(i) if draw(st.integers(0, 2)) == 0]
        service: dict[str, Any] = {"depends_on": deps, "from": {"version": "1"}}
        if name not in static:
            service["to"] = {"version": "2"}
        services[name] = service
    # Contracts: every moving producer → moving consumer edge gets its own contract,
    # the target versions always read each other; the old sides vary.
    for name, service in services.items():
        if "to" not in service:
            continue
        for dep in service["depends_on"]:
            if "to" not in services[dep] or draw(st.booleans()):
                continue
            contract = f"{dep}_{name}"
            services[dep]["from"].setdefault("produces", {})[contract] = 1
            services[dep]["to"].setdefault("produces", {})[contract] = 2
            service["from"].setdefault("consumes", {})[contract] = draw(st.sampled_from([[1], [1, 2]]))
            service["to"].setdefault("consumes", {})[contract] = draw(st.sampled_from([[2], [1, 2]]))
    pool = {f"g{i}": draw(gate_specs()) for i in range(draw(st.integers(0, 3)))}
    for service in services.values():
        if "to" in service and pool and draw(st.booleans()):
            service["gates"] = draw(st.lists(st.sampled_from(sorted(pool)), max_size=2, unique=True))
        if draw(st.booleans()):
            service["bake"] = draw(st.sampled_from([0, 10, 40]))
    if draw(st.integers(0, 3)) == 0:  # shadow stages: every moving service (a lockstep group shadows together)
        for service in services.values():
            if "to" in service:
                gates = draw(st.lists(st.sampled_from(sorted(pool)), max_size=2, unique=True)) if pool else []
                service["shadow"] = {"duration": draw(st.sampled_from([10, 40])), "side_effect_free": True,
                                     "gates": gates}
    percents = sorted(draw(st.sets(st.sampled_from([1, 5, 10, 25, 50]), max_size=3))) + [100]
    stages: list[Any] = [
        {"percent": p, "approval": True} if draw(st.integers(0, 6)) == 0 else p for p in percents
    ]
    return {
        "rollout": "prop",
        "policy": {
            "max_parallel": draw(st.integers(1, 3)),
            "on_failure": draw(st.sampled_from(["rollback_self", "rollback_dependents", "pause"])),
            "approval": draw(st.sampled_from(["none", "none", "each_wave", "each_stage"])),
        },
        "defaults": {
            "stages": stages,
            "bake": draw(st.sampled_from([0, 20, 60])),
            "gates": sorted(pool)[:1] if pool and draw(st.booleans()) else [],
        },
        "gates": pool,
        "services": services,
    }


def compiled(document: dict[str, Any]) -> RolloutState | None:
    plan = Plan.model_validate(document)
    try:
        return initial_state(plan, compile_plan(plan))
    except InputError:
        return None


# -- the world and the invariants ------------------------------------------------


def raising(before: RolloutState, cmds: list[Command]) -> list[SetExposure]:
    return [
        c for c in cmds
        if isinstance(c, SetExposure) and c.percent > before.services[c.service].target + 1e-9
    ]


@dataclass
class Rollback:
    at_start: dict[str, float]
    services: set[str] = field(default_factory=set)


@dataclass
class World:
    """Adapters and an operator, both adversarial but never implausible."""

    state: RolloutState
    initial: RolloutState
    now: float = 0.0
    events: list[Event] = field(default_factory=list)
    outputs: list[list[Command]] = field(default_factory=list)
    running: list[Command] = field(default_factory=list)
    """Dispatched and not yet answered, in dispatch order."""
    answered: set[int] = field(default_factory=set)
    superseded: set[int] = field(default_factory=set)
    emitted: set[int] = field(default_factory=set)
    actual: dict[str, float] = field(default_factory=dict)
    tampered: bool = False
    rollback: Rollback | None = None
    gaps: dict[int, tuple[float, int]] = field(default_factory=dict)
    """Group → (time, stage) of its last measurement gap."""
    measured: dict[tuple[str, str], float] = field(default_factory=dict)
    """(service, gate) → when a measurement of it last counted."""

    # -- feeding ---------------------------------------------------------

    def feed(self, event: Event) -> list[Command]:
        before = self.state
        after, cmds = reduce(before, event)
        # The shortcuts of core.quiet must agree with the full path on every event.
        full_state, full_cmds = reduce_fully(before, event)
        # ...and so must the live groups (kept step by step, recomputed in full) and
        # everything read from them.
        assert repr(after) == repr(full_state) and cmds == full_cmds, event
        for readback in (False, True):
            assert next_deadline(after, readback) == next_deadline(after, readback, full=True), event
        self.events.append(event)
        self.outputs.append(cmds)
        self.state = after
        if isinstance(event, CommandFailed):
            self.running = [c for c in self.running if c.cmd_id != event.cmd_id]
            failed = before.inflight.get(event.cmd_id)
            if isinstance(failed, (SetExposure, SetMirror)) and any(
                type(c) is type(failed) and c.service == failed.service and c.cmd_id > failed.cmd_id  # type: ignore[attr-defined]
                for c in before.inflight.values()
            ):
                self.superseded.add(failed.cmd_id)
        elif isinstance(event, (ExposureApplied, Measured, ExposureRead, MirrorApplied)) and event.cmd_id:
            self.answered.add(event.cmd_id)
            if isinstance(event, Measured) and event.cmd_id in before.inflight:
                self.measured[event.service, event.gate] = event.at
        elif isinstance(event, MeasurementGap):
            # The measurement still out is stale: dropped, never retried.
            self.superseded |= set(before.inflight) - set(after.inflight)
        for cmd in cmds:
            if isinstance(cmd, (SetExposure, SetMirror)):
                # A newer absolute setting replaces a failed one waiting for its retry.
                failed = before.hold.failed if before.hold is not None else ()
                for old in list(before.inflight.values()):
                    if (type(old) is type(cmd) and old.service == cmd.service  # type: ignore[attr-defined]
                            and old.cmd_id != cmd.cmd_id and old.cmd_id in failed):
                        self.superseded.add(old.cmd_id)
            self.running.append(cmd)
            self.emitted.add(cmd.cmd_id)
        self.check(before, event, after, cmds)
        return cmds

    def check(self, before: RolloutState, event: Event, after: RolloutState, cmds: list[Command]) -> None:
        stepped = before.stepping or (isinstance(event, OperatorAction) and event.action == "step")
        up = raising(before, cmds)
        # Nothing rises in a step that leaves the rollout paused or held (bar the stepped transition).
        if after.effective_phase in FROZEN and not stepped:
            assert not up, (event, up, before.effective_phase, after.effective_phase)
        if before.effective_phase in FROZEN and after.effective_phase in FROZEN and not stepped:
            for name, svc in after.services.items():
                assert svc.target <= before.services[name].target + 1e-9, (event, name)
        # A rollback only ever lowers; a finished rollout raises nothing.
        if after.phase == "rolling_back" or before.phase in TERMINAL:
            assert not up, (event, up)
        # A shadowing group is in front of nobody: its copies are answered, not seen.
        for index, group in enumerate(after.groups):
            if group.phase == "shadowing":
                for name in after.ctx.groups[index].services:
                    assert after.services[name].target == 0 and after.services[name].exposure == 0, (event, name)
        # Nothing above 0% before every group it follows is promoted.
        for name, svc in after.services.items():
            if svc.target > 0 or svc.exposure > 0:
                group = after.group_of(name)
                preds = after.ctx.groups[group].preds
                assert all(after.groups[p].phase == "promoted" for p in preds), (event, name)
        # A tick consumes every deadline it reaches (else a clock would spin on it).
        if isinstance(event, Tick):
            deadline = next_deadline(after)
            assert deadline is None or deadline > event.at, (deadline, after.hold, after.groups)
        # Dependents first: a group starts rolling back only once everything after it is down.
        for index, group in enumerate(after.groups):
            if group.phase == "rolling_back" and before.groups[index].phase != "rolling_back":
                for later in after.ctx.groups[index].after:
                    for name in after.ctx.groups[later].services:
                        assert after.services[name].target == 0.0, (event, index, name)
        # An action that does not apply changes nothing.
        if isinstance(event, OperatorAction) and event.action not in available(before, event.service):
            assert not cmds and after == replace(before, at=after.at), event
        # In flight: exactly the commands without an outcome (or replaced before a retry).
        expected = self.emitted - self.answered - self.superseded
        assert set(after.inflight) == expected, (event, sorted(after.inflight), sorted(expected))
        self.check_rollback(before, after)
        self.check_coverage(before, event, after, up)

    def check_coverage(self, before: RolloutState, event: Event, after: RolloutState, up: list[SetExposure]) -> None:
        """After a gap, a group's exposure rises only once a whole bake passed since, and
        every gate of its stage was measured afresh."""
        if isinstance(event, MeasurementGap):
            index = after.group_of(event.service)
            shadowing = before.groups[index].phase == "shadowing" and before.groups[index].bake_until is not None
            if before.phase == "running" and (before.groups[index].phase in ("baking", "analyzing") or shadowing):
                assert after.groups[index].phase in ("baking", "analyzing", "shadowing"), event
                assert not [c for c in up if after.group_of(c.service) == index], event
                self.gaps[index] = (event.at, after.groups[index].stage)
        if isinstance(event, OperatorAction) and event.action in ("promote", "promote_full"):
            return  # break-glass: a person ends the bake and takes the next stage, measured or not
        for cmd in up:
            index = after.group_of(cmd.service)
            if index not in self.gaps or before.groups[index].stage != self.gaps[index][1]:
                continue
            gap_at, stage = self.gaps[index]
            bake = shadow_duration(after.ctx, index) if stage < 0 else after.ctx.groups[index].stages[stage].bake or 0.0
            assert event.at >= gap_at + bake, (event, gap_at, bake)
            for run in before.groups[index].gates:
                assert self.measured.get((run.service, run.gate), -math.inf) >= gap_at, (event, run)

    def check_rollback(self, before: RolloutState, after: RolloutState) -> None:
        if after.phase == "rolling_back" and before.phase != "rolling_back":
            self.rollback = Rollback({n: s.target for n, s in before.services.items()})
        if self.rollback is not None:
            for index in after.rollback_queue:
                self.rollback.services.update(after.ctx.groups[index].services)
        if before.phase == "rolling_back" and after.phase != "rolling_back":
            assert after.phase in ("rolled_back", "aborted"), after.phase
            assert self.rollback is not None
            for name, svc in after.services.items():
                if name in self.rollback.services:
                    assert (svc.exposure, svc.target, svc.phase) == (0.0, 0.0, "rolled_back"), name
                    assert self.tampered or self.actual.get(name, 0.0) == 0.0, name
                else:
                    assert svc.target == self.rollback.at_start[name], name
            self.rollback = None

    # -- plausible moves ---------------------------------------------------

    def first_per_service(self) -> list[SetExposure]:
        seen: set[str] = set()
        out = []
        for cmd in self.running:
            if isinstance(cmd, SetExposure) and cmd.service not in seen:
                seen.add(cmd.service)
                out.append(cmd)
        return out

    def complete_mirror(self, cmd: SetMirror, fail: bool) -> None:
        self.running.remove(cmd)
        if fail:
            self.feed(CommandFailed(at=self.now, cmd_id=cmd.cmd_id, error="mirror down"))
        else:
            self.feed(MirrorApplied(at=self.now, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent))

    def complete_exposure(self, cmd: SetExposure, fail: bool) -> None:
        self.running.remove(cmd)
        if fail:
            self.feed(CommandFailed(at=self.now, cmd_id=cmd.cmd_id, error="adapter down"))
        else:
            self.actual[cmd.service] = cmd.percent
            self.feed(ExposureApplied(at=self.now, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent))

    def engine_gaps(self) -> None:
        """What the engine journals before each batch: the bakes nobody measured."""
        for gap in measurement_gaps(self.state, self.now):
            self.feed(gap)

    def answer_measure(self, cmd: Measure, kind: str) -> None:
        self.running.remove(cmd)
        self.engine_gaps()
        value: float | None
        baseline = 1.0 if cmd.with_baseline else None
        error = None
        if kind == "good":
            value = 1.0 if cmd.with_baseline else 0.0
        elif kind == "mid":
            value = 1.05 if cmd.with_baseline else 0.7
        elif kind == "bad":
            value = 5.0
        elif kind == "nan":
            value = math.nan
        elif kind == "none":
            value = None
        else:
            value, baseline, error = None, None, "metrics down"
        self.feed(Measured(at=self.now, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate,
                           value=value, baseline=baseline, error=error))

    def answer_read(self, cmd: ReadExposure, error: bool, per_target: bool = False) -> None:
        self.running.remove(cmd)
        if error:
            self.feed(ExposureRead(at=self.now, cmd_id=cmd.cmd_id, error="cannot read"))
        else:
            exposures = {name: self.actual.get(name, 0.0) for name in cmd.services}
            # As the engine reads: each flag and route on its own (the reducer's fast
            # "nothing differs" pass, `core.readback._agrees`, then meets the full one).
            targets = {key: exposures[name] for name in cmd.services
                       for key in exposure_keys(self.state.ctx.exposure[name])} if per_target else {}
            self.feed(ExposureRead(at=self.now, cmd_id=cmd.cmd_id, exposures=exposures, targets=targets))

    def tick(self, jump: float | None) -> None:
        deadline = next_deadline(self.state)
        if jump is None and deadline is not None:
            self.now = max(self.now, deadline)
        else:
            self.now += jump or 1.0
        self.engine_gaps()
        self.feed(Tick(at=self.now))

    def move(self, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(
            ["exposure", "exposure", "measure", "measure", "read", "tick", "tick", "operator", "tamper", "restart"]
        ))
        if kind == "exposure":
            mirrors = [c for c in self.running if isinstance(c, SetMirror)]
            options: list[Command] = [*self.first_per_service(), *mirrors[:1]]
            if options:
                cmd = data.draw(st.sampled_from(options))
                fail = data.draw(st.integers(0, 4)) == 0
                if isinstance(cmd, SetMirror):
                    self.complete_mirror(cmd, fail)
                else:
                    assert isinstance(cmd, SetExposure)
                    self.complete_exposure(cmd, fail)
        elif kind == "measure":
            options = [c for c in self.running if isinstance(c, Measure)]
            if options:
                cmd = data.draw(st.sampled_from(options))
                answer = data.draw(st.sampled_from(["good"] * 6 + ["mid", "bad", "nan", "none", "err"]))
                self.answer_measure(cmd, answer)
        elif kind == "read":
            options = [c for c in self.running if isinstance(c, ReadExposure)]
            if options:
                self.answer_read(data.draw(st.sampled_from(options)), error=data.draw(st.integers(0, 3)) == 0,
                                 per_target=data.draw(st.booleans()))
        elif kind == "tick":
            self.tick(data.draw(st.sampled_from([None, None, 1.0, 7.0, 100.0, 500.0])))
        elif kind == "operator":
            verb = data.draw(st.sampled_from(ALL_VERBS))
            service = data.draw(st.sampled_from([None, *self.state.ctx.graph.moving]))
            self.feed(OperatorAction(at=self.now, action=verb, service=service, operator="prop"))
        elif kind == "restart":
            # The process died: whatever was running is lost; the new one re-dispatches
            # everything in flight, in order, after reading the adapters back.
            self.running = sorted(self.state.inflight.values(), key=lambda c: c.cmd_id)
            self.feed(Resumed(at=self.now, note="restart"))
            exposures = {name: self.actual.get(name, 0.0) for name in self.state.ctx.graph.moving}
            if data.draw(st.integers(0, 2)) == 0:
                self.feed(ExposureRead(at=self.now, cmd_id=0, error="adapters unreachable"))
            else:
                self.feed(ExposureRead(at=self.now, cmd_id=0, exposures=exposures))
        elif kind == "tamper" and self.actual:
            name = data.draw(st.sampled_from(sorted(self.actual)))
            self.actual[name] = data.draw(st.sampled_from([0.0, 3.0, 100.0]))
            self.tampered = True

    # -- a patient operator ----------------------------------------------------

    def patient_step(self) -> bool:
        """One move of an operator who answers well, approves and resumes; False when done."""
        if self.state.finished and not self.running:
            return False
        if self.running:
            cmd = self.running[0]
            if isinstance(cmd, SetExposure):
                self.complete_exposure(self.first_per_service()[0], fail=False)
            elif isinstance(cmd, SetMirror):
                self.complete_mirror(cmd, fail=False)
            elif isinstance(cmd, Measure):
                self.answer_measure(cmd, "good")
            else:
                assert isinstance(cmd, ReadExposure)
                self.answer_read(cmd, error=False)
            return True
        verbs = available(self.state)
        waiting = [n for n in self.state.ctx.graph.moving if "approve" in available(self.state, n)]
        if "resume" in verbs:
            self.feed(OperatorAction(at=self.now, action="resume", operator="p"))
        elif waiting:
            self.feed(OperatorAction(at=self.now, action="approve", service=waiting[0], operator="p"))
        elif next_deadline(self.state) is not None:
            self.tick(None)
        elif self.state.phase == "running" and self.state.stepping:
            # A step still waiting for its transition, which a failed group never makes.
            self.feed(OperatorAction(at=self.now, action="pause", operator="p"))
        elif not self.state.finished:
            raise AssertionError(f"stuck: {self.state.effective_phase} {self.state.hold} {self.state.groups}")
        return True

    def finish(self) -> None:
        """The rollout must end under a patient operator."""
        for _ in range(3000):
            if not self.patient_step():
                return
        raise AssertionError("the rollout never ended")


def run_world(document: dict[str, Any], data: st.DataObject, moves: int) -> World:
    state = compiled(document)
    if state is None:
        return None  # type: ignore[return-value]
    world = World(state=state, initial=state)
    world.feed(RolloutStarted(at=0.0, rollout="prop", seed=1))
    for _ in range(data.draw(st.integers(0, moves))):
        world.move(data)
    return world


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(plan_documents(), st.data())
def test_invariants_hold_after_every_event(document: dict[str, Any], data: st.DataObject) -> None:
    world = run_world(document, data, moves=120)
    if world is None:
        return
    world.finish()
    assert world.state.phase in TERMINAL
    assert all(s.mirror == 0 for s in world.state.services.values())  # every shadow's mirror went off
    if world.state.phase == "completed":
        assert all(s.exposure == 100.0 for s in world.state.services.values())


@SETTINGS
@given(plan_documents(), st.data())
def test_replay_is_exact_and_deterministic(document: dict[str, Any], data: st.DataObject) -> None:
    world = run_world(document, data, moves=80)
    if world is None:
        return
    wire = [event_from_dict(json.loads(json.dumps(e.to_dict()))) for e in world.events]
    state = world.initial
    outputs = []
    for event in wire:
        state, cmds = reduce(state, event)
        outputs.append(cmds)
    # repr, not ==: a NaN measurement never equals itself once it went over the wire.
    assert repr(state) == repr(world.state)
    assert outputs == world.outputs
    assert state.inflight == world.state.inflight


@settings(max_examples=60, deadline=None)
@given(plan_documents())
def test_generated_plans_compile_often_enough(document: dict[str, Any]) -> None:
    # Guards the generator: most random plans must be valid, or the properties test little.
    state = compiled(document)
    if state is not None:
        assert set(state.services) == set(state.ctx.graph.moving)


@SETTINGS
@given(plan_documents(), st.data())
def test_operator_rollback_or_abort_at_any_point_of_an_honest_run(
    document: dict[str, Any], data: st.DataObject
) -> None:
    state = compiled(document)
    if state is None:
        return
    world = World(state=state, initial=state)
    world.feed(RolloutStarted(at=0.0, rollout="prop", seed=1))
    for _ in range(data.draw(st.integers(0, 300))):
        if not world.patient_step():
            break
    verb = data.draw(st.sampled_from(["rollback", "rollback", "abort"]))
    moving = world.state.ctx.graph.moving
    widest = max(moving, key=lambda name: len(rollback_cascade(world.state, name)))
    service = data.draw(st.sampled_from([widest, *moving]))
    world.feed(OperatorAction(at=world.now, action=verb, service=service, operator="prop"))  # type: ignore[arg-type]
    world.finish()
    assert world.state.phase in TERMINAL
