"""One service as one row of the graph: pure formatting from a state snapshot.

Kept apart from the widget so the widget only scrolls, selects and caches,
and so the heading and the rows share one set of column widths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual.content import Content

from core import RolloutState
from tui.cells import fit, width_of
from tui.console.widgets.history import MetricHistory
from tui.console.widgets.lanes import LaneRow
from tui.console.widgets.status import SERVICE, sample_status, service_status

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 10
SPARK_COLUMN = SPARK_WIDTH + 1 + 15
"""The sparkline and its gate label (`errors 0.001417`)."""
BAKE_WIDTH = 6
PERCENT_WIDTH = 8
"""`25%`, or `5→25%` while traffic moves."""
_WORD = max(len(s.word) for s in SERVICE.values()) + 1
MIN_NAME, MIN_VERSIONS = 8, 7
"""The narrowest a name or a version pair is cut to (with an ellipsis) to fit a terminal."""
GIVE_WAY: tuple[str, ...] = ("spark", "bake", "track", "lanes")
"""Columns that give way to a narrow terminal, first to last: the sparkline, the bake bar,
the stage track, the lanes. The bracket, status glyph and word, name, versions and the
current percent always stay (names and versions are ellipsised last)."""


def format_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def sparkline(values: list[float]) -> str:
    """Eighth-blocks from the smallest to the largest of `values`."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    top = len(SPARK) - 1
    return "".join(SPARK[0 if span <= 0 else round((v - low) / span * top)] for v in values)


@dataclass(frozen=True, slots=True)
class Columns:
    """Cell widths of the graph's columns: natural per plan (`for_state`), then fitted to
    the graph's width (`fit`)."""

    lanes: int
    name: int
    versions: int
    stages: int
    spark: bool = True
    bake: bool = True
    track: bool = True
    show_lanes: bool = True

    @classmethod
    def for_state(cls, state: RolloutState, lanes: dict[str, LaneRow]) -> Columns:
        ctx = state.ctx
        names = ctx.graph.order or ("",)
        return cls(
            lanes=max((len(r.lanes) for r in lanes.values()), default=0),
            name=max(7, width_of(names, 28)),
            versions=max(7, width_of((_versions(state, n) for n in names), 20)),
            stages=max((len(g.stages) for g in ctx.groups), default=1),
        )

    def essential(self) -> Columns:
        """Only the columns that always stay, at their natural widths."""
        return replace(self, spark=False, bake=False, track=False, show_lanes=False)

    def fit(self, width: int) -> Columns:
        """These columns in at most `width` cells: optional columns give way in `GIVE_WAY`'s
        order, then the name is cut, then the versions (never below `MIN_NAME`, `MIN_VERSIONS`)."""
        cols = self
        for column in GIVE_WAY:
            if row_width(cols) <= width:
                return cols
            cols = replace(cols, **{"show_lanes" if column == "lanes" else column: False})
        over = row_width(cols) - width
        if over > 0:
            cut = min(over, max(0, cols.name - MIN_NAME))
            cols = replace(cols, name=cols.name - cut)
            over -= cut
        if over > 0:
            cols = replace(cols, versions=max(MIN_VERSIONS, cols.versions - over))
        return cols


def _versions(state: RolloutState, name: str) -> str:
    old, new = state.ctx.versions.get(name, ("?", "?"))
    return f"{old} → {new}"


def row_width(cols: Columns) -> int:
    """Cells of the widest row."""
    width = 3 + (cols.lanes if cols.show_lanes else 0) + _WORD + cols.name + 2 + cols.versions + 2 + PERCENT_WIDTH
    if cols.track:
        width += cols.stages + 1
    if cols.bake:
        width += BAKE_WIDTH + 2
    if cols.spark:
        width += SPARK_COLUMN
    return width


def heading(cols: Columns) -> Content:
    text = (
        " " * (3 + (cols.lanes if cols.show_lanes else 0))
        + "STATUS".ljust(_WORD)
        + "SERVICE".ljust(cols.name + 2)
        + "VERSION".ljust(cols.versions + 2)
        + ("STAGES".ljust(cols.stages + 1 + PERCENT_WIDTH) if cols.track else "EXPOSED".ljust(PERCENT_WIDTH))
        + ("BAKE".ljust(BAKE_WIDTH + 2) if cols.bake else "")
        + ("MAIN GATE" if cols.spark else "")
    )
    return Content.styled(text.rstrip(), "$text-muted bold")


def _stage_track(state: RolloutState, name: str, cols: Columns) -> Content:
    """The stages done, the current one, those to come (when `cols.track`), then the percent."""
    index = state.group_of(name)
    group = state.groups[index]
    stages = state.ctx.groups[index].stages
    colour = service_status(group.phase).colour
    parts: list[tuple[str, str]] = []
    if cols.track:
        for i in range(len(stages)):
            if group.phase == "promoted" or i < group.stage:
                parts.append(("■", colour))
            elif i == group.stage:
                parts.append(("▣", colour))
            else:
                parts.append(("□", "$text-muted"))
        parts.append((" " * (cols.stages - len(stages) + 1), ""))
    svc = state.services[name]
    percent = f"{svc.exposure:g}%"
    if svc.target != svc.exposure:
        percent = f"{svc.exposure:g}→{svc.target:g}%"
    return Content.assemble(*parts, (percent.ljust(PERCENT_WIDTH), colour))


def bake_progress(state: RolloutState, name: str) -> float | None:
    """How far the current stage's bake is, 0..1, or None when not baking."""
    index = state.group_of(name)
    group = state.groups[index]
    if group.phase not in ("baking", "analyzing") or group.stage < 0:
        return None
    if group.phase == "analyzing" or group.bake_until is None:
        return 1.0
    bake = state.ctx.groups[index].stages[group.stage].bake or 0.0
    if bake <= 0:
        return 1.0
    now = state.frozen_at if state.frozen_at is not None else state.at
    return max(0.0, min(1.0, 1.0 - (group.bake_until - now) / bake))


def _bake_bar(state: RolloutState, name: str) -> Content:
    progress = bake_progress(state, name)
    if progress is None:
        return Content(" " * (BAKE_WIDTH + 2))
    filled = round(progress * BAKE_WIDTH)
    return Content.assemble(
        ("━" * filled, "$text-primary"), ("─" * (BAKE_WIDTH - filled), "$text-muted"), "  "
    )


def _spark(history: MetricHistory, name: str) -> Content:
    gate = history.main_gate(name)
    if gate is None:
        return Content.styled("no gates", "$text-muted")
    points = [p for p in list(history.points(name, gate))[-SPARK_WIDTH:] if p.value is not None]
    if not points:
        return Content.styled(f"{gate} —", "$text-muted")
    chars = sparkline([p.value for p in points if p.value is not None])
    spans = [(ch, _spark_colour(p.phase)) for ch, p in zip(chars, points)]
    last = points[-1]
    return Content.assemble(
        *spans,
        " " * (SPARK_WIDTH - len(chars) + 1),
        (f"{gate} {format_value(last.value)}", sample_status(last.phase).colour),
    )


def _spark_colour(phase: str | None) -> str:
    if phase in ("failed", "error"):
        return "$text-error"
    if phase == "inconclusive":
        return "$text-warning"
    return "$text-primary"


def row(
    state: RolloutState,
    history: MetricHistory,
    name: str,
    lane: LaneRow,
    cols: Columns,
    *,
    show_lanes: bool = True,
) -> Content:
    """The whole row of one service, in `cols` (fitted to the graph's width)."""
    svc = state.services[name]
    status = service_status(svc.phase)
    lanes = ""
    if cols.show_lanes:
        lanes = lane.lanes.ljust(cols.lanes) if show_lanes else " " * cols.lanes
    parts: list[Content | tuple[str, str] | str] = [
        (lane.bracket if show_lanes else " ", "$text-accent bold"),
        status.glyph_content(),
        (lanes, "$text-muted"),
        " ",
        (status.word.ljust(_WORD), status.colour),
        (fit(name, cols.name) + "  ", "bold"),
        (fit(_versions(state, name), cols.versions) + "  ", "$text-muted"),
        _stage_track(state, name, cols),
    ]
    if cols.bake:
        parts.append(_bake_bar(state, name))
    if cols.spark:
        parts.append(_spark(history, name))
    return Content.assemble(*parts)
