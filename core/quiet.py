"""Shortcuts through `reduce` for the two events a long rollout is made of.

A rollout that bakes for hours is, event by event, almost only gates asking for
their next measurement (a `Tick`) and the answers coming back (`Measured`):
replaying a day-long journal folds a million of them. Neither can move
anything while every baking group is still inside its bake, so both are
recorded here without the working copy of `core.tx` and without `advance`.

Both rely on what `advance` guarantees: after every event the rollout stands
at a fixpoint, where nothing moves until time passes or an event comes. Each
shortcut checks that the only thing that can happen is the one it records
and answers None otherwise, so `reduce` takes the full path. The property
tests compare both shortcuts with the full path (`reduce_fully`) after every
event of thousands of random runs.
"""

from __future__ import annotations

import core.gates as gate_rules
from core.commands import Command, Measure
from core.events import Measured, Tick
from core.gates import GateRun
from core.plan import Gate
from core.state import GroupState, RolloutState
from core.tx import ask_measurements

_new = object.__new__
_set = object.__setattr__


def _running(state: RolloutState, at: float) -> bool:
    """Running, not held, frozen or stepping, and `at` not in the past."""
    return (
        state.phase == "running" and state.hold is None and state.frozen_at is None
        and not state.stepping and at >= state.at
    )


def quiet_measurement(state: RolloutState, event: Measured) -> RolloutState | None:
    """A gate still running after an answer that came at the instant the last event
    already advanced everything, in a group whose bake is not over: no deadline came due
    since and nothing can move; just record it. None for anything else."""
    at = event.at
    if (
        at != state.at or state.phase != "running" or state.hold is not None
        or state.frozen_at is not None or state.stepping
    ):  # `_running`, written out: every answer asks
        return None
    cmd_id = event.cmd_id
    inflight = state.inflight
    cmd = inflight.get(cmd_id)
    if cmd.__class__ is not Measure:
        return None
    ctx = state.ctx
    index = ctx.graph.group_of[cmd.service]
    groups = state.groups
    group = groups[index]
    bake_until = group.bake_until
    if group.phase != "baking" or bake_until is None or at >= bake_until:
        return None
    gates = group.gates
    i = 0
    for run in gates:
        if run.pending == cmd_id:
            break
        i += 1
    else:
        return None
    gate = ctx.gates[run.gate]
    due = at + gate.interval
    bake_over = due > bake_until and gate.open_ended  # its last measurement of the bake

    new = gate_rules.running_after(  # `record`, in one copy, for most answers
        gate, run, at, event.value, event.baseline, event.error, event.canary_data, None if bake_over else due)
    if new is None:
        new = _recorded(gate, run, event, due, bake_over)
        if new.phase != "running":
            return None
    # `evolve(group, gates=...)` and `evolve(state, groups=..., inflight=...)` written out:
    # a dict copy with the changes set in it (no dict of changes to build and merge).
    runs = list(gates)
    runs[i] = new
    values = group.__dict__.copy()
    values["gates"] = tuple(runs)
    new_group = _new(GroupState)
    _set(new_group, "__dict__", values)
    new_groups = list(groups)
    new_groups[index] = new_group
    left = inflight.copy()  # type: ignore[attr-defined]  # a dict: every state's is (`Tx.commit`, here)
    del left[cmd_id]
    values = state.__dict__.copy()
    values["groups"] = tuple(new_groups)
    values["inflight"] = left
    after = _new(RolloutState)
    _set(after, "__dict__", values)
    return after


def _recorded(gate: Gate, run: GateRun, event: Measured, due: float, bake_over: bool) -> GateRun:
    """`run` after the answer, through `core.gates.record` (any judge, any answer)."""

    def schedule(count: int) -> float | None:
        return None if bake_over and count >= 1 else due

    return gate_rules.record(
        gate, run, event.at, event.value, event.baseline, event.error,
        canary_data=event.canary_data, baseline_data=event.baseline_data, schedule=schedule,
    )


def quiet_tick(state: RolloutState, event: Tick) -> tuple[RolloutState, list[Command]] | None:
    """A tick that only makes measurements due: every baking group still inside its bake,
    none analyzing (those re-check their gates on every step), and at least one gate
    due. The other groups wait on events, not on time, and stand where the last event
    left them. None for anything else."""
    at = event.at
    if not _running(state, at) or (state.readback_at is not None and at >= state.readback_at):
        return None
    if state.window_opens is not None and at >= state.window_opens:
        return None  # a change window opened: a waiting group may move
    due: list[tuple[int, list[int]]] = []
    groups = state.groups
    live = state.live
    for index in sorted(live) if len(live) > 1 else live:  # baking and analyzing groups are live
        group = groups[index]
        phase = group.phase
        if group.poll_at is not None and at >= group.poll_at:
            return None  # its rollback hooks are due (`core.hooks.after`)
        if phase in ("analyzing", "shadowing", "preparing", "confirming"):
            return None  # these re-check on every step (a hook asked again, a step due)
        if phase == "baking":
            if group.bake_until is None or at >= group.bake_until:
                return None
            runs = []
            for i, run in enumerate(group.gates):
                next_at = run.next_at
                if next_at is not None and next_at <= at and run.pending is None and run.phase == "running":
                    runs.append(i)
            if runs:
                due.append((index, runs))
    if not due:
        return None
    # What `Tx.measure` and `Tx.commit` would do, without copying what does not change.
    new_groups = list(groups)
    inflight: dict[int, Command] = state.inflight.copy()  # type: ignore[attr-defined]  # a dict, as above
    cmds: list[Command] = []
    next_cmd = state.next_cmd
    for index, runs in due:
        new_groups[index], next_cmd = ask_measurements(
            state.ctx, groups[index], runs, next_cmd, at, inflight, cmds)
    values = state.__dict__.copy()  # `evolve(state, at=..., ...)`, written out as above
    values["at"] = at
    values["groups"] = tuple(new_groups)
    values["inflight"] = inflight
    values["next_cmd"] = next_cmd
    after = _new(RolloutState)
    _set(after, "__dict__", values)
    return after, cmds
