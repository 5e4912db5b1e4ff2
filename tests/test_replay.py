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
    _, _, replayed, seq = runtime.replay(journal, info)
    assert seq == journal.last_seq(info.run_id)
    assert replayed == final
    assert replayed.services == final.services and replayed.groups == final.groups
    assert journal.last_seq(info.run_id) == sum(1 for _ in journal.records(info.run_id))
    journal.close()


def test_resume_folds_each_record_once_and_reports_a_long_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding the unfinished run takes a replay; resuming continues that replay after the
    lease instead of starting again, so every record is folded exactly once."""
    from dataclasses import replace

    from adapters.journal_sqlite import SqliteJournal

    whole = tmp_path / "whole.db"
    session = runtime.start_run(REPO / "examples" / "recsys.yaml", journal_path=whole, seed=5)
    asyncio.run(session.engine.run())
    session.journal.close()
    with SqliteJournal(whole, readonly=True) as source:
        info = source.runs()[0]
        events = [record.event for record in source.records(info.run_id)][:300]
    cut = tmp_path / "cut.db"
    with SqliteJournal(cut) as journal:  # a run that died after 300 records
        journal.create_run(replace(info, created=""))
        journal.append(info.run_id, events)

    folded: list[object] = []
    real_reduce = runtime.reduce

    def counting(state: object, event: object) -> object:
        folded.append(event)
        return real_reduce(state, event)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime, "reduce", counting)
    monkeypatch.setattr(runtime, "PROGRESS_EVERY", 100)
    progress: list[int] = []
    resumed = runtime.resume_run(journal_path=cut, on_progress=progress.append)
    try:
        assert resumed.info.run_id == info.run_id
        assert folded == events
        assert progress == [100, 200, 300]
        assert not resumed.engine.state.finished
    finally:
        asyncio.run(resumed.aclose())
        resumed.journal.close()
