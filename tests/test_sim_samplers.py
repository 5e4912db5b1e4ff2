"""The simulated world's latency samplers, written for speed, give exactly what their plain
definitions give: every latency a run journals comes from them, and the journals of a seed
must not change (`bench/journal_identity.py`)."""

from __future__ import annotations

import math
import random

import adapters.sim.model as model


def _reference_quantile(components: tuple[model.Component, ...], p: float) -> float:
    """80 halvings of the bracket, the CDF summed as a generator (the definition)."""
    low = min(math.log(c.latency_ms) - 9 * c.sigma for c in components)
    high = max(math.log(c.latency_ms) + 9 * c.sigma for c in components)
    for _ in range(80):
        mid = (low + high) / 2
        cdf = sum(c.weight * model._phi((mid - math.log(c.latency_ms)) / c.sigma) for c in components)
        low, high = (mid, high) if cdf < p else (low, mid)
    return math.exp((low + high) / 2)


def _reference_sample(rng: random.Random, m: model.VersionModel, p: float, n: int) -> float:
    comps = m.components
    if n <= model.EXACT_MAX_N:
        draws = sorted(
            rng.lognormvariate(math.log(c.latency_ms), c.sigma)
            for c in (rng.choices(comps, [c.weight for c in comps])[0] for _ in range(n))
        )
        return draws[min(n - 1, max(0, math.ceil(p * n) - 1))]
    level = rng.gauss(p, math.sqrt(p * (1.0 - p) / n))
    return _reference_quantile(comps, min(1.0 - 0.5 / n, max(0.5 / n, level)))


def _mixture(r: random.Random) -> tuple[model.Component, ...]:
    weights = [r.random() + 0.01 for _ in range(r.choice([1, 1, 2, 3]))]
    total = sum(weights)
    return tuple(
        model.Component(w / total, r.random() * 0.1, r.uniform(1.0, 900.0), r.uniform(0.01, 1.5), 0.5, 0.15)
        for w in weights
    )


def test_quantile_is_the_full_bisection_bit_for_bit() -> None:
    r = random.Random(17)
    for _ in range(3000):
        comps = _mixture(r)
        p = r.choice([0.5, 0.99, r.random(), 1e-6, 1 - 1e-6, 0.0, 1.0])
        assert model.mixture_quantile(comps, p) == _reference_quantile(comps, p)


def test_sampled_quantile_draws_what_the_definition_draws() -> None:
    r = random.Random(23)
    for trial in range(1500):
        m = model.VersionModel(_mixture(r), 0.0, 0.0)
        p, n = r.choice([0.5, 0.99]), r.choice([1, 2, 7, 99, 100, 101, 5000])
        fast, slow = random.Random(trial), random.Random(trial)
        assert model.sample_latency_quantile(fast, m, p, n) == _reference_sample(slow, m, p, n)
        assert fast.random() == slow.random()  # the same draws taken
