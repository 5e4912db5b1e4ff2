"""What the hash chain covers and what an audit key adds, on SQLite and on PostgreSQL.

Everything that decides a run (plan text, seed, clock, speed, operator...) is
chained through the run's genesis, so an edit of any of them is found and
named. With `INTERLOCK_AUDIT_KEY`, someone who can write the store but lacks
the key can neither rebuild a chain that verifies nor move the run's head.
Tampering is done with raw SQL, the way someone editing the store would.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pgtools import Backend

from adapters.journal_chain import AUDIT_KEY_ENV, genesis, head_mac, run_facts
from adapters.journal_codec import SCHEMA_VERSION, JournalError, chain_hash
from adapters.journals import audit_verify
from core.events import Event, ExposureApplied, Tick
from core.ports import RunInfo

KEY = "correct horse battery staple"


def run_info(run_id: str = "run-1", **changes: object) -> RunInfo:
    fields: dict[str, object] = dict(
        run_id=run_id, rollout="recsys", plan_path="examples/recsys.yaml",
        plan_text="gates:\n  errors: {metric: error_rate, max: 0.01}\n", seed=7, clock="real",
        speed=60.0, created="2025-01-02T03:04:05+00:00", operator="ana@laptop",
    )
    fields.update(changes)
    return RunInfo(**fields)  # type: ignore[arg-type]


def events() -> list[Event]:
    return [Tick(at=0.0), ExposureApplied(at=1.0, cmd_id=1, service="r", percent=5.0), Tick(at=2.0), Tick(at=3.0)]


def make(backend: Backend) -> Backend:
    with backend.open() as journal:
        journal.create_run(run_info())
        journal.create_run(run_info("bystander"))
        journal.append("run-1", events(), operator="ana")
        journal.append("bystander", events()[:2])
    return backend


def audit(backend: Backend, run_id: str | None = None) -> tuple[int, list[str]]:
    with backend.open(readonly=True) as journal:
        return audit_verify(journal, run_id)


@pytest.mark.parametrize(
    "column, value, named",
    [
        ("plan_text", "'gates:\n  errors: {metric: error_rate, max: 0.9}\n'", "plan text"),
        ("seed", "8", "seed"),
        ("clock", "'virtual'", "clock"),
        ("speed", "6000", "speed"),
        ("operator", "'mallory@box'", "operator"),
        ("plan_path", "'other.yaml'", "plan path"),
        ("rollout", "'other'", "rollout name"),
        ("created", "'2030-01-01T00:00:00+00:00'", "start time"),
    ],
)
def test_an_edit_of_anything_that_decides_the_run_is_found_and_named(
    backend: Backend, column: str, value: str, named: str
) -> None:
    make(backend)
    backend.raw(f"UPDATE runs SET {column} = {value} WHERE run_id = 'run-1'")
    code, lines = audit(backend)
    assert code == 1
    assert lines[0].startswith(f"TAMPERED  run run-1: its {named} changed after the run began")
    assert lines[1].startswith("ok        run bystander")
    assert "0.9" not in "\n".join(lines)  # never the contents


def test_an_edit_of_a_fact_and_its_digest_is_found_at_the_genesis(backend: Backend) -> None:
    make(backend)
    info = run_info(seed=8)
    backend.raw(f"UPDATE runs SET seed = 8, facts = '{run_facts(info)}' WHERE run_id = 'run-1'")
    code, lines = audit(backend, "run-1")
    assert code == 1 and "record 1 does not follow the run's genesis" in lines[0]
    assert "(first bad record: 1)" in lines[0]


def test_a_run_without_records_has_its_genesis_as_head(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(run_info())
    backend.raw("UPDATE runs SET plan_text = 'x' WHERE run_id = 'run-1'")
    assert audit(backend)[0] == 1


def recompute(backend: Backend, run_id: str = "run-1", key: bytes | None = None, cut: int | None = None) -> None:
    """Rebuild a run's whole chain the way an attacker with write access (and `key`) would:
    change record 2's percent, recompute every hash and the head, optionally cut the tail."""
    if backend.name == "sqlite":
        import sqlite3

        conn = sqlite3.connect(backend.spec)
        q = lambda sql, *a: conn.execute(sql.replace("%s", "?"), a).fetchall()  # noqa: E731
    else:
        import psycopg

        conn = psycopg.connect(backend.spec, autocommit=True)  # type: ignore[assignment]
        q = lambda sql, *a: conn.execute(sql, a).fetchall() if sql.lstrip().startswith("SELECT") else conn.execute(sql, a)  # type: ignore[assignment]  # noqa: E731
    facts, seal = q("SELECT facts, seal FROM runs WHERE run_id = %s", run_id)[0]
    prev = genesis(run_id, facts, seal, key)
    rows = q("SELECT seq, operator, body FROM records WHERE run_id = %s ORDER BY seq", run_id)
    if cut is not None:
        q("DELETE FROM records WHERE run_id = %s AND seq > %s", run_id, cut)
        rows = rows[:cut]
    seq = 0
    for seq, operator, body in rows:
        body = body.replace('"percent":5.0', '"percent":100.0')
        digest = chain_hash(prev, run_id, seq, operator, body, key)
        q("UPDATE records SET body = %s, prev_hash = %s, hash = %s WHERE run_id = %s AND seq = %s",
          body, prev, digest, run_id, seq)
        prev = digest
    q("UPDATE runs SET head_seq = %s, head_hash = %s, head_mac = %s WHERE run_id = %s",
      seq, prev, head_mac(run_id, seq, prev, key), run_id)
    if backend.name == "sqlite":
        conn.commit()
    conn.close()


def test_without_a_key_a_recomputed_chain_verifies(backend: Backend) -> None:
    """The documented limit: SHA-256 alone cannot tell a recomputed chain from the original."""
    recompute(make(backend))
    assert audit(backend)[0] == 0


def test_with_a_key_a_chain_recomputed_without_it_is_found(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, KEY)
    make(backend)
    assert audit(backend)[0] == 0
    assert audit(backend)[1][0].endswith("chain intact (HMAC)")
    recompute(backend, key=hashlib.sha256(b"a guess").digest())
    code, lines = audit(backend, "run-1")
    assert code == 1 and "record 1 does not follow the run's genesis" in lines[0]
    assert KEY not in "\n".join(lines)


def test_with_a_key_a_cut_tail_with_the_head_moved_is_found(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, KEY)
    make(backend)
    second = str(backend.scalar("SELECT hash FROM records WHERE run_id = 'run-1' AND seq = 2"))
    backend.raw(
        "DELETE FROM records WHERE run_id = 'run-1' AND seq > 2",
        f"UPDATE runs SET head_seq = 2, head_hash = '{second}' WHERE run_id = 'run-1'",
    )
    code, lines = audit(backend, "run-1")
    assert code == 1 and "the run's head (record 2) is not sealed: it was moved" in lines[0]


def test_without_a_key_a_cut_tail_with_the_head_moved_verifies(backend: Backend) -> None:
    """The documented limit: without a key, anyone can re-seal an earlier head."""
    recompute(make(backend), cut=2)
    assert audit(backend)[0] == 0


def test_a_sealed_run_needs_the_same_key(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, KEY)
    make(backend)
    monkeypatch.delenv(AUDIT_KEY_ENV)
    code, lines = audit(backend, "run-1")
    assert code == 1 and f"sealed with an audit key: set {AUDIT_KEY_ENV} to verify it" in lines[0]
    monkeypatch.setenv(AUDIT_KEY_ENV, "another key")
    code, lines = audit(backend, "run-1")
    assert code == 1 and "sealed with another audit key" in lines[0]
    with backend.open() as journal, pytest.raises(JournalError, match="sealed with another audit key"):
        journal.append("run-1", [Tick(at=9.0)])


def test_with_a_key_an_unsealed_run_does_not_verify(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Else stripping the seal and recomputing with SHA-256 would pass."""
    make(backend)
    monkeypatch.setenv(AUDIT_KEY_ENV, KEY)
    code, lines = audit(backend, "run-1")
    assert code == 1 and "is not sealed with an audit key" in lines[0]


def test_the_key_is_never_stored(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, KEY)
    make(backend)
    dump = str(backend.scalar("SELECT string_agg(facts || seal || head_mac, '') FROM runs")
               if backend.name == "postgres" else backend.scalar("SELECT group_concat(facts || seal || head_mac) FROM runs"))
    assert KEY not in dump and hashlib.sha256(KEY.encode()).hexdigest() not in dump


def test_a_schema_version_1_journal_is_refused_in_one_line(backend: Backend) -> None:
    backend.open().close()
    backend.raw("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    assert SCHEMA_VERSION == 2
    for readonly in (False, True):
        with pytest.raises(JournalError, match="schema version 1 predates chained run facts") as err:
            backend.open(readonly=readonly)
        assert "\n" not in str(err.value)


def test_opening_without_create_never_makes_the_tables(backend: Backend) -> None:
    """What `resume` opens: a store without interlock's tables is an error, left as it was."""
    from adapters.journals import open_journal

    if backend.name == "sqlite":
        Path(backend.spec).parent.mkdir(parents=True)
        Path(backend.spec).touch()
    with pytest.raises(JournalError, match="not an interlock journal"):
        open_journal(backend.spec, create=False)
    if backend.name == "sqlite":
        assert Path(backend.spec).stat().st_size == 0
    else:
        assert backend.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == 0


def anchored(backend: Backend, run_id: str, anchor: tuple[int, str]) -> tuple[int, list[str]]:
    with backend.open(readonly=True) as journal:
        return audit_verify(journal, run_id, anchor)


def test_an_anchor_catches_what_a_keyless_chain_cannot(backend: Backend) -> None:
    """A head noted elsewhere (as `interlock runs` prints it) must still be in the run: a
    rebuilt chain, a cut tail with its head moved, and a deleted run all fail, key or not."""
    make(backend)
    with backend.open(readonly=True) as journal:
        head, genesis_head = journal.head("run-1"), (0, journal.anchored_hash("run-1", 0) or "")
    code, lines = anchored(backend, "run-1", head)
    assert code == 0 and lines[0].endswith(f"chain intact; anchored at record {head[0]}")
    assert anchored(backend, "run-1", genesis_head)[0] == 0

    recompute(backend)  # passes a keyless audit, as the limit says
    assert audit(backend, "run-1")[0] == 0
    code, lines = anchored(backend, "run-1", head)
    assert code == 1 and f"record {head[0]} no longer has its anchored hash" in lines[0]


def test_an_anchor_catches_a_cut_tail_and_a_deleted_run(backend: Backend) -> None:
    make(backend)
    with backend.open(readonly=True) as journal:
        head = journal.head("run-1")
    recompute(backend, cut=2)
    code, lines = anchored(backend, "run-1", head)
    assert code == 1 and f"record {head[0]} is gone" in lines[0]
    backend.raw("DELETE FROM records WHERE run_id = 'run-1'", "DELETE FROM runs WHERE run_id = 'run-1'")
    assert audit(backend)[0] == 0  # a deleted run leaves nothing to check...
    code, lines = anchored(backend, "run-1", head)
    assert code == 1 and "was anchored at record 4 but is not in this journal: it was deleted" in lines[0]
