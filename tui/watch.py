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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.journals import SharedJournal, afollow, journal_label, open_journal
from core.context import initial_state
from core.events import Event
from core.graph import RolloutGraph
from core.plan import Plan
from core.ports import RunInfo
from core.problems import InputError, Problem
from core.reducer import reduce
from core.state import RolloutState
from tui import runtime

YIELD_EVERY = 200
"""Records reduced between two yields to the UI during a catch-up."""

Batch = tuple[RolloutState, tuple[Event, ...]]
"""A state after one journal record (or a run of them), and their events."""


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
            raise InputError([Problem(path=(), message="no journal here", file=str(spec))])
        journal = open_journal(spec, readonly=True)
        info = runtime.find_run(journal, run_id, unfinished=True) if run_id is None else None
        if info is None:
            info = runtime.find_run(journal, run_id, unfinished=False)
        if info is None:
            journal.close()
            what = f"no run {run_id!r}" if run_id else "no run"
            raise InputError([Problem(path=(), message=f"{what} in this journal", file=journal_label(spec))])
        plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
        return cls(journal=journal, info=info, state=initial_state(plan, graph))

    def poll(self) -> list[Batch]:
        """Reduce every record appended since the last call; one batch per record."""
        batches: list[Batch] = []
        state = self.state
        for record in self.journal.records(self.info.run_id, after=self.last_seq):
            state, _ = reduce(state, record.event)
            self.last_seq = record.seq
            batches.append((state, (record.event,)))
        self.state = state
        return batches

    async def follow(self, deliver: Callable[[Sequence[Batch]], None]) -> None:
        """Hand each new record's state to `deliver`, until cancelled."""
        count = 0
        async for record in afollow(self.journal, self.info.run_id, after=self.last_seq):
            self.state, _ = reduce(self.state, record.event)
            self.last_seq = record.seq
            deliver([(self.state, (record.event,))])
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    def close(self) -> None:
        self.journal.close()


def history_batches(journal: SharedJournal, info: RunInfo, plan: Plan, graph: RolloutGraph) -> list[Batch]:
    """A run's journal so far, as batches: what a console opened on a resumed run shows first."""
    return JournalFollower(journal=journal, info=info, state=initial_state(plan, graph)).poll()


def watch_console(spec: str | Path, run_id: str | None) -> int:
    """Open the read-only console on a journal; returns the exit code."""
    from tui.app import InterlockApp

    follower = JournalFollower.open(spec, run_id)
    try:
        InterlockApp(follower=follower).run()
    finally:
        follower.close()
    return 0
