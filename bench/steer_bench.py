"""Steering from another terminal (issue 13): request → answer, on SQLite and PostgreSQL.

A driver process runs `interlock run PLAN --headless --speed 60` (approval at each stage,
so it waits for people); this process then asks it to pause and resume, alternately, and
times each request from sending it to reading the driver's answer (`steering.ask`: the
lease check, the insert, the driver's claim, the engine journaling the action, the answer).
Goal: every answer within 1 s on both backends. Also times whole `interlock pause`
processes (Python start-up included) for what a person waits.

    python bench/steer_bench.py [--requests 40] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.journals import open_journal  # noqa: E402
from tui.session.steering import ask  # noqa: E402

EXAMPLE = ROOT / "examples" / "recsys.yaml"


def _driver(spec: str, plan: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "run", str(plan), "--headless", "--speed", "60", "--journal", spec],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _wait_live(spec: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open_journal(spec, readonly=True) as journal:
                runs = journal.runs()
                if runs and journal.driver(runs[-1].run_id):
                    return runs[-1].run_id
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.05)
    raise SystemExit("the driver never started")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(name: str, spec: str, plan: Path, requests: int) -> None:
    driver = _driver(spec, plan)
    try:
        _wait_live(spec)
        times: list[float] = []
        with open_journal(spec, readonly=True) as journal:
            info = journal.runs()[-1]
            for i in range(requests):
                verb = "pause" if i % 2 == 0 else "resume"
                start = time.perf_counter()
                asked = ask(journal, info, verb, None, operator="bench@host")
                times.append(time.perf_counter() - start)
                assert asked.answer.status == "applied", asked.answer
        whole: list[float] = []
        env = {**os.environ, "INTERLOCK_JOURNAL": spec}
        for i in range(4):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tui.cli.main", "pause" if i % 2 == 0 else "resume"],
                           cwd=ROOT, env=env, check=True, capture_output=True)
            whole.append(time.perf_counter() - start)
        ms = [t * 1000 for t in times]
        print(f"{name:<10} request→answer over {requests}: median {statistics.median(ms):.0f} ms, "
              f"p95 {_pct(ms, 0.95):.0f} ms, max {max(ms):.0f} ms; whole `interlock pause|resume` process: "
              f"median {statistics.median(whole) * 1000:.0f} ms")
    finally:
        driver.kill()
        driver.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="interlock-steer-"))
    base.chmod(0o711)
    plan = base / "approve.yaml"
    plan.write_text(EXAMPLE.read_text().replace("approval: none ", "approval: each_stage "))
    try:
        if args.backend in ("sqlite", "both"):
            measure("sqlite", str(base / "journal.db"), plan, args.requests)
        if args.backend in ("postgres", "both"):
            from adapters.stack.postgres import start_postgres

            server = start_postgres(base / "pg")
            try:
                measure("postgres", server.url, plan, args.requests)
            finally:
                server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
