"""An operator's approval, counted: the reducer's half of governance's quorum and separation.

`core.governance` says who may approve and when approvals are enough; this records one
person's approval on the group (its stage) or the wave (before its first stage) it is for,
and ends the wait once they are enough.
"""

from __future__ import annotations

from core.evolve import evolve
from core.governance import approval_complete, approval_progress, person
from core.tx import Tx


def approve(tx: Tx, service: str, operator: str) -> None:
    """One person's approval of the wait `service`'s group is in (its stage, or its wave before
    the first stage); the wait ends once the approvals make governance's quorum and separation."""
    gov = tx.ctx.plan.governance
    index = tx.ctx.graph.group_of[service]
    group, wave = tx.groups[index], tx.ctx.groups[index].wave
    before = tx.wave_votes.get(wave, frozenset()) if group.stage < 0 else group.votes
    votes = before | {person(operator)}
    done = approval_complete(gov, votes, tx.starter)
    if group.stage < 0:
        tx.wave_votes = {w: v for w, v in tx.wave_votes.items() if w != wave} | ({} if done else {wave: votes})
        if done:
            tx.approved_waves = tx.approved_waves | {wave}
    else:
        tx.groups[index] = evolve(group, approved=done, votes=frozenset() if done else votes)
    if not done:
        tx.reason = f"{service}: {approval_progress(gov, votes, tx.starter)}"
