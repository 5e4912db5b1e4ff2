"""Reading a run's records page by page, and verifying its hash chain: what both
journal backends share.

Keyset pages (`seq > last ORDER BY seq LIMIT n`) hold no statement open
between pages, so memory stays flat over a million records, no snapshot is
pinned while the caller works, and appends may go on meanwhile.
"""

from __future__ import annotations

from typing import Any, Iterator

from adapters.journal_codec import ChainRow, JournalError, Verdict, decode_event, verify_chain
from core.ports import Record

PAGE = 2000
"""Records per keyset page in `records` and `verify`."""


class PagedRecords:
    """Mixin: `_pages` and `_stream` over a backend's `_query`, `_lock` and `label`."""

    _PARAM = "?"
    """The backend driver's placeholder."""
    _lock: Any
    label: str

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        raise NotImplementedError

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
