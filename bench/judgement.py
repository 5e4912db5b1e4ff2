"""Judgement benchmark: how fast each rule catches a bad canary, and how often it cries wolf.

Traffic is simulated here (seeded Bernoulli errors, drawn per second with
binomial draws) and the *same* traffic is shown to every rule: 200 req/s,
5% of it (10 req/s) on the canary, 190 req/s on the baseline at a 0.1%
error rate. The bad canary errs at 1% from its first second; the good one
stays at 0.1%. Each trial runs for a 30-minute horizon.

Rules (the threshold rules share one bound: a 0.5% error rate):

* Flagger default — every 60 s, the error rate over the last 60 s; roll
  back after 5 failed checks (Argo terms: failure_limit 4).
* Argo-style — every 30 s, the error rate over the last 30 s; failure_limit 0.
* Kayenta-style — 10 s buckets of error rate for both versions, judged
  every minute on all buckets so far by the Mann–Whitney classifier
  (confidence 0.98, direction increase, at least 5 points a side); High fails.
* interlock default — the sequential test (SPRT) on the canary's request
  counts, checked every second: H0 error rate 0.1% (the baseline's),
  H1 1% (ten times it), exact bounds for alpha 0.6% and beta 1%. Variants
  show what the check interval, Wald's bounds, the choice of H1 and
  judging against the live baseline instead of a known rate cost.

A rule that has not rolled back within the horizon counts as the horizon in
the detection percentiles and is also counted on its own; an SPRT that
accepts H0 passes the gate (the canary is promoted), so it never detects.
The Neyman–Pearson floor printed last bounds what any rule could achieve.

The threshold rules run through `core.gates.record`, Kayenta through
`core.judges.mann_whitney.classify`, interlock through
`core.judges.sequential`: the benchmark exercises the shipped code.

    python bench/judgement.py [--trials 1000] [--seed 7] [--horizon 1800]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.gates import GateRun, record  # noqa: E402
from core.judges.mann_whitney import classify  # noqa: E402
from core.judges.sequential import (  # noqa: E402
    SprtState,
    indifference_rate,
    operating_characteristic,
    sprt_start,
    sprt_update,
    two_sample_start,
    two_sample_update,
    wald_bounds,
)
from core.plan import Gate  # noqa: E402

CANARY_RPS, BASELINE_RPS = 10, 190
BASE_RATE, BAD_RATE, BOUND = 0.001, 0.01, 0.005


@dataclass(frozen=True)
class Traffic:
    canary: list[list[int]]
    """Canary errors per trial per second."""
    baseline: list[list[int]]
    canary_cum: np.ndarray
    """Cumulative canary errors, shape (trials, horizon + 1), column 0 = 0."""


def traffic(rate: float, trials: int, horizon: int, rng: np.random.Generator) -> Traffic:
    canary = rng.binomial(CANARY_RPS, rate, size=(trials, horizon))
    baseline = rng.binomial(BASELINE_RPS, BASE_RATE, size=(trials, horizon))
    cum = np.concatenate([np.zeros((trials, 1), dtype=np.int64), np.cumsum(canary, axis=1)], axis=1)
    return Traffic(canary.tolist(), baseline.tolist(), cum)


Rule = Callable[[Traffic, int, int], "float | None"]
"""(traffic, trial, horizon) -> seconds until rollback, or None."""


def threshold_rule(gate: Gate, window: int) -> Rule:
    def judge(t: Traffic, trial: int, horizon: int) -> float | None:
        run = GateRun(service="canary", gate="errors", next_at=None)
        interval = int(gate.interval)
        for at in range(interval, horizon + 1, interval):
            errors = int(t.canary_cum[trial, at] - t.canary_cum[trial, at - window])
            run = record(gate, run, float(at), errors / (CANARY_RPS * window), None, None)
            if run.phase == "failed":
                return float(at)
        return None

    return judge


def kayenta_rule(bucket: int = 10, every: int = 60) -> Rule:
    def judge(t: Traffic, trial: int, horizon: int) -> float | None:
        c_row, b_row = t.canary[trial], t.baseline[trial]
        canary = [sum(c_row[i : i + bucket]) / (CANARY_RPS * bucket) for i in range(0, horizon, bucket)]
        baseline = [sum(b_row[i : i + bucket]) / (BASELINE_RPS * bucket) for i in range(0, horizon, bucket)]
        for at in range(every, horizon + 1, every):
            k = at // bucket
            if classify(canary[:k], baseline[:k], direction="increase").result == "High":
                return float(at)
        return None

    return judge


def sprt_rule(start: Callable[[], SprtState], every: int, two_sample: bool) -> Rule:
    def judge(t: Traffic, trial: int, horizon: int) -> float | None:
        state = start()
        c_row, b_row = t.canary[trial], t.baseline[trial]
        for at in range(every, horizon + 1, every):
            errors = sum(c_row[at - every : at])
            if two_sample:
                base = sum(b_row[at - every : at])
                state = two_sample_update(state, errors, CANARY_RPS * every, base, BASELINE_RPS * every)
            else:
                state = sprt_update(state, errors, CANARY_RPS * every)
            if state.decision == "accept_h1":
                return float(at)
            if state.decision == "accept_h0":
                return None  # the gate passed: the canary is promoted
        return None

    return judge


@dataclass(frozen=True)
class Row:
    name: str
    median: float
    p95: float
    missed: int
    false_rollbacks: int
    trials: int
    seconds: float


def evaluate(name: str, rule: Rule, bad: Traffic, good: Traffic, trials: int, horizon: int) -> Row:
    started = time.perf_counter()
    detect = [rule(bad, i, horizon) for i in range(trials)]
    false = sum(rule(good, i, horizon) is not None for i in range(trials))
    times = np.array([horizon if d is None else d for d in detect], dtype=float)
    return Row(
        name,
        float(np.median(times)),
        float(np.percentile(times, 95)),
        sum(d is None for d in detect),
        false,
        trials,
        time.perf_counter() - started,
    )


DEFAULT_P1 = 0.01
"""H1 of the default test: an error rate 10x the baseline's is a regression."""
DEFAULT_ALPHA, DEFAULT_BETA = 0.006, 0.01
"""Exact error rates of the default test. alpha is tuned to half the 1% false-rollback
budget, so that a 1,000-trial sample stays within it, while the median stays below 30 s."""


def default_test() -> SprtState:
    return sprt_start(BASE_RATE, DEFAULT_P1, DEFAULT_ALPHA, DEFAULT_BETA, calibrated=True)


def rules() -> list[tuple[str, Rule]]:
    return [
        ("Flagger default: 60 s checks, rollback after 5 failures",
         threshold_rule(Gate(metric="error_rate", max=BOUND, interval=60, failure_limit=4), 60)),
        ("Argo-style: 30 s checks, failure_limit 0",
         threshold_rule(Gate(metric="error_rate", max=BOUND, interval=30, failure_limit=0), 30)),
        ("Kayenta-style: Mann–Whitney on 10 s buckets, judged each minute", kayenta_rule()),
        ("**interlock default**: SPRT 0.1% vs 1%, α=0.6%, β=1% (exact bounds), every 1 s",
         sprt_rule(default_test, 1, False)),
        ("interlock, same test checked every 5 s", sprt_rule(default_test, 5, False)),
        ("interlock, same test with Wald's bounds",
         sprt_rule(lambda: sprt_start(BASE_RATE, DEFAULT_P1, DEFAULT_ALPHA, DEFAULT_BETA), 1, False)),
        ("interlock, H1 at the shared 0.5% bound (SPRT 0.1% vs 0.5%)",
         sprt_rule(lambda: sprt_start(BASE_RATE, BOUND, DEFAULT_ALPHA, DEFAULT_BETA, calibrated=True), 1,
                   False)),
        ("interlock vs the live baseline: rate ratio 1 vs 10, same α and β (Wald), every 1 s",
         sprt_rule(lambda: two_sample_start(10.0, DEFAULT_ALPHA, DEFAULT_BETA), 1, True)),
    ]


def _binom_tail(n: int, p: float, k: int) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return 1.0 - sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k))


def best_detection_by(seconds: int, alpha: float = 0.01) -> float:
    """Neyman–Pearson: the most any rule can detect by `seconds` while false-alarming at most alpha.

    By then the canary has served n requests; their error count is all the
    evidence (the baseline is the same in both worlds, and error times given
    the count tell nothing), so the best level-alpha test rejects for many
    errors, randomising at the edge.
    """
    n = CANARY_RPS * seconds
    k = 0
    while _binom_tail(n, BASE_RATE, k) > alpha:
        k += 1
    edge = _binom_tail(n, BASE_RATE, k - 1) - _binom_tail(n, BASE_RATE, k)
    share = (alpha - _binom_tail(n, BASE_RATE, k)) / edge
    bad_edge = _binom_tail(n, BAD_RATE, k - 1) - _binom_tail(n, BAD_RATE, k)
    return _binom_tail(n, BAD_RATE, k) + share * bad_edge


def floor_seconds(quantile: float) -> int:
    """The earliest time by which a rule with <= 1% false alarms could catch `quantile` of bad canaries."""
    return next(t for t in range(1, 3600) if best_detection_by(t) >= quantile)


def table(rows: list[Row], horizon: int) -> str:
    lines = [
        "| rule | median detect | p95 detect | not detected in "
        f"{horizon // 60} min | false rollbacks |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.median:.0f} s | {r.p95:.0f} s | {r.missed}/{r.trials} | "
            f"{r.false_rollbacks}/{r.trials} ({r.false_rollbacks / r.trials:.1%}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon", type=int, default=1800, help="seconds per trial")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    bad = traffic(BAD_RATE, args.trials, args.horizon, rng)
    good = traffic(BASE_RATE, args.trials, args.horizon, rng)
    rows = [evaluate(name, rule, bad, good, args.trials, args.horizon) for name, rule in rules()]
    print(table(rows, args.horizon))
    flagger, argo, default = rows[0], rows[1], rows[3]
    print()
    print(
        f"Default judge: {flagger.median / default.median:.1f}x faster than Flagger at the median "
        f"({flagger.p95 / default.p95:.1f}x at p95), median {default.median:.0f} s vs Argo-style "
        f"{argo.median:.0f} s (p95 {default.p95:.0f} s vs {argo.p95:.0f} s); "
        f"false rollbacks {default.false_rollbacks / default.trials:.1%} vs Argo-style "
        f"{argo.false_rollbacks / argo.trials:.1%}."
    )
    test = default_test()
    exact_false, _ = operating_characteristic(BASE_RATE, DEFAULT_P1, test.upper, test.lower, BASE_RATE)
    _, exact_miss = operating_characteristic(BASE_RATE, DEFAULT_P1, test.upper, test.lower, BAD_RATE)
    print(
        f"Default test, exactly (checked after every request): false rollback {exact_false:.2%}, "
        f"miss {exact_miss:.2%}; bounds {test.lower:.3f} / {test.upper:.3f} "
        f"(Wald's: {wald_bounds(DEFAULT_ALPHA, DEFAULT_BETA)[1]:.3f} / "
        f"{wald_bounds(DEFAULT_ALPHA, DEFAULT_BETA)[0]:.3f}); "
        f"evidence tips towards failing above a {indifference_rate(BASE_RATE, DEFAULT_P1):.2%} error rate."
    )
    print(
        f"Floor for any rule with at most 1% false rollbacks (Neyman–Pearson on the canary's error count): "
        f"median >= {floor_seconds(0.5)} s, p95 >= {floor_seconds(0.95)} s."
    )
    for r in rows:
        print(f"  {r.seconds:5.1f} s  {r.name}", file=sys.stderr)
    print(f"total {time.perf_counter() - started:.1f} s, seed {args.seed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
