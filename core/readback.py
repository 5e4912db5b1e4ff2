"""Reading the world back: each flag, route and mirror compared with the journal, on its own.

A service may be exposed through a flag *and* a route. Comparing the lower of the
two with the journal let a raised route hide behind an untouched flag, so every
target is compared by itself: a difference either way, on any target, is a
difference. The same comparison serves the reconcile after a restart, the read
after a hold, and the periodic read-back of `policy.readback` that notices a hand
edit while a service is exposed. The periodic read is a command and its answer an
event, like everything else, so a replay reaches the same state.

A shadowed service's mirror (`core.shadow`) is one more target, `mirror:SERVICE`: the
journal says it is on while the group shadows and off otherwise, and a mirror found
otherwise (turned off behind interlock's back, so the shadow gates judge nothing, or left
on, copying requests the plan no longer expects) holds the rollout like a flag would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.commands import ReadExposure, SetExposure, SetMirror
from core.evolve import evolve
from core.events import ExposureRead
from core.ports import FlagService, Mirror, Router
from core.state import Context, exposure_keys
from core.tx import Tx

MIRROR = "mirror:"
"""The prefix of a mirror's key among a read-back's targets: `mirror:SERVICE`."""

READ_BACK_TOLERANCE = 0.5
"""Percentage points a read-back may differ by: routers hold integer weights (HAProxy out of 100)."""

Difference = tuple[str, str, float, float]
"""(service, target, journal says, the target says)."""


def target_keys(ctx: Context, service: str) -> list[str]:
    """The service's targets as read-backs name them: `flag:NAME`, `route:NAME`."""
    return exposure_keys(ctx.exposure[service])


def differences(tx: Tx, event: ExposureRead) -> list[Difference]:
    """Every target whose reading matches neither the journal's exposure nor a setting
    still in flight for its service. Journals from before per-target reads carry only
    a summary per service: that is compared instead.

    A read-back answers for every exposed target (most of a large plan, once promoted),
    so the common answer, "nothing differs", is found by one pass over the readings
    (`_agrees`); only a read-back that differs somewhere is explained in full."""
    if event.targets and not tx.full and _agrees(tx, event.targets):
        return []
    return all_differences(tx, event)


def all_differences(tx: Tx, event: ExposureRead) -> list[Difference]:
    """`differences` the long way: every service in name order, each target compared."""
    out: list[Difference] = []
    pending = _pending(tx)
    for name in sorted(tx.services):
        if event.targets:
            readings = [(key, event.targets[key]) for key in target_keys(tx.ctx, name) if key in event.targets]
        else:
            readings = [(name, event.exposures[name])] if name in event.exposures else []
        expected = tx.services[name].exposure
        acceptable = {expected}
        acceptable.update(pending.get(name, ()))
        for key, actual in readings:
            if all(abs(actual - value) > READ_BACK_TOLERANCE for value in acceptable):
                out.append((name, key, expected, actual))
        mirror = event.targets.get(MIRROR + name)
        if mirror is not None and not _mirror_agrees(tx, name, mirror):
            out.append((name, MIRROR + name, tx.services[name].mirror, mirror))
    return out


def _mirror_agrees(tx: Tx, name: str, actual: float) -> bool:
    """The mirror reads as the journal says (on while shadowing, off otherwise). While a
    `SetMirror` of the service is in flight it is changing (the journal's `mirror` is the
    commanded value, and the read may have been taken before the command landed): it is
    judged by the next read."""
    if any(isinstance(c, SetMirror) and c.service == name for c in tx.inflight.values()):
        return True
    return abs(actual - tx.services[name].mirror) <= READ_BACK_TOLERANCE


def _pending(tx: Tx) -> dict[str, list[float]]:
    """In-flight exposure settings per service, gathered once."""
    pending: dict[str, list[float]] = {}
    for c in tx.inflight.values():
        if isinstance(c, SetExposure):
            pending.setdefault(c.service, []).append(c.percent)
    return pending


def _agrees(tx: Tx, targets: Mapping[str, float]) -> bool:
    """True when `all_differences` would find nothing: each reading is within tolerance
    of its service's exposure or of a setting in flight for it."""
    owners = tx.ctx.target_owners.get
    services = tx.services
    state_of = services.get
    pending: dict[str, list[float]] | None = None
    for key, actual in targets.items():
        names = owners(key)
        if names is None:  # a mirror (`mirror:` keys are no flag's or route's), or unknown
            if key.startswith(MIRROR) and key[len(MIRROR):] in services \
                    and not _mirror_agrees(tx, key[len(MIRROR):], actual):
                return False
            continue
        for name in names:
            state = state_of(name)
            if state is None or abs(actual - state.exposure) <= READ_BACK_TOLERANCE:
                continue
            if pending is None:
                pending = _pending(tx)
            if all(abs(actual - value) > READ_BACK_TOLERANCE for value in pending.get(name, ())):
                return False
    return True


def reapply(tx: Tx) -> None:
    """The operator's `resume` of a held difference: every service that differed gets the
    journal's state again (its exposure, and its mirror where that differed). The journal's
    value now, not when the difference was seen: a rollback may have lowered it since."""
    assert tx.hold is not None
    for name in tx.hold.mismatch:
        cohort = tx.ctx.groups[tx.ctx.graph.group_of[name]].cohort
        tx.set_exposure(name, tx.services[name].target, cohort, force=True)
        if any(key == MIRROR + name for key, _, _ in tx.hold.differences):
            tx.set_mirror(name, tx.services[name].mirror, force=True)
    tx.hold = evolve(tx.hold, reason="re-applying the journal's state", mismatch={}, differences=(), reading=None)


def describe_differences(found: list[Difference]) -> str:
    return ", ".join(
        f"{key.replace(':', ' ', 1)} reads {actual:g}% (journal {expected:g}%)" for _, key, expected, actual in found
    )


def exposed(tx: Tx) -> list[str]:
    """The services serving (or commanded to serve) the new version, or copying requests to
    it (a shadow's mirror), in name order."""
    services = tx.services
    if tx.full or len(services) != len(tx.ctx.moving_sorted):
        return sorted(name for name, s in services.items() if s.moved or s.mirror > 0)
    return [name for name in tx.ctx.moving_sorted  # `moved`; float to float compares faster than to 0
            if (s := services[name]).exposure > 0.0 or s.target > 0.0 or s.mirror > 0.0]


ReadKeys = Mapping[str, tuple[str | None, str, str | None, str]]
"""Moving service → (its flag, `flag:FLAG`, its route, `route:ROUTE`): `read_keys`."""


def read_keys(ctx: Context) -> dict[str, tuple[str | None, str, str | None, str]]:
    """What a read-back reads for each moving service, and the keys it files the readings
    under, built once for a run (the engine keeps it): a read-back of most of a large plan
    otherwise looked up each service's handle and built both keys, every 30 s."""
    out: dict[str, tuple[str | None, str, str | None, str]] = {}
    for name, handle in ctx.exposure.items():
        flag, route = handle.flag, handle.route
        out[name] = (flag, "" if flag is None else "flag:" + flag, route, "" if route is None else "route:" + route)
    return out


async def read_back(
    ctx: Context, services: Sequence[str], flags: FlagService, router: Router, mirror: Mirror | None,
    keys: ReadKeys | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """(service → its lowest reading, for people; `flag:NAME`/`route:NAME`/`mirror:SERVICE` →
    reading, each target on its own, which is what the reducer compares). A periodic
    read-back reads every exposed target (most of a large plan): the loop is kept tight,
    with the keys of `read_keys` (built here when not given).
    A shadowed service's mirror is read where something mirrors (else nothing can be on)."""
    out: dict[str, float] = {}
    targets: dict[str, float] = {}
    if keys is None:
        keys = read_keys(ctx)
    get_rollout, get_weight = flags.get_rollout, router.get_weight
    shadows = ctx.shadowed if mirror is not None else frozenset()
    for name in services:
        flag, flag_key, route, route_key = keys[name]
        if route is None:  # the common case: a flag alone (or nothing)
            if flag is None:
                out[name] = 0.0
            else:
                targets[flag_key] = out[name] = await get_rollout(flag)
        else:
            low: float | None = None
            if flag is not None:
                targets[flag_key] = low = await get_rollout(flag)
            targets[route_key] = value = await get_weight(route)
            out[name] = value if low is None or value < low else low  # min(flag, route), as min() picks
        if shadows and name in shadows:
            assert mirror is not None
            targets[MIRROR + name] = await mirror.get_mirror(name, route)
    return out, targets


def sync_readback(tx: Tx) -> None:
    """Keep the periodic read-back due while a service is exposed: first due one
    `policy.readback` after exposure begins, then one after each answer. It is sent
    while the rollout runs or is paused (a person may edit a flag during a pause), not
    while held (a hold reads back on its own), and never across a setting: not while one is
    in flight, and a read out when one is sent is dropped (`Tx._crossed`), since it may
    have been taken before the setting landed."""
    if tx.phase not in ("running", "paused") or not any(
        s.exposure > 0 or s.target > 0 or s.mirror > 0 for s in tx.services.values()  # `exposed`, stopping at one
    ):
        tx.readback_at = None
        return
    if tx.readback_cmd is not None:
        return
    interval = tx.ctx.plan.policy.readback
    if tx.readback_at is None:
        tx.readback_at = tx.at + interval
    elif tx.hold is None and tx.at >= tx.readback_at:
        if any(isinstance(c, (SetExposure, SetMirror)) for c in tx.inflight.values()):
            tx.readback_at = tx.at + interval  # read once settings land: a read they cross says nothing
            return
        cmd = tx.emit(ReadExposure, services=tuple(exposed(tx)))
        tx.readback_cmd = cmd.cmd_id
        tx.readback_at = None


def readback_due(readback_at: float | None, at: float) -> bool:
    return readback_at is not None and at >= readback_at
