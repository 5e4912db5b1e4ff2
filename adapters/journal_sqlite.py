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
- The WAL is checkpointed into the main file when a batch applies an exposure
  (a stage boundary; at most every `CHECKPOINT_EVERY` s) and when the journal is
  closed (the end of a run), so a lost `-wal` file costs at most the records
  since the last stage began. A relaxed journal (`relax_sync`) is checkpointed
  only when it closes (and by SQLite's own auto-checkpoint as the WAL grows).
- A journal opened with `create=False` (resume) never makes a schema: a file
  without interlock's tables is an error, not a fresh empty journal.
- Opening retries while another process holds a lock (several consoles on a
  new file at once), within the same 5 s as the busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any
from pathlib import Path

from adapters.journal_chain import JournalDamaged
from adapters.journal_common import NEW_RUN_COLUMNS, JournalCommon
from adapters.journal_codec import SCHEMA_VERSION, JournalError, JournalIOError
from adapters.sqlite_file import BUSY_TIMEOUT, SCHEMA, busy, connect, damaged_text, no_tables, settle, sqlite_error
from adapters.lease import FileLease, acquire_file_lease, file_lease_holder, target_lease_name
from core import Event, ExposureApplied
from core import Record, RunInfo

__all__ = ["SCHEMA_VERSION", "JournalError", "SqliteJournal"]

FOLLOW_POLL = 0.2
"""Seconds between looks for new records in `follow` (SQLite cannot notify)."""

_INSERT = (
    "INSERT INTO records (run_id, seq, at, kind, body, operator, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_ROWS_PER_INSERT = 50
"""Rows one INSERT statement of a large batch carries: binding them in one call costs
less per row than `executemany` stepping a one-row statement (the same rows, in order)."""
_INSERT_ROWS = _INSERT + ", (?, ?, ?, ?, ?, ?, ?, ?)" * (_ROWS_PER_INSERT - 1)


CHECKPOINT_EVERY = 0.25
"""Wall seconds between two stage-boundary checkpoints at most (each costs an fsync of the
main file): a virtual-clock run crossing dozens of stages in a second is checkpointed
when it closes, a real rollout at every stage."""


class _StaleHead(Exception):
    pass


def _insert(db: sqlite3.Connection, params: list[Any]) -> None:
    """Insert the rows `params` holds flattened (`chain_params`: 8 values a row), in order,
    `_ROWS_PER_INSERT` to a statement and the rest in one more."""
    width = 8 * _ROWS_PER_INSERT
    whole = len(params) - len(params) % width
    for start in range(0, whole, width):
        db.execute(_INSERT_ROWS, params[start:start + width])
    if whole < len(params):
        rest = (len(params) - whole) // 8
        db.execute(_INSERT + ", (?, ?, ?, ?, ?, ?, ?, ?)" * (rest - 1), params[whole:])


def _checkpoints(events: Sequence[Event]) -> bool:
    """A batch that applies an exposure begins a stage (or a rollback step)."""
    return any(isinstance(event, ExposureApplied) for event in events)


class SqliteJournal(JournalCommon):
    """`core.ports.Journal` on a SQLite file. `readonly=True` never writes, not even
    the schema: for watchers and `interlock log`/`audit verify`. `create=False` opens
    only an existing journal (resume). New runs are sealed with `audit_key` if given."""

    _PARAM = "?"

    def __init__(
        self, path: str | Path, *, readonly: bool = False, create: bool = True,
        audit_key: bytes | None = None, relaxed: bool = False,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._create = create and not readonly
        self._key = audit_key
        self._heads: dict[str, tuple[int, str]] = {}
        self._keys: dict[str, bytes | None] = {}
        self._leases: dict[str, FileLease] = {}
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._checkpointed = 0.0
        self._relaxed = relaxed and not readonly
        self._unsettled = self._relaxed  # OFF until settled, if the file was new (sqlite_file.connect)
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._conn = connect(self.path, readonly=self.readonly, create=self._create, relaxed=self._relaxed)
                self._check_schema()
                return
            except UnicodeDecodeError:  # SQLite's own message quoted damaged bytes
                self.close()
                raise damaged_text(self.path) from None
            except sqlite3.DatabaseError as exc:
                self.close()
                if busy(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)  # another console is making the file a journal
                    continue
                raise self._error(exc) from None
            except JournalError:
                self.close()
                raise

    # -- opening -------------------------------------------------------------

    def _tables(self) -> set[str]:
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}

    def _check_schema(self) -> None:
        tables = self._tables()
        if not tables and not self._create:
            raise no_tables(self.path)
        if not tables:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables():  # another process may have just created it
                    for statement in SCHEMA.split(";"):
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
            if not self._relaxed:
                self.checkpoint()
            tables = self._tables()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if "meta" in tables else None
        self._check_version(tables, {"runs", "records"}, row)

    def _error(self, exc: sqlite3.Error, suffix: str = "") -> JournalError:
        return sqlite_error(self.path, exc, suffix)

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
        marks = ", ".join("?" * len(values))
        with self._lock:
            try:
                self._db.execute(f"INSERT INTO runs ({NEW_RUN_COLUMNS}) VALUES ({marks})", values)
            except sqlite3.IntegrityError:
                raise JournalError(f"{self.path}: run {info.run_id!r} already exists") from None
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            self._created(info, values)
            if self._relaxed:
                self._settle()
            else:
                self.checkpoint()

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        except UnicodeDecodeError:
            raise damaged_text(self.path) from None

    def _first_not_text(self, run_id: str, after: int) -> int | None:
        self._db.text_factory = bytes
        try:
            for seq, *texts in self._db.execute(
                "SELECT seq, kind, body, operator, prev_hash, hash FROM records "
                "WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after),
            ):
                try:
                    for text in texts:
                        text.decode("utf-8")
                except UnicodeDecodeError:
                    return int(seq)
        except sqlite3.Error as exc:  # the search for a damaged value found a damaged page
            raise self._error(exc) from None
        finally:
            self._db.text_factory = str
        return None

    def check_integrity(self) -> None:
        """SQLite's `PRAGMA quick_check` over the whole file: a damaged page or index
        (which could hide records and make a finished run look unfinished) is refused."""
        with self._lock:
            try:
                rows = self._db.execute("PRAGMA quick_check").fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from None
        if [str(r[0]) for r in rows] != ["ok"]:
            said = [line for r in rows for line in str(r[0]).splitlines() if not line.startswith("***")]
            first = "; ".join(said[:2])[:160] or "no answer"
            raise JournalDamaged(f"{self.path}: the database file is damaged (SQLite integrity check: {first})")

    def _settle(self) -> None:
        """A relaxed new file, unsynced while its schema and first run were written, commits
        as any relaxed journal from now on (`adapters.sqlite_file.settle`)."""
        if self._conn is not None and self._unsettled:
            settle(self._conn)
            self._unsettled = False

    def checkpoint(self) -> None:
        """Copy the WAL into the main file (as far as readers allow), synced to disk."""
        if self.readonly or self._conn is None:
            return
        with self._lock:
            try:
                self._settle()
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None
            self._checkpointed = time.monotonic()

    def relax_sync(self) -> None:
        """Commit without waiting for the disk from now on (`synchronous=NORMAL` in WAL
        mode): each append has reached the WAL file when it returns, so it survives the
        process being killed, not a power cut; the WAL is synced when the journal closes
        (and at SQLite's own auto-checkpoints, as it grows), not at stage boundaries.
        Only for a virtual-clock run of the simulated world, whose own state file is
        written the same way (no sync): a sync per round of commands, or per stage,
        protected nothing that world keeps, and was most of the run's time on a slow
        disk. `SqliteJournal(relaxed=True)` is the same from the start, so a new file's
        schema and the run's row are not synced one by one either."""
        if self.readonly or self._conn is None:
            return
        with self._lock:
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._relaxed, self._unsettled = True, False

    # -- records -------------------------------------------------------------

    def append(self, run_id: str, events: Sequence[Event], operator: str = "") -> None:
        """Append `events` in one transaction; durable on disk when this returns
        (against a crash of the process only, after `relax_sync`).
        Operator actions are attributed to their own `operator`, the rest to `operator`.
        Raises `core.ports.LeaseLost` if this journal leased the run and lost the lease."""
        self._writable()
        if not events:
            return
        with self._lock:
            lease = self._leases.get(run_id)
            if lease is not None and lease.held:
                lease.check()  # a driver whose lease file was taken away must not write
            (start_seq, start_hash), params, (seq, prev), sealed = self._chain_params(run_id, events, operator)
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                _insert(db, params)
                moved = db.execute(
                    self._MOVE_HEAD.format(p="?"), (seq, prev, sealed, run_id, start_seq, start_hash)
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
                raise self._error(exc, "; nothing was written") from None
            except BaseException:
                self._abort(run_id)
                raise
            self._heads[run_id] = (seq, prev)
            if not self._relaxed and _checkpoints(events) and time.monotonic() - self._checkpointed >= CHECKPOINT_EVERY:
                self.checkpoint()

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

    def acquire_target_lease(self, target: str, holder: str) -> FileLease:
        """Take the right to move one flag or route (`flag:NAME`, `route:NAME`), or raise
        `core.ports.LeaseHeld` naming the run and driver that hold it. Held until released
        or the journal closes; a crash drops it like a run's lease."""
        self._writable()
        name = target_lease_name(target)
        lease = acquire_file_lease(self.path, name, holder, wait=False)
        with self._lock:
            self._leases[name] = lease
        return lease

    def driver(self, run_id: str) -> str:
        """Who holds the run's lease now ("" if nobody), without taking it."""
        return file_lease_holder(self.path, run_id)

    @property
    def label(self) -> str:  # type: ignore[override]  # a path's label is read, never set
        """How messages name this journal."""
        return str(self.path)

    # -- lifetime ------------------------------------------------------------

    def backup(self, dest: str | Path) -> int:
        """Copy the journal, consistently, into a new file `dest` while runs may be writing
        (SQLite's online backup: a copy of one committed moment). Returns the pages copied."""
        target = Path(dest)
        if target.exists():
            raise JournalError(f"{target}: already exists; give a new file for the backup")
        try:
            out = sqlite3.connect(target)
        except sqlite3.Error as exc:
            raise JournalIOError(f"{target}: cannot create the backup file ({exc})") from None
        try:
            with self._lock:
                self._db.backup(out)  # one step: one read snapshot, never restarted by writers
                pages = int(out.execute("PRAGMA page_count").fetchone()[0])
            out.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            out.close()
            target.unlink(missing_ok=True)
            raise self._error(exc, "; no backup was written") from None
        out.close()
        return pages

    def close(self) -> None:
        """Close the journal (checkpointing its WAL first) and release its leases."""
        with self._lock:
            for lease in self._leases.values():
                lease.release()
            self._leases.clear()
            if self._conn is not None:
                try:
                    self.checkpoint()
                except JournalError:
                    pass  # closing still goes on; the WAL keeps what the file lacks
                self._conn.close()
                self._conn = None
