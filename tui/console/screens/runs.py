"""The runs screen: every run in this console's journal, like a k9s resource list.

`o` lists the rows `interlock runs` prints (`tui.session.runs.run_rows`, one home);
`enter` opens the selected run read-only, as its journal stands at that moment,
with the console's own widgets (graph, detail pane, event log), so an old run reads
exactly like the live one; the run this console drives or watches goes back to it.
`escape` returns.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from adapters.journals import SharedJournal
from core import RunInfo
from tui.console.screens.layout import PaneScreen, rollout_layout
from tui.console.widgets.detail import ServiceDetail
from tui.console.widgets.eventlog import EventLog, batch_lines
from tui.console.widgets.graph import ServiceGraph
from tui.console.widgets.header import RolloutHeader, speed_label
from tui.console.widgets.history import MetricHistory
from tui.console.widgets.status import rollout_status
from tui.session import runtime
from tui.session.runs import run_rows

COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("", 1), ("RUN", None), ("PHASE", 14), ("STARTED", None), ("BY", None), ("DRIVER", None), ("ROLLOUT", None),
)
"""Title and width (None: as wide as the widest cell) of each column, the run first as in k9s."""


class RunsScreen(Screen[None]):
    """The journal's runs, newest first; enter opens one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,o", "close", "Back"),
        Binding("enter", "open", "Open", show=True, priority=True),
    ]

    DEFAULT_CSS = """
    RunsScreen {
        background: $surface;
        & > #runs-title { height: 1; background: $panel; text-style: bold; }
        & > DataTable { height: 1fr; }
    }
    """

    def __init__(self, journal: SharedJournal, current: str) -> None:
        """Args:
            journal: the journal this console reads (its driver's or its watcher's).
            current: the run this console shows; opening it goes back to the console.
        """
        super().__init__()
        self.journal = journal
        self.current = current
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="runs")
        yield Footer()

    def on_mount(self) -> None:
        self.rows = list(reversed(run_rows(self.journal)))
        label = getattr(self.journal, "label", "")
        self.query_one("#runs-title", Static).update(
            f" runs in {label} · {len(self.rows)} · enter opens one, escape returns"
        )
        table = self.query_one(DataTable)
        for title, width in COLUMNS:
            table.add_column(title, width=width)
        for row in self.rows:
            status = rollout_status(row["phase"])
            table.add_row(
                "▸" if row["run"] == self.current else "", row["run"], status.content(), str(row["started"])[:19].replace("T", " "),
                row["operator"], row["driver"] or "—", row["rollout"], key=row["run"],
            )
        if self.current in {row["run"] for row in self.rows}:
            table.move_cursor(row=[row["run"] for row in self.rows].index(self.current))
        table.focus()

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows:
            return None
        return self.rows[table.cursor_row]["run"]  # type: ignore[no-any-return]

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        run = self.selected
        if run is None:
            return
        if run == self.current:
            self.dismiss(None)
            return
        info = next(i for i in self.journal.runs() if i.run_id == run)
        self.app.push_screen(RunScreen(self.journal, info))

    def action_close(self) -> None:
        self.dismiss(None)


class RunScreen(PaneScreen):
    """One run of the journal, read-only, as journaled when it was opened; it fits the
    terminal as the console does (`d` the pane, `enter` it full screen)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back to the runs"),
        Binding("enter", "details", "Details"),
        Binding("d", "pane", "Pane"),
        Binding("m", "next_metric", "Metric", show=False),
    ]

    def __init__(self, journal: SharedJournal, info: RunInfo) -> None:
        """Args:
            journal: the journal holding the run.
            info: the run to show.
        """
        super().__init__()
        self.info = info
        replayed = runtime.replay(journal, info, backlog=True)
        assert replayed.backlog is not None
        self.state = state = replayed.state
        self.history = MetricHistory(state.ctx)
        older, self._batches = replayed.backlog.drain()
        self.history.record(older)
        self.header = RolloutHeader(state, operator=info.operator, mode="viewing", id="header")
        self.graph = ServiceGraph(state, self.history, id="graph")
        self.detail = ServiceDetail(state, self.history, id="detail")
        self.log_view = EventLog(id="log")

    def compose(self) -> ComposeResult:
        yield from rollout_layout(self.header, self.graph, self.detail, self.log_view, Footer())

    def on_mount(self) -> None:
        lines = []
        before = None
        for state, events in self._batches:
            self.history.record(events)
            if before is not None:
                lines.extend(batch_lines(before, state, events))
            before = state
        self.log_view.write_lines(lines[-EventLog.MAX_LINES:])
        state = self.state
        start = state.started_at
        self.header.show(state, elapsed=0.0 if start is None else state.at - start,
                         speed=speed_label(self.info.speed, self.info.clock == "virtual"))
        self.graph.show(state)
        self.detail.show(state, self.graph.selected)
        self.graph.focus()

    @on(ServiceGraph.Selected)
    def _selected(self, message: ServiceGraph.Selected) -> None:
        self.detail.show(self.state, message.service)

    def action_close(self) -> None:
        if not self.leave_details():
            self.dismiss(None)



