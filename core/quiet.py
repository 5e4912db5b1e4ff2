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
from core.evolve import evolve
from core.state import RolloutState
from core.tx import ask_measurements


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
    if at != state.at or not _running(state, at):
        return None
    cmd_id = event.cmd_id
    cmd = state.inflight.get(cmd_id)
    if cmd.__class__ is not Measure:
        return None
    ctx = state.ctx
    index = ctx.graph.group_of[cmd.service]
    group = state.groups[index]
    bake_until = group.bake_until
    if group.phase != "baking" or bake_until is None or at >= bake_until:
        return None
    gates = group.gates
    for i, run in enumerate(gates):
        if run.pending == cmd_id:
            break
    else:
        return None
    gate = ctx.gates[run.gate]
    next_at = at + gate.interval
    bake_over = next_at > bake_until and gate.open_ended

    def schedule(count: int) -> float | None:
        return None if bake_over and count >= 1 else next_at

    run = gate_rules.record(
        gate, run, at, event.value, event.baseline, event.error,
        canary_data=event.canary_data, baseline_data=event.baseline_data, schedule=schedule,
    )
    if run.phase != "running":
        return None
    runs = list(gates)
    runs[i] = run
    groups = list(state.groups)
    groups[index] = evolve(group, gates=tuple(runs))
    inflight = dict(state.inflight)
    del inflight[cmd_id]
    return evolve(state, groups=tuple(groups), inflight=inflight)


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
    for index in sorted(state.live):  # baking and analyzing groups are live
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
    inflight = dict(state.inflight)
    cmds: list[Command] = []
    next_cmd = state.next_cmd
    for index, runs in due:
        new_groups[index], next_cmd = ask_measurements(
            state.ctx, groups[index], runs, next_cmd, at, inflight, cmds)
    return evolve(state, at=at, groups=tuple(new_groups), inflight=inflight, next_cmd=next_cmd), cmds
