"""The simulated world: exposure state, metric models, cascades, faults, persistence."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.sim import ROUTE_COHORT, SimWorld, model
from core.plan import Plan
from core.ports import AdapterError, FaultInjector, FlagService, MetricSource, Router, TargetReading
from tests.helpers import design_services

ROOT = Path(__file__).resolve().parents[1]

RECSYS: dict[str, Any] = {
    "rollout": "recsys-embeddings-v3",
    "services": design_services(ranker_gates=None),
}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def recsys(**kwargs: Any) -> SimWorld:
    return SimWorld(Plan.model_validate(RECSYS), None, seed=kwargs.pop("seed", 7), **kwargs)


def one_service(**sim: Any) -> SimWorld:
    """One moving service `svc` (versions 1 → 2) with these `sim` settings."""
    plan = {"rollout": "r", "services": {"svc": {"from": {"version": "1"}, "to": {"version": "2"}, "sim": sim}}}
    return SimWorld(Plan.model_validate(plan), None, seed=3)


async def expose(world: SimWorld, service: str, percent: float, cohort: str) -> None:
    exposure = world.plan.exposure_of(service)
    if exposure.flag:
        await world.flags.set_rollout(exposure.flag, percent, cohort)
    if exposure.route:
        await world.router.set_weight(exposure.route, percent)


# --- exposure ---------------------------------------------------------------------


def test_the_world_implements_the_ports() -> None:
    world = recsys()
    assert isinstance(world.flags, FlagService)
    assert isinstance(world.router, Router)
    assert isinstance(world.metrics, MetricSource)
    assert isinstance(world.faults, FaultInjector)


def test_flags_and_routes_read_back_what_was_set_and_sets_are_absolute() -> None:
    world = recsys()

    async def go() -> None:
        assert await world.flags.get_rollout("embedder-v3") == 0.0
        await world.flags.set_rollout("embedder-v3", 25, "lock")
        await world.flags.set_rollout("embedder-v3", 25, "lock")
        await world.router.set_weight("embedder", 40)
        assert await world.flags.get_rollout("embedder-v3") == 25.0
        assert await world.router.get_weight("embedder") == 40.0
        assert world.flags.cohort("embedder-v3") == "lock"
        assert await world.flags.inspect("embedder-v3") == TargetReading(25.0)

    run(go())
    # Canary fraction is the smaller of flag and route.
    assert world.canary_fraction("embedder") == 0.25
    assert world.canary_fraction("features") == 0.0
    # `ranker` has no exposure block: a flag named after the service.
    run(world.flags.set_rollout("ranker", 10, "r"))
    assert world.canary_fraction("ranker") == 0.10


@pytest.mark.parametrize(
    "call",
    [
        lambda w: w.flags.set_rollout("nope", 5, "c"),
        lambda w: w.flags.get_rollout("nope"),
        lambda w: w.router.set_weight("nope", 5),
        lambda w: w.router.get_weight("nope"),
        lambda w: w.flags.set_rollout("ranker", 101, "c"),
        lambda w: w.router.set_weight("embedder", -1),
    ],
)
def test_unknown_names_and_bad_percentages_are_adapter_errors(call: Any) -> None:
    world = recsys()
    with pytest.raises(AdapterError):
        run(call(world))
    assert world.canary_fraction("ranker") == 0.0 and world.canary_fraction("embedder") == 0.0


def test_route_only_services_share_the_route_cohort() -> None:
    plan = Plan.model_validate(
        {"rollout": "r", "services": {"a": {"from": {"version": "1"}, "to": {"version": "2"},
                                            "exposure": {"route": "a"}}}}
    )
    assert SimWorld(plan, None, seed=1).cohort_of("a") == ROUTE_COHORT


# --- determinism ------------------------------------------------------------------

QUERIES = [(m, s, v) for m in ("error_rate", "latency_p99", "latency_p50", "prediction_psi")
           for s, v in (("ranker", "5.0"), ("ranker", "6.0"), ("embedder", "3.0"))]


async def sample_all(world: SimWorld) -> list[float | None]:
    await expose(world, "features", 100, "f")
    await expose(world, "embedder", 25, "e")
    await expose(world, "ranker", 5, "r")
    return [await world.metrics.query(m, s, v, 30, at) for at in (30.0, 60.5) for m, s, v in QUERIES]


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    first, again = run(sample_all(recsys(seed=11))), run(sample_all(recsys(seed=11)))
    other = run(sample_all(recsys(seed=12)))
    assert all(v is not None for v in first)
    assert first == again
    assert sum(a != b for a, b in zip(first, other)) >= len(first) - 4


def test_numbers_do_not_depend_on_the_process_hash_seed() -> None:
    script = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.test_sim_world import recsys, sample_all;"
        "print(json.dumps(asyncio.run(sample_all(recsys(seed=11)))))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", script, str(ROOT)], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert outputs == {json.dumps(run(sample_all(recsys(seed=11)))) + "\n"}


# --- samplers and measurement statistics ------------------------------------------


@pytest.mark.parametrize("n,p", [(50, 0.1), (5000, 0.001), (5000, 0.3), (400, 0.9), (10, 0.0), (10, 1.0)])
def test_binomial_sampler_has_the_right_mean_and_variance(n: int, p: float) -> None:
    rng = random.Random(1)
    draws = [model.binomial(rng, n, p) for _ in range(3000)]
    assert all(0 <= d <= n for d in draws)
    mean, var = n * p, n * p * (1 - p)
    assert abs(statistics.fmean(draws) - mean) <= 4 * math.sqrt(var / len(draws)) + 1e-9
    if var:
        assert statistics.variance(draws) == pytest.approx(var, rel=0.12)


def test_measured_error_rate_matches_the_model() -> None:
    world = one_service(to={"error_rate": 0.02})
    run(world.flags.set_rollout("svc", 50, "c"))
    values = [run(world.metrics.query("error_rate", "svc", "2", 30, 30.0 * i)) for i in range(1, 301)]
    n = 200 * 0.5 * 30
    assert statistics.fmean(values) == pytest.approx(0.02, abs=4 * math.sqrt(0.02 * 0.98 / n / 300))
    assert statistics.stdev(values) == pytest.approx(math.sqrt(0.02 * 0.98 / n), rel=0.2)
    assert run(world.metrics.query("requests", "svc", "2", 30, 30.0)) == n
    # The old version keeps the default error rate.
    old = [run(world.metrics.query("error_rate", "svc", "1", 30, 30.0 * i)) for i in range(1, 101)]
    assert statistics.fmean(old) == pytest.approx(0.001, abs=0.0005)


def test_latency_quantiles_follow_the_log_normal_model_and_noise_shrinks_with_traffic() -> None:
    world = one_service(**{"from": {"latency_ms": 80.0, "latency_spread": 0.8}})
    p99_model = 80.0 * math.exp(2.326 * 0.5 * 0.8)

    def spread(percent: float, metric: str) -> tuple[float, float]:
        run(world.flags.set_rollout("svc", percent, "c"))
        vals = [run(world.metrics.query(metric, "svc", "2", 30, float(t))) for t in range(200)]
        return statistics.fmean(vals), statistics.stdev(vals)

    big_mean, big_sd = spread(50, "latency_p99")
    assert big_mean == pytest.approx(p99_model, rel=0.03)
    p50_mean, _ = spread(1, "latency_p50")  # 60 requests: drawn one by one
    assert p50_mean == pytest.approx(80.0, rel=0.06)
    _, small_sd = spread(1, "latency_p99")
    assert small_sd > 3 * big_sd


def test_prediction_psi_is_what_judge_drift_computes_on_the_same_histograms() -> None:
    """One PSI: the sim's `prediction_psi` metric is `core.judges.drift.psi` (what a
    `judge: drift` gate computes) of the two versions' histograms of the same window."""
    from core.judges.drift import psi

    for shift in (0.5, 0.55, 0.65, 0.9):
        world = one_service(to={"prediction_mean": shift})
        run(world.flags.set_rollout("svc", 30, "c"))
        for at in (60.0, 90.0):
            baseline = run(world.metrics.histogram("svc", "1", 60, at))
            canary = run(world.metrics.histogram("svc", "2", 60, at))
            assert run(world.metrics.query("prediction_psi", "svc", "2", 60, at)) == psi(baseline, canary)


def test_identical_versions_show_little_drift_and_a_drifted_one_shows_a_lot() -> None:
    world = one_service(to={"prediction_mean": 0.65})
    same = one_service()
    for w in (world, same):
        run(w.flags.set_rollout("svc", 50, "c"))
    drifted = run(world.metrics.query("prediction_psi", "svc", "2", 60, 60.0))
    calm = run(same.metrics.query("prediction_psi", "svc", "2", 60, 60.0))
    assert calm < 0.02 < 0.2 < drifted
    hist = run(world.metrics.histogram("svc", "2", 60, 60.0))
    assert len(hist) == 10 and sum(hist) == 200 * 0.5 * 60


# --- contracts and cascades (DESIGN.md's example) ------------------------------------


def test_embedder_ahead_of_ranker_breaks_exactly_the_crossing_traffic() -> None:
    world = recsys()
    run(expose(world, "features", 100, "features"))
    run(expose(world, "embedder", 25, "embedder"))
    old_ranker, new_ranker = world.version_model("ranker", "5.0"), world.version_model("ranker", "6.0")
    embedder_errors = 0.75 * world.version_model("embedder", "2.4").error_rate + 0.25 * world.version_model(
        "embedder", "3.0"
    ).error_rate
    # A quarter of old-ranker traffic meets embeddings 3, which it cannot read.
    assert old_ranker.incompatible == pytest.approx(0.25)
    assert old_ranker.error_rate == pytest.approx(0.001 + 0.3 * 0.25 + 0.5 * embedder_errors)
    assert new_ranker.incompatible == pytest.approx(0.75)
    measured = [run(world.metrics.query("error_rate", "ranker", "5.0", 30, 30.0 * i)) for i in range(1, 41)]
    assert statistics.fmean(measured) == pytest.approx(old_ranker.error_rate, abs=0.005)
    assert run(world.metrics.query("error_rate", "ranker", "6.0", 30, 30.0)) is None  # ranker at 0%
    # The crossing slice is slower too.
    assert old_ranker.latency_quantile(0.99) > world.version_model("embedder", "2.4").latency_quantile(0.99)
    # The embedder itself is fine: the features it meets are 7, which both versions read.
    assert world.version_model("embedder", "3.0").incompatible == 0.0


def test_lockstep_on_one_cohort_has_no_crossing_and_separate_cohorts_do() -> None:
    world = recsys()
    run(expose(world, "features", 100, "features"))
    run(expose(world, "embedder", 25, "group"))
    run(expose(world, "ranker", 25, "group"))
    for version in ("5.0", "6.0"):
        m = world.version_model("ranker", version)
        assert m.incompatible == 0.0
        assert m.error_rate < 0.01
    run(expose(world, "ranker", 25, "other"))
    assert world.version_model("ranker", "6.0").incompatible == pytest.approx(0.75)
    assert world.version_model("ranker", "5.0").incompatible == pytest.approx(0.25)
    # Same cohort, nested: the new ranker's users are a subset of the new embedder's.
    run(expose(world, "embedder", 50, "group"))
    run(expose(world, "ranker", 25, "group"))
    assert world.version_model("ranker", "6.0").incompatible == 0.0
    assert world.version_model("ranker", "5.0").incompatible == pytest.approx((0.5 - 0.25) / 0.75)
    # The edge of an empty bucket range: ranker at 0% on the cohort sees the embedder's edge.
    run(expose(world, "ranker", 0, "group"))
    assert world.version_model("ranker", "6.0").incompatible == 0.0
    run(expose(world, "embedder", 100, "group"))
    run(expose(world, "ranker", 100, "group"))
    assert world.version_model("ranker", "5.0").incompatible == 1.0


def test_independent_producers_combine_and_shared_cohorts_nest() -> None:
    plan = Plan.model_validate({"rollout": "r", "services": {
        "p1": {"from": {"version": "1", "produces": {"a": 1}}, "to": {"version": "2", "produces": {"a": 2}}},
        "p2": {"from": {"version": "1", "produces": {"b": 1}}, "to": {"version": "2", "produces": {"b": 2}}},
        "c": {"depends_on": ["p1", "p2"], "from": {"version": "1", "consumes": {"a": [1], "b": [1]}}},
    }})
    world = SimWorld(plan, None, seed=1)
    run(world.flags.set_rollout("p1", 20, "k1"))
    run(world.flags.set_rollout("p2", 50, "k2"))
    assert world.version_model("c", "1").incompatible == pytest.approx(1 - 0.8 * 0.5)
    run(world.flags.set_rollout("p1", 20, "k"))
    run(world.flags.set_rollout("p2", 50, "k"))
    assert world.version_model("c", "1").incompatible == pytest.approx(0.5)


def test_errors_cascade_downstream() -> None:
    world = recsys()
    run(world.faults.inject({"kind": "error_rate", "service": "features", "version": "old", "value": 0.2}, 0))
    features = world.version_model("features", "3.1").error_rate
    embedder = world.version_model("embedder", "2.4").error_rate
    ranker = world.version_model("ranker", "5.0").error_rate
    api = world.version_model("api", "1.9").error_rate
    assert features == 0.2
    assert embedder == pytest.approx(0.001 + 0.5 * features)
    assert ranker == pytest.approx(0.001 + 0.5 * embedder)
    assert api == pytest.approx(0.001 + 0.5 * ranker)
    values = [run(world.metrics.query("error_rate", "api", "1.9", 30, 30.0 * i)) for i in range(1, 21)]
    assert statistics.fmean(values) == pytest.approx(api, abs=0.003)


# --- faults -----------------------------------------------------------------------


def test_model_faults_take_effect_and_clear_undoes_exactly_them() -> None:
    world = recsys()
    run(expose(world, "features", 100, "f"))
    run(expose(world, "embedder", 50, "e"))
    before = {(s, v): world.version_model(s, v) for s in ("embedder", "ranker") for v in ("old", "new")}
    faults = [
        {"kind": "error_rate", "service": "embedder", "version": "new", "value": 0.05},
        {"kind": "latency", "service": "embedder", "version": "new", "add_ms": 100},
        {"kind": "latency", "service": "embedder", "version": "3.0", "multiply": 2},
        {"kind": "prediction_drift", "service": "embedder", "version": "new", "shift": 0.3},
    ]
    for fault in faults:
        run(world.faults.inject(fault, 10))
    assert world.faults.active == faults
    new = world.version_model("embedder", "3.0")
    assert new.error_rate == pytest.approx(0.05 + 0.5 * 0.001)
    assert new.components[0].latency_ms == pytest.approx((50 + 100) * 2)
    assert new.components[0].prediction_mean == pytest.approx(0.8)
    assert world.version_model("embedder", "2.4") == before[("embedder", "old")]
    psi = run(world.metrics.query("prediction_psi", "embedder", "3.0", 30, 40))
    assert psi > 0.5
    run(world.faults.clear(faults[1], 20))
    assert world.version_model("embedder", "3.0").components[0].latency_ms == pytest.approx(100)
    for fault in (faults[0], faults[2], faults[3]):
        run(world.faults.clear(fault, 20))
    assert world.faults.active == []
    assert {(s, v): world.version_model(s, v) for s, v in before} == before


def test_schema_break_degrades_consumers_and_cascades() -> None:
    world = recsys()
    run(expose(world, "features", 40, "f"))
    fault = {"kind": "schema_break", "service": "features", "version": "new", "contract": "features", "produces": 8}
    run(world.faults.inject(fault, 5))
    # Neither embedder reads features 8: 40% of both embedders' traffic degrades.
    assert world.version_model("embedder", "2.4").incompatible == pytest.approx(0.4)
    embedder = world.version_model("embedder", "2.4").error_rate
    assert embedder == pytest.approx(0.001 + 0.3 * 0.4 + 0.5 * 0.001)
    assert world.version_model("ranker", "5.0").error_rate == pytest.approx(0.001 + 0.5 * embedder)
    run(world.faults.clear(fault, 6))
    assert world.version_model("embedder", "2.4").incompatible == 0.0


def test_flag_router_and_metrics_outages() -> None:
    world = recsys()
    run(world.flags.set_rollout("ranker", 30, "r"))
    outages = [{"kind": "flag_service_outage", "duration": "2m"}, {"kind": "router_timeout"},
               {"kind": "metrics_outage"}]
    for fault in outages:
        run(world.faults.inject(fault, 1))
    with pytest.raises(AdapterError):
        run(world.flags.set_rollout("ranker", 50, "r"))
    with pytest.raises(AdapterError):
        run(world.flags.get_rollout("ranker"))
    with pytest.raises(AdapterError, match="timed out"):
        run(world.router.set_weight("embedder", 5))
    with pytest.raises(AdapterError, match="timed out"):
        run(world.router.get_weight("embedder"))
    assert run(world.metrics.query("error_rate", "ranker", "5.0", 30, 30)) is None
    assert run(world.metrics.histogram("ranker", "5.0", 30, 30)) is None
    for fault in outages:
        run(world.faults.clear(fault, 2))
    run(world.flags.set_rollout("ranker", 50, "r"))
    assert run(world.flags.get_rollout("ranker")) == 50
    run(world.router.set_weight("embedder", 5))
    assert run(world.metrics.query("requests", "ranker", "5.0", 30, 30)) == 3000


def test_slow_adapter_delays_flag_and_router_calls_in_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    world = recsys()
    fault = {"kind": "slow_adapter", "delay_s": 0.05}
    run(world.faults.inject(fault, 0))
    start = time.perf_counter()
    run(world.flags.get_rollout("ranker"))
    assert time.perf_counter() - start >= 0.045
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", record)
    run(world.router.set_weight("embedder", 1))
    run(world.flags.set_rollout("ranker", 1, "r"))
    assert slept == [0.05, 0.05]
    run(world.faults.clear(fault, 0))
    run(world.router.get_weight("embedder"))
    assert slept == [0.05, 0.05]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "earthquake"},
        {"kind": "error_rate", "service": "nope", "value": 0.1},
        {"kind": "error_rate", "service": "ranker", "version": "9.9", "value": 0.1},
        {"kind": "error_rate", "service": "ranker", "value": 2},
        {"kind": "error_rate", "service": "ranker"},
        {"kind": "latency", "service": "ranker"},
        {"kind": "schema_break", "service": "features", "contract": "features", "produces": "x"},
        {"kind": "slow_adapter"},
    ],
)
def test_bad_faults_are_adapter_errors(fault: dict[str, Any]) -> None:
    world = recsys()
    with pytest.raises(AdapterError):
        run(world.faults.inject(fault, 0))
    with pytest.raises(AdapterError):
        run(world.faults.clear(fault, 0))
    assert world.faults.active == []


# --- metrics edge cases -----------------------------------------------------------


def test_zero_traffic_is_no_data_and_unknown_names_are_errors() -> None:
    world = recsys()
    for metric in ("error_rate", "latency_p99", "latency_p50", "prediction_psi", "requests"):
        assert run(world.metrics.query(metric, "ranker", "6.0", 30, 30)) is None
    assert run(world.metrics.histogram("ranker", "6.0", 30, 30)) is None
    run(world.flags.set_rollout("ranker", 100, "r"))
    assert run(world.metrics.query("error_rate", "ranker", "5.0", 30, 30)) is None
    assert run(world.metrics.query("requests", "ranker", "6.0", 30, 30)) == 6000
    # With no baseline traffic, drift is judged against a reference sample of the old version.
    assert run(world.metrics.query("prediction_psi", "features", "3.2", 30, 30)) is None
    run(world.flags.set_rollout("features-v32", 100, "f"))
    assert run(world.metrics.query("prediction_psi", "features", "3.2", 30, 30)) < 0.05
    # ...and the new ranker, meeting embeddings 2 it cannot read, has drifted.
    assert run(world.metrics.query("prediction_psi", "ranker", "6.0", 30, 30)) > 1.0
    for args in (("p95", "ranker", "6.0"), ("error_rate", "nope", "1"), ("error_rate", "ranker", "7.0")):
        with pytest.raises(AdapterError):
            run(world.metrics.query(*args, 30, 30))
    static = Plan.model_validate({"rollout": "r", "services": {"s": {"from": {"version": "1"}}}})
    with pytest.raises(AdapterError):
        run(SimWorld(static, None, seed=1).metrics.query("error_rate", "s", "new", 30, 30))


# --- persistence ------------------------------------------------------------------


def test_state_survives_a_new_world_and_faults_do_not(tmp_path: Path) -> None:
    path = tmp_path / "state" / "world.json"
    first = recsys(state_path=path)
    run(first.flags.set_rollout("embedder-v3", 25, "group"))
    run(first.router.set_weight("embedder", 30))
    run(first.faults.inject({"kind": "metrics_outage"}, 0))
    # A change is one appended line, not the whole state written again.
    log = path.with_name("world.json.log")
    assert [p.name for p in path.parent.iterdir()] == ["world.json.log"]
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"flag": "embedder-v3", "percent": 25.0, "cohort": "group"},
        {"route": "embedder", "percent": 30.0},
    ]

    second = recsys(state_path=path)  # as after a SIGKILL: the log is all there is
    assert run(second.flags.get_rollout("embedder-v3")) == 25.0
    assert run(second.router.get_weight("embedder")) == 30.0
    assert second.flags.cohort("embedder-v3") == "group"
    assert second.faults.active == []
    assert second.canary_fraction("embedder") == 0.25

    run(second.flags.set_rollout("embedder-v3", 50, "group"))
    second.save()  # the whole state, and the log starts again
    saved = json.loads(path.read_text())
    assert saved["flags"]["embedder-v3"] == {"percent": 50.0, "cohort": "group"}
    assert saved["routes"] == {"embedder": 30.0}
    assert [p.name for p in path.parent.iterdir()] == ["world.json"]
    with open(log, "a") as torn:
        torn.write('{"route": "embedder", "percent": 40.0}\n{"flag": "embed')  # killed mid-write
    third = recsys(state_path=path)
    assert run(third.router.get_weight("embedder")) == 40.0
    assert run(third.flags.get_rollout("embedder-v3")) == 50.0


def test_the_log_is_compacted_so_a_change_costs_a_line(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    world = recsys(state_path=path)
    for i in range(1, 201):
        run(world.flags.set_rollout("ranker", i / 2, "r"))
    lines = path.with_name("world.json.log").read_text().splitlines()
    assert 0 < len(lines) <= 64
    assert json.loads(path.read_text())["flags"]["ranker"]["percent"] < 100.0
    assert run(recsys(state_path=path).flags.get_rollout("ranker")) == 100.0

    path.write_text("{not json")
    with pytest.raises(AdapterError, match="state file"):
        recsys(state_path=path)


# --- requests served while bad ----------------------------------------------------


class FakeClock:
    virtual, speed = True, math.inf

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)


def test_bad_requests_integrate_exposure_over_time() -> None:
    clock = FakeClock()
    world = recsys(clock=clock)
    run(expose(world, "features", 100, "f"))
    clock.t = 100.0
    run(world.faults.inject({"kind": "error_rate", "service": "embedder", "version": "new", "value": 0.1}, 100))
    run(expose(world, "embedder", 25, "e"))
    clock.t = 200.0
    run(expose(world, "embedder", 0, "e"))
    # 100 s at 25% of 200 rps on a faulted version; the old ranker also crossed it.
    assert world.bad_requests(0, 1000, "embedder") == pytest.approx(200 * 0.25 * 100)
    assert world.bad_requests(150, 1000, "embedder") == pytest.approx(200 * 0.25 * 50)
    assert world.bad_requests(0, 1000, "ranker") == pytest.approx(200 * 0.25 * 100)
    assert world.bad_requests(0, 1000, "features") == 0.0
    assert world.bad_requests(0, 1000) == pytest.approx(3 * 200 * 0.25 * 100)


def test_a_version_the_plan_makes_worse_counts_as_bad_and_a_better_one_does_not() -> None:
    worse, better = one_service(to={"error_rate": 0.02}), one_service(to={"latency_ms": 30.0})
    for world in (worse, better):
        run(world.flags.set_rollout("svc", 50, "c"))
    assert worse.bad_rates() == {"svc": pytest.approx(100.0)}
    assert better.bad_rates() == {"svc": 0.0}


def test_exposure_changes_rebuild_only_what_they_reach_and_match_a_whole_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Random flag, route and fault changes on a generated 60-service layered plan: after
    each one the incrementally kept models equal a rebuild from scratch, and a change
    rebuilds only the services it moves and their consumers."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "tui"))
    from console_plans import generated_plan

    plan = Plan.model_validate(yaml.safe_load(generated_plan(60, seed=3)))
    world = SimWorld(plan, None, seed=1)
    rng = random.Random(5)
    flags, routes = sorted(world._flags), sorted(world._routes)
    rebuilt: list[int] = []
    original, recompute = model.propagate, model.recompute

    def counting(nodes: Any, previous: Any = None, redo: Any = None) -> Any:
        rebuilt.append(len(nodes) if redo is None else len(redo))
        return original(nodes, previous, redo)

    def counting_one(nodes: Any, models: Any, name: str) -> bool:
        rebuilt[-1] += 1
        return recompute(nodes, models, name)

    monkeypatch.setattr(model, "propagate", counting)
    monkeypatch.setattr(model, "recompute", counting_one)
    for step in range(120):
        rebuilt.append(0)
        roll = rng.random()
        if roll < 0.6 and flags:
            percent = rng.choice([0, 1, 5, 25, 50, 100])
            run(world.flags.set_rollout(rng.choice(flags), percent, f"c{rng.randrange(3)}"))
        elif roll < 0.9 and routes:
            run(world.router.set_weight(rng.choice(routes), rng.choice([0, 10, 50, 100])))
        else:
            service = rng.choice([n for n, s in plan.services.items() if s.moves])
            fault = {"kind": "error_rate", "service": service, "value": 0.2}
            if fault in world.active_faults:
                run(world.faults.clear(fault, at=float(step)))
            else:
                run(world.faults.inject(fault, at=float(step)))
        incremental = world._model()
        whole = original([world._node(name) for name in world._order])
        assert incremental == whole, f"step {step}"
        rates = {}
        for name in world._order:
            f = world.canary_fraction(name)
            rate = (1.0 - f) * whole[(name, "old")].bad + (f * whole[(name, "new")].bad if (name, "new") in whole else 0)
            rates[name] = world._rps(name) * rate
        assert world.bad_rates() == rates, f"step {step}"
    rebuilt = [n for n in rebuilt if n]
    assert sorted(rebuilt)[len(rebuilt) // 2] < 60 / 2  # most changes reach a part of the plan, not all of it


def test_exposure_changes_at_one_moment_are_computed_together_with_the_same_bad_traffic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flag and route changes wait for the models to be asked for (a round of commands sets
    several at once): the bad-traffic timeline and the rates must come out exactly as when
    every change is computed on its own, with faults and moments interleaved."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "tui"))
    from console_plans import generated_plan

    plan = Plan.model_validate(yaml.safe_load(generated_plan(60, seed=4)))
    clocks = FakeClock(), FakeClock()
    lazy, eager = (SimWorld(plan, None, seed=1, clock=clock) for clock in clocks)
    flags, routes = sorted(lazy._flags), sorted(lazy._routes)
    moving = [n for n, s in plan.services.items() if s.moves]
    rng = random.Random(9)
    for step in range(150):
        if rng.random() < 0.3:
            step_s = rng.choice([1.0, 30.0])
            for clock in clocks:
                clock.t += step_s
        roll = rng.random()
        for world in (lazy, eager):
            r = random.Random(step)
            if roll < 0.6 and flags:
                run(world.flags.set_rollout(r.choice(flags), r.choice([0, 1, 5, 25, 50, 100]), f"c{r.randrange(3)}"))
            elif roll < 0.9 and routes:
                run(world.router.set_weight(r.choice(routes), r.choice([0, 10, 50, 100])))
            else:
                fault = {"kind": "error_rate", "service": r.choice(moving), "value": 0.2}
                act = world.faults.clear if fault in world.active_faults else world.faults.inject
                run(act(fault, at=clocks[0].t))
        eager.bad_rates()  # computes every change on its own
        assert lazy._deferred is None or lazy._deferred == clocks[0].t
    for since, until in ((0.0, 1e9), (100.0, 900.0), (clocks[0].t / 2, clocks[0].t)):
        assert lazy.bad_requests(since, until) == eager.bad_requests(since, until)
        for name in moving[:10]:
            assert lazy.bad_requests(since, until, name) == eager.bad_requests(since, until, name)
    assert lazy.bad_rates() == eager.bad_rates()
    assert lazy._model() == eager._model()
