"""Metric models of the simulated world: what each version of a service *is*,
how incompatible contracts and upstream errors degrade it, and how a window
of its traffic is sampled into the numbers a metric source would report.

Kept apart from :mod:`adapters.sim.world` (which holds the mutable flag, route
and fault state) so the mathematics can be read, and tested, on its own. Every
function here is pure given its `random.Random`; nothing reads a clock.

The models, in one place:

- Latency of a version is a mixture of log-normals; a component with median
  `m` and spread `s` has sigma `0.5 * s`, so its p99 is `m * exp(2.326 * 0.5 * s)`
  (spread 1.0 → p99 ≈ 3.2 × median).
- Predictions are a mixture of normals, clipped into 10 equal bins on [0, 1]
  (mass below 0 lands in the first bin, above 1 in the last).
- A consumer request that crosses a producer version it does not *read*
  (DESIGN.md's rule) gets +0.3 error probability, ×1.5 latency and +0.25
  prediction mean; every request also gets +0.5 × the error rate of the
  producer traffic it sees.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass
from functools import cached_property
from collections.abc import Set
from typing import Mapping, Sequence

from core import reads
from core import Contracts, SimService, SimVersion

BINS = 10
LATENCY_SIGMA_PER_SPREAD = 0.5
INCOMPATIBLE_ERROR = 0.3
INCOMPATIBLE_LATENCY = 1.5
INCOMPATIBLE_SHIFT = 0.25
ERROR_PROPAGATION = 0.5
EXACT_MAX_N = 100
"""Up to this many requests, samplers draw every request instead of approximating."""

DEFAULTS = SimVersion(
    error_rate=0.001, latency_ms=50.0, latency_spread=1.0, prediction_mean=0.5, prediction_std=0.15
)
DEFAULT_RPS = 200.0


@dataclass(frozen=True)
class Params:
    """The behaviour of one version on its own, before its neighbours degrade it."""

    error_rate: float
    latency_ms: float
    latency_spread: float
    prediction_mean: float
    prediction_std: float


def resolve_params(sim: SimService | None) -> tuple[Params, Params]:
    """(old, new) params: unset `from` fields take the defaults, unset `to` fields
    take the resolved `from` value."""
    sim = sim or SimService()
    fields = ("error_rate", "latency_ms", "latency_spread", "prediction_mean", "prediction_std")

    def pick(version: SimVersion, fallback: Mapping[str, float]) -> dict[str, float]:
        return {f: v if (v := getattr(version, f)) is not None else fallback[f] for f in fields}

    old = pick(sim.from_, {f: getattr(DEFAULTS, f) for f in fields})
    return Params(**old), Params(**pick(sim.to, old))


def regressed(old: Params, new: Params) -> bool:
    """Whether a plan configures the new version worse than the old one (its
    requests then count as served while bad): more errors, slower, or predictions
    moved by more than 0.05."""
    return (
        new.error_rate > old.error_rate
        or new.latency_ms > old.latency_ms
        or new.latency_spread > old.latency_spread
        or abs(new.prediction_mean - old.prediction_mean) > 0.05
    )


@dataclass(frozen=True)
class Component:
    """A slice of a version's traffic that behaves uniformly."""

    weight: float
    error_rate: float
    latency_ms: float
    sigma: float
    prediction_mean: float
    prediction_std: float


@dataclass(frozen=True)
class VersionModel:
    """The effective behaviour of one version of a service, neighbours included."""

    components: tuple[Component, ...]
    bad: float
    """Probability that a request of this version hits a degraded path (a faulted
    or regressed version, an incompatible contract, or a bad upstream request)."""
    incompatible: float
    """Fraction of this version's traffic that crosses a producer it does not read."""

    @cached_property
    def error_rate(self) -> float:
        """Asked for every upstream model of every traffic segment a consumer recomputes."""
        return sum(c.weight * c.error_rate for c in self.components)

    def latency_quantile(self, p: float) -> float:
        return mixture_quantile(self.components, p)

    def bin_probabilities(self) -> list[float]:
        probs = [0.0] * BINS
        for c in self.components:
            cdf = [_phi((i / BINS - c.prediction_mean) / c.prediction_std) for i in range(1, BINS)]
            edges = [0.0, *cdf, 1.0]
            for i in range(BINS):
                probs[i] += c.weight * (edges[i + 1] - edges[i])
        return probs


@dataclass(frozen=True)
class Side:
    """One version of a service as the propagation sees it."""

    params: Params
    contracts: Contracts
    tainted: bool


@dataclass(frozen=True)
class Node:
    """One service: its producers, its canary fraction and cohort, its versions."""

    name: str
    producers: tuple[str, ...]
    fraction: float
    cohort: str | None
    sides: Mapping[str, Side]
    """`old`, and `new` when the service moves."""
    mirrored: bool = False
    """Live requests are copied to its new version (a shadow stage, `adapters.sim.shadow`)."""


def propagate(
    nodes: Sequence[Node],
    previous: Mapping[tuple[str, str], VersionModel] | None = None,
    redo: Set[str] | None = None,
) -> dict[tuple[str, str], VersionModel]:
    """Effective models of every (service, side), nodes given producers first. With a
    `previous` result, only the nodes named in `redo` are computed again; `redo` must hold
    every consumer of each node in it, or a consumer would keep a stale model."""
    by_name = {n.name: n for n in nodes}
    out: dict[tuple[str, str], VersionModel] = dict(previous) if previous is not None else {}
    for node in nodes:
        if previous is not None and redo is not None and node.name not in redo:
            continue
        producers = [by_name[p] for p in node.producers if p in by_name and p != node.name]
        for side_name, side in node.sides.items():
            out[(node.name, side_name)] = _side_model(node, side_name, side, producers, out)
    return out


def recompute(
    nodes: Mapping[str, Node], models: dict[tuple[str, str], VersionModel], name: str
) -> bool:
    """Compute `name`'s models again in place from its node and its producers' current
    models; say whether any came out different (its consumers then need it too)."""
    node = nodes[name]
    producers = [nodes[p] for p in node.producers if p in nodes and p != name]
    changed = False
    for side_name, side in node.sides.items():
        fresh = _side_model(node, side_name, side, producers, models)
        if models.get((name, side_name)) != fresh:
            models[(name, side_name)] = fresh
            changed = True
    return changed


def _side_model(
    node: Node,
    side_name: str,
    side: Side,
    producers: list[Node],
    done: Mapping[tuple[str, str], VersionModel],
) -> VersionModel:
    base = side.params
    contracts, tainted = side.contracts, side.tainted
    merged: dict[tuple[float, float, float], float] = {}
    bad = incompatible = 0.0
    readable: dict[tuple[str, str], bool] = {}  # (producer, version) → read: once, not per segment
    for prob, seen in _joint_segments(node, side_name, producers):
        if prob <= 0:
            continue
        crossing = False
        upstream = []
        for p in producers:
            version = seen[p.name]
            ok = readable.get((p.name, version))
            if ok is None:
                ok = readable[(p.name, version)] = reads(contracts, p.sides[version].contracts)
            crossing = crossing or not ok
            upstream.append(done[(p.name, version)])
        error = base.error_rate + ERROR_PROPAGATION * sum([m.error_rate for m in upstream])
        latency, mean = base.latency_ms, base.prediction_mean
        if crossing:
            error += INCOMPATIBLE_ERROR
            latency *= INCOMPATIBLE_LATENCY
            mean += INCOMPATIBLE_SHIFT
            incompatible += prob
        key = (min(1.0, error), latency, mean)
        merged[key] = merged.get(key, 0.0) + prob
        clean = 1.0
        for m in upstream:
            clean *= 1.0 - m.bad
        bad += prob * (1.0 if tainted or crossing else 1.0 - clean)
    sigma = LATENCY_SIGMA_PER_SPREAD * base.latency_spread
    std = base.prediction_std
    components = tuple(Component(w, e, lat, sigma, mean, std) for (e, lat, mean), w in sorted(merged.items()))
    return VersionModel(components, min(1.0, bad), incompatible)


def _joint_segments(
    node: Node, side_name: str, producers: list[Node]
) -> list[tuple[float, dict[str, str]]]:
    """Which producer versions this side's traffic sees, with probabilities.

    Users of a cohort have a bucket u uniform on [0, 1); a service is on its new
    version for u < its fraction. So the consumer's own cohort narrows u to
    [0, f) (new side) or [f, 1) (old side); other cohorts are independent."""
    shadowed: dict[str, str] = {}
    if side_name == "new" and node.mirrored:
        # Copies flow through the producers' new versions that are mirrored too (a lockstep
        # group shadows together); the other producers answer them as they answer anyone.
        shadowed = {p.name: "new" for p in producers if p.mirrored}
        producers = [p for p in producers if not p.mirrored]
    groups: dict[str | None, list[Node]] = {}
    for p in producers:
        key = p.cohort if "new" in p.sides else None
        groups.setdefault(key, []).append(p)
    per_group: list[list[tuple[float, dict[str, str]]]] = []
    for cohort, members in groups.items():
        if cohort is not None and cohort == node.cohort and "new" in node.sides:
            low, high = (0.0, node.fraction) if side_name == "new" else (node.fraction, 1.0)
            per_group.append(_interval_segments(low, high, side_name == "new", members))
        else:
            per_group.append(_interval_segments(0.0, 1.0, True, members))
    joint: list[tuple[float, dict[str, str]]] = []
    for combo in itertools.product(*per_group):
        prob: float = 1.0
        seen: dict[str, str] = dict(shadowed)
        for share, assignment in combo:
            prob *= share
            seen.update(assignment)
        joint.append((prob, seen))
    return joint


segments = _joint_segments
"""Which producer versions one side's traffic meets, with their shares (`adapters.sim.data`)."""


def _interval_segments(
    low: float, high: float, from_below: bool, members: list[Node]
) -> list[tuple[float, dict[str, str]]]:
    def fractions(m: Node) -> float:
        return m.fraction if "new" in m.sides else 0.0

    if low == 0.0 and high == 1.0 and len(members) == 1:
        # A producer in a cohort of its own, as below: points 0, f, 1; shares (end - start) / 1.0.
        m = members[0]
        f = fractions(m)
        if 0.0 < f < 1.0:
            return [(f, {m.name: "new"}), (1.0 - f, {m.name: "old"})]
        return [(1.0, {m.name: "new" if f >= 1.0 else "old"})]
    if high <= low:
        # An empty bucket range (canary at 0% or 100%): the limit of its edge.
        return [
            (1.0, {m.name: "new" if (fractions(m) > low if from_below else fractions(m) >= high)
                   else "old" for m in members})
        ]
    points = sorted({low, high, *(f for m in members if low < (f := fractions(m)) < high)})
    return [
        ((end - start) / (high - low), {m.name: "new" if fractions(m) >= end else "old"
                                        for m in members})
        for start, end in zip(points, points[1:])
    ]


# --- randomness and samplers ---------------------------------------------------


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator keyed by blake2b (never `hash()`, which differs per process)."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Binomial(n, p): exact for small n or small mean, normal (clamped) otherwise."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n <= EXACT_MAX_N:
        return sum(1 for _ in range(n) if rng.random() < p)
    mean = n * p
    if mean < 30:
        # Inversion: walk the probability mass function (expected ~mean steps).
        q = 1.0 - p
        s, a, r = p / q, (n + 1) * p / q, q**n
        u, x = rng.random(), 0
        while u > r and x < n:
            u -= r
            x += 1
            r *= a / x - s
        return x
    x = round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))
    return min(n, max(0, x))


def multinomial(rng: random.Random, n: int, probs: Sequence[float]) -> list[int]:
    counts, left, mass = [], n, 1.0
    for i, p in enumerate(probs):
        if i == len(probs) - 1:
            counts.append(left)
            break
        k = binomial(rng, left, min(1.0, p / mass) if mass > 0 else 0.0)
        counts.append(k)
        left -= k
        mass -= p
    return counts


def mixture_quantile(components: Sequence[Component], p: float) -> float:
    """The p-quantile of a log-normal mixture, by bisection on its CDF in log space: 80
    halvings bit for bit (journaled latencies come from here), stopping once one leaves the
    bracket as it was, as every later one would (~55 reach adjacent floats)."""
    logs = [math.log(c.latency_ms) for c in components]
    low = min(lm - 9 * c.sigma for lm, c in zip(logs, components))
    high = max(lm + 9 * c.sigma for lm, c in zip(logs, components))
    erf = math.erf
    if len(components) == 1:
        weight, median, sigma = components[0].weight, logs[0], components[0].sigma

        def cdf(mid: float) -> float:
            # _phi written out: sum() of one term adds it to 0, which leaves it as it is.
            return weight * (0.5 * (1.0 + erf((mid - median) / sigma / _SQRT2)))
    else:
        parts = [(c.weight, lm, c.sigma) for lm, c in zip(logs, components)]

        def cdf(mid: float) -> float:
            return sum([w * (0.5 * (1.0 + erf((mid - lm) / s / _SQRT2))) for w, lm, s in parts])

    for _ in range(80):
        mid = (low + high) / 2
        if cdf(mid) < p:
            if mid == low:
                break
            low = mid
        else:
            if mid == high:
                break
            high = mid
    return math.exp((low + high) / 2)


def mixture_cdf(components: Sequence[Component], x: float) -> float:
    """P(latency <= x ms) under a log-normal mixture."""
    if x <= 0:
        return 0.0
    return sum(c.weight * _phi((math.log(x) - math.log(c.latency_ms)) / c.sigma) for c in components)


def sample_latency_quantile(rng: random.Random, model: VersionModel, p: float, n: int) -> float:
    """The p-quantile of n sampled latencies: drawn one by one for small n, else
    the true quantile at a level jittered by the sample quantile's spread."""
    comps = model.components
    if n <= EXACT_MAX_N:
        # Per request its component (one `choices` draw: one `random()`, even from one), then its latency.
        lognormal = rng.lognormvariate
        if len(comps) == 1:
            draw = rng.random
            median, sigma = math.log(comps[0].latency_ms), comps[0].sigma
            draws = []
            for _ in range(n):
                draw()
                draws.append(lognormal(median, sigma))
        else:
            choices, cumulative = rng.choices, list(itertools.accumulate(c.weight for c in comps))
            picks = ((choices(comps, cum_weights=cumulative)[0] for _ in range(n)))
            draws = [lognormal(math.log(c.latency_ms), c.sigma) for c in picks]
        draws.sort()
        return draws[min(n - 1, max(0, math.ceil(p * n) - 1))]
    level = rng.gauss(p, math.sqrt(p * (1.0 - p) / n))
    return mixture_quantile(comps, min(1.0 - 0.5 / n, max(0.5 / n, level)))


def sample_histogram(rng: random.Random, model: VersionModel, n: int) -> list[float]:
    return [float(k) for k in multinomial(rng, n, model.bin_probabilities())]


_SQRT2 = math.sqrt(2.0)


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / _SQRT2))
