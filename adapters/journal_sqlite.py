"""The embedded journal: one SQLite file in WAL mode, the rollout's source of truth.

Why these choices:
- WAL lets `interlock watch`/`log` read in another process while the engine
  appends, without either waiting on the other; `synchronous=FULL` makes every
  commit reach the disk before `append` returns (the engine acts only after).
- One transaction per `append` call: callers batch, and a batch costs one fsync.
- Each run's last (seq, hash) is cached, so an append costs no read. A second
  writer on the same run makes the cache stale; the next append then collides
  on the (run_id, seq) primary key or on the run's head, and raises instead of
  forking the chain.
- The run's head (last seq and hash) is also stored in `runs`, so `verify` sees
  records cut off the end, which a hash chain alone cannot.
- `records` reads in keyset pages, holding no statement open between pages:
  constant memory over a million events, no snapshot pinned while the caller
  works, and appends on the same connection stay possible mid-iteration.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from adapters.journal_common import RUN_COLUMNS, JournalCommon
from adapters.journal_codec import (
    SCHEMA_VERSION,
    JournalError,
    chain_records,
)
from adapters.lease import FileLease, acquire_file_lease
from core.events import Event
from core.ports import Record, RunInfo

__all__ = ["SCHEMA_VERSION", "JournalError", "SqliteJournal"]

FOLLOW_POLL = 0.2
"""Seconds between looks for new records in `follow` (SQLite cannot notify)."""

_SCHEMA = """
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
    head_seq INTEGER NOT NULL DEFAULT 0,
    head_hash TEXT NOT NULL DEFAULT ''
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

_INSERT = (
    "INSERT INTO records (run_id, seq, at, kind, body, operator, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class _StaleHead(Exception):
    pass


class SqliteJournal(JournalCommon):
    """`core.ports.Journal` on a SQLite file. `readonly=True` never writes, not even
    the schema: for watchers and `interlock log`/`audit verify`."""

    _PARAM = "?"

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._heads: dict[str, tuple[int, str]] = {}
        self._leases: dict[str, FileLease] = {}
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._connect()
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise JournalError(self._explain(exc)) from None
        except JournalError:
            self.close()
            raise

    # -- opening -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.is_file():
                raise JournalError(f"{self.path}: no journal here")
            uri = self.path.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JournalError(f"{self.path}: cannot create its directory: {exc}") from None
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            if not self.readonly:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise JournalError(f"{self.path}: cannot switch the journal to WAL mode")
                conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _tables(self) -> set[str]:
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}

    def _check_schema(self) -> None:
        tables = self._tables()
        if not tables and not self.readonly:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables():  # another process may have just created it
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            tables = self._tables()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if "meta" in tables else None
        self._check_version(tables, {"runs", "records"}, row)

    def _explain(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return f"{self.path}: not an interlock journal (not a SQLite database, or damaged)"
        if "locked" in text:
            return f"{self.path}: the journal is locked by another process; try again"
        if "unable to open" in text:
            return f"{self.path}: cannot open the journal file"
        return f"{self.path}: journal error: {text}"

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"{self.path}: the journal is closed")
        return self._conn

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    # -- runs ----------------------------------------------------------------

    def create_run(self, info: RunInfo) -> None:
        """Record a new run. `created` is filled in (UTC, ISO 8601) if empty."""
        self._writable()
        values = self._run_values(info)
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values
                )
            except sqlite3.IntegrityError:
                raise JournalError(f"{self.path}: run {info.run_id!r} already exists") from None
            except sqlite3.Error as exc:
                raise JournalError(self._explain(exc)) from None
            self._heads[info.run_id] = (0, "")

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(self._explain(exc)) from None

    # -- records -------------------------------------------------------------

    def append(self, run_id: str, events: Sequence[Event], operator: str = "") -> None:
        """Append `events` in one transaction; durable on disk when this returns.
        Operator actions are attributed to their own `operator`, the rest to `operator`.
        Raises `core.ports.LeaseLost` if this journal leased the run and lost the lease."""
        self._writable()
        if not events:
            return
        with self._lock:
            lease = self._leases.get(run_id)
            if lease is not None and lease.held:
                lease.check()  # a driver whose lease file was taken away must not write
            start_seq, start_hash = self._head(run_id)
            chained = chain_records(run_id, (start_seq, start_hash), events, operator)
            rows = [(run_id, *record) for record in chained]
            seq, prev = chained[-1].seq, chained[-1].hash
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_INSERT, rows)
                moved = db.execute(
                    "UPDATE runs SET head_seq = ?, head_hash = ? "
                    "WHERE run_id = ? AND head_seq = ? AND head_hash = ?",
                    (seq, prev, run_id, start_seq, start_hash),
                ).rowcount
                if moved != 1:
                    raise _StaleHead
                db.execute("COMMIT")
            except (sqlite3.IntegrityError, _StaleHead):
                self._abort(run_id)
                raise JournalError(
                    f"{self.path}: run {run_id!r} was appended to by another writer "
                    f"(expected its last record to be {start_seq}); nothing was written"
                ) from None
            except sqlite3.Error as exc:
                self._abort(run_id)
                raise JournalError(f"{self._explain(exc)}; nothing was written") from None
            except BaseException:
                self._abort(run_id)
                raise
            self._heads[run_id] = (seq, prev)

    def _abort(self, run_id: str) -> None:
        self._heads.pop(run_id, None)
        try:
            self._rollback()
        except sqlite3.Error:
            pass

    def follow(
        self,
        run_id: str,
        after: int = 0,
        *,
        stop: threading.Event | None = None,
        poll: float = FOLLOW_POLL,
    ) -> Iterator[Record]:
        """The run's records past `after`, then each new one as it is committed (found by
        polling every `poll` seconds), until `stop` is set or the caller stops iterating."""
        stop = stop or threading.Event()
        stream = self.records(run_id, after)  # raises at once for an unknown run
        while True:
            for record in stream:
                after = record.seq
                yield record
            if stop.wait(poll):
                return
            stream = self._stream(run_id, after)

    # -- leases --------------------------------------------------------------

    def acquire_lease(
        self, run_id: str, holder: str, *, wait: bool = False, timeout: float | None = None
    ) -> FileLease:
        """Take the right to drive `run_id` (see adapters/lease.py). Raises
        `core.ports.LeaseHeld` naming the holder unless `wait`, which blocks until
        the holder's process has gone (or `timeout` seconds)."""
        self._writable()
        with self._lock:
            self._known(run_id)
        lease = acquire_file_lease(self.path, run_id, holder, wait=wait, timeout=timeout)
        with self._lock:
            self._leases[run_id] = lease
        return lease

    @property
    def label(self) -> str:
        """How messages name this journal."""
        return str(self.path)

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Close the journal and release the leases taken through it."""
        with self._lock:
            for lease in self._leases.values():
                lease.release()
            self._leases.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
