"""Mann–Whitney judgement checked against SciPy and brute force, then Kayenta's rules.

SciPy is the oracle for U and p (asymptotic with tie and continuity
correction, exact, and SciPy's own choice between them); a brute-force
median of all pairwise differences is the oracle for the Hodges–Lehmann
estimate; the interval is checked through its duality with the test: just
outside it SciPy's test rejects at 1 - confidence, just inside it does not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from core.judges.mann_whitney import Classification, classify, hodges_lehmann, mann_whitney_u, score


def random_pairs(seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        m, n = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        if i % 3 == 0:  # heavy ties, as error counts have
            x, y = rng.integers(0, 4, m).astype(float), rng.integers(0, 5, n).astype(float)
        else:
            x, y = rng.normal(0, 1, m), rng.lognormal(0.2, 0.8, n)
        out.append((x, y))
    return out


@pytest.mark.parametrize("method", ["auto", "asymptotic", "exact"])
def test_u_and_p_value_agree_with_scipy(method: str) -> None:
    for x, y in random_pairs(seed={"auto": 1, "asymptotic": 2, "exact": 3}[method], count=150):
        if method == "exact" and len(x) * len(y) > 400:
            x, y = x[:12], y[:12]
        expected = mannwhitneyu(x, y, method=method)
        u, p = mann_whitney_u(list(x), list(y), method=method)
        assert u == pytest.approx(float(expected.statistic), rel=1e-9, abs=1e-12)
        assert p == pytest.approx(float(expected.pvalue), rel=1e-6, abs=1e-12)


def test_continuity_correction_can_be_turned_off_like_scipy() -> None:
    for x, y in random_pairs(seed=4, count=40):
        expected = mannwhitneyu(x, y, method="asymptotic", use_continuity=False)
        _, p = mann_whitney_u(list(x), list(y), method="asymptotic", continuity=False)
        assert p == pytest.approx(float(expected.pvalue), rel=1e-6, abs=1e-12)


def test_all_values_tied_gives_p_one() -> None:
    assert mann_whitney_u([2.0] * 6, [2.0] * 9) == (27.0, 1.0)


def test_hodges_lehmann_estimate_is_the_median_of_pairwise_differences() -> None:
    for x, y in random_pairs(seed=5, count=120):
        estimate, low, high = hodges_lehmann(list(x), list(y))
        assert estimate == pytest.approx(float(np.median(np.subtract.outer(x, y))), abs=1e-12)
        assert low <= estimate <= high


def shifted_p(x: np.ndarray, y: np.ndarray, delta: float, method: str) -> float:
    return float(mannwhitneyu(x - delta, y, method=method).pvalue)


@pytest.mark.parametrize(("sizes", "method"), [((6, 8), "exact"), ((25, 31), "asymptotic"), ((5, 5), "exact")])
def test_confidence_interval_is_the_set_of_shifts_the_test_does_not_reject(
    sizes: tuple[int, int], method: str
) -> None:
    rng = np.random.default_rng(sum(sizes))
    for _ in range(25):
        x, y = rng.normal(0.5, 1, sizes[0]), rng.normal(0, 1, sizes[1])
        _, low, high = hodges_lehmann(list(x), list(y), confidence=0.9, method=method)
        gaps = np.diff(np.unique(np.subtract.outer(x, y)))
        eps = float(gaps.min()) / 4
        assert shifted_p(x, y, low - eps, method) <= 0.1 < shifted_p(x, y, low + eps, method)
        assert shifted_p(x, y, high + eps, method) <= 0.1 < shifted_p(x, y, high - eps, method)


def test_interval_is_unbounded_when_samples_are_too_small_for_the_confidence() -> None:
    # With 3 a side the most extreme arrangement has probability 2/20 > 2%.
    _, low, high = hodges_lehmann([10.0, 11, 12], [1.0, 2, 3], confidence=0.98)
    assert (low, high) == (-math.inf, math.inf)


# -- classification -------------------------------------------------------------

BASE = [100.0, 102, 98, 101, 99, 100.5, 97, 103, 99.5, 100.2]


def test_clear_increase_is_high_and_its_mirror_is_low() -> None:
    up = classify([v * 1.5 for v in BASE], BASE, direction="either")
    down = classify([v * 0.5 for v in BASE], BASE, direction="either")
    assert (up.result, down.result) == ("High", "Low")
    assert up.ratio == pytest.approx(1.5)
    assert up.ci_low > 0.25 * abs(up.hl_estimate)


def test_direction_limits_what_is_flagged() -> None:
    lower = [v * 0.5 for v in BASE]
    assert classify(lower, BASE, direction="increase").result == "Pass"
    assert classify(lower, BASE, direction="decrease").result == "Low"
    assert classify([v * 2 for v in BASE], BASE, direction="decrease").result == "Pass"


def test_five_points_a_side_suffice_and_four_are_no_data() -> None:
    assert classify([50.0, 51, 52, 53, 54], [1.0, 2, 3, 4, 5], direction="increase").result == "High"
    nodata = classify([50.0, 51, 52, 53], [1.0, 2, 3, 4, 5], direction="increase")
    assert nodata.result == "NoData" and "too few samples" in nodata.reason


def test_nan_values_are_dropped_before_counting() -> None:
    result = classify([50.0, 51, 52, 53, math.nan], [1.0, 2, 3, 4, 5], direction="increase")
    assert result.result == "NoData"


def test_allowed_increase_lets_a_small_significant_shift_pass() -> None:
    canary = [v * 1.05 for v in BASE]
    assert classify(canary, BASE, direction="increase").result == "High"
    assert classify(canary, BASE, direction="increase", allowed_increase=1.1).result == "Pass"


def test_allowed_decrease_lets_a_small_significant_drop_pass() -> None:
    canary = [v * 0.95 for v in BASE]
    assert classify(canary, BASE, direction="decrease").result == "Low"
    assert classify(canary, BASE, direction="decrease", allowed_decrease=0.9).result == "Pass"


def test_noise_without_a_shift_passes() -> None:
    rng = np.random.default_rng(11)
    results = [classify(list(rng.normal(100, 5, 30)), list(rng.normal(100, 5, 30))).result for _ in range(50)]
    assert results.count("Pass") >= 48


def test_identical_samples_pass_with_ratio_one() -> None:
    result = classify(BASE[::-1], BASE)
    assert (result.result, result.ratio) == ("Pass", 1.0)


def test_zero_baseline_mean_gives_nan_ratio_but_can_still_be_high() -> None:
    result = classify([0.02, 0.01, 0.03, 0.02, 0.01, 0.02], [0.0] * 6, direction="increase")
    assert result.result == "High" and math.isnan(result.ratio)


# -- scoring ----------------------------------------------------------------------


def label(result: str, critical: bool = False) -> Classification:
    return Classification(result, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0, critical)  # type: ignore[arg-type]


def test_group_score_is_percent_passing_and_summary_is_weighted() -> None:
    groups = {
        "latency": [label("Pass"), label("High")],  # 50
        "errors": [label("Pass"), label("Pass"), label("NoData")],  # 100, NoData excluded
    }
    result = score(groups, {"latency": 40, "errors": 60}, pass_threshold=90, marginal_threshold=75)
    assert result.group_scores == {"latency": 50.0, "errors": 100.0}
    assert result.score == pytest.approx(80.0)
    assert result.result == "marginal"


def test_unweighted_groups_share_the_remaining_weight() -> None:
    groups = {"a": [label("High")], "b": [label("Pass")], "c": [label("Pass")]}
    result = score(groups, {"a": 50}, pass_threshold=50, marginal_threshold=25)
    assert result.score == pytest.approx(50.0)  # a: 0 * 50%, b and c: 100 * 25% each
    assert result.result == "pass"  # thresholds are inclusive


def test_group_with_only_no_data_does_not_count_against_the_canary() -> None:
    result = score({"x": [label("NoData")]}, {"x": 100}, pass_threshold=95, marginal_threshold=75)
    assert (result.score, result.result) == (100.0, "pass")


def test_failing_critical_metric_fails_everything() -> None:
    groups = {"a": [label("Pass")] * 9 + [label("Low", critical=True)]}
    result = score(groups, {"a": 100}, pass_threshold=50, marginal_threshold=25)
    assert (result.score, result.result, result.critical_failure) == (0.0, "fail", True)
    groups = {"a": [label("Pass")] * 9 + [label("Low", critical=False)]}
    assert score(groups, {"a": 100}, pass_threshold=50, marginal_threshold=25).score == pytest.approx(90.0)


def test_below_marginal_fails_and_inverted_thresholds_are_rejected() -> None:
    groups = {"a": [label("High"), label("High"), label("Pass")]}
    assert score(groups, {}, pass_threshold=90, marginal_threshold=50).result == "fail"
    with pytest.raises(ValueError):
        score(groups, {}, pass_threshold=50, marginal_threshold=90)
