"""What a team hears about: the notification triggers a batch of events fired, and the
payload a webhook receives for each.

Pure: a trigger is read off the states before and after a batch (a phase that
changed, a stage that completed, a group that began to wait for approval) and
off the batch's measurements (a gate that failed or went inconclusive, with the
arithmetic of `core.verdict`). `adapters.notify` sends the payloads; the plan's
`notify:` (`core.notify`) says which webhook hears which trigger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from core.events import Event, Measured
from core.state import RolloutState
from core.verdict import of_event

HEADLINES = {
    "stage_completed": "stage completed", "paused": "paused", "held": "held", "awaiting_approval": "awaits approval",
    "gate_failed": "gate failed", "gate_inconclusive": "gate inconclusive", "rolling_back": "rolling back",
    "rolled_back": "rolled back", "completed": "completed", "aborted": "aborted",
}
"""Each trigger as the `text` of a payload says it."""

_PHASE_TRIGGERS = ("paused", "rolling_back", "rolled_back", "completed", "aborted")


@dataclass(frozen=True)
class Notice:
    """One trigger that fired, with what it is about."""

    trigger: str
    services: tuple[str, ...] = ()
    gate: str | None = None
    arithmetic: str | None = None
    """The gate's verdict with its numbers (`core.verdict`), for gate triggers."""
    reason: str = ""


def notices(before: RolloutState, after: RolloutState, events: Sequence[Event]) -> list[Notice]:
    """The triggers that the batch `events`, which took `before` to `after`, fired; in the
    order a person would tell them (the gate, then what the rollout did about it)."""
    out = _gate_notices(before, after, events)
    for index, (old, new) in enumerate(zip(before.groups, after.groups)):
        services = after.ctx.groups[index].services
        stages = after.ctx.groups[index].stages
        if old.stage >= 0 and (new.stage > old.stage or (new.phase == "promoted" and old.phase != "promoted")):
            done = stages[old.stage]
            out.append(Notice("stage_completed", services, reason=(
                f"stage {old.stage + 1} of {len(stages)} ({done.percent:g}%) completed")))
        if new.phase == "awaiting_approval" and old.phase != "awaiting_approval":
            out.append(Notice("awaiting_approval", services, reason=new.reason))
    if before.hold is None and after.hold is not None and after.phase not in ("completed", "rolled_back", "aborted"):
        out.append(Notice("held", reason=after.hold.reason))
    if after.phase != before.phase and after.phase in _PHASE_TRIGGERS:
        out.append(Notice(after.phase, reason=after.reason))
    return out


def _gate_notices(before: RolloutState, after: RolloutState, events: Sequence[Event]) -> list[Notice]:
    """A measurement whose verdict the rollout acted on: it failed the group (its reason now
    names the gate), or it paused the rollout as inconclusive."""
    out = []
    for event in events:
        if not isinstance(event, Measured):
            continue
        where = f"gate {event.gate} on {event.service} "
        index = after.ctx.graph.group_of.get(event.service)
        if index is None:
            continue
        verdict = of_event(before, event)
        failed = after.groups[index].reason.startswith(where) and before.groups[index].reason != after.groups[index].reason
        inconclusive = after.reason.startswith(where + "inconclusive") and before.reason != after.reason
        if failed or inconclusive:
            text = verdict.text if verdict is not None else None
            reason = after.groups[index].reason if failed else after.reason
            out.append(Notice("gate_failed" if failed else "gate_inconclusive", (event.service,), event.gate, text, reason))
    return out


def payload(notice: Notice, state: RolloutState, run_id: str) -> dict[str, Any]:
    """The JSON a webhook receives: the run, rollout, service, gate and its arithmetic, the
    runbook, and a Slack-compatible `text` saying it all in one message."""
    plan = state.ctx.plan
    runbook = next((plan.services[s].runbook for s in notice.services if plan.services[s].runbook), None)
    service = "+".join(notice.services) or None
    text = f"interlock · {plan.rollout}: {service + ' ' if service else ''}{HEADLINES[notice.trigger]}"
    if notice.arithmetic:
        text += f" — gate {notice.gate}: {notice.arithmetic}"
    elif notice.reason:
        text += f" — {notice.reason}"
    text += f" (run {run_id})"
    if runbook:
        text += f"\nRunbook: <{runbook}>"
    return {
        "trigger": notice.trigger,
        "run": run_id,
        "rollout": plan.rollout,
        "phase": state.effective_phase,
        "service": service,
        "services": list(notice.services),
        "gate": notice.gate,
        "arithmetic": notice.arithmetic,
        "reason": notice.reason,
        "runbook": runbook,
        "at": state.at,
        "text": text,
    }
