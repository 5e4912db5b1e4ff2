"""Operator requests through a PostgreSQL journal: a `requests` table and LISTEN/NOTIFY.

Why this way:
- No polling delay: a request is inserted and `NOTIFY interlock_requests` (payload:
  the run id) in one transaction; the driver LISTENs and claims it the moment it
  commits. Its answer goes back the same way (`interlock_answers`, payload: the
  request id) to a requester that LISTENed before it sent.
- A claim is one `UPDATE ... RETURNING` over the run's live pending requests
  (`FOR UPDATE SKIP LOCKED`), so each request is taken once, by one driver, and
  only before it expires by the database's clock (every machine agrees on it).
- Both connections are the requester's or the driver's own, apart from the
  journal's: a blocking wait never holds the journal's connection or its lease.
- A safety re-read every `_SAFETY` seconds covers a notification lost to a reconnect.
"""

from __future__ import annotations

import threading
import time

import psycopg

from adapters.journal_codec import JournalError
from adapters.journal_common import mask_url
from adapters.requests_sqlite import after_expiry, final_answer
from core import Answer, Request

__all__ = ["PgRequests"]

REQUESTS, ANSWERS = "interlock_requests", "interlock_answers"
_SAFETY = 0.5
_SCHEMA_LOCK = 0x696E_7465_7271_7374  # an advisory key held while making the table
_NOW = "extract(epoch from clock_timestamp())"
_COLUMNS = "id, run_id, action, service, operator, reason"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, action TEXT NOT NULL, "
    "service TEXT, operator TEXT NOT NULL, reason TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, "
    "expires DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, answer TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS requests_by_run ON requests (run_id, state)",
)
_EXPIRED = "no driver took it in time; it will never be applied"


class PgRequests:
    """`core.ports.RequestBox` on a PostgreSQL journal (connections of its own)."""

    def __init__(self, url: str, connect_timeout: int = 10) -> None:
        self.label = mask_url(url)
        self._url, self._timeout = url, connect_timeout
        self._lock = threading.Lock()
        self._listener: psycopg.Connection | None = None
        self._listening = ""
        self._db = self._connect()
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    self._db.execute(statement)  # type: ignore[call-overload]
        except psycopg.Error as exc:
            self.close()
            raise self._error(exc) from None

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout,
                                   application_name="interlock-requests")
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: psycopg.Error) -> JournalError:
        lines = (str(exc) or type(exc).__name__).strip().splitlines()
        return JournalError(f"{self.label}: cannot pass a request through the journal: "
                            f"{lines[0] if lines else type(exc).__name__}")

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                cur = self._db.execute(sql, args)  # type: ignore[call-overload]
                return cur.fetchall() if cur.description is not None else []
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def _listen(self, channel: str) -> psycopg.Connection:
        if self._listener is None:
            self._listener = self._connect()
        if self._listening != channel:
            self._listener.execute(f"LISTEN {channel}")  # type: ignore[call-overload]
            self._listening = channel
        return self._listener

    def _wait(self, channel: str, payload: str, timeout: float) -> None:
        """Until a notification with `payload` arrives, or `timeout` seconds."""
        listener = self._listen(channel)
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                if any(n.payload == payload for n in listener.notifies(timeout=left, stop_after=1)):
                    return
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def send(self, request: Request, ttl: float) -> None:
        self._listen(ANSWERS)  # before the insert: the answer may come at once
        with self._lock:
            try:
                with self._db.transaction():
                    # Who asks is the role the server authenticated (session_user), never the name
                    # the client claims: only the `@host` it says it runs on is taken from it.
                    host = request.operator.partition("@")[2]
                    self._db.execute(
                        f"INSERT INTO requests ({_COLUMNS}, created, expires, state) VALUES "
                        f"(%s, %s, %s, %s, session_user || %s, %s, {_NOW}, {_NOW} + %s, 'pending') "
                        "ON CONFLICT (id) DO NOTHING",
                        (request.id, request.run_id, request.action, request.service, f"@{host}" if host else "",
                         request.reason, ttl),
                    )
                    self._db.execute("SELECT pg_notify(%s, %s)", (REQUESTS, request.run_id))
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def answer_of(self, request_id: str, wait: float = 0.0) -> Answer | None:
        deadline = time.monotonic() + wait
        while True:
            found = final_answer(self._run("SELECT state, answer FROM requests WHERE id = %s", (request_id,)))
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._wait(ANSWERS, request_id, min(left, _SAFETY))

    def expire(self, request_id: str) -> Answer:
        self._run("UPDATE requests SET state = 'expired', answer = %s WHERE id = %s AND state = 'pending'",
                  (_EXPIRED, request_id))
        return after_expiry(self._run("SELECT state, answer FROM requests WHERE id = %s", (request_id,)))

    def take(self, run_id: str, wait: float = 0.0) -> list[Request]:
        self._listen(REQUESTS)  # before the first look: nothing sent meanwhile is missed
        deadline = time.monotonic() + wait
        while True:
            self._run("UPDATE requests SET state = 'expired', answer = %s "
                      f"WHERE run_id = %s AND state = 'pending' AND expires <= {_NOW}", (_EXPIRED, run_id))
            rows = self._run(
                f"UPDATE requests SET state = 'taken' WHERE id IN (SELECT id FROM requests WHERE run_id = %s "
                f"AND state = 'pending' AND expires > {_NOW} FOR UPDATE SKIP LOCKED) RETURNING {_COLUMNS}, created",
                (run_id,),
            )
            if rows:
                return [Request(*row[:6]) for row in sorted(rows, key=lambda r: (r[6], r[0]))]  # type: ignore[arg-type]
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self._wait(REQUESTS, run_id, min(left, _SAFETY))

    def reply(self, request_id: str, answer: Answer) -> None:
        with self._lock:
            try:
                with self._db.transaction():
                    self._db.execute("UPDATE requests SET state = %s, answer = %s WHERE id = %s AND state = 'taken'",
                                     (answer.status, answer.text, request_id))
                    self._db.execute("SELECT pg_notify(%s, %s)", (ANSWERS, request_id))
            except psycopg.Error as exc:
                raise self._error(exc) from None

    def close(self) -> None:
        for conn in (self._listener, getattr(self, "_db", None)):
            if conn is not None:
                conn.close()
        self._listener = None
