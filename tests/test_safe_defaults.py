"""Safe defaults (issue 15): canary-versus-baseline gates judged by tests that account for
sample size, false rollbacks bounded per rollout, and a newcomer's plan that does not cry wolf.

Statistical behaviour is checked on seeded traffic with assertions that a wrong test would
break (a per-look test, a one-sample test against a configured rate), never on timing."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest
import yaml

from core.context import build_context
from core.judges.mixture import ratio_start, ratio_update, tail_start, tail_update
from core.order import compile_plan
from core.plan import Gate, Plan
from tui.session import runtime

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from newcomer import LEGACY_GATES, README_GATES, newcomer_plan, regress  # noqa: E402


def test_baseline_gates_on_errors_and_latency_quantiles_get_sample_size_aware_judges() -> None:
    assert Gate(metric="latency_p99", compare="baseline", max_increase="10%").judge == "quantile"
    assert Gate(metric="latency_p99", compare="baseline", max_increase="10%").level == pytest.approx(0.99)
    assert Gate(metric="error_rate", compare="baseline", max_increase="100%").judge == "sequential"
    explicit = Gate(metric="latency_p99", compare="baseline", max_increase="10%", judge="threshold")
    assert explicit.judge == "threshold"  # the Argo rule stays available by name
    assert Gate(metric="error_rate", max=0.01).judge == "threshold"


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def _ratio_trials(canary_rate: float, base_rate: float, trials: int, looks: int, seed: int) -> int:
    """How many trials of `looks` 30-second windows (100 canary, 2,000 baseline requests each)
    the two-sample test crossed, at alpha 1%."""
    rng = random.Random(seed)
    crossed = 0
    for _ in range(trials):
        state = ratio_start(2.0, 0.01)
        for _ in range(looks):
            state = ratio_update(state, _binomial(rng, 100, canary_rate), 100,
                                 _binomial(rng, 2000, base_rate), 2000)
        crossed += state.crossed
    return crossed


def test_the_two_sample_error_test_holds_when_the_baseline_drifts_from_any_configured_rate() -> None:
    # A healthy canary beside a baseline at 0.3% (three times the usual 0.1%): looked at 40
    # times, a per-look test or a one-sample test configured for 0.1% would fire again and again.
    assert _ratio_trials(0.003, 0.003, trials=300, looks=40, seed=1) <= 9  # alpha 1% of 300 is 3
    # ... while a canary at 5x its baseline is caught.
    assert _ratio_trials(0.005, 0.001, trials=60, looks=40, seed=2) >= 57


def test_the_tail_test_stays_within_alpha_over_many_looks_and_catches_a_slow_canary() -> None:
    rng = random.Random(3)
    false = 0
    for _ in range(300):
        state = tail_start(0.01, 0.01)
        for _ in range(60):  # 60 looks of 50 requests, each slow with probability 0.6% (< 1%)
            state = tail_update(state, _binomial(rng, 50, 0.006), 50)
        false += state.crossed
    assert false <= 9
    caught = 0
    for _ in range(60):
        state = tail_start(0.01, 0.01)
        for _ in range(60):  # twice as slow: 13% of requests above 1.1 x the baseline's p99
            state = tail_update(state, _binomial(rng, 50, 0.13), 50)
        caught += state.crossed
    assert caught == 60


def _plan(data: dict) -> Plan:
    return Plan.model_validate(data)


def test_false_rollbacks_are_split_over_every_service_and_gate_once_for_all_stages() -> None:
    data = newcomer_plan(random.Random(5), README_GATES)
    data["policy"]["false_rollbacks"] = "2%"
    plan = _plan(data)
    ctx = build_context(plan, compile_plan(plan))
    moving = len(ctx.graph.moving)
    tests = moving * 2  # two gates per service; each test runs on through the four stages below 100%
    assert ctx.gates["errors"].alpha == pytest.approx(0.02 / tests)
    assert ctx.gates["latency"].alpha == pytest.approx(0.02 / tests)
    data["gates"]["errors"] = {**README_GATES["errors"], "alpha": 0.001}
    plan = _plan(data)
    ctx = build_context(plan, compile_plan(plan))
    assert ctx.gates["errors"].alpha == 0.001  # its own alpha stays, and is not counted
    assert ctx.gates["latency"].alpha == pytest.approx(0.02 / moving)


def _run(data: dict, tmp_path: Path, seed: int) -> object:
    path = tmp_path / f"plan{seed}.yaml"
    path.write_text(yaml.safe_dump(data))
    session = runtime.start_run(path, journal_path=tmp_path / f"j{seed}.db", seed=seed)
    state = asyncio.run(session.engine.run())
    session.journal.close()
    return state


def test_a_newcomers_healthy_plan_completes_where_the_old_readme_gates_rolled_back(tmp_path: Path) -> None:
    outcomes = []
    for seed in range(6):
        data = newcomer_plan(random.Random(100 + seed), README_GATES)
        outcomes.append(_run(data, tmp_path, seed).phase)  # type: ignore[attr-defined]
    assert outcomes == ["completed"] * 6
    legacy = [_run(newcomer_plan(random.Random(100 + s), LEGACY_GATES), tmp_path, 10 + s).phase  # type: ignore[attr-defined]
              for s in range(3)]
    assert legacy.count("rolled_back") >= 2  # the ratio of two noisy p99s cries wolf


@pytest.mark.parametrize("kind", ["errors", "latency"])
def test_a_regression_in_one_service_is_caught_and_named(kind: str, tmp_path: Path) -> None:
    for seed in range(3):
        rng = random.Random(200 + seed)
        data = newcomer_plan(rng, README_GATES)
        bad = regress(data, rng, kind)
        state = _run(data, tmp_path, seed)
        assert state.phase == "rolled_back"  # type: ignore[attr-defined]
        assert f" on {bad}" in state.reason and "crossed the rollback bound ✗" in state.reason  # type: ignore[attr-defined]
