"""Judgement benchmark: how fast each rule catches a bad canary, and how often it cries wolf.

One run shows the *same* seeded traffic to every rule, at 1, 10 and 100 requests per second
to the canary (a 5% stage: the baseline takes 19 times as much). Time is cut into 10 s
buckets over a 30-minute horizon; every rule sees the buckets it needs.

Scenarios: error rates 0.5%, 1% and 5% against a 0.1% baseline, and against a baseline that
drifts between 0.05% and 0.3% (a sine of random phase and a 20-minute period; a healthy
canary drifts with it); latency +10% and +30% (a log-normal, median 50 ms, sigma 0.5). Each
healthy scenario (the canary is the baseline) measures false rollbacks.

Rules, as each tool ships them:

* **Flagger**: every 60 s (`interval: 1m`) the last minute's error rate (or p99) against a
  bound; rollback after 5 failed checks (`threshold: 5`); promoted after 10 passed checks
  (`stepWeight: 5, maxWeight: 50`).
* **Argo, count 10**: every 30 s the last 30 s against the bound; `count: 10,
  failure_limit: 1` (fails at the 2nd failure, succeeds after 10 measurements).
* **Argo, current bench rule**: every 30 s, `failure_limit: 0`, until the horizon. For
  latency this is the old interlock rule: the canary's p99 against 1.1 x the baseline's.
* **Kayenta**: Mann–Whitney (confidence 0.98, direction increase; for latency also the
  +10% effect size) on all 10 s buckets so far of both versions, judged every minute.
* **Netflix-style anytime-valid** (errors): the canary's share of all errors in a conjugate
  Beta–binomial mixture against its traffic share (Lindon et al.), checked every 10 s,
  alpha 1%.
* **interlock default**: the README gates as the defaults judge them: errors `compare:
  baseline, max_increase: 100%` (a two-sample mixture test, `core.judges.mixture`), latency
  `latency_p99 compare: baseline, max_increase: 10%` (the tail test: requests slower than 1.1 x
  the baseline's p99), alpha 0.5% (the share
  `policy.false_rollbacks: 1%` gives each gate's test of a one-service rollout with these two
  gates; one test runs on through all four stages, and this bench judges one stage of it, so
  it leaves out what the earlier stages' evidence adds). The gates' default interval is 10 s (an anytime-valid test loses
  nothing by looking often); the latency limit uses the baseline's p99 of the last minute.

The threshold rules share one bound: a 0.5% error rate; for latency 1.1 x the baseline's true
p99 (a perfectly tuned absolute threshold). A window's p99 is drawn exactly as the order
statistic of its requests; the tail test's slow count is drawn from the same canary
distribution (not the same requests as the p99: the two are drawn independently).

A rule that neither rolled back nor promoted by the horizon, or promoted a bad canary, missed
it; a missed canary counts as the horizon in the percentiles.

    python bench/judgement.py [--trials 400] [--healthy 1000] [--seed 7]
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
from scipy.special import betaln, ndtr, ndtri

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.gates import MIN_TAIL_BASELINE  # noqa: E402
from core.judges.mann_whitney import classify  # noqa: E402
from core.judges.mixture import ratio_start, ratio_update, tail_start, tail_update  # noqa: E402

HORIZON, BUCKET = 1800, 10
BASE_RATE, BOUND = 0.001, 0.005
BASELINE_FACTOR = 19
MU, SIGMA = math.log(50.0), 0.5
INTERLOCK_ALPHA = 0.01 / 2
NETFLIX_ALPHA = 0.01


@dataclass(frozen=True)
class Traffic:
    """Per trial and 10 s bucket: canary and baseline request and error counts, or latency."""

    c_n: int
    b_n: int
    c_err: np.ndarray | None = None
    b_err: np.ndarray | None = None
    shift: float = 1.0
    rng_seed: int = 0


def error_traffic(rps: int, canary: str | float, baseline: str, trials: int, rng: np.random.Generator) -> Traffic:
    buckets = HORIZON // BUCKET
    t = (np.arange(buckets) + 0.5) * BUCKET
    if baseline == "drift":
        phase = rng.uniform(0, 2 * math.pi, size=(trials, 1))
        b_rate = 0.00175 + 0.00125 * np.sin(2 * math.pi * t / 1200.0 + phase)
    else:
        b_rate = np.full((trials, buckets), BASE_RATE)
    c_rate = b_rate if canary == "same" else np.full((trials, buckets), float(canary))
    c_n, b_n = rps * BUCKET, rps * BASELINE_FACTOR * BUCKET
    return Traffic(c_n, b_n, rng.binomial(c_n, c_rate), rng.binomial(b_n, b_rate))


Rule = Callable[[Traffic, int], np.ndarray]
"""(traffic, trials) -> seconds to rollback per trial (nan: missed or promoted)."""


def _windows(x: np.ndarray, width: int) -> np.ndarray:
    """Sums over consecutive windows of `width` buckets: shape (trials, windows)."""
    trials, buckets = x.shape
    k = buckets // width
    return x[:, : k * width].reshape(trials, k, width).sum(axis=2)


def _flagger(fails: np.ndarray, every: int) -> np.ndarray:
    """Rollback at the 5th failed check, promotion at the 10th passed one."""
    out = np.full(fails.shape[0], np.nan)
    for i, row in enumerate(fails):
        f = p = 0
        for j, bad in enumerate(row):
            f, p = f + bad, p + (not bad)
            if f >= 5:
                out[i] = (j + 1) * every
                break
            if p >= 10:
                break
    return out


def _argo(fails: np.ndarray, every: int, count: int | None, limit: int) -> np.ndarray:
    out = np.full(fails.shape[0], np.nan)
    n = fails.shape[1] if count is None else min(count, fails.shape[1])
    cum = np.cumsum(fails[:, :n], axis=1)
    hit = cum > limit
    any_hit = hit.any(axis=1)
    out[any_hit] = (hit[any_hit].argmax(axis=1) + 1) * every
    return out


def err_flagger(t: Traffic, trials: int) -> np.ndarray:
    return _flagger(_windows(t.c_err, 6) / (t.c_n * 6) > BOUND, 60)


def err_argo10(t: Traffic, trials: int) -> np.ndarray:
    return _argo(_windows(t.c_err, 3) / (t.c_n * 3) > BOUND, 30, 10, 1)


def err_argo_now(t: Traffic, trials: int) -> np.ndarray:
    return _argo(_windows(t.c_err, 3) / (t.c_n * 3) > BOUND, 30, None, 0)


KAYENTA_TRIALS = 100
"""Kayenta's classifier is pure Python and judged 30 times a trial: it sees only the first
trials of each scenario (its rows say how many)."""


def _kayenta(canary: np.ndarray, baseline: np.ndarray, allowed: float = 1.0) -> np.ndarray:
    out = np.full(canary.shape[0], np.nan)
    for i in range(min(canary.shape[0], KAYENTA_TRIALS)):
        for k in range(6, canary.shape[1] + 1, 6):
            r = classify(canary[i, :k].tolist(), baseline[i, :k].tolist(), direction="increase",
                         allowed_increase=allowed)
            if r.result == "High":
                out[i] = k * BUCKET
                break
    return out


def err_kayenta(t: Traffic, trials: int) -> np.ndarray:
    return _kayenta(t.c_err / t.c_n, t.b_err / t.b_n)


def err_netflix(t: Traffic, trials: int) -> np.ndarray:
    """Beta–binomial mixture on the canary's share of errors (q0 its share of traffic)."""
    q0 = t.c_n / (t.c_n + t.b_n)
    a, b = q0 * 10.0, (1 - q0) * 10.0
    xc, xb = np.cumsum(t.c_err, axis=1), np.cumsum(t.b_err, axis=1)
    log_m = betaln(a + xc, b + xb) - betaln(a, b) - xc * math.log(q0) - xb * math.log(1 - q0)
    hit = (log_m >= math.log(1 / NETFLIX_ALPHA)) & (xc / np.maximum(xc + xb, 1) > q0)
    out = np.full(trials, np.nan)
    any_hit = hit.any(axis=1)
    out[any_hit] = (hit[any_hit].argmax(axis=1) + 1) * BUCKET
    return out


def err_interlock(t: Traffic, trials: int, alpha: float = INTERLOCK_ALPHA) -> np.ndarray:
    """The default sequential gate: every 10 s (`ANYTIME_INTERVAL`), the last 10 s of both."""
    c, b = t.c_err, t.b_err
    out = np.full(trials, np.nan)
    for i in range(trials):
        state = ratio_start(2.0, alpha)
        for j in range(c.shape[1]):
            state = ratio_update(state, int(c[i, j]), t.c_n, int(b[i, j]), t.b_n)
            if state.crossed:
                out[i] = (j + 1) * BUCKET
                break
    return out


# --- latency -------------------------------------------------------------------------


def _p99(rng: np.random.Generator, n: int, shape: tuple[int, int], shift: float) -> np.ndarray:
    """The p99 of n log-normal latencies (the ceil(0.99 n)-th order statistic), exactly."""
    k = math.ceil(0.99 * n)
    u = rng.beta(k, n - k + 1, size=shape)
    return shift * np.exp(MU + SIGMA * ndtri(u))


TRUE_P99 = math.exp(MU + SIGMA * float(ndtri(0.99)))


def latency_rules(rps: int, shift: float, trials: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every latency rule on one scenario (each window's p99 drawn once for all rules)."""
    c_n, b_n = rps, rps * BASELINE_FACTOR  # per second
    windows30 = HORIZON // 30
    c30 = _p99(rng, c_n * 30, (trials, windows30), shift)
    b30 = _p99(rng, b_n * 30, (trials, windows30), 1.0)
    c60 = _p99(rng, c_n * 60, (trials, HORIZON // 60), shift)
    c10 = _p99(rng, c_n * 10, (trials, HORIZON // 10), shift)
    b10 = _p99(rng, b_n * 10, (trials, HORIZON // 10), 1.0)
    bound = 1.1 * TRUE_P99
    out = {
        "flagger": _flagger(c60 > bound, 60),
        "argo10": _argo(c30 > bound, 30, 10, 1),
        "argo_now": _argo(c30 > 1.1 * b30, 30, None, 0),
        "kayenta": _kayenta(c10, b10, allowed=1.1),
    }
    # The default quantile gate: every 10 s, the canary's last 10 s against 1.1 x the
    # baseline's p99 of the last minute (`TAIL_BASELINE_WINDOW`).
    b60 = _p99(rng, b_n * 60, (trials, HORIZON // 10), 1.0)
    for key, alpha, margin in (("interlock", INTERLOCK_ALPHA, 1.1), ("interlock_1", 0.01, 1.1),
                               ("interlock_5", INTERLOCK_ALPHA, 1.05)):
        slow_p = 1.0 - ndtr((np.log(margin * b60 / shift) - MU) / SIGMA)
        slow = rng.binomial(c_n * 10, slow_p)
        tail = np.full(trials, np.nan)
        for i in range(trials):
            state = tail_start(0.01, alpha)
            for j in range(slow.shape[1]):
                if b_n * 60 * 0.01 < MIN_TAIL_BASELINE:
                    continue  # the baseline's window too small to place its p99 (core.gates)
                state = tail_update(state, int(slow[i, j]), c_n * 10)
                if state.crossed:
                    tail[i] = (j + 1) * 10
                    break
        out[key] = tail
    return out


ERROR_RULES: dict[str, Rule] = {
    "flagger": err_flagger, "argo10": err_argo10, "argo_now": err_argo_now,
    "kayenta": err_kayenta, "netflix": err_netflix, "interlock": err_interlock,
    "interlock_1": lambda t, trials: err_interlock(t, trials, 0.01),
}
NAMES = {
    "flagger": "Flagger (1m, threshold 5, promote after 10)",
    "argo10": "Argo count 10, failure_limit 1",
    "argo_now": "Argo 30 s, failure_limit 0 (old bench rule)",
    "kayenta": "Kayenta Mann–Whitney 0.98",
    "netflix": "Netflix-style anytime-valid",
    "interlock": "**interlock default**",
    "interlock_1": "interlock's test, one test at α 1% (Netflix's α)",
    "interlock_5": "interlock default with max_increase 5%",
}


def _stats(times: np.ndarray, n: int) -> tuple[float, float, int]:
    times = times[:n]
    missed = int(np.isnan(times).sum())
    filled = np.where(np.isnan(times), HORIZON, times)
    return float(np.median(filled)), float(np.percentile(filled, 95)), missed


def _n(key: str, trials: int) -> int:
    return min(trials, KAYENTA_TRIALS) if key == "kayenta" else trials


def _fmt(seconds: float) -> str:
    return "—" if seconds >= HORIZON else f"{seconds:.0f} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="trials per bad scenario")
    parser.add_argument("--healthy", type=int, default=1000, help="trials per healthy scenario")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rps", type=int, nargs="*", default=[1, 10, 100])
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    print("| canary rps | scenario | rule | median detect | p95 detect | missed | false rollbacks |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for rps in args.rps:
        for baseline in ("fixed", "drift"):
            healthy = error_traffic(rps, "same", baseline, args.healthy, rng)
            false = {k: int((~np.isnan(rule(healthy, args.healthy)[: _n(k, args.healthy)])).sum())
                     for k, rule in ERROR_RULES.items()}
            for rate in (0.005, 0.01, 0.05):
                bad = error_traffic(rps, rate, baseline, args.trials, rng)
                base = "0.1%" if baseline == "fixed" else "0.05–0.3% drifting"
                for key, rule in ERROR_RULES.items():
                    n, h = _n(key, args.trials), _n(key, args.healthy)
                    med, p95, missed = _stats(rule(bad, args.trials), n)
                    print(f"| {rps} | errors {rate:.1%} vs {base} | {NAMES[key]} | {_fmt(med)} | {_fmt(p95)} | "
                          f"{missed}/{n} | {false[key]}/{h} = {false[key] / h:.1%} |", flush=True)
        healthy_lat = latency_rules(rps, 1.0, args.healthy, rng)
        for shift in (1.1, 1.3):
            bad_lat = latency_rules(rps, shift, args.trials, rng)
            for key, times in bad_lat.items():
                n, h = _n(key, args.trials), _n(key, args.healthy)
                med, p95, missed = _stats(times, n)
                false = int((~np.isnan(healthy_lat[key][:h])).sum())
                print(f"| {rps} | latency +{shift - 1:.0%} | {NAMES[key]} | {_fmt(med)} | {_fmt(p95)} | "
                      f"{missed}/{n} | {false}/{h} = {false / h:.1%} |", flush=True)
    print(f"\n{args.trials} trials per bad scenario, {args.healthy} per healthy one, seed {args.seed}, "
          f"{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
