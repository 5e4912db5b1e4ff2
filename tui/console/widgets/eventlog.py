"""The event log: every event in the words `run --headless` prints, plus key acks.

Lines come from `tui.printer`, so what the console said at 3 a.m. is what
`interlock log` prints the next morning. Adapter outcomes (exposure applied,
measurements, failures, read-backs) are events, so they appear here too. A
key press is acknowledged at once ("pause requested by …"), before the
engine applies it; the engine's own record of the action follows.
A line-API widget: a long rollout's log costs memory, not render time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import ClassVar

from textual.content import Content
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from core import (
    CommandFailed,
    Event,
    ExposureRead,
    Measured,
    OperatorAction,
    RolloutStarted,
)
from core import RolloutState
from tui import printer


def _event_style(event: Event) -> str:
    if isinstance(event, OperatorAction):
        return "$text-accent"
    if isinstance(event, CommandFailed):
        return "$text-error"
    if isinstance(event, Measured) and event.error is not None:
        return "$text-warning"
    if isinstance(event, ExposureRead) and event.error is not None:
        return "$text-warning"
    if isinstance(event, RolloutStarted):
        return "bold"
    return ""


def batch_lines(before: RolloutState, after: RolloutState, events: Sequence[Event]) -> list[Content]:
    """The log lines for one applied batch: its events, then any phase change."""
    lines: list[Content] = []
    for event in events:
        text = printer.describe(event, after, before)
        if text is not None:
            lines.append(
                Content.assemble(
                    (printer.clock_text(after, event.at), "$text-muted"), "  ", (text, _event_style(event))
                )
            )
    change = printer.phase_line(before, after)
    if change is not None:
        lines.append(
            Content.assemble(
                (printer.clock_text(after, after.at), "$text-muted"), "  ", (f"▸ {change}", "bold")
            )
        )
    return lines


class EventLog(ScrollView, can_focus=True):
    """The rollout's events, newest at the bottom; follows the end unless scrolled up."""

    DEFAULT_CSS = """
    EventLog {
        height: 10;
        width: 1fr;
        background: $surface;
        border-top: solid $panel-lighten-1;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    """

    MAX_LINES: ClassVar[int] = 2000
    """Older lines fall off; `interlock log` has them all."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: deque[Content] = deque(maxlen=self.MAX_LINES)
        self._width = 0
        self.following = True
        """Keep the newest line in view; off while the operator has scrolled up."""

    def write(self, line: Content) -> None:
        self.write_lines([line])

    def write_lines(self, lines: Sequence[Content]) -> None:
        if not lines:
            return
        self.lines.extend(lines[-self.MAX_LINES :])
        self._width = max(self._width, *(line.cell_length for line in lines[-self.MAX_LINES :]))
        size = Size(self._width, len(self.lines))
        if self.is_mounted and self.container_size:
            # The scrollbars' visibility never changes (see DEFAULT_CSS), so a longer
            # log needs no layout pass: update the virtual size and the scrollbar only.
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size
        if self.following:
            self.scroll_end(animate=False, immediate=False, x_axis=False)
        self.refresh()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old:
            self.following = False
        elif new >= self.max_scroll_y:
            self.following = True

    def plain(self) -> list[str]:
        """The log as text (tests and copy)."""
        return [line.plain for line in self.lines]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        base = self.get_visual_style()
        width = self.size.width
        if index >= len(self.lines):
            return Strip.blank(width, base.rich_style)
        strip = Strip(self.lines[index].render_segments(base))
        return strip.crop_extend(scroll_x, scroll_x + width, base.rich_style)
