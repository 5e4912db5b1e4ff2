"""The console's one arrangement of widgets, shared by the live console and a viewed run.

Header on top, the graph (with its column titles) beside the detail pane, the event log
under them, a footer last: a run opened from the runs screen reads exactly like the
console, fits the terminal the same way (`PaneScreen`), and app.tcss styles both by the
same ids.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget

from tui.console.widgets.detail import ServiceDetail
from tui.console.widgets.graph import GraphHeading, ServiceGraph
from tui.console.widgets.rows import row_width


def rollout_layout(
    header: Widget, graph: ServiceGraph, detail: Widget, log: Widget, footer: Widget,
    above_graph: tuple[Widget, ...] = (),
) -> ComposeResult:
    """Compose the console's widgets in their places (`above_graph`: the filter box)."""
    yield header
    with Horizontal(id="main"):
        with Vertical(id="services"):
            yield from above_graph
            yield GraphHeading(graph, id="heading")
            yield graph
        yield detail
    yield log
    yield footer


class PaneScreen(Screen[None]):
    """A screen with a graph and a detail pane that fits its terminal (issue 16).

    From `WIDE` columns the pane shows beside the graph; under it the graph keeps the
    whole width until `d` asks for the pane; `enter` shows the pane full screen at any
    width. Subclasses set `graph` and `detail` before they are mounted.
    """

    WIDE = 120
    """From this many columns the detail pane shows beside the graph at first; under it the
    graph keeps the whole width until `d` asks for the pane (`enter` shows it full screen)."""
    WIDER = 160
    """From this many columns the detail pane takes its full width (58 cells, app.tcss)."""
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide"), (WIDER, "-wider")]
    MIN_PANE = 28
    """The narrowest a detail pane asked for under `WIDE` columns gets."""
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    """The event log gives rows to the graph on a short terminal (app.tcss)."""

    graph: ServiceGraph
    detail: ServiceDetail

    def on_resize(self) -> None:
        self.fit_pane()

    def fit_pane(self) -> None:
        """Under `WIDE` columns a pane asked for (`d`) takes what the graph's rows can spare:
        they keep name, status, versions and percent (`Columns.essential`)."""
        if self.size.width >= self.WIDE or self.maximized is self.detail:
            self.detail.styles.clear_rule("width")
            return
        rows = row_width(self.graph.natural.essential()) + 1  # and the graph's scrollbar
        self.detail.styles.width = max(self.MIN_PANE, self.size.width - rows)

    def action_details(self) -> None:
        """The detail pane full screen (whatever the width, hidden or not), or back."""
        if self.maximized is self.detail:
            self.minimize()
        else:
            self.maximize(self.detail, container=False)
        self.fit_pane()

    def action_pane(self) -> None:
        """Show the detail pane if it is hidden (narrow: hidden until asked), else hide it."""
        shown = self.detail.display
        self.set_class(not shown and self.has_class("-narrow"), "-pane-shown")
        self.set_class(shown, "-pane-hidden")
        self.fit_pane()

    def action_next_metric(self) -> None:
        self.detail.next_gate()

    def leave_details(self) -> bool:
        """Back from the full-screen pane, if it is shown; False when it was not."""
        if self.maximized is None:
            return False
        self.minimize()
        self.fit_pane()
        return True
