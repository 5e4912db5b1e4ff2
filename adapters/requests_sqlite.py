"""Operator requests through a SQLite journal: a `requests` table beside the records.

Why this way:
- SQLite cannot notify another process, so both sides poll, cheaply: the driver
  looks for a pending request of its run every `DRIVER_POLL` seconds (one indexed
  read, which WAL lets run beside the engine's appends), the requester looks for
  its answer every `ANSWER_POLL` seconds. An answer thus comes in well under a
  second (bench/steer_bench.py).
- Time is the database's (`julianday('now')`), on both sides: a request's expiry
  is one clock's, and a driver takes a request only before it expires, in the same
  transaction that marks it taken. A request nobody took in time is never applied
  later, whoever starts driving afterwards.
- The table is made on first use (`IF NOT EXISTS`) and is not part of the journal's
  chain: requests are messages; what a driver applies is journaled as an event.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from adapters.journal_codec import JournalError, JournalIOError
from core import Answer, Request

__all__ = ["SqliteRequests"]

DRIVER_POLL = 0.1
"""Seconds between a driver's looks for requests."""
ANSWER_POLL = 0.02
"""Seconds between a requester's looks for its answer."""

_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, action TEXT NOT NULL, "
    "service TEXT, operator TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL, "
    "state TEXT NOT NULL, answer TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS requests_by_run ON requests (run_id, state)",
)
_COLUMNS = "id, run_id, action, service, operator, reason"
FINAL = frozenset({"applied", "refused", "expired"})
"""States a request never leaves."""


LOST = ("the driver took the request and never answered (it stopped or died); "
        "`interlock log` shows whether it was applied")
"""The requester's line for a request taken but never answered."""


def final_answer(rows: list[tuple[object, ...]]) -> Answer | None:
    """The answer a request's stored (state, answer) row is, None while nobody decided (or
    no such request); shared by both backends."""
    if rows and str(rows[0][0]) in FINAL:
        return Answer(str(rows[0][0]), str(rows[0][1]))
    return None


def after_expiry(rows: list[tuple[object, ...]]) -> Answer:
    """A request's fate once its requester gave up waiting (`RequestBox.expire`)."""
    if not rows:
        return Answer("expired", "the request is gone from the journal")
    return final_answer(rows) or Answer("lost", LOST)


class SqliteRequests:
    """`core.ports.RequestBox` on a SQLite journal file (its own connection)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise JournalError(f"{self.path}: no journal here")
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: sqlite3.Error) -> JournalError:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = JournalIOError if ("readonly" in text or "full" in text or "I/O" in text) else JournalError
        return kind(f"{self.path}: cannot pass a request through the journal ({text})")

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def send(self, request: Request, ttl: float) -> None:
        self._run(
            f"INSERT OR IGNORE INTO requests ({_COLUMNS}, created, expires, state) "
            f"VALUES (?, ?, ?, ?, ?, ?, {_NOW}, {_NOW} + ?, 'pending')",
            (request.id, request.run_id, request.action, request.service, request.operator, request.reason, ttl),
        )

    def answer_of(self, request_id: str, wait: float = 0.0) -> Answer | None:
        deadline = time.monotonic() + wait
        while True:
            found = final_answer(self._run("SELECT state, answer FROM requests WHERE id = ?", (request_id,)))
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                return None
            time.sleep(ANSWER_POLL)

    def expire(self, request_id: str) -> Answer:
        self._run("UPDATE requests SET state = 'expired', answer = 'no driver took it in time; it will "
                  "never be applied' WHERE id = ? AND state = 'pending'", (request_id,))
        return after_expiry(self._run("SELECT state, answer FROM requests WHERE id = ?", (request_id,)))

    def take(self, run_id: str, wait: float = 0.0) -> list[Request]:
        deadline = time.monotonic() + wait
        while True:
            if self._run("SELECT 1 FROM requests WHERE run_id = ? AND state = 'pending' LIMIT 1", (run_id,)):
                taken = self._claim(run_id)
                if taken:
                    return taken
            if time.monotonic() >= deadline:
                return []
            time.sleep(min(DRIVER_POLL, max(0.0, deadline - time.monotonic())))

    def _claim(self, run_id: str) -> list[Request]:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("UPDATE requests SET state = 'expired', answer = 'no driver took it in time; it will "
                           f"never be applied' WHERE run_id = ? AND state = 'pending' AND expires <= {_NOW}",
                           (run_id,))
                rows = db.execute(
                    f"SELECT {_COLUMNS} FROM requests WHERE run_id = ? AND state = 'pending' ORDER BY created, id",
                    (run_id,),
                ).fetchall()
                db.executemany("UPDATE requests SET state = 'taken' WHERE id = ?", [(row[0],) for row in rows])
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise self._error(exc) from None
        return [Request(*row) for row in rows]

    def reply(self, request_id: str, answer: Answer) -> None:
        self._run("UPDATE requests SET state = ?, answer = ? WHERE id = ? AND state = 'taken'",
                  (answer.status, answer.text, request_id))

    def close(self) -> None:
        with self._lock:
            self._db.close()
