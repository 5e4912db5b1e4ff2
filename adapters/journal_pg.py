"""The shared journal: the same records, schema version and hash chain as the SQLite
journal, in a PostgreSQL database that several consoles on several machines reach.

Why these choices:
- Records are encoded and chained by `adapters.journal_codec`, exactly as on
  SQLite, so a run verifies, replays and reads the same on either backend.
- One transaction per `append`; the run's head row is advanced with a
  compare-and-set, and (run_id, seq) is the primary key, so a second writer
  raises instead of forking the chain. A journal holding the run's lease
  appends through the lease's own connection: if that session is gone, the
  lease is gone, and the append fails instead of racing the new driver.
- The append transaction also NOTIFYs channel `interlock_journal` with the run
  id; PostgreSQL delivers it at commit, so watchers (`follow`) see a batch
  within milliseconds, without polling the table.
- NaN `at` is stored as NULL, as SQLite does, so `verify_chain` is unchanged.
- The URL may carry a password: it is never shown. Messages and `repr` use
  `label`, the URL with the password masked, and driver errors are scrubbed.
- Connect directly or through a session-pooling proxy: advisory locks and
  LISTEN need a session, which transaction pooling does not keep.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from adapters.journal_common import NEW_RUN_COLUMNS, JournalCommon
from adapters.journal_codec import SCHEMA_VERSION, JournalError, JournalIOError
from adapters.journal_common import mask_url
from adapters.lease import PgLease, acquire_pg_lease, pg_lease_holder, target_lease_name
from core import Event
from core import LeaseLost, Record, RunInfo

__all__ = ["CHANNEL", "PgJournal"]

CHANNEL = "interlock_journal"
_SAFETY_POLL = 5.0
"""`follow` also re-reads this often, in case a notification was missed (a reconnect)."""
_SCHEMA_LOCK = 0x696E_7465_726C_6F63  # an advisory key held while creating tables
_IO_ERRORS = (psycopg.errors.DiskFull, psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.IoError)
"""Storage failures: their own exit code, not bad input."""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    rollout TEXT NOT NULL,
    plan_path TEXT NOT NULL,
    plan_text TEXT NOT NULL,
    seed BIGINT NOT NULL,
    clock TEXT NOT NULL,
    speed DOUBLE PRECISION,
    created TEXT NOT NULL,
    operator TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL,
    seal TEXT NOT NULL,
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    head_mac TEXT NOT NULL
);
CREATE TABLE records (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at DOUBLE PRECISION,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    operator TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE leases (
    run_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    backend_pid INTEGER NOT NULL,
    since TIMESTAMPTZ NOT NULL
)
"""

_INSERT = (
    "INSERT INTO records (run_id, seq, at, kind, body, operator, prev_hash, hash) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


class _StaleHead(Exception):
    pass


class PgJournal(JournalCommon):
    """`core.ports.Journal` on a PostgreSQL database. `readonly=True` never writes (the
    session itself is read-only): for watchers, `interlock log` and `audit verify`.
    `create=False` (resume) never makes the tables. New runs are sealed with `audit_key`."""

    _PARAM = "%s"

    def __init__(
        self, url: str, *, readonly: bool = False, create: bool = True, connect_timeout: int = 10,
        audit_key: bytes | None = None,
    ) -> None:
        self.label = mask_url(url)
        self.readonly = readonly
        self._create = create and not readonly
        self._key = audit_key
        self._keys: dict[str, bytes | None] = {}
        self._url = url
        self._connect_timeout = connect_timeout
        try:
            self._password = str(conninfo_to_dict(url).get("password") or "")
        except psycopg.Error:
            raise JournalError(f"{self.label}: not a valid PostgreSQL URL") from None
        self._heads: dict[str, tuple[int, str]] = {}
        self._leases: dict[str, PgLease] = {}
        self._lock = threading.RLock()
        self._conn: psycopg.Connection | None = None
        try:
            self._conn = self._connect()
            if readonly:
                self._conn.execute("SET default_transaction_read_only = on")
            self._check_schema()
            self._namespace = str(self._db.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
        except psycopg.Error as exc:
            self.close()
            raise JournalError(self._explain(exc)) from None
        except JournalError:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PgJournal({self.label!r}, readonly={self.readonly})"

    @property
    def url(self) -> str:
        """The URL it was opened with, for another connection to the same journal (operator
        requests). It may hold a password: never show it; messages use `label`."""
        return self._url

    # -- opening -------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name="interlock",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    def _connect_or_fail(self) -> psycopg.Connection:
        try:
            return self._connect()
        except psycopg.Error as exc:
            raise JournalError(self._explain(exc)) from None

    def _explain(self, exc: psycopg.Error) -> str:
        lines = (str(exc) or type(exc).__name__).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, _IO_ERRORS):
            return f"{self.label}: cannot reach the journal database: {text}"
        return f"{self.label}: journal error: {text}"

    def _error(self, exc: psycopg.Error, suffix: str = "") -> JournalError:
        """The operator's one line; a full disk or a read-only database is a `JournalIOError`."""
        if isinstance(exc, _IO_ERRORS):
            return JournalIOError(f"{self._explain(exc)}{suffix}")
        return JournalError(f"{self._explain(exc)}{suffix}")

    def _tables(self) -> set[str]:
        rows = self._db.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {name for (name,) in rows}

    def _check_schema(self) -> None:
        tables = self._tables()
        if not tables and not self._create and not self.readonly:
            raise JournalError(f"{self.label}: not an interlock journal (no tables in this schema)")
        if not tables and not self.readonly:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if not self._tables():  # another process may have just made them
                    for statement in _SCHEMA.split(";"):
                        self._db.execute(statement)  # type: ignore[call-overload]
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', %s)",
                        (str(SCHEMA_VERSION),),
                    )
            tables = self._tables()
        hint = ", and other tables: give interlock a database or schema of its own" if tables else ""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if "meta" in tables else None
        self._check_version(tables, {"runs", "records", "leases"}, row, hint)

    @property
    def _db(self) -> psycopg.Connection:
        if self._conn is None:
            raise JournalError(f"{self.label}: the journal is closed")
        return self._conn

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()  # type: ignore[call-overload]
        except psycopg.Error as exc:
            raise self._error(exc) from None

    # -- runs ----------------------------------------------------------------

    def create_run(self, info: RunInfo) -> None:
        """Record a new run. `created` is filled in (UTC, ISO 8601) if empty."""
        self._writable()
        values = self._run_values(info)
        marks = ", ".join(["%s"] * len(values))
        with self._lock:
            try:
                self._db.execute(f"INSERT INTO runs ({NEW_RUN_COLUMNS}) VALUES ({marks})", values)  # type: ignore[call-overload]
            except psycopg.errors.UniqueViolation:
                raise JournalError(f"{self.label}: run {info.run_id!r} already exists") from None
            except psycopg.Error as exc:
                raise self._error(exc) from None
            self._created(info, values)

    def relax_sync(self) -> None:
        """`SqliteJournal.relax_sync`'s counterpart does nothing here: a shared store keeps
        every commit synchronous (its runs are watched and taken over by other machines)."""

    # -- records -------------------------------------------------------------

    def append(self, run_id: str, events: Sequence[Event], operator: str = "") -> None:
        """Append `events` in one transaction; committed when this returns. Operator
        actions are attributed to their own `operator`, the rest to `operator`.
        Raises `LeaseLost` if this journal leased the run and the lease is gone."""
        self._writable()
        if not events:
            return
        with self._lock:
            start, chained, head, sealed = self._chain(run_id, events, operator)
            rows = [(r[0], r[1], None if r[2] != r[2] else r[2], *r[3:]) for r in chained]
            lease = self._leases.get(run_id)
            conn = lease.conn if lease is not None else self._db
            try:
                with conn.transaction():
                    with conn.cursor() as cur:
                        cur.executemany(_INSERT, rows)
                        cur.execute(
                            self._MOVE_HEAD.format(p="%s"),  # type: ignore[arg-type]
                            (*head, sealed, run_id, *start),
                        )
                        if cur.rowcount != 1:
                            raise _StaleHead
                        cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, run_id))
            except (psycopg.errors.UniqueViolation, _StaleHead):
                self._heads.pop(run_id, None)
                raise JournalError(
                    f"{self.label}: run {run_id!r} was appended to by another writer "
                    f"(expected its last record to be {start[0]}); nothing was written"
                ) from None
            except psycopg.Error as exc:
                self._heads.pop(run_id, None)
                if lease is not None and conn.broken:
                    raise LeaseLost(
                        f"run {run_id}: lost the lease (its connection to {self.label} is gone); "
                        "nothing was written; stop driving"
                    ) from None
                raise self._error(exc, "; nothing was written") from None
            except BaseException:
                self._heads.pop(run_id, None)
                raise
            self._heads[run_id] = head

    def follow(
        self, run_id: str, after: int = 0, *, stop: threading.Event | None = None, slice_: float = 0.2
    ) -> Iterator[Record]:
        """The run's records past `after`, then each new batch as soon as it commits
        (LISTEN/NOTIFY), until `stop` is set (noticed within `slice_` seconds) or the
        caller stops iterating."""
        stop = stop or threading.Event()
        with self._lock:
            self._known(run_id)
        listener = self._connect_or_fail()
        try:
            listener.execute(f"LISTEN {CHANNEL}")
            idle = 0.0
            while not stop.is_set():
                for record in self._stream(run_id, after):
                    after = record.seq
                    yield record
                idle = 0.0
                while not stop.is_set() and idle < _SAFETY_POLL:
                    woke = [n for n in listener.notifies(timeout=slice_, stop_after=1) if n.payload == run_id]
                    if woke:
                        break
                    idle += slice_
        except psycopg.Error as exc:
            raise JournalError(self._explain(exc)) from None
        finally:
            listener.close()

    # -- leases --------------------------------------------------------------

    def acquire_lease(
        self, run_id: str, holder: str, *, wait: bool = False, timeout: float | None = None
    ) -> PgLease:
        """Take the right to drive `run_id` (see adapters/lease.py). Raises
        `core.ports.LeaseHeld` naming the holder unless `wait`, which blocks until the
        holder's session has ended (or `timeout` seconds). Appends to the run then go
        through the lease's connection."""
        self._writable()
        with self._lock:
            self._known(run_id)
        try:
            lease = acquire_pg_lease(
                self._connect, run_id, holder, wait=wait, timeout=timeout, label=self.label,
                namespace=self._namespace,
            )
        except psycopg.Error as exc:
            raise JournalError(self._explain(exc)) from None
        lease.on_release = self._forget_lease
        with self._lock:
            self._leases[run_id] = lease
        return lease

    def acquire_target_lease(self, target: str, holder: str) -> PgLease:
        """Take the right to move one flag or route (`flag:NAME`, `route:NAME`), or raise
        `core.ports.LeaseHeld` naming the run and driver that hold it: an advisory lock
        of its own, on the same terms as a run's lease."""
        self._writable()
        name = target_lease_name(target)
        try:
            lease = acquire_pg_lease(
                self._connect, name, holder, wait=False, label=self.label, namespace=self._namespace,
            )
        except psycopg.Error as exc:
            raise JournalError(self._explain(exc)) from None
        lease.on_release = self._forget_lease
        with self._lock:
            self._leases[name] = lease
        return lease

    def driver(self, run_id: str) -> str:
        """Who holds the run's lease now ("" if nobody), without taking it."""
        with self._lock:
            try:
                return pg_lease_holder(self._db, run_id, self._namespace)
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def role(self) -> str | None:
        """`session_user`: the role the server authenticated this connection as. Unlike
        `current_user` it does not change with `SET ROLE`, and no setting or environment
        variable on the client changes it (only a superuser's SET SESSION AUTHORIZATION)."""
        with self._lock:
            try:
                return str(self._db.execute("SELECT session_user").fetchone()[0])  # type: ignore[index]
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def _forget_lease(self, lease: PgLease) -> None:
        with self._lock:
            if self._leases.get(lease.run_id) is lease:
                del self._leases[lease.run_id]

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Close the journal and release the leases taken through it."""
        with self._lock:
            for lease in list(self._leases.values()):
                lease.release()
            self._leases.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
