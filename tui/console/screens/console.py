"""The console's one screen: header, graph, detail pane, event log, footer.

The screen owns the key bindings, built from the action table
(`core.actions.ACTIONS`). Whether a binding applies right now is the
app's call (`InterlockApp.availability`), which asks `core.actions`; a
binding that does not apply is greyed out in the footer, and pressing its
key writes why to the event log instead of doing nothing. Actions only post
intents: nothing here talks to the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.events import Key
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

from core import ACTIONS, BY_NAME, Action
from adapters.journals import SharedJournal
from core import RolloutState
from tui.console.screens.confirm import AbortScreen, RollbackScreen
from tui.console.screens.help import HelpScreen
from tui.console.screens.layout import PaneScreen, rollout_layout
from tui.console.screens.runs import RunsScreen
from tui.console.screens.promote import PromoteScreen
from tui.console.widgets.detail import ServiceDetail
from tui.console.widgets.eventlog import EventLog
from tui.console.widgets.graph import ServiceGraph
from tui.console.widgets.header import RolloutHeader
from tui.console.widgets.history import MetricHistory
from tui.console.widgets.intents import OperatorIntent, RefusedIntent, SpeedIntent

class RolloutApp(Protocol):
    """What this screen (and the palette) ask of the app that hosts them (`tui.console.app.InterlockApp`,
    not imported: it imports this screen)."""

    def availability(self, action: str) -> bool | None: ...

    def refusal(self, action: str) -> str: ...

    def note(self, text: str, style: str = ...) -> None: ...

    def console_ready(self) -> None: ...

    def console_closed(self) -> None: ...

    def selection_changed(self) -> None: ...

    def journal_and_run(self) -> tuple[SharedJournal, str]: ...

ROLLOUT_ACTIONS: frozenset[str] = frozenset(a.name for a in ACTIONS if a.changes_rollout)
"""Actions that change the rollout (or its clock): greyed out when they do not apply."""

SPEED_FACTOR: dict[str, float] = {"faster": 2.0, "slower": 0.5}
"""What the clock actions do to the clock's speed."""


def binding_action(action: Action) -> str:
    """The action string a binding (or the palette) runs for `action`: verbs and clock
    actions go through `ask`, which does what the table says (service, confirmation)."""
    if action.on_app:
        return f"app.{action.name}"
    return f"ask({action.name!r})" if action.changes_rollout else action.name


class ConsoleFooter(Footer):
    """Textual's footer, each key marked `-wide-only` when the action table keeps it out of a
    narrow terminal's footer (`Action.narrow`; app.tcss hides those under `WIDE` columns)."""

    WIDE_ONLY: ClassVar[frozenset[str]] = frozenset(binding_action(a) for a in ACTIONS if not a.narrow)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.action in self.WIDE_ONLY:
                widget.add_class("-wide-only")
            yield widget


def action_name(action: str, parameters: tuple[object, ...]) -> str:
    """The table's name for a binding's action string (the inverse of `binding_action`)."""
    return str(parameters[0]) if action == "ask" and parameters else action


class ConsoleScreen(PaneScreen):
    """The rollout at a glance, driven from the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(action.keys, binding_action(action), action.label, show=action.shown)
        for action in ACTIONS
        if action.keys
    ]
    """Built from `core.actions.ACTIONS` (the footer follows the table's order)."""

    def __init__(self, state: RolloutState, history: MetricHistory, *, operator: str, mode: str) -> None:
        super().__init__()
        self.state = state
        self.history = history
        self._operator = operator
        self._mode = mode
        self.graph = ServiceGraph(state, history, id="graph")
        self.detail = ServiceDetail(state, history, id="detail")
        self.log_view = EventLog(id="log")
        self.header = RolloutHeader(state, operator=operator, mode=mode, id="header")
        """The widgets the app updates on every snapshot, kept at hand (a DOM query per
        snapshot would cost more than the update)."""

    @property
    def rollout_app(self) -> RolloutApp:
        return cast(RolloutApp, self.app)

    def compose(self) -> ComposeResult:
        box = Input(placeholder="filter services by name; enter keeps it, escape clears", id="filter")
        yield from rollout_layout(self.header, self.graph, self.detail, self.log_view, ConsoleFooter(), (box,))

    def on_resize(self) -> None:
        """A narrow footer drops its padding and the palette's key (`ctrl+p` still works);
        the pane fits itself (`PaneScreen.on_resize`)."""
        footer = self.query_one(ConsoleFooter)
        narrow = self.size.width < self.WIDE
        footer.compact = narrow
        footer.show_command_palette = not narrow

    def on_mount(self) -> None:
        self.graph.focus()
        self.rollout_app.console_ready()

    def on_unmount(self) -> None:
        self.rollout_app.console_closed()

    # -- updates from the app ------------------------------------------------

    @property
    def selected(self) -> str | None:
        return self.graph.selected

    def show_state(self, state: RolloutState, lines: Sequence[Content], touched: set[str]) -> None:
        """Draw a newer snapshot and append its log lines."""
        self.state = state
        if not self.graph.is_attached:  # the app is closing: the engine may publish once more
            return
        self.graph.show(state)
        self.detail.show(state, self.graph.selected, touched=touched)
        self.log_view.write_lines(lines)

    def show_clock(self, state: RolloutState, *, elapsed: float, speed: str, mode: str | None = None) -> None:
        if self.header.is_attached:
            self.header.show(state, elapsed=elapsed, speed=speed, mode=mode)

    def log_line(self, line: Content) -> None:
        if self.log_view.is_attached:
            self.log_view.write(line)

    def go_to(self, service: str) -> None:
        self.graph.select(service)
        self.graph.focus()

    @on(ServiceGraph.Selected)
    def _selected(self, message: ServiceGraph.Selected) -> None:
        self.detail.show(self.state, message.service)
        self.rollout_app.selection_changed()

    # -- bindings ------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.rollout_app.availability(action_name(action, parameters))

    def action_ask(self, name: str) -> None:
        """A verb or a clock action, as the table describes it: the selected service when it
        needs one, a confirmation dialog when it asks first; then an intent for the app."""
        action = BY_NAME[name]
        if action.kind == "clock":
            self.post_message(SpeedIntent(SPEED_FACTOR[name]))
            return
        verb = action.verb
        assert verb is not None
        service = self.selected if action.needs_service else None
        if not action.confirm:
            self.post_message(OperatorIntent(verb, service))
            return
        if action.needs_service and service is None:
            return
        if action.needs_reason:
            assert service is not None

            def because(reason: str | None) -> None:
                if reason:
                    self.post_message(OperatorIntent(verb, service, reason))
                else:
                    self.rollout_app.note(f"{verb} of {service} cancelled; nothing changed")

            self.app.push_screen(PromoteScreen(self.state, service, full=verb == "promote_full"), because)
            return
        what = f"{verb} of {service}" if service is not None else verb

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.post_message(OperatorIntent(verb, service))
            else:
                self.rollout_app.note(f"{what} cancelled; nothing changed")

        dialog = RollbackScreen(self.state, service) if service is not None else AbortScreen(self.state)
        self.app.push_screen(dialog, confirmed)

    def action_runs(self) -> None:
        """Every run of this console's journal (`interlock runs`), to open any of them."""
        journal, run = self.rollout_app.journal_and_run()
        self.app.push_screen(RunsScreen(journal, run))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if self.leave_details():
            return
        if box.has_class("-shown"):
            box.value = ""
            box.remove_class("-shown")
            self.graph.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.graph.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            event.input.remove_class("-shown")
        self.graph.focus()

    def on_key(self, event: Key) -> None:
        """A rollout key whose action is greyed out: say so rather than ignore it.

        Key events reach the screen before its bindings are checked; a key with
        a live binding passes through untouched.
        """
        actions = [
            action.name
            for action in ACTIONS
            if action.changes_rollout and action.keys and event.key in action.keys.split(",")
        ]
        if actions and not any(self.rollout_app.availability(action) for action in actions):
            event.stop()
            event.prevent_default()
            self.post_message(RefusedIntent(actions[0], event.key))
