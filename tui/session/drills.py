"""Running a drill: the plan's rollout in the simulated world, with faults and a script.

`DrillRunner` is the object both front ends drive: the headless `interlock
drill` awaits `run()`; the console wraps `runner.session` like any run (its
engine, journal and world), shows `runner.banner()`, sends the person's keys
as operator actions, and asks `runner.scorecard()` at the end.

Faults and scripted actions fire two ways. Time triggers are engine timers
at the rollout's start plus the given time. Percent triggers are checked in
an engine subscriber after every applied batch: the first state in which the
service's confirmed exposure reaches the percentage injects the fault into
the world right there (synchronously, so no measurement can slip in before
it) and submits a `FaultInjected` event, which the engine journals next.
A fault with a duration is cleared by a timer, journaled with `cleared: true`.

The safety interlock comes first and touches nothing: a drill runs against the
simulated world, or against an environment marked `staging: true` when the
caller passes `live=True`, and nothing else.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from adapters.clock import RealClock
from adapters.journals import SharedJournal, is_url, open_journal
from adapters.sim.faults import validate_fault
from adapters.sim.world import SimWorld
from core import Clock, VirtualClock
from core import initial_state
from core import SCRIPT_OPERATOR, Fault, LoadedDrill, OperatorStep, Trigger, load_drill
from core import format_moment
from core import Event, FaultInjected, OperatorAction
from core import AdapterError, FaultInjector, RunInfo
from core import InputError, located
from core import Scorecard, score
from core import RolloutState
from tui.session.assembly import assemble, connect, relaxed_commits
from tui.session.runtime import DEFAULT_JOURNAL, default_journal, lease_holder, operator_identity


RUN_PREFIX = "drill-"
"""How a drill's run id begins: `interlock report` knows a drill run by it."""


def default_drill_journal() -> Path:
    """Drill runs go next to the local rollout journal, in their own file, so
    `interlock resume` never picks up a rehearsal (and a shared store never holds one)."""
    target = default_journal()
    return (DEFAULT_JOURNAL if is_url(target) else Path(target)).parent / "drills.db"


def check_target(loaded: LoadedDrill, *, live: bool) -> None:
    """The safety interlock: raise `InputError` unless the drill may run here."""
    env = loaded.plan.environment
    if loaded.plan.simulated:
        return
    assert not isinstance(env, str)
    where = ("environment",)
    if not env.staging:
        message = (
            "drill refused: the plan's environment is real and not marked `staging: true`; "
            "drills run only against the simulated world (environment: sim) or a staging environment"
        )
    elif not live:
        message = "drill refused: the plan's environment is staging; pass --live to drill against it"
    elif loaded.drill.faults:
        message = (
            "drill refused: faults can only be injected into the simulated world, and this build "
            "has no fault injector for a real environment; a live drill may only script operator actions"
        )
    else:
        return
    raise InputError([located(loaded.plan_source, where, message, key=True)])


def _check_faults(loaded: LoadedDrill) -> None:
    """The world's own check of every fault, before anything is created."""
    problems = []
    for i, fault in enumerate(loaded.drill.faults):
        try:
            validate_fault(fault.inject.world_fault())
        except AdapterError as exc:
            problems.append(located(loaded.source, ("faults", i, "inject"), str(exc).removeprefix("sim: ")))
    if problems:
        raise InputError(problems)


@dataclass
class Pending:
    """One fault or scripted step and when it fired (simulated seconds, absolute)."""

    index: int
    trigger: Trigger
    fault: Fault | None = None
    step: OperatorStep | None = None
    fired_at: float | None = None
    cleared_at: float | None = None


class DrillRunner:
    """One run of one drill, wired and ready to `await run()`."""

    def __init__(
        self,
        loaded: LoadedDrill,
        *,
        journal_path: str | Path,
        live: bool = False,
        interactive: bool = False,
        seed: int | None = None,
        speed: float | None = None,
    ):
        """`speed` forces a real clock at that speed (the console: a person must keep up).
        A live drill (staging, `live=True`, no faults) always runs on the wall clock."""
        check_target(loaded, live=live)
        _check_faults(loaded)
        drill = loaded.drill
        self.loaded = loaded
        self.seed = drill.seed if seed is None else seed
        clock_kind = "real" if speed is not None or not loaded.plan.simulated else drill.clock
        self.speed = 1.0 if not loaded.plan.simulated else speed if speed is not None else drill.speed
        if clock_kind == "virtual":
            self.clock: Clock = VirtualClock()
        else:
            self.clock = RealClock(self.speed, origin=0.0 if loaded.plan.simulated else None)
        stamp = datetime.now(timezone.utc)
        run_id = f"{RUN_PREFIX}{drill.drill}-{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        adapters = connect(loaded.plan, loaded.graph, seed=self.seed, clock=self.clock, owner=run_id,
                           source=loaded.plan_source)
        self.world: SimWorld | None = adapters.world
        self.injector: FaultInjector | None = adapters.world.faults if adapters.world is not None else None
        """Where the drill's faults go: the `FaultInjector` port (the simulated world's)."""
        self._close_adapters: Callable[[], Awaitable[None]] | None = adapters.close
        if not is_url(journal_path):
            Path(journal_path).parent.mkdir(parents=True, exist_ok=True)
        self.journal: SharedJournal = open_journal(
            journal_path, relaxed=relaxed_commits(simulated=adapters.world is not None, virtual=self.clock.virtual))
        info = RunInfo(
            run_id=run_id,
            rollout=loaded.plan.rollout,
            plan_path=loaded.plan_path,
            plan_text=loaded.plan_text,
            seed=self.seed,
            clock=clock_kind,
            speed=self.speed if clock_kind == "real" else 1.0,
            created=stamp.isoformat(),
            operator=operator_identity() if interactive else SCRIPT_OPERATOR,
        )
        self.journal.create_run(info)
        lease = self.journal.acquire_lease(info.run_id, lease_holder())
        self.session = assemble(
            initial_state(loaded.plan, loaded.graph), plan=loaded.plan, graph=loaded.graph, info=info,
            journal=self.journal, clock=self.clock, lease=lease, adapters=adapters._replace(close=None),
            interactive=interactive, resuming=False, command_timeout=drill.adapter_timeout,
        )  # the drill closes its adapters itself, after the run (`run`)
        self.engine = self.session.engine
        self.faults = [Pending(i, f.at, fault=f) for i, f in enumerate(drill.faults, start=1)]
        self.steps = [Pending(i, s.at, step=s) for i, s in enumerate(drill.operator, start=1)]
        self.started_at: float | None = None
        self.engine.subscribe(self._on_batch)

    # -- the loop's hooks ----------------------------------------------------

    def _on_batch(self, state: RolloutState, events: Sequence[Event]) -> None:
        if self.started_at is None and state.started_at is not None:
            self.started_at = state.started_at
            for item in self.faults + self.steps:
                if item.trigger.time is not None:
                    self.engine.schedule(self.started_at + item.trigger.time, self._timer(item))
        for item in self.faults + self.steps:
            trigger = item.trigger
            if item.fired_at is not None or trigger.service is None or trigger.percent is None:
                continue
            service = state.services.get(trigger.service)
            if service is not None and service.exposure >= trigger.percent:
                item.fired_at = self.clock.now()  # once: later batches must not fire it again
                self.engine.schedule(item.fired_at, self._timer(item, armed=True))

    def _timer(self, item: Pending, armed: bool = False) -> Callable[[], Awaitable[list[Event]]]:
        async def fire() -> list[Event]:
            return await self._fire(item) if armed or item.fired_at is None else []

        return fire

    async def _fire(self, item: Pending) -> list[Event]:
        now = self.clock.now()
        item.fired_at = now
        if item.step is not None:
            step = item.step
            return [OperatorAction(at=now, action=step.do, service=step.service,
                                   operator=SCRIPT_OPERATOR, reason=step.reason or "scripted")]
        assert item.fault is not None and self.injector is not None  # check_target: faults only in sim
        fault = item.fault.inject.world_fault()
        await self.injector.inject(fault, now)
        lasts = item.fault.lasts
        if lasts is not None:
            self.engine.schedule(now + lasts, self._clearer(item, fault))
        return [FaultInjected(at=now, fault=self._record(item, fault, cleared=False))]

    def _clearer(self, item: Pending, fault: dict[str, Any]) -> Callable[[], Awaitable[list[Event]]]:
        async def clear() -> list[Event]:
            now = self.clock.now()
            assert self.injector is not None
            await self.injector.clear(fault, now)
            item.cleared_at = now
            return [FaultInjected(at=now, fault=self._record(item, fault, cleared=True))]

        return clear

    @staticmethod
    def _record(item: Pending, fault: dict[str, Any], *, cleared: bool) -> dict[str, Any]:
        return {"index": item.index, **fault, "cleared": cleared}

    # -- running and scoring -------------------------------------------------

    async def run(self) -> Scorecard:
        """Run the drill to its end and score it."""
        try:
            await self.engine.run()
        finally:
            if self._close_adapters is not None:
                await self._close_adapters()
        return self.scorecard()

    def scorecard(self) -> Scorecard:
        """The scorecard from the journal as it stands (the console calls this at the end)."""
        run_id = self.session.info.run_id
        events = [record.event for record in self.journal.records(run_id)]
        state = self.engine.state
        start = state.started_at if state.started_at is not None else 0.0
        intact, _, _ = self.journal.verify(run_id)
        bad = self.world.bad_requests(start, max(state.at, start)) if self.world is not None else None
        return score(self.loaded, events, bad_requests=bad, journal_intact=intact)

    @property
    def clock_label(self) -> str:
        return "virtual clock" if self.clock.virtual else f"real clock ×{self.speed:g}"

    def banner(self) -> str:
        """One line for the console's drill banner: name, drill clock, faults fired."""
        state = self.engine.state
        start = self.started_at if self.started_at is not None else state.at
        fired = sum(1 for f in self.faults if f.fired_at is not None)
        active = [f"#{f.index}" for f in self.faults if f.fired_at is not None and f.cleared_at is None]
        text = f"DRILL {self.loaded.drill.drill} · {format_moment(state.at - start)} · faults {fired}/{len(self.faults)} fired"
        return text + (f" (active: {', '.join(active)})" if active else "")

    def close(self) -> None:
        self.journal.close()


def prepare_drill(
    path: str | Path,
    *,
    journal_path: str | Path | None = None,
    live: bool = False,
    interactive: bool = False,
    seed: int | None = None,
    speed: float | None = None,
) -> DrillRunner:
    """Load, check and wire a drill; raises `InputError` (nothing created) when it may not run."""
    loaded = load_drill(path)
    return DrillRunner(
        loaded, journal_path=journal_path or default_drill_journal(), live=live,
        interactive=interactive, seed=seed, speed=speed,
    )


def run_drill(path: str | Path, **kwargs: Any) -> Scorecard:
    """Load, run and score a drill headless (tests and the benchmark)."""
    runner = prepare_drill(path, **kwargs)
    try:
        return asyncio.run(runner.run())
    finally:
        runner.close()
