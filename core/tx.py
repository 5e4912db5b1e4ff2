"""A working copy of one reduce step.

`reduce` must not mutate its input, but building a new frozen state with a
`evolve()` per field change is slow and noisy. A `Tx` copies the mutable
parts once, lets the step change them in place, and freezes the result.
"""

from __future__ import annotations

from core.evolve import build, evolve
from typing import Any

from core.commands import Command, Measure, SetExposure, SetMirror
from core.gates import GateRun
from core.state import Context, GroupState, Hold, RolloutPhase, RolloutState, ServiceState, group_moved, is_live, live_groups

_new = object.__new__
_set = object.__setattr__


class Tx:
    def __init__(self, state: RolloutState, at: float):
        self.before = state
        self.ctx = state.ctx
        self.at = max(at, state.at)
        self.phase: RolloutPhase = state.phase
        self.groups: list[GroupState] = list(state.groups)
        self.services: dict[str, ServiceState] = dict(state.services)
        self.inflight: dict[int, Command] = dict(state.inflight)
        self.next_cmd = state.next_cmd
        self.hold: Hold | None = state.hold
        self.frozen_at = state.frozen_at
        self.stepping = state.stepping
        self.rollback_queue = state.rollback_queue
        self.rollback_final: RolloutPhase = state.rollback_final
        self.approved_waves = state.approved_waves
        self.transitions = state.transitions
        self.moved_count = state.moved_count
        self.reason = state.reason
        self.started_at = state.started_at
        self.readback_at = state.readback_at
        self.readback_cmd = state.readback_cmd
        self.live: frozenset[int] | set[int] = state.live
        self.wave_votes = state.wave_votes
        self.starter = state.starter
        self.window_opens = state.window_opens
        self.window_note = state.window_note
        self.window_waited = False
        """A group waited for a change window in this step (`core.schedule.window_open`)."""
        """`RolloutState.live`, copied on the first change (`set_group`)."""
        self.live_added: list[int] = []
        """Groups that became live, for `advance` to visit in the same pass."""
        self.full = False
        """The full path (`reduce_fully`): scan every group, recompute `live` at the end."""
        self.cmds: list[Command] = []
        self.counts: tuple[int, int, int] | None = None
        """(transitions, services in canary, lowest wave not yet promoted), cached by
        `core.schedule`: only `set_group` changes a phase or stage, and it counts."""

    # -- commands ---------------------------------------------------------

    def emit(self, factory: type[Command], **fields: Any) -> Command:
        cmd = factory(cmd_id=self.next_cmd, **fields)
        self.next_cmd += 1
        self.inflight[cmd.cmd_id] = cmd
        self.cmds.append(cmd)
        return cmd

    def set_exposure(self, service: str, percent: float, cohort: str, force: bool = False) -> None:
        current = self.services[service]
        if not force and current.target == percent and (
            current.exposure == percent or self._pending_exposure(service)
        ):
            return
        self._supersede(service)
        exposure = self.ctx.exposure[service]
        self.emit(
            SetExposure,
            service=service,
            percent=percent,
            flag=exposure.flag,
            route=exposure.route,
            cohort=cohort,
        )
        self.services[service] = evolve(current, target=percent)
        self._crossed()

    def _supersede(self, service: str, kind: type[SetExposure] | type[SetMirror] = SetExposure) -> None:
        """A new absolute setting retires a failed one still waiting for its retry;
        retried after it, the old one would undo it (a rollback back up to 25%)."""
        hold = self.hold
        if hold is None or not hold.failed:
            return
        stale = {
            c for c in hold.failed
            if isinstance(cmd := self.inflight.get(c), kind) and cmd.service == service
        }
        if stale:
            for cmd_id in stale:
                del self.inflight[cmd_id]
            self.hold = evolve(hold, failed=tuple(c for c in hold.failed if c not in stale))

    def newer_setting(self, cmd: SetExposure | SetMirror) -> bool:
        """A later setting of the same kind for the same service is in flight (it supersedes `cmd`)."""
        return any(
            c.__class__ is cmd.__class__ and c.service == cmd.service and c.cmd_id > cmd.cmd_id
            for c in self.inflight.values()
        )

    def _pending_exposure(self, service: str) -> bool:
        return any(
            isinstance(c, SetExposure) and c.service == service for c in self.inflight.values()
        )

    def exposure_settled(self, service: str) -> bool:
        state = self.services[service]
        return state.exposure == state.target and not self._pending_exposure(service)

    def set_mirror(self, service: str, percent: float, force: bool = False) -> None:
        """Copy `percent` of the service's live requests to its new version (a shadow stage);
        `force` sends it even when the journal says so already (a shadow started again)."""
        current = self.services[service]
        if current.mirror == percent and not force:
            return
        self._supersede(service, SetMirror)
        self.emit(SetMirror, service=service, percent=percent, route=self.ctx.exposure[service].route)
        self.services[service] = evolve(current, mirror=percent)
        self._crossed()

    def _crossed(self) -> None:
        """A setting was sent: a periodic read-back still out may have been taken before it
        lands, so its answer says nothing (`core.readback`); the next is due an interval on."""
        if self.readback_cmd is not None:
            self.readback_cmd = None
            self.readback_at = None

    def _pending_mirror(self, service: str) -> bool:
        return any(isinstance(c, SetMirror) and c.service == service for c in self.inflight.values())

    def mirror_settled(self, service: str) -> bool:
        """No `SetMirror` of the service is out: its mirror is as last commanded."""
        return not self._pending_mirror(service)

    def measure(self, group: int, run_indexes: list[int]) -> None:
        """Ask for the next measurement of these gate runs of one group (`ask_measurements`)."""
        self.groups[group], self.next_cmd = ask_measurements(
            self.ctx, self.groups[group], run_indexes, self.next_cmd, self.at, self.inflight, self.cmds)

    # -- groups -----------------------------------------------------------

    def set_group(self, index: int, **changes: Any) -> None:
        """Change a group; a new phase or stage counts as one transition."""
        old = self.groups[index]
        new = evolve(old, **changes)
        self.groups[index] = new
        if (new.phase, new.stage) != (old.phase, old.stage):
            self.transitions += 1
            for name in self.ctx.groups[index].services:
                self.services[name] = evolve(self.services[name], phase=new.phase)
            if new.phase != old.phase:
                self._relive(index)

    def _relive(self, index: int) -> None:
        """A group's phase changed: it and the groups waiting on it may enter or leave `live`."""
        if isinstance(self.live, frozenset):
            self.live = set(self.live)
        live = self.live
        for i in (index, *self.ctx.succs[index]):
            if is_live(self.ctx, self.groups, i):
                if i not in live:
                    live.add(i)
                    self.live_added.append(i)
            else:
                live.discard(i)

    def moved(self, index: int) -> bool:
        return group_moved(self.services, self.ctx.groups[index].services)

    # -- result -----------------------------------------------------------

    def commit(self) -> tuple[RolloutState, list[Command]]:
        state = build(RolloutState, (
            self.ctx, self.phase, self.at, self.started_at, self.services, tuple(self.groups),
            self.inflight, self.next_cmd, self.hold, self.frozen_at, self.stepping,
            self.rollback_queue, self.rollback_final, self.approved_waves, self.transitions,
            self.moved_count, self.reason, self.readback_at, self.readback_cmd,
            live_groups(self.ctx, self.groups) if self.full
            else self.live if isinstance(self.live, frozenset) else frozenset(self.live),
            self.wave_votes, self.starter, self.window_opens, self.window_note,
        ))  # in RolloutState's field order
        return state, self.cmds


def ask_measurements(
    ctx: Context, group: GroupState, run_indexes: list[int], next_cmd: int, at: float,
    inflight: dict[int, Command], cmds: list[Command],
) -> tuple[GroupState, int]:
    """`group` after asking for the next measurement of the gate runs at `run_indexes`, and
    the next command id. Each `Measure` goes into `inflight` and `cmds`; it differs from the
    run's last one only in `cmd_id`: its fields come from the context. (`Tx.measure`, and
    `core.quiet.quiet_tick` without a working copy.)"""
    runs = list(group.gates)
    measures = ctx.measures
    for i in run_indexes:
        run = runs[i]
        fields = measures[run.service, run.gate].copy()
        fields["cmd_id"] = cmd_id = next_cmd
        cmd = _new(Measure)
        _set(cmd, "__dict__", fields)
        next_cmd += 1
        inflight[cmd_id] = cmd
        cmds.append(cmd)
        # `evolve(run, next_at=None, pending=cmd_id, asked_at=at)`, written out: a dict copy
        # with the changes set in it (a tick of a long bake asks for three of these).
        values = run.__dict__.copy()
        values["next_at"] = None
        values["pending"] = cmd_id
        values["asked_at"] = at
        new = _new(GateRun)
        _set(new, "__dict__", values)
        runs[i] = new
    values = group.__dict__.copy()
    values["gates"] = tuple(runs)
    after = _new(GroupState)
    _set(after, "__dict__", values)
    return after, next_cmd
