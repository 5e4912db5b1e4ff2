"""The two-sample error test's weighted mixture (issue 15, `core.judges.mixture`): its value
is the weighted mean of the alternatives' likelihood ratios, it moves the right way with the
counts, its false-alarm rate stays within alpha over many looks, and its prior (most mass on
the failing ratio) catches a canary near that ratio sooner than even weights would."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from core.judges.mixture import RATIO_SPREAD, RATIO_WEIGHTS, ratio_start, ratio_update, tail_start


def _binomial_lr(k: int, x: int, q1: float, q0: float) -> float:
    """P(k of x | q1) / P(k of x | q0), from the two probability mass functions."""
    pmf = lambda q: math.comb(x, k) * q**k * (1 - q) ** (x - k)  # noqa: E731
    return pmf(q1) / pmf(q0)


def test_one_look_has_the_weighted_mean_of_the_alternatives_likelihood_ratios() -> None:
    # 3 canary errors of 100 requests, 2 baseline errors of 1,900: given the 5 errors, the
    # canary's share is Binomial(5, q) with q0 = 100/2,000 under r = 1.
    state = ratio_update(ratio_start(2.0, 0.005), 3, 100, 2, 1900)
    expected = sum(
        w * _binomial_lr(3, 5, 100 * r / (100 * r + 1900), 0.05)
        for w, r in zip(RATIO_WEIGHTS, (2.0 * k for k in RATIO_SPREAD))
    )
    assert state.llr == pytest.approx(math.log(expected), rel=1e-12)
    assert state.llr == pytest.approx(3.96072635622, abs=1e-9)
    assert not state.crossed and state.bound == pytest.approx(math.log(200))
    # Even weights give the plain mean, which is what the tail test still uses.
    even = replace(state, weights=())
    assert even.llr == pytest.approx(math.log(sum(math.exp(v) for v in state.llrs) / 6), rel=1e-12)
    assert tail_start(0.01, 0.01).weights == ()


def test_the_gate_crosses_on_the_weighted_mixture_not_the_even_one() -> None:
    # 14 canary errors of 1,000 against 80 of 19,000 (about 3.3x): the weighted mixture is past
    # log(1/0.005) = 5.30, the even mean of the same likelihood ratios is not.
    state = ratio_update(ratio_start(2.0, 0.005), 14, 1000, 80, 19000)
    assert state.llr >= state.bound > replace(state, weights=()).llr
    assert state.crossed and state.decision == "accept_h1"


def test_the_prior_is_a_distribution_with_most_mass_on_the_failing_ratio() -> None:
    assert sum(RATIO_WEIGHTS) == pytest.approx(1.0)
    assert len(RATIO_WEIGHTS) == len(RATIO_SPREAD) and min(RATIO_WEIGHTS) > 0
    assert list(RATIO_WEIGHTS) == sorted(RATIO_WEIGHTS, reverse=True)
    state = ratio_start(2.0, 0.01)
    assert state.alternatives[0] == 2.0 and state.weights[0] == max(state.weights)
    assert state.llr == 0.0  # before any data the mixture is 1


def test_evidence_grows_with_the_canary_errors_and_shrinks_with_the_baseline_errors() -> None:
    start = ratio_start(2.0, 0.005)
    by_canary = [ratio_update(start, c, 100, 4, 1900).llr for c in range(8)]
    assert by_canary == sorted(by_canary) and by_canary[0] < 0 < by_canary[-1]
    by_baseline = [ratio_update(start, 3, 100, b, 1900).llr for b in range(0, 40, 4)]
    assert by_baseline == sorted(by_baseline, reverse=True)
    # A look without errors on either side carries no evidence.
    assert ratio_update(start, 0, 100, 0, 1900).llr == 0.0


def _crossings(rate_c: float, rate_b: float, trials: int, looks: int, seed: int,
               weights: tuple[float, ...] | None = None) -> list[int | None]:
    """Per trial, the look at which the test (alpha 1%) crossed, or None; each look has its
    own traffic split (the stage's weight changes) and the baseline's rate drifts 3x."""
    rng = np.random.default_rng(seed)
    out: list[int | None] = []
    for _ in range(trials):
        state = ratio_start(2.0, 0.01)
        if weights is not None:
            state = replace(state, weights=weights)
        at = None
        for look in range(looks):
            n_c = int(rng.choice((50, 100, 500)))
            n_b = 2000 - n_c
            drift = 1.0 + 2.0 * (look % 20) / 19
            state = ratio_update(state, int(rng.binomial(n_c, rate_c * drift)), n_c,
                                 int(rng.binomial(n_b, rate_b * drift)), n_b)
            if state.crossed:
                at = look
                break
        out.append(at)
    return out


def test_a_healthy_canary_crosses_at_most_alpha_over_many_looks() -> None:
    # 2,000 healthy canaries looked at 120 times each at alpha 1%: Ville's bound allows 20 in
    # expectation; a per-look test at 1% would cross in most of them.
    crossed = sum(at is not None for at in _crossings(0.002, 0.002, trials=2000, looks=120, seed=15))
    assert crossed <= 25  # 6 with this seed; weights summing to 3 instead of 1 give 31
    # A canary erring less than its baseline is inside the null too.
    assert sum(at is not None for at in _crossings(0.001, 0.002, trials=500, looks=120, seed=16)) <= 5


def test_more_prior_mass_on_the_failing_ratio_catches_a_canary_near_it_sooner() -> None:
    weighted = _crossings(0.005, 0.002, trials=200, looks=120, seed=17)
    even = _crossings(0.005, 0.002, trials=200, looks=120, seed=17, weights=(1 / 6,) * 6)
    assert all(at is not None for at in weighted)
    assert sum(at for at in weighted if at is not None) < sum(120 if at is None else at for at in even)
