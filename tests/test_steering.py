"""The driver's side of steering (`tui.session.steering.Steering`), without a journal: a
request is answered from what the engine really did with it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from helpers import Driver, design_plan

from core import Answer, Event, OperatorAction, Request, RolloutState
from core.reducer import reduce
from tui.session.steering import Steering


class _Engine:
    """Stands in for `core.Engine`: `submit` queues, `publish` reduces a batch and tells subscribers."""

    def __init__(self, state: RolloutState) -> None:
        self.state = state
        self.submitted: list[Event] = []
        self._subscribers: list[Any] = []

    def subscribe(self, subscriber: Any) -> None:
        self._subscribers.append(subscriber)

    def submit(self, event: Event) -> None:
        self.submitted.append(event)

    def publish(self, events: list[Event]) -> None:
        for event in events:
            self.state = reduce(self.state, event)[0]
        for subscriber in self._subscribers:
            subscriber(self.state, events)


def _steering() -> tuple[Steering, _Engine]:
    d = Driver(design_plan(bake=600.0))
    d.start()
    d.run(until=lambda s: s.groups[s.group_of("features")].phase == "baking")
    engine = _Engine(d.state)
    session = SimpleNamespace(engine=engine, info=SimpleNamespace(run_id="run-1"))
    return Steering(session, box=None), engine  # type: ignore[arg-type]


def _answer(batch_before: list[Event], request: Request) -> tuple[Answer, _Engine]:
    steering, engine = _steering()

    async def go() -> Answer:
        task = asyncio.create_task(steering.apply(request))
        while not engine.submitted:
            await asyncio.sleep(0)
        at = engine.state.at
        engine.publish([*batch_before, replace(engine.submitted[0], at=at)])
        return await task

    return asyncio.run(go()), engine


def test_an_applied_request_is_answered_after_the_engine_took_it() -> None:
    answer, engine = _answer([], Request("r1", "run-1", "rollback", "features", "bob@h", "bad canary"))
    assert answer == Answer("applied", "rolling back features: back to 0% in this order: features "
                                       "(by bob@h: bad canary)")
    assert engine.state.phase == "rolling_back"


def test_a_request_overtaken_in_its_batch_is_refused_not_claimed_applied() -> None:
    """Someone else's pause reached the engine in the same batch, just before it: the
    reducer ignored this pause, so its requester hears why, not 'paused'."""
    first = OperatorAction(at=0.0, action="pause", operator="carol@console")
    answer, engine = _answer([first], Request("r2", "run-1", "pause", None, "bob@h"))
    assert answer == Answer("refused", "nothing to pause or resume: the rollout is paused")
    assert engine.state.reason == "paused by carol@console"


def test_a_request_that_does_not_apply_is_refused_before_it_reaches_the_engine() -> None:
    steering, engine = _steering()
    answer = asyncio.run(steering.apply(Request("r3", "run-1", "approve", "ranker", "bob@h")))
    assert answer == Answer("refused", "ranker does not await approval; nothing awaits approval")
    answer = asyncio.run(steering.apply(Request("r4", "run-1", "promote", "features", "bob@h")))
    assert answer.status == "refused" and "needs a reason" in answer.text
    assert engine.submitted == []
