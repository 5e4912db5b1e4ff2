"""`interlock drill DRILL --console`: a drill in the console, with a person at the keys.

The drill runner fires faults and scripted actions on the engine as usual;
the console adds a banner (drill name, drill clock, faults fired) and, when
the rollout ends, the scorecard, which also scores the person: time from
the fault to their pause, to their rollback, and whether it was the right
service.
"""

from __future__ import annotations

from textual.widgets import Static

from core import Scorecard
from core import RolloutState
from tui.console.app import InterlockApp
from tui.session.drills import DrillRunner
from tui.console.screens.scorecard import ScorecardScreen


class DrillBanner(Static):
    """The line that says this is a rehearsal, with the drill's clock."""

    DEFAULT_CSS = """
    DrillBanner { dock: top; height: 1; background: $warning; color: $text; text-style: bold; padding: 0 1; }
    """


class DrillApp(InterlockApp):
    """The console driving a drill; shows the scorecard when the rollout ends."""

    def __init__(self, runner: DrillRunner) -> None:
        super().__init__(runner.session)
        self.runner = runner
        self.card: Scorecard | None = None
        self._shown = False

    def console_ready(self) -> None:
        self.banner = DrillBanner(self.runner.banner())
        self.console_screen.mount(self.banner)
        super().console_ready()
        self.set_interval(0.5, self._tick)

    def _tick(self) -> None:
        self.banner.update(self.runner.banner() + "  ·  a rehearsal: respond as you would for real")
        state: RolloutState = self.state
        if state.finished and not self._shown:
            self._shown = True
            self.card = self.runner.scorecard()
            from tui.scorecard_text import render_table

            context = f"plan {self.runner.loaded.drill.plan}, seed {self.runner.seed}, {self.runner.clock_label}"
            self.push_screen(ScorecardScreen(render_table(self.card, context), self.card.passed))


def run_drill_console(runner: DrillRunner) -> Scorecard:
    """Run the drill in the console; the scorecard when the person closes it."""
    app = DrillApp(runner)
    app.run()
    if app.engine_error is not None:
        raise app.engine_error
    return app.card or runner.scorecard()
