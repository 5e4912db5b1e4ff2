"""The throwaway PostgreSQL server, the `--journal` factory, and keeping passwords out of sight."""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.journal_codec import JournalError
from adapters.journal_pg import PgJournal
from adapters.journal_sqlite import SqliteJournal
from adapters.journals import journal_label, mask_url, open_journal
from adapters.stack import PgServer, PostgresUnavailable, start_postgres
from adapters.stack import postgres as stack_pg
from core.ports import RunInfo


def test_session_server_is_loopback_only_and_trusts_loopback(pg_server: PgServer) -> None:
    assert re.fullmatch(r"postgresql://interlock@127\.0\.0\.1:\d+/interlock", pg_server.url)
    with psycopg.connect(pg_server.url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        assert conn.execute("SHOW port").fetchone() == (str(pg_server.port),)
    assert pg_server.running()


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder the `postgres` user can enter (tmp_path's parents are private to root)."""
    base = Path(tempfile.mkdtemp(prefix="interlock-pg-test-"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_stop_is_idempotent_and_a_restart_keeps_the_data(pg_server: PgServer, scratch: Path) -> None:
    server = start_postgres(scratch)
    try:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE kept (x INTEGER)")
            conn.execute("INSERT INTO kept VALUES (42)")
        port = server.port
    finally:
        server.stop()
    server.stop()
    assert not server.running()
    with socket.socket() as busy:  # the port is taken now: a clear error, with the server's words
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old server's TIME_WAIT
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(PostgresUnavailable, match=rf"did not start on 127\.0\.0\.1:{port}"):
            start_postgres(scratch, port)
    with start_postgres(scratch) as again:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
    assert not again.running()


def test_missing_binaries_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack_pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(stack_pg.glob, "glob", lambda pattern: [])
    with pytest.raises(PostgresUnavailable, match=r"apt-get install postgresql-15"):
        start_postgres(tmp_path)
    assert not (tmp_path / "pg").exists()


def test_a_folder_the_server_user_cannot_enter_is_explained(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    if os.geteuid() == 0:  # the server must run as `postgres`, who cannot enter root's 0700 folder
        os.chmod(tmp_path, 0o700)
        with pytest.raises(PostgresUnavailable, match="cannot reach this folder"):
            start_postgres(private)
    else:  # as anyone else the server runs as ourselves, so the same folder works
        with start_postgres(private) as server:
            assert server.run_as is None


# -- the factory -------------------------------------------------------------------


def test_open_journal_picks_the_backend(tmp_path: Path, pg_url: str) -> None:
    for spec in (tmp_path / "a.db", str(tmp_path / "b.db")):
        with open_journal(spec) as journal:
            assert isinstance(journal, SqliteJournal)
    with open_journal(pg_url) as journal:
        assert isinstance(journal, PgJournal)
    with open_journal(pg_url.replace("postgresql://", "postgres://"), readonly=True) as journal:
        assert isinstance(journal, PgJournal) and journal.readonly


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no journal given"),
        ("   ", "no journal given"),
        ("mysql://ana:hunter2@db/x", r"mysql://ana:\*\*\*@db/x: unsupported journal address"),
        ("sqlite:///tmp/x.db", "unsupported journal address"),
        (Path("postgresql://ana@db/x"), "unsupported journal address"),  # a URL mangled into a Path
    ],
)
def test_open_journal_refuses_what_it_cannot_open(spec: str | Path, message: str) -> None:
    with pytest.raises(JournalError, match=message) as refused:
        open_journal(spec)
    assert "hunter2" not in str(refused.value)


# -- secrets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://ana:s3cr%40t@db.example:5432/j", "postgresql://ana:***@db.example:5432/j"),
        (
            "postgresql://ana@db/j?sslmode=require&password=s3cret",
            "postgresql://ana@db/j?sslmode=require&password=***",
        ),
        ("postgresql://db/j", "postgresql://db/j"),
        ("postgresql://:pw@db/j", "postgresql://:***@db/j"),
        ("postgresql://db/j?sslmode=require&api_key=k1&x_token=t2", "postgresql://db/j?sslmode=require&api_key=***&x_token=***"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert journal_label(url) == masked
    assert journal_label(Path("/x/journal.db")) == "/x/journal.db"


def test_the_password_never_shows(pg_server: PgServer) -> None:
    secret = "n0t-for-your-eyes"
    url = pg_server.url.replace("interlock@", f"interlock:{secret}@")  # trust auth ignores it
    with PgJournal(url) as journal:
        assert secret not in repr(journal) and secret not in journal.label
        info = RunInfo("r", "ro", "p", "t", 1, "virtual", 1.0, "", "")
        journal.create_run(info)
        with pytest.raises(JournalError) as failed:
            journal.create_run(info)
        assert secret not in str(failed.value) and "***" in str(failed.value)
        scrubbed = journal._explain(psycopg.OperationalError(f"auth failed for {secret}"))
        assert secret not in scrubbed and scrubbed.endswith("auth failed for ***")
    missing = url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(JournalError, match="cannot reach the journal database") as refused:
        PgJournal(missing)
    assert secret not in str(refused.value)
    assert str(refused.value).startswith(f"postgresql://interlock:***@127.0.0.1:{pg_server.port}/no_such_db: ")


def test_in_ci_a_postgres_that_cannot_start_fails_the_tests(tmp_path: Path) -> None:
    """The session fixture must not turn a missing PostgreSQL into a green CI run."""
    import subprocess
    import sys

    from pgtools import ROOT

    code = (
        "import sys, pytest, adapters.stack.postgres as pg\n"
        "def missing():\n"
        "    raise pg.PostgresUnavailable('initdb not found; apt-get install postgresql-15')\n"
        "pg.find_pg_bin = missing\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', sys.argv[1]]))\n"
    )
    target = "tests/pg/test_pg_stack.py::test_session_server_is_loopback_only_and_trusts_loopback"
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout and "skipped" not in done.stdout
    assert "PostgreSQL is needed for the shared-journal tests and cannot start" in done.stdout
