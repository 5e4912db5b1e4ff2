"""`interlock watch`: the same screen, read-only, following a journal that another engine writes."""

from __future__ import annotations

import asyncio

import pytest
from console_harness import OPERATOR, SIZE, HeldClock, at_minute, prerun, wait_for
from console_plans import RECSYS

from tui.cli import main as cli
from core import OperatorAction
from tui.console.app import InterlockApp
from tui.session.steering import steered
from tui.session.watch import JournalFollower
from tui.console.widgets.eventlog import EventLog


@pytest.mark.anyio
async def test_a_watchers_keys_send_requests_that_the_driver_applies(tmp_path, sessions) -> None:
    """A watching console steers without driving: its keys become requests through the
    journal to the live driver (issue 13), which applies them as its own keys and answers;
    the clock stays the driver's."""
    driver = prerun(RECSYS, tmp_path, at_minute(12))
    sessions.append(driver)
    clock = driver.clock
    assert isinstance(clock, HeldClock)
    follower = JournalFollower.open(tmp_path / "journal.db")
    assert follower.info.run_id == driver.info.run_id
    app = InterlockApp(follower=follower, operator=OPERATOR)

    async def drive() -> None:
        async with steered(driver):
            await driver.engine.run()

    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state.started_at is not None and app.state.at >= 12 * 60)
            screen = app.screen
            assert not screen.check_action("ask", ("faster",)) and not screen.check_action("ask", ("slower",))
            assert screen.check_action("ask", ("pause",)) and screen.check_action("ask", ("abort",))
            assert "watching" in str(app.query_one("#header").render())
            task = asyncio.create_task(drive())
            log = app.query_one(EventLog)

            await pilot.press("space")
            await wait_for(pilot, lambda: any("driver: paused run" in line for line in log.plain()), timeout=30)
            assert driver.engine.state.phase == "paused"
            await wait_for(pilot, lambda: app.state.phase == "paused")  # the watcher reads it back
            ops = [r.event for r in driver.journal.records(driver.info.run_id) if isinstance(r.event, OperatorAction)]
            assert [(e.action, e.operator) for e in ops] == [("pause", OPERATOR)]

            await pilot.press("a")  # nothing awaits approval: the watcher's own check says why
            await pilot.pause()
            assert any("approve does not apply now" in line for line in log.plain())

            await pilot.press("space")
            await wait_for(pilot, lambda: driver.engine.state.phase == "running", timeout=30)
            await wait_for(pilot, lambda: any("driver: resumed run" in line for line in log.plain()))
            clock.release()
            await wait_for(pilot, lambda: driver.engine.state.finished, timeout=30)
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


@pytest.mark.anyio
async def test_a_watcher_catches_up_on_a_finished_journal_in_chunks(tmp_path, monkeypatch) -> None:
    """A long journal is folded a chunk at a time, older records feeding the metric
    history only: the watcher ends on the journal's last state, with the same history a
    record-by-record replay gives."""
    import tui.console.app as app_module
    from core.context import initial_state
    from core.reducer import reduce
    from tui.session import runtime
    from tui.console.widgets.history import MetricHistory

    session = runtime.start_run(RECSYS, journal_path=tmp_path / "journal.db", seed=3)
    final = await session.engine.run()
    session.journal.close()
    monkeypatch.setattr(app_module, "CATCH_UP_CHUNK", 100)
    follower = JournalFollower.open(tmp_path / "journal.db")
    events = [record.event for record in follower.journal.records(follower.info.run_id)]
    assert len(events) > 300
    drawn: list[int] = []
    app = InterlockApp(follower=follower, operator=OPERATOR)
    app.on_flush = drawn.append
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state.phase == "completed")
            state = initial_state(app.state.ctx.plan, app.state.ctx.graph)
            for event in events:
                state = reduce(state, event)[0]
            assert repr(app.state) == repr(state) == repr(final)
            assert follower.last_seq == len(events)
            assert len(drawn) >= 2  # repainted while catching up, not once at the end
            assert sum(drawn) == len(events)  # chunks below `keep`: a batch per record
            whole = MetricHistory(state.ctx)
            whole.record(events)
            for service in state.ctx.service_gates:
                for gate in whole.gates(service):
                    assert list(app.history.points(service, gate)) == list(whole.points(service, gate))
            assert app.query_one(EventLog).plain()  # the latest records are worded
    finally:
        follower.close()
