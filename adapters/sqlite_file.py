"""Opening the journal's SQLite file and naming what goes wrong with it.

The schema, the connection settings (WAL, full sync, the busy timeout, read-only and
immutable reads) and the one-line translation of SQLite's errors for an operator live
here, apart from the journal's records and runs (:mod:`adapters.journal_sqlite`), because
they are what changes when SQLite or the file's situation does (a read-only disk, a lost
`-wal`, damaged bytes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.journal_chain import JournalDamaged
from adapters.journal_common import NotText
from adapters.journal_codec import JournalError, JournalIOError

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    rollout TEXT NOT NULL,
    plan_path TEXT NOT NULL,
    plan_text TEXT NOT NULL,
    seed INTEGER NOT NULL,
    clock TEXT NOT NULL,
    speed REAL,
    created TEXT NOT NULL,
    operator TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL,
    seal TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    head_mac TEXT NOT NULL
);
CREATE TABLE records (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    operator TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""

RELAXED_AUTOCHECKPOINT = 4096
"""WAL pages (4 KiB) between SQLite's own checkpoints in a relaxed journal (default 1000): each
costs three syncs, and a virtual run of examples/recsys.yaml writes some 1,700."""

BUSY_TIMEOUT = 5.0
"""Seconds a statement (and opening) waits for another process's lock."""

def connect(path: Path, *, readonly: bool, create: bool, relaxed: bool = False) -> sqlite3.Connection:
    """A connection to the journal file: WAL and full sync for a writer; `create=False` opens
    only a file that already has tables. `relaxed` (`SqliteJournal.relax_sync`) commits
    without syncing (`synchronous=NORMAL`, auto-checkpoints every `RELAXED_AUTOCHECKPOINT`
    pages); a new file is not synced at all (`synchronous=OFF`) until the journal calls
    `settle`: there is nothing in it yet to protect but what is being written."""
    if readonly:
        return connect_readonly(path)
    if not create and not path.is_file():
        raise JournalError(f"{path}: no journal here")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalIOError(f"{path}: cannot create its directory ({exc.strerror})") from None
    fresh = relaxed and (not path.exists() or path.stat().st_size == 0)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        if fresh:
            conn.execute("PRAGMA synchronous = OFF")
        if not create and not conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall():
            raise no_tables(path)  # before WAL mode, which would write a header page
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{path}: cannot switch the journal to WAL mode")
            conn.execute(f"PRAGMA synchronous = {'OFF' if fresh else 'NORMAL' if relaxed else 'FULL'}")
            if relaxed:
                conn.execute(f"PRAGMA wal_autocheckpoint = {RELAXED_AUTOCHECKPOINT}")
    except BaseException:
        conn.close()
        raise
    return conn

def settle(conn: sqlite3.Connection) -> None:
    """After a relaxed new file's schema and first run are written (unsynced): from now on
    `synchronous=NORMAL`, where every checkpoint syncs the WAL before copying it into the
    file, so the file can lose recent commits to a power cut but is never left damaged."""
    conn.execute("PRAGMA synchronous = NORMAL")

def connect_readonly(path: Path) -> sqlite3.Connection:
    """Read-only; on a read-only file or directory where SQLite cannot make the WAL's
    shared-memory file, the file is read as immutable (nobody can be writing it)."""
    if not path.is_file():
        raise JournalError(f"{path}: no journal here")
    base = path.resolve().as_uri()
    conn = sqlite3.connect(base + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise
    return sqlite3.connect(base + "?mode=ro&immutable=1", uri=True, isolation_level=None,
                           check_same_thread=False)

def no_tables(path: Path) -> JournalError:
    return JournalError(
        f"{path}: not an interlock journal (no tables; if it was one, its -wal "
        "file may have been lost before a checkpoint)"
    )

def damaged_text(path: Path) -> JournalDamaged:
    """A damaged schema or page can make SQLite's answer (or its error message) bytes
    that are not UTF-8: Python's sqlite3 then raises UnicodeDecodeError, never a
    sqlite3.Error. The decoding boundary turns it into this one line."""
    return JournalDamaged(f"{path}: the database file is damaged (SQLite answered with bytes that are not text)")

def sqlite_error(path: Path, exc: sqlite3.Error, suffix: str = "") -> JournalError:
    """The operator's one line for a SQLite error (never a record's contents)."""
    text = str(exc)
    if "Could not decode to UTF-8" in text:
        return NotText(f"{path}: a stored value is not valid UTF-8 text: it was changed outside interlock")
    if "malformed" in text:
        return JournalDamaged(f"{path}: the database file is damaged (SQLite: database disk image is malformed){suffix}")
    if "not a database" in text:
        return JournalError(f"{path}: not an interlock journal (not a SQLite database, or damaged){suffix}")
    if "locked" in text or "busy" in text:
        return JournalError(f"{path}: the journal is locked by another process; try again{suffix}")
    if "full" in text:
        return JournalIOError(f"{path}: the disk is full: the journal cannot grow{suffix}")
    if "readonly" in text or "read-only" in text:
        return JournalIOError(f"{path}: the journal is read-only here (file, directory or disk){suffix}")
    if "disk I/O" in text or "unable to open" in text:
        where = "cannot open the journal file" if "unable to open" in text else "the disk reported an I/O error"
        return JournalIOError(f"{path}: {where}{suffix}")
    return JournalError(f"{path}: journal error: {text.splitlines()[0] if text else type(exc).__name__}{suffix}")


def busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text
