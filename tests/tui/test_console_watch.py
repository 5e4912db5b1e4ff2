"""`interlock watch`: the same screen, read-only, following a journal that another engine writes."""

from __future__ import annotations

import asyncio

import pytest
from console_harness import OPERATOR, SIZE, GatedClock, at_minute, prerun, wait_for
from console_plans import RECSYS

from tui import cli
from tui.app import ALL_ACTIONS, InterlockApp
from tui.screens.console import ConsoleScreen
from tui.watch import JournalFollower
from tui.widgets.eventlog import EventLog


@pytest.mark.anyio
async def test_watcher_follows_a_live_rollout_and_cannot_act(tmp_path, sessions) -> None:
    driver = prerun(RECSYS, tmp_path, at_minute(12))
    sessions.append(driver)
    clock = driver.clock
    assert isinstance(clock, GatedClock)
    follower = JournalFollower.open(tmp_path / "journal.db")
    assert follower.info.run_id == driver.info.run_id
    app = InterlockApp(follower=follower, operator=OPERATOR)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state.started_at is not None and app.state.at >= 12 * 60)
            screen = app.screen
            for action in ALL_ACTIONS:
                assert not screen.check_action(action, ()), action
            records = driver.journal.last_seq(driver.info.run_id)
            await pilot.press("space", "r", "a", "ctrl+x", "s")
            await pilot.pause()
            assert isinstance(app.screen, ConsoleScreen)  # no dialog opened
            assert driver.journal.last_seq(driver.info.run_id) == records
            assert any("watching the journal; it cannot act" in line for line in app.query_one(EventLog).plain())
            assert "watching" in str(app.query_one("#header").render())

            task = asyncio.create_task(driver.engine.run())  # the driver carries on meanwhile
            clock.release()
            await wait_for(pilot, lambda: driver.engine.state.finished)
            await wait_for(pilot, lambda: app.state.phase == "completed")
            assert app.state.services == driver.engine.state.services
            driver.engine.stop()
            await task
    finally:
        follower.close()


def test_watch_without_a_journal_is_bad_input(tmp_path, capsys) -> None:
    code = cli.main(["watch", "--journal", str(tmp_path / "missing.db")])
    assert code == 2
    assert "no journal here" in capsys.readouterr().err
