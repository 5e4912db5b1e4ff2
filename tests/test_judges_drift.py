"""PSI and Jensen–Shannon divergence against SciPy, plus the edges a gate meets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from core.judges.drift import PSI_FLOOR, js_divergence, psi


def histograms(seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        bins = int(rng.integers(2, 20))
        b = rng.integers(0, 500, bins).astype(float)
        c = rng.integers(0, 500, bins).astype(float)
        b[rng.random(bins) < 0.2] = 0  # empty bins on either side
        c[rng.random(bins) < 0.2] = 0
        b[0] += 1
        c[-1] += 1
        out.append((b, c))
    return out


def floored(counts: np.ndarray) -> np.ndarray:
    p = np.maximum(counts / counts.sum(), PSI_FLOOR)
    return p / p.sum()


def test_psi_is_symmetric_kl_of_the_floored_proportions_per_scipy() -> None:
    for b, c in histograms(seed=1, count=200):
        fb, fc = floored(b), floored(c)
        expected = entropy(fc, fb) + entropy(fb, fc)
        assert psi(list(b), list(c)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_js_divergence_is_scipys_jensen_shannon_distance_squared() -> None:
    for b, c in histograms(seed=2, count=200):
        expected = jensenshannon(b, c, base=2) ** 2
        assert js_divergence(list(b), list(c)) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_identical_shapes_do_not_drift_whatever_the_volume() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)
    assert js_divergence([10, 20, 30], [100, 200, 300]) == pytest.approx(0.0, abs=1e-15)


def test_disjoint_histograms_are_maximally_divergent() -> None:
    assert js_divergence([5, 5, 0, 0], [0, 0, 3, 7]) == pytest.approx(1.0)
    assert psi([5, 5, 0, 0], [0, 0, 3, 7]) > 10  # finite thanks to the floor


def test_a_real_shift_crosses_the_usual_psi_alarm() -> None:
    rng = np.random.default_rng(3)
    edges = np.linspace(0, 1, 11)
    base = np.histogram(rng.beta(2, 5, 5000), edges)[0]
    same = np.histogram(rng.beta(2, 5, 5000), edges)[0]
    moved = np.histogram(rng.beta(3, 4, 5000), edges)[0]
    assert psi(list(base), list(same)) < 0.1 < 0.25 < psi(list(base), list(moved))


@pytest.mark.parametrize(
    ("baseline", "canary", "message"),
    [
        ([1, 2], [1, 2, 3], "share their bins"),
        ([1, -2], [1, 2], "non-negative"),
        ([0, 0], [1, 2], "empty"),
        ([], [], "no bins"),
        ([1, float("nan")], [1, 2], "finite"),
    ],
)
def test_malformed_histograms_are_refused(baseline: list[float], canary: list[float], message: str) -> None:
    for divergence in (psi, js_divergence):
        with pytest.raises(ValueError, match=message):
            divergence(baseline, canary)
