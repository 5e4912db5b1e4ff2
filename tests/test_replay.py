"""The journal is the source of truth: replaying it gives exactly the live state."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.journal_sqlite import SqliteJournal
from core.events import Event
from core.ports import RunInfo
from tui.session import runtime

REPO = Path(__file__).resolve().parent.parent


def finished_run(tmp_path: Path) -> Path:
    """A journal holding one whole virtual run of the example."""
    path = tmp_path / "whole.db"
    session = runtime.start_run(REPO / "examples" / "recsys.yaml", journal_path=path, seed=5)
    asyncio.run(session.engine.run())
    session.journal.close()
    return path


def died_after(tmp_path: Path, records: int) -> tuple[RunInfo, list[Event], Path]:
    """A journal whose run died after `records` records of the example's run."""
    with SqliteJournal(finished_run(tmp_path), readonly=True) as source:
        info = source.runs()[0]
        events = [record.event for record in source.records(info.run_id)][:records]
    cut = tmp_path / "cut.db"
    with SqliteJournal(cut) as journal:
        journal.create_run(replace(info, created=""))
        journal.append(info.run_id, events)
    return info, events, cut


@pytest.mark.parametrize("example", ["recsys.yaml", "recsys-regression.yaml"])
def test_replaying_the_sqlite_journal_gives_the_live_state(example: str, tmp_path: Path) -> None:
    journal_path = tmp_path / "journal.db"
    session = runtime.start_run(REPO / "examples" / example, journal_path=journal_path, seed=5)
    live_states = []
    session.engine.subscribe(lambda state, events: live_states.append(state))
    final = asyncio.run(session.engine.run())
    session.journal.close()
    assert final.finished


    journal = SqliteJournal(journal_path, readonly=True)
    info = runtime.find_run(journal, None, unfinished=False)
    assert info is not None and info.run_id == session.info.run_id
    rebuilt = runtime.replay(journal, info)
    replayed = rebuilt.state
    assert rebuilt.seq == journal.last_seq(info.run_id) and rebuilt.backlog is None
    assert replayed == final
    assert replayed.services == final.services and replayed.groups == final.groups
    assert journal.last_seq(info.run_id) == sum(1 for _ in journal.records(info.run_id))
    journal.close()


def test_resume_folds_each_record_once_and_reports_a_long_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding the unfinished run takes a replay; resuming continues that replay after the
    lease instead of starting again, so every record is folded exactly once."""
    info, events, cut = died_after(tmp_path, 300)

    folded: list[object] = []
    import core.replay

    real_reduce = core.replay.reduce

    def counting(state: object, event: object) -> object:
        folded.append(event)
        return real_reduce(state, event)  # type: ignore[arg-type]

    monkeypatch.setattr(core.replay, "reduce", counting)  # the one fold every reader uses
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


def test_a_console_on_a_long_run_gets_the_last_records_as_batches_and_the_rest_folded(
    tmp_path: Path,
) -> None:
    """What a console opened on a resumed run shows first: one batch per record for the
    last `keep` records only, the state the older ones led to, and of the older ones only
    the measurements the metric history keeps. Same screen data, bounded memory."""
    from core.context import initial_state
    from core.events import Measured
    from core.reducer import reduce
    from tui.session.backlog import KEEP_BATCHES, KEEP_MEASUREMENTS, Backlog
    from tui.session.watch import history_batches
    from tui.console.widgets.eventlog import EventLog
    from tui.console.widgets.history import MetricHistory

    assert KEEP_BATCHES >= EventLog.MAX_LINES  # every line the log can word has its batch
    with SqliteJournal(finished_run(tmp_path), readonly=True) as journal:
        info = journal.runs()[0]
        plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
        events = [record.event for record in journal.records(info.run_id)]
        older, batches = history_batches(journal, info, plan, graph)
        assert older == [] and [b[1] for b in batches] == [(e,) for e in events]  # short: all kept
    states, state = [], initial_state(plan, graph)
    for event in events:
        state = reduce(state, event)[0]
        states.append(state)
    assert len(events) > 100

    backlog = Backlog(keep=50, measurements=3)
    for state, event in zip(states, events):
        backlog.add(state, event)
    older, batches = backlog.drain()
    assert batches[0] == (states[-51], ())
    assert batches[1:] == [(s, (e,)) for s, e in zip(states[-50:], events[-50:])]
    measured = [e for e in events[:-50] if isinstance(e, Measured)]
    keys = {(e.service, e.gate) for e in measured}
    assert sorted(older, key=events.index) == sorted(
        (e for key in keys for e in [m for m in measured if (m.service, m.gate) == key][-3:]), key=events.index
    )
    assert backlog.drain() == ([], [])  # drained
    told = Backlog(keep=50, measurements=3, expected=len(events))  # states it will drop never queue
    for state, event in zip(states, events):
        told.add(state, event)
    assert told.drain() == (older, batches)

    kept_all = Backlog(keep=len(events))
    for state, event in zip(states, events):
        kept_all.add(state, event)
    assert kept_all.drain() == ([], [(s, (e,)) for s, e in zip(states, events)])

    whole, folded = MetricHistory(states[0].ctx), MetricHistory(states[0].ctx)
    assert folded.keep == KEEP_MEASUREMENTS
    whole.record(events)
    backlog = Backlog(keep=50)
    for state, event in zip(states, events):
        backlog.add(state, event)
    older, batches = backlog.drain()
    folded.record(older)
    for _, batch_events in batches:
        folded.record(batch_events)
    for service in plan.services:
        for gate in whole.gates(service):
            assert list(folded.points(service, gate)) == list(whole.points(service, gate))


def test_an_interactive_resume_gathers_the_console_backlog_in_its_own_replay(tmp_path: Path) -> None:
    """A console on a resumed run takes the backlog resume gathered: no third replay."""
    info, events, cut = died_after(tmp_path, 300)
    headless = runtime.resume_run(journal_path=cut)
    assert headless.backlog is None
    asyncio.run(headless.aclose())
    headless.journal.close()
    resumed = runtime.resume_run(journal_path=cut, interactive=True)
    try:
        assert resumed.backlog is not None
        older, batches = resumed.backlog.drain()
        assert older == [] and [b[1] for b in batches] == [(e,) for e in events]
        assert batches[-1][0] == resumed.engine.state
    finally:
        asyncio.run(resumed.aclose())
        resumed.journal.close()
