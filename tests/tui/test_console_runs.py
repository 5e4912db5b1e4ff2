"""The runs screen (issue 16 point 3): `o` lists the journal's runs as `interlock runs`
does, and any of them opens read-only; the run on screen keeps running meanwhile."""

from __future__ import annotations

import pytest
from console_harness import at_minute, console, operator_actions, prerun, settle, wait_for
from console_plans import RECSYS, REGRESSION
from textual.widgets import DataTable, Static

from tui.console.screens.console import ConsoleScreen
from tui.console.screens.runs import RunScreen, RunsScreen
from tui.session import runtime
from tui.session.runs import run_rows

pytestmark = pytest.mark.anyio


async def test_o_lists_the_runs_and_opens_an_earlier_one_read_only(tmp_path, sessions) -> None:
    earlier = prerun(REGRESSION, tmp_path)  # runs to its end: rolled back
    sessions.append(earlier)
    session = prerun(RECSYS, tmp_path, at_minute(12))  # the same journal, a second run
    sessions.append(session)
    rows = run_rows(session.journal)
    assert [row["phase"] for row in rows] == ["rolled_back", "running"]
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        before = session.engine.state
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        table = runs.query_one(DataTable)
        assert table.row_count == 2
        listed = [str(table.get_row_at(i)[1]) for i in range(2)]
        assert listed == [session.info.run_id, earlier.info.run_id], "newest first"
        assert runs.selected == session.info.run_id and str(table.get_row_at(0)[0]) == "▸"
        assert "↩ rolled back" in str(table.get_row_at(1)[2])

        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen))
        view = app.screen
        assert isinstance(view, RunScreen)
        await pilot.pause()
        header = view.header.render().plain
        for part in ("recsys-embeddings-v3-regression", "↩ rolled back", "▷ viewing", "T+ 26m00s"):
            assert part in header, header
        await pilot.press("j", "j")
        await pilot.pause()
        cause = view.detail.query_one("#detail-cause", Static).visual.plain  # type: ignore[union-attr]
        assert cause.startswith("↩ rolled back: gate errors on ranker failed")
        assert any("rollout rolled back" in line for line in view.log_view.plain())
        await pilot.resize_terminal(80, 24)  # an old run fits a small terminal as the console does
        await pilot.pause()
        assert not view.detail.display
        graph = view.graph
        lines = [graph.render_line(y).text for y in range(len(graph.rows))]
        assert all(name in line and "%" in line for name, line in zip(graph.rows, lines)), lines
        await pilot.press("enter")
        await pilot.pause()
        assert view.maximized is view.detail and view.detail.region.width == 80
        await pilot.press("escape")  # out of the full-screen pane first, then back to the runs
        await pilot.pause()
        assert view.maximized is None and isinstance(app.screen, RunScreen)

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("up", "enter")  # the console's own run: back to the console
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        assert app.state.phase == "running" and app.engine_running
        assert session.engine.state.phase == before.phase
    assert operator_actions(session) == [] and operator_actions(earlier) == []


async def test_a_watcher_lists_the_runs_of_the_journal_it_follows(tmp_path, sessions) -> None:
    from tui.console.app import InterlockApp
    from tui.session.watch import JournalFollower

    finished = prerun(REGRESSION, tmp_path)
    sessions.append(finished)
    follower = JournalFollower.open(tmp_path / "journal.db")
    app = InterlockApp(follower=follower, operator="ops@watcher")
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state.phase == "rolled_back")
            await pilot.press("o")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            table = app.screen.query_one(DataTable)
            assert table.row_count == 1 and str(table.get_row_at(0)[1]) == finished.info.run_id
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
    finally:
        follower.close()
    assert runtime.choose_run(finished.journal, None) is not None
