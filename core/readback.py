"""Reading the world back: each flag and route compared with the journal, on its own.

A service may be exposed through a flag *and* a route. Comparing the lower of the
two with the journal let a raised route hide behind an untouched flag, so every
target is compared by itself: a difference either way, on any target, is a
difference. The same comparison serves the reconcile after a restart, the read
after a hold, and the periodic read-back of `policy.readback` that notices a hand
edit while a service is exposed. The periodic read is a command and its answer an
event, like everything else, so a replay reaches the same state.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.commands import ReadExposure, SetExposure
from core.events import ExposureRead
from core.state import Context, exposure_keys
from core.tx import Tx

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
        if not readings:
            continue
        expected = tx.services[name].exposure
        acceptable = {expected}
        acceptable.update(pending.get(name, ()))
        for key, actual in readings:
            if all(abs(actual - value) > READ_BACK_TOLERANCE for value in acceptable):
                out.append((name, key, expected, actual))
    return out


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
    owners = tx.ctx.target_owners
    services = tx.services
    pending: dict[str, list[float]] | None = None
    for key, actual in targets.items():
        for name in owners.get(key, ()):
            state = services.get(name)
            if state is None or abs(actual - state.exposure) <= READ_BACK_TOLERANCE:
                continue
            if pending is None:
                pending = _pending(tx)
            if all(abs(actual - value) > READ_BACK_TOLERANCE for value in pending.get(name, ())):
                return False
    return True


def describe_differences(found: list[Difference]) -> str:
    return ", ".join(
        f"{key.replace(':', ' ', 1)} reads {actual:g}% (journal {expected:g}%)" for _, key, expected, actual in found
    )


def exposed(tx: Tx) -> list[str]:
    """The services serving (or commanded to serve) the new version, in name order."""
    services = tx.services
    if tx.full or len(services) != len(tx.ctx.moving_sorted):
        return sorted(name for name, s in services.items() if s.moved)
    return [name for name in tx.ctx.moving_sorted if (s := services[name]).exposure > 0 or s.target > 0]  # `moved`


def sync_readback(tx: Tx) -> None:
    """Keep the periodic read-back due while a service is exposed: first due one
    `policy.readback` after exposure begins, then one after each answer. It is sent
    while the rollout runs or is paused (a person may edit a flag during a pause), not
    while held (a hold reads back on its own)."""
    if tx.phase not in ("running", "paused") or not any(
        s.exposure > 0 or s.target > 0 for s in tx.services.values()  # `exposed`, stopping at one
    ):
        tx.readback_at = None
        return
    if tx.readback_cmd is not None:
        return
    interval = tx.ctx.plan.policy.readback
    if tx.readback_at is None:
        tx.readback_at = tx.at + interval
    elif tx.hold is None and tx.at >= tx.readback_at:
        cmd = tx.emit(ReadExposure, services=tuple(exposed(tx)))
        tx.readback_cmd = cmd.cmd_id
        tx.readback_at = None


def readback_due(readback_at: float | None, at: float) -> bool:
    return readback_at is not None and at >= readback_at
