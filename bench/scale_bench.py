"""How interlock's costs grow with the plan, measured from the command line (never asserted).

Every number is a whole `interlock` process on a generated YAML file, timed
from spawn to exit, with its peak RSS, so that nothing the user pays for (imports,
reading and composing YAML, validation, compile, printing, journaling) is left
out. Each curve gets its growth exponent: the least-squares slope of
log(cost) against log(services), 1 for linear, 2 for quadratic.

    python bench/scale_bench.py plan [--sizes 1000,10000,50000]
        interlock validate, plan --json --compact, plan --json and plan (text) on layered plans
    python bench/scale_bench.py run [--sizes 10,100,1000]
        interlock run --headless --json on a virtual clock: seconds and ms per event

The plans are `compile_bench.py`'s layered plans (layers of 100, 1-3
dependencies on the layer before, every kind of edge, ~5% static services),
written as YAML; `run` adds short stages and one gate so that a rollout of
1,000 services has tens of thousands of events.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compile_bench import layered_services  # noqa: E402

INTERLOCK = Path(sys.executable).with_name("interlock")

_ROLLOUT_HEAD = """\
rollout: scale-{n}
environment: sim
policy: {{max_parallel: 8, on_failure: rollback_dependents, approval: none}}
defaults: {{stages: [10, 50, 100], bake: 90s, gates: [errors]}}
gates:
  errors: {{metric: error_rate, max: 0.05, interval: 30s, count: 3, failure_limit: 1}}
services:
"""


def plan_yaml(services: int, *, rollout: bool = False, layer: int = 100, seed: int = 1) -> str:
    """The generated plan as YAML text (block style per service, flow style inside)."""
    doc = layered_services(services, layer, seed)
    head = _ROLLOUT_HEAD.format(n=services) if rollout else f"rollout: scale-{services}\nservices:\n"
    lines = [head.rstrip("\n")]
    for name, entry in doc.items():
        lines.append(f"  {name}:")
        if entry["depends_on"]:
            lines.append(f"    depends_on: {json.dumps(entry['depends_on'])}")
        for side in ("from", "to"):
            if side in entry:
                lines.append(f"    {side}: {json.dumps(entry[side])}")
    return "\n".join(lines) + "\n"


def timed(argv: list[str], out: Path | None = None) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS in MiB, exit code, CPU seconds) of one process; stdout to
    `out` or /dev/null. CPU time is reported too: the machine may be shared."""
    with open(out or os.devnull, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err[:500]}")
    return seconds, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def exponent(sizes: list[int], costs: list[float]) -> float:
    """Least-squares slope of log(cost) over log(size)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(max(c, 1e-9)) for c in costs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def bench_plan(sizes: list[int], runs: int, json_max: int) -> None:
    """`plan --json` prints every service's whole blast radius, as DESIGN.md's contract says:
    on these plans that output grows with n² (562 MB at 10,000 services), so it is skipped
    above `json_max` services."""
    from slow_disk_bench import compile_bytecode

    compile_bytecode()  # what an installed interlock has: no process compiles the package
    curves: dict[str, list[tuple[int, float, float]]] = {
        "validate": [], "plan --json --compact": [], "plan --json": [], "plan": []}
    with tempfile.TemporaryDirectory(prefix="interlock-scale-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"plan-{n}.yaml"
            path.write_text(plan_yaml(n))
            print(f"{n:>7} services: {path.stat().st_size / 2**20:.1f} MiB of YAML", flush=True)
            commands = (("validate", ["validate"]), ("plan --json --compact", ["plan", "--json", "--compact"]),
                        ("plan --json", ["plan", "--json"]), ("plan", ["plan"]))
            for name, extra in commands:
                if name == "plan --json" and n > json_max:
                    continue
                argv = [str(INTERLOCK), extra[0], str(path), *extra[1:]]
                out = Path(tmp) / "out.txt"
                best = min((timed(argv, out) for _ in range(runs)), key=lambda r: r[0])
                curves[name].append((n, best[0], best[3]))
                size = out.stat().st_size / 2**20
                print(f"{n:>7} services  {name:<21} {best[0]:7.2f} s ({best[3]:6.2f} s CPU)  "
                      f"{best[1]:7.0f} MiB peak  {size:8.1f} MiB out", flush=True)
    for name, points in curves.items():
        if len(points) > 1:
            sizes_seen = [p[0] for p in points]
            print(f"growth exponent {name}: {exponent(sizes_seen, [p[1] for p in points]):.2f} wall, "
                  f"{exponent(sizes_seen, [p[2] for p in points]):.2f} CPU")


def bench_run(sizes: list[int], runs: int) -> None:
    from slow_disk_bench import compile_bytecode

    compile_bytecode()  # what an installed interlock has: no process compiles the package
    per_event: list[float] = []
    marginal: list[float] = []
    with tempfile.TemporaryDirectory(prefix="interlock-scale-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"rollout-{n}.yaml"
            path.write_text(plan_yaml(n, rollout=True))
            results = []
            for i in range(runs):
                out = Path(tmp) / "out.jsonl"
                argv = [str(INTERLOCK), "run", str(path), "--headless", "--json",
                        "--journal", str(Path(tmp) / f"j-{n}-{i}.db")]
                seconds, rss, code, cpu = timed(argv, out)
                lines = out.read_text().splitlines()
                summary = json.loads(lines[-1])["summary"]
                results.append((seconds, rss, len(lines) - 1, summary["phase"], cpu))
            seconds, rss, events, phase, cpu = min(results)
            # The fixed cost (interpreter, imports, loading the plan) is what `validate` pays;
            # CPU time, because wall time on a shared machine is mostly other people's work.
            start = min(timed([str(INTERLOCK), "validate", str(path)])[3] for _ in range(runs))
            per_event.append(seconds / events * 1000)
            marginal.append(max(cpu - start, 1e-6) / events * 1000)
            print(f"{n:>6} services  {seconds:7.2f} s ({cpu:6.2f} s CPU)  {events:7} events  "
                  f"{per_event[-1]:6.3f} ms/event, {marginal[-1]:6.3f} ms CPU/event beyond start-up "
                  f"({start:.2f} s CPU)  {rss:5.0f} MiB peak  ends {phase}", flush=True)
    if len(sizes) > 1:
        print(f"growth exponent of ms/event: {exponent(sizes, per_event):.2f} "
              f"(CPU beyond start-up: {exponent(sizes, marginal):.2f}); at {sizes[-1]} / at {sizes[0]}: "
              f"{per_event[-1] / per_event[0]:.2f}x ({marginal[-1] / marginal[0]:.2f}x CPU beyond start-up)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["plan", "run"])
    parser.add_argument("--sizes", default=None, help="comma-separated service counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json-max", type=int, default=10_000, help="largest plan for plan --json")
    args = parser.parse_args()
    default = "1000,10000,50000" if args.what == "plan" else "10,100,1000"
    sizes = [int(s) for s in (args.sizes or default).split(",")]
    if args.what == "plan":
        bench_plan(sizes, args.runs, args.json_max)
    else:
        bench_run(sizes, args.runs)


if __name__ == "__main__":
    main()
