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

from core.checkspec import Hook
from core.commands import Probe
from core.evolve import evolve
from core.plan import Plan
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
