"""End to end on the real stack: from a regression injected into the ranker canary to every
affected HAProxy weight and Unleash rollout read back at 0%.

Each run starts a real `interlock run` of the stack plan (features straight to 100%, then
embedder+ranker in lockstep at 25% with a long bake; 1 s gate intervals; Prometheus scrapes
every 1 s), waits until the lockstep group is at 25% and its gates are measuring, waits a
random 0-1 s more (so the injection falls anywhere between scrapes and gate ticks), then
injects ``error_rate 0.5`` into the ranker's new version through the simulated services'
admin API and polls Unleash and HAProxy directly until the embedder and ranker flags and
routes all read 0.

The floor is one scrape interval plus one gate interval (the errors only become visible
after the next scrape, and are only looked at on the next gate tick); the goal is within
1.5x the floor. Nothing is asserted; the numbers are printed.

    python bench/stack_rollback.py [--runs 5] [--dir FOLDER_OF_A_RUNNING_STACK]

Without --dir it starts its own stack in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import yaml  # noqa: E402

from adapters.haproxy import HAProxyRouter  # noqa: E402
from adapters.stack import stack as stk  # noqa: E402
from adapters.unleash import UnleashFlags  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRAPE, GATE = 1.0, 1.0
AFFECTED = {"flags": ("embedder-v3", "ranker-v6"), "routes": ("embedder", "ranker")}
COHORTS = {"features-v32": "features", "embedder-v3": "embedder+ranker", "ranker-v6": "embedder+ranker"}
FAULT = {"kind": "error_rate", "service": "ranker", "version": "new", "value": 0.5}


def bench_plan(stack: stk.Stack, folder: Path) -> Path:
    doc = yaml.safe_load(stack.plan.read_text(encoding="utf-8"))
    doc["defaults"].update(stages=[25, 100], bake="60s")
    doc["services"]["features"].update(stages=[100], bake="1s")
    for gate in doc["gates"].values():
        gate["interval"] = f"{GATE:g}s"
    path = folder / "bench-plan.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def journal_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        try:
            return [json.loads(b) for (b,) in db.execute("SELECT body FROM records ORDER BY seq")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


async def reset(stack: stk.Stack, flags: UnleashFlags, router: HAProxyRouter) -> None:
    httpx.delete(f"{stack.sim_admin}/faults", timeout=5)
    for flag, cohort in COHORTS.items():
        await flags.set_rollout(flag, 0.0, cohort)
    for route in ("embedder", "ranker", "api"):
        await router.set_weight(route, 0.0)
    await asyncio.sleep(1.0)  # the simulated world polls the servers; let it see the reset


async def affected(flags: UnleashFlags, router: HAProxyRouter) -> list[float]:
    reads = [flags.get_rollout(f) for f in AFFECTED["flags"]] + [router.get_weight(r) for r in AFFECTED["routes"]]
    return list(await asyncio.gather(*reads))


async def one_run(stack: stk.Stack, plan: Path, folder: Path, index: int) -> dict[str, float]:
    flags = UnleashFlags(stack.urls["unleash"], token=stack.token)
    router = HAProxyRouter(stack.urls["haproxy_admin"])
    journal = folder / f"journal-{index}.db"
    try:
        await reset(stack, flags, router)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui.cli.main", "run", str(plan), "--headless", "--speed", "1", "--journal", str(journal)],
            cwd=REPO, env={**stack.env(), "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90
        while True:
            found = journal_events(journal)
            measuring = {e["service"] for e in found if e["kind"] == "measured" and e["value"] is not None}
            if {"embedder", "ranker"} <= measuring:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the rollout never reached the lockstep stage: {proc.stderr.read()!r}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(random.random())
        assert await affected(flags, router) == [25.0] * 4
        t0_wall, t0 = time.time(), time.monotonic()
        httpx.post(f"{stack.sim_admin}/faults", json=FAULT, timeout=5).raise_for_status()
        polls = 0
        while any(v > 0 for v in await affected(flags, router)):
            polls += 1
            if time.monotonic() - t0 > 60:
                raise RuntimeError("no rollback within 60 s")
        restore = time.monotonic() - t0
        proc.wait(60)
        recorded = journal_events(journal)
        failing = [e for e in recorded if e["kind"] == "measured" and e["service"] == "ranker"
                   and e["gate"] == "errors" and (e["value"] or 0) > 0.1]
        zeros = [e["at"] for e in recorded if e["kind"] == "exposure_applied" and e["percent"] == 0.0]
        return {"restore": restore, "detect": failing[0]["at"] - t0_wall if failing else float("nan"),
                "applied": max(zeros) - t0_wall if zeros else float("nan"), "polls": polls,
                "exit": float(proc.returncode)}
    finally:
        await flags.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="use the running stack in this folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="interlock-bench-"))
    work.chmod(0o711)
    own = args.dir is None
    if own:
        print("starting a stack (PostgreSQL, Unleash, HAProxy, sim services, Prometheus) ...", flush=True)
        stack = stk.up(work / "stack", scrape_interval=SCRAPE)
    else:
        loaded = stk.load_state(args.dir.resolve())
        if loaded is None:
            print(f"no stack in {args.dir}", file=sys.stderr)
            return 2
        stack = loaded
    try:
        plan = bench_plan(stack, work)
        rows = []
        for i in range(args.runs):
            row = asyncio.run(one_run(stack, plan, work, i))
            rows.append(row)
            print(f"run {i + 1}: restored in {row['restore']:.3f} s (gate failed at +{row['detect']:.3f} s, "
                  f"last 0% applied at +{row['applied']:.3f} s, exit {row['exit']:g})", flush=True)
    finally:
        if own:
            stk.down(stack.dir)
    floor = SCRAPE + GATE
    restore = [r["restore"] for r in rows]
    detect = [r["detect"] for r in rows]
    print(f"\nscrape interval {SCRAPE:g} s, gate interval {GATE:g} s: floor {floor:g} s, goal <= {1.5 * floor:g} s")
    print(f"time to every affected weight and rollout at 0%: median {statistics.median(restore):.3f} s "
          f"(min {min(restore):.3f}, max {max(restore):.3f}) over {len(rows)} runs "
          f"= {statistics.median(restore) / floor:.2f}x the floor")
    print(f"of which detection (injection to the failing measurement): median {statistics.median(detect):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
