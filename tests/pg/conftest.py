"""One real PostgreSQL for the whole session, and a `backend` fixture that runs a test
against SQLite and against PostgreSQL.

The server is started once (about a second) through `adapters.stack.postgres`,
the code `interlock stack up` uses; each test gets a schema of its own (its URL
sets the search_path) and drops it afterwards. Where PostgreSQL cannot start,
the PostgreSQL tests are skipped with the reason on a developer's machine, but
in CI (`CI` set) they fail: CI must prove the shared journal, not leave it out.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pgtools import Backend, run_python

from adapters.stack.postgres import PgServer, PostgresUnavailable, start_postgres

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    base = Path(tempfile.mkdtemp(prefix="interlock-pg-"))
    base.chmod(0o711)  # as root, the server runs as `postgres` and must enter this folder
    try:
        try:
            server = start_postgres(base)
        except PostgresUnavailable as exc:
            message = f"PostgreSQL is needed for the shared-journal tests and cannot start: {exc}"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """An empty schema of its own for one test, as a journal URL (its search_path)."""
    import psycopg

    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')  # type: ignore[call-overload]
    try:
        yield f"{pg_server.url}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(pg_server.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')  # type: ignore[call-overload]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "j" / "journal.db"))
    return Backend("postgres", request.getfixturevalue("pg_url"))


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """`run_python`, with every process it started killed at the end of the test."""
    started: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str, **popen: object) -> subprocess.Popen[str]:
        proc = run_python(code, *args, **popen)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
