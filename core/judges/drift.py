"""Prediction-distribution drift between canary and baseline: PSI and Jensen–Shannon.

An ML service can return 200s at baseline latency while predicting
nonsense; the first sign is that its predictions are distributed
differently. The metric source bins both versions' predictions into the
same histogram bins and hands over the counts; these functions turn two
such histograms into one number a gate can bound.

* **PSI** (population stability index), natural log:
  ``Σ (c_i - b_i) · ln(c_i / b_i)`` over bin proportions, which equals
  ``KL(c‖b) + KL(b‖c)``. An empty bin would make it infinite, so every
  proportion below ``1e-4`` is raised to ``1e-4`` (the customary PSI floor)
  and each histogram is renormalised to sum to 1 — the floor touches only
  (nearly) empty bins and the result is still a divergence between two
  distributions. Rules of thumb: < 0.1 stable, 0.1–0.25 shifting, > 0.25 drifted.
* **Jensen–Shannon divergence**, base 2, in [0, 1]:
  ``½ KL(c‖m) + ½ KL(b‖m)`` with ``m = (c + b)/2``. It is finite with empty
  bins (``0·log 0 = 0``), so no smoothing is applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PSI_FLOOR = 1e-4


def _proportions(counts: Sequence[float], name: str) -> list[float]:
    values = [float(c) for c in counts]
    if not values:
        raise ValueError(f"the {name} histogram has no bins")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"the {name} histogram needs finite, non-negative counts")
    total = sum(values)
    if total <= 0:
        raise ValueError(f"the {name} histogram is empty (all counts are 0)")
    return [v / total for v in values]


def _pair(baseline: Sequence[float], canary: Sequence[float]) -> tuple[list[float], list[float]]:
    if len(baseline) != len(canary):
        raise ValueError(
            f"histograms must share their bins: baseline has {len(baseline)}, canary {len(canary)}"
        )
    return _proportions(baseline, "baseline"), _proportions(canary, "canary")


def _floored(proportions: list[float], floor: float) -> list[float]:
    raised = [max(p, floor) for p in proportions]
    total = sum(raised)
    return [p / total for p in raised]


def psi(baseline: Sequence[float], canary: Sequence[float], *, floor: float = PSI_FLOOR) -> float:
    """Population stability index of the canary's histogram against the baseline's."""
    b, c = _pair(baseline, canary)
    b, c = _floored(b, floor), _floored(c, floor)
    return sum((ci - bi) * math.log(ci / bi) for bi, ci in zip(b, c))


def js_divergence(baseline: Sequence[float], canary: Sequence[float]) -> float:
    """Jensen–Shannon divergence (base 2, between 0 and 1) of two histograms."""
    b, c = _pair(baseline, canary)
    total = 0.0
    for bi, ci in zip(b, c):
        mi = (bi + ci) / 2
        if bi > 0:
            total += 0.5 * bi * math.log2(bi / mi)
        if ci > 0:
            total += 0.5 * ci * math.log2(ci / mi)
    return min(max(total, 0.0), 1.0)
