"""The drill's scorecard, shown in the console when a drill ends."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ScorecardScreen(ModalScreen[None]):
    """The scorecard as the terminal table prints it; `enter`, `escape` or `q` closes."""

    DEFAULT_CSS = """
    ScorecardScreen { align: center middle; }
    ScorecardScreen > Vertical {
        width: 96; height: 80%; border: thick $primary; background: $surface; padding: 1 2;
    }
    ScorecardScreen #verdict { text-style: bold; margin-bottom: 1; }
    ScorecardScreen #verdict.passed { color: $success; }
    ScorecardScreen #verdict.failed { color: $error; }
    ScorecardScreen Button { margin-top: 1; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, table: str, passed: bool) -> None:
        super().__init__()
        self.table = table
        """The scorecard, rendered by `tui.cli.drill_cmd.render_table`."""
        self.passed = passed

    def compose(self) -> ComposeResult:
        word = "✓ drill passed" if self.passed else "✗ drill failed"
        with Vertical():
            yield Static(word, id="verdict", classes="passed" if self.passed else "failed")
            with VerticalScroll():
                yield Static(self.table, markup=False)
            yield Button("Close (enter)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one(Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
