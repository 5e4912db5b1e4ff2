"""Why the selected service is where it is, in words the detail pane leads with.

An operator looking at a stopped rollout asks three things before anything else:
what stopped it (the measurement and its arithmetic, as `core.verdict` wrote it into
the reason), what followed (the rollback cascade, latest first, as the reducer ran
it), and why a gate shows no new numbers (paused, waiting for its stage, no data
yet). Each answer is read off the state the screen shows, never guessed, and the
words are the ones the log uses.
"""

from __future__ import annotations

from textual.content import Content

from core import RolloutState, format_moment
from tui.console.widgets.status import rollout_status, service_status

STOPPED = frozenset({"paused", "rolling_back", "rolled_back", "aborted"})
"""Rollout phases whose reason the pane leads with."""
_BACK = frozenset({"failed", "rolling_back", "rolled_back"})


def _stage(state: RolloutState, service: str) -> str:
    index = state.group_of(service)
    stage, stages = state.groups[index].stage, state.ctx.groups[index].stages
    return f"stage {stage + 1}/{len(stages)} ({stages[stage].percent:g}%)"


def where_text(state: RolloutState, service: str) -> str | None:
    """The stage line of a service that went back: where it was, and that it is at 0%
    (`rolled back from stage 4/5 (50%) · at 0%`). None: the usual stage line applies."""
    svc = state.services[service]
    if svc.phase not in _BACK or state.groups[state.group_of(service)].stage < 0:
        return None
    stage = _stage(state, service)
    if svc.phase == "rolled_back":
        return f"rolled back from {stage} · at {svc.exposure:g}%"
    if svc.phase == "rolling_back":
        return f"rolling back from {stage} · exposure {svc.exposure:g}% → {svc.target:g}%"
    return f"failed at {stage} · exposure {svc.exposure:g}%"


def cause(state: RolloutState, service: str | None) -> tuple[str, str] | None:
    """(status word, reason) of what stopped the rollout, or held it, or took `service`
    back; None when nothing did."""
    if state.hold is not None and state.phase not in ("rolled_back", "aborted", "completed"):
        return "held", state.hold.reason
    if state.phase in STOPPED and state.reason:
        return state.phase, state.reason
    if service is not None:
        group = state.groups[state.group_of(service)]
        if group.phase in _BACK and group.reason:
            return group.phase, group.reason
    return None


def cascade(state: RolloutState) -> list[tuple[str, ...]]:
    """The groups a rollback took (or is taking) back, in the order the reducer takes them:
    latest first (`core.rollback`), those still queued after."""
    done = [i for i, g in enumerate(state.groups) if g.phase in ("rolling_back", "rolled_back")
            and i not in state.rollback_queue]
    done.sort(key=lambda i: -(state.groups[i].start_order or 0))
    return [state.ctx.groups[i].services for i in (*done, *state.rollback_queue)]


def cause_content(state: RolloutState, service: str | None) -> Content:
    """The pane's lead: what stopped the rollout with its arithmetic, then the cascade that
    followed. Empty when the rollout runs (or ended well)."""
    found = cause(state, service)
    if found is None:
        return Content("")
    phase, reason = found
    status = rollout_status(phase) if phase in ("held", *STOPPED) else service_status(phase)
    head, _, arithmetic = reason.partition(": ")
    lines = [Content.assemble(status.content(bold=True), ": ", (head, "bold"))]
    if arithmetic:
        lines.append(Content.styled(f"  {arithmetic}", status.colour))
    groups = cascade(state)
    if groups:
        steps = [
            Content.assemble(" + ".join(names), " ", _step_status(state, names[0]))
            for names in groups
        ]
        label = "  then, latest first: " if len(steps) > 1 else "  then: "
        lines.append(Content.assemble((label, "$text-muted"), *_joined(steps, " → ")))
    elif phase == "paused" and state.phase == "paused":
        lines.append(Content.styled("  nothing rolled back: exposure holds where it is (space resumes)", "$text-muted"))
    return Content("\n").join(lines)


def _step_status(state: RolloutState, service: str) -> Content:
    """A group's place in the cascade: its status once the rollback reached it, else queued."""
    phase = state.services[service].phase
    if phase in ("rolling_back", "rolled_back"):
        return service_status(phase).content()
    return Content.styled("(queued)", "$text-muted")


def _joined(parts: list[Content], sep: str) -> list[Content | tuple[str, str]]:
    out: list[Content | tuple[str, str]] = []
    for part in parts:
        if out:
            out.append((sep, "$text-muted"))
        out.append(part)
    return out


def not_measuring(state: RolloutState, service: str) -> str:
    """Why a gate of `service` has no run at this moment, in a few words."""
    group = state.groups[state.group_of(service)]
    svc = state.services[service]
    phase = group.phase
    if phase == "promoted":
        return "done: promoted"
    if phase in _BACK:
        return f"stopped: {service_status(phase).word}"
    if phase == "waiting" or group.stage < 0:
        return "waiting for its first stage"
    if state.phase == "paused":
        return "the rollout is paused; gates measure again once it resumes"
    if state.hold is not None:
        return "held; gates measure again once the adapters agree with the journal"
    if phase == "progressing":
        return f"waiting for the stage: traffic {svc.exposure:g}% → {svc.target:g}%"
    if phase == "awaiting_approval":
        return "the stage passed; waiting for approval (a)"
    return "not measuring at this stage"


def no_data_yet(state: RolloutState, next_at: float | None) -> str:
    """A gate run with no measurement so far: when the first one is due."""
    if state.phase == "paused":
        return "no data yet (paused)"
    if next_at is None:
        return "no data yet: measuring"
    start = state.started_at if state.started_at is not None else next_at
    return f"no data yet: first measurement at {format_moment(next_at - start)}"
