"""Anytime-valid one-sided tests for canary gates: mixtures of likelihood ratios.

A gate looks every interval, at every stage, on every service. A test whose
false-alarm rate holds for one look fires far more often over hundreds of
looks; Wald's SPRT holds over looks but needs one alternative, and is slow
when the truth is far from it. A *mixture* of likelihood ratios over several
alternatives, each a nonnegative supermartingale under the null, is one too;
by Ville's inequality it exceeds ``1/alpha`` with probability at most
``alpha`` however often and however long it is looked at (the same guarantee
as the "always valid p-values" of Johari et al. and Netflix's sequential
canary tests). It never accepts the null: a gate that has not crossed by the
end of its stage's bake passes, as a threshold gate without failures does.

Two tests, both on counts:

* :func:`ratio_start` / :func:`ratio_update` — canary against baseline error
  counts (two-sample). Errors are Poisson; given both arms' errors in one
  measurement, the canary's share is Binomial(x, q) with
  ``q = n_c r / (n_c r + n_b)``, r the canary/baseline rate ratio. Null: r <= 1
  (the canary errs no more than the baseline, whatever the baseline's rate
  is today); alternatives r = ``ratio`` x (1, 1.5, 2.5, 5, 10, 25), weighted
  ``RATIO_WEIGHTS`` (most on the failing ratio itself, see there).
* :func:`tail_start` / :func:`tail_update` — the canary's requests slower than
  a threshold (one-sample binomial). For a latency quantile gate the threshold
  is the baseline's quantile times (1 + max_increase) over the same window, so
  "the canary's p99 is within +10% of the baseline's" is exactly "at most 1% of
  the canary's requests are slower than 1.1 x the baseline's p99". Null:
  p <= ``p0``; alternatives p0 x (1.5, 2, 3, 5, 10, 20), capped below 1.

Each alternative keeps its own log-likelihood ratio; the mixture is their
weighted mean (weights summing to 1, fixed before any data).

Why this stays valid: for one alternative q1 > q0 and one measurement, the factor
``(q1/q0)**x * ((1-q1)/(1-q0))**(n-x)`` has conditional mean
``(q*q1/q0 + (1-q)*(1-q1)/(1-q0))**n`` given the past and the measurement's n (its
total errors, or requests), which is 1 at q = q0 and increases with q: at most 1 for
every q <= q0, i.e. r <= 1 (ratio) or p <= p0 (tail), whatever n, the traffic split or
the baseline's rate. So each alternative's product is a nonnegative supermartingale
starting at 1 under the null, and so is any fixed convex combination of them; Ville's
inequality bounds the probability that it ever reaches ``1/alpha`` by ``alpha``. The
weights shape only *which* alternatives cross soonest, never the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from core.evolve import evolve

Kind = Literal["ratio", "tail"]

RATIO_SPREAD = (1.0, 1.5, 2.5, 5.0, 10.0, 25.0)
RATIO_WEIGHTS = (0.45, 0.25, 0.12, 0.08, 0.05, 0.05)
"""The prior over ``RATIO_SPREAD``. Evidence accrues slowest near the failing ratio
(a canary at 2-3x the baseline's rate gives a fraction of a nat per error), so that is
where prior mass buys time: each halving of an alternative's weight costs it log 2 = 0.69
nats, which a 2x canary needs several errors to earn and a 25x one earns with its first.
Measured with `bench/judgement.py` (issue 15): against the even 1/6 each, a drifting
baseline's 0.5% canary is caught 3-7% sooner (median) and about 10% sooner (p95), a 5%
canary at 1 request/s about 10 s later."""
TAIL_SPREAD = (1.5, 2.0, 3.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True)
class MixtureState:
    """The evidence so far. Once it crossed, updates leave it unchanged.

    No slots: a gate updates it on every answer, copied by `core.evolve` in one dict copy."""

    kind: Kind
    alternatives: tuple[float, ...]
    """Rate ratios (ratio) or exceedance probabilities (tail)."""
    null: float
    """1 (ratio) or p0 (tail)."""
    bound: float
    """log(1/alpha): the mixture's log-likelihood ratio at which the gate fails."""
    alpha: float
    llrs: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    """The prior over `alternatives` (summing to 1); empty: even weights."""
    errors: int = 0
    """Canary errors (ratio) or slow canary requests (tail)."""
    requests: int = 0
    baseline_errors: int = 0
    baseline_requests: int = 0
    updates: int = 0
    crossed: bool = False

    @property
    def llr(self) -> float:
        """log of the mixture (the weighted mean of the alternatives' likelihood ratios)."""
        return _mixture_llr(self.llrs, self.weights)

    @property
    def decision(self) -> str:
        """In the words of `core.judges.sequential`: accept_h1 once crossed, else continue."""
        return "accept_h1" if self.crossed else "continue"


def _mixture_llr(llrs: tuple[float, ...], weights: tuple[float, ...]) -> float:
    """`MixtureState.llr` of these log-likelihood ratios under these weights (empty: even)."""
    if not llrs:
        return 0.0
    top = max(llrs)
    if not weights:
        return top + math.log(sum([math.exp(v - top) for v in llrs]) / len(llrs))
    return top + math.log(sum([w * math.exp(v - top) for w, v in zip(weights, llrs)]))


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def ratio_start(ratio: float, alpha: float) -> MixtureState:
    """A canary-versus-baseline error-rate test: null r <= 1, failing near r >= ``ratio``."""
    _check_alpha(alpha)
    if not ratio > 1.0:
        raise ValueError(f"the failing rate ratio must exceed 1, got {ratio}")
    alts = tuple(ratio * k for k in RATIO_SPREAD)
    return MixtureState("ratio", alts, 1.0, math.log(1.0 / alpha), alpha, llrs=(0.0,) * len(alts),
                        weights=RATIO_WEIGHTS)


def tail_start(p0: float, alpha: float) -> MixtureState:
    """A one-sample test of the canary's share of slow requests: null p <= ``p0``."""
    _check_alpha(alpha)
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"p0 must lie in (0, 1), got {p0}")
    alts = tuple(sorted({min(p0 * k, (1.0 + p0) / 2) for k in TAIL_SPREAD}))
    return MixtureState("tail", alts, p0, math.log(1.0 / alpha), alpha, llrs=(0.0,) * len(alts))


def _check(errors: int, requests: int) -> None:
    if errors < 0 or requests < 0 or errors > requests:
        raise ValueError(f"need 0 <= errors <= requests, got {errors} of {requests}")


def _settle(state: MixtureState, llrs: tuple[float, ...], **counts: Any) -> MixtureState:
    return evolve(state, llrs=llrs, updates=state.updates + 1, crossed=_mixture_llr(llrs, state.weights) >= state.bound, **counts)


def ratio_update(state: MixtureState, c_errors: int, c_requests: int, b_errors: int, b_requests: int) -> MixtureState:
    """Add one measurement of both arms."""
    _check(c_errors, c_requests)
    _check(b_errors, b_requests)
    if state.crossed:
        return state
    llrs = state.llrs
    if c_requests > 0 and b_requests > 0 and c_errors + b_errors > 0:
        q0 = c_requests / (c_requests + b_requests)
        out = []
        for r, llr in zip(state.alternatives, llrs):
            q1 = c_requests * r / (c_requests * r + b_requests)
            out.append(llr + c_errors * math.log(q1 / q0) + b_errors * math.log((1.0 - q1) / (1.0 - q0)))
        llrs = tuple(out)
    return _settle(state, llrs, errors=state.errors + c_errors, requests=state.requests + c_requests,
                   baseline_errors=state.baseline_errors + b_errors,
                   baseline_requests=state.baseline_requests + b_requests)


def tail_update(state: MixtureState, slow: int, requests: int) -> MixtureState:
    """Add one measurement: ``slow`` of the canary's ``requests`` exceeded the threshold."""
    _check(slow, requests)
    if state.crossed:
        return state
    fast = requests - slow
    llrs = tuple([
        llr + slow * up + fast * down
        for (up, down), llr in zip(_tail_logs(state.alternatives, state.null), state.llrs)
    ])
    return _settle(state, llrs, errors=state.errors + slow, requests=state.requests + requests)


_TAIL_LOGS: dict[tuple[tuple[float, ...], float], tuple[tuple[float, float], ...]] = {}


def _tail_logs(alternatives: tuple[float, ...], p0: float) -> tuple[tuple[float, float], ...]:
    """Per alternative p: (log(p / p0), log((1 - p) / (1 - p0))), the same numbers every
    update of a run (a gate updates its test on every answer); computed once."""
    key = (alternatives, p0)
    logs = _TAIL_LOGS.get(key)
    if logs is None:
        logs = _TAIL_LOGS[key] = tuple(
            (math.log(p / p0), math.log((1.0 - p) / (1.0 - p0))) for p in alternatives)
    return logs
