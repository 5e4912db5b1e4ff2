"""Operator actions: the one table of what an operator can do, and whether it applies now.

The table (`ACTIONS`) is the only place an action is spelled: the console's key
bindings, footer labels, palette, help screen, acknowledgements and the
README's key table are built from it (or checked against it by a test). The
reducer ignores a verb that does not apply; the console greys it out and says
why. Both ask `available` (and `why_not`, its wording), so a key never looks
live and then does nothing, and the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.events import OperatorAction, OperatorVerb
from core.governance import approval_progress, person, refusal
from core.rollback import rollback_cascade
from core.state import TERMINAL, RolloutState
from core.windows import describe_next, is_open

ActionKind = Literal["verb", "clock", "view"]
"""`verb`: journaled, changes the rollout. `clock`: changes the clock's speed. `view`: the console only."""

Role = Literal["driver", "watcher"]
"""Who is asking: the console driving the run, or one watching its journal. A watcher's
verbs go to the driver as requests through the journal (`tui.session.steering`), which
asks `refused` like a key on its own console. Issue 13's governance (named operators,
approvers) refines who may, in `refused`."""


@dataclass(frozen=True)
class Action:
    """One operator action, everything any surface needs to offer it."""

    name: str
    """The console's action name (`action_<name>`), the verb's name for verbs."""
    kind: ActionKind
    keys: str
    """Textual key names, comma-separated, as a binding takes them; empty: bound elsewhere
    (the graph's cursor keys, the app's palette key)."""
    key_text: str
    """The key as the help screen and the README show it."""
    label: str = ""
    """The footer's word (and the binding's description)."""
    title: str = ""
    """The palette's entry; empty: not in the palette."""
    summary: str = ""
    """The palette's line under the title."""
    help: str = ""
    """The help screen's line; empty: shares the previous action's line (resume, slower)."""
    shown: bool = True
    """Shown in the footer."""
    narrow: bool = True
    """Shown in the footer of a narrow terminal too (where only keys that apply now show)."""
    needs_service: bool = False
    """Applies to the selected service (approve, rollback)."""
    needs_reason: bool = False
    """The journaled action must carry the operator's reason."""
    confirm: bool = False
    """Asks first, showing what it will do (rollback and abort list their cascade)."""
    ack: str = ""
    """The glyph that acknowledges the key in the event log."""
    may: frozenset[Role] = frozenset({"driver"})
    """Who may ask for it."""
    on_app: bool = False
    """Bound on the app rather than the console screen (quit)."""
    cli: str = ""
    """The command line's spelling (`interlock promote SERVICE --full`): the subcommand,
    then a flag that selects this action; empty: not a command (views, the clock)."""

    @property
    def verb(self) -> OperatorVerb | None:
        return self.name if self.kind == "verb" else None  # type: ignore[return-value]

    @property
    def changes_rollout(self) -> bool:
        """Greyed out when it does not apply (verbs and the clock); views always apply."""
        return self.kind != "view"


_ANYONE: frozenset[Role] = frozenset({"driver", "watcher"})

ACTIONS: tuple[Action, ...] = (
    Action("pause", "verb", "space", "space", "Pause", "Pause the rollout", "no exposure rises until resumed",
           "pause the rollout / resume it (no exposure rises while paused)", ack="‖", may=_ANYONE, cli="pause"),
    Action("resume", "verb", "space", "space", "Resume", "Resume the rollout", "carry on from where it paused",
           ack="▶", may=_ANYONE, cli="resume"),
    Action("step", "verb", "s", "s", "Step", "Step one transition", "while paused: exactly one transition, then pause",
           "step: while paused, let exactly one transition happen, then pause again", ack="⏵", may=_ANYONE,
           cli="step"),
    Action("approve", "verb", "a", "a", "Approve", "Approve the selected service", "its stage or wave awaits approval",
           "approve the selected service's stage or wave (when it awaits approval)", needs_service=True, ack="◆",
           may=_ANYONE, cli="approve"),
    Action("promote", "verb", "p", "p P", "Promote", "Promote the selected service now…",
           "break-glass: end its bake, take the next stage (asks for a reason)",
           "break-glass promote, asks why: p takes the next stage now, P goes to 100%", shown=False, needs_service=True, needs_reason=True, confirm=True,
           ack="⇡", may=_ANYONE, cli="promote"),
    Action("promote_full", "verb", "P", "p P", "Promote 100%", "Promote the selected service to 100% now…",
           "break-glass: every user on the new version now (asks for a reason)", shown=False,
           needs_service=True, needs_reason=True, confirm=True, ack="⤒", may=_ANYONE, cli="promote --full"),
    Action("rollback", "verb", "r", "r", "Roll back", "Roll back the selected service…",
           "shows the cascade before anything happens",
           "roll back the selected service: shows the cascade, Cancel focused",
           needs_service=True, confirm=True, ack="↺", may=_ANYONE, cli="rollback"),
    Action("abort", "verb", "ctrl+x", "ctrl+x", "Abort all", "Abort the whole rollout…",
           "every moved service back to 0%, asks first", "abort all: every moved service back to 0% (asks first)",
           confirm=True, ack="■", may=_ANYONE, cli="abort"),
    Action("select", "view", "", "↑ ↓ j k", help="select a service (home/end, page up/down too)", may=_ANYONE),
    Action("details", "view", "enter", "enter", "Details", "Toggle the detail pane full screen",
           "the selected service up close", "details: the selected service's pane full screen (escape returns)",
           narrow=False, may=_ANYONE),
    Action("pane", "view", "d", "d", "Pane", "Show or hide the detail pane",
           "hidden at first under 120 columns", "detail pane: show or hide it (hidden at first under 120 columns)",
           may=_ANYONE),
    Action("runs", "view", "o", "o", "Runs", "Runs in this journal…", "open any of them, as `interlock runs` lists them",
           "runs: every run in this journal; enter opens one (escape returns)", shown=False, may=_ANYONE),
    Action("next_metric", "view", "m", "m", "Metric", "Chart the next gate metric", "of the selected service",
           "chart the selected service's next gate metric", shown=False, may=_ANYONE),
    Action("filter", "view", "slash", "/", "Filter", "Filter services by name", "escape clears",
           "filter services by name (escape clears)", narrow=False, may=_ANYONE),
    Action("faster", "clock", "plus,equals_sign", "+ -", "Faster", "Speed up the clock",
           "simulated or scaled clocks only", "speed the clock up / slow it down: ×1, 2, 5, 10, 15, 30, 60, 120 … 7200",
           narrow=False),
    Action("slower", "clock", "minus", "+ -", "Slower", "Slow down the clock", "simulated or scaled clocks only",
           narrow=False),
    Action("palette", "view", "", "ctrl+p", help="command palette: every action, and go to service", may=_ANYONE),
    Action("help", "view", "question_mark", "?", "Help", "Help: keys and status legend", "", "this help",
           may=_ANYONE),
    Action("quit", "view", "q", "q", "Quit",
           help="quit (asks; the rollout stays in the journal, `interlock resume` continues)", may=_ANYONE,
           on_app=True),
    Action("back", "view", "escape", "escape", "Back", shown=False, may=_ANYONE),
)
"""Every operator action, in the footer's order (the help lists them in this order too)."""

BY_NAME: dict[str, Action] = {action.name: action for action in ACTIONS}
ALL_VERBS: tuple[OperatorVerb, ...] = tuple(a.name for a in ACTIONS if a.kind == "verb")  # type: ignore[misc]
"""The journaled verbs, in the table's order."""


def help_rows() -> list[tuple[str, str]]:
    """(key as shown, what it does) for the help screen and the README, one per key."""
    return [(action.key_text, action.help) for action in ACTIONS if action.help]


def readme_key_table() -> str:
    """The README's key table, as Markdown (a test checks the README has exactly this)."""
    lines = ["| key | action |", "|---|---|"]
    for keys, what in help_rows():
        lines.append(f"| {' '.join(f'`{key}`' for key in keys.split())} | {what} |")
    return "\n".join(lines)


def awaiting_approval(state: RolloutState) -> list[str]:
    """Services whose group waits for an approval, in rollout order."""
    out: list[str] = []
    for index, group in enumerate(state.groups):
        if group.phase != "awaiting_approval":
            continue
        # Approved already, and now waiting for something else (a free slot, a resume).
        if group.approved or (group.stage < 0 and state.ctx.groups[index].wave in state.approved_waves):
            continue
        out.extend(state.ctx.groups[index].services)
    return out


_ROLLBACK_PHASES = frozenset({"running", "paused", "completed", "rolled_back", "aborted"})
"""A rollback applies after the rollout ended too: whatever still moved can be taken back."""


def available(state: RolloutState, service: str | None = None, who: str | None = None) -> set[OperatorVerb]:
    """The verbs that would do something now (`service` for approve and rollback). With `who`
    (the operator asking, `name@host`), only those the plan's governance lets them do: the
    console greys the rest, the reducer ignores them, a request from another terminal is
    refused with `why_not`'s words."""
    verbs = _by_state(state, service)
    if who is not None:
        verbs = {verb for verb in verbs if _governance_refusal(state, verb, service, who) is None}
    return verbs


def _governance_refusal(state: RolloutState, verb: str, service: str | None, who: str) -> str | None:
    """Why governance refuses `who` this verb now (its `may` rules, or an approval they already
    gave); None when it lets them."""
    gov = state.ctx.plan.governance
    owners = state.ctx.plan.services[service].owners if service in state.ctx.plan.services else ()
    refused = refusal(gov, verb, who, owners)
    if refused is None and verb == "approve" and service is not None and service in state.ctx.graph.group_of:
        index = state.group_of(service)
        group = state.groups[index]
        votes = state.wave_votes.get(state.ctx.groups[index].wave, frozenset()) if group.stage < 0 else group.votes
        if person(who) in votes:
            refused = f"{person(who)} already approved {service}; {approval_progress(gov, votes, state.starter)}"
    return refused


def _by_state(state: RolloutState, service: str | None) -> set[OperatorVerb]:
    verbs: set[OperatorVerb] = set()
    phase = state.phase
    held = state.hold is not None
    if phase == "running":
        verbs.add("pause")
    if phase == "paused" or (held and state.hold is not None and (state.hold.mismatch or state.hold.config)):
        verbs.add("resume")
    if phase == "paused" and not held:
        verbs.add("step")
    if service is not None and service in awaiting_approval(state) and phase in ("running", "paused"):
        verbs.add("approve")
    if (
        service is not None
        and phase in _ROLLBACK_PHASES
        and rollback_cascade(state, service)
    ):
        verbs.add("rollback")
    if phase not in TERMINAL and phase != "planned":
        verbs.add("abort")
    if service is not None and _promotable(state, service) is None:
        verbs.update(("promote", "promote_full"))
    return verbs


_PROMOTABLE = frozenset({"baking", "analyzing", "awaiting_approval", "confirming"})
"""A group at one of its stages, settled there: break-glass may move it on (past a confirm-*
hook it waits for, too: a person decided)."""


def _promotable(state: RolloutState, service: str) -> str | None:
    """Why a break-glass promotion of `service` cannot happen now; None when it can. Only
    while running and not held: exposure never rises while paused or held."""
    if state.phase != "running" or state.hold is not None:
        phase = state.effective_phase
        hint = ": resume first (exposure never rises while paused)" if phase == "paused" else ""
        return f"the rollout is {phase}{hint}"
    index = state.ctx.graph.group_of.get(service)
    if index is None or service not in state.ctx.graph.moving:
        return f"{service} does not move in this rollout"
    group = state.groups[index]
    if group.stage < 0 or group.phase not in _PROMOTABLE:
        where = "has not started its first stage" if group.stage < 0 else f"is {group.phase}"
        return f"{service} {where}; only a service at a stage (baking, analyzing, awaiting approval) can be promoted"
    windows = state.ctx.plan.policy.windows
    if not is_open(windows, state.at):
        assert windows is not None
        return f"outside the change window, exposure never rises: {describe_next(windows, state.at)}"
    return None


def why_not(
    state: RolloutState, verb: OperatorVerb, service: str | None = None, who: str | None = None
) -> str | None:
    """Why `verb` does not apply now, in words for the log and the palette; None when it
    applies. Worded from the same conditions as `available` (a test holds them together);
    with `who`, governance first: a refusal names the rule ("approve needs group release:
    carol is in oncall")."""
    if verb in available(state, service, who):
        return None
    if who is not None and (refused := _governance_refusal(state, verb, service, who)) is not None:
        return refused
    phase = state.effective_phase
    if verb in ("pause", "resume"):
        return f"nothing to pause or resume: the rollout is {phase}"
    if verb == "step":
        if phase == "running" and state.stepping:
            return "a step is under way: one transition, then the rollout pauses again by itself"
        return "step works while paused: press space first" if phase == "running" else f"the rollout is {phase}"
    if verb == "approve":
        waiting = awaiting_approval(state)
        tail = f"; awaiting: {', '.join(waiting)}" if waiting else "; nothing awaits approval"
        return f"{service or 'no service'} does not await approval{tail}"
    if verb in ("promote", "promote_full"):
        return _promotable(state, service) if service is not None else "no service selected"
    if verb == "rollback":
        if state.phase not in _ROLLBACK_PHASES:
            return f"the rollout is {phase}"
        if service is None:
            return "no service selected"
        return f"nothing to roll back: {service} and what follows it have not moved"
    return f"the rollout is {phase}"


def refused(state: RolloutState, request: OperatorAction) -> str | None:
    """The one question every operator request is asked before it is applied: a key on
    the driving console, `interlock pause|approve|...` from another terminal, a watching
    console's key (`tui.session.steering`). None: it applies; else why not, one line.

    Governance first, reading `request.operator` (who may, an approval already given:
    `core.governance`), then the rollout's rules (`why_not`, the reducer's own; change
    windows among them), then what the action needs (its service, its reason), so no
    surface can skip any of them."""
    action = BY_NAME.get(request.action)
    if action is None or action.kind != "verb":
        return f"{request.action!r} is not an operator action"
    if action.needs_service and not request.service:
        return f"{request.action} needs a service"
    why = why_not(state, request.action, request.service, who=request.operator)
    if why is not None:
        return why
    if action.needs_reason and not request.reason.strip():
        return f"{action.cli or request.action} needs a reason (--reason TEXT): break-glass is journaled with who and why"
    return None
