"""The selected service up close: where it stands, its gates, and a chart.

The chart plots one gate's metric over the whole rollout, canary against
baseline, with the threshold the gate judges it by, so "why did it fail?"
is answered by looking. `m` cycles through the service's gates.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult, RenderResult
from textual.color import Color
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static
from textual_plotext import PlotextPlot

from core import format_duration
from core import of_sample
from core import RolloutState
from tui import printer
from tui.console.widgets.history import MetricHistory, Point
from tui.console.widgets.rows import bake_progress, format_value
from tui.printer import threshold_text
from tui.console.widgets.status import SAMPLE, rollout_status, sample_status, service_status
from tui.console.widgets.why import cause, cause_content, no_data_yet, not_measuring, where_text

SUMMARY_HEIGHT = 5
"""Lines of the summary (as in DEFAULT_CSS): name, stage, facts, blast radius, and a runbook
or a warning; with both, the blast radius shares the facts' line."""
GATES_HEIGHT = 16
"""Lines of the gate panel (as in DEFAULT_CSS). Heights are fixed so new data never moves
the chart and never costs a layout pass; the newest measurements fill what is left."""


def summary(state: RolloutState, service: str) -> Content:
    ctx = state.ctx
    svc = state.services[service]
    index = state.group_of(service)
    group, spec = state.groups[index], ctx.groups[index]
    old, new = ctx.versions[service]
    status = service_status(svc.phase)
    lines = [
        Content.assemble((service, "bold"), "  ", status.content(bold=True), "  ", (f"{old} → {new}", "$text-muted")),
    ]
    moving = f" → {svc.target:g}%" if svc.target != svc.exposure else ""
    where = where_text(state, service)
    if where is None and group.stage >= 0:
        stage = spec.stages[group.stage]
        where = f"stage {group.stage + 1}/{len(spec.stages)} at {stage.percent:g}% · exposure {svc.exposure:g}%{moving}"
    elif where is None:
        where = (f"{len(spec.stages)} stages: " + " ".join(f"{s.percent:g}%" for s in spec.stages)
                 + f" · exposure {svc.exposure:g}%{moving}")
    bake = bake_progress(state, service)
    if bake is not None and group.stage >= 0:
        total = spec.stages[group.stage].bake or 0.0
        where += f" · baked {format_duration(bake * total)} of {format_duration(total)}"
    lines.append(Content(where))
    others = [n for n in spec.services if n != service]
    facts = []
    if others:
        facts.append(f"lockstep with {', '.join(others)}")
    before = sorted({n for p in spec.preds for n in ctx.groups[p].services})
    if before:
        facts.append(f"after {', '.join(before)}")
    if facts:
        lines.append(Content.styled(" · ".join(facts), "$text-muted"))
    blast = ctx.graph.blast_radius.get(service, ())
    lines.append(Content.styled(f"blast radius: {', '.join(blast) if blast else 'none'}", "$text-muted"))
    runbook = ctx.plan.services[service].runbook
    if runbook:
        lines.append(Content.styled(f"runbook: {runbook}", "$text-muted"))
    shown = cause(state, service)
    if group.reason and (shown is None or shown[1] != group.reason):
        lines.append(Content.styled(group.reason, "$text-warning"))
    if len(lines) > SUMMARY_HEIGHT and facts:  # the blast radius joins the facts, so nothing falls off
        lines[2:4] = [Content.assemble(lines[2], (" · ", "$text-muted"), lines[3])]
    return Content("\n").join(lines)


def gate_table(state: RolloutState, history: MetricHistory, service: str) -> Content:
    ctx = state.ctx
    group = state.groups[state.group_of(service)]
    runs = {run.gate: run for run in group.gates if run.service == service}
    lines = [Content.styled("GATES (this stage)", "$text-muted bold")]
    names = history.gates(service)
    if not names:
        lines.append(Content.styled("no gates: stages pass on bake time alone", "$text-muted"))
    for gate_name in names:
        gate = ctx.gates[gate_name]
        run = runs.get(gate_name)
        dry = ("  dry run: shown, never acted on", "$text-warning") if gate.dry_run else ""
        lines.append(Content.assemble((f"{gate_name:<10}", "bold"), f"{gate.metric} {threshold_text(gate)}", dry))
        if run is None:
            lines.append(Content.styled(f"  — {not_measuring(state, service)}", "$text-muted"))
            continue
        verdict = SAMPLE[run.phase] if run.phase in SAMPLE else sample_status(None)
        if run.phase == "running" and state.phase == "paused":
            verdict = rollout_status("paused")  # not measuring while paused: its clock stands still
        of = f"/{gate.count}" if gate.count is not None else ""
        marks = [sample_status(s.phase).glyph_content() for s in run.samples[-12:]]
        lines.append(
            Content.assemble(
                "  ", verdict.content(width=15), *([("(dry run) ", "$text-warning")] if gate.dry_run else []),
                f"{run.count}{of} measured  ",
                (f"✗{run.failures} ?{run.inconclusives} !{run.errors}  ", "$text-muted"),
                *marks,
            )
        )
        last = of_sample(gate, run)
        if last is not None:
            lines.append(Content.styled(f"  last: {last}", "$text-muted"))
        elif not run.samples:
            lines.append(Content.styled(f"  {no_data_yet(state, run.next_at)}", "$text-muted"))
    room = GATES_HEIGHT - len(lines) - 1
    recent = sorted(
        ((p, g) for g in names for p in list(history.points(service, g))[-room:]),
        key=lambda item: item[0].at,
    )[-room:] if room > 0 else []
    if recent:
        lines.append(Content.styled("RECENT MEASUREMENTS", "$text-muted bold"))
    for point, gate_name in recent:
        lines.append(_measurement(state, point, gate_name))
    return Content("\n").join(lines)


def _measurement(state: RolloutState, point: Point, gate_name: str) -> Content:
    value = point.error or format_value(point.value)
    if point.baseline is not None:
        value += f" (base {format_value(point.baseline)})"
    status = sample_status(point.phase)
    return Content.assemble(  # the verdict before the number: a narrow pane cuts the baseline, not the verdict
        (printer.clock_text(state, point.at), "$text-muted"), " ", f"{gate_name:<9}",
        status.content(width=13), value,
    )


class GateChart(PlotextPlot):
    """One gate's metric over time: canary, baseline and threshold.

    Plotting costs several milliseconds, so new data is drawn a moment later
    (`DELAY`), in a frame of its own: the frame that shows a state change never
    waits for the chart, and a burst of measurements costs one plot.
    """

    DEFAULT_CSS = """
    GateChart {
        height: 1fr;
        min-height: 8;
    }
    """

    DELAY: ClassVar[float] = 0.1
    """Seconds between new data and its plot; 0 draws at once."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._drawn: tuple[object, ...] | None = None
        self._built: tuple[tuple[object, ...], RenderResult] | None = None
        """The last plot built, and for what data, size and theme: a layout pass must not re-plot."""
        self._next: tuple[RolloutState, MetricHistory, str | None, str | None] | None = None

    def request(self, state: RolloutState, history: MetricHistory, service: str | None, gate_name: str | None,
                *, now: bool = False) -> None:
        """Draw soon (or `now`: a new selection should not lag)."""
        pending = self._next is not None
        self._next = (state, history, service, gate_name)
        if now or self.DELAY <= 0:
            self._draw_next()
        elif not pending:
            self.set_timer(self.DELAY, self._draw_next)

    @property
    def pending(self) -> bool:
        """New data waits to be plotted."""
        return self._next is not None

    def render(self) -> RenderResult:
        key = (self._drawn, self.size, self.app.theme)
        if self._built is None or self._built[0] != key:
            self._built = (key, super().render())
        return self._built[1]

    def _draw_next(self) -> None:
        if self._next is not None:
            args, self._next = self._next, None
            self.draw(*args)

    def _colour(self, variable: str) -> tuple[int, int, int]:
        return Color.parse(self.app.theme_variables[variable]).rgb

    def draw(self, state: RolloutState, history: MetricHistory, service: str | None, gate_name: str | None) -> None:
        points = list(history.points(service, gate_name)) if service and gate_name else []
        key = (service, gate_name, len(points), points[-1].at if points else None, state.started_at)
        if key == self._drawn:
            return
        self._drawn = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if service is None or gate_name is None:
            plt.title("no gate to chart")
            self.refresh()
            return
        gate = state.ctx.gates[gate_name]
        start = state.started_at or 0.0
        measured = [p for p in points if p.value is not None]
        xs = [(p.at - start) / 60.0 for p in measured]
        plt.title(f"{service} · {gate_name}: {gate.metric} ({threshold_text(gate)})")
        plt.xlabel("rollout minutes")
        if not measured:
            plt.title(f"{service} · {gate_name}: no measurements yet")
            self.refresh()
            return
        plt.plot(xs, [p.value for p in measured], label="canary", color=self._colour("primary"), marker="braille")
        baseline = [(x, p.baseline) for x, p in zip(xs, measured) if p.baseline is not None]
        if baseline:
            plt.plot([x for x, _ in baseline], [b for _, b in baseline], label="baseline",
                     color=self._colour("secondary"), marker="braille")
        limit = self._colour("error")
        if gate.compare == "baseline" and baseline:
            if gate.max_increase is not None:
                plt.plot([x for x, _ in baseline], [b * (1 + gate.max_increase) for _, b in baseline],
                         label="limit", color=limit, marker="braille")
            if gate.max_decrease is not None:
                plt.plot([x for x, _ in baseline], [b * (1 - gate.max_decrease) for _, b in baseline],
                         label="limit", color=limit, marker="braille")
        else:
            for bound in (gate.max, gate.min):
                if bound is not None:
                    plt.hline(bound, color=limit)
        failed = [(x, p.value) for x, p in zip(xs, measured) if p.phase in ("failed", "error")]
        if failed:
            plt.scatter([x for x, _ in failed], [v for _, v in failed], color=limit, marker="x")
        self.refresh()


class ServiceDetail(Vertical):
    """Summary, gate history and chart of the selected service."""

    ALLOW_MAXIMIZE = True
    """`enter` shows it full screen."""

    DEFAULT_CSS = """
    ServiceDetail {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        background: $surface;
        border-left: solid $panel-lighten-1;
        & > #detail-cause { height: auto; margin-bottom: 1; }
        & > #detail-cause.-empty { display: none; }
        & > #detail-summary { height: 5; text-wrap: nowrap; text-overflow: ellipsis; }
        & > #detail-gates { height: 16; text-wrap: nowrap; text-overflow: ellipsis; }
    }
    """

    def __init__(self, state: RolloutState, history: MetricHistory, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.state = state
        self.history = history
        self.service: str | None = None
        self.gate_index = 0
        """Which of the service's gates the chart shows."""

    def compose(self) -> ComposeResult:
        yield Static(id="detail-cause", classes="-empty")
        yield Static(id="detail-summary")
        yield Static(id="detail-gates")
        yield GateChart(id="detail-chart")

    @property
    def chart_gate(self) -> str | None:
        gates = self.history.gates(self.service) if self.service else ()
        return gates[self.gate_index % len(gates)] if gates else None

    def next_gate(self) -> None:
        self.gate_index += 1
        self._draw(chart_now=True)

    def show(self, state: RolloutState, service: str | None, *, touched: set[str] | None = None) -> None:
        """Draw `service` as of `state`; skip the work when nothing about it changed."""
        selection = service != self.service
        if selection:
            self.gate_index = 0
        elif touched is not None and service not in touched and self._unchanged(state, service):
            self.state = state
            return
        self.state, self.service = state, service
        self._draw(chart_now=selection)

    def _unchanged(self, state: RolloutState, service: str | None) -> bool:
        if service is None:
            return True
        group = state.group_of(service)
        return (
            state.services[service] is self.state.services[service]
            and state.groups[group] is self.state.groups[group]
            and state.frozen_at == self.state.frozen_at
            and state.at == self.state.at
            and (state.phase, state.reason, state.hold) == (self.state.phase, self.state.reason, self.state.hold)
        )

    def _draw(self, *, chart_now: bool = False) -> None:
        if self.service is None:
            top = Content.styled("no service selected (the filter hides them all)", "$text-muted")
            gates = Content("")
        else:
            top = summary(self.state, self.service)
            gates = gate_table(self.state, self.history, self.service)
        lead = cause_content(self.state, self.service)
        box = self.query_one("#detail-cause", Static)
        if not (isinstance(box.visual, Content) and box.visual.plain == lead.plain and box.visual.spans == lead.spans):
            box.set_class(not lead.plain, "-empty")
            box.update(lead)  # rare (a stop, a rollback): worth its layout pass
        _update(self.query_one("#detail-summary", Static), top)
        _update(self.query_one("#detail-gates", Static), gates)
        self.query_one(GateChart).request(self.state, self.history, self.service, self.chart_gate, now=chart_now)


def _update(static: Static, content: Content) -> None:
    """Replace a static's content without a layout pass (its height is fixed, its lines never wrap)."""
    old = static.visual
    if isinstance(old, Content) and old.plain == content.plain and old.spans == content.spans:
        return
    static.update(content, layout=False)
