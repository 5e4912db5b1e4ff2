"""Where a run's disk syncs happen, counted for real: each run is a child process whose
`fsync`/`fdatasync` calls go through the slow-disk bench's LD_PRELOAD shim (0 ms each here),
which writes one `sync PATH` line per call into a trace file; the child writes its own
markers (each append's start and end, closing) into the same file, in order.

A virtual-clock run of the simulated world (relaxed, `SqliteJournal.relax_sync`) syncs only
when its journal closes: a new file's schema and run row, every append and every stage
boundary reach the file unsynced (durable against the process being killed). A real-clock
run syncs the WAL inside every append, before any command that follows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import slow_disk_bench  # noqa: E402

from tests.helpers import quiet_example  # noqa: E402

CHILD = """
import asyncio, sys
from pathlib import Path
import adapters.journal_sqlite as js
from tui.session.runtime import start_run

trace, journal, clock, plan = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]

def mark(text):
    with open(trace, "a") as out:
        out.write(text + "\\n")

append = js.SqliteJournal.append
def marked(self, *args, **kwargs):
    mark("append")
    append(self, *args, **kwargs)
    mark("appended")
js.SqliteJournal.append = marked
mark("start")
session = start_run(plan, journal_path=journal, seed=3, clock=clock, speed=50_000)
state = asyncio.run(session.engine.run())
mark("close")
session.journal.close()
mark("closed " + state.phase)
"""


def _run(tmp: Path, shim: Path, journal: Path, clock: str) -> list[str]:
    trace = tmp / f"trace-{clock}-{journal.stem}.txt"
    trace.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "LD_PRELOAD": str(shim), "SLOW_DISK_MS": "0",
           "SLOW_DISK_TRACE": str(trace)}
    # The real clock at 50,000x measures off the seeded schedule: the example's threshold
    # gates in dry run keep a noisy window from rolling back what this test counts.
    plan = quiet_example(tmp) if clock == "real" else REPO / "examples" / "recsys.yaml"
    subprocess.run([sys.executable, "-c", CHILD, str(trace), str(journal), clock, str(plan)],
                   cwd=REPO, env=env, check=True, timeout=120)
    lines = trace.read_text().splitlines()
    assert lines[-1] == "closed completed", lines[-5:]
    return lines


def _between(lines: list[str], first: str, last: str) -> list[str]:
    return lines[lines.index(first) + 1:lines.index(last)]


def _appends(lines: list[str]) -> list[list[str]]:
    """The syncs inside each append, in order."""
    out: list[list[str]] = []
    inside = False
    for line in lines:
        if line == "append":
            out.append([])
        elif line.startswith("sync ") and inside:
            out[-1].append(line)
        inside = line == "append" or (inside and line != "appended")
    return out


def test_a_relaxed_run_syncs_only_when_its_journal_closes(tmp_path: Path) -> None:
    shim = slow_disk_bench.build_shim(tmp_path)
    journal = tmp_path / "runs" / "j.db"
    lines = _run(tmp_path, shim, journal, "virtual")
    appends = _appends(lines)
    assert len(appends) > 100
    assert [line for line in _between(lines, "start", "close") if line.startswith("sync")] == []
    at_close = _between(lines, "close", "closed completed")
    # the close's checkpoint: the WAL, its directory entry (the WAL file is new), the main file
    assert sorted(at_close) == sorted([f"sync {journal}-wal", f"sync {journal.parent}", f"sync {journal}"])

    # a second run in the same (no longer new) file: the WAL, made again, has its header and
    # directory entry synced when the run's row is written; the appends still sync nothing
    again = _run(tmp_path, shim, journal, "virtual")
    assert [line for line in _between(again, "start", "close") if line.startswith("sync")] == [
        f"sync {journal}-wal", f"sync {journal.parent}"]
    assert all(syncs == [] for syncs in _appends(again))
    assert _between(again, "close", "closed completed") == [f"sync {journal}-wal", f"sync {journal}"]


def test_a_real_clock_run_syncs_the_wal_inside_every_append(tmp_path: Path) -> None:
    shim = slow_disk_bench.build_shim(tmp_path)
    journal = tmp_path / "j.db"
    lines = _run(tmp_path, shim, journal, "real")
    appends = _appends(lines)
    assert len(appends) > 100
    assert all(f"sync {journal}-wal" in syncs for syncs in appends), [s for s in appends if not s][:3]
