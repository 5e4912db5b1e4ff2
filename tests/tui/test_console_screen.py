"""The console's screen furniture: lanes, status legend, help, palette, filter, details."""

from __future__ import annotations

from typing import get_args

import pytest
from console_harness import SIZE, at_minute, console, prerun, settle, wait_for
from console_plans import RECSYS, generated_plan, write

from core.state import RolloutPhase, ServicePhase
from tui.session.runtime import compile_text
from tui.console.screens.console import ConsoleScreen
from tui.console.screens.help import KEYS, HelpScreen, help_text
from tui.console.widgets.detail import ServiceDetail
from tui.console.widgets.graph import ServiceGraph
from tui.console.widgets.lanes import MAX_LANES, layout
from tui.console.widgets.status import ROLLOUT, SAMPLE, SERVICE


def test_lanes_draw_the_recsys_chain_and_its_lockstep_bracket() -> None:
    plan, graph = compile_text(RECSYS.read_text(encoding="utf-8"), str(RECSYS))
    rows = layout(plan, graph)
    drawn = [rows[name].bracket + "●" + rows[name].lanes + " " + name for name in graph.order]
    assert drawn == [" ●╮ features", "┏●┤ embedder", "┗●┤ ranker", " ●╯ api"]


def test_lanes_of_a_wide_plan_stay_within_their_budget() -> None:
    plan, graph = compile_text(generated_plan(60), "generated.yaml")
    rows = layout(plan, graph)
    assert {len(row.lanes) for row in rows.values()} == {MAX_LANES}
    brackets = "".join(rows[name].bracket for name in graph.order)
    assert brackets.count("┏") == brackets.count("┗") == len(graph.lockstep)


def test_every_phase_has_a_glyph_a_word_and_a_colour() -> None:
    for table, phases in ((SERVICE, get_args(ServicePhase)), (ROLLOUT, get_args(RolloutPhase))):
        assert set(table) == set(phases)
        glyphs = [status.glyph for status in table.values()]
        assert len(set(glyphs)) == len(glyphs), "two phases share a glyph"
        for status in table.values():
            assert len(status.glyph) == 1 and status.word and status.colour.startswith("$")
    assert {"successful", "failed", "inconclusive", "error"} <= set(SAMPLE)


def test_help_names_every_key_and_every_status() -> None:
    shown = {key for keys, _ in KEYS for key in keys.split()}
    names = {"space": "space", "slash": "/", "plus": "+", "minus": "-", "question_mark": "?",
             "up": "↑", "down": "↓", "equals_sign": "+"}
    for binding in ConsoleScreen.BINDINGS:
        if binding.action in ("back", "app.quit") and binding.key == "escape":  # type: ignore[union-attr]
            continue
        key = binding.key.split(",")[0]  # type: ignore[union-attr]
        assert names.get(key, key) in shown, key
    text = help_text().plain
    for table in (SERVICE, ROLLOUT, SAMPLE):
        for status in table.values():
            assert f"{status.glyph} {status.word}" in text


pytestmark_async = pytest.mark.anyio


@pytestmark_async
async def test_palette_goes_to_a_service_and_greys_what_does_not_apply(tmp_path, sessions) -> None:
    session = prerun(RECSYS, tmp_path, at_minute(12))
    sessions.append(session)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"ranker")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.selected == "ranker")
        assert isinstance(app.screen, ConsoleScreen)
        assert app.query_one(ServiceDetail).service == "ranker"

        await pilot.press("ctrl+p")
        await pilot.press(*"step")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        await settle(pilot)
        assert session.engine.state.phase == "running"  # greyed: nothing was submitted
        assert any("step works while paused" in line for line in app.query_one("#log").plain())


@pytestmark_async
async def test_filter_help_and_details_keys(tmp_path, sessions) -> None:
    plan = write(tmp_path, "thirty.yaml", generated_plan(30))
    session = prerun(plan, tmp_path, at_minute(10))
    sessions.append(session)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        graph = app.query_one(ServiceGraph)
        await pilot.press("slash", *"nk", "enter")
        assert graph.rows == [n for n in session.graph.order if "nk" in n]
        assert app.focused is graph and app.selected == graph.rows[0]
        await pilot.press("slash", "escape")
        assert graph.rows == list(session.graph.order)

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))

        await pilot.press("enter")
        assert app.screen.maximized is app.query_one(ServiceDetail)
        await pilot.press("escape")
        assert app.screen.maximized is None
