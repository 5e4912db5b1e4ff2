"""Whole rollouts of the stack plan against the real servers, on the real clock at speed 1.

Flags live in Unleash, routes in HAProxy, metrics come from Prometheus
scraping the simulated services, and the load generator's traffic really goes
through HAProxy. What the tests check is read back from the servers, never
from interlock's own state."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from stackrun import (
    FLAGS, ROUTES, cli, cli_env, events, fast_plan, group_stage, inject, read_back, reset, run_engine, served,
    shared_stack, stop_shared, wait_state,
)


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def test_a_full_rollout_of_the_stack_plan_completes(real_stack: Stack, tmp_path: Path) -> None:
    reset(real_stack)
    plan = fast_plan(real_stack, tmp_path)
    journal = tmp_path / "journal.db"
    done = cli("run", str(plan), "--headless", "--json", "--speed", "1", "--journal", str(journal),
               env=cli_env(real_stack))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])["summary"]
    assert summary["phase"] == "completed"
    assert {name: s["exposure"] for name, s in summary["services"].items()} == {
        "features": 100, "embedder": 100, "ranker": 100, "api": 100}
    assert read_back(real_stack) == {**{f"flag:{f}": 100.0 for f in FLAGS}, **{f"route:{r}": 100.0 for r in ROUTES}}

    recorded = events(journal)
    assert not [e for e in recorded if e["kind"] == "command_failed"]
    judged = {(e["service"], e["gate"]) for e in recorded if e["kind"] == "measured" and e["value"] is not None}
    assert {("features", "errors"), ("embedder", "latency"), ("ranker", "errors"), ("ranker", "drift"),
            ("api", "errors")} <= judged  # every gate was judged on real data from Prometheus

    # the traffic really moved: now only the new versions answer (through HAProxy, or the flag)
    before = served(real_stack)
    time.sleep(1.5)
    after = served(real_stack)
    new = {"features": "3.2", "embedder": "3.0", "ranker": "6.0", "api": "2.0"}
    old = {"features": "3.1", "embedder": "2.4", "ranker": "5.0", "api": "1.9"}
    for service in new:
        assert after[(service, new[service])] - before[(service, new[service])] > 20, service
        assert after[(service, old[service])] == before[(service, old[service])], service


def test_a_regression_in_the_ranker_canary_rolls_back_along_the_graph(real_stack: Stack, tmp_path: Path) -> None:
    reset(real_stack)

    def long_bake(doc: dict) -> None:
        for name in ("embedder", "ranker"):
            doc["services"][name]["bake"] = "60s"

    plan = fast_plan(real_stack, tmp_path, edit=long_bake)
    journal = tmp_path / "journal.db"
    injected: list[float] = []

    async def regress(session: object) -> None:
        await wait_state(session, lambda s: group_stage(s, "ranker") == ("baking", 0))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(inject, real_stack, {"kind": "error_rate", "service": "ranker", "value": 0.5})
        injected.append(time.time())

    state, _ = run_engine(plan, journal, real_stack, during=regress)
    assert injected, "the fault was never injected"
    assert state.phase == "rolled_back", state.reason
    assert "gate errors on ranker failed" in state.reason
    assert {n: s.phase for n, s in state.services.items()} == {
        "features": "promoted", "embedder": "rolled_back", "ranker": "rolled_back", "api": "waiting"}

    read = read_back(real_stack)
    assert read == {"flag:features-v32": 100.0, "flag:embedder-v3": 0.0, "flag:ranker-v6": 0.0,
                    "route:embedder": 0.0, "route:ranker": 0.0, "route:api": 0.0}

    recorded = events(journal)
    errors = [e for e in recorded if e["kind"] == "measured" and e["service"] == "ranker" and e["gate"] == "errors"]
    bad = [e for e in errors if e["value"] is not None and e["value"] > 0.1]
    assert bad and bad[0]["at"] > injected[0]  # the fault, not noise before it, failed the gate
    assert bad[0]["at"] - injected[0] < 5.0
    zero = [e for e in recorded if e["kind"] == "exposure_applied" and e["percent"] == 0.0]
    assert {e["service"] for e in zero} == {"embedder", "ranker"}
