"""The console fits the terminal it is given (issue 16 point 1): 80×24 up to 160×48.

What each row keeps is read off the rendered lines (what a person sees), and the
alignment of long and wide names is measured in terminal cells.
"""

from __future__ import annotations

import pytest
from console_harness import at_minute, console, prerun, settle
from console_plans import LONG_NAME, RECSYS, WIDE_NAME, wide_names_plan, write
from rich.cells import cell_len

from tui.cells import fit
from tui.console.app import InterlockApp
from tui.console.widgets.rows import GIVE_WAY, MIN_NAME, Columns, row_width
from tui.console.widgets.status import service_status

pytestmark = pytest.mark.anyio

SIZES = [(80, 24), (100, 30), (120, 40), (160, 48)]


def graph_lines(app: InterlockApp) -> list[str]:
    graph = app.console_screen.graph
    return [graph.render_line(y).text for y in range(len(graph.rows))]


def test_fit_pads_and_cuts_by_cells() -> None:
    assert fit("api", 6) == "api   "
    assert cell_len(fit(WIDE_NAME, 20)) == 20
    cut = fit(WIDE_NAME, 6)  # 排序器 is six cells: the ellipsis takes the last
    assert cut.endswith("…") and cell_len(cut) == 6
    odd = fit(WIDE_NAME, 4)  # the second wide character would straddle the cut
    assert cell_len(odd) == 4 and odd.startswith("排")
    assert fit(LONG_NAME, 12) == LONG_NAME[:11] + "…"


def test_columns_give_way_in_a_fixed_order() -> None:
    natural = Columns(lanes=2, name=20, versions=12, stages=5)
    widths = [row_width(natural)]
    fitted = [natural.fit(w) for w in range(row_width(natural), 20, -1)]
    dropped = []
    for cols in fitted:
        for column in GIVE_WAY:
            shown = cols.show_lanes if column == "lanes" else getattr(cols, column)
            if not shown and column not in dropped:
                dropped.append(column)
        widths.append(row_width(cols))
    assert dropped == list(GIVE_WAY)
    narrowest = natural.fit(0)
    assert (narrowest.name, narrowest.versions) == (MIN_NAME, 7)
    assert all(a >= b for a, b in zip(widths, widths[1:])), "a narrower terminal never gets a wider row"


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
async def test_every_row_keeps_glyph_word_name_versions_and_percent(tmp_path, sessions, size) -> None:
    session = prerun(RECSYS, tmp_path, at_minute(33))
    sessions.append(session)
    app = console(session)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        graph = app.console_screen.graph
        assert graph.virtual_size.width <= graph.scrollable_content_region.width, "no sideways scrolling"
        state = app.state
        for line, name in zip(graph_lines(app), graph.rows):
            svc = state.services[name]
            status = service_status(svc.phase)
            old, new = state.ctx.versions[name]
            for part in (status.glyph, status.word, name, f"{old} → {new}", f"{svc.exposure:g}%"):
                assert part in line, (size, part, line)
        header = str(app.console_screen.header.render())
        for part in ("recsys-embeddings-v3", "▶ running", "T+ 33m00s", "◉ driving"):
            assert part in header, (size, header)
        # the graph has the whole width under 120 (the pane hidden), 46 cells less up to 160
        assert graph.columns.spark == {80: False, 100: True, 120: False, 160: True}[size[0]]
        assert graph.columns.bake and graph.columns.track
        assert app.console_screen.detail.display == (size[0] >= 120)


async def test_long_and_wide_names_keep_the_columns_aligned(tmp_path, sessions) -> None:
    plan = write(tmp_path, "wide.yaml", wide_names_plan())
    session = prerun(plan, tmp_path, at_minute(5))
    sessions.append(session)
    app = console(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        lines = graph_lines(app)
        starts = [cell_len(line[: line.index(f"{old} →")]) for line, (old, _) in
                  zip(lines, (app.state.ctx.versions[n] for n in app.console_screen.graph.rows))]
        assert len(set(starts)) == 1, lines
        assert LONG_NAME not in lines[0] and LONG_NAME[:8] in lines[0] and "…" in lines[0]
        assert WIDE_NAME in lines[1] and "2.1-🚀" in lines[1]
        assert {cell_len(line.rstrip()) <= 80 for line in lines} == {True}


async def test_the_pane_collapses_under_120_columns_and_toggles_with_d(tmp_path, sessions) -> None:
    session = prerun(RECSYS, tmp_path, at_minute(33))
    sessions.append(session)
    app = console(session)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.console_screen
        assert not screen.detail.display
        await pilot.press("d")
        await settle(pilot)
        assert screen.detail.display
        for line, name in zip(graph_lines(app), screen.graph.rows):
            assert name in line and f"{app.state.services[name].exposure:g}%" in line
        await pilot.press("d")
        await pilot.pause()
        assert not screen.detail.display
        await pilot.press("enter")  # full width, even from a hidden pane
        await pilot.pause()
        assert screen.maximized is screen.detail
        assert screen.detail.region.width == 100
        await pilot.press("escape")
        await pilot.pause()
        assert screen.maximized is None and not screen.detail.display
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert not screen.detail.display, "the operator hid it: a wider terminal keeps that choice"
        await pilot.press("d")
        await pilot.pause()
        assert screen.detail.display and screen.detail.region.width == 58
