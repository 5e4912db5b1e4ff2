"""The console's one screen: header, graph, detail pane, event log, footer.

The screen owns the key bindings. Whether a binding applies right now is the
app's call (`InterlockApp.availability`), which asks `core.actions`; a
binding that does not apply is greyed out in the footer, and pressing its
key writes why to the event log instead of doing nothing. Actions only post
intents: nothing here talks to the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.events import Key
from textual.screen import Screen
from textual.widgets import Footer, Input

from core.state import RolloutState
from tui.screens.confirm import AbortScreen, RollbackScreen
from tui.screens.help import HelpScreen
from tui.widgets.detail import ServiceDetail
from tui.widgets.eventlog import EventLog
from tui.widgets.graph import GraphHeading, ServiceGraph
from tui.widgets.header import RolloutHeader
from tui.widgets.history import MetricHistory
from tui.widgets.intents import OperatorIntent, RefusedIntent, SpeedIntent

if TYPE_CHECKING:
    from tui.app import InterlockApp

ROLLOUT_ACTIONS: frozenset[str] = frozenset(
    {"pause", "resume", "step", "approve", "rollback", "abort", "faster", "slower"}
)
"""Actions that change the rollout (or its clock): greyed out when they do not apply."""


class ConsoleScreen(Screen[None]):
    """The rollout at a glance, driven from the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause", "Pause"),
        Binding("space", "resume", "Resume"),
        Binding("s", "step", "Step"),
        Binding("a", "approve", "Approve"),
        Binding("r", "rollback", "Roll back"),
        Binding("ctrl+x", "abort", "Abort all"),
        Binding("enter", "details", "Details"),
        Binding("m", "next_metric", "Metric", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("plus,equals_sign", "faster", "Faster"),
        Binding("minus", "slower", "Slower"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("escape", "back", "Back", show=False),
    ]

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
    def rollout_app(self) -> InterlockApp:
        return cast("InterlockApp", self.app)

    def compose(self) -> ComposeResult:
        yield self.header
        with Horizontal(id="main"):
            with Vertical(id="services"):
                yield Input(placeholder="filter services by name; enter keeps it, escape clears", id="filter")
                yield GraphHeading(self.graph.heading(), id="heading")
                yield self.graph
            yield self.detail
        yield self.log_view
        yield Footer()

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
        return self.rollout_app.availability(action)

    def action_pause(self) -> None:
        self.post_message(OperatorIntent("pause"))

    def action_resume(self) -> None:
        self.post_message(OperatorIntent("resume"))

    def action_step(self) -> None:
        self.post_message(OperatorIntent("step"))

    def action_approve(self) -> None:
        self.post_message(OperatorIntent("approve", self.selected))

    def action_rollback(self) -> None:
        service = self.selected
        if service is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.post_message(OperatorIntent("rollback", service))
            else:
                self.rollout_app.note(f"rollback of {service} cancelled; nothing changed")

        self.app.push_screen(RollbackScreen(self.state, service), confirmed)

    def action_abort(self) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.post_message(OperatorIntent("abort"))
            else:
                self.rollout_app.note("abort cancelled; nothing changed")

        self.app.push_screen(AbortScreen(self.state), confirmed)

    def action_faster(self) -> None:
        self.post_message(SpeedIntent(2.0))

    def action_slower(self) -> None:
        self.post_message(SpeedIntent(0.5))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_details(self) -> None:
        if self.maximized is self.detail:
            self.minimize()
        else:
            self.maximize(self.detail, container=False)

    def action_next_metric(self) -> None:
        self.detail.next_gate()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if self.maximized is not None:
            self.minimize()
        elif box.has_class("-shown"):
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
            binding.action
            for binding in self.BINDINGS
            if isinstance(binding, Binding)
            and binding.action in ROLLOUT_ACTIONS
            and event.key in binding.key.split(",")
        ]
        if actions and not any(self.rollout_app.availability(action) for action in actions):
            event.stop()
            event.prevent_default()
            self.post_message(RefusedIntent(actions[0], event.key))
