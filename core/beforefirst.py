"""Before the first user: what a group passes between "it may start" and its first exposure.

When a group may start (what it follows is promoted, its wave approved, a slot free),
it does not go to its first stage at once: it is `preparing`, and walks its steps in
order, one at a time. Only when the last one passed does `core.schedule` expose it.
A failed step keeps every service of the group at 0% and follows `on_failure`, named
as the cause; a lockstep group passes all its members' steps before any of it moves.

**The extension point.** The steps of a group are `Context.before_first[index]`, built
once per run by `steps_for` from `BUILDERS`, in this order:

1. `confirm-rollout` hooks (`core.hooks`): wait until they answer 2xx;
2. the services' `preflight:` checks (`http`, `run`), in the plan's order;
3. the data-contract checks of what the services' new versions read (`core.datapreflight`:
   each measures once, at 0%; answered by `Measured`, which `on_data_measured` handles);
4. `pre-rollout` hooks: a non-2xx is a failed check;

then, once every step passed, the shadow stage if the group has one (its own phase,
`shadowing`: `core.shadow`), and only then the first stage.

A new kind of step needs three things: a builder in `BUILDERS` (at its place) that
returns `Step(kind=..., service=..., name=..., spec=...)`; a starter in `STARTERS` for
its `kind`, called when the group reaches the step (it sends its commands, and may set
`GroupState.asking` to the command it waits for); and, from the reducer's handler of the
events its commands produce, a call to `step_passed`, `step_failed` or `step_wait`.
`confirm` and `check` steps are `Probe` commands answered by `CheckFinished` events,
which `on_check_finished` handles.
"""

from __future__ import annotations

from typing import Callable

from core.commands import Probe
from core.datapreflight import KIND as DATA
from core.datapreflight import data_steps, judge
from core.datapreflight import start as start_data
from core.events import CheckFinished, Measured
from core.gates import GateRun
from core.evolve import evolve
from core.hooks import ask, hook_steps, hooks_named, on_rollback_answer
from core.plan import Plan
from core.rollback import fail_group
from core.state import Step
from core.tx import Tx

StepBuilder = Callable[[Plan, tuple[str, ...], float], list[Step]]
"""(plan, the group's services, its first stage's percent) -> the steps it adds."""


def _confirm_rollout(plan: Plan, members: tuple[str, ...], first: float) -> list[Step]:
    return hook_steps(plan, members, "confirm-rollout", first)


def _preflight(plan: Plan, members: tuple[str, ...], first: float) -> list[Step]:
    out: list[Step] = []
    for service in members:
        for check in plan.services[service].preflight:
            name = f"pre-flight {check.label}"
            if check.http is not None:
                spec = dict(name=name, kind="http", url=check.http.url, status=check.http.status,
                            timeout=check.http.timeout, retries=check.http.retries)
            else:
                assert check.run is not None
                spec = dict(name=name, kind="run", argv=tuple(check.run.argv), timeout=check.run.timeout,
                            retries=check.run.retries)
            out.append(Step(kind="check", service=service, name=name, spec=spec))
    return out


def _pre_rollout(plan: Plan, members: tuple[str, ...], first: float) -> list[Step]:
    return hook_steps(plan, members, "pre-rollout", first)


BUILDERS: list[tuple[str, StepBuilder]] = [
    ("confirm-rollout", _confirm_rollout),
    ("preflight", _preflight),
    ("data-contracts", data_steps),
    ("pre-rollout", _pre_rollout),
]
"""Every kind of step before the first exposure, in the order a group takes them."""

Starter = Callable[[Tx, int, Step], None]
STARTERS: dict[str, Starter] = {"confirm": ask, "check": ask, DATA: start_data}
"""Step kind -> what starts it when its group reaches it."""


def steps_for(plan: Plan, members: tuple[str, ...], first: float) -> tuple[Step, ...]:
    """A group's steps before its first exposure, in `BUILDERS`' order."""
    return tuple(step for _, build in BUILDERS for step in build(plan, members, first))


def begin(tx: Tx, index: int) -> bool:
    """A group may start: True when it has nothing to pass (expose it now); else it is
    `preparing`, at its first step."""
    if not tx.ctx.before_first or not tx.ctx.before_first[index]:
        return True
    tx.set_group(index, phase="preparing", prep=0, asking=None, ask_at=None, confirmed="",
                 reason="before the first user")
    return drive(tx, index)


def drive(tx: Tx, index: int) -> bool:
    """Start the group's current step if it is due; True once every step has passed."""
    group = tx.groups[index]
    steps = tx.ctx.before_first[index]
    if group.prep >= len(steps):
        return True
    if group.asking is None and (group.ask_at is None or tx.at >= group.ask_at):
        step = steps[group.prep]
        tx.groups[index] = evolve(group, reason=f"{step.name} on {step.service}")
        STARTERS[step.kind](tx, index, step)
    return False


def step_passed(tx: Tx, index: int) -> None:
    """The group's current step passed: on to the next (`core.schedule` drives it)."""
    group = tx.groups[index]
    tx.groups[index] = evolve(group, prep=group.prep + 1, asking=None, ask_at=None)


def step_wait(tx: Tx, index: int, why: str, until: float) -> None:
    """The current step does not pass yet: it starts again at `until`."""
    tx.groups[index] = evolve(tx.groups[index], asking=None, ask_at=until, reason=why)


def step_failed(tx: Tx, index: int, why: str) -> None:
    """The current step failed: the group stays at 0% and `on_failure` decides."""
    tx.groups[index] = evolve(tx.groups[index], asking=None, ask_at=None)
    if tx.phase in ("running", "paused"):
        fail_group(tx, index, why)


def _because(event: CheckFinished) -> str:
    where = f" on {event.service}" if event.service else ""
    return f"{event.check}{where} failed: {event.detail}"


def on_check_finished(tx: Tx, event: CheckFinished) -> None:
    """A `Probe` answered: move the group that waited for it (preparing or confirming)."""
    cmd = tx.inflight.pop(event.cmd_id, None)
    if not isinstance(cmd, Probe) or cmd.service not in tx.ctx.graph.group_of:
        return
    if cmd.name == "hook rollback":
        on_rollback_answer(tx, cmd, event.passed, event.detail)
        return
    index = tx.ctx.graph.group_of[cmd.service]
    group = tx.groups[index]
    if group.asking != event.cmd_id:
        return
    waiting = f"waiting for {cmd.name.removeprefix('hook ')} on {cmd.service}: {event.detail}"
    if group.phase == "preparing":
        step = tx.ctx.before_first[index][group.prep]
        if event.passed:
            step_passed(tx, index)
        elif step.kind == "confirm":
            step_wait(tx, index, waiting, tx.at + _interval_of(tx, cmd))
        else:
            step_failed(tx, index, _because(event))
    elif group.phase == "confirming":
        if event.passed:
            step_passed(tx, index)
        else:
            step_wait(tx, index, waiting, tx.at + _interval_of(tx, cmd))
    else:
        tx.groups[index] = evolve(group, asking=None)


def _interval_of(tx: Tx, cmd: Probe) -> float:
    """How often a confirm-* hook is asked again: its `interval`."""
    hook_name = cmd.name.removeprefix("hook ")
    hooks = hooks_named(tx.ctx.plan, cmd.service, hook_name)
    matching = [hook.interval for hook in hooks if hook.url == cmd.url]
    return matching[0] if matching else 30.0


def on_data_measured(tx: Tx, index: int, run: GateRun, before: GateRun, event: Measured) -> None:
    """A data-contract step's measurement is in (`core.datapreflight.judge` decides)."""
    decided = judge(tx, index, run, before, event)
    if decided is None:
        return
    verdict, why = decided
    if verdict == "passed":
        step_passed(tx, index)
    elif verdict == "failed":
        step_failed(tx, index, why)
    else:  # no data or an error proves nothing either way: a person decides, resume measures again
        step_wait(tx, index, why, tx.at)
        tx.phase, tx.stepping = "paused", False
        tx.reason = f"{why}; waiting for the operator"
