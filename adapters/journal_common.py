"""What both journal backends (SQLite, PostgreSQL) share: the schema version check,
run bookkeeping, reading a run's records page by page, and verifying its hash chain.

Keyset pages (`seq > last ORDER BY seq LIMIT n`) hold no statement open
between pages, so memory stays flat over a million records, no snapshot is
pinned while the caller works, and appends may go on meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Iterator, Self

from adapters.journal_codec import (
    SCHEMA_VERSION,
    ChainRow,
    JournalError,
    Verdict,
    decode_event,
    verify_chain,
)
from core.ports import Record, RunInfo

PAGE = 2000
"""Records per keyset page in `records` and `verify`."""

RUN_COLUMNS = "run_id, rollout, plan_path, plan_text, seed, clock, speed, created, operator"
"""The `runs` columns a `RunInfo` is made of, in its field order."""


class JournalCommon:
    """Mixin over a backend's `_query`, `_lock`, `label`, `readonly` and `_heads`."""

    _PARAM = "?"
    """The backend driver's placeholder."""
    _lock: Any
    label: str
    readonly: bool
    _heads: dict[str, tuple[int, str]]

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        raise NotImplementedError

    def _check_version(self, tables: set[str], required: set[str], row: tuple | None, hint: str = "") -> None:
        """Refuse anything but an interlock journal of this schema version; `row` is the
        meta table's schema_version row (None when missing)."""
        if "meta" not in tables:
            raise JournalError(f"{self.label}: not an interlock journal (no meta table{hint})")
        try:
            version = int(row[0]) if row else None
        except (TypeError, ValueError):
            version = None
        if version is None:
            raise JournalError(f"{self.label}: not an interlock journal (no schema_version)")
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{self.label}: journal schema version {version} is newer than this interlock "
                f"understands (version {SCHEMA_VERSION}); upgrade interlock to open it"
            )
        if version < SCHEMA_VERSION or not required <= tables:
            raise JournalError(f"{self.label}: journal schema version {version} is unknown")

    def _writable(self) -> None:
        if self.readonly:
            raise JournalError(f"{self.label}: the journal is open read-only")

    def _known(self, run_id: str) -> None:
        if not self._query(f"SELECT 1 FROM runs WHERE run_id = {self._PARAM}", (run_id,)):
            raise JournalError(f"{self.label}: no run {run_id!r} in this journal")

    @staticmethod
    def _run_values(info: RunInfo) -> tuple[object, ...]:
        """A new run's row in `RUN_COLUMNS` order; `created` filled in (UTC, ISO 8601) if empty."""
        created = info.created or datetime.now(UTC).isoformat()
        return (info.run_id, info.rollout, info.plan_path, info.plan_text, info.seed,
                info.clock, info.speed, created, info.operator)

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        with self._lock:
            rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id")
        return [RunInfo(*row) for row in rows]

    def last_seq(self, run_id: str) -> int:
        """The run's last record number as stored (0 before the first append)."""
        with self._lock:
            self._known(run_id)
            rows = self._query(f"SELECT MAX(seq) FROM records WHERE run_id = {self._PARAM}", (run_id,))
        return int(rows[0][0] or 0)

    def _head(self, run_id: str) -> tuple[int, str]:
        cached = self._heads.get(run_id)
        if cached is not None:
            return cached
        rows = self._query(f"SELECT head_seq, head_hash FROM runs WHERE run_id = {self._PARAM}", (run_id,))
        if not rows:
            raise JournalError(f"{self.label}: no run {run_id!r} in this journal")
        head = (int(rows[0][0]), str(rows[0][1]))
        self._heads[run_id] = head
        return head

    def records(self, run_id: str, after: int = 0) -> Iterator[Record]:
        """The run's records with seq > `after`, in order, streamed page by page.
        An unknown run raises at once; an undecodable body raises when reached."""
        with self._lock:
            self._known(run_id)
        return self._stream(run_id, after)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pages(self, run_id: str, after: int, columns: str) -> Iterator[list[tuple]]:
        """Pages of a run's rows past `after`, in seq order; `seq` must be column 0."""
        p = self._PARAM
        sql = f"SELECT {columns} FROM records WHERE run_id = {p} AND seq > {p} ORDER BY seq LIMIT {PAGE}"
        while True:
            with self._lock:
                page = self._query(sql, (run_id, after))
            if not page:
                return
            yield page
            if len(page) < PAGE:
                return
            after = page[-1][0]

    def _stream(self, run_id: str, after: int) -> Iterator[Record]:
        for page in self._pages(run_id, after, "seq, body, operator"):
            seq = page[0][0]
            try:
                for seq, body, operator in page:
                    yield Record(seq, decode_event(body), operator)
            except (ValueError, KeyError, TypeError) as exc:
                raise JournalError(
                    f"{self.label}: run {run_id!r} record {seq}: cannot decode its event "
                    f"({type(exc).__name__})"
                ) from None

    def verify(self, run_id: str) -> Verdict:
        """Recompute the run's hash chain: (ok, first bad seq, message)."""
        with self._lock:
            head_rows = self._query(f"SELECT head_seq, head_hash FROM runs WHERE run_id = {self._PARAM}", (run_id,))
        if not head_rows:
            return False, None, f"no run {run_id!r} in this journal"
        rows = (
            ChainRow(*row)
            for page in self._pages(run_id, 0, "seq, kind, at, body, operator, prev_hash, hash")
            for row in page
        )
        return verify_chain(run_id, rows, (int(head_rows[0][0]), str(head_rows[0][1])))
