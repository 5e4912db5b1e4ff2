"""Progression: which group moves next, stage by stage, and rollbacks in order.

Called by the reducer after every event. A group takes at most one
transition per call of `_step_group`; `advance` repeats until nothing moves,
or, while an operator is stepping, stops after exactly one transition.
Nothing here raises exposure unless the rollout is running and not held.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from core.evolve import evolve

from core.commands import SetExposure
from core.gates import GateRun
from core.beforefirst import begin, drive
from core.hooks import confirm_between
from core.state import IN_CANARY, RolloutState
from core.context import scored
from core.judges.mann_whitney import Classification, score
from core.evidence import carried
from core.rollback import fail_group
import core.shadow as shadow
from core.tx import Tx
from core.windows import describe_next, next_open


def _counts(tx: Tx) -> tuple[int, int, int]:
    """(transitions, services in canary, lowest wave with a group not promoted).
    Recounted only after a transition: asked once per waiting group, a fresh count
    each time made every step quadratic in the number of groups."""
    if tx.counts is None or tx.counts[0] != tx.transitions:
        busy, open_wave = 0, len(tx.groups)
        specs, groups = tx.ctx.groups, tx.groups
        # Only live groups can be in canary, and the lowest wave not promoted always has a
        # live group (follow any waiting group's unpromoted predecessor down to one).
        for index in range(len(groups)) if tx.full else tx.live:
            spec, group = specs[index], groups[index]
            if (group.phase in IN_CANARY and (group.stage >= 0 or group.phase == "shadowing")) \
                    or group.phase == "preparing":
                busy += len(spec.services)
            if group.phase != "promoted" and spec.wave < open_wave:
                open_wave = spec.wave
        tx.counts = (tx.transitions, busy, open_wave)
    return tx.counts


def _has_capacity(tx: Tx, index: int) -> bool:
    busy = _counts(tx)[1]
    size = len(tx.ctx.groups[index].services)
    return busy == 0 or busy + size <= tx.ctx.plan.policy.max_parallel


def _dependencies_met(tx: Tx, index: int) -> bool:
    spec = tx.ctx.groups[index]
    if any(tx.groups[p].phase != "promoted" for p in spec.preds):
        return False
    if tx.ctx.plan.policy.approval == "each_wave":
        return _counts(tx)[2] >= spec.wave  # every earlier wave is promoted
    return True


def _needs_wave_approval(tx: Tx, index: int) -> bool:
    wave = tx.ctx.groups[index].wave
    return (
        tx.ctx.plan.policy.approval == "each_wave"
        and wave > 0
        and wave not in tx.approved_waves
    )


def start_stage(tx: Tx, index: int, stage: int) -> None:
    spec = tx.ctx.groups[index]
    group = tx.groups[index]
    if group.start_order is None:
        tx.groups[index] = evolve(group, start_order=tx.moved_count)
        tx.moved_count += 1
    tx.set_group(
        index, phase="progressing", stage=stage, approved=False, bake_until=None, gates=(), reason="",
        prep=0, asking=None, ask_at=None, confirmed="",
        votes=frozenset(),
        evidence=carried(tx, group.gates),
    )
    for name in spec.services:
        tx.set_exposure(name, spec.stages[stage].percent, spec.cohort)


def first_stage(tx: Tx, index: int) -> int:
    """Where a group starts: stage 0, or after `--adopt` the first stage not below what
    its services were found at (a start never lowers what users already see)."""
    found = max(tx.services[name].exposure for name in tx.ctx.groups[index].services)
    stages = tx.ctx.groups[index].stages
    return next((i for i, stage in enumerate(stages) if stage.percent >= found), len(stages) - 1)


def _begin(tx: Tx, index: int) -> None:
    """A group's first move: its shadow stage (`core.shadow`), or its first stage. A group
    adopted above 0% is already in front of users, so it does not shadow (and a mirror
    adopted on goes off)."""
    if shadow.group_shadows(tx.ctx, index) and all(
        tx.services[name].exposure == 0 for name in tx.ctx.groups[index].services
    ):
        shadow.start(tx, index)
    else:
        shadow.stop_mirrors(tx, tx.ctx.groups[index].services)
        start_stage(tx, index, first_stage(tx, index))


def restart_group(tx: Tx, index: int) -> None:
    """Run a stopped group's step again (after `pause` or an inconclusive gate): its stage, or
    its shadow if it stopped there."""
    if tx.groups[index].stage < 0 and shadow.group_shadows(tx.ctx, index):
        shadow.start(tx, index)
    else:
        start_stage(tx, index, max(tx.groups[index].stage, 0))


def _step_shadow(tx: Tx, index: int) -> None:
    """Mirrors on, then the shadow's gates measure for its duration; once it is over and they
    all succeeded, the mirrors go off and the first stage starts."""
    group = tx.groups[index]
    names = tx.ctx.groups[index].services
    if group.bake_until is None:
        if all(tx.mirror_settled(name) for name in names):
            shadow.enter(tx, index)
        return
    _measure_due(tx, index)
    if tx.at >= group.bake_until:
        if _finish_open_gates(tx, index) and window_open(tx, index):  # the shadow may end outside one
            shadow.stop_mirrors(tx, names)
            start_stage(tx, index, 0)
            return
        _measure_due(tx, index)


def _enter_bake(tx: Tx, index: int) -> None:
    spec = tx.ctx.groups[index]
    stage = spec.stages[tx.groups[index].stage]
    carried = {(service, gate): state for service, gate, state in tx.groups[index].evidence}
    runs = []
    for name in spec.services:
        for gate_name in tx.ctx.service_gates[name]:
            gate = tx.ctx.gates[gate_name]
            if gate.against_baseline and stage.percent >= 100.0:
                continue  # at 100% no traffic is left on the baseline to compare with
            runs.append(
                GateRun(service=name, gate=gate_name, next_at=tx.at + gate.initial_delay + gate.interval,
                        sprt=carried.get((name, gate_name)))
            )
    tx.set_group(index, phase="baking", bake_until=tx.at + (stage.bake or 0.0), gates=tuple(runs), evidence=())


def _finish_open_gates(tx: Tx, index: int) -> bool:
    """At bake's end, open-ended gates succeed once they have a measurement.
    True when every gate of the group has succeeded (a dry-run gate: has decided)."""
    group = tx.groups[index]
    runs = list(group.gates)
    for i, run in enumerate(runs):
        gate = tx.ctx.gates[run.gate]
        if run.phase != "running" or not gate.open_ended or run.pending is not None:
            continue
        if run.count >= 1:
            runs[i] = evolve(run, phase="successful", next_at=None)
        elif run.next_at is None:
            runs[i] = evolve(run, next_at=tx.at)
    if runs != list(group.gates):
        tx.groups[index] = evolve(group, gates=tuple(runs))
    return all(run.phase == "successful" or (run.phase != "running" and tx.ctx.gates[run.gate].dry_run)
               for run in runs)


def _measure_due(tx: Tx, index: int) -> None:
    due = [
        i for i, run in enumerate(tx.groups[index].gates)
        if run.phase == "running" and run.pending is None and run.next_at is not None and run.next_at <= tx.at
    ]
    if due:
        tx.measure(index, due)


def _stage_passed(tx: Tx, index: int) -> None:
    spec = tx.ctx.groups[index]
    group = tx.groups[index]
    stage = spec.stages[group.stage]
    if stage.approval and not group.approved:
        tx.set_group(index, phase="awaiting_approval", reason="stage approval")
        return
    last = group.stage + 1 >= len(spec.stages)
    if last:
        if confirm_between(tx, index, "confirm-promotion", None):
            tx.set_group(index, phase="promoted", bake_until=None, gates=(), approved=False)
    elif not window_open(tx, index):
        if group.phase == "baking":
            tx.set_group(index, phase="analyzing")  # baked and judged: only the window is missing
    elif confirm_between(tx, index, "confirm-traffic-increase", spec.stages[group.stage + 1].percent):
        start_stage(tx, index, group.stage + 1)


def window_open(tx: Tx, index: int) -> bool:
    """May group `index` raise its exposure now (`policy.windows`)? When not, the group
    waits: the state says until when (`window_opens`, a deadline) and why, in words."""
    windows = tx.ctx.plan.policy.windows
    if windows is None:
        return True
    if tx.window_opens is None or tx.at >= tx.window_opens:
        opens = next_open(windows, tx.at)
        if opens == tx.at:
            return True
        tx.window_opens = opens
        tx.window_note = describe_next(windows, tx.at)
    tx.window_waited = True
    note = f"waiting for the change window: {tx.window_note}"
    if tx.groups[index].reason != note:
        tx.groups[index] = evolve(tx.groups[index], reason=note)
    return False


_KAYENTA: dict[str, Literal["Pass", "High", "Low", "NoData"]] = {"successful": "Pass", "failed": "High"}
"""A scored gate's last measurement as Kayenta classifies it; anything else is NoData."""


def _stage_score(tx: Tx, index: int) -> tuple[str, str] | None:
    """Kayenta's verdict ("pass" | "marginal" | "fail", why) on the group's scored gates,
    from each one's last measurement at this stage; None when nothing is scored."""
    thresholds = tx.ctx.plan.defaults.score
    if thresholds is None:
        return None
    by_group: dict[str, list[Classification]] = {}
    weights: dict[str, float] = {}
    for run in tx.groups[index].gates:
        gate = tx.ctx.gates[run.gate]
        if not scored(tx.ctx.plan, gate):
            continue
        assert gate.group is not None
        last = run.samples[-1].phase if run.samples else None
        nan = float("nan")
        by_group.setdefault(gate.group, []).append(
            Classification(_KAYENTA.get(last or "", "NoData"), nan, nan, nan, nan, nan, nan, gate.critical)
        )
        if gate.weight is not None:
            weights.setdefault(gate.group, gate.weight)
    if not by_group:
        return None
    result = score(by_group, weights, thresholds.pass_, thresholds.marginal)
    return result.result, f"stage score {result.score:.0f} (pass {thresholds.pass_:g}, marginal {thresholds.marginal:g})"


def _judge_stage(tx: Tx, index: int) -> None:
    """The stage's gates all succeeded: the score, if any, has the last word."""
    verdict = _stage_score(tx, index)
    if verdict is None or verdict[0] == "pass":
        _stage_passed(tx, index)
        return
    result, why = verdict
    where = f"{'+'.join(tx.ctx.groups[index].services)}: {why}"
    if result == "fail":
        fail_group(tx, index, where)
    else:
        tx.set_group(index, phase="analyzing", reason=where)
        tx.phase = "paused"
        tx.stepping = False
        tx.reason = f"{where}: marginal; waiting for the operator"
        runs = tuple(evolve(run, phase="inconclusive") if run.phase == "successful" else run
                     for run in tx.groups[index].gates)
        tx.groups[index] = evolve(tx.groups[index], gates=runs)


def _step_group(tx: Tx, index: int) -> None:
    group = tx.groups[index]
    spec = tx.ctx.groups[index]
    phase = group.phase
    if phase == "waiting":
        if _dependencies_met(tx, index):
            if _needs_wave_approval(tx, index):
                tx.set_group(index, phase="awaiting_approval", reason="wave approval")
            elif _has_capacity(tx, index) and window_open(tx, index) and begin(tx, index):
                _begin(tx, index)
    elif phase == "awaiting_approval":
        if group.stage < 0:
            if (spec.wave in tx.approved_waves and _has_capacity(tx, index) and window_open(tx, index)
                    and begin(tx, index)):
                _begin(tx, index)
        elif group.approved:
            _stage_passed(tx, index)
    elif phase == "shadowing":
        _step_shadow(tx, index)
    elif phase == "preparing":
        if drive(tx, index) and window_open(tx, index):
            _begin(tx, index)
    elif phase == "confirming":
        _stage_passed(tx, index)
    elif phase == "progressing":
        if all(tx.exposure_settled(name) for name in spec.services):
            _enter_bake(tx, index)
    elif phase in ("baking", "analyzing"):
        _measure_due(tx, index)
        baked = group.bake_until is None or tx.at >= group.bake_until
        if baked:
            if _finish_open_gates(tx, index):
                _judge_stage(tx, index)
            elif phase == "baking":
                tx.set_group(index, phase="analyzing")
            _measure_due(tx, index)


def progress_rollback(tx: Tx) -> None:
    while tx.rollback_queue:
        index = tx.rollback_queue[0]
        spec = tx.ctx.groups[index]
        if tx.groups[index].phase != "rolling_back":
            tx.set_group(index, phase="rolling_back", bake_until=None, gates=(), approved=False)
            for name in spec.services:
                tx.set_exposure(name, 0.0, spec.cohort)
        if not all(tx.exposure_settled(name) for name in spec.services):
            return
        tx.set_group(index, phase="rolled_back")
        tx.rollback_queue = tx.rollback_queue[1:]
    if not any(isinstance(c, SetExposure) for c in tx.inflight.values()):
        tx.phase = tx.rollback_final
        tx.stepping = False


def advance(tx: Tx) -> None:
    """Move every group as far as the rules allow right now."""
    tx.window_waited = False
    _advance(tx)
    if not tx.window_waited and tx.window_opens is not None:  # nothing waits for a window now
        tx.window_opens, tx.window_note = None, ""


def _advance(tx: Tx) -> None:
    if tx.phase == "rolling_back":
        progress_rollback(tx)
        return
    if tx.phase != "running" or tx.hold is not None:
        return
    start = tx.transitions
    groups, specs, policy = tx.groups, tx.ctx.groups, tx.ctx.plan.policy
    # Most live groups of a large plan wait for room (`max_parallel`): without wave approvals,
    # room is all `_step_group` would ask them first, so it is asked here, without the call.
    # The full path (`reduce_fully`) steps every group; property tests compare the two.
    room_first = not tx.full and policy.approval != "each_wave"
    for _ in range(4 * len(tx.groups) + 4):
        before = tx.transitions
        for index in range(len(tx.groups)) if tx.full else _live_in_order(tx):
            if room_first and groups[index].phase == "waiting":
                counts = tx.counts  # `_counts`, its cache looked at without the call
                busy = (counts if counts is not None and counts[0] == tx.transitions else _counts(tx))[1]
                if busy and busy + len(specs[index].services) > policy.max_parallel:
                    continue  # `_has_capacity` is false
            _step_group(tx, index)
            if tx.phase != "running":  # a stage's score failed or was marginal
                if tx.phase == "rolling_back":
                    progress_rollback(tx)
                return
            if tx.stepping and tx.transitions > start:
                tx.phase = "paused"
                tx.stepping = False
                tx.reason = "stepped one transition"
                return
        if tx.transitions == before:
            break
    if all(g.phase == "promoted" for g in tx.groups) if tx.full else not tx.live:
        tx.phase = "completed"
        tx.stepping = False
        tx.reason = "every service promoted"


def _live_in_order(tx: Tx) -> Iterator[int]:
    """One pass of `advance` over the live groups, in index order, as a pass over every
    group would meet them: a group that becomes live behind the pass waits for the next
    pass, one ahead of it is merged in and met in this one; the others could not move."""
    order = sorted(tx.live)
    tx.live_added.clear()
    last, i = -1, 0
    while i < len(order):
        index = order[i]
        i += 1
        if index > last and index in tx.live:  # `tx.live` is replaced on its first change
            last = index
            yield index
            added = tx.live_added
            if added:
                ahead = [a for a in added if a > last]
                added.clear()
                if ahead:
                    order, i = sorted(order[i:] + ahead), 0


def next_deadline(state: RolloutState, readback: bool = False, *, full: bool = False) -> float | None:
    """The next time the rollout needs a `Tick`, or None to wait for events. With
    `readback`, the periodic read-back's time counts too: a driver on a real clock
    wakes for it even when nothing else is due (awaiting approval); without, the
    read-back rides on the next tick that comes anyway (virtual clocks, where no
    person edits anything)."""
    candidates: list[float] = []
    if state.hold is not None and state.hold.retry_at is not None:
        candidates.append(state.hold.retry_at)
    if readback and state.phase in ("running", "paused") and state.hold is None and state.readback_at is not None:
        candidates.append(state.readback_at)  # a console keeps reading while paused
    if state.phase == "running" and state.hold is None:
        if state.window_opens is not None:
            candidates.append(state.window_opens)
        groups = state.groups
        for group in groups if full else (groups[i] for i in state.live):  # bakes are live
            if group.phase == "baking" and group.bake_until is not None:
                candidates.append(group.bake_until)
            elif group.phase == "shadowing" and group.bake_until is not None and group.bake_until > state.at:
                candidates.append(group.bake_until)
            elif group.phase in ("preparing", "confirming") and group.asking is None and group.ask_at is not None:
                candidates.append(group.ask_at)
            if group.poll_at is not None:
                candidates.append(group.poll_at)  # its rollback hooks (`core.hooks`)
            if group.phase in ("baking", "analyzing", "shadowing"):
                for run in group.gates:
                    if run.phase == "running" and run.pending is None and run.next_at is not None:
                        candidates.append(run.next_at)
    return min(candidates) if candidates else None
