"""The journal contract, run against SQLite and against a real PostgreSQL.

Both backends must store the same records, the same operators and the same
hash chain, refuse the same mistakes, and expose tampering the same way; a run
written to one must read and verify exactly as on the other.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pgtools import Backend

from adapters.journal_codec import JournalError, encode_event
from adapters.journal_sqlite import SCHEMA_VERSION
from adapters.journals import audit_verify
from core.events import (
    EVENT_TYPES,
    Abandoned,
    CheckFinished,
    Adopted,
    GateMisconfigured,
    MeasurementGap,
    CommandFailed,
    Event,
    ExposureApplied,
    ExposureRead,
    FaultInjected,
    Measured,
    MirrorApplied,
    NotificationSent,
    OperatorAction,
    Resumed,
    RolloutStarted,
    Tick,
)
from core.ports import Journal, RunInfo

EVERY_EVENT: list[Event] = [
    RolloutStarted(at=0.0, rollout="recsys-embeddings-v3", seed=7),
    Tick(at=0.1 + 0.2),
    ExposureApplied(at=60.000000000000014, cmd_id=3, service="ranker", percent=1 / 3),
    CommandFailed(at=61.5, cmd_id=4, error='timeout "router" \u2192 503', attempts=3),
    Measured(at=1e-300, cmd_id=5, service="ranker", gate="errors", value=-0.0, baseline=None),
    Measured(at=2.0, cmd_id=6, service="ranker", gate="latency", value=math.nan, baseline=-math.inf),
    ExposureRead(at=3.0, cmd_id=7, exposures={"ranker": 25.0, "api": 0.0, "émbedder": 5.5}),
    OperatorAction(at=4.0, action="rollback", service="ranker", operator="ana@laptop", reason="p99"),
    FaultInjected(at=5.0, fault={"kind": "error_rate", "value": 0.05, "tags": [1, None]}),
    Resumed(at=1.7976931348623157e308, note="pid 4242"),
    Adopted(at=6.0, exposures={"ranker": 25.0}, targets={"flag:ranker-v6": 25.0}),
    Abandoned(at=7.0, operator="ana@laptop", reason="superseded", by_run="run-2"),
    MeasurementGap(at=8.0, service="ranker", gate="latency", since=2.5),
    GateMisconfigured(at=9.0, cmd_id=9, service="ranker", gate="errors", error="the query returned 2 series"),
    MirrorApplied(at=10.0, cmd_id=10, service="ranker", percent=100.0),
    CheckFinished(at=11.0, cmd_id=11, service="ranker", check="pre-flight run pytest -q", passed=False,
                  detail="exit 1", output="1 failed\n\u2192 done", attempts=2),
    NotificationSent(at=10.0, trigger="gate_failed", webhook="$SLACK_WEBHOOK_URL", service="ranker", ok=True,
                     status=200, attempts=2),
]


def run_info(run_id: str = "run-1", **changes: object) -> RunInfo:
    fields: dict[str, object] = dict(
        run_id=run_id, rollout="recsys", plan_path="examples/recsys.yaml",
        plan_text="rollout: recsys\n", seed=7, clock="virtual", speed=float("inf"),
        created="2025-01-02T03:04:05+00:00", operator="ana",
    )
    fields.update(changes)
    return RunInfo(**fields)  # type: ignore[arg-type]


def ticks(n: int, start: float = 0.0) -> list[Event]:
    return [Tick(at=start + i) for i in range(n)]


def same(a: Event, b: Event) -> bool:
    """Equal, with NaN equal to NaN and -0.0 unlike 0.0 (the canonical encoding does both)."""
    return type(a) is type(b) and encode_event(a) == encode_event(b)


# -- round trips and runs --------------------------------------------------------


def test_every_event_type_round_trips(backend: Backend) -> None:
    assert {e.kind for e in EVERY_EVENT} == set(EVENT_TYPES)
    with backend.open() as journal:
        assert isinstance(journal, Journal)
        journal.create_run(run_info())
        journal.append("run-1", EVERY_EVENT, operator="engine@host")
    with backend.open(readonly=True) as journal:
        records = list(journal.records("run-1"))
        assert journal.verify("run-1") == (True, None, f"run run-1: {len(EVERY_EVENT)} records, chain intact")
    assert all(same(r.event, e) for r, e in zip(records, EVERY_EVENT, strict=True))
    assert [r.seq for r in records] == list(range(1, len(EVERY_EVENT) + 1))


def test_operator_events_carry_their_operator_and_the_rest_the_batchs(backend: Backend) -> None:
    rollback = OperatorAction(at=1.0, action="rollback", service="ranker", operator="bo@desk", reason="p99 up")
    anonymous = OperatorAction(at=2.0, action="pause")
    with backend.open() as journal:
        journal.create_run(run_info())
        journal.append("run-1", [Tick(at=0.0), rollback, anonymous], operator="ana@laptop")
        journal.append("run-1", [Tick(at=3.0)])
        records = list(journal.records("run-1"))
        assert journal.verify("run-1")[0]
    assert [r.operator for r in records] == ["ana@laptop", "bo@desk", "ana@laptop", ""]
    assert records[1].event == rollback  # reason and service survive
    stored = backend.scalar("SELECT operator FROM records WHERE run_id = 'run-1' AND seq = 2")
    assert stored == "bo@desk"


def test_runs_in_creation_order_with_all_fields(backend: Backend) -> None:
    infos = [run_info("zeta"), run_info("alpha", clock="real", speed=60.0, seed=-3), run_info("m")]
    with backend.open() as journal:
        for info in infos:
            journal.create_run(info)
        with pytest.raises(JournalError, match="already exists"):
            journal.create_run(run_info("alpha"))
    with backend.open(readonly=True) as journal:
        assert journal.runs() == infos


def test_created_is_filled_in_when_empty(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(run_info(created=""))
        (info,) = journal.runs()
    assert info.created.endswith("+00:00") and info.created[:2] == "20"


def test_seq_continues_across_reopen(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(run_info())
        journal.create_run(run_info("other"))
        journal.append("run-1", ticks(3))
        journal.append("other", ticks(1))
    with backend.open() as journal:
        assert journal.last_seq("run-1") == 3
        journal.append("run-1", ticks(2, start=3.0))
        journal.append("run-1", [])
        assert [r.seq for r in journal.records("run-1")] == [1, 2, 3, 4, 5]
        assert [r.event.at for r in journal.records("run-1", after=3)] == [3.0, 4.0]
        assert [r.seq for r in journal.records("other")] == [1]
        assert journal.verify("run-1") == (True, None, "run run-1: 5 records, chain intact")


def test_unknown_run_is_refused(backend: Backend) -> None:
    with backend.open() as journal:
        for call in (
            lambda: journal.append("nope", ticks(1)),
            lambda: journal.records("nope"),
            lambda: journal.last_seq("nope"),
            lambda: journal.acquire_lease("nope", "ana"),
            lambda: next(journal.follow("nope")),
        ):
            with pytest.raises(JournalError, match="no run 'nope'"):
                call()
        assert journal.verify("nope")[:2] == (False, None)


def test_unencodable_event_writes_nothing(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(run_info())
        with pytest.raises(JournalError, match="fault_injected"):
            journal.append("run-1", [Tick(at=0.0), FaultInjected(at=1.0, fault={"x": {1, 2}})])
        assert journal.last_seq("run-1") == 0
        journal.append("run-1", ticks(1))
        assert journal.verify("run-1")[0]


def test_records_stream_across_pages_while_appending(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(run_info())
        journal.append("run-1", ticks(4500))
        stream = journal.records("run-1", after=10)
        first = next(stream)
        journal.append("run-1", ticks(10, start=4500.0))  # mid-iteration, same connection
        rest = [r.seq for r in stream]
    assert first.seq == 11
    assert rest == list(range(12, 4511))


def test_readonly_journal_never_writes(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(run_info())
    with backend.open(readonly=True) as journal:
        for call in (
            lambda: journal.append("run-1", ticks(1)),
            lambda: journal.create_run(run_info("two")),
            lambda: journal.acquire_lease("run-1", "ana"),
        ):
            with pytest.raises(JournalError, match="read-only"):
                call()
        assert journal.last_seq("run-1") == 0
        assert [r.run_id for r in journal.runs()] == ["run-1"]


def test_closed_journal_says_so(backend: Backend) -> None:
    journal = backend.open()
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.runs()


def test_newer_schema_version_is_refused(backend: Backend) -> None:
    backend.open().close()
    backend.raw(f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    for readonly in (False, True):
        with pytest.raises(JournalError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
            backend.open(readonly=readonly)


def test_same_schema_version_on_both(backend: Backend) -> None:
    backend.open().close()
    assert backend.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)


def test_a_store_that_is_not_a_journal_is_refused(backend: Backend) -> None:
    if backend.name == "sqlite":
        Path(backend.spec).parent.mkdir(parents=True)
    backend.raw("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(JournalError, match="not an interlock journal"):
        backend.open()


def test_second_writer_is_refused_and_the_chain_stays_whole(backend: Backend) -> None:
    first = backend.open()
    first.create_run(run_info())
    first.append("run-1", ticks(2))
    second = backend.open()
    second.append("run-1", ticks(1, start=2.0), operator="second")
    with pytest.raises(JournalError, match="another writer"):
        first.append("run-1", ticks(3, start=3.0))
    assert first.last_seq("run-1") == 3
    first.append("run-1", ticks(1, start=3.0))  # reloads the head after the refusal
    assert [r.operator for r in second.records("run-1")] == ["", "", "second", ""]
    assert second.verify("run-1")[0]
    first.close()
    second.close()


# -- tamper evidence -------------------------------------------------------------


@pytest.fixture
def chained(backend: Backend) -> Backend:
    with backend.open() as journal:
        journal.create_run(run_info())
        journal.create_run(run_info("bystander"))
        journal.append("run-1", ticks(3), operator="ana")
        journal.append("run-1", [ExposureApplied(at=3.0, cmd_id=1, service="r", percent=5.0)])
        journal.append("run-1", ticks(4, start=4.0), operator="bo")
        journal.append("bystander", ticks(2))
        assert journal.verify("run-1") == (True, None, "run run-1: 8 records, chain intact")
    return backend


def audit(backend: Backend, run_id: str | None = None) -> tuple[int, list[str]]:
    with backend.open(readonly=True) as journal:
        return audit_verify(journal, run_id)


def test_untouched_journal_audits_clean(chained: Backend) -> None:
    code, lines = audit(chained)
    assert code == 0
    assert lines[:2] == [
        "ok        run run-1: 8 records, chain intact",
        "ok        run bystander: 2 records, chain intact",
    ]
    assert lines[-1].endswith("2 runs checked, all intact")


def test_changed_body_is_found(chained: Backend) -> None:
    body = encode_event(ExposureApplied(at=3.0, cmd_id=1, service="r", percent=100.0))
    chained.raw(f"UPDATE records SET body = '{body}' WHERE run_id = 'run-1' AND seq = 4")
    code, lines = audit(chained)
    assert code == 1
    assert lines[0] == "TAMPERED  run run-1: record 4 was changed (hash mismatch) (first bad record: 4)"
    assert lines[1].startswith("ok        run bystander")


def test_changed_operator_is_found(chained: Backend) -> None:
    chained.raw("UPDATE records SET operator = 'mallory' WHERE run_id = 'run-1' AND seq = 6")
    code, lines = audit(chained, "run-1")
    assert code == 1 and "record 6 was changed" in lines[0]


def test_deleted_record_is_found(chained: Backend) -> None:
    chained.raw("DELETE FROM records WHERE run_id = 'run-1' AND seq = 5")
    code, lines = audit(chained, "run-1")
    assert code == 1
    assert lines[0] == (
        "TAMPERED  run run-1: record 5 is missing (the next one is 6) (first bad record: 5)"
    )


def test_swapped_records_are_found(chained: Backend) -> None:
    chained.raw(
        "UPDATE records SET seq = -1 WHERE run_id = 'run-1' AND seq = 3",
        "UPDATE records SET seq = 3 WHERE run_id = 'run-1' AND seq = 4",
        "UPDATE records SET seq = 4 WHERE run_id = 'run-1' AND seq = -1",
    )
    code, lines = audit(chained, "run-1")
    assert code == 1
    assert "record 3 does not follow record 2" in lines[0] and "(first bad record: 3)" in lines[0]


def test_records_cut_off_the_end_are_found(chained: Backend) -> None:
    chained.raw("DELETE FROM records WHERE run_id = 'run-1' AND seq > 6")
    with chained.open(readonly=True) as journal:
        ok, bad, message = journal.verify("run-1")
    assert (ok, bad) == (False, 7)
    assert "removed from the end" in message


def test_a_rewritten_chain_still_fails_against_the_head(chained: Backend) -> None:
    """Dropping the last record and fixing nothing else is caught by the run's head."""
    chained.raw("DELETE FROM records WHERE run_id = 'run-1' AND seq = 8")
    assert audit(chained, "run-1")[0] == 1


def test_audit_of_an_unknown_run_is_bad_input(chained: Backend) -> None:
    code, lines = audit(chained, "nope")
    assert code == 2 and "no run 'nope'" in lines[0]


def test_audit_of_an_empty_journal_is_clean(backend: Backend) -> None:
    backend.open().close()
    assert audit(backend) == (0, [f"{backend.open(readonly=True).label}: no runs in this journal"])


# -- one chain, two stores --------------------------------------------------------


def test_a_run_copied_between_backends_verifies_identically(pg_url: str, tmp_path: Path) -> None:
    """Same bytes, same hashes: the chain does not depend on the store."""
    sqlite = Backend("sqlite", str(tmp_path / "j.db"))
    pg = Backend("postgres", pg_url)
    for b in (sqlite, pg):
        with b.open() as journal:
            journal.create_run(run_info())
            journal.append("run-1", EVERY_EVENT, operator="ana")
    columns = "seq, kind, body, operator, prev_hash, hash"
    query = f"SELECT {columns} FROM records WHERE run_id = 'run-1' ORDER BY seq"
    import sqlite3

    import psycopg

    with sqlite3.connect(sqlite.spec) as a, psycopg.connect(pg.spec) as b:
        assert a.execute(query).fetchall() == [tuple(r) for r in b.execute(query).fetchall()]
        head = "SELECT head_seq, head_hash FROM runs WHERE run_id = 'run-1'"
        assert a.execute(head).fetchone() == tuple(b.execute(head).fetchone())  # type: ignore[arg-type]


def test_consoles_opening_a_new_journal_at_once_make_one_schema(backend: Backend) -> None:
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_and_write(n: int) -> None:
        try:
            barrier.wait()
            with backend.open() as journal:
                journal.create_run(run_info(f"run-{n}"))
                journal.append(f"run-{n}", ticks(3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with backend.open(readonly=True) as journal:
        assert sorted(r.run_id for r in journal.runs()) == [f"run-{n}" for n in range(4)]
        assert all(journal.verify(f"run-{n}")[0] for n in range(4))
    assert backend.scalar("SELECT count(*) FROM meta") == 1
