"""The SPRT's arithmetic, and its error rates measured by simulation.

The simulation is an independent oracle: it draws per-request Bernoulli
streams (as geometric gaps between errors, so a stream costs a handful of
draws) and applies the test's rule after every request, without using the
module's dynamic programme. With the calibrated bounds the measured
false-alarm and miss rates must land within 20% of the nominal alpha and
beta; with Wald's bounds they must not exceed them (Wald is conservative).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from core.judges.sequential import (
    SprtState,
    calibrated_bounds,
    indifference_rate,
    operating_characteristic,
    sprt_start,
    sprt_update,
    two_sample_start,
    two_sample_update,
    wald_bounds,
)


def simulate(p0: float, p1: float, upper: float, lower: float, rate: float, streams: int, seed: int) -> tuple[int, int]:
    """(streams accepting H1, streams accepting H0), checking after every request."""
    rng = random.Random(seed)
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    log_keep = math.log(1 - rate)
    h1 = h0 = 0
    for _ in range(streams):
        errors = requests = 0
        while True:
            llr = errors * up + (requests - errors) * down
            gap = int(math.log(1.0 - rng.random()) / log_keep)  # good requests before the next error
            to_lower = max(1, math.ceil((lower - llr) / down - 1e-12))
            if gap >= to_lower:
                h0 += 1
                break
            errors, requests = errors + 1, requests + gap + 1
            if errors * up + (requests - errors) * down >= upper:
                h1 += 1
                break
    return h1, h0


def test_llr_is_the_sum_of_per_request_log_likelihood_ratios() -> None:
    state = sprt_start(0.01, 0.05, 0.01, 0.05)
    state = sprt_update(state, 2, 40)
    state = sprt_update(state, 0, 10)
    expected = 2 * math.log(5) + 48 * math.log(0.95 / 0.99)
    assert state.llr == pytest.approx(expected)
    assert (state.errors, state.requests, state.updates, state.decision) == (2, 50, 2, "continue")


def test_wald_bounds() -> None:
    assert wald_bounds(0.01, 0.05) == pytest.approx((math.log(0.95 / 0.01), math.log(0.05 / 0.99)))
    with pytest.raises(ValueError):
        wald_bounds(0.6, 0.5)


def test_decisions_both_ways_and_they_stick() -> None:
    bad = sprt_update(sprt_start(0.001, 0.01), 5, 100)
    assert bad.decision == "accept_h1"
    assert sprt_update(bad, 0, 100_000) == bad
    good = sprt_update(sprt_start(0.001, 0.01), 0, 1000)
    assert good.decision == "accept_h0"
    assert sprt_update(good, 50, 100) == good


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        sprt_start(0.01, 0.005)
    with pytest.raises(ValueError):
        sprt_update(sprt_start(0.001, 0.01), 3, 2)
    with pytest.raises(ValueError):
        two_sample_update(sprt_start(0.001, 0.01), 0, 1, 0, 1)
    with pytest.raises(ValueError):
        sprt_update(two_sample_start(3.0), 0, 1)
    with pytest.raises(ValueError):
        two_sample_start(1.0)


def test_exact_operating_characteristic_matches_simulation() -> None:
    upper, lower = wald_bounds(0.05, 0.1)
    exact_h1, exact_h0 = operating_characteristic(0.01, 0.05, upper, lower, 0.03)
    assert exact_h1 + exact_h0 == pytest.approx(1.0, abs=1e-8)
    h1, _ = simulate(0.01, 0.05, upper, lower, 0.03, 4000, seed=5)
    assert abs(h1 / 4000 - exact_h1) < 4 * math.sqrt(exact_h1 * (1 - exact_h1) / 4000)


@pytest.mark.parametrize(
    ("p0", "p1", "alpha", "beta", "streams"),
    [
        (0.01, 0.05, 0.05, 0.10, 4000),
        (0.001, 0.01, 0.01, 0.05, 30000),  # error rates as production sees them
    ],
)
def test_calibrated_error_rates_are_within_20_percent_of_nominal(
    p0: float, p1: float, alpha: float, beta: float, streams: int
) -> None:
    upper, lower = calibrated_bounds(p0, p1, alpha, beta)
    false_alarms, _ = simulate(p0, p1, upper, lower, p0, streams, seed=1)
    _, misses = simulate(p0, p1, upper, lower, p1, 4000, seed=2)
    assert false_alarms / streams == pytest.approx(alpha, rel=0.2)
    assert misses / 4000 == pytest.approx(beta, rel=0.2)


def test_wald_bounds_are_conservative_for_rare_errors() -> None:
    upper, lower = wald_bounds(0.01, 0.05)
    false_alarms, _ = simulate(0.001, 0.01, upper, lower, 0.001, 30000, seed=3)
    _, misses = simulate(0.001, 0.01, upper, lower, 0.01, 4000, seed=4)
    assert false_alarms / 30000 < 0.01 * 0.8  # overshoot of log(10) per error: far below nominal
    assert misses / 4000 <= 0.05 * 1.2


def test_calibrated_bounds_are_tighter_than_walds() -> None:
    upper, lower = calibrated_bounds(0.001, 0.01, 0.01, 0.05)
    wald_upper, wald_lower = wald_bounds(0.01, 0.05)
    assert upper < wald_upper and wald_lower <= lower < 0
    assert sprt_start(0.001, 0.01, 0.01, 0.05, calibrated=True).upper == upper


def test_indifference_rate_is_where_evidence_does_not_drift() -> None:
    rate = indifference_rate(0.001, 0.01)
    assert 0.001 < rate < 0.01
    drift = rate * math.log(10) + (1 - rate) * math.log(0.99 / 0.999)
    assert drift == pytest.approx(0.0, abs=1e-15)


# -- canary against baseline -------------------------------------------------------


def test_two_sample_llr_is_the_conditional_binomial_likelihood_ratio() -> None:
    state = two_sample_update(two_sample_start(4.0), 3, 10, 5, 190)
    q0, q1 = 10 / 200, 40 / 230
    expected = 3 * math.log(q1 / q0) + 5 * math.log((1 - q1) / (1 - q0))
    assert state.llr == pytest.approx(expected)
    assert (state.errors, state.baseline_errors, state.baseline_requests) == (3, 5, 190)
    idle = two_sample_update(state, 0, 0, 2, 190)  # no canary traffic: no evidence either way
    assert idle.llr == state.llr and idle.updates == 2


def run_two_sample(ratio: float, streams: int, seed: int) -> tuple[int, int]:
    """Canary 10 req/s, baseline 190 req/s at 1%, measured every 5 s; test ratio 1 vs 3."""
    rng = np.random.default_rng(seed)
    canary = rng.poisson(0.5 * ratio, size=(streams, 180)).tolist()
    baseline = rng.poisson(9.5, size=(streams, 180)).tolist()
    h1 = h0 = 0
    for c_row, b_row in zip(canary, baseline):
        state: SprtState = two_sample_start(3.0, alpha=0.05, beta=0.1)
        for c, b in zip(c_row, b_row):
            state = two_sample_update(state, c, 50, b, 950)
            if state.decision != "continue":
                break
        h1 += state.decision == "accept_h1"
        h0 += state.decision == "accept_h0"
    assert h1 + h0 == streams  # every stream decided within 15 minutes
    return h1, h0


def test_two_sample_error_rates_stay_within_nominal() -> None:
    false_alarms, _ = run_two_sample(1.0, 2000, seed=6)
    _, misses = run_two_sample(3.0, 2000, seed=7)
    assert false_alarms / 2000 <= 0.05 * 1.2
    assert misses / 2000 <= 0.10 * 1.2
    assert false_alarms / 2000 >= 0.05 * 0.4  # not vacuous: the test works near its nominal level


def reference_operating_characteristic(
    p0: float, p1: float, upper: float, lower: float, rate: float
) -> tuple[float, float]:
    """The plain request-by-request programme over (errors -> probability), no shortcuts."""
    up, down = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    paths, h1, h0, n = {0: 1.0}, 0.0, 0.0, 0
    while sum(paths.values()) > 1e-12:
        n += 1
        nxt: dict[int, float] = {}
        for e, pr in paths.items():
            for e2, q in ((e + 1, pr * rate), (e, pr * (1 - rate))):
                llr = e2 * up + (n - e2) * down
                if llr >= upper:
                    h1 += q
                elif llr <= lower:
                    h0 += q
                else:
                    nxt[e2] = nxt.get(e2, 0.0) + q
        paths = nxt
    return h1, h0


@pytest.mark.parametrize(("p0", "p1"), [(0.001, 0.01), (0.3, 0.4), (0.01, 0.05)])
def test_operating_characteristic_equals_the_plain_programme(p0: float, p1: float) -> None:
    upper, lower = wald_bounds(0.01, 0.05)
    for rate in (p0, p1, (p0 + p1) / 2):
        fast = operating_characteristic(p0, p1, upper, lower, rate, tol=1e-12)
        plain = reference_operating_characteristic(p0, p1, upper, lower, rate)
        assert fast == pytest.approx(plain, abs=1e-10)
