"""Putting a run together: the adapters a plan needs (`connect`) and the one place an `Engine`
is built with them, a journal, a clock and a lease (`assemble`), into a `Session`.

`tui.session.runtime` decides what a new or resumed run needs (the plan, the journal, the lease, the
pre-flight read) and comes here for the parts; drills and the console tests do too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, NamedTuple, Sequence

from adapters.journals import SharedJournal
from adapters.sim.world import SimWorld
from core import (
    CheckRunner,
    Clock,
    Engine,
    Event,
    FlagService,
    Lease,
    MetricSource,
    Mirror,
    Plan,
    RolloutGraph,
    RolloutState,
    Router,
    RunInfo,
    SourceMap,
)
from tui.session.backlog import Backlog


@dataclass
class Session:
    """One run of a plan, wired up and ready to `await engine.run(resuming=...)`."""

    engine: Engine
    journal: SharedJournal
    info: RunInfo
    plan: Plan
    graph: RolloutGraph
    clock: Clock
    world: SimWorld | None
    resuming: bool
    close_adapters: Callable[[], Awaitable[None]] | None = None
    backlog: Backlog | None = None
    """The journal so far as a console shows it first, gathered by resume's own replay."""
    """Closes the real adapters' HTTP clients; await it inside the loop that used them."""

    async def aclose(self) -> None:
        if self.close_adapters is not None:
            await self.close_adapters()


class Adapters(NamedTuple):
    """The ports a run drives: the simulated world's faces, or the plan's real services."""

    world: SimWorld | None
    flags: FlagService
    router: Router
    metrics: MetricSource
    close: Callable[[], Coroutine[Any, Any, None]] | None
    """Closes the real adapters' HTTP clients (None for the simulated world)."""
    mirror: Mirror | None = None
    """Copies live requests for shadow stages (`core.shadow`); None where nothing can."""
    checks: CheckRunner | None = None
    """Runs pre-flight checks and calls hooks (`adapters.checks`, or the world's)."""


def connect(
    plan: Plan, graph: RolloutGraph, *, seed: int, clock: Clock, owner: str,
    state_path: Path | None = None, source: SourceMap | None = None,
) -> Adapters:
    """The simulated world (its flag/route state kept at `state_path`, if given), or the
    plan's real services acting for run `owner` (Unleash marks interlock's strategy with it)."""
    if not plan.simulated:
        from adapters.environment import build_adapters

        from adapters.checks import HttpChecks, secrets_of
        from adapters.environment import build_mirror

        flags, router, metrics, close = build_adapters(plan, clock=clock, source=source, owner=owner)
        mirror, close = build_mirror(plan, router, close)
        checks = HttpChecks(secrets_of(plan))

        async def close_all() -> None:
            try:
                await checks.aclose()
            finally:
                if close is not None:
                    await close()

        return Adapters(None, flags, router, metrics, close_all, mirror, checks)
    world = SimWorld(plan, graph, seed=seed, state_path=state_path, clock=clock)
    return Adapters(world, world.flags, world.router, world.metrics, None, world.mirror, world.checks)


def relaxed_commits(*, simulated: bool, virtual: bool) -> bool:
    """Whether a run's journal commits without waiting for the disk (`SqliteJournal.relax_sync`):
    only a virtual clock over the simulated world, which lives in this process and whose own
    state file is never synced either. Real adapters and every real-clock run keep a synced
    commit before each command. The one home of this rule: `assemble`, `start_run` and drills
    (which open the journal relaxed from the start) ask here."""
    return simulated and virtual


def assemble(
    state: RolloutState, *, plan: Plan, graph: RolloutGraph, info: RunInfo, journal: SharedJournal,
    clock: Clock, lease: Lease | None, adapters: Adapters, interactive: bool, resuming: bool,
    opening: Sequence[Event] = (), command_timeout: float = 10.0, backlog: Backlog | None = None,
) -> Session:
    """The one place an `Engine` is put together with its adapters, journal, clock and lease:
    a new run, a resumed one, a drill and the stack demo all come through here.

    A virtual clock over the simulated world commits each round of events before its
    commands run without waiting for the disk (`SqliteJournal.relax_sync`): that world
    lives in this process and its state file is never synced either. Real adapters, and
    every real-clock run, keep a synced commit before each command."""
    if relaxed_commits(simulated=adapters.world is not None, virtual=clock.virtual):
        journal.relax_sync()
    engine = Engine(
        state, clock=clock, journal=journal, run_id=info.run_id,
        flags=adapters.flags, router=adapters.router, metrics=adapters.metrics, seed=info.seed,
        interactive=interactive, lease=lease, opening=opening, command_timeout=command_timeout,
        mirror=adapters.mirror,
        checks=adapters.checks,
        operator=info.operator,
    )
    if plan.notify:
        from adapters.notify import Notifier

        Notifier(plan.notify, info.run_id).attach(engine)
    return Session(engine, journal, info, plan, graph, clock, adapters.world, resuming=resuming,
                   close_adapters=adapters.close, backlog=backlog)
