"""Which services a rollback takes back, and in what order.

DESIGN.md's rule: the failing service with its lockstep group, plus (for
`rollback_dependents` and every operator rollback) each group that has moved
and comes after it in the rollout order, since it moved on the strength of
this one. Latest first. Groups before it stay; unordered groups are left
alone; groups that never moved stay at 0%. The console shows exactly this
list before the operator confirms.
"""

from __future__ import annotations

from typing import Callable, Sequence

from core.state import Context, GroupState, RolloutState
from core.shadow import stop_mirrors
from core.tx import Tx

_DONE = frozenset({"rolled_back"})


def cascade_groups(
    groups: Sequence[GroupState], ctx: Context, index: int, *, moved: Callable[[int], bool]
) -> tuple[int, ...]:
    """Group indices to roll back, in order, for a rollback starting at `index`."""
    later = [
        i for i in ctx.groups[index].after if moved(i) and groups[i].phase not in _DONE
    ]
    later.sort(key=lambda i: -(groups[i].start_order or 0))
    own = [index] if moved(index) and groups[index].phase not in _DONE else []
    return tuple(later + own)


def rollback_cascade(state: RolloutState, service: str) -> list[tuple[str, ...]]:
    """The groups (as service names) an operator rollback of `service` would take back, in order."""
    if service not in state.ctx.graph.group_of:
        return []
    index = state.ctx.graph.group_of[service]
    queue = cascade_groups(state.groups, state.ctx, index, moved=state.group_moved)
    return [state.ctx.groups[i].services for i in queue]


def abort_queue(
    groups: Sequence[GroupState], queue: tuple[int, ...], *, moved: Callable[[int], bool]
) -> tuple[int, ...]:
    """Group indices an abort takes back, in order: a rollback in flight (`queue`) goes on
    first, then every other group that has moved, latest first. The reducer executes this."""
    rest = [i for i in range(len(groups)) if moved(i) and i not in queue]
    rest.sort(key=lambda i: -(groups[i].start_order or 0))
    return queue + tuple(rest)


def abort_order(state: RolloutState) -> list[tuple[str, ...]]:
    """What an abort would take back now, in the order the reducer will (`abort_queue`):
    the abort dialog shows exactly this, also while a rollback is in flight."""
    queue = abort_queue(state.groups, state.rollback_queue, moved=state.group_moved)
    return [state.ctx.groups[i].services for i in queue]


def fail_group(tx: Tx, index: int, why: str) -> None:
    """A gate (or a stage's score) failed for this group: do what `on_failure` says."""
    policy = tx.ctx.plan.policy.on_failure
    tx.set_group(index, phase="failed", reason=why)
    if policy == "pause":
        tx.phase = "paused"
        tx.stepping = False
        tx.reason = f"{why}; waiting for the operator"
        return
    if policy == "rollback_self":
        queue: tuple[int, ...] = (index,) if tx.moved(index) else ()  # failed in shadow: nothing to take back
    else:
        queue = cascade_groups(tx.groups, tx.ctx, index, moved=tx.moved)
    start_rollback(tx, queue, "rolled_back", why)


def start_rollback(tx: Tx, queue: tuple[int, ...], final: str, reason: str) -> None:
    tx.stepping = False
    tx.reason = reason
    stop_mirrors(tx)  # a shadow in progress ends with the rollout
    if tx.phase == "rolling_back":
        tx.rollback_queue = tx.rollback_queue + tuple(i for i in queue if i not in tx.rollback_queue)
        if final == "aborted":
            tx.rollback_final = "aborted"
        return
    tx.phase = "rolling_back"
    tx.rollback_queue = queue
    tx.rollback_final = "aborted" if final == "aborted" else "rolled_back"
