"""Bake needs measurement: finding the stretches of a bake nobody measured.

A stage's bake is time the new version ran *under observation*. If the driver
is frozen (SIGSTOP, a paused VM, a laptop lid), or a measurement it asked for
never comes back in time, wall time keeps passing but no gate looks: without
this module, a process stopped for 20 s at `--speed 200` woke up 4,000
simulated seconds later, took one measurement and moved to the next stage.

`measurement_gaps(state, at, ...)` is asked by the engine before every batch of
events: for each group that is baking, a gate whose measurement was due (or
asked for) longer ago than `GAP_INTERVALS` of its intervals — and longer than
the caller's floor, which covers the clock's own jitter and the adapter's
timeout — is a gap. The engine journals one `MeasurementGap` per group before
the batch, and the reducer (`restart_bake`) starts that group's bake over: its
gates measure at once and count afresh, so exposure rises only once fresh
measurements cover the whole bake again. Failures seen before the gap still
count. A virtual clock never leaves gaps (time jumps only when nothing is in
flight), so simulated runs and their replays are unchanged.

Pure: the state and a time in, events out.
"""

from __future__ import annotations

from core.evolve import evolve
from core.events import MeasurementGap
import core.shadow as shadow
from core.state import RolloutState
from core.tx import Tx

GAP_INTERVALS = 3.0
"""A gate measurement this many of its intervals late is a gap, not a delay."""


def measurement_gaps(
    state: RolloutState, at: float, *, late_floor: float = 0.0, answer_floor: float = 0.0
) -> list[MeasurementGap]:
    """One `MeasurementGap` per baking group with a gate unmeasured for too long at `at`.

    A gate is late when its next measurement was due more than `GAP_INTERVALS` intervals
    and more than `late_floor` seconds ago, or when the measurement it asked for has been
    out more than that and more than `answer_floor` seconds. Nothing is a gap while the
    rollout is paused, held or not running: its timers stand still then."""
    if state.phase != "running" or state.hold is not None or state.frozen_at is not None:
        return []
    gaps: list[MeasurementGap] = []
    for group in state.groups:
        if group.phase not in ("baking", "analyzing", "shadowing"):
            continue
        worst: tuple[float, str, str] | None = None
        for run in group.gates:
            if run.phase != "running":
                continue
            allowed = GAP_INTERVALS * state.ctx.gates[run.gate].interval
            if run.pending is not None:
                since, allowed = run.asked_at, max(allowed, answer_floor)
            else:
                since, allowed = run.next_at, max(allowed, late_floor)
            if since is not None and at - since > allowed and (worst is None or since < worst[0]):
                worst = (since, run.service, run.gate)
        if worst is not None:
            gaps.append(MeasurementGap(at=at, service=worst[1], gate=worst[2], since=worst[0]))
    return gaps


def restart_bake(tx: Tx, event: MeasurementGap) -> None:
    """The group of `event.service` bakes again from now, on fresh measurements: a
    measurement still out is dropped (its window is stale), every gate measures now, and
    what counts towards `count` starts from zero; failures, inconclusives and errors stay."""
    index = tx.ctx.graph.group_of.get(event.service)
    if index is None:
        return
    group = tx.groups[index]
    if group.phase not in ("baking", "analyzing", "shadowing") or tx.phase != "running":
        return
    if group.phase == "shadowing" and group.bake_until is None:
        return  # its mirrors are not on yet: nothing is measured
    runs = []
    for run in group.gates:
        if run.pending is not None:
            tx.inflight.pop(run.pending, None)
        if run.phase in ("running", "successful"):
            run = evolve(run, phase="running", pending=None, asked_at=None, next_at=tx.at, count=0, successes=0)
        runs.append(run)
    tx.groups[index] = evolve(group, gates=tuple(runs))
    unmeasured = tx.at - event.since
    why = f"no measurement of gate {event.gate} on {event.service} for {unmeasured:.0f}s"
    if group.phase == "shadowing":  # the shadow's time, like a bake, counts only measured time
        tx.set_group(index, bake_until=tx.at + shadow.duration(tx.ctx, index), reason=f"{why}: the shadow starts over")
        return
    stage = tx.ctx.groups[index].stages[group.stage]
    tx.set_group(index, phase="baking", bake_until=tx.at + (stage.bake or 0.0), reason=f"{why}: the bake starts over")
