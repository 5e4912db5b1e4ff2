"""`interlock watch`: the console, read-only, following a rollout's journal.

A watcher never talks to the adapters or the driving process: it reads the
journal (SQLite in WAL mode, or PostgreSQL, both let it read while the driver
appends) and replays each new record through the same pure reducer, so it
sees exactly the states the driver saw. Reading happens in a thread
(`adapters.journals.afollow`); reducing is cheap and happens on the loop,
yielding now and then so a long catch-up never freezes the screen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.journals import SharedJournal, afollow, journal_label, open_journal
from core import initial_state
from core import Measured
from core import RolloutGraph
from core import Plan
from core import RunInfo
from core import InputError
from core import fold, folding
from core import RolloutState
from tui.session import runtime
from tui.session.backlog import Backlog, Batch

CATCH_UP_CHUNK = 20_000
"""Records a watcher folds between two repaints while it catches up on a long journal."""

CATCH_UP_SLICE = 0.05
"""Seconds of reducing between two yields to the UI during a catch-up: long enough that a
million records are not a million repaints, short enough that keys still get answered."""



@dataclass
class JournalFollower:
    """Replays one run's journal records as they are appended."""

    journal: SharedJournal
    info: RunInfo
    state: RolloutState
    last_seq: int = 0

    @classmethod
    def open(cls, spec: str | Path, run_id: str | None = None) -> JournalFollower:
        """Follow `run_id`, or else the latest unfinished run, or else the latest run."""
        if isinstance(spec, Path) and not spec.exists():
            raise InputError.plain(f"{spec}: no journal here")
        journal = open_journal(spec, readonly=True)
        info = runtime.choose_run(journal, run_id)
        if info is None:
            journal.close()
            what = f"no run {run_id}" if run_id else "no run"
            raise InputError.plain(f"{what} in {journal_label(spec)}")
        plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
        return cls(journal=journal, info=info, state=initial_state(plan, graph))

    def catch_up(self, limit: int | None = None) -> tuple[list[Measured], list[Batch]]:
        """Reduce the records appended since the last call (at most `limit` of them), as a
        console takes them in (see `tui.session.backlog`): (older measurements, batches)."""
        state = start = self.state
        coming = self.journal.last_seq(self.info.run_id) - self.last_seq
        backlog = Backlog(expected=coming if limit is None else min(coming, limit))
        records = self.journal.records(self.info.run_id, after=self.last_seq)
        for count, (record, state) in enumerate(folding(start, records), 1):
            self.last_seq = record.seq
            backlog.add(state, record.event)
            if limit is not None and count >= limit:
                break
        self.state = state
        return backlog.drain()

    async def follow(self, deliver: Callable[[Sequence[Batch]], None]) -> None:
        """Hand each new record's state to `deliver`, until cancelled."""
        began = time.perf_counter()
        async for record in afollow(self.journal, self.info.run_id, after=self.last_seq):
            self.state = fold(self.state, (record.event,))
            self.last_seq = record.seq
            deliver([(self.state, (record.event,))])
            if time.perf_counter() - began > CATCH_UP_SLICE:
                await asyncio.sleep(0)
                began = time.perf_counter()

    def close(self) -> None:
        self.journal.close()


def history_batches(
    journal: SharedJournal, info: RunInfo, plan: Plan, graph: RolloutGraph
) -> tuple[list[Measured], list[Batch]]:
    """A run's journal so far, as a console opened on it shows it first."""
    return JournalFollower(journal=journal, info=info, state=initial_state(plan, graph)).catch_up()
