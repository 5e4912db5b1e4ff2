"""The journal is the source of truth: replaying it gives exactly the live state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tui import runtime

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("example", ["recsys.yaml", "recsys-regression.yaml"])
def test_replaying_the_sqlite_journal_gives_the_live_state(example: str, tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    session = runtime.start_run(REPO / "examples" / example, journal_path=journal_path, seed=5)
    live_states = []
    session.engine.subscribe(lambda state, events: live_states.append(state))
    final = asyncio.run(session.engine.run())
    session.journal.close()
    assert final.finished

    from adapters.journal_sqlite import SqliteJournal

    journal = SqliteJournal(journal_path, readonly=True)
    info = runtime.find_run(journal, None, unfinished=False)
    assert info is not None and info.run_id == session.info.run_id
    _, _, replayed = runtime.replay(journal, info)
    assert replayed == final
    assert replayed.services == final.services and replayed.groups == final.groups
    assert journal.last_seq(info.run_id) == sum(1 for _ in journal.records(info.run_id))
    journal.close()
