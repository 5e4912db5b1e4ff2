"""Break-glass promotion: ask why before a service skips the rest of its bake.

`p` (the next stage now) and `P` (100% now) skip what the gates would have
judged, so the console asks for a reason, which is journaled with the
operator's identity; Promote stays disabled until one is typed, and Cancel
has the focus, as in the other dialogs that cannot be taken back.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from core import RolloutState
from tui.console.screens.confirm import MODAL_CSS


def promotion_text(state: RolloutState, service: str, full: bool) -> str:
    """What the promotion will do, from the stages of the service's group."""
    index = state.ctx.graph.group_of[service]
    stages = state.ctx.groups[index].stages
    stage = state.groups[index].stage
    members = " + ".join(state.ctx.groups[index].services)
    if stage >= len(stages) - 1:
        return f"Promote {members} now? Its bake at 100% ends: promoted."
    target = stages[-1 if full else stage + 1].percent
    return f"Promote {members} now? Its bake at {stages[stage].percent:g}% ends; it goes to {target:g}%."


class PromoteScreen(ModalScreen[str | None]):
    """A reason and a yes; dismissed with the reason, or None when cancelled."""

    DEFAULT_CSS = MODAL_CSS.format(name="PromoteScreen").replace("$error 80%", "$warning 80%")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, state: RolloutState, service: str, *, full: bool) -> None:
        super().__init__()
        self.text = promotion_text(state, service, full)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.text, classes="modal-title")
            yield Input(placeholder="why (journaled with your name)", id="reason")
            yield Static("Break-glass: the gates do not judge the rest of this bake.", classes="modal-note")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="default")
                yield Button("Promote", id="confirm", variant="warning", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Changed, "#reason")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = not event.value.strip()

    @on(Input.Submitted, "#reason")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        reason = self.query_one("#reason", Input).value.strip()
        self.dismiss(reason if event.button.id == "confirm" and reason else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
