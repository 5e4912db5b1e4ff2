"""The SQLite journal: round-trips, durability, schema guard, hash chain, concurrent readers.

Tampering is done with raw sqlite3, the way someone editing the file would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.journal_codec import JournalError, decode_event, encode_event
from adapters.journal_sqlite import SCHEMA_VERSION, SqliteJournal
from core.events import (
    EVENT_TYPES,
    Abandoned,
    Adopted,
    GateMisconfigured,
    MeasurementGap,
    CommandFailed,
    Event,
    ExposureApplied,
    ExposureRead,
    FaultInjected,
    CheckFinished,
    Measured,
    MirrorApplied,
    NotificationSent,
    OperatorAction,
    Resumed,
    RolloutStarted,
    Tick,
)
from core.ports import Journal, RunInfo

ROOT = Path(__file__).resolve().parents[1]

EVERY_EVENT: list[Event] = [
    RolloutStarted(at=0.0, rollout="recsys-embeddings-v3", seed=7),
    Tick(at=0.1 + 0.2),
    ExposureApplied(at=60.000000000000014, cmd_id=3, service="ranker", percent=1 / 3),
    CommandFailed(at=61.5, cmd_id=4, error='timeout "router" \u2192 503', attempts=3),
    Measured(at=1e-300, cmd_id=5, service="ranker", gate="errors", value=-0.0, baseline=None),
    Measured(at=2.0, cmd_id=6, service="ranker", gate="latency", error="no data"),
    ExposureRead(at=3.0, cmd_id=7, exposures={"ranker": 25.0, "api": 0.0, "émbedder": 5.5}),
    OperatorAction(at=4.0, action="rollback", service="ranker", operator="ana", reason="p99"),
    FaultInjected(at=5.0, fault={"kind": "error_rate", "value": 0.05, "tags": [1, None]}),
    Resumed(at=1.7976931348623157e308, note="pid 4242"),
    Adopted(at=6.0, exposures={"ranker": 20.0}, targets={"flag:ranker-v6": 20.0}, operator="ana", reason="hand-set"),
    Abandoned(at=7.0, operator="ana", reason="driver's laptop died", by_run="run-2"),
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
        run_id=run_id,
        rollout="recsys",
        plan_path="examples/recsys.yaml",
        plan_text="rollout: recsys\n",
        seed=7,
        clock="virtual",
        speed=float("inf"),
        created="2025-01-02T03:04:05+00:00",
        operator="ana",
    )
    fields.update(changes)
    return RunInfo(**fields)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "er" / "journal.db"


def ticks(n: int, start: float = 0.0) -> list[Event]:
    return [Tick(at=start + i) for i in range(n)]


def run_python(
    code: str, *args: str, stdin: int | None = None, stdout: int | None = None
) -> subprocess.Popen[str]:
    """Run `code` in a fresh interpreter that imports this checkout."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        text=True,
        stdin=stdin,
        stdout=stdout,
    )


# -- round trips -------------------------------------------------------------


def test_samples_cover_every_event_type() -> None:
    assert {e.kind for e in EVERY_EVENT} == set(EVENT_TYPES)


def test_every_event_type_round_trips_through_the_file(db: Path) -> None:
    with SqliteJournal(db) as journal:
        assert isinstance(journal, Journal)
        journal.create_run(run_info())
        journal.append("run-1", EVERY_EVENT, operator="ana")
    with SqliteJournal(db) as journal:
        records = list(journal.records("run-1"))
    assert [r.event for r in records] == EVERY_EVENT
    assert [type(r.event) for r in records] == [type(e) for e in EVERY_EVENT]
    assert [r.seq for r in records] == list(range(1, len(EVERY_EVENT) + 1))
    assert {r.operator for r in records} == {"ana"}
    assert math.copysign(1.0, records[4].event.value) == -1.0  # type: ignore[attr-defined]


def test_bodies_are_compact_sorted_json(db: Path) -> None:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
        journal.append("run-1", EVERY_EVENT)
    rows = sqlite3.connect(db).execute("SELECT kind, at, body FROM records ORDER BY seq")
    for (kind, at, body), event in zip(rows, EVERY_EVENT, strict=True):
        assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        assert body == encode_event(event)
        assert (kind, at) == (event.kind, event.at)


finite = st.floats(allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(at=finite, value=st.none() | finite, baseline=st.none() | finite, service=st.text())
def test_floats_and_text_round_trip_exactly(
    at: float, value: float | None, baseline: float | None, service: str
) -> None:
    event = Measured(at=at, service=service, gate="g", value=value, baseline=baseline)
    back = decode_event(encode_event(event))
    assert back == event
    assert repr(back) == repr(event)  # also -0.0 versus 0.0


def test_nan_and_infinity_are_recorded_not_refused(db: Path) -> None:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
        journal.append("run-1", [Measured(at=1.0, value=math.nan, baseline=-math.inf)])
        (record,) = journal.records("run-1")
        assert math.isnan(record.event.value)  # type: ignore[attr-defined]
        assert record.event.baseline == -math.inf  # type: ignore[attr-defined]
        assert journal.verify("run-1")[0]


def test_unencodable_event_is_a_journal_error_and_writes_nothing(db: Path) -> None:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
        with pytest.raises(JournalError, match="fault_injected"):
            journal.append("run-1", [Tick(at=0.0), FaultInjected(at=1.0, fault={"x": {1, 2}})])
        assert journal.last_seq("run-1") == 0


# -- runs and sequence numbers -----------------------------------------------


def test_runs_in_creation_order_with_all_fields(db: Path) -> None:
    infos = [run_info("zeta"), run_info("alpha", clock="real", speed=60.0, seed=-3), run_info("m")]
    with SqliteJournal(db) as journal:
        for info in infos:
            journal.create_run(info)
        with pytest.raises(JournalError, match="already exists"):
            journal.create_run(run_info("alpha"))
    with SqliteJournal(db, readonly=True) as journal:
        assert journal.runs() == infos


def test_created_is_filled_in_when_empty(db: Path) -> None:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info(created=""))
        (info,) = journal.runs()
    assert info.created.endswith("+00:00") and info.created[:2] == "20"


def test_seq_continues_across_reopen(db: Path) -> None:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
        journal.create_run(run_info("other"))
        journal.append("run-1", ticks(3))
        journal.append("other", ticks(1))
    with SqliteJournal(db) as journal:
        assert journal.last_seq("run-1") == 3
        journal.append("run-1", ticks(2, start=3.0))
        journal.append("run-1", [])
        assert [r.seq for r in journal.records("run-1")] == [1, 2, 3, 4, 5]
        assert [r.event.at for r in journal.records("run-1", after=3)] == [3.0, 4.0]
        assert [r.seq for r in journal.records("other")] == [1]
        assert journal.verify("run-1") == (True, None, "run run-1: 5 records, chain intact")


def test_unknown_run_is_refused(db: Path) -> None:
    with SqliteJournal(db) as journal:
        for call in (
            lambda: journal.append("nope", ticks(1)),
            lambda: journal.records("nope"),
            lambda: journal.last_seq("nope"),
        ):
            with pytest.raises(JournalError, match="no run 'nope'"):
                call()
        assert journal.verify("nope")[:2] == (False, None)


def test_records_stream_across_pages_while_appending(db: Path) -> None:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
        journal.append("run-1", ticks(4500))
        stream = journal.records("run-1", after=10)
        first = next(stream)
        journal.append("run-1", ticks(10, start=4500.0))  # mid-iteration, same connection
        rest = [r.seq for r in stream]
    assert first.seq == 11
    assert rest == list(range(12, 4511))


def test_readonly_journal_never_writes(db: Path) -> None:
    with pytest.raises(JournalError, match="no journal here"):
        SqliteJournal(db, readonly=True)
    assert not db.exists()
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
    with SqliteJournal(db, readonly=True) as journal:
        with pytest.raises(JournalError, match="read-only"):
            journal.append("run-1", ticks(1))
        with pytest.raises(JournalError, match="read-only"):
            journal.create_run(run_info("two"))
        assert journal.last_seq("run-1") == 0


def test_closed_journal_says_so(db: Path) -> None:
    journal = SqliteJournal(db)
    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.runs()


# -- opening: schema, wrong files ---------------------------------------------


def test_fresh_file_gets_wal_full_sync_and_the_schema(db: Path) -> None:
    with SqliteJournal(db) as journal:
        assert journal._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)


def test_newer_schema_version_is_refused(db: Path) -> None:
    SqliteJournal(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    for readonly in (False, True):
        with pytest.raises(JournalError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
            SqliteJournal(db, readonly=readonly)


@pytest.mark.parametrize("content", [b"plan: not a database\n" * 200, b"\x00\xff" * 4096])
def test_not_a_database_is_refused(db: Path, content: bytes) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    for readonly in (False, True):
        with pytest.raises(JournalError, match="not an interlock journal") as caught:
            SqliteJournal(db, readonly=readonly)
        assert str(db) in str(caught.value)
    assert db.read_bytes() == content


def test_other_sqlite_database_is_refused(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(JournalError, match="not an interlock journal"):
        SqliteJournal(db)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot open"):
        SqliteJournal(tmp_path)


# -- durability --------------------------------------------------------------


def test_append_survives_the_process_dying_right_after(db: Path) -> None:
    writer = run_python(
        """
        import os, sys
        from adapters.journal_sqlite import SqliteJournal
        from core.events import Tick
        from core.ports import RunInfo
        j = SqliteJournal(sys.argv[1])
        j.create_run(RunInfo("r", "ro", "p", "t", 1, "virtual", 1.0, "2025-01-01"))
        j.append("r", [Tick(at=float(i)) for i in range(250)], operator="ci")
        os._exit(0)
        """,
        str(db),
    )
    assert writer.wait(timeout=30) == 0
    with SqliteJournal(db) as journal:
        assert [r.event.at for r in journal.records("r")] == [float(i) for i in range(250)]
        assert journal.verify("r")[0]
        journal.append("r", ticks(1))
        assert journal.last_seq("r") == 251


# -- hash chain ----------------------------------------------------------------


def tamper(db: Path, *statements: str) -> None:
    with sqlite3.connect(db) as raw:
        for statement in statements:
            raw.execute(statement)


@pytest.fixture
def chained(db: Path) -> Path:
    with SqliteJournal(db) as journal:
        journal.create_run(run_info())
        journal.create_run(run_info("bystander"))
        journal.append("run-1", ticks(3), operator="ana")
        journal.append("run-1", [ExposureApplied(at=3.0, cmd_id=1, service="r", percent=5.0)])
        journal.append("run-1", ticks(4, start=4.0), operator="bo")
        journal.append("bystander", ticks(2))
        assert journal.verify("run-1") == (True, None, "run run-1: 8 records, chain intact")
    return db


def verdict(db: Path) -> tuple[bool, int | None, str]:
    with SqliteJournal(db, readonly=True) as journal:
        return journal.verify("run-1")


def test_changed_body_is_found(chained: Path) -> None:
    body = encode_event(ExposureApplied(at=3.0, cmd_id=1, service="r", percent=100.0))
    tamper(chained, f"UPDATE records SET body = '{body}' WHERE run_id = 'run-1' AND seq = 4")
    ok, bad, message = verdict(chained)
    assert (ok, bad) == (False, 4)
    assert "record 4 was changed" in message


def test_changed_operator_is_found(chained: Path) -> None:
    tamper(chained, "UPDATE records SET operator = 'mallory' WHERE run_id = 'run-1' AND seq = 6")
    assert verdict(chained)[:2] == (False, 6)


def test_changed_kind_column_is_found(chained: Path) -> None:
    tamper(chained, "UPDATE records SET kind = 'operator' WHERE run_id = 'run-1' AND seq = 2")
    assert verdict(chained)[:2] == (False, 2)


def test_deleted_record_is_found(chained: Path) -> None:
    tamper(chained, "DELETE FROM records WHERE run_id = 'run-1' AND seq = 5")
    ok, bad, message = verdict(chained)
    assert (ok, bad) == (False, 5)
    assert "record 5 is missing" in message


def test_deleted_first_record_is_found(chained: Path) -> None:
    tamper(chained, "DELETE FROM records WHERE run_id = 'run-1' AND seq = 1")
    assert verdict(chained)[:2] == (False, 1)


def test_swapped_records_are_found(chained: Path) -> None:
    tamper(
        chained,
        "UPDATE records SET seq = -1 WHERE run_id = 'run-1' AND seq = 3",
        "UPDATE records SET seq = 3 WHERE run_id = 'run-1' AND seq = 4",
        "UPDATE records SET seq = 4 WHERE run_id = 'run-1' AND seq = -1",
    )
    ok, bad, message = verdict(chained)
    assert (ok, bad) == (False, 3)
    assert "record 3" in message


def test_swapped_bodies_are_found(chained: Path) -> None:
    tamper(
        chained,
        "UPDATE records SET body = (SELECT body FROM records WHERE run_id = 'run-1' AND seq = 7)"
        " WHERE run_id = 'run-1' AND seq = 6",
    )
    assert verdict(chained)[:2] == (False, 6)


def test_records_cut_off_the_end_are_found(chained: Path) -> None:
    tamper(chained, "DELETE FROM records WHERE run_id = 'run-1' AND seq > 6")
    ok, bad, message = verdict(chained)
    assert (ok, bad) == (False, 7)
    assert "removed from the end" in message


def test_other_runs_are_untouched_by_tampering(chained: Path) -> None:
    tamper(chained, "DELETE FROM records WHERE run_id = 'run-1' AND seq = 2")
    with SqliteJournal(chained, readonly=True) as journal:
        assert journal.verify("bystander")[0]


def test_undecodable_body_is_a_journal_error_naming_the_record(chained: Path) -> None:
    tamper(chained, """UPDATE records SET body = '{"kind":"warp","at":1}' WHERE seq = 2""")
    with SqliteJournal(chained, readonly=True) as journal:
        stream = journal.records("run-1")
        assert next(stream).seq == 1
        with pytest.raises(JournalError, match="record 2: cannot decode"):
            next(stream)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"kind":"tick","at":1,"extra":2}', "unknown field"),
        ('{"kind":"measured","at":1,"cmd_id":"x","value":[1]}', None),  # types are not checked, as before
        ('[1, 2]', "not an object"),
        ('{"at":1}', "no kind"),
    ],
)
def test_bodies_that_are_not_exactly_an_event(body: str, problem: str | None) -> None:
    """A body naming exactly an event's fields is adopted as it is; anything else goes
    through the constructor, which fills defaults and refuses what it does not know."""
    if problem is None:
        event = decode_event(body)
        assert isinstance(event, Measured) and event.cmd_id == "x" and event.service == ""
        return
    with pytest.raises((TypeError, KeyError)):
        decode_event(body)


def test_an_older_body_without_a_newer_field_gets_its_default() -> None:
    full = Measured(at=2.0, cmd_id=3, service="ranker", gate="errors", value=0.5)
    adopted = decode_event(encode_event(full))
    assert adopted == full and repr(adopted) == repr(full)
    assert decode_event('{"kind":"measured","at":2.0,"cmd_id":3,"service":"ranker","gate":"errors","value":0.5}') == full
    with pytest.raises(dataclasses.FrozenInstanceError):
        adopted.value = 1.0  # type: ignore[misc]


# -- more than one process -----------------------------------------------------


def test_second_writer_is_refused_and_the_chain_stays_whole(db: Path) -> None:
    first = SqliteJournal(db)
    first.create_run(run_info())
    first.append("run-1", ticks(2))
    second = SqliteJournal(db)
    second.append("run-1", ticks(1, start=2.0), operator="second")
    with pytest.raises(JournalError, match="another writer"):
        first.append("run-1", ticks(3, start=3.0))
    assert first.last_seq("run-1") == 3
    assert first.verify("run-1")[0]
    first.append("run-1", ticks(1, start=3.0))  # reloads the head after the refusal
    assert [r.operator for r in second.records("run-1")] == ["", "", "second", ""]
    assert second.verify("run-1")[0]
    first.close()
    second.close()


WRITER = """
    import sys
    from adapters.journal_sqlite import SqliteJournal
    from core.events import Tick
    from core.ports import RunInfo
    j = SqliteJournal(sys.argv[1])
    j.create_run(RunInfo("r", "ro", "p", "t", 1, "virtual", 1.0, "2025-01-01"))
    for batch in range(int(sys.argv[2])):
        j.append("r", [Tick(at=batch * 50.0 + i) for i in range(50)])
        print(batch, flush=True)
        if sys.stdin.readline().strip() != "go":
            break
    j.close()
"""


def test_reader_in_another_process_sees_each_batch_as_it_commits(db: Path) -> None:
    batches = 6
    writer = run_python(
        WRITER, str(db), str(batches), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "0"
        with SqliteJournal(db, readonly=True) as reader:
            for batch in range(batches):
                if batch:
                    writer.stdin.write("go\n")
                    writer.stdin.flush()
                    assert writer.stdout.readline().strip() == str(batch)
                seqs = [r.seq for r in reader.records("r")]
                assert seqs == list(range(1, 50 * (batch + 1) + 1))
                assert reader.verify("r")[0]
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.wait(timeout=30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_reader_is_not_blocked_by_an_open_write_and_does_not_see_it(chained: Path) -> None:
    raw = sqlite3.connect(chained, isolation_level=None)
    raw.execute("PRAGMA busy_timeout = 0")
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("DELETE FROM records WHERE run_id = 'run-1' AND seq > 2")
    try:
        with SqliteJournal(chained, readonly=True) as reader:
            assert reader.last_seq("run-1") == 8
            assert len(list(reader.records("run-1"))) == 8
    finally:
        raw.execute("ROLLBACK")
        raw.close()


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.integers(min_value=0, max_value=2**63), st.text(), st.text())
def test_the_fast_chain_material_is_the_encoders_byte_for_byte(
    prev: str, run_id: str, seq: int, operator: str, body: str
) -> None:
    """`chain_hash` writes its JSON array by hand for speed; it must hash exactly what the
    documented encoding (`encode_body([prev, run_id, seq, operator, body])`) gives."""
    from adapters.journal_codec import encode_body, quote_json, chain_hash, mac

    expected = mac(None, encode_body([prev, run_id, seq, operator, body]))
    assert chain_hash(prev, run_id, seq, operator, body) == expected
    assert chain_hash(prev, quote_json(run_id), seq, operator, body) == expected
    assert chain_hash(prev, run_id, seq, operator, body, b"k") == mac(b"k", encode_body([prev, run_id, seq, operator, body]))
