"""The engine on a virtual clock against in-test fake adapters and an in-memory journal.

The fakes check, on every call, that the engine journaled each event it has
reduced so far, so "journal first, then act" is asserted where it matters: at
the moment a command reaches an adapter.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import build, design_plan, replay

import core.engine
from core.clock import VirtualClock
from core.engine import Engine
from core.events import CommandFailed, Event, OperatorAction, Tick
from core.ports import AdapterError, Record, RunInfo, TargetReading
from core.reducer import reduce
from core.schedule import next_deadline
from core.state import RolloutState

Metric = Callable[[str, str, str, float], "float | None"]


class MemoryJournal:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def create_run(self, info: RunInfo) -> None:
        pass

    def runs(self) -> list[RunInfo]:
        return []

    def append(self, run_id: str, events: Sequence[Event], operator: str = "") -> None:
        self.events.extend(events)

    def records(self, run_id: str, after: int = 0) -> Iterator[Record]:
        for seq, event in enumerate(self.events[after:], start=after + 1):
            yield Record(seq=seq, event=event)

    def close(self) -> None:
        pass


@dataclass
class FakeWorld:
    """Flags, routes and metrics in memory; failures and lies on request."""

    journal: MemoryJournal
    reduced: list[Event]
    metric: Metric = lambda metric, service, version, at: 0.0
    fail_sets: dict[str, int] = field(default_factory=dict)
    """Flag or route name → how many more set calls fail."""
    lie_reads: dict[str, float] = field(default_factory=dict)
    """Flag name → the value its next read-back returns instead of the truth."""
    flags: dict[str, float] = field(default_factory=dict)
    cohorts: dict[str, str] = field(default_factory=dict)
    routes: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    clock: VirtualClock | None = None

    def _journal_first(self) -> None:
        assert self.journal.events[: len(self.reduced)] == self.reduced, "acted before journaling"

    async def _call(self, name: str, *args: Any) -> None:
        self._journal_first()
        self.calls.append((name, *args, self.clock.now() if self.clock else None))
        await asyncio.sleep(0)
        target = args[0]
        if self.fail_sets.get(target, 0) > 0 and name.startswith("set"):
            self.fail_sets[target] -= 1
            raise AdapterError(f"{target} unavailable")

    # FlagService
    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        await self._call("set_rollout", flag, percent, cohort)
        self.flags[flag], self.cohorts[flag] = percent, cohort

    async def get_rollout(self, flag: str) -> float:
        await self._call("get_rollout", flag)
        if flag in self.lie_reads:
            return self.lie_reads.pop(flag)
        return self.flags.get(flag, 0.0)

    async def inspect(self, flag: str) -> TargetReading:
        return TargetReading(await self.get_rollout(flag))

    # Router
    async def set_weight(self, route: str, percent: float) -> None:
        await self._call("set_weight", route, percent)
        self.routes[route] = percent

    async def get_weight(self, route: str) -> float:
        await self._call("get_weight", route)
        return self.routes.get(route, 0.0)

    async def inspect_route(self, route: str) -> TargetReading:
        return TargetReading(await self.get_weight(route))

    # MetricSource
    async def query(self, metric: str, service: str, version: str, window: float, at: float) -> float | None:
        await self._call("query", metric, service, version)
        return self.metric(metric, service, version, at)

    async def check(self, metric: str, service: str, version: str, window: float) -> str | None:
        return None

    async def histogram(self, service: str, version: str, window: float, at: float) -> list[float] | None:
        raise AdapterError("this fake bins no predictions")

    async def aclose(self) -> None:
        return None

    async def exceedances(
        self, metric: str, service: str, version: str, window: float, at: float, threshold: float
    ) -> tuple[int, int] | None:
        return None


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Engine, FakeWorld]]:
    reduced: list[Event] = []

    def recording_reduce(state: RolloutState, event: Event) -> Any:
        reduced.append(event)
        return reduce(state, event)

    monkeypatch.setattr(core.engine, "reduce", recording_reduce)

    def make(document: dict[str, Any] | None = None, interactive: bool = False, **world: Any) -> tuple[Engine, FakeWorld]:
        reduced.clear()
        journal = MemoryJournal()
        clock = VirtualClock()
        fake = FakeWorld(journal=journal, reduced=reduced, clock=clock, **world)
        engine = Engine(
            build(document or design_plan()), clock=clock, journal=journal, run_id="run",
            flags=fake, router=fake, metrics=fake, seed=1, interactive=interactive,
        )
        return engine, fake

    return make


def run(engine: Engine) -> RolloutState:
    return asyncio.run(engine.run())


def test_the_design_example_completes_and_replays(rig: Any) -> None:
    engine, fake = rig()
    state = run(engine)
    assert state.phase == "completed" and state.finished
    assert fake.flags == {"features-v32": 100.0, "embedder-v3": 100.0, "ranker": 100.0, "api": 100.0}
    assert fake.routes == {"embedder": 100.0}
    assert fake.cohorts["embedder-v3"] == fake.cohorts["ranker"] == "embedder+ranker"
    events = fake.journal.events
    assert events[0].kind == "rollout_started" and events == fake.reduced
    assert repr(replay(build(design_plan()), events)) == repr(state)
    # Lockstep flags were set to each percent before either went further.
    sets = [(c[1], c[2]) for c in fake.calls if c[0] == "set_rollout" and c[1] in ("embedder-v3", "ranker")]
    assert [p for _, p in sets] == [10.0, 10.0, 50.0, 50.0, 100.0, 100.0]
    assert state.at > 0 and all(e.at <= state.at for e in events)


def test_event_times_never_go_backwards(rig: Any) -> None:
    engine, fake = rig()
    run(engine)
    times = [e.at for e in fake.journal.events]
    assert times == sorted(times)


def drift_bad_at_50(fake_state: dict[str, float]) -> Metric:
    def metric(metric: str, service: str, version: str, at: float) -> float:
        return 0.9 if metric == "prediction_psi" and fake_state.get("ranker") == 50.0 else 0.0

    return metric


def test_a_regression_rolls_back_along_the_graph(rig: Any) -> None:
    engine, fake = rig()
    fake.metric = drift_bad_at_50(fake.flags)
    state = run(engine)
    assert state.phase == "rolled_back"
    assert fake.flags == {"features-v32": 100.0, "embedder-v3": 0.0, "ranker": 0.0}
    assert fake.routes == {"embedder": 0.0}
    assert not any(c[1] == "api" for c in fake.calls if c[0] == "set_rollout")


def test_an_adapter_that_fails_a_few_times_holds_then_goes_on_by_itself(rig: Any) -> None:
    engine, fake = rig(fail_sets={"embedder": 3})
    seen: list[str] = []
    engine.subscribe(lambda state, events: seen.append(state.effective_phase))
    state = run(engine)
    assert state.phase == "completed"
    failures = [e for e in fake.journal.events if isinstance(e, CommandFailed)]
    assert len(failures) == 3 and all("embedder unavailable" in e.error for e in failures)
    assert "held" in seen
    # Retries after 1 s, 2 s, 5 s of backoff, then a read-back before going on.
    retries = [c[-1] for c in fake.calls if c[0] == "set_weight" and c[1] == "embedder" and c[2] == 10.0]
    assert [b - a for a, b in itertools.pairwise(retries)] == [1.0, 2.0, 5.0]
    reads = [c for c in fake.calls if c[0] == "get_weight"]
    assert reads and reads[0][-1] == retries[-1]


def test_an_adapter_that_never_answers_leaves_the_rollout_held(rig: Any) -> None:
    engine, _fake = rig(fail_sets={"features-v32": 10_000})
    state = run(engine)
    assert state.effective_phase == "held" and not state.finished
    assert state.services["features"].exposure == 0.0


def test_a_read_back_that_disagrees_waits_for_the_operator(rig: Any) -> None:
    engine, fake = rig(fail_sets={"ranker": 1}, lie_reads={"ranker": 0.0})

    async def scenario() -> tuple[RolloutState, RolloutState]:
        held = await engine.run()  # not interactive: returns when only an operator can help
        engine.submit(OperatorAction(at=0.0, action="resume", operator="t"))
        return held, await engine.run()

    held, state = asyncio.run(scenario())
    assert held.effective_phase == "held" and held.hold is not None
    assert dict(held.hold.mismatch) == {"ranker": (10.0, 0.0)}
    assert state.phase == "completed"
    resume = next(e for e in fake.journal.events if isinstance(e, OperatorAction))
    assert resume.at == held.at  # stamped with the clock on arrival
    # Resume set the journal's 10% again before anything moved on.
    after = [c for c in fake.calls if c[-1] >= held.at and c[0] == "set_rollout"]
    assert after[0][1:3] == ("ranker", 10.0)


def test_operator_actions_submitted_from_outside(rig: Any) -> None:
    engine, fake = rig(interactive=True)
    done: list[str] = []

    def operator(state: RolloutState, events: Sequence[Event]) -> None:
        if state.services["ranker"].exposure == 50.0 and not done:
            done.append("pause")
            engine.submit(OperatorAction(at=0.0, action="pause", operator="t"))
        elif state.phase == "paused" and done == ["pause"]:
            done.append("abort")
            engine.submit(OperatorAction(at=0.0, action="abort", operator="t"))

    engine.subscribe(operator)
    state = run(engine)
    assert done == ["pause", "abort"]
    assert state.phase == "aborted"
    assert set(fake.flags.values()) == {0.0}
    ops = [e.action for e in fake.journal.events if isinstance(e, OperatorAction)]
    assert ops == ["pause", "abort"]


def test_scheduled_callbacks_fire_at_their_time(rig: Any) -> None:
    engine, fake = rig()
    fired: list[float] = []

    async def pause() -> list[Event]:
        fired.append(engine.clock.now())
        return [OperatorAction(at=0.0, action="pause", operator="drill")]

    async def resume() -> list[Event]:
        fired.append(engine.clock.now())
        return [OperatorAction(at=0.0, action="resume", operator="drill")]

    engine.schedule(700.0, resume)
    engine.schedule(123.0, pause)
    state = run(engine)
    assert fired == [123.0, 700.0]
    ops = [(e.action, e.at) for e in fake.journal.events if isinstance(e, OperatorAction)]
    assert ops == [("pause", 123.0), ("resume", 700.0)]
    assert state.phase == "completed"
    # The pause froze the bake: nothing moved between 123 s and 700 s.
    quiet = [c for c in fake.calls if 123.0 < c[-1] < 700.0]
    assert quiet == []


def test_two_runs_of_the_same_world_journal_the_same_events(rig: Any) -> None:
    def once() -> list[dict[str, Any]]:
        engine, fake = rig(fail_sets={"api": 2})
        fake.metric = lambda metric, service, version, at: 0.001 * (int(at) % 7)
        run(engine)
        return [e.to_dict() for e in fake.journal.events]

    first, second = once(), once()
    assert first == second and len(first) > 50


def test_ticks_only_when_something_is_due(rig: Any) -> None:
    engine, fake = rig()
    run(engine)
    events = fake.journal.events
    ticks = [e for e in events if isinstance(e, Tick)]
    assert ticks and len(ticks) < len(events)
    # On a virtual clock every tick lands exactly on the deadline the state asked for.
    state = build(design_plan())
    for event in events:
        if isinstance(event, Tick):
            assert next_deadline(state) == event.at
        state, _ = reduce(state, event)


def test_a_held_clock_stops_the_run_where_the_test_says_and_an_action_still_arrives() -> None:
    """`core.clock.HeldClock`: time stops at the limit (the engine idles, nothing is lost),
    an operator action reaches the engine while time is held, and `release` lets the run end.
    No engine subclass: the engine interrupts its clock on submit, wake and stop."""
    from core.clock import HeldClock

    journal = MemoryJournal()
    clock = HeldClock(limit=90.0)
    fake = FakeWorld(journal=journal, reduced=[], clock=clock)
    engine = Engine(
        build(design_plan()), clock=clock, journal=journal, run_id="run",
        flags=fake, router=fake, metrics=fake, seed=1, interactive=True,
    )

    async def scenario() -> RolloutState:
        task = asyncio.create_task(engine.run())
        for _ in range(10_000):
            if clock.waiting:
                break
            await asyncio.sleep(0)
        assert clock.waiting and clock.now() <= 90.0
        assert engine.state.phase == "running"
        engine.submit(OperatorAction(at=0.0, action="pause", operator="t"))
        for _ in range(10_000):
            if engine.state.phase == "paused":
                break
            await asyncio.sleep(0)
        assert engine.state.phase == "paused" and clock.now() <= 90.0
        engine.submit(OperatorAction(at=0.0, action="resume", operator="t"))
        clock.release()
        for _ in range(100_000):
            if engine.state.finished:
                break
            await asyncio.sleep(0)
        engine.stop()
        return await task

    state = asyncio.run(scenario())
    assert state.phase == "completed" and clock.now() > 90.0
    assert [e.action for e in journal.events if isinstance(e, OperatorAction)] == ["pause", "resume"]
