"""Nothing is driven that is not verified first, and a journal survives without its sidecar.

The breaks an adversarial run found (issue 18), each reproduced on a real
journal file: a loosened plan resumed to completion; a damaged B-tree hid the
end of a finished run and resume drove it again; a non-UTF-8 edit printed raw
bytes and exited 2; without its `-wal` file a journal became an empty schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from adapters.journal_chain import JournalDamaged
from adapters.journal_sqlite import SqliteJournal
from tui.session import runtime
from tui.cli.main import EXIT_BAD_INPUT, EXIT_DAMAGED, main

REPO = Path(__file__).resolve().parent.parent


def whole_run(tmp_path: Path, example: str = "recsys.yaml", seed: int = 5) -> Path:
    path = tmp_path / f"whole-{example}.db"
    session = runtime.start_run(REPO / "examples" / example, journal_path=path, seed=seed)
    asyncio.run(session.engine.run())
    session.journal.close()
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui.cli.main", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def bodies(path: Path) -> list[str]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)) as db:
            return [r[0] for r in db.execute("SELECT body FROM records ORDER BY seq")]
    except sqlite3.Error:
        return []


def kill_when(plan: Path, journal: Path, seen: Callable[[list[str]], bool], speed: str = "300") -> None:
    """SIGKILL a real `interlock run` as soon as its journal shows what `seen` waits for."""
    proc = subprocess.Popen(
        cli("run", str(plan), "--headless", "--seed", "5", "--speed", speed, "--journal", str(journal)),
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and not seen(bodies(journal)) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def died_before_the_rollback(tmp_path: Path) -> tuple[Path, int]:
    """The regression example's run, SIGKILLed once ranker is exposed, before its gate fails."""
    journal = tmp_path / "live" / "journal.db"
    kill_when(REPO / "examples" / "recsys-regression.yaml", journal,
              lambda seen: any('"exposure_applied"' in b and '"ranker"' in b for b in seen))
    assert not any('"rolling_back"' in b or '"percent":0.0' in b for b in bodies(journal))
    return journal, len(bodies(journal))


def count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM records").fetchone()[0])


def test_a_loosened_plan_is_found_by_audit_and_never_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, records = died_before_the_rollback(tmp_path)
    shutil.copytree(journal.parent, tmp_path / "untouched")  # with its -wal and the world's state
    untouched = tmp_path / "untouched" / journal.name
    with sqlite3.connect(journal) as db:
        text = db.execute("SELECT plan_text FROM runs").fetchone()[0]
        assert "max: 0.01" in text
        db.execute("UPDATE runs SET plan_text = ?", (text.replace("max: 0.01", "max: 0.9"),))
    assert main(["audit", "verify", "--journal", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "its plan text changed after the run began" in out and "0.9" not in out

    assert main(["resume", "--headless", "--journal", str(journal)]) == EXIT_DAMAGED
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert "its plan text changed" in line and "refused, nothing was driven" in line
    assert count(journal) == records

    assert main(["resume", "--headless", "--speed", "100000", "--journal", str(untouched)]) == 1  # it rolls back
    assert "rollout rolled back" in capsys.readouterr().out


def hide_the_last_leaf(path: Path) -> None:
    """Corrupt one B-tree page the way a torn write can: the records index's interior page
    loses its last child, so the newest records vanish from every query, without an error."""
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    interior = [p for p in range(2, len(data) // size + 1) if data[(p - 1) * size] == 0x02]
    off = (interior[-1] - 1) * size
    cells = int.from_bytes(data[off + 3:off + 5], "big")
    pointer = int.from_bytes(data[off + 12 + 2 * (cells - 1):off + 14 + 2 * (cells - 1)], "big")
    data[off + 8:off + 12] = data[off + pointer:off + pointer + 4]  # last cell's child becomes the right child
    data[off + 3:off + 5] = (cells - 1).to_bytes(2, "big")
    path.write_bytes(bytes(data))


def test_a_damaged_btree_hiding_the_end_of_a_finished_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished = whole_run(tmp_path)
    with SqliteJournal(finished, readonly=True) as journal:
        total = journal.last_seq(journal.runs()[0].run_id)
    damaged = tmp_path / "damaged.db"
    shutil.copy(finished, damaged)
    hide_the_last_leaf(damaged)
    with sqlite3.connect(damaged) as db:  # the break as reported: the run looks unfinished
        assert db.execute("SELECT max(seq) FROM records").fetchone()[0] < total
    before = damaged.read_bytes()

    assert main(["resume", "--headless", "--journal", str(damaged)]) == EXIT_DAMAGED
    [line] = capsys.readouterr().err.splitlines()
    assert "the database file is damaged (SQLite integrity check:" in line
    assert damaged.read_bytes() == before  # nothing written, nothing driven
    assert main(["audit", "verify", "--journal", str(damaged)]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    assert main(["run", str(REPO / "examples" / "recsys.yaml"), "--headless", "--journal", str(damaged)]) == EXIT_DAMAGED
    assert damaged.read_bytes() == before  # a new run is not added to a damaged file either


def test_records_hidden_from_the_integrity_check_are_still_refused_by_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Second line of defence: even if the file's own check passed, the run's sealed head
    says where it ends, and resume refuses a run that ends short of it."""
    damaged = tmp_path / "damaged.db"
    shutil.copy(whole_run(tmp_path), damaged)
    hide_the_last_leaf(damaged)
    monkeypatch.setattr(SqliteJournal, "check_integrity", lambda self: None)
    with pytest.raises(JournalDamaged, match=r"head says it ends at record \d+, but the records end at") as err:
        runtime.resume_run(journal_path=damaged)
    assert err.value.seq is not None and err.value.seq > 1


def test_a_non_utf8_edit_is_tampering_and_no_bytes_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, _ = died_before_the_rollback(tmp_path)
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE records SET body = CAST(X'7B22ff5345435245545F7A7A22' AS TEXT) WHERE seq = 7")
    assert main(["audit", "verify", "--journal", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "record 7 is not valid UTF-8 text" in out and "SECRET" not in out
    for command in (["resume", "--headless"], ["log"]):
        assert main([*command, "--journal", str(journal)]) == EXIT_DAMAGED
        captured = capsys.readouterr()
        assert "record 7 is not valid UTF-8" in captured.err and "SECRET" not in captured.err + captured.out
        assert len(captured.err.splitlines()) == 1


def test_non_utf8_run_facts_are_tampering_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal, _ = died_before_the_rollback(tmp_path)
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE runs SET plan_text = CAST(X'ff5345435245545F7A7A' AS TEXT)")
    assert main(["audit", "verify", "--journal", str(journal)]) == 1
    assert main(["resume", "--headless", "--journal", str(journal)]) == EXIT_DAMAGED
    captured = capsys.readouterr()
    assert "not valid UTF-8" in captured.out + captured.err and "SECRET" not in captured.out + captured.err


def test_resume_never_makes_a_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "journal.db"
    empty.touch()  # what is left when the whole run lived in a lost -wal file
    assert main(["resume", "--headless", "--journal", str(empty)]) == EXIT_BAD_INPUT
    [line] = capsys.readouterr().err.splitlines()
    assert "not an interlock journal (no tables" in line
    assert empty.stat().st_size == 0
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    assert main(["resume", "--headless", "--journal", str(other)]) == EXIT_BAD_INPUT
    assert "not an interlock journal" in capsys.readouterr().err
    with sqlite3.connect(other) as db:
        assert {r[0] for r in db.execute("SELECT name FROM sqlite_master")} == {"photos"}


WRONG_TYPES = [
    ("runs", "plan_text", "X'00ff'"), ("runs", "seed", "'seven'"), ("runs", "speed", "'fast'"),
    ("runs", "operator", "42"), ("runs", "head_seq", "'last'"), ("runs", "head_hash", "X'00'"),
    ("runs", "facts", "X'7b7d'"), ("runs", "seal", "7"),
    ("records", "seq", "'three'"), ("records", "body", "X'7b7d'"), ("records", "operator", "X'ff'"),
    ("records", "hash", "3"), ("records", "prev_hash", "X'00'"), ("records", "at", "'now'"),
    ("records", "kind", "X'01'"),
]


@pytest.mark.parametrize("table, column, value", WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_tampering_never_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, column: str, value: str
) -> None:
    journal = tmp_path / "j.db"
    shutil.copy(whole_run(tmp_path), journal)
    where = " WHERE seq = 3" if table == "records" else ""
    with sqlite3.connect(journal) as db:
        db.execute(f"UPDATE {table} SET {column} = {value}{where}")
    assert main(["audit", "verify", "--journal", str(journal)]) == 1
    for command in (["resume", "--headless"], ["log"], ["runs"]):
        code = main([*command, "--journal", str(journal)])
        captured = capsys.readouterr()
        assert code in (0, 1, 2, 5), (command, code)
        assert "Traceback" not in captured.err and len(captured.err.splitlines()) <= 1, (command, captured.err)


def test_audit_verify_checks_an_anchor_given_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = whole_run(tmp_path)
    assert main(["runs", "--journal", str(journal), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert set(row) == {"run", "rollout", "phase", "driver", "started", "operator", "head"}
    assert row["phase"] == "completed" and row["driver"] is None
    args = ["audit", "verify", "--journal", str(journal), "--run", row["run"]]
    assert main([*args, "--anchor", row["head"]]) == 0
    assert "anchored at record" in capsys.readouterr().out
    seq, digest = row["head"].split(":")
    assert main([*args, "--anchor", f"{seq}:{'0' * 64}"]) == 1
    assert main([*args, "--anchor", "nonsense"]) == 2
    assert main(["audit", "verify", "--journal", str(journal), "--anchor", row["head"]]) == 2
    assert "--anchor needs --run ID" in capsys.readouterr().err


def test_the_end_summary_shows_the_chain_head_to_anchor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.db"
    assert main(["run", str(REPO / "examples" / "recsys.yaml"), "--headless", "--journal", str(journal)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert main(["runs", "--journal", str(journal), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert last == f"journal head of run {row['run']}: {row['head']}"
    other = tmp_path / "k.db"
    assert main(["run", str(REPO / "examples" / "recsys.yaml"), "--headless", "--json", "--journal", str(other)]) == 0
    captured = capsys.readouterr()
    assert "journal head of run" in captured.err and "journal head" not in captured.out  # stdout stays byte for byte
