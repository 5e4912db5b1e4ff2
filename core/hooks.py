"""Flagger-style hooks (issue 14 point 2): when each is called, with what, and what its
answer does.

Flagger's names and semantics, on a service (`services.X.hooks`) or the rollout
(`hooks:`, called for every service as if it were the service's own):

| hook | when | a 2xx | anything else, or a timeout |
|---|---|---|---|
| `confirm-rollout` | before the service's pre-flight | goes on | waits, asked again each `interval` |
| `pre-rollout` | after the pre-flight checks, before the first user | goes on | a failed check: `on_failure` |
| `confirm-traffic-increase` | before each stage after the first | goes on | waits, asked again |
| `confirm-promotion` | before the last stage's pass promotes it | goes on | waits, asked again |
| `post-rollout` | after it is promoted or rolled back (the rollout's: at its end) | journaled | journaled, nothing else |
| `rollback` | each `interval` while it is in canary or waiting to confirm | rolls it back (`on_failure`) | goes on |
| `event` | on every phase change of it (or of the rollout) | nothing | nothing: never blocks |

The payload POSTed (JSON) mirrors Flagger's webhook fields where they mean the same
(`name`, `namespace`, `phase`, `type`, `metadata`) and adds interlock's: see `payload`.
Calls are `Probe` commands the engine runs through the `CheckRunner` port; their answers
come back as `CheckFinished` events, so the journal holds every call.
"""

from __future__ import annotations

from typing import Any

from core.checkspec import HOOK_NAMES, Hook
from core.commands import Probe
from core.evolve import evolve
from core.plan import Plan
from core.rollback import fail_group
from core.state import Step
from core.tx import Tx


def hooks_named(plan: Plan, service: str, name: str) -> list[Hook]:
    """The hooks called `name` for `service`: its own, then the rollout's."""
    out: list[Hook] = []
    own = plan.services[service].hooks
    for hooks in (own, plan.hooks):
        hook = hooks.get(name) if hooks is not None else None
        if hook is not None:
            out.append(hook)
    return out


def payload(
    rollout: str, service: str, hook: str, phase: str, stage: float, next_stage: float | None,
    versions: tuple[str, str] | None, metadata: dict[str, str],
) -> dict[str, Any]:
    """The JSON body of a hook call (the engine adds `run`, the run's id):

    `name` (the service, Flagger's canary name), `namespace` (the rollout), `type` (the
    hook), `phase` (the service's phase in interlock's words), `rollout`, `service`,
    `stage` (the percent it is at, 0 before its first exposure), `next_stage` (the percent
    it is about to go to, or null), `from_version`, `to_version`, and `metadata` (the
    hook's own, as Flagger sends it)."""
    from_version, to_version = versions if versions is not None else ("", "")
    return {
        "name": service, "namespace": rollout, "type": hook, "phase": phase, "rollout": rollout,
        "service": service, "stage": stage, "next_stage": next_stage,
        "from_version": from_version, "to_version": to_version, "metadata": dict(metadata),
    }


def hook_fields(hook: Hook, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The `Probe` fields (but `cmd_id` and `service`) that call `hook`."""
    return dict(name=f"hook {name}", kind="hook", url=hook.url, timeout=hook.timeout, retries=0, payload=body)


def hook_steps(plan: Plan, members: tuple[str, ...], name: str, first: float) -> list[Step]:
    """The steps that call hook `name` for each member before its first exposure."""
    kind = "confirm" if name.startswith("confirm-") else "check"
    out: list[Step] = []
    for service in members:
        spec = plan.services[service]
        versions = (spec.from_.version, spec.to.version) if spec.to is not None else None
        for hook in hooks_named(plan, service, name):
            body = payload(plan.rollout, service, name, "preparing", 0.0, first, versions, hook.metadata)
            fields = hook_fields(hook, name, body) | {"interval": hook.interval}
            out.append(Step(kind=kind, service=service, name=f"hook {name}", spec=fields))
    return out


def confirm_between(tx: Tx, index: int, name: str, next_stage: float | None) -> bool:
    """Before a group's next stage (`confirm-traffic-increase`) or its promotion
    (`confirm-promotion`): True when the group may go on now. Otherwise the group is
    `confirming`: each member's hook is asked in turn, again each `interval` until it
    answers 2xx (the answers come back through `core.beforefirst.on_check_finished`,
    which counts them in `GroupState.prep`)."""
    group = tx.groups[index]
    if group.confirmed == name:
        return True
    steps = confirm_steps(tx, index, name, next_stage)
    done = group.prep if group.phase == "confirming" else 0
    if done >= len(steps):
        if steps:
            tx.groups[index] = evolve(tx.groups[index], confirmed=name)
        return True
    if group.phase != "confirming":
        tx.set_group(index, phase="confirming", prep=0, asking=None, ask_at=None,
                     reason=f"waiting for {name} on {steps[0].service}")
        group = tx.groups[index]
    if group.asking is None and (group.ask_at is None or tx.at >= group.ask_at):
        ask(tx, index, steps[done])
    return False


def confirm_steps(tx: Tx, index: int, name: str, next_stage: float | None) -> list[Step]:
    """The hook calls a group's transition waits for, one per member and hook."""
    plan = tx.ctx.plan
    group = tx.groups[index]
    stage = tx.ctx.groups[index].stages[group.stage].percent if group.stage >= 0 else 0.0
    out = []
    for service in tx.ctx.groups[index].services:
        for hook in hooks_named(plan, service, name):
            body = payload(plan.rollout, service, name, "confirming", stage, next_stage,
                           tx.ctx.versions.get(service), hook.metadata)
            fields = hook_fields(hook, name, body) | {"interval": hook.interval}
            out.append(Step(kind="confirm", service=service, name=f"hook {name}", spec=fields))
    return out


def ask(tx: Tx, index: int, step: Step) -> None:
    """Send the `Probe` a `confirm` or `check` step runs; the group waits for its answer."""
    fields = {k: v for k, v in step.spec.items() if k != "interval"}
    cmd = tx.emit(Probe, service=step.service, **fields)
    tx.groups[index] = evolve(tx.groups[index], asking=cmd.cmd_id, ask_at=None)


# -- after the step: post-rollout, rollback and event hooks ------------------------------

AFTER_HOOKS = frozenset({"post-rollout", "rollback", "event"})
"""Hooks `after` looks at; a plan with none of them costs nothing per event."""

IN_CANARY_PHASES = frozenset({"progressing", "baking", "analyzing", "awaiting_approval", "confirming"})
"""Where a `rollback` hook is asked (Flagger: Progressing or Waiting)."""


def hooked(plan: Plan) -> frozenset[str]:
    """Every hook name the plan configures, on the rollout or on any service."""
    found: set[str] = set()
    for hooks in (plan.hooks, *(service.hooks for service in plan.services.values())):
        if hooks is not None:
            found.update(name for name in HOOK_NAMES if hooks.get(name) is not None)
    return frozenset(found)


def _call(tx: Tx, service: str, name: str, hook: Hook, phase: str, stage: float, extra: dict[str, str]) -> None:
    body = payload(tx.ctx.plan.rollout, service, name, phase, stage, None,
                   tx.ctx.versions.get(service), hook.metadata | extra)
    tx.emit(Probe, service=service, **hook_fields(hook, name, body))


def _own(plan: Plan, service: str, name: str) -> Hook | None:
    hooks = plan.services[service].hooks
    return hooks.get(name) if hooks is not None else None


def after(tx: Tx) -> None:
    """Call the hooks this reduce step gave a reason to: `event` on each phase change,
    `post-rollout` when a service is promoted or rolled back (the rollout's own at its
    end), and each due `rollback` hook. Their answers only inform, except a `rollback`
    hook's 2xx (`on_rollback_answer`)."""
    names = tx.ctx.hooked & AFTER_HOOKS
    if not names:
        return
    plan, before = tx.ctx.plan, tx.before
    changed = [i for i, (old, new) in enumerate(zip(before.groups, tx.groups)) if old.phase != new.phase]
    for index in changed:
        group = tx.groups[index]
        if group.poll_at is not None and not (group.phase in IN_CANARY_PHASES and group.stage >= 0):
            tx.groups[index] = evolve(group, poll_at=None)  # out of canary: no more rollback asks
    if names & {"event", "post-rollout"}:
        for index in changed:
            new = tx.groups[index]
            stage = tx.ctx.groups[index].stages[new.stage].percent if new.stage >= 0 else 0.0
            for service in tx.ctx.groups[index].services:
                message = f"{service} {new.phase}" + (f": {new.reason}" if new.reason else "")
                for hook in hooks_named(plan, service, "event"):
                    _call(tx, service, "event", hook, new.phase, stage,
                          {"eventMessage": message, "eventType": "Warning" if new.phase in _WARN else "Normal"})
                own = _own(plan, service, "post-rollout")
                if own is not None and new.phase in ("promoted", "rolled_back"):
                    _call(tx, service, "post-rollout", own, new.phase, stage, {})
        if before.phase != tx.phase and plan.hooks is not None:
            message = f"rollout {tx.phase}" + (f": {tx.reason}" if tx.reason else "")
            event = plan.hooks.get("event")
            if event is not None:
                _call(tx, "", "event", event, tx.phase, 0.0,
                      {"eventMessage": message, "eventType": "Warning" if tx.phase in _WARN else "Normal"})
            post = plan.hooks.get("post-rollout")
            if post is not None and tx.phase in ("completed", "rolled_back", "aborted"):
                _call(tx, "", "post-rollout", post, tx.phase, 0.0, {})
    if "rollback" in names and tx.phase in ("running", "paused"):
        _poll_rollback(tx)


_WARN = frozenset({"failed", "rolling_back", "rolled_back", "aborted", "paused", "held", "confirming"})


def _poll_rollback(tx: Tx) -> None:
    """Ask each group's `rollback` hooks every `interval` while it is in canary."""
    asking = {c.service for c in tx.inflight.values() if isinstance(c, Probe) and c.name == "hook rollback"}
    for index in sorted(tx.live):
        group = tx.groups[index]
        in_canary = group.phase in IN_CANARY_PHASES and group.stage >= 0
        if not in_canary:
            if group.poll_at is not None:
                tx.groups[index] = evolve(group, poll_at=None)
            continue
        hooks = [(service, hook) for service in tx.ctx.groups[index].services
                 for hook in hooks_named(tx.ctx.plan, service, "rollback")]
        if not hooks:
            continue
        interval = min(hook.interval for _, hook in hooks)
        if group.poll_at is None:
            tx.groups[index] = evolve(group, poll_at=tx.at + interval)
        elif tx.at >= group.poll_at and tx.phase == "running" and tx.hold is None:
            stage = tx.ctx.groups[index].stages[group.stage].percent
            for service, hook in hooks:
                if service not in asking:
                    _call(tx, service, "rollback", hook, group.phase, stage, {})
            tx.groups[index] = evolve(group, poll_at=tx.at + interval)


def on_rollback_answer(tx: Tx, cmd: Probe, passed: bool, detail: str) -> None:
    """A `rollback` hook answered: a 2xx fails the group (`on_failure`), as Flagger's do."""
    index = tx.ctx.graph.group_of.get(cmd.service)
    if index is None or not passed or tx.phase not in ("running", "paused"):
        return
    group = tx.groups[index]
    if group.phase in IN_CANARY_PHASES and group.stage >= 0:
        fail_group(tx, index, f"hook rollback on {cmd.service} answered {detail}: roll back")
