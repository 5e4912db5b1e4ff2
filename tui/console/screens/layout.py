"""The console's one arrangement of widgets, shared by the live console and a viewed run.

Header on top, the graph (with its column titles) beside the detail pane, the event log
under them, a footer last: a run opened from the runs screen reads exactly like the
console, and app.tcss styles both by the same ids.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget

from tui.console.widgets.graph import GraphHeading, ServiceGraph


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
