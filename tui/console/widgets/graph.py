"""The dependency graph: one service per row, in rollout order, with lanes.

A line-API widget (like Textual's own `Log` and `DataTable`): it renders only
the rows on screen, from the latest state snapshot, so a 200-service plan
costs no more per update than the 40 rows a terminal shows. It selects and
filters; it never decides anything about the rollout.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style as RichStyle
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from core import RolloutState
from tui.console.widgets.history import MetricHistory
from tui.console.widgets.lanes import LaneRow, layout
from tui.console.widgets.rows import BAKE_WIDTH, Columns, bake_progress, heading, row, row_width


class GraphHeading(Widget):
    """Column titles above the graph, aligned with its rows (it asks the graph, whose
    columns follow its width)."""

    DEFAULT_CSS = """
    GraphHeading {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, graph: ServiceGraph, **kwargs: object) -> None:
        """Args:
            graph: the graph whose columns this names.
        """
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.graph = graph
        graph.heading_widget = self

    def render(self) -> Content:
        return self.graph.heading()


class ServiceGraph(ScrollView, can_focus=True):
    """Services in rollout order; the cursor row is the selected service."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("home", "cursor_home", "First", show=False),
        Binding("end", "cursor_end", "Last", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"service-graph--cursor"}
    """
    | Class | Description |
    | :- | :- |
    | `service-graph--cursor` | The selected service's row. |
    """

    DEFAULT_CSS = """
    ServiceGraph {
        height: 1fr;
        width: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
        & > .service-graph--cursor {
            background: $primary 15%;
        }
        &:focus > .service-graph--cursor {
            background: $primary 35%;
            text-style: bold;
        }
    }
    """

    cursor: reactive[int] = reactive(0, always_update=False)
    """Index of the selected row among the rows shown (after filtering)."""

    class Selected(Message):
        """The selection moved to another service."""

        def __init__(self, service: str | None) -> None:
            super().__init__()
            self.service = service
            """The selected service, or None when the filter hides every row."""

    def __init__(self, state: RolloutState, history: MetricHistory, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.state = state
        """The snapshot on screen."""
        self.history = history
        self.lanes: dict[str, LaneRow] = layout(state.ctx.plan, state.ctx.graph)
        self.natural = Columns.for_state(state, self.lanes)
        """Every column at its plan's width; `columns` is what fits the graph's width."""
        self.columns = self.natural
        self.heading_widget: Widget | None = None
        self.filter_text = ""
        self.rows: list[str] = list(state.ctx.graph.order)
        """Services shown, in rollout order."""
        self._cache: dict[int, tuple[tuple[object, ...], Strip, RichStyle]] = {}
        """Row index → (what the row showed, its strip, its background)."""
        self.virtual_size = Size(self._width(), len(self.rows))

    # -- data --------------------------------------------------------------

    def heading(self) -> Content:
        return heading(self.columns)

    def _width(self) -> int:
        return row_width(self.columns)

    def on_resize(self) -> None:
        """Fit the columns to the new width (`Columns.fit`: what gives way, in which order)."""
        fitted = self.natural.fit(self.scrollable_content_region.width)
        if fitted == self.columns:
            return
        self.columns = fitted
        self.virtual_size = Size(self._width(), len(self.rows))
        self._cache.clear()
        self.refresh()
        if self.heading_widget is not None:
            self.heading_widget.refresh()

    @property
    def selected(self) -> str | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    def show(self, state: RolloutState) -> None:
        """Draw a newer snapshot: only rows on screen whose content changed repaint."""
        self.state = state
        top = self.scroll_offset.y
        width = self.size.width
        for index in range(top, min(len(self.rows), top + self.size.height)):
            cached = self._cache.get(index)
            if cached is None or cached[0] != self._row_key(index):
                self._cache.pop(index, None)
                self.refresh(Region(0, index - top, width, 1))

    def set_filter(self, text: str) -> None:
        """Show only services whose name contains `text` (case-insensitive)."""
        keep = self.selected
        self.filter_text = text.strip().lower()
        self.rows = [n for n in self.state.ctx.graph.order if self.filter_text in n.lower()]
        self.virtual_size = Size(self._width(), len(self.rows))
        self._cache.clear()
        if keep in self.rows:
            self.cursor = self.rows.index(keep)
        else:
            self.cursor = 0
            self.post_message(self.Selected(self.selected))
        self.refresh()

    def select(self, service: str) -> bool:
        """Move the cursor to `service` (clearing a filter that hides it)."""
        if service not in self.rows:
            if service not in self.state.ctx.graph.order:
                return False
            self.set_filter("")
        self.cursor = self.rows.index(service)
        return True

    # -- cursor ------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def _row_key(self, index: int) -> tuple[object, ...]:
        """Everything a row's look depends on; compared by identity first, so it is cheap."""
        name = self.rows[index]
        state = self.state
        group = state.group_of(name)
        progress = bake_progress(state, name)
        return (
            state.services[name],
            state.groups[group],
            None if progress is None else round(progress * BAKE_WIDTH),
            self.history.version.get(name, 0),
            index == self.cursor,
            index == self.cursor and self.has_focus,
            name,
            bool(self.filter_text),
            self.app.theme,
            self.columns,
        )

    def watch_cursor(self, old: int, new: int) -> None:
        self._cache.pop(old, None)
        self._cache.pop(new, None)
        self.refresh()
        self.scroll_to_region(Region(0, new, 1, 1), animate=False, force=True)
        self.post_message(self.Selected(self.selected))

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_cursor_home(self) -> None:
        self.cursor = 0

    def action_cursor_end(self) -> None:
        self.cursor = len(self.rows) - 1

    def action_page_up(self) -> None:
        self.cursor -= max(1, self.size.height - 1)

    def action_page_down(self) -> None:
        self.cursor += max(1, self.size.height - 1)

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self.cursor = offset.y + self.scroll_offset.y

    # -- rendering ---------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.get_visual_style()
        if index >= len(self.rows):
            return Strip.blank(width, base.rich_style)
        key = self._row_key(index)
        cached = self._cache.get(index)
        if cached is None or cached[0] != key:
            name = self.rows[index]
            style = self.get_visual_style("service-graph--cursor") if index == self.cursor else base
            content = row(
                self.state, self.history, name, self.lanes[name], self.columns,
                show_lanes=not self.filter_text,
            )
            cached = (key, Strip(content.render_segments(style)), style.rich_style)
            self._cache[index] = cached
        _, strip, rich_style = cached
        return strip.crop_extend(scroll_x, scroll_x + width, rich_style)
