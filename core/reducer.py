"""`reduce(state, event) -> (state, commands)`: the rollout's only rule book.

Pure: the same events give the same states, so a journal replays to exactly
the live state, and property tests can throw any sequence at it. Handlers
here interpret one event; `core.schedule` then moves whatever may move.
Timers stop while the rollout is paused or held, and every deadline shifts
by the time it stood still, so a pause never eats into a bake.
"""

from __future__ import annotations

from core.evolve import evolve

import core.gates as gate_rules
from core.commands import Command, Measure, ReadExposure, SetExposure, SetMirror
from core.events import (
    Abandoned,
    Adopted,
    CheckFinished,
    CommandFailed,
    Event,
    GateMisconfigured,
    ExposureApplied,
    ExposureRead,
    Measured,
    MeasurementGap,
    MirrorApplied,
    OperatorAction,
    RolloutStarted,
    Tick,
)
from core.beforefirst import begin, on_check_finished, on_data_measured
from core.hooks import after as after_hooks
from core.coverage import restart_bake
from core.gates import GateRun
from core.approvals import approve
from core.quiet import quiet_measurement, quiet_tick
from core.readback import MIRROR, describe_differences, differences, reapply, sync_readback
from core.rollback import abort_queue, cascade_groups, fail_group, start_rollback
from core.shadow import stop_mirrors
from core.schedule import advance, restart_group, start_stage
from core.state import TERMINAL, Hold, RolloutState
from core.tx import Tx
from core.verdict import explain

RETRY_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds between retries of a failed adapter command while held."""


def _backoff(attempts: int) -> float:
    return RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF) - 1)]


def _sync_freeze(tx: Tx) -> None:
    frozen = tx.phase == "paused" or (tx.hold is not None and tx.phase not in TERMINAL)
    if frozen and tx.frozen_at is None:
        tx.frozen_at = tx.at
    elif not frozen and tx.frozen_at is not None:
        shift = tx.at - tx.frozen_at
        tx.frozen_at = None
        if shift > 0:
            for index, group in enumerate(tx.groups):
                runs = tuple(_shifted(run, shift) for run in group.gates)
                bake = group.bake_until + shift if group.bake_until is not None else None
                tx.groups[index] = evolve(group, gates=runs, bake_until=bake)


def _shifted(run: GateRun, shift: float) -> GateRun:
    """A gate run whose timers stood still for `shift` seconds (a measurement asked for
    before a pause is not late for the pause: `core.coverage`)."""
    if run.next_at is not None:
        run = evolve(run, next_at=run.next_at + shift)
    if run.pending is not None and run.asked_at is not None:
        run = evolve(run, asked_at=run.asked_at + shift)
    return run


def _restart_stuck_groups(tx: Tx) -> None:
    """On resume, a group that failed (policy `pause`) or went inconclusive re-runs its stage."""
    for index, group in enumerate(tx.groups):
        inconclusive = any(run.phase == "inconclusive" and not tx.ctx.gates[run.gate].dry_run for run in group.gates)
        if group.phase == "failed" and group.stage < 0:
            # Failed before its first exposure (a pre-flight check, a shadow): every step again.
            if begin(tx, index):
                restart_group(tx, index)
        elif group.phase == "failed" or (group.phase in ("shadowing", "baking", "analyzing") and inconclusive):
            restart_group(tx, index)


def _on_measured(tx: Tx, event: Measured) -> None:
    cmd = tx.inflight.pop(event.cmd_id, None)
    if not isinstance(cmd, Measure):
        return
    index = tx.ctx.graph.group_of[cmd.service]
    group = tx.groups[index]
    for i, run in enumerate(group.gates):
        if run.pending == event.cmd_id:
            break
    else:
        return
    gate = tx.ctx.gates[run.gate]
    # While frozen, the clock for the next measurement stopped when the rollout did.
    base = tx.frozen_at if tx.frozen_at is not None else tx.at
    bake_over = group.bake_until is not None and base + gate.interval > group.bake_until

    def schedule(count: int) -> float | None:
        open_ended_done = gate.open_ended and count >= 1 and bake_over
        return None if open_ended_done else base + gate.interval

    before = run
    run = gate_rules.record(
        gate, run, tx.at, event.value, event.baseline, event.error,
        canary_data=event.canary_data, baseline_data=event.baseline_data, schedule=schedule,
    )
    runs = list(group.gates)
    runs[i] = run
    tx.groups[index] = evolve(group, gates=tuple(runs))
    if group.phase == "preparing":  # a data-contract check before the first user
        return on_data_measured(tx, index, run, before, event)
    if tx.phase not in ("running", "paused") or gate.dry_run:
        return  # a dry-run gate's verdict is shown (tui.printer), never acted on
    if run.phase not in ("failed", "error", "inconclusive"):
        return
    # The rollback or pause names the measurement that caused it, with its arithmetic.
    where = f"gate {run.gate} on {run.service}" + (" in shadow" if group.phase == "shadowing" else "")
    why = explain(gate, before, event).text
    if run.phase in ("failed", "error"):
        verb = "failed" if run.phase == "failed" else "errored"
        limit = ""
        if run.phase == "failed" and gate.failure_limit > 0 and gate.judge != "sequential":
            limit = f" ({run.failures} failures > failure_limit {gate.failure_limit})"
        fail_group(tx, index, f"{where} {verb}{limit}: {why}")
    else:
        tx.phase = "paused"
        tx.stepping = False
        tx.reason = f"{where} inconclusive: {why}; waiting for the operator"


def _read_all(tx: Tx) -> None:
    cmd = tx.emit(ReadExposure, services=tuple(tx.ctx.graph.moving))
    assert tx.hold is not None
    tx.hold = evolve(tx.hold, reading=cmd.cmd_id, retry_at=None)


def _on_applied(tx: Tx, event: ExposureApplied) -> None:
    cmd = tx.inflight.pop(event.cmd_id, None)
    if not isinstance(cmd, SetExposure):
        return
    tx.services[cmd.service] = evolve(tx.services[cmd.service], exposure=cmd.percent)
    _went_through(tx, event.cmd_id)


def _on_mirrored(tx: Tx, event: MirrorApplied) -> None:
    """The mirror is as commanded (the service's `mirror` already says so); without a
    command (`cmd_id` 0), it was set at the boundary: an abandoned run's mirror turned off."""
    cmd = tx.inflight.pop(event.cmd_id, None) if event.cmd_id else None
    if isinstance(cmd, SetMirror):
        _went_through(tx, event.cmd_id)
    elif not event.cmd_id and event.service in tx.services:
        tx.services[event.service] = evolve(tx.services[event.service], mirror=event.percent)


def _went_through(tx: Tx, cmd_id: int) -> None:
    """A command that had failed went through: once nothing failed is left, read back."""
    hold = tx.hold
    if hold is not None and cmd_id in hold.failed:
        tx.hold = hold = evolve(hold, failed=tuple(c for c in hold.failed if c != cmd_id))
    if hold is not None and not hold.failed and hold.reading is None and not hold.mismatch:
        if not any(isinstance(c, (SetExposure, SetMirror)) for c in tx.inflight.values()):
            _read_all(tx)


def _on_failed(tx: Tx, event: CommandFailed) -> None:
    cmd = tx.inflight.get(event.cmd_id)
    if cmd is None:
        return
    if isinstance(cmd, (SetExposure, SetMirror)) and tx.newer_setting(cmd):
        del tx.inflight[event.cmd_id]  # retrying it would undo the newer setting
        return
    hold = tx.hold or Hold(reason="")
    attempts = hold.attempts + 1
    failed = hold.failed if event.cmd_id in hold.failed else hold.failed + (event.cmd_id,)
    tx.hold = evolve(
        hold,
        reason=f"adapter failed: {event.error}; retrying",
        failed=failed,
        attempts=attempts,
        retry_at=tx.at + _backoff(attempts - 1),
    )


def _on_read(tx: Tx, event: ExposureRead) -> None:
    if event.cmd_id:
        tx.inflight.pop(event.cmd_id, None)
    hold = tx.hold
    reconcile = event.cmd_id == 0
    periodic = not reconcile and event.cmd_id == tx.readback_cmd
    if periodic:
        tx.readback_cmd = None
    elif not reconcile and (hold is None or hold.reading != event.cmd_id):
        return
    if event.error is not None:
        base = hold or Hold(reason="")
        attempts = base.attempts + 1
        tx.hold = evolve(
            base,
            reason=f"cannot read state back: {event.error}; retrying",
            reading=None,
            attempts=attempts,
            retry_at=tx.at + _backoff(attempts - 1),
        )
        return
    found = differences(tx, event)
    if found:
        mismatch: dict[str, tuple[float, float]] = {}
        for name, _, expected, actual in found:
            mismatch.setdefault(name, (expected, actual))
        base = hold or Hold(reason="")
        # Commands that failed meanwhile stay on the retry list.
        tx.hold = evolve(
            base,
            reason=f"state differs from the journal: {describe_differences(found)}; waiting for the operator",
            mismatch=mismatch, differences=tuple((key, e, a) for _, key, e, a in found),
            reading=base.reading if reconcile or periodic else None,
        )
    elif not reconcile and not periodic:
        assert hold is not None
        if hold.failed:  # a command failed while the read was out: keep retrying it
            tx.hold = evolve(hold, reading=None)
        else:
            tx.hold = None
            tx.reason = "adapters answer again and agree with the journal"


def _on_tick(tx: Tx) -> None:
    hold = tx.hold
    if hold is None or hold.retry_at is None or tx.at < hold.retry_at:
        return
    if hold.failed:
        tx.hold = evolve(hold, retry_at=None)
        tx.cmds.extend(tx.inflight[c] for c in hold.failed if c in tx.inflight)
    elif hold.reading is None and not hold.mismatch:
        _read_all(tx)
    else:  # a mismatch waits for the operator: nothing to retry, so no deadline to spin on
        tx.hold = evolve(hold, retry_at=None)


def _on_operator(tx: Tx, event: OperatorAction) -> None:
    from core.actions import available

    if event.action not in available(tx.commit()[0], event.service, who=event.operator):
        return
    action = event.action
    if action == "pause":
        tx.phase = "paused"
        tx.stepping = False
        tx.reason = f"paused by {event.operator or 'operator'}"
    elif action == "resume":
        hold = tx.hold
        if hold is not None and hold.config:
            idle = not (hold.failed or hold.mismatch or hold.reading is not None or hold.retry_at is not None)
            tx.hold = None if idle else evolve(hold, config="")
        if tx.hold is not None and tx.hold.mismatch:
            reapply(tx)
        if tx.phase == "paused":
            tx.phase = "running"
            tx.stepping = False
            tx.reason = ""
            _restart_stuck_groups(tx)
    elif action == "step":
        before = tx.transitions
        _restart_stuck_groups(tx)
        if tx.transitions > before:
            tx.reason = "stepped: re-ran the stage that had stopped"
        else:
            tx.phase = "running"
            tx.stepping = True
            tx.reason = "stepping"
    elif action == "approve":
        assert event.service is not None
        approve(tx, event.service, event.operator)
    elif action in ("promote", "promote_full"):
        assert event.service is not None
        _promote(tx, tx.ctx.graph.group_of[event.service], full=action == "promote_full")
    elif action == "rollback":
        assert event.service is not None
        index = tx.ctx.graph.group_of[event.service]
        queue = cascade_groups(tx.groups, tx.ctx, index, moved=tx.moved)
        why = f"rollback of {event.service} by {event.operator or 'operator'}"
        start_rollback(tx, queue, "rolled_back", why + (f": {event.reason}" if event.reason else ""))
    elif action == "abort":
        queue = abort_queue(tx.groups, tx.rollback_queue, moved=tx.moved)
        start_rollback(tx, queue, "aborted",
                       f"aborted by {event.operator or 'operator'}")


def _promote(tx: Tx, index: int, *, full: bool) -> None:
    """Break-glass: the group's bake (and any approval it waits for) ends now; it takes
    its next stage, or with `full` its last (100%); already there, it is promoted. Its
    gates start afresh at the new stage, as after any stage change."""
    spec, group = tx.ctx.groups[index], tx.groups[index]
    last = len(spec.stages) - 1
    stop_mirrors(tx, spec.services)  # promoted out of its shadow: the copies stop
    if group.stage >= last:
        tx.set_group(index, phase="promoted", bake_until=None, gates=(), approved=False)
    else:
        start_stage(tx, index, last if full else group.stage + 1)


def _on_misconfigured(tx: Tx, event: GateMisconfigured) -> None:
    """Hold with the reason; the gate measures again once the operator resumes (its
    clock stands still while held, like every other)."""
    cmd = tx.inflight.pop(event.cmd_id, None)
    if not isinstance(cmd, Measure):
        return
    index = tx.ctx.graph.group_of[cmd.service]
    group = tx.groups[index]
    runs = tuple(
        evolve(run, pending=None, next_at=tx.at) if run.pending == event.cmd_id else run for run in group.gates
    )
    tx.groups[index] = evolve(group, gates=runs)
    if tx.phase not in ("running", "paused"):
        return
    why = f"gate {cmd.gate} on {cmd.service} cannot judge: {event.error}; fix the configuration, then resume"
    tx.hold = evolve(tx.hold or Hold(reason=""), reason=why, config=why)


def _on_adopted(tx: Tx, event: Adopted) -> None:
    """Before the start only: the journal takes what the pre-flight read found as each
    service's exposure; its group then starts at the first stage not below it."""
    if tx.phase != "planned":
        return
    for name, percent in event.exposures.items():
        if name in tx.services:
            tx.services[name] = evolve(tx.services[name], exposure=percent, target=percent)
    for name in tx.services:  # a mirror found on is the journal's too (its group's start turns it off)
        if (mirror := event.targets.get(MIRROR + name)) is not None:
            tx.services[name] = evolve(tx.services[name], mirror=mirror)


def _on_abandoned(tx: Tx, event: Abandoned) -> None:
    """The run ends where it stands: nothing more is sent or rolled back for it."""
    if tx.phase in TERMINAL:
        return
    tx.phase = "aborted"
    tx.inflight.clear()
    tx.hold = None
    tx.rollback_queue = ()
    tx.readback_cmd = None
    instead = f"; run {event.by_run} took its place" if event.by_run else ""
    why = f": {event.reason}" if event.reason else ""
    tx.reason = f"abandoned by {event.operator or 'operator'}{why}{instead} (nothing was rolled back)"


def reduce(state: RolloutState, event: Event) -> tuple[RolloutState, list[Command]]:
    """The next state and the commands to carry out, for one event."""
    kind = type(event)
    if kind is Measured:  # the two kinds a long rollout is made of first (neither is record-only)
        quiet = quiet_measurement(state, event)  # type: ignore[arg-type]
        if quiet is not None:
            return quiet, []
    elif kind is Tick:
        due = quiet_tick(state, event)  # type: ignore[arg-type]
        if due is not None:
            return due
    elif kind.record_only:
        return state, []
    return _reduce(state, event, full=False)


def reduce_fully(state: RolloutState, event: Event) -> tuple[RolloutState, list[Command]]:
    """`reduce` without its shortcuts: no `core.quiet`, every event through the working
    copy and `advance`, which steps every group (not only the live ones), and the live
    groups recomputed from scratch. The fast paths must agree with it, which the property
    tests check after every event."""
    return _reduce(state, event, full=True)


def _reduce(state: RolloutState, event: Event, *, full: bool) -> tuple[RolloutState, list[Command]]:
    if type(event).record_only:
        return state, []
    tx = Tx(state, event.at)
    tx.full = full
    if isinstance(event, Tick):
        _on_tick(tx)
    elif isinstance(event, Measured):
        _on_measured(tx, event)
    elif isinstance(event, ExposureApplied):
        _on_applied(tx, event)
    elif isinstance(event, MirrorApplied):
        _on_mirrored(tx, event)
    elif isinstance(event, CommandFailed):
        _on_failed(tx, event)
    elif isinstance(event, ExposureRead):
        _on_read(tx, event)
    elif isinstance(event, OperatorAction):
        _on_operator(tx, event)
    elif isinstance(event, GateMisconfigured):
        _on_misconfigured(tx, event)
    elif isinstance(event, Adopted):
        _on_adopted(tx, event)
    elif isinstance(event, Abandoned):
        _on_abandoned(tx, event)
    elif isinstance(event, CheckFinished):
        on_check_finished(tx, event)
    elif isinstance(event, MeasurementGap):
        restart_bake(tx, event)
    elif isinstance(event, RolloutStarted):
        if tx.phase == "planned":
            tx.phase = "running"
            tx.started_at = tx.at
            tx.starter = event.operator
    _sync_freeze(tx)
    advance(tx)
    _sync_freeze(tx)
    after_hooks(tx)
    sync_readback(tx)
    return tx.commit()
