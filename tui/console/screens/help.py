"""The help screen: every key, and what every status glyph and word means.

The keys come from the action table (`core.actions.ACTIONS`); the legends are drawn from `tui.console.widgets.status`, the same tables the screen
draws from, so the help cannot drift from what is on screen.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from core import help_rows
from tui.console.widgets.status import MODE, ROLLOUT, SAMPLE, SERVICE, Status

KEYS: tuple[tuple[str, str], ...] = tuple(help_rows())
"""Every key of the console, in the order the help lists them (from `core.actions.ACTIONS`)."""


def _legend(title: str, table: dict[str, Status]) -> Content:
    lines = [Content.styled(title, "bold")]
    for status in table.values():
        lines.append(Content.assemble("  ", status.content(width=20), (status.meaning, "$text-muted")))
    return Content("\n").join(lines)


def help_text() -> Content:
    keys = [Content.styled("KEYS", "bold")]
    keys += [Content.assemble(("  " + key).ljust(12), (what, "")) for key, what in KEYS]
    keys.append(
        Content.styled(
            "  Keys that do not apply right now are greyed out in the footer and the palette.",
            "$text-muted",
        )
    )
    return Content("\n\n").join(
        [
            Content("\n").join(keys),
            _legend("SERVICES", SERVICE),
            _legend("ROLLOUT", ROLLOUT),
            _legend("GATE MEASUREMENTS", SAMPLE),
            _legend("THIS CONSOLE", MODE),
        ]
    )


class HelpScreen(ModalScreen[None]):
    """Keys and status legend; any of escape, ? or q closes it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
        & > VerticalScroll {
            width: 96;
            max-width: 100%;
            height: 90%;
            padding: 1 2;
            background: $panel;
            border: thick $primary 80%;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss_help", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(help_text())

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
