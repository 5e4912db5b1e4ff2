"""Commits on a virtual clock: one per round of commands, every event still journaled before
its commands run; a real clock keeps one durable append per batch, before reducing it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tui.session.runtime import Session, start_run

ROOT = Path(__file__).resolve().parents[1]


def _instrument(session: Session) -> dict[str, Any]:
    """Count appends and batches; at every adapter call, check nothing reduced is unjournaled."""
    seen: dict[str, Any] = {"appends": 0, "batches": 0, "reduced": 0, "calls": 0, "late": []}
    journal, engine, world = session.journal, session.engine, session.world
    run_id = session.info.run_id
    append = journal.append

    def counting_append(*args: Any, **kwargs: Any) -> None:
        seen["appends"] += 1
        append(*args, **kwargs)

    def batch(_state: Any, events: Any) -> None:
        seen["batches"] += 1
        seen["reduced"] += len(events)

    def checked(call: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen["calls"] += 1
            if journal.last_seq(run_id) != seen["reduced"]:
                seen["late"].append((call.__name__, journal.last_seq(run_id), seen["reduced"]))
            return await call(*args, **kwargs)

        return wrapper

    journal.append = counting_append  # type: ignore[method-assign]
    engine.subscribe(batch)
    assert world is not None
    for port, name in ((world.flags, "set_rollout"), (world.flags, "get_rollout"),
                       (world.router, "set_weight"), (world.metrics, "query")):
        setattr(port, name, checked(getattr(port, name)))
    return seen


def test_a_virtual_run_commits_per_round_of_commands_and_journals_before_acting(tmp_path: Path) -> None:
    session = start_run(ROOT / "examples" / "recsys.yaml", journal_path=tmp_path / "j.db", seed=3)
    seen = _instrument(session)
    state = asyncio.run(session.engine.run())
    total = session.journal.last_seq(session.info.run_id)
    session.journal.close()
    assert state.phase == "completed"
    assert seen["late"] == []  # no adapter call while an event it may follow was unjournaled
    assert seen["calls"] > 300
    assert total == seen["reduced"]  # everything reduced is journaled by the end
    assert seen["appends"] < 0.6 * seen["batches"], seen  # measured: 154 commits for 294 batches


def test_a_real_clock_appends_every_batch_before_reducing_it(tmp_path: Path) -> None:
    session = start_run(
        ROOT / "examples" / "recsys.yaml", journal_path=tmp_path / "j.db", seed=3, clock="real", speed=50_000
    )
    seen = _instrument(session)
    state = asyncio.run(session.engine.run())
    session.journal.close()
    assert state.phase == "completed"
    assert seen["late"] == []
    assert seen["appends"] == seen["batches"]


def _sync_level(session: Session) -> int:
    return int(session.journal._db.execute("PRAGMA synchronous").fetchone()[0])  # type: ignore[attr-defined]


def test_a_virtual_run_of_the_simulated_world_commits_without_waiting_for_the_disk(tmp_path: Path) -> None:
    """Each round still reaches the WAL before its commands (the first test), but unsynced
    (NORMAL, 1): the simulated world's own state file is never synced either. A real clock
    keeps FULL (2), and the records end up in the file all the same."""
    virtual = start_run(ROOT / "examples" / "recsys.yaml", journal_path=tmp_path / "v.db", seed=3)
    real = start_run(ROOT / "examples" / "recsys.yaml", journal_path=tmp_path / "r.db", seed=3,
                     clock="real", speed=50_000)
    try:
        assert _sync_level(virtual) == 1
        assert _sync_level(real) == 2
        asyncio.run(virtual.engine.run())
        total = virtual.journal.last_seq(virtual.info.run_id)
    finally:
        virtual.journal.close()
        real.journal.close()
    import sqlite3

    raw = sqlite3.connect(tmp_path / "v.db")
    assert raw.execute("SELECT count(*) FROM records").fetchone()[0] == total > 300
    raw.close()


def test_real_adapters_on_a_virtual_clock_keep_synced_commits(tmp_path: Path) -> None:
    """`run --headless` of a real environment is on a virtual clock too: its flags and routes
    live outside this process, so every round is synced before its commands."""
    from core import VirtualClock
    from tui.session.assembly import Adapters, assemble

    base = start_run(ROOT / "examples" / "recsys.yaml", journal_path=tmp_path / "j.db", seed=3,
                     clock="real", speed=50_000)
    world = base.world
    assert world is not None
    session = assemble(
        base.engine.state, plan=base.plan, graph=base.graph, info=base.info, journal=base.journal,
        clock=VirtualClock(), lease=None, adapters=Adapters(None, world.flags, world.router, world.metrics, None),
        interactive=False, resuming=False,
    )
    try:
        assert _sync_level(session) == 2
    finally:
        base.journal.close()
