"""Crash safety: SIGKILL a real `interlock run` mid-flight, resume it, and compare.

Each resumed run must end exactly as an uninterrupted run with the same seed:
the same events in the same order (apart from the `resumed` marker and the
reconciling read-back that a restart adds), none lost, none written twice.
Kills land at random journal positions, chosen by polling the journal, so
they hit every part of the run rather than only its start.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED = 11
KILLS_PER_PLAN = 12
PLANS = {
    "recsys.yaml": 0,  # completes: exit 0
    "recsys-regression.yaml": 1,  # rolls back along the graph: exit 1
}


def _cli(*args: str, journal: Path) -> list[str]:
    return [sys.executable, "-m", "tui.cli.main", *args, "--journal", str(journal)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _events(journal: Path) -> list[tuple[int, dict]]:
    db = sqlite3.connect(journal)
    try:
        rows = db.execute("SELECT seq, body FROM records ORDER BY run_id, seq").fetchall()
    finally:
        db.close()
    return [(seq, json.loads(body)) for seq, body in rows]


def _comparable(events: list[tuple[int, dict]]) -> list[dict]:
    out = []
    for _, body in events:
        if body["kind"] == "resumed":
            continue
        if body["kind"] == "exposure_read" and body["cmd_id"] == 0:
            continue
        out.append(body)
    return out


def _count(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=0.05)
        try:
            return db.execute("SELECT count(*) FROM records").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _reference(plan: Path, journal: Path, exit_code: int) -> list[dict]:
    done = subprocess.run(
        _cli("run", str(plan), "--headless", "--seed", str(SEED), journal=journal),
        env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == exit_code, done.stderr
    events = _events(journal)
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    return _comparable(events)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_sigkill_at_random_moments_then_resume_ends_like_an_uninterrupted_run(
    name: str, tmp_path: Path
) -> None:
    plan, exit_code = REPO / "examples" / name, PLANS[name]
    reference = _reference(plan, tmp_path / "reference.db", exit_code)
    rng = random.Random(f"{name}-2026")
    total = len(reference)
    assert total > 100
    mid_run_kills = 0
    for attempt in range(KILLS_PER_PLAN):
        journal = tmp_path / f"j{attempt}" / "journal.db"
        journal.parent.mkdir()
        target = rng.randint(1, total - 1)
        proc = subprocess.Popen(
            _cli("run", str(plan), "--headless", "--seed", str(SEED), journal=journal),
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and _count(journal) < target and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        killed_at = _count(journal)
        if proc.returncode != -signal.SIGKILL or killed_at >= total:
            continue  # finished before the kill landed; nothing to resume
        mid_run_kills += 1
        resumed = subprocess.run(
            _cli("resume", "--headless", journal=journal),
            env=_env(), capture_output=True, text=True, timeout=120,
        )
        assert resumed.returncode == exit_code, (attempt, killed_at, resumed.stderr)
        events = _events(journal)
        seqs = [seq for seq, _ in events]
        assert seqs == list(range(1, len(events) + 1)), f"gap or duplicate after kill at {killed_at}"
        assert _comparable(events) == reference, f"diverged after a kill at record {killed_at}"
    assert mid_run_kills >= KILLS_PER_PLAN - 2, f"only {mid_run_kills} kills landed mid-run"
