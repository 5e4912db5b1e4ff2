"""The one-line header: what rolls out, where it is, and who is at the wheel.

The clock is the rollout's own (simulated or scaled) time since it started,
never the wall clock, so a screenshot of a paused rollout is reproducible and
a watcher in another timezone reads the same thing as the driver.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from core import RolloutState, format_moment
from tui.console.widgets.status import MODE, rollout_status


def clock_label(seconds: float) -> str:
    """`T+ 1h05m30s`: the moment format of every line interlock prints (`core.format_moment`),
    in whole seconds (the header ticks once a second)."""
    return format_moment(max(0, int(seconds)))


def speed_label(speed: float, virtual: bool) -> str:
    if virtual:
        return "virtual time"
    return f"×{speed:g}"


def wave_label(state: RolloutState) -> str:
    """`wave 2/3`: the earliest wave with a group still on its way."""
    specs = state.ctx.groups
    total = max((s.wave for s in specs), default=-1) + 1
    if total == 0:
        return "no waves"
    if state.phase in ("rolled_back", "aborted"):
        return f"{total} waves"
    active = [
        specs[i].wave
        for i, g in enumerate(state.groups)
        if g.phase not in ("promoted", "rolled_back") and (g.stage >= 0 or g.phase != "waiting")
    ]
    if active:
        current = min(active)
    elif all(g.phase == "promoted" for g in state.groups):
        current = total - 1
    else:
        waiting = [specs[i].wave for i, g in enumerate(state.groups) if g.phase == "waiting"]
        current = min(waiting) if waiting else total - 1
    return f"wave {current + 1}/{total}"


class RolloutHeader(Widget):
    """Rollout, phase, wave, clock and speed, operator, driving or watching."""

    DEFAULT_CSS = """
    RolloutHeader {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, state: RolloutState, *, operator: str, mode: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.state = state
        self.operator = operator
        """Who drives (or watches): `user@host`."""
        self.mode = mode
        """`driving`, `watching` or `stopped`."""
        self.elapsed = 0.0
        """Rollout time since it started, in seconds."""
        self.speed = "virtual time"

    def show(self, state: RolloutState, *, elapsed: float, speed: str, mode: str | None = None) -> None:
        changed = (
            state is not self.state
            or clock_label(elapsed) != clock_label(self.elapsed)
            or speed != self.speed
            or (mode is not None and mode != self.mode)
        )
        self.state, self.elapsed, self.speed = state, elapsed, speed
        if mode is not None:
            self.mode = mode
        if changed:
            self.refresh()

    GIVE_WAY: tuple[str, ...] = ("operator", "brand", "speed", "wave")
    """What a narrow header leaves out, first to last; the rollout, its phase, the clock and
    this console's mode always stay (the reason, last, is ellipsised)."""

    def render(self) -> Content:
        state = self.state
        phase = rollout_status(state.effective_phase)
        reason = state.reason or (state.hold.reason if state.hold is not None else "")
        parts: dict[str, Content] = {
            "brand": Content.styled(" interlock", "$text-accent bold"),
            "rollout": Content.styled(state.ctx.plan.rollout, "bold"),
            "phase": phase.content(bold=True),
            "wave": Content(wave_label(state)),
            "clock": Content.styled(clock_label(self.elapsed), "bold"),
            "speed": Content.styled(self.speed, "$text-muted"),
            "operator": Content(self.operator),
            "mode": MODE[self.mode].content(bold=True),
        }
        width = self.size.width or 10_000
        for name in (None, *self.GIVE_WAY):
            if name is not None:
                del parts[name]
            line = _join(parts)
            if "brand" not in parts:
                line = Content(" ") + line  # the brand's own leading space, kept as a margin
            if line.cell_length < width:  # a full last cell is ellipsised by the terminal line
                break
        if reason:
            line = Content.assemble(line, _SEP, Content.styled(reason, "$text-muted"))
        return line


_SEP = Content.styled(" │ ", "$text-muted")


def _join(parts: dict[str, Content]) -> Content:
    out: list[Content] = []
    for name, part in parts.items():
        if out:
            out.append(Content(" ") if name == "speed" else _SEP)
        out.append(part)
    return Content("").join(out)
