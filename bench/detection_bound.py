"""Can any rule meet issue 15's "a third of Flagger's median" at a given traffic level?

The goal asks, in every cell of `judgement.py`'s table, for a median time-to-detect at most
a third of Flagger's with at most 1% false rollbacks. This computes, for each cell, an upper
bound on the probability that *any* rule — however clever, told the baseline's true rate,
looking once at exactly the right moment — has detected the bad canary by that time:

- "Detected by t" is an event of the data seen up to t. Under a healthy canary it happens
  with probability at most the rule's false-rollback rate (it is a rollback by t), so it is
  a test of level 1% on the data up to t. By the Neyman–Pearson lemma no such test is more
  powerful than the likelihood-ratio test of the two hypotheses on that data.
- Errors: the canary's n = rps x t requests (the bench's traffic is deterministic per
  bucket) carry Binomial(n, p) errors; with the baseline rate p0 known, the bound is the
  randomized NP test of Binomial(n, p0) against Binomial(n, p1). Against the drifting
  baseline the oracle also knows the sine's phase, and the test is NP on (phase, counts).
- Latency (a `latency_p99` gate with `max_increase: 10%`): the null is "the canary's p99 is
  at most 1.1 x the baseline's", i.e. at most 1% of its requests are slower than that limit L.
  The distribution that reweights the bad canary's own latency to put exactly 1% above L is
  in that null, and its likelihood ratio against the bad canary depends only on how many
  requests exceed L: so no valid test beats the NP test of Binomial(n, 1%) against
  Binomial(n, q1), q1 = P(bad canary slower than L). (A rule that judges the median instead
  would not be testing the gate's question.)

If the bound is below 1/2, no rule has a median at most t: the goal is impossible in that
cell, not merely unmet. Flagger's medians are `judgement.py`'s (bench/README.md, issue 15
table, seed 7); interlock's are in the same table.

    python bench/detection_bound.py [--alpha 0.01]
"""

from __future__ import annotations

import argparse
import math

SIGMA = 0.5
"""The bench's log-normal latency (median 50 ms, sigma 0.5)."""
Z99 = 2.3263478740408408

# (rps, scenario, canary error rate or latency factor, baseline error rate, Flagger's median s,
#  interlock's median s); None: that rule's median is a miss (more than half missed).
CELLS: list[tuple[int, str, float, float, float | None, float | None]] = [
    (1, "errors 0.5% vs 0.1%", 0.005, 0.001, None, None),
    (1, "errors 1.0% vs 0.1%", 0.010, 0.001, 660, 490),
    (1, "errors 5.0% vs 0.1%", 0.050, 0.001, 300, 70),
    (1, "errors 1.0% vs 0.05-0.3% drifting", 0.010, 0.0005, 660, 710),
    (1, "errors 5.0% vs 0.05-0.3% drifting", 0.050, 0.0005, 300, 60),
    (1, "latency +30%", 1.3, 0.0, 360, 800),
    (10, "errors 0.5% vs 0.1%", 0.005, 0.001, 840, 170),
    (10, "errors 0.5% vs 0.05-0.3% drifting", 0.005, 0.0005, 780, 270),
    (10, "latency +30%", 1.3, 0.0, 300, 100),
]


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def np_power(n: int, p0: float, p1: float, alpha: float) -> float:
    """The most powerful level-`alpha` test of Binomial(n, p0) against Binomial(n, p1 > p0):
    reject for large counts, randomizing at the boundary; its power."""
    pmf0 = [math.exp(_log_pmf(k, n, p0)) for k in range(n + 1)]
    pmf1 = [math.exp(_log_pmf(k, n, p1)) for k in range(n + 1)]
    size = power = 0.0
    for k in range(n, -1, -1):
        if size + pmf0[k] <= alpha:
            size += pmf0[k]
            power += pmf1[k]
            continue
        fraction = (alpha - size) / pmf0[k] if pmf0[k] > 0 else 0.0
        return power + fraction * pmf1[k]
    return power


def drifting_power(rps: int, t: float, p1: float, alpha: float, phases: int = 120, grid: float = 0.01) -> float:
    """The same bound against the bench's drifting baseline (0.05-0.3%, a sine of random
    phase, 20-minute period, the healthy canary drifting with it), for an oracle that knows the
    phase: the NP test on the joint (phase, per-bucket error counts), whose likelihood ratio
    given the phase depends on the counts through sum_i k_i log(p1 (1 - b_i) / (b_i (1 - p1))).
    The log-ratio is kept on a `grid` (atoms closer than that are merged); since merging moves
    each atom's likelihood ratio by at most a factor e^(grid/2) either way, the best test's
    power is at most e^grid times what the merged statistic gives, and that is what is returned
    (an upper bound). Phases: `phases` equally spaced, each equally likely."""
    bucket = 10
    n = rps * bucket
    buckets = int(t // bucket)
    atoms: list[tuple[float, float, float]] = []  # (log LR, P under H0 / phases, P under H1 / phases)
    for j in range(phases):
        phase = 2 * math.pi * j / phases
        dist: dict[float, tuple[float, float]] = {0.0: (1.0, 1.0)}
        const = 0.0
        for i in range(buckets):
            b = 0.00175 + 0.00125 * math.sin(2 * math.pi * (i + 0.5) * bucket / 1200.0 + phase)
            weight = math.log(p1 * (1 - b) / (b * (1 - p1)))
            const += n * math.log((1 - p1) / (1 - b))
            step = [(k, math.exp(_log_pmf(k, n, b)), math.exp(_log_pmf(k, n, p1))) for k in range(n + 1)]
            step = [s for s in step if s[1] > 1e-18 or s[2] > 1e-18]
            nxt: dict[float, tuple[float, float]] = {}
            for s, (q0, q1) in dist.items():
                for k, r0, r1 in step:
                    key = round((s + k * weight) / grid) * grid
                    a0, a1 = nxt.get(key, (0.0, 0.0))
                    nxt[key] = (a0 + q0 * r0, a1 + q1 * r1)
            dist = {k: v for k, v in nxt.items() if v[0] > 1e-16 or v[1] > 1e-16}
        atoms += [(s + const, q0 / phases, q1 / phases) for s, (q0, q1) in dist.items()]
    atoms.sort(key=lambda a: -a[0])
    size = power = 0.0
    for _, q0, q1 in atoms:
        if size + q0 <= alpha:
            size, power = size + q0, power + q1
            continue
        return min(1.0, math.exp(grid) * (power + ((alpha - size) / q0 if q0 > 0 else 0.0) * q1))
    return min(1.0, math.exp(grid) * power)


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def slower_than_limit(factor: float, margin: float = 0.10) -> float:
    """P(a request of the canary, latency x `factor`, is slower than (1 + margin) x the
    baseline's p99), for the bench's log-normal."""
    return 1.0 - phi(Z99 + (math.log(1.0 + margin) - math.log(factor)) / SIGMA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.01, help="false rollbacks allowed (default 1%%)")
    args = parser.parse_args(argv)
    print("| canary rps | scenario | Flagger median | a third | best possible P(detected by then) "
          "| goal | interlock median |")
    print("|---:|---|---:|---:|---:|---|---:|")
    for rps, scenario, bad, base, flagger, interlock in CELLS:
        shown = "—" if interlock is None else f"{interlock:.0f} s"
        if flagger is None:
            print(f"| {rps} | {scenario} | — (Flagger misses most) | — | — | undefined | {shown} |")
            continue
        t = flagger / 3.0
        n = int(rps * t)
        if scenario.startswith("latency"):
            best = np_power(n, 0.01, slower_than_limit(bad), args.alpha)
        elif "drifting" in scenario:
            best = drifting_power(rps, t, bad, args.alpha)
        else:
            best = np_power(n, base, bad, args.alpha)
        if best < 0.5:
            verdict = "impossible for any rule"
        elif interlock is not None and interlock <= t:
            verdict = "possible; met"
        else:
            verdict = "possible; not met"
        print(f"| {rps} | {scenario} | {flagger:.0f} s | {t:.0f} s ({n} requests) | {best:.3f} | {verdict} | {shown} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
