"""Deterministic sessions for console tests: a virtual clock the test holds back.

`HeldClock` (`core.clock`) is a virtual clock (time jumps to the next deadline,
so runs are exact for a seed) that refuses to pass `limit`: the engine then
waits, idle, until the test moves the limit or an operator action arrives (the
engine interrupts its clock on `submit`, `wake` and `stop`). `freeze_when` stops time at
the first state that satisfies a predicate, so a snapshot or a key press
lands on exactly the same state every run. `GatedFlags` holds exposure
changes to 0% until released, to catch a rollback halfway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections.abc import Callable
from pathlib import Path

from core.clock import HeldClock
from core.events import OperatorAction
from core.schedule import next_deadline
from core.state import RolloutState
from tui.session import runtime
from tui.session.assembly import Adapters, assemble
from tui.console.app import InterlockApp
from tui.console.widgets.detail import GateChart

OPERATOR = "ops@console-test"
SIZE = (160, 50)


class GatedFlags:
    """Flag service wrapper: with `hold_zero`, setting a flag to 0% waits for `release`."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.hold_zero = False
        self._open = asyncio.Event()

    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        if self.hold_zero and percent == 0:
            await self._open.wait()
        await self.inner.set_rollout(flag, percent, cohort)  # type: ignore[attr-defined]

    async def get_rollout(self, flag: str) -> float:
        return await self.inner.get_rollout(flag)  # type: ignore[attr-defined]

    async def inspect(self, flag: str) -> object:
        return await self.inner.inspect(flag)  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self.inner.aclose()  # type: ignore[attr-defined]

    def release(self) -> None:
        self.hold_zero = False
        self._open.set()


def _rewire(base: runtime.Session, clock: HeldClock, gated_flags: bool) -> runtime.Session:
    """`base`'s run from its engine's state on, on `clock` (and behind `GatedFlags`)."""
    world = base.world
    assert world is not None
    flags = GatedFlags(world.flags) if gated_flags else world.flags
    adapters = Adapters(world, flags, world.router, world.metrics, None, world.mirror, world.checks)  # type: ignore[arg-type]
    return assemble(
        base.engine.state, plan=base.plan, graph=base.graph, info=base.info, journal=base.journal,
        clock=clock, lease=base.engine.lease, adapters=adapters, interactive=True, resuming=False,
    )


def gated_session(
    plan: Path, tmp: Path, *, seed: int = 0, limit: float = math.inf, gated_flags: bool = False
) -> runtime.Session:
    """A new run of `plan` on a `HeldClock`, journaled in `tmp`."""
    base = runtime.start_run(plan, journal_path=tmp / "journal.db", seed=seed, clock="virtual", interactive=True)
    clock = HeldClock(limit=limit)
    return _rewire(base, clock, gated_flags)


def prerun(
    plan: Path,
    tmp: Path,
    until: Callable[[RolloutState], bool] | None = None,
    *,
    seed: int = 0,
    gated_flags: bool = False,
) -> runtime.Session:
    """Run `plan` without a console until `until` holds (or to its end), then hand back a
    session that continues from there, held at that moment: the console opens on it,
    replays the journal so far onto its screen, and nothing moves until the test says so.
    """
    first = gated_session(plan, tmp, seed=seed)
    clock = first.clock
    assert isinstance(clock, HeldClock)
    if until is not None:
        freeze_when(first, until)

    def idle() -> bool:
        state = first.engine.state
        if state.inflight:
            return False
        return clock.waiting or (next_deadline(state) is None and state.phase != "planned")

    async def run() -> None:
        task = asyncio.create_task(first.engine.run())
        deadline = time.monotonic() + 30
        while not task.done() and not idle():
            if time.monotonic() > deadline:
                raise AssertionError("the rollout never reached the asked-for moment")
            await asyncio.sleep(0.001)
        first.engine.stop()
        await task

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
    else:  # called from an async test: run the engine's loop in a thread of its own
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run()).result()
    return _rewire(first, HeldClock(start=clock.now(), limit=clock.limit), gated_flags)


def freeze_when(session: runtime.Session, predicate: Callable[[RolloutState], bool]) -> None:
    """Stop the clock at the first published state that satisfies `predicate`."""
    clock = session.clock
    assert isinstance(clock, HeldClock)

    def check(state: RolloutState, events: object) -> None:
        if clock.limit == math.inf and predicate(state):
            clock.freeze()

    session.engine.subscribe(check)


def at_minute(minutes: float) -> Callable[[RolloutState], bool]:
    def reached(state: RolloutState) -> bool:
        return state.started_at is not None and state.at - state.started_at >= minutes * 60

    return reached


def settled(app: InterlockApp) -> bool:
    """The engine has nothing left to do without the test, and the screen shows its state."""
    session = app.session
    assert session is not None
    state = session.engine.state
    if app._pending or (app.state is not state and app.state != state):
        return False
    if any(chart.pending for chart in app.query(GateChart)):
        return False
    if not app.engine_running:
        return app.final_state is not None  # not started yet, or stopped
    clock = session.clock
    idle = not state.inflight and next_deadline(state) is None
    return bool(getattr(clock, "waiting", False)) or idle


async def wait_for(pilot: object, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (bounded; fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)  # type: ignore[attr-defined]


async def settle(pilot: object) -> None:
    app = pilot.app  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: settled(app))
    await pilot.pause()  # type: ignore[attr-defined]


def operator_actions(session: runtime.Session) -> list[OperatorAction]:
    return [r.event for r in session.journal.records(session.info.run_id) if isinstance(r.event, OperatorAction)]


def console(session: runtime.Session) -> InterlockApp:
    return InterlockApp(session, operator=OPERATOR)
