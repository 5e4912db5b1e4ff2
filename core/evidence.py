"""Evidence a gate's test carries from one stage to the next (issue 15).

One anytime-valid test per service and gate runs for the whole rollout: `core.schedule`
hands what a stage's tests saw to the next stage's bake, and `core.context` splits
`policy.false_rollbacks` per service and gate accordingly."""

from __future__ import annotations

from core.context import anytime_valid
from core.gates import GateRun
from core.judges.mixture import MixtureState
from core.tx import Tx


def carried(tx: Tx, runs: tuple[GateRun, ...]) -> tuple[tuple[str, str, MixtureState], ...]:
    """What the next stage's tests start from: every anytime-valid test that has not crossed.

    A mixture of likelihood ratios is a product of one factor per look, each with mean at
    most 1 under the null whatever the traffic split of its look; continuing it into the
    next stage keeps Ville's bound over all the looks of all the stages, so the rollout
    spends one share of `policy.false_rollbacks` per service and gate (`core.context`), and
    what a stage saw still counts at the next. A test that crossed (a failure the operator
    chose to resume) is not carried: its stage re-runs on fresh evidence."""
    return tuple(
        (run.service, run.gate, run.sprt)
        for run in runs
        if isinstance(run.sprt, MixtureState) and not run.sprt.crossed and anytime_valid(tx.ctx.gates[run.gate])
    )
