"""How long a whole virtual-clock run of examples/recsys.yaml takes (never asserted in tests).

Exactly what `interlock run examples/recsys.yaml --headless` does minus the
printing: `tui.session.runtime.start_run` (read, validate and compile the plan, open
a fresh SQLite journal, wire the simulated world) and `engine.run()` on a
virtual clock, every event journaled before its commands run. Goal (issue 17):
under 0.3 s on a slow disk (`bench/slow_disk_bench.py` runs this under its shim).
Median of several runs, each in a fresh directory.

    python bench/run_bench.py [--runs 7] [--plan examples/recsys.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tui.session.runtime import start_run


def one_run(plan: Path, seed: int) -> tuple[float, float, int, str, float]:
    """(seconds in total, seconds in engine.run, events, final phase, CPU seconds in total)."""
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        cpu = time.process_time()
        began = time.perf_counter()
        session = start_run(plan, journal_path=Path(tmp) / "journal.db", seed=seed)
        wired = time.perf_counter()
        state = asyncio.run(session.engine.run())
        events = session.journal.last_seq(session.info.run_id)
        session.journal.close()  # the last checkpoint's syncs count
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
    return ended - began, ended - wired, events, state.phase, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--plan", type=Path, default=ROOT / "examples" / "recsys.yaml")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    one_run(args.plan, args.seed)  # warm imports and caches
    results = [one_run(args.plan, args.seed) for _ in range(args.runs)]
    totals = [r[0] for r in results]
    engine = [r[1] for r in results]
    _, _, events, phase, _ = results[-1]
    print(f"{args.plan.name}: {events} events, ends {phase}")
    print(f"whole run (wiring + engine): median {statistics.median(totals):.3f} s, "
          f"min {min(totals):.3f} s, max {max(totals):.3f} s (goal < 0.3 s on a slow disk, issue 17)")
    print(f"engine.run alone:            median {statistics.median(engine):.3f} s")
    print(f"CPU of the whole run:        median {statistics.median(r[4] for r in results):.3f} s "
          "(wall minus CPU: the disk's syncs and other processes)")


if __name__ == "__main__":
    main()
