"""Confirmations for the actions that cannot be taken back: rollback, abort, quit.

Cancel has the focus, so a stray Enter does nothing. The rollback and abort
dialogs list, in order, the services the action will take back; the list
follows the live state while the dialog is open (the engine does not wait
for the operator to make up their mind), so what is confirmed is what is
shown. Both lists come from `core.rollback`, the functions the reducer executes
(`rollback_cascade`, `abort_order`); the engine recomputes them when it applies the action.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from core import abort_order, rollback_cascade
from core import RolloutState
from tui.printer import words

MODAL_CSS = """
{name} {{
    align: center middle;
    background: $background 60%;
    & > Vertical {{
        width: 72;
        height: auto;
        max-height: 80%;
        padding: 1 2;
        background: $panel;
        border: thick $error 80%;
    }}
    & .modal-title {{ text-style: bold; margin-bottom: 1; }}
    & .modal-list {{ height: auto; margin-bottom: 1; }}
    & .modal-note {{ color: $text-muted; margin-bottom: 1; }}
    & Horizontal {{ height: auto; align: right middle; }}
    & Button {{ margin-left: 2; }}
}}
"""


def cascade_lines(groups: list[tuple[str, ...]]) -> Content:
    if not groups:
        return Content.styled("nothing to roll back now: none of these services has moved", "$text-muted")
    lines = []
    for i, members in enumerate(groups, start=1):
        label = " + ".join(members) + ("  (lockstep, one cohort)" if len(members) > 1 else "")
        lines.append(Content.assemble((f"{i:>2}. ", "$text-muted"), ("↺ ", "$text-warning"), (label, "bold")))
    return Content("\n").join(lines)


class CascadeScreen(ModalScreen[bool]):
    """A yes/no dialog over a live list of services, Cancel focused."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    TITLE_TEXT: ClassVar[str] = ""
    CONFIRM_LABEL: ClassVar[str] = "Confirm"

    def __init__(self, state: RolloutState) -> None:
        super().__init__()
        self.state = state
        self.groups: list[tuple[str, ...]] = self.compute(state)

    def compute(self, state: RolloutState) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def title_text(self) -> str:
        return self.TITLE_TEXT

    def note_text(self) -> str:
        return ""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text(), classes="modal-title")
            yield Static(cascade_lines(self.groups), classes="modal-list", id="cascade")
            yield Static(self.note_text(), classes="modal-note")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="default")
                yield Button(self.CONFIRM_LABEL, id="confirm", variant="error", disabled=not self.groups)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def show_state(self, state: RolloutState) -> None:
        """Follow the rollout while the dialog is open."""
        groups = self.compute(state)
        self.state = state
        if groups != self.groups:
            self.groups = groups
            self.query_one("#cascade", Static).update(cascade_lines(groups))
            self.query_one("#confirm", Button).disabled = not groups

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)


class RollbackScreen(CascadeScreen):
    """Roll back one service: it, its lockstep group, and what moved after it."""

    DEFAULT_CSS = MODAL_CSS.format(name="RollbackScreen")
    CONFIRM_LABEL = "Roll back"

    def __init__(self, state: RolloutState, service: str) -> None:
        self.service = service
        super().__init__(state)

    def compute(self, state: RolloutState) -> list[tuple[str, ...]]:
        return rollback_cascade(state, self.service)

    def title_text(self) -> str:
        return f"Roll back {self.service}? These go back to 0%, in this order:"

    def note_text(self) -> str:
        return (
            "Services before it in the rollout order stay where they are; "
            "services that never moved stay at 0%."
        )


class AbortScreen(CascadeScreen):
    """Abort the whole rollout: every moved service back to 0%, latest first."""

    DEFAULT_CSS = MODAL_CSS.format(name="AbortScreen")
    CONFIRM_LABEL = "Abort all"
    TITLE_TEXT = "Abort the whole rollout? Every moved service goes back to 0%:"

    def compute(self, state: RolloutState) -> list[tuple[str, ...]]:
        return abort_order(state)

    def note_text(self) -> str:
        return "The rollout ends as aborted; start it again with `interlock run`."

    def on_mount(self) -> None:
        super().on_mount()
        # An abort with nothing moved still ends the rollout: allow it.
        self.query_one("#confirm", Button).disabled = False

    def show_state(self, state: RolloutState) -> None:
        super().show_state(state)
        self.query_one("#confirm", Button).disabled = False


class QuitScreen(ModalScreen[bool]):
    """Leave the console; the rollout stays in the journal."""

    DEFAULT_CSS = MODAL_CSS.format(name="QuitScreen").replace("$error 80%", "$warning 80%")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "Stay"),
        Binding("y", "answer(True)", "Quit"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Quit the console?", classes="modal-title")
            yield Static(
                f"The engine stops after its current step. The rollout stays in the journal "
                f"as it is ({words(self.phase)}); `interlock resume` continues it.",
                classes="modal-note",
            )
            with Horizontal():
                yield Button("Stay (n)", id="stay", variant="default")
                yield Button("Quit (y)", id="quit", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#stay", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit")

    def action_answer(self, quit: bool) -> None:
        self.dismiss(quit)
