"""How long `compile_plan` takes on a large layered plan (never asserted in tests).

The plan: layers of ~100 services, each depending on 1–3 services of the layer
before, with per-edge contracts chosen so that forced (both ways), free and
lockstep edges all occur, and a few static services. Run:

    python bench/compile_bench.py [--services 10000] [--layer 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.order import classify, compile_plan  # noqa: E402
from core.plan import Plan  # noqa: E402

# consumer's (from, to) lists for the producer's contract, which goes 1 → 2
_STYLES = {
    "producer_first": ([1, 2], [2]),
    "consumer_first": ([1], [1, 2]),
    "lockstep": ([1], [2]),
    "free": ([1, 2], [1, 2]),
}
_WEIGHTS = {"producer_first": 60, "consumer_first": 8, "lockstep": 4, "free": 28}


def layered_plan(services: int, layer: int, seed: int) -> Plan:
    return Plan.model_validate({"rollout": "bench", "services": layered_services(services, layer, seed)})


def layered_services(services: int, layer: int, seed: int) -> dict[str, dict[str, object]]:
    """The `services:` mapping of the generated plan (plain data, ready for YAML)."""
    rng = random.Random(seed)
    names = [f"s{i:05d}" for i in range(services)]
    static = {name for name in names if rng.random() < 0.05}
    doc: dict[str, dict[str, object]] = {}
    for i, name in enumerate(names):
        depth = i // layer
        deps = []
        if depth:
            previous = names[(depth - 1) * layer : depth * layer]
            deps = rng.sample(previous, rng.randint(1, 3))
        src: dict[str, object] = {"version": "1", "produces": {name: 1}, "consumes": {}}
        dst: dict[str, object] = {"version": "2", "produces": {name: 2}, "consumes": {}}
        for dep in deps:
            if rng.random() < 0.2:
                continue  # no contract on this edge
            if dep in static:
                old, new = [1, 2], [1, 2]
            elif name in static:
                old, new = [1, 2], [1, 2]
            else:
                style = rng.choices(list(_WEIGHTS), weights=list(_WEIGHTS.values()))[0]
                old, new = _STYLES[style]
            src["consumes"][dep] = old  # type: ignore[index]
            dst["consumes"][dep] = new  # type: ignore[index]
        entry: dict[str, object] = {"depends_on": deps, "from": src}
        if name not in static:
            entry["to"] = dst
        doc[name] = entry
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--layer", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    plan = layered_plan(args.services, args.layer, args.seed)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        graph = compile_plan(plan)
        times.append(time.perf_counter() - start)

    kinds: Counter[str] = Counter()
    for name, service in plan.services.items():
        for dep in service.depends_on:
            if service.moves and plan.services[dep].moves:
                kinds[classify(plan, dep, name)] += 1
    reasons = Counter(p.reason for p in graph.precedence)
    sizes = Counter(len(g) for g in graph.groups)
    edges = sum(len(s.depends_on) for s in plan.services.values())
    start = time.perf_counter()
    radius = sum(len(graph.blast_radius[name]) for name in graph.moving)
    decode = time.perf_counter() - start

    print(f"plan: {len(plan.services)} services ({len(graph.static)} static), {edges} edges")
    print(f"edges between moving services: {dict(sorted(kinds.items()))}")
    print(f"groups: {len(graph.groups)}, lockstep: {len(graph.lockstep)}, "
          f"sizes {dict(sorted(sizes.items()))}")
    print(f"waves: {len(graph.waves)}, precedence: {dict(sorted(reasons.items()))}")
    print(f"compile_plan over {args.runs} runs: best {min(times) * 1000:.1f} ms, "
          f"median {statistics.median(times) * 1000:.1f} ms")
    print(f"decoding every moving service's blast radius afterwards: {decode * 1000:.1f} ms "
          f"({radius} names in all)")


if __name__ == "__main__":
    main()
