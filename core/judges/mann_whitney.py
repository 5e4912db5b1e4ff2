"""Canary-versus-baseline judgement in the manner of Kayenta's NetflixACAJudge.

A fixed threshold cannot tell "the canary is worse" from "the whole fleet is
having a bad minute"; comparing the canary's samples with the baseline's,
taken over the same window, can. Kayenta does it with a Mann–Whitney U test
and a Hodges–Lehmann estimate of the shift, then scores groups of metrics.

What this module implements, precisely:

* **U and p-value** as ``scipy.stats.mannwhitneyu(canary, baseline)``: U is
  the canary's rank sum (average ranks for ties) minus ``m(m+1)/2``; the
  two-sided p-value is exact (the null distribution of U counted with
  Gaussian binomial coefficients) under ``method="auto"`` when the samples
  have no ties and one of them has at most 8 values, otherwise the normal
  approximation with tie correction and continuity correction.
* **Hodges–Lehmann shift**: the median of the m·n differences
  ``canary_i - baseline_j``, and the distribution-free confidence interval
  ``[D(k+1), D(mn-k)]`` of the ordered differences, k the largest value with
  ``P(U <= k) <= (1-confidence)/2`` (exact, or from the same normal
  approximation: ``k = floor(mn/2 - 1/2 - z*sigma)``). Kayenta solves for
  the interval ends by root-finding on R's asymptotic statistic; with
  continuity correction the two agree up to the step between adjacent
  differences. When k < 0 the samples are too small for the confidence and
  the interval is unbounded (so never significant).
* **Classification** (Kayenta's rules): fewer than ``min_samples`` values on
  either side → NoData; identical samples, or a single value throughout →
  Pass (ratio 1). Otherwise, with tolerance band ``±0.25·|HL|`` and effect
  size ``ratio = mean(canary) / mean(baseline)`` (NaN when either mean is
  0): **High** when the direction allows increases, the whole interval lies
  above the band (``ci_low > 0.25·|HL|``) and ``ratio >= allowed_increase``
  (skipped when NaN); **Low** likewise with ``ci_high < -0.25·|HL|`` and
  ``ratio <= allowed_decrease``; else **Pass**.
* **Scoring** (Kayenta's WeightedSumScorer): a group's score is the percent
  of its judged metrics (Pass, High, Low) that pass; a group with only
  NoData scores 100. Weights are percentages; groups without a weight share
  what is left of 100 equally. The summary is ``Σ score·weight/100``; any
  critical metric classified High or Low makes it 0. Result: ``pass`` at or
  above ``pass_threshold``, ``marginal`` at or above ``marginal_threshold``,
  else ``fail``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

Direction = Literal["increase", "decrease", "either"]
Result = Literal["Pass", "High", "Low", "NoData"]
Method = Literal["auto", "exact", "asymptotic"]

TOLERANCE = 0.25
"""Kayenta's tolerance band: the interval must clear ±0.25·|HL estimate|."""


@dataclass(frozen=True, slots=True)
class Classification:
    result: Result
    p_value: float
    hl_estimate: float
    ci_low: float
    ci_high: float
    u_statistic: float
    ratio: float
    critical: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScoreResult:
    score: float
    result: Literal["pass", "marginal", "fail"]
    group_scores: dict[str, float] = field(default_factory=dict)
    critical_failure: bool = False


def _clean(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if not math.isnan(float(v))]


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) and the sizes of the tie groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _null_counts(m: int, n: int, top: int) -> list[int]:
    """How many of the C(m+n, m) arrangements give U = 0..top (no ties).

    The generating function of U is the Gaussian binomial coefficient
    ``∏_{i=1..m} (1 - q^(n+i)) / (1 - q^i)``, taken as a power series cut
    at degree ``top``.
    """
    m, n = min(m, n), max(m, n)
    poly = [1] + [0] * top
    for i in range(1, m + 1):
        for k in range(top, n + i - 1, -1):
            poly[k] -= poly[k - n - i]
        for k in range(i, top + 1):
            poly[k] += poly[k - i]
    return poly


def _sigma(m: int, n: int, ties: Sequence[int]) -> float:
    total = m + n
    tie_term = sum(t**3 - t for t in ties)
    return math.sqrt(m * n / 12 * ((total + 1) - tie_term / (total * (total - 1))))


def _use_exact(method: Method, m: int, n: int, ties: Sequence[int]) -> bool:
    if method == "auto":
        return not (m > 8 and n > 8) and all(t == 1 for t in ties)
    return method == "exact"


def mann_whitney_u(
    canary: Sequence[float],
    baseline: Sequence[float],
    *,
    method: Method = "auto",
    continuity: bool = True,
) -> tuple[float, float]:
    """(U of the canary, two-sided p-value), as ``scipy.stats.mannwhitneyu``."""
    m, n = len(canary), len(baseline)
    if m == 0 or n == 0:
        raise ValueError("both samples need at least one value")
    ranks, ties = _ranks(list(canary) + list(baseline))
    u1 = sum(ranks[:m]) - m * (m + 1) / 2
    u_max = max(u1, m * n - u1)
    if _use_exact(method, m, n, ties):
        k = m * n - int(u_max)  # P(U >= int(u_max)) = P(U <= mn - int(u_max)) by symmetry
        counts = _null_counts(m, n, k)
        p = 2 * sum(counts) / math.comb(m + n, m)
    else:
        sigma = _sigma(m, n, ties)
        numerator = u_max - m * n / 2 - (0.5 if continuity else 0.0)
        if sigma == 0:
            p = 1.0 if numerator <= 0 else 0.0
        else:
            p = 2 * 0.5 * math.erfc(numerator / sigma / math.sqrt(2))
    return u1, min(max(p, 0.0), 1.0)


def _critical_rank(m: int, n: int, ties: Sequence[int], confidence: float, exact: bool) -> int:
    """The largest k with P(U <= k) <= (1 - confidence)/2; -1 if none."""
    half = (1.0 - confidence) / 2
    if exact:
        counts = _null_counts(m, n, m * n // 2)
        total = math.comb(m + n, m)
        running, k = 0, -1
        for u, c in enumerate(counts):
            running += c
            if running / total > half:
                break
            k = u
        return k
    z = NormalDist().inv_cdf(1.0 - half)
    return math.floor(m * n / 2 - 0.5 - z * _sigma(m, n, ties))


def _weighted_order_stat(pairs: Sequence[tuple[float, int]], k: int) -> float:
    """The k-th smallest (1-based) of values given as (value, multiplicity), sorted."""
    seen = 0
    for value, count in pairs:
        seen += count
        if seen >= k:
            return value
    raise IndexError(k)


def hodges_lehmann(
    canary: Sequence[float],
    baseline: Sequence[float],
    *,
    confidence: float = 0.98,
    method: Method = "auto",
) -> tuple[float, float, float]:
    """(estimate, ci_low, ci_high) of the shift canary − baseline.

    Differences are formed between distinct values with multiplicities, so
    heavily tied samples (error rates, counts) cost little.
    """
    m, n = len(canary), len(baseline)
    if m == 0 or n == 0:
        raise ValueError("both samples need at least one value")
    diffs: Counter[float] = Counter()
    for cv, cc in Counter(canary).items():
        for bv, bc in Counter(baseline).items():
            diffs[cv - bv] += cc * bc
    pairs = sorted(diffs.items())
    total = m * n
    if total % 2:
        estimate = _weighted_order_stat(pairs, (total + 1) // 2)
    else:
        estimate = (_weighted_order_stat(pairs, total // 2) + _weighted_order_stat(pairs, total // 2 + 1)) / 2
    _, ties = _ranks(list(canary) + list(baseline))
    k = _critical_rank(m, n, ties, confidence, _use_exact(method, m, n, ties))
    if k < 0:
        return estimate, -math.inf, math.inf
    return estimate, _weighted_order_stat(pairs, k + 1), _weighted_order_stat(pairs, total - k)


def _mean_ratio(canary: Sequence[float], baseline: Sequence[float]) -> float:
    c, b = sum(canary) / len(canary), sum(baseline) / len(baseline)
    return math.nan if c == 0 or b == 0 else c / b


def classify(
    canary: Sequence[float],
    baseline: Sequence[float],
    *,
    direction: Direction = "either",
    confidence: float = 0.98,
    allowed_increase: float = 1.0,
    allowed_decrease: float = 1.0,
    min_samples: int = 5,
    critical: bool = False,
    method: Method = "auto",
) -> Classification:
    """Kayenta's Pass / High / Low / NoData for one metric (NaNs are dropped first)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    c, b = _clean(canary), _clean(baseline)
    nan = math.nan
    if len(c) < max(min_samples, 1) or len(b) < max(min_samples, 1):
        reason = f"too few samples: {len(c)} canary, {len(b)} baseline, need {min_samples} a side"
        return Classification("NoData", nan, nan, nan, nan, nan, nan, critical, reason)
    if sorted(c) == sorted(b) or len(set(c) | set(b)) == 1:
        u, p = mann_whitney_u(c, b, method=method)
        reason = "canary and baseline data are identical"
        return Classification("Pass", p, 0.0, 0.0, 0.0, u, 1.0, critical, reason)
    u, p = mann_whitney_u(c, b, method=method)
    estimate, low, high = hodges_lehmann(c, b, confidence=confidence, method=method)
    ratio = _mean_ratio(c, b)
    band = TOLERANCE * abs(estimate)
    unknown_effect = math.isnan(ratio)  # Kayenta then skips the effect-size check
    result: Result = "Pass"
    if direction in ("increase", "either") and low > band and (unknown_effect or ratio >= allowed_increase):
        result = "High"
    elif direction in ("decrease", "either") and high < -band and (unknown_effect or ratio <= allowed_decrease):
        result = "Low"
    reason = (
        f"{result}: shift {estimate:+.6g}, {confidence:.0%} interval [{low:.6g}, {high:.6g}], "
        f"ratio {ratio:.4g}, p={p:.3g}"
    )
    return Classification(result, p, estimate, low, high, u, ratio, critical, reason)


def score(
    classifications_by_group: Mapping[str, Sequence[Classification]],
    weights: Mapping[str, float],
    pass_threshold: float,
    marginal_threshold: float,
) -> ScoreResult:
    """Kayenta's weighted group score and its pass / marginal / fail verdict."""
    if marginal_threshold > pass_threshold:
        raise ValueError("the marginal threshold cannot exceed the pass threshold")
    group_scores: dict[str, float] = {}
    critical_failure = False
    for group, items in classifications_by_group.items():
        judged = [c for c in items if c.result != "NoData"]
        passed = sum(c.result == "Pass" for c in judged)
        group_scores[group] = 100.0 * passed / len(judged) if judged else 100.0
        critical_failure |= any(c.critical and c.result in ("High", "Low") for c in items)
    unweighted = [g for g in group_scores if g not in weights]
    spare = max(0.0, 100.0 - sum(weights.get(g, 0.0) for g in group_scores))
    share = spare / len(unweighted) if unweighted else 0.0
    total = sum(s * weights.get(g, share) / 100.0 for g, s in group_scores.items())
    if critical_failure:
        total = 0.0
    result: Literal["pass", "marginal", "fail"] = (
        "pass" if total >= pass_threshold else "marginal" if total >= marginal_threshold else "fail"
    )
    return ScoreResult(total, result, group_scores, critical_failure)
