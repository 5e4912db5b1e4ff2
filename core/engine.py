"""The engine: journal first, then reduce, then act; on plain asyncio.

One loop owns the state. Events come from command outcomes, the operator
(`submit`), scheduled callbacks (drills) and the clock (`Tick` at the
state's next deadline). Each batch is appended to the journal *before* it is
reduced, so a crash never loses an event whose commands ran. Commands run as
tasks behind the ports; exposure changes to one service run strictly in
order, so a late answer can never overwrite a newer setting.

On a virtual clock, time jumps to the next deadline only when nothing is in
flight, which makes a run deterministic for a given seed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Awaitable, Callable, Iterable, Sequence

from core.clock import Clock
from core.checking import bound, probe
from core.commands import Command, Measure, Probe, ReadExposure, SetExposure, SetMirror
from core.coverage import measurement_gaps
from core.evolve import evolve
from core.measuring import measure
from core.events import (
    CheckFinished,
    CommandFailed,
    Event,
    ExposureApplied,
    ExposureRead,
    GateMisconfigured,
    Measured,
    MirrorApplied,
    Resumed,
    RolloutStarted,
    Tick,
)
from core.ports import (
    AdapterError, CheckRunner, ConfigurationError, FlagService, Journal, Lease, LeaseLost, MetricSource, Mirror,
    NoCheckRunner, Router,
)
from core.readback import ReadKeys, read_back, read_keys
from core.reducer import reduce
from core.schedule import next_deadline
from core.state import RolloutState

Subscriber = Callable[[RolloutState, Sequence[Event]], None]
Scheduled = Callable[[], Awaitable[list[Event]]]

GAP_WALL_SLACK = 3.0
"""Wall seconds a deadline may be missed by (a busy machine) before it can count as a gap
in the bake's measurements (`core.coverage`); an answer may take the command timeout more."""

MAX_VIRTUAL_HOLD_RETRIES = 40
"""On a virtual clock with nothing else scheduled, give up waiting for an adapter after this."""

def safe_message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, AdapterError) else f"{type(exc).__name__}: {text}"


def _no_progress(event: Event) -> bool:
    return isinstance(event, (Tick, CommandFailed)) or (
        isinstance(event, ExposureRead) and event.error is not None
    )


class Engine:
    """Drives one rollout. Create it, `await run()`, `submit()` operator actions meanwhile."""

    def __init__(
        self,
        state: RolloutState,
        *,
        clock: Clock,
        journal: Journal,
        run_id: str,
        flags: FlagService,
        router: Router,
        metrics: MetricSource,
        seed: int = 0,
        interactive: bool = False,
        command_timeout: float = 10.0,
        lease: Lease | None = None,
        linger: bool = False,
        opening: Sequence[Event] = (),
        mirror: Mirror | None = None,
        checks: CheckRunner | None = None,
        operator: str = "",
    ):
        self.state = state
        self.mirror = mirror
        """Copies live requests for shadow stages; None where nothing can (validation refuses
        a shadow there, so a `SetMirror` then fails and holds)."""
        self.clock = clock
        self.journal = journal
        self.run_id = run_id
        self.flags = flags
        self.router = router
        self.metrics = metrics
        self.seed = seed
        self.interactive = interactive
        """Wait for the operator when nothing else can happen (a console), instead of returning."""
        self.command_timeout = command_timeout
        self.lease = lease
        self.checks: CheckRunner = checks if checks is not None else NoCheckRunner()
        """Runs pre-flight checks and calls hooks (`Probe` commands)."""
        self.operator = operator
        """Who started the run: journaled on its `RolloutStarted` (governance's separation)."""
        self.opening = tuple(opening)
        """Events a fresh run journals with its `RolloutStarted` (an `Adopted`)."""
        self.linger = linger
        """Keep serving operator actions after the rollout ends (a console may still roll
        back a service a failure left alone) until `stop()`."""
        """The right to drive this run; checked before every batch's commands go out."""
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._busy = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        """`spawn`ed work (notifications): never in flight for the clock, awaited before the run ends."""
        self._timers: list[tuple[float, int, Scheduled]] = []
        self._timer_seq = itertools.count()
        self._subscribers: list[Subscriber] = []
        self._stopping = False
        self._unjournaled: list[Event] = []
        """Virtual clock: events reduced but not yet appended; none has led to a command."""
        self._read_keys: tuple[object, ReadKeys] | None = None
        """The run's context and its `core.readback.read_keys`, built at the first read-back."""

    # -- outside world --------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber(state, events)` after every applied batch."""
        self._subscribers.append(subscriber)

    def submit(self, event: Event) -> None:
        """Queue an event (an operator action); it is stamped with the clock's time on arrival."""
        self._queue.put_nowait(event)
        self.clock.interrupt()

    def wake(self) -> None:
        """Re-check deadlines now (the clock's speed changed)."""
        self._queue.put_nowait(None)
        self.clock.interrupt()

    def stop(self) -> None:
        """Leave the loop after the current batch; the journal keeps the rollout resumable."""
        self._stopping = True
        self._queue.put_nowait(None)
        self.clock.interrupt()

    def schedule(self, at: float, callback: Scheduled) -> None:
        """Run `callback` when the clock reaches `at`; the events it returns are journaled."""
        heapq.heappush(self._timers, (at, next(self._timer_seq), callback))

    # -- loop -----------------------------------------------------------

    async def run(self, *, resuming: bool = False) -> RolloutState:
        try:
            state = await self._run(resuming)
        except LeaseLost:
            for task in list(self._tasks):
                task.cancel()
            raise
        self._flush()
        await self._finish_background()
        return state

    def spawn(self, work: Callable[[], Awaitable[Event]]) -> None:
        """Run `work` beside the rollout and journal the (record-only) event it returns. Unlike a
        command it delays nothing: a virtual clock does not wait for it, and no command waits
        behind it; the run only waits for it before it ends (`run` returns)."""
        task = asyncio.get_running_loop().create_task(self._in_background(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _in_background(self, work: Callable[[], Awaitable[Event]]) -> None:
        event: Event | None = None
        try:
            event = await work()
        finally:
            # Out of the set before the loop can look: it must not wait for a task that is done.
            self._background.discard(asyncio.current_task())
            self._queue.put_nowait(event)  # None still wakes the loop
            self.clock.interrupt()

    async def _finish_background(self) -> None:
        """Wait for spawned work, and journal what it recorded after the loop ended."""
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        late = [e for e in self._drain_queue() if e.record_only]
        if late:
            self._append(late)

    async def _run(self, resuming: bool) -> RolloutState:
        if resuming:
            # Only what was in flight when the journal stopped is sent again: a command the
            # `Resumed` event itself emits (a read-back that fell due) is dispatched already.
            unanswered = sorted(self.state.inflight.values(), key=lambda c: c.cmd_id)
            await self._ingest([Resumed(at=self.clock.now(), note="resumed from the journal")])
            await self._reconcile()
            for cmd in unanswered:
                if cmd.cmd_id in self.state.inflight:
                    self._dispatch(cmd)
        if self.state.phase == "planned":
            start = RolloutStarted(at=self.clock.now(), rollout=self.state.ctx.plan.rollout, seed=self.seed,
                                   operator=self.operator)
            await self._ingest([*self.opening, start])
        idle_retries = 0
        while not self._stopping:
            if (self.state.finished and not self.linger and not self._busy and self._queue.empty()
                    and not self._background):
                break
            events = await self._next_events()
            if events is None:
                break
            if self.clock.virtual and self.state.hold is not None and not self._timers:
                # A retry that fails again is no progress either (else it retries forever).
                idle_retries = idle_retries + 1 if all(_no_progress(e) for e in events) else 0
                if idle_retries > MAX_VIRTUAL_HOLD_RETRIES:
                    break
            if events:
                await self._ingest(events)
        await self._drain_tasks()
        return self.state

    async def _next_events(self) -> list[Event] | None:
        if not self._queue.empty():
            return self._drain_queue()
        deadline = next_deadline(self.state)
        if not self.clock.virtual and (deadline is not None or self.interactive):
            deadline = next_deadline(self.state, readback=True)
        if self._timers and (deadline is None or self._timers[0][0] <= deadline):
            timer_at = self._timers[0][0]
        else:
            timer_at = None
        wake_at = timer_at if timer_at is not None else deadline
        if self.clock.virtual:
            if self._busy:
                return self._first_and_rest(await self._queue.get())
            if wake_at is None:
                if self.interactive or self._background:
                    self._flush()  # the operator may take minutes: watchers see everything first
                    return self._first_and_rest(await self._queue.get())
                return None
            await self.clock.sleep_until(wake_at)
        else:
            timeout = None if wake_at is None else max(0.0, self.clock.real_delay(wake_at))
            if wake_at is None and not self.interactive and not self._busy and not self._background:
                return None
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
                return self._first_and_rest(item)
            except asyncio.TimeoutError:
                pass
        now = self.clock.now()
        if timer_at is not None and timer_at <= now:
            return await self._fire_timers(now)
        return [Tick(at=now)]

    def _first_and_rest(self, item: Event | None) -> list[Event]:
        return self._stamp([item] if item is not None else []) + self._drain_queue()

    def _drain_queue(self) -> list[Event]:
        items: list[Event | None] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return self._stamp([e for e in items if e is not None])

    def _stamp(self, events: Iterable[Event]) -> list[Event]:
        """Each event at the clock's time (a command's outcome is built at 0). Events are
        plain frozen dataclasses: `evolve` copies one in C, where `dataclasses.replace`
        went through the constructor (most events of a run are stamped here)."""
        now = self.clock.now()
        return [e if e.at == now else evolve(e, at=now) for e in events]

    async def _fire_timers(self, now: float) -> list[Event]:
        out: list[Event] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            out.extend(self._stamp(await callback()))
        return out or [Tick(at=now)]

    def _gaps(self, at: float) -> list[Event]:
        """Bakes nobody measured since their gates were due (the process was frozen, the
        machine suspended): journaled before the batch that found them, so the reducer
        starts those bakes over. A virtual clock jumps only when nothing is in flight and
        never leaves one."""
        if self.clock.virtual:
            return []
        speed = self.clock.speed
        return list(measurement_gaps(
            self.state, at, late_floor=GAP_WALL_SLACK * speed,
            answer_floor=(self.command_timeout + GAP_WALL_SLACK) * speed,
        ))

    async def _ingest(self, events: list[Event]) -> None:
        """Journal, reduce, dispatch. On a real clock every batch is appended (durably)
        before it is reduced. On a virtual clock the batches are gathered and appended
        in one transaction just before the commands they led to can run: commands are
        tasks, and no task runs before this coroutine yields, so every event is still
        durable before its commands run, at one commit per round of commands instead
        of one per batch (the disk's sync dominated virtual runs)."""
        if events:
            events = self._gaps(events[0].at) + events
        if self.clock.virtual:
            self._unjournaled.extend(events)
        else:
            self._append(events)
        dispatched = False
        for event in events:
            self.state, commands = reduce(self.state, event)
            for cmd in commands:
                if not dispatched and self._unjournaled:
                    self._append(self._unjournaled)  # before the first task can be scheduled
                    self._unjournaled = []
                dispatched = True
                self._dispatch(cmd)
        for subscriber in self._subscribers:
            subscriber(self.state, events)

    def _append(self, events: list[Event]) -> None:
        self.journal.append(self.run_id, events)
        if self.lease is not None:
            self.lease.check()

    def _flush(self) -> None:
        """Journal what a virtual clock gathered (events that led to no command yet)."""
        if self._unjournaled:
            events, self._unjournaled = self._unjournaled, []
            self._append(events)

    async def _reconcile(self) -> None:
        """Read every exposure back after a restart; the reducer records any difference."""
        try:
            exposures, targets = await self._read(tuple(self.state.ctx.graph.moving))
            event = ExposureRead(at=self.clock.now(), cmd_id=0, exposures=exposures, targets=targets)
        except Exception as exc:  # noqa: BLE001 - any adapter failure is reported, not raised
            event = ExposureRead(at=self.clock.now(), cmd_id=0, error=safe_message(exc))
        await self._ingest([event])

    # -- commands -------------------------------------------------------

    def _dispatch(self, cmd: Command) -> None:
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._execute(cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, cmd: Command) -> None:
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` runs the outcome in a
        # task of its own (a task, a future and two callbacks per command, thousands in a
        # large rollout); 3.12's `wait_for` is this. Outcomes still run in dispatch order.
        try:
            limit = bound(cmd) if isinstance(cmd, Probe) else self.command_timeout
            async with asyncio.timeout(limit):
                event = await self._outcome(cmd)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an event
            event = self._failure(cmd, exc)
        finally:
            self._busy -= 1
        self._queue.put_nowait(event)

    async def _outcome(self, cmd: Command) -> Event:
        if isinstance(cmd, SetExposure):
            lock = self._locks.setdefault(cmd.service, asyncio.Lock())
            async with lock:
                if cmd.flag is not None:
                    await self.flags.set_rollout(cmd.flag, cmd.percent, cmd.cohort)
                if cmd.route is not None:
                    await self.router.set_weight(cmd.route, cmd.percent)
            return ExposureApplied(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent)
        if isinstance(cmd, SetMirror):
            if self.mirror is None:
                raise AdapterError("this environment cannot mirror requests (no mirror configured)")
            lock = self._locks.setdefault(f"mirror:{cmd.service}", asyncio.Lock())
            async with lock:
                await self.mirror.set_mirror(cmd.service, cmd.route, cmd.percent)
            return MirrorApplied(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent)
        if isinstance(cmd, Measure):
            try:
                return await measure(self.metrics, self.clock, cmd)
            except ConfigurationError as exc:  # not the canary's fault: the rollout holds
                return GateMisconfigured(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - a metric failure is a gate error
                return Measured(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, error=safe_message(exc))
        if isinstance(cmd, Probe):
            return await probe(self.checks, cmd, self.run_id)
        if isinstance(cmd, ReadExposure):
            try:
                exposures, targets = await self._read(cmd.services)
            except Exception as exc:  # noqa: BLE001
                return ExposureRead(at=0.0, cmd_id=cmd.cmd_id, error=safe_message(exc))
            return ExposureRead(at=0.0, cmd_id=cmd.cmd_id, exposures=exposures, targets=targets)
        raise TypeError(f"unknown command {cmd!r}")

    def _failure(self, cmd: Command, exc: BaseException) -> Event:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else safe_message(exc)
        if isinstance(cmd, Measure):
            return Measured(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, error=reason)
        if isinstance(cmd, ReadExposure):
            return ExposureRead(at=0.0, cmd_id=cmd.cmd_id, error=reason)
        if isinstance(cmd, Probe):
            return CheckFinished(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, check=cmd.name, detail=reason)
        return CommandFailed(at=0.0, cmd_id=cmd.cmd_id, error=reason)

    async def _read(self, services: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
        """Every target of `services` read back (`core.readback.read_back`): flags, routes, mirrors."""
        ctx = self.state.ctx
        if self._read_keys is None or self._read_keys[0] is not ctx:
            self._read_keys = (ctx, read_keys(ctx))
        return await read_back(ctx, services, self.flags, self.router, self.mirror, self._read_keys[1])

    async def _drain_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
