"""Break-glass promotion from the console (issue 13 point 3): `p` and `P` ask for a reason
first, then the service takes its next stage (or 100%) at once, journaled with who and why."""

from __future__ import annotations

import pytest
from console_harness import SIZE, OPERATOR, at_minute, console, operator_actions, prerun, settle, wait_for
from console_plans import RECSYS

from tui.console.screens.console import ConsoleScreen
from tui.console.screens.promote import PromoteScreen
from tui.console.widgets.eventlog import EventLog

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("key", "full"), [("p", False), ("P", True)])
async def test_promote_asks_why_then_takes_the_next_stage_now(tmp_path, sessions, key: str, full: bool) -> None:
    session = prerun(RECSYS, tmp_path, at_minute(12))
    sessions.append(session)
    engine = session.engine
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.selected == "features"
        index = engine.state.group_of("features")
        stage, stages = engine.state.groups[index].stage, engine.state.ctx.groups[index].stages
        assert engine.state.groups[index].phase == "baking" and stage < len(stages) - 2
        target = stages[-1 if full else stage + 1].percent

        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        await pilot.press("enter")  # no reason yet: nothing happens
        assert isinstance(app.screen, PromoteScreen) and not operator_actions(session)
        await pilot.press("escape")  # cancelled: nothing changed
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        assert any("cancelled; nothing changed" in line for line in app.query_one(EventLog).plain())

        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, PromoteScreen))
        await pilot.press(*"canary fine", "enter")
        await wait_for(pilot, lambda: engine.state.services["features"].target == target)
        await settle(pilot)
    (action,) = operator_actions(session)
    assert (action.action, action.service, action.operator, action.reason) == (
        "promote_full" if full else "promote", "features", OPERATOR, "canary fine")
