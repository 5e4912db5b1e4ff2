"""How long a virtual-clock drill of a one-hour rollout takes, end to end.

Issue 5's goal: under 2 s. The drill is `examples/drills/metrics-outage.yaml`:
the four-service recsys rollout (1h15m simulated, five stages per group, gates
every 30 s), a metrics outage, a pause and a scripted resume. Each run loads
the drill, wires the simulated world and a fresh SQLite journal (durable
appends, as in production), runs the engine and scores the journal.

    python bench/drill_bench.py [--runs 7] [--drill PATH]

Prints the median, the fastest and the slowest run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncio  # noqa: E402

from core.durations import format_duration  # noqa: E402
from tui.session.drills import prepare_drill  # noqa: E402

DEFAULT_DRILL = Path(__file__).resolve().parents[1] / "examples" / "drills" / "metrics-outage.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--drill", type=Path, default=DEFAULT_DRILL)
    args = parser.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            started = time.perf_counter()
            runner = prepare_drill(args.drill, journal_path=Path(tmp) / f"drill-{i}.db")
            card = asyncio.run(runner.run())
            runner.close()
            times.append(time.perf_counter() - started)
            if not card.passed:
                print(f"warning: run {i} did not pass its expectations", file=sys.stderr)
    state = runner.engine.state
    span = state.at - (state.started_at or 0.0)
    print(f"drill {card.drill}: {format_duration(span)} of simulated rollout, final {card.final}, {args.runs} runs")
    print(f"  median {statistics.median(times):.3f} s   fastest {min(times):.3f} s   slowest {max(times):.3f} s")
    print("  goal: under 2 s for a one-hour rollout on a virtual clock")

if __name__ == "__main__":
    main()
