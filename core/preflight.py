"""Pre-flight: read the world before the first command, and refuse what is not as planned.

A fresh run used to start from the plan's idea of the world (everything at 0%)
without looking: after one rollout finished, running the plan again put
`features` back to 20% while its consumers stayed at 100%, the very
contract-crossing state interlock exists to prevent. So every fresh run reads
every flag and route of its plan through the ports first, and stops before
anything changes when a target is not at the plan's starting state, is marked
by another run, or (with `strict`) has something else exposing users. A shadowed
service's mirror is read too: a mirror found on copies live requests to a version the
plan has not started, so it refuses the run like a flag not at 0%. `--adopt`
starts from what was found instead; the caller journals that as an `Adopted`
event. This module reads and judges; it never writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Container, Literal, Mapping

from core.plan import Exposure
from core.ports import FlagService, Mirror, Router, TargetReading
from core.readback import MIRROR, READ_BACK_TOLERANCE

RefusalKind = Literal["world", "driver"]


class Refused(Exception):
    """A run refused before its first command. `lines` are safe to show, one problem
    each; `kind` is `world` (the world is not as the plan expects: exit 7) or `driver`
    (another run drives this rollout or one of its targets: exit 8)."""

    def __init__(self, lines: list[str], kind: RefusalKind = "world") -> None:
        self.lines = lines
        self.kind = kind
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Found:
    """One target as the pre-flight read found it."""

    service: str
    target: str
    """`flag:NAME` or `route:NAME`, as read-backs name targets."""
    reading: TargetReading


@dataclass(frozen=True)
class Report:
    found: tuple[Found, ...]
    refusals: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    adopted: Mapping[str, float] = field(default_factory=dict)
    """Service → the percent the run starts from (with `adopt`; only services not at 0%)."""

    @property
    def targets(self) -> dict[str, float]:
        return {f.target: f.reading.percent for f in self.found}


async def read_targets(
    exposure: Mapping[str, Exposure], flags: FlagService, router: Router,
    mirror: Mirror | None = None, shadowed: Container[str] = (),
) -> list[Found]:
    """Every flag and route of the moving services, and the mirror of each `shadowed` one
    (where something mirrors), read from the services themselves."""
    out: list[Found] = []
    for service in sorted(exposure):
        handle = exposure[service]
        if handle.flag is not None:
            out.append(Found(service, f"flag:{handle.flag}", await flags.inspect(handle.flag)))
        if handle.route is not None:
            out.append(Found(service, f"route:{handle.route}", await router.inspect_route(handle.route)))
        if mirror is not None and service in shadowed:
            percent = await mirror.get_mirror(service, handle.route)
            out.append(Found(service, MIRROR + service, TargetReading(percent)))
    return out


def _name(target: str) -> str:
    return target.replace(":", " ", 1)


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > READ_BACK_TOLERANCE


def judge(
    found: list[Found],
    *,
    run_id: str,
    finished_runs: Container[str],
    adopt: bool = False,
    strict: bool = False,
    start: float = 0.0,
    ours: Container[str] = (),
) -> Report:
    """The verdict on what was read. `finished_runs` are this journal's ended runs: a
    target still marked by one of them is ours to take; a mark of any other run is
    another driver's (an interlock on another journal, or one still running here).
    A mirror found on refuses like a flag not at 0% (`--adopt` takes it as found), unless
    it is in `ours`: left on by the run being abandoned, which the start turns off."""
    refusals: list[str] = []
    warnings: list[str] = []
    by_service: dict[str, list[Found]] = {}
    for item in found:
        if item.target.startswith(MIRROR):
            if _differs(item.reading.percent, 0.0) and not adopt and item.target not in ours:
                refusals.append(
                    f"mirror {item.service}: found on ({item.reading.percent:g}% of its requests copied to the "
                    "new version), the plan starts with it off; turn it off, or start from it with --adopt --reason TEXT"
                )
            continue
        by_service.setdefault(item.service, []).append(item)
        reading, name = item.reading, _name(item.target)
        owner = reading.owner
        foreign = bool(owner) and owner != run_id and owner not in finished_runs
        if foreign and _differs(reading.percent, start):
            refusals.append(
                f"{name} ({item.service}): at {reading.percent:g}% and marked by run {owner}, which is not a "
                "finished run of this journal; another interlock drives it (finish or abandon that run first)"
            )
        elif foreign and adopt:  # nobody exposed, and the operator takes it over on the record
            warnings.append(f"{name} ({item.service}): last moved by run {owner}, which this journal does not know")
            if strict:
                refusals.append(f"{name} ({item.service}): last moved by run {owner}, which this journal does "
                                "not know (refused with --strict)")
        elif foreign:  # nobody exposed yet, but an interlock elsewhere may be about to move it: never guess
            refusals.append(
                f"{name} ({item.service}): last moved by run {owner}, which this journal does not know; "
                "if that interlock has finished, take the target over with --adopt --reason TEXT"
            )
        for warning in reading.warnings:
            warnings.append(f"{name} ({item.service}): {warning}")
            if strict:
                refusals.append(f"{name} ({item.service}): {warning} (refused with --strict)")
        if _differs(reading.percent, start) and not adopt and not foreign:
            what = f"{reading.percent:g}%" + (f" ({reading.detail})" if reading.detail else "")
            refusals.append(
                f"{name} ({item.service}): found {what}, the plan starts at {start:g}%; "
                "set it back, or start from it with --adopt --reason TEXT"
            )
    adopted: dict[str, float] = {}
    if adopt:
        for service, items in sorted(by_service.items()):
            values = {round(i.reading.percent, 6) for i in items}
            if len(values) > 1:
                shown = ", ".join(f"{_name(i.target)} {i.reading.percent:g}%" for i in items)
                refusals.append(f"{service}: its targets disagree ({shown}); set them alike before --adopt")
            elif _differs(items[0].reading.percent, start):
                adopted[service] = items[0].reading.percent
    return Report(tuple(found), tuple(refusals), tuple(warnings), adopted)
