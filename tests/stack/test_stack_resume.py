"""Kill and resume on the real stack: a SIGKILLed `interlock run` leaves Unleash and HAProxy
as they were; `interlock resume` reads them back, and goes on when they agree with the
journal, or holds for the operator when someone changed a weight by hand meanwhile."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from adapters.haproxy import HAProxyRouter
from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from stackrun import (
    FLAGS, REPO, ROUTES, cli, cli_env, events, fast_plan, read_back, reset, resume_until_held, shared_stack,
    stop_shared,
)


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def run_until_lockstep_moved(stack: Stack, plan: Path, journal: Path) -> None:
    """Start `interlock run` and SIGKILL it once embedder and ranker are both at their first stage."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "run", str(plan), "--headless", "--speed", "1", "--journal", str(journal)],
        cwd=REPO, env=cli_env(stack), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    try:
        while True:
            applied = {e["service"] for e in events(journal) if e["kind"] == "exposure_applied" and e["percent"] == 50}
            if {"embedder", "ranker"} <= applied:
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the lockstep group never reached its first stage"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_then_resume_reconciles_flags_and_weights_read_from_the_servers(
    real_stack: Stack, tmp_path: Path
) -> None:
    reset(real_stack)
    plan, journal = fast_plan(real_stack, tmp_path), tmp_path / "journal.db"
    run_until_lockstep_moved(real_stack, plan, journal)
    left = read_back(real_stack)
    assert left == {"flag:features-v32": 100.0, "flag:embedder-v3": 50.0, "flag:ranker-v6": 50.0,
                    "route:embedder": 50.0, "route:ranker": 50.0, "route:api": 0.0}
    killed_at = len(events(journal))

    resumed = cli("resume", "--headless", "--json", "--journal", str(journal), env=cli_env(real_stack))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
    # A bake the dead process could not measure is journaled first (`measurement_gap`, when
    # the downtime outlasts three gate intervals): the bake starts over, which is not this test's point.
    after = [e for e in events(journal)[killed_at:] if e["kind"] != "measurement_gap"]
    assert after[0]["kind"] == "resumed"
    reconcile = after[1]
    assert reconcile["kind"] == "exposure_read" and reconcile["cmd_id"] == 0 and reconcile["error"] is None
    assert reconcile["exposures"] == {"features": 100.0, "embedder": 50.0, "ranker": 50.0, "api": 0.0}
    assert not [e for e in after if e["kind"] == "command_failed"]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])["summary"]
    assert summary["phase"] == "completed"
    assert read_back(real_stack) == {**{f"flag:{f}": 100.0 for f in FLAGS}, **{f"route:{r}": 100.0 for r in ROUTES}}


def test_a_weight_changed_by_hand_while_down_makes_resume_hold_for_the_operator(
    real_stack: Stack, tmp_path: Path
) -> None:
    reset(real_stack)
    plan, journal = fast_plan(real_stack, tmp_path), tmp_path / "journal.db"
    run_until_lockstep_moved(real_stack, plan, journal)
    asyncio.run(HAProxyRouter(real_stack.urls["haproxy_admin"]).set_weight("ranker", 7))

    code, out, err = resume_until_held(real_stack, journal, "route ranker reads 7% (journal 50%)")
    assert code == 3, out[-3000:] + err  # waiting for the operator, then Ctrl-C: resumable
    assert "state differs from the journal: route ranker reads 7% (journal 50%)" in out
    assert "held" in out
    # nothing was forced back or moved on: the servers read exactly as they were left
    assert read_back(real_stack) == {"flag:features-v32": 100.0, "flag:embedder-v3": 50.0, "flag:ranker-v6": 50.0,
                                     "route:embedder": 50.0, "route:ranker": 7.0, "route:api": 0.0}
