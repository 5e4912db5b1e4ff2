"""Corpus benchmark: plans as a newcomer writes them, run over many seeds.

A newcomer copies the README: a random dependency graph of 4–10 services, the
README's gates (`errors` and `latency`) as the defaults, the default stages and
bake, and no `sim:` tuning at all (the simulated world's defaults). Each plan is
run twice in the simulated world on a virtual clock (a durable SQLite journal on
tmpfs, exactly what `interlock run --headless` does):

* healthy — the old and new versions behave identically: every rollback is false;
* regressed — one random moving service's new version errs at 5% (0.1% before),
  or answers twice as slowly: the rollout must roll back, and the rollback's
  reason must name that service.

Time to detect is from the first moment the regressed service's canary takes
traffic to the rollback. Goals (issue 15): healthy plans roll back at most 1%;
a regression is caught in at least 99% of rollouts and the rollback names it.

    python bench/newcomer.py [--plans 200] [--seed 1] [--gates readme|legacy]

`--gates legacy` runs the README gates as they were before issue 15 (an
Argo threshold on the error rate, the ratio of two p99s for latency) to
reproduce the false rollbacks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tui.session.runtime import start_run  # noqa: E402

README_GATES: dict[str, dict[str, Any]] = {
    "errors": {"metric": "error_rate", "compare": "baseline", "max_increase": "100%"},
    "latency": {"metric": "latency_p99", "compare": "baseline", "max_increase": "10%"},
}
"""The gates the README recommends (issue 15): both judged against the baseline."""

LEGACY_GATES: dict[str, dict[str, Any]] = {
    "errors": {"metric": "error_rate", "max": 0.01, "interval": "30s", "count": 4, "failure_limit": 1},
    "latency": {"metric": "latency_p99", "compare": "baseline", "max_increase": "10%", "judge": "threshold"},
}
"""The README's gates before issue 15, judged as they were."""


ARGO_ERRORS_GATES: dict[str, dict[str, Any]] = {
    "errors": LEGACY_GATES["errors"],
    "latency": README_GATES["latency"],
}
"""The README's Argo-style absolute error bound beside the new latency default."""


def newcomer_plan(rng: random.Random, gates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A random plan of 4–10 services: each depends on up to two earlier ones."""
    n = rng.randint(4, 10)
    services: dict[str, Any] = {}
    for i in range(n):
        name = f"svc{i}"
        earlier = [f"svc{j}" for j in range(i)]
        deps = sorted(rng.sample(earlier, k=min(len(earlier), rng.randint(0, 2))))
        body: dict[str, Any] = {"from": {"version": "1.0"}, "to": {"version": "1.1"}}
        if deps:
            body["depends_on"] = deps
        services[name] = body
    return {
        "rollout": f"newcomer-{n}",
        "environment": "sim",
        "policy": {"max_parallel": 2, "on_failure": "rollback_dependents"},
        "defaults": {"gates": list(gates)},
        "gates": gates,
        "services": services,
    }


def regress(plan: dict[str, Any], rng: random.Random, kind: str) -> str:
    """Make one random service's new version bad; returns its name."""
    name = rng.choice(sorted(plan["services"]))
    to = {"error_rate": 0.05} if kind == "errors" else {"latency_ms": 100.0}
    plan["services"][name]["sim"] = {"to": to}
    return name


def run_plan(plan: dict[str, Any], seed: int, tmp: Path) -> tuple[Any, Any]:
    """(final state, the session's journal events) of one virtual-clock run."""
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    journal = tmp / "j.db"
    for stale in tmp.glob("j.db*"):
        stale.unlink()
    session = start_run(path, journal_path=journal, seed=seed)
    state = asyncio.run(session.engine.run())
    events = [r.event for r in session.journal.records(session.info.run_id)]
    session.journal.close()
    return state, events


def _exposed_at(events: list[Any], service: str) -> float | None:
    from core.events import ExposureApplied

    for e in events:
        if isinstance(e, ExposureApplied) and e.service == service and e.percent > 0:
            return e.at
    return None


def _rolled_back_at(events: list[Any], state_phases: list[tuple[float, str]]) -> float | None:
    for at, phase in state_phases:
        if phase == "rolling_back":
            return at
    return None


def _first_rollback(plan_path: Path, events: list[Any]) -> tuple[float | None, str]:
    from core.context import initial_state
    from core.reducer import reduce
    from tui.session.runtime import compile_text

    plan, graph = compile_text(plan_path.read_text(), str(plan_path))
    state = initial_state(plan, graph)
    for e in events:
        state, _ = reduce(state, e)
        if state.phase == "rolling_back":
            return e.at, state.reason
    return None, ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gates", choices=("readme", "legacy", "argo-errors"), default="readme")
    parser.add_argument("--only", choices=("healthy", "errors", "latency"), default=None)
    args = parser.parse_args(argv)
    gates = {"readme": README_GATES, "legacy": LEGACY_GATES, "argo-errors": ARGO_ERRORS_GATES}[args.gates]
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    began = time.perf_counter()
    kinds = [args.only] if args.only else ["healthy", "errors", "latency"]
    with tempfile.TemporaryDirectory(dir=base, prefix="interlock-corpus-") as tmp_name:
        tmp = Path(tmp_name)
        for kind in kinds:
            false = caught = named = 0
            detect: list[float] = []
            sizes: list[int] = []
            for k in range(args.plans):
                rng = random.Random(args.seed * 1_000_003 + k)
                plan = newcomer_plan(rng, gates)
                sizes.append(len(plan["services"]))
                bad = regress(plan, rng, kind) if kind != "healthy" else None
                state, events = run_plan(plan, seed=args.seed * 10_007 + k, tmp=tmp)
                if kind == "healthy":
                    false += state.phase != "completed"
                    continue
                at, reason = _first_rollback(tmp / "plan.yaml", events)
                if at is None:
                    continue
                caught += 1
                named += f" on {bad} " in reason or f" on {bad}:" in reason
                exposed = _exposed_at(events, bad)  # type: ignore[arg-type]
                if exposed is not None:
                    detect.append(at - exposed)
            n = args.plans
            if kind == "healthy":
                print(f"healthy   {n} plans ({min(sizes)}–{max(sizes)} services): "
                      f"{false} rolled back ({false / n:.1%})")
            else:
                q = sorted(detect)
                p95 = q[min(len(q) - 1, int(0.95 * len(q)))] if q else float("nan")
                med = statistics.median(q) if q else float("nan")
                print(f"{kind:<9} {n} plans: caught {caught} ({caught / n:.1%}), rollback named the service "
                      f"{named} ({named / n:.1%}); detect median {med:.0f} s, p95 {p95:.0f} s")
    print(f"({time.perf_counter() - began:.0f} s, gates {args.gates}, seed {args.seed})")


if __name__ == "__main__":
    main()
