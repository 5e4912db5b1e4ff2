"""Which operator actions apply right now: one answer for the reducer and the console.

The reducer ignores an action that does not apply; the console greys it out.
Both ask this module, so a key never looks live and then does nothing.
"""

from __future__ import annotations

from core.events import OperatorVerb
from core.rollback import rollback_cascade
from core.state import TERMINAL, RolloutState

ALL_VERBS: tuple[OperatorVerb, ...] = ("pause", "resume", "step", "approve", "rollback", "abort")


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


def available(state: RolloutState, service: str | None = None) -> set[OperatorVerb]:
    """The verbs that would do something now (`service` for approve and rollback)."""
    verbs: set[OperatorVerb] = set()
    phase = state.phase
    held = state.hold is not None
    if phase == "running":
        verbs.add("pause")
    if phase == "paused" or (held and state.hold is not None and state.hold.mismatch):
        verbs.add("resume")
    if phase == "paused" and not held:
        verbs.add("step")
    if service is not None and service in awaiting_approval(state) and phase in ("running", "paused"):
        verbs.add("approve")
    if (
        service is not None
        and phase in ("running", "paused", "completed", "rolled_back", "aborted")
        and rollback_cascade(state, service)
    ):
        verbs.add("rollback")
    if phase not in TERMINAL and phase != "planned":
        verbs.add("abort")
    return verbs
