"""Consoles opened on a long rollout: how long until they show it, and at what memory.

The history is the replay bench's (the recsys plan with day-long bakes and gates every
3 s, driven by a scripted healthy world), written to a SQLite journal *with its plan*,
so it can be opened like any run. Then, each in a fresh process so that its peak RSS is
its own:

- `history`: what a console opened on a resumed run folds first
  (`tui.session.watch.history_batches`);
- `watch`: `interlock watch`'s console, headless, from opening until it has caught up;
- `resume` and `resume-console`: `interlock resume` (headless, then for the console, which
  also gathers what the console shows first) from opening the journal to an engine ready to go;
- `verification`: what resume's checks cost, the same replay unverified and verified, and
  SQLite's quick_check of the file.

    python bench/long_journal_bench.py [--events 1000000]

Nothing is asserted; numbers are printed (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml
from reduce_bench import EXAMPLE, scripted_history

from adapters.journal_sqlite import SqliteJournal
from core.plan import Plan
from core.ports import RunInfo


def write_history(path: Path, events: int) -> None:
    doc = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    doc["defaults"]["bake"] = "24h"
    for gate in doc["gates"].values():
        gate["interval"] = "3s"
        gate.pop("count", None)
    plan = Plan.model_validate(doc)
    _, history, _ = scripted_history(plan, events)
    with SqliteJournal(path) as journal:
        journal.create_run(RunInfo("long", plan.rollout, "long.yaml", yaml.safe_dump(doc), 0, "virtual", 1.0, ""))
        for start in range(0, len(history), 5000):
            journal.append("long", history[start:start + 5000])


def rss_mib() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def measure_history(path: Path) -> str:
    from tui.session import runtime
    from tui.session.watch import history_batches

    with SqliteJournal(path, readonly=True) as journal:
        info = journal.runs()[0]
        plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
        before = rss_mib()
        began = time.perf_counter()
        older, batches = history_batches(journal, info, plan, graph)
        took = time.perf_counter() - began
    return (f"history: {len(batches):,} batches and {len(older):,} older measurements in {took:.1f} s, "
            f"max RSS {before} -> {rss_mib()} MiB")


def measure_watch(path: Path) -> str:
    from tui.console.app import InterlockApp
    from tui.session.watch import JournalFollower

    async def run() -> str:
        follower = JournalFollower.open(path)
        with SqliteJournal(path, readonly=True) as journal:
            last = journal.last_seq(follower.info.run_id)
        app = InterlockApp(follower=follower)
        began = time.perf_counter()
        async with app.run_test(size=(200, 60)):
            while follower.last_seq < last:
                await asyncio.sleep(0.05)
            took = time.perf_counter() - began
        follower.close()
        return f"watch: caught up on {last:,} records in {took:.1f} s, max RSS {rss_mib()} MiB"

    return asyncio.run(run())


def measure_resume(path: Path, console: bool) -> str:
    from tui.session import runtime

    began = time.perf_counter()
    session = runtime.resume_run(journal_path=path, interactive=console)
    took = time.perf_counter() - began
    asyncio.run(session.aclose())
    session.journal.close()
    what = "resume for the console" if console else "resume, headless"
    return f"{what}: ready in {took:.1f} s, max RSS {rss_mib()} MiB"


def measure_verification(path: Path) -> str:
    """What resume's checks cost on this file: the same replay unverified and verified
    (every record's chain and the head), and SQLite's quick_check."""
    from adapters.journal_sqlite import SqliteJournal
    from tui.session import runtime

    with SqliteJournal(path, readonly=True) as journal:
        info = journal.runs()[0]
        began = time.perf_counter()
        plain = runtime.replay(journal, info)
        unverified = time.perf_counter() - began
        began = time.perf_counter()
        checked = runtime.replay(journal, info, verified=True)
        assert checked.check is not None and checked.state == plain.state
        journal.end_check(checked.check)
        verified = time.perf_counter() - began
        began = time.perf_counter()
        journal.check_integrity()
        quick = time.perf_counter() - began
    return (f"replay {unverified:.1f} s, verified {verified:.1f} s (+{verified - unverified:.1f} s), "
            f"quick_check {quick:.1f} s")


MEASURES = {
    "history": measure_history,
    "watch": measure_watch,
    "resume": lambda path: measure_resume(path, console=False),
    "resume-console": lambda path: measure_resume(path, console=True),
    "verification": measure_verification,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--journal", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(MEASURES[args.measure](args.journal))
        return
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        path = Path(tmp) / "long.db"
        began = time.perf_counter()
        write_history(path, args.events)
        print(f"{args.events:,} records written in {time.perf_counter() - began:.0f} s")
        for what in MEASURES:
            subprocess.run([sys.executable, __file__, "--measure", what, "--journal", str(path)], check=True)


if __name__ == "__main__":
    main()
