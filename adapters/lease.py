"""Driver leases: at most one process issues commands for a run, and a crash frees the run.

Two mechanisms, one contract (`core.ports.Lease`):

- SQLite journals: an exclusive `flock` on a sidecar file next to the journal
  (`journal.db.<run>.lock`). The kernel drops the lock when the holder's
  process dies, however it dies, so a crash never leaves a stale lease, and no
  clock or timeout is involved. The holder's identity is written into the file
  for the refusal message. The file is removed on release *while still locked*;
  an acquirer therefore checks, once it holds the lock, that the path still
  names the file it locked, and starts over if not. flock is reliable on local
  file systems only; a journal on NFS should move to PostgreSQL.
- PostgreSQL journals: a session advisory lock taken on a connection of its own
  that lives as long as the lease. PostgreSQL drops the lock when that session
  ends (process killed, network gone: TCP keepalives bound how long the server
  takes to notice). A `leases` row records who holds it, matched against
  `pg_locks` so a stale row from a dead holder is never reported as the holder.
  `check()` asks the server whether this session still holds the lock, so a
  driver whose connection died learns it before its next batch of commands.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from core import LeaseHeld, LeaseLost

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "FileLease", "PgLease", "acquire_file_lease", "acquire_pg_lease", "file_lease_holder",
    "lease_key", "lock_file_for", "pg_lease_holder", "target_lease_name",
]

POLL = 0.1
"""Seconds between attempts while waiting for a lease (`wait=True`)."""


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def target_lease_name(target: str) -> str:
    """The lease that stands for one flag or route (`flag:NAME`, `route:NAME`): the run
    moving it holds it, so two rollouts sharing a journal never move one target."""
    return f"target:{target}"


# -- SQLite: a lock file ----------------------------------------------------------


def lock_file_for(journal: Path, run_id: str) -> Path:
    """The sidecar lock file of `run_id` next to the journal file."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:80]
    if safe != run_id:
        safe += "-" + hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:10]
    return journal.with_name(f"{journal.name}.{safe}.lock")


def _names_fd(path: Path, fd: int) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:
        return ""


class FileLease:
    """A held SQLite lease: an open, flock-ed file descriptor."""

    def __init__(self, path: Path, fd: int, run_id: str, holder: str) -> None:
        self.path = path
        self.run_id = run_id
        self.holder = holder
        self._fd: int | None = fd
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        """Not yet released (it may still have been lost: `check()` tells)."""
        return self._fd is not None

    def check(self) -> None:
        with self._lock:
            if self._fd is None:
                raise LeaseLost(f"run {self.run_id}: the lease was released")
            if not _names_fd(self.path, self._fd):
                raise LeaseLost(
                    f"run {self.run_id}: the lease file {self.path} was removed or replaced; "
                    "stop driving: another console may have taken the run"
                )

    def release(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            try:
                if _names_fd(self.path, fd):
                    self.path.unlink()
            except OSError:
                pass
            finally:
                os.close(fd)  # drops the flock

    def __enter__(self) -> FileLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"FileLease({self.run_id!r}, holder={self.holder!r}, held={self._fd is not None})"


def file_lease_holder(journal: Path, run_id: str) -> str:
    """Who drives `run_id` now ("" if nobody): a look that takes nothing and creates nothing."""
    path = lock_file_for(journal, run_id)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or "a driver (its identity could not be read)"
    except OSError:
        return ""
    finally:
        os.close(fd)  # drops the shared lock if it was taken
    return ""


def acquire_file_lease(
    journal: Path, run_id: str, holder: str, *, wait: bool, timeout: float | None = None
) -> FileLease:
    """Take the run's lease, or raise `LeaseHeld` naming the holder (`wait=False`, or
    `timeout` seconds passed). With `wait=True` it is taken once the holder is gone."""
    path = lock_file_for(journal, run_id)
    deadline = _deadline(timeout)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if not wait or _expired(deadline):
                raise LeaseHeld(run_id, _read_holder(path)) from None
            time.sleep(POLL)
            continue
        except BaseException:
            os.close(fd)
            raise
        if not _names_fd(path, fd):  # released and removed between our open and our lock
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder + "\n").encode("utf-8"), 0)
        return FileLease(path, fd, run_id, holder)


# -- PostgreSQL: a session advisory lock ------------------------------------------


def lease_key(run_id: str, namespace: str = "public") -> int:
    """The run's 64-bit advisory lock key (signed, as PostgreSQL's bigint). Advisory
    locks are per database, so the journal's schema (`namespace`) is part of the key."""
    material = f"interlock lease\0{namespace}\0{run_id}".encode("utf-8")
    digest = hashlib.sha256(material).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_halves(key: int) -> tuple[int, int]:
    """How `pg_locks` shows a bigint key: high half in classid, low half in objid."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


_HOLDER_SQL = """
SELECT l.pid, le.holder
FROM pg_locks l
LEFT JOIN leases le ON le.run_id = %s AND le.backend_pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
"""

_RECORD_HOLDER_SQL = """
INSERT INTO leases (run_id, holder, backend_pid, since)
VALUES (%s, %s, pg_backend_pid(), now())
ON CONFLICT (run_id) DO UPDATE
SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid, since = EXCLUDED.since
"""


def _holder_of(conn: psycopg.Connection, run_id: str, key: int) -> str:
    rows = conn.execute(_HOLDER_SQL, (run_id, *_lock_halves(key))).fetchall()
    if not rows:
        return ""
    pid, holder = rows[0]
    return holder or f"an unidentified driver (PostgreSQL backend pid {pid})"


def pg_lease_holder(conn: psycopg.Connection, run_id: str, namespace: str) -> str:
    """Who drives `run_id` now ("" if nobody), read without taking anything."""
    return _holder_of(conn, run_id, lease_key(run_id, namespace))


class PgLease:
    """A held PostgreSQL lease: the connection whose session holds the advisory lock.
    A journal with a lease appends through `conn`, so a driver that lost its session
    cannot write either."""

    def __init__(self, conn: psycopg.Connection, run_id: str, holder: str, key: int, label: str) -> None:
        self.conn = conn
        self.run_id = run_id
        self.holder = holder
        self.key = key
        self.label = label
        self.on_release: Callable[[PgLease], None] | None = None
        """Called once by `release()`: the journal stops appending through `conn`."""
        self._released = False
        self._lock = threading.Lock()

    def check(self) -> None:
        import psycopg

        with self._lock:
            if self._released:
                raise LeaseLost(f"run {self.run_id}: the lease was released")
            try:
                row = self.conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objsubid = 1"
                    " AND classid = %s::bigint::oid AND objid = %s::bigint::oid)",
                    _lock_halves(self.key),
                ).fetchone()
            except psycopg.Error:
                row = None
            if not (row and row[0]):
                raise LeaseLost(
                    f"run {self.run_id}: lost the lease (the connection to {self.label} that held it "
                    "is gone); stop driving: another console may take the run over"
                )

    def release(self) -> None:
        import psycopg

        with self._lock:
            if self._released:
                return
            self._released = True
        if self.on_release is not None:
            self.on_release(self)
        try:
            if not self.conn.closed:
                self.conn.execute(
                    "DELETE FROM leases WHERE run_id = %s AND backend_pid = pg_backend_pid()",
                    (self.run_id,),
                )
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # closing the session drops the lock anyway
        finally:
            self.conn.close()

    def __enter__(self) -> PgLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"PgLease({self.run_id!r}, holder={self.holder!r}, held={not self._released})"


def acquire_pg_lease(
    connect: Callable[[], psycopg.Connection],
    run_id: str,
    holder: str,
    *,
    wait: bool,
    timeout: float | None = None,
    label: str = "PostgreSQL",
    namespace: str = "public",
) -> PgLease:
    """Take the run's lease on a new connection from `connect()` (autocommit), or raise
    `LeaseHeld` naming the holder. With `wait=True` it is taken once the holder's
    session is gone (or it released), polling every `POLL` seconds."""
    key = lease_key(run_id, namespace)
    deadline = _deadline(timeout)
    conn = connect()
    try:
        # The server notices a vanished holder (power loss, cable cut) within ~25 s,
        # not the kernel default of two hours; a dead socket on our side errors likewise.
        conn.execute("SET tcp_keepalives_idle = 10")
        conn.execute("SET tcp_keepalives_interval = 5")
        conn.execute("SET tcp_keepalives_count = 3")
        while True:
            (got,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()  # type: ignore[misc]
            if got:
                break
            if not wait or _expired(deadline):
                raise LeaseHeld(run_id, _holder_of(conn, run_id, key))
            time.sleep(POLL)
        conn.execute(_RECORD_HOLDER_SQL, (run_id, holder))
    except BaseException:
        conn.close()
        raise
    return PgLease(conn, run_id, holder, key, label)
