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

from core.commands import ReadExposure, SetExposure
from core.events import ExposureRead
from core.state import Context
from core.tx import Tx

READ_BACK_TOLERANCE = 0.5
"""Percentage points a read-back may differ by: routers hold integer weights (HAProxy out of 100)."""

Difference = tuple[str, str, float, float]
"""(service, target, journal says, the target says)."""


def target_keys(ctx: Context, service: str) -> list[str]:
    """The service's targets as read-backs name them: `flag:NAME`, `route:NAME`."""
    handle = ctx.exposure[service]
    keys = [f"flag:{handle.flag}"] if handle.flag is not None else []
    if handle.route is not None:
        keys.append(f"route:{handle.route}")
    return keys


def differences(tx: Tx, event: ExposureRead) -> list[Difference]:
    """Every target whose reading matches neither the journal's exposure nor a setting
    still in flight for its service. Journals from before per-target reads carry only
    a summary per service: that is compared instead."""
    out: list[Difference] = []
    pending: dict[str, list[float]] = {}  # in-flight settings per service, gathered once
    for c in tx.inflight.values():
        if isinstance(c, SetExposure):
            pending.setdefault(c.service, []).append(c.percent)
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


def describe_differences(found: list[Difference]) -> str:
    return ", ".join(
        f"{key.replace(':', ' ', 1)} reads {actual:g}% (journal {expected:g}%)" for _, key, expected, actual in found
    )


def exposed(tx: Tx) -> list[str]:
    return sorted(name for name, s in tx.services.items() if s.moved)


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
