"""Fuzz the command line: thousands of mutated plans, drills, measurement files and journals.

    python bench/fuzz_bench.py [--cases 5000] [--workers 2] [--start 0]

Each case is one command (`validate`, `plan`, `drill`, `analyze`, `log`, `audit verify`,
`runs`, `resume`) called through the CLI entry (`tui.cli.main.main`, in worker processes) on
input mutated from the bundled examples by a seeded mutator (`tests/fuzzing.py`). It
counts tracebacks, undocumented exit codes and runs over 10 s (a case still running at
60 s is stopped and counted), prints the exit codes per kind of input, and lists every
bad seed so it can be replayed. The goal, in bench/README.md: 0 tracebacks, 0 runs over 10 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SLOW = 10.0
HARD_LIMIT = 60


def _chunk(seeds: range) -> list[tuple[int, str, int | None, float, str | None]]:
    from tests.fuzzing import fuzz

    with tempfile.TemporaryDirectory(prefix="interlock-fuzz-") as work:
        return [
            (o.case.seed, o.case.kind, o.code, o.seconds, o.problem and f"{' '.join(o.case.argv[:1])}: {o.problem}")
            for o in fuzz(seeds, Path(work), hard_limit=HARD_LIMIT)
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    args = parser.parse_args()
    size = 250
    chunks = [range(s, min(s + size, args.start + args.cases)) for s in range(args.start, args.start + args.cases, size)]
    began = time.perf_counter()
    with get_context("spawn").Pool(args.workers) as pool:
        rows = [row for chunk in pool.imap_unordered(_chunk, chunks) for row in chunk]
    wall = time.perf_counter() - began
    tracebacks = [r for r in rows if r[4] and "traceback" in r[4]]
    other = [r for r in rows if r[4] and "traceback" not in r[4]]
    slow = [r for r in rows if r[3] > SLOW]
    codes: Counter[tuple[str, int | None]] = Counter((r[1], r[2]) for r in rows)
    times = sorted(r[3] for r in rows)
    print(f"{len(rows)} cases in {wall:.0f} s ({args.workers} workers), seeds {args.start}..{args.start + args.cases - 1}")
    print(f"tracebacks: {len(tracebacks)}   undocumented exits / hangs: {len(other)}   over {SLOW:g} s: {len(slow)}")
    print(f"slowest case {times[-1]:.2f} s, median {times[len(times) // 2] * 1000:.0f} ms")
    for kind in sorted({r[1] for r in rows}):
        shown = ", ".join(f"exit {code}: {n}" for (k, code), n in sorted(codes.items(), key=str) if k == kind)
        print(f"  {kind:<8} {shown}")
    for seed, kind, code, seconds, problem in sorted(tracebacks + other + slow):
        print(f"  seed {seed} ({kind}, {seconds:.1f} s): {problem or 'slow'}")
    return 1 if tracebacks or other or slow else 0


if __name__ == "__main__":
    sys.exit(main())
