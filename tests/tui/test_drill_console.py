"""`interlock drill --console`: a person responds, the console shows the banner and the scorecard."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.events import OperatorAction
from tui.console.drill_console import DrillApp
from tui.session.drills import prepare_drill
from tui.console.screens.scorecard import ScorecardScreen

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


async def test_a_drill_in_the_console_shows_its_banner_then_the_scorecard(tmp_path: Path) -> None:
    runner = prepare_drill(
        REPO / "examples" / "drills" / "ranker-error-burst.yaml",
        journal_path=tmp_path / "drills.db", interactive=True, speed=20000.0,
    )
    app = DrillApp(runner)
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(600):
            await pilot.pause(0.05)
            if "DRILL ranker-error-burst" in str(app.banner.render()):
                break
        assert "DRILL ranker-error-burst" in str(app.banner.render())
        for _ in range(1200):
            await pilot.pause(0.05)
            if isinstance(app.screen, ScorecardScreen):
                break
        assert isinstance(app.screen, ScorecardScreen)
        assert app.card is not None and app.card.drill == "ranker-error-burst"
        table = app.screen.table
        assert "time to detect" in table and "rolled back" in table
        await pilot.press("enter")
    events = [r.event for r in runner.journal.records(runner.session.info.run_id)]
    assert any(isinstance(e, OperatorAction) for e in events)  # the drill's scripted pause and resume
    runner.close()
