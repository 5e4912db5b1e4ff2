"""Sequential error-rate tests that may stop early, either way.

A threshold gate looks at one window at a time, so it must choose between
looking often (and firing on noise) and looking rarely (and letting users
suffer a bad canary for minutes). Wald's sequential probability ratio test
(SPRT) adds the evidence of every request to one log-likelihood ratio and
stops as soon as it is decisive: for "bad" (H1) when the ratio reaches the
upper bound, for "fine" (H0) when it falls to the lower one. Because the
likelihood ratio is a martingale under H0, checking it after every request
does not inflate the false-alarm rate (Ville's inequality), which is what
lets the gate look every few seconds.

Two forms:

* one-sample: the canary's errors against a known acceptable rate ``p0``
  (H0: rate = p0, H1: rate = p1); each request is a Bernoulli trial.
* two-sample: the canary against the baseline running beside it, so no rate
  has to be known. Error counts are treated as Poisson; given the errors of
  both arms in a measurement, the canary's share is Binomial(x, q) with
  ``q = n_c*r / (n_c*r + n_b)``, r the canary/baseline rate ratio. The test
  is the SPRT of r = 1 against r = ``max_ratio`` on that conditional
  binomial (measurements with differing traffic just carry differing q).

Wald's bounds ``log((1-beta)/alpha)`` and ``log(beta/(1-alpha))`` are
conservative: the ratio overshoots them, so the real error rates come out
lower than nominal — markedly so for rare errors, where a single error moves
the ratio by ``log(p1/p0)``. For the one-sample test
:func:`calibrated_bounds` computes the operating characteristic exactly (a
dynamic programme over the per-request lattice, :func:`operating_characteristic`)
and returns the least bounds whose exact error probabilities do not exceed
``alpha`` and ``beta``: the same guarantee, reached sooner.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

Decision = Literal["continue", "accept_h0", "accept_h1"]


@dataclass(frozen=True, slots=True)
class SprtState:
    """The evidence so far. Once decided, updates leave it unchanged."""

    p0: float
    """One-sample: the acceptable error rate. Two-sample: the H0 rate ratio (1)."""
    p1: float
    """One-sample: the failing error rate. Two-sample: the H1 rate ratio."""
    upper: float
    """Accept H1 (fail) when the log-likelihood ratio reaches this."""
    lower: float
    """Accept H0 (pass) when the log-likelihood ratio falls to this."""
    two_sample: bool = False
    llr: float = 0.0
    errors: int = 0
    requests: int = 0
    baseline_errors: int = 0
    baseline_requests: int = 0
    updates: int = 0
    decision: Decision = "continue"


def wald_bounds(alpha: float, beta: float) -> tuple[float, float]:
    """Wald's (upper, lower) log-likelihood-ratio bounds."""
    _check_error_rates(alpha, beta)
    return math.log((1.0 - beta) / alpha), math.log(beta / (1.0 - alpha))


def _check_error_rates(alpha: float, beta: float) -> None:
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0 and alpha + beta < 1.0):
        raise ValueError("alpha and beta must lie in (0, 1) with alpha + beta < 1")


def _check_rates(p0: float, p1: float) -> None:
    if not 0.0 < p0 < p1 < 1.0:
        raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")


def _steps(p0: float, p1: float) -> tuple[float, float]:
    """LLR added by one error and by one good request."""
    return math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))


def sprt_start(
    p0: float,
    p1: float,
    alpha: float = 0.01,
    beta: float = 0.05,
    *,
    calibrated: bool = False,
) -> SprtState:
    """A one-sample test of H0: rate = p0 against H1: rate = p1 (p0 < p1)."""
    _check_rates(p0, p1)
    upper, lower = calibrated_bounds(p0, p1, alpha, beta) if calibrated else wald_bounds(alpha, beta)
    return SprtState(p0=p0, p1=p1, upper=upper, lower=lower)


def two_sample_start(max_ratio: float, alpha: float = 0.01, beta: float = 0.05) -> SprtState:
    """A canary-versus-baseline test of rate ratio 1 against ``max_ratio`` (> 1)."""
    if not max_ratio > 1.0:
        raise ValueError(f"max_ratio must exceed 1, got {max_ratio}")
    upper, lower = wald_bounds(alpha, beta)
    return SprtState(p0=1.0, p1=max_ratio, upper=upper, lower=lower, two_sample=True)


def _check_counts(errors: int, requests: int) -> None:
    if errors < 0 or requests < 0 or errors > requests:
        raise ValueError(f"need 0 <= errors <= requests, got {errors} of {requests}")


def _decide(state: SprtState, llr: float) -> Decision:
    if llr >= state.upper:
        return "accept_h1"
    if llr <= state.lower:
        return "accept_h0"
    return "continue"


def sprt_update(state: SprtState, errors: int, requests: int) -> SprtState:
    """Add one measurement (errors out of requests) to a one-sample test.

    The bounds are checked once per measurement, at its end.
    """
    if state.two_sample:
        raise ValueError("a two-sample test needs baseline counts: use two_sample_update")
    _check_counts(errors, requests)
    if state.decision != "continue":
        return state
    up, down = _steps(state.p0, state.p1)
    llr = state.llr + errors * up + (requests - errors) * down
    return replace(
        state,
        llr=llr,
        errors=state.errors + errors,
        requests=state.requests + requests,
        updates=state.updates + 1,
        decision=_decide(state, llr),
    )


def two_sample_update(
    state: SprtState,
    canary_errors: int,
    canary_requests: int,
    baseline_errors: int,
    baseline_requests: int,
) -> SprtState:
    """Add one measurement of both arms to a two-sample test."""
    if not state.two_sample:
        raise ValueError("a one-sample test takes only canary counts: use sprt_update")
    _check_counts(canary_errors, canary_requests)
    _check_counts(baseline_errors, baseline_requests)
    if state.decision != "continue":
        return state
    llr = state.llr
    if canary_requests > 0 and baseline_requests > 0:
        q0 = canary_requests / (canary_requests + baseline_requests)
        q1 = canary_requests * state.p1 / (canary_requests * state.p1 + baseline_requests)
        llr += canary_errors * math.log(q1 / q0) + baseline_errors * math.log((1.0 - q1) / (1.0 - q0))
    return replace(
        state,
        llr=llr,
        errors=state.errors + canary_errors,
        requests=state.requests + canary_requests,
        baseline_errors=state.baseline_errors + baseline_errors,
        baseline_requests=state.baseline_requests + baseline_requests,
        updates=state.updates + 1,
        decision=_decide(state, llr),
    )


def _quiet_steps(lo_e: int, top: int, n: int, up: float, down: float, upper: float, lower: float) -> int:
    """How many requests from step n on cannot change which error counts are undecided.

    Over such a stretch the lowest count ``lo_e`` stays above the lower
    bound and a step to ``top + 1`` errors still reaches the upper one. The
    estimate from the closed form is confirmed with the very comparison the
    step-by-step programme makes, so both agree exactly.
    """
    def llr(e: float, at: float) -> float:
        return e * up + (at - e) * down

    k = min(
        math.floor(lo_e + (lower - lo_e * up) / down) - n,
        math.floor(top + 1 + (upper - (top + 1) * up) / down) - n,
    ) - 1
    while k > 1 and not (llr(lo_e, n + k) > lower and llr(top + 1, n + k) >= upper):
        k //= 2
    return k if k > 1 else 0


def operating_characteristic(
    p0: float, p1: float, upper: float, lower: float, rate: float, *, tol: float = 1e-9
) -> tuple[float, float]:
    """Exact (P(accept H1), P(accept H0)) of the one-sample test, checked after every request.

    The true error rate is ``rate``. After n requests with e errors the ratio
    is ``e*u + (n-e)*d``, so the undecided paths at step n occupy a short
    contiguous run of e; the programme carries their probabilities forward
    until less than ``tol`` is left undecided (that remainder is dropped).
    Between the (rare) requests at which that run changes, k requests are
    taken at once: a binomial number of errors, those that would climb past
    the run's top being absorbed at the upper bound.
    """
    _check_rates(p0, p1)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"the true error rate must lie in [0, 1), got {rate}")
    up, down = _steps(p0, p1)
    lo_e = 0
    cur = [1.0]
    accept_h1 = accept_h0 = 0.0
    n = 0
    remaining = 1.0
    keep = 1.0 - rate
    while remaining > tol and cur:
        k = _quiet_steps(lo_e, lo_e + len(cur) - 1, n, up, down, upper, lower)
        if k:
            pmf = [keep**k]
            for j in range(len(cur) - 1):
                pmf.append(pmf[-1] * (k - j) / (j + 1) * rate / keep)
            nxt = [0.0] * len(cur)
            for i, pr in enumerate(cur):
                for j in range(len(cur) - i):
                    nxt[i + j] += pr * pmf[j]
            cur, n = nxt, n + k
            accept_h1 += remaining - sum(cur)
            remaining = sum(cur)
            continue
        n += 1
        nxt = [a * keep + b * rate for a, b in zip(cur + [0.0], [0.0] + cur)]
        first, last = 0, len(nxt)
        while first < last and (lo_e + first) * up + (n - lo_e - first) * down <= lower:
            accept_h0 += nxt[first]
            first += 1
        while last > first and (lo_e + last - 1) * up + (n - lo_e - last + 1) * down >= upper:
            accept_h1 += nxt[last - 1]
            last -= 1
        if first or last < len(nxt):
            cur = nxt[first:last]
            lo_e += first
            remaining = sum(cur)
        else:
            cur = nxt
    return accept_h1, accept_h0


def _least_bound(rate_at: Callable[[float], float], start: float, step: float, target: float) -> float:
    """The bound nearest zero whose error rate ``rate_at(bound)`` stays within ``target``.

    ``start`` (Wald's bound) is usually within, and the exact bound lies
    less than one ``step`` (the largest move of the ratio, hence the
    largest overshoot) nearer zero. The rate falls roughly exponentially as
    the bound moves out, so a secant on the log-rate, kept inside a bracket
    [too near: rate above target, far enough: within] and falling back to
    bisection, settles in a few evaluations, each an exact programme. The
    rate is a step function of the bound, so it stops once within 1% below
    target or when the bracket is negligibly narrow.
    """
    good = start
    while rate_at(good) > target:
        good += step
    bad = good - step if (good - step) * good > 0 else math.copysign(1e-9, good)
    f_good = math.log(max(rate_at(good), 1e-300) / target)
    f_bad = math.log(max(rate_at(bad), 1e-300) / target)
    for _ in range(30):
        if f_good >= -0.01 or abs(good - bad) < 1e-9 or f_bad <= 0:
            break
        trial = good - f_good * (good - bad) / (f_good - f_bad)
        inside = min(good, bad) < trial < max(good, bad)
        if not inside or abs(trial - good) < 1e-9 or abs(trial - bad) < 1e-9:
            trial = (good + bad) / 2
        f_trial = math.log(max(rate_at(trial), 1e-300) / target)
        if f_trial <= 0:
            good, f_good = trial, f_trial
        else:
            bad, f_bad = trial, f_trial
    return bad if f_bad <= 0 else good


@lru_cache(maxsize=64)
def calibrated_bounds(p0: float, p1: float, alpha: float, beta: float) -> tuple[float, float]:
    """The least (upper, |lower|) bounds whose exact error rates stay within alpha and beta.

    Starts from Wald's bounds; overshoot is below one step, so each exact
    bound lies within one step of Wald's. The two bounds barely interact;
    the upper is settled again if settling the lower moved the false-alarm
    rate above alpha. Takes from milliseconds to a few tenths of a second
    (longest when p0 and p1 are close), hence the cache.
    """
    _check_rates(p0, p1)
    upper, lower = wald_bounds(alpha, beta)
    up, down = _steps(p0, p1)
    for _ in range(3):
        upper = _least_bound(
            lambda u: operating_characteristic(p0, p1, u, lower, p0)[0], upper, up, alpha
        )
        lower = _least_bound(
            lambda low: operating_characteristic(p0, p1, upper, low, p1)[1], lower, down, beta
        )
        if operating_characteristic(p0, p1, upper, lower, p0)[0] <= alpha:
            break
    return upper, lower


def indifference_rate(p0: float, p1: float) -> float:
    """The error rate at which the one-sample test's evidence does not drift either way."""
    up, down = _steps(p0, p1)
    return -down / (up - down)
