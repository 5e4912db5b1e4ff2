"""What both journal backends (SQLite, PostgreSQL) share: the schema version check,
run bookkeeping, reading a run's records page by page, and verifying its hash chain
(`adapters.journal_chain`: the run's facts, its records, its sealed head), either
on its own (`verify`) or while a replay reads the records (`checked_records`).

Keyset pages (`seq > last ORDER BY seq LIMIT n`) hold no statement open
between pages, so memory stays flat over a million records, no snapshot is
pinned while the caller works, and appends may go on meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from dataclasses import replace
from typing import Any, Iterator, Self, Sequence

from adapters.journal_chain import (
    ChainCheck,
    JournalDamaged,
    RunSeal,
    Verdict,
    genesis,
    head_mac,
    key_for_seal,
    run_facts,
    seal_for,
)
from adapters.journal_codec import SCHEMA_VERSION, JournalError, Row, chain_params, chain_rows, decode_event
from core import Event, adopt_event
from core import Record, RunInfo
from core import mask_url as mask_url  # re-exported: the journals name their database with it

PAGE = 2000
"""Records per keyset page in `records` and `verify`."""

RUN_COLUMNS = "run_id, rollout, plan_path, plan_text, seed, clock, speed, created, operator"
"""The `runs` columns a `RunInfo` is made of, in its field order."""
SEAL_COLUMNS = "facts, seal, head_seq, head_hash, head_mac"
"""The `runs` columns a `RunSeal` is made of (schema version 2)."""
NEW_RUN_COLUMNS = f"{RUN_COLUMNS}, {SEAL_COLUMNS}"
CHAIN_COLUMNS = "seq, kind, at, body, operator, prev_hash, hash"


_TEXT_FACTS = ("run_id", "rollout", "plan_path", "plan_text", "clock", "created", "operator")


class NotText(JournalDamaged):
    """A stored value is not valid UTF-8 (SQLite keeps whatever bytes it is given)."""


class JournalCommon:
    """Mixin over a backend's `_query`, `_lock`, `label`, `readonly`, `_heads`, `_keys`
    and `_key` (the audit key at hand, None without one)."""

    _PARAM = "?"
    """The backend driver's placeholder."""
    _lock: Any
    label: str
    readonly: bool
    _heads: dict[str, tuple[int, str]]
    _keys: dict[str, bytes | None]
    _key: bytes | None

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def role(self) -> str | None:
        """No authenticated identity (a file): `tui.session.runtime.operator_identity` falls back."""
        return None

    def _check_version(self, tables: set[str], required: set[str], row: tuple[Any, ...] | None, hint: str = "") -> None:
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
        if version == 1:
            raise JournalError(
                f"{self.label}: journal schema version 1 predates chained run facts (plan, seed, "
                "options, operator) and cannot be verified; keep it for the interlock that wrote "
                "it and start a new journal"
            )
        if version < SCHEMA_VERSION or not required <= tables:
            raise JournalError(f"{self.label}: journal schema version {version} is unknown")

    def _writable(self) -> None:
        if self.readonly:
            raise JournalError(f"{self.label}: the journal is open read-only")

    def _known(self, run_id: str) -> None:
        if not self._query(f"SELECT 1 FROM runs WHERE run_id = {self._PARAM}", (run_id,)):
            raise JournalError(f"{self.label}: no run {run_id!r} in this journal")

    def _run_values(self, info: RunInfo) -> tuple[object, ...]:
        """A new run's row in `NEW_RUN_COLUMNS` order, its genesis the head; `created`
        filled in (UTC, ISO 8601) if empty. Sealed with the audit key if there is one."""
        info = replace(info, created=info.created or datetime.now(UTC).isoformat())
        facts, seal = run_facts(info), seal_for(self._key)
        first = genesis(info.run_id, facts, seal, self._key)
        return (info.run_id, info.rollout, info.plan_path, info.plan_text, info.seed,
                info.clock, info.speed, info.created, info.operator,
                facts, seal, 0, first, head_mac(info.run_id, 0, first, self._key))

    def _created(self, info: RunInfo, values: tuple[object, ...]) -> None:
        self._heads[info.run_id] = (0, str(values[12]))
        self._keys[info.run_id] = self._key

    def _run_key(self, run_id: str) -> bytes | None:
        """The key this run is extended under (its seal checked against ours)."""
        if run_id not in self._keys:
            rows = self._query(f"SELECT seal FROM runs WHERE run_id = {self._PARAM}", (run_id,))
            if not rows:
                raise JournalError(f"{self.label}: no run {run_id!r} in this journal")
            self._keys[run_id] = key_for_seal(str(rows[0][0]), self._key, run_id, writing=True)
        return self._keys[run_id]

    def head(self, run_id: str) -> tuple[int, str]:
        """The run's head as stored (last seq, its hash; the genesis before any record):
        what a team anchors elsewhere."""
        with self._lock:
            rows = self._query(f"SELECT head_seq, head_hash FROM runs WHERE run_id = {self._PARAM}", (run_id,))
        if not rows:
            raise JournalError(f"{self.label}: no run {run_id!r} in this journal")
        if type(rows[0][0]) is not int:
            raise JournalDamaged(f"run {run_id}: its head is not a record number: it was changed "
                                 "outside interlock", run_id, None)
        return rows[0][0], str(rows[0][1])

    def anchored_hash(self, run_id: str, seq: int) -> str | None:
        """The hash a head `seq` of the run had when it was the head: record `seq`'s hash,
        or for 0 the run's genesis (record 1's prev_hash, or the head of an empty run)."""
        p = self._PARAM
        with self._lock:
            if seq == 0:
                rows = self._query(f"SELECT prev_hash FROM records WHERE run_id = {p} AND seq = 1", (run_id,))
                rows = rows or self._query(f"SELECT head_hash FROM runs WHERE run_id = {p} AND head_seq = 0", (run_id,))
            else:
                rows = self._query(f"SELECT hash FROM records WHERE run_id = {p} AND seq = {p}", (run_id, seq))
        return str(rows[0][0]) if rows else None

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        with self._lock:
            try:
                rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id")
            except NotText:
                raise NotText(f"{self.label}: a run's facts are not valid UTF-8 text: "
                              "they were changed outside interlock") from None
        runs = [RunInfo(*row) for row in rows]
        for info in runs:
            if not all(type(getattr(info, name)) is str for name in _TEXT_FACTS):
                raise JournalDamaged(f"{self.label}: run {info.run_id!r}: a fact that must be text is "
                                     "not: it was changed outside interlock", str(info.run_id), 0)
        return runs

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

    def _first_not_text(self, run_id: str, after: int) -> int | None:
        """The first record past `after` holding bytes that are not UTF-8 (SQLite only)."""
        return None

    def _pages(self, run_id: str, after: int, columns: str) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of a run's rows past `after`, in seq order; `seq` must be column 0."""
        p = self._PARAM
        sql = f"SELECT {columns} FROM records WHERE run_id = {p} AND seq > {p} ORDER BY seq LIMIT {PAGE}"
        while True:
            with self._lock:
                try:
                    page = self._query(sql, (run_id, after))
                except NotText:
                    seq = self._first_not_text(run_id, after)
                    raise JournalDamaged(
                        f"run {run_id}: record {seq} is not valid UTF-8 text: it was changed "
                        "outside interlock", run_id, seq,
                    ) from None
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

    def _seal_row(self, run_id: str) -> tuple[RunInfo, RunSeal] | None:
        with self._lock:
            rows = self._query(
                f"SELECT {RUN_COLUMNS}, {SEAL_COLUMNS} FROM runs WHERE run_id = {self._PARAM}", (run_id,)
            )
        if not rows:
            return None
        row = rows[0]
        facts, seal, head_seq, head_hash, mac = row[9:]
        if type(head_seq) is not int:
            raise JournalDamaged(f"run {run_id}: its head is not a record number: it was changed "
                                 "outside interlock", run_id, None)
        return RunInfo(*row[:9]), RunSeal(str(facts), str(seal), head_seq, str(head_hash), str(mac))

    def open_check(self, run_id: str) -> ChainCheck:
        """A check of the run's facts and seal, ready for `checked_records`; raises
        `JournalDamaged` (facts changed, seal unknown, key missing or another)."""
        found = self._seal_row(run_id)
        if found is None:
            raise JournalError(f"{self.label}: no run {run_id!r} in this journal")
        return ChainCheck(*found, self._key)

    def checked_records(self, check: ChainCheck) -> Iterator[Record]:
        """The run's records after those `check` has seen, each verified before it is
        yielded: a changed, missing or reordered record raises `JournalDamaged`."""
        run_id, verified = check.run_id, check.row
        for page in self._pages(run_id, check.seq, CHAIN_COLUMNS):
            for row in page:
                data = verified(row)
                try:
                    event = adopt_event(data)
                except (ValueError, KeyError, TypeError) as exc:
                    raise JournalError(
                        f"{self.label}: run {run_id!r} record {row[0]}: cannot decode its event "
                        f"({type(exc).__name__})"
                    ) from None
                yield Record(row[0], event, row[4])

    def end_check(self, check: ChainCheck) -> str:
        """Check the run's stored head (read now) against the records `check` saw: only
        meaningful while nobody appends to the run (its lease held, or no live driver)."""
        found = self._seal_row(check.run_id)
        if found is None:
            raise JournalDamaged(f"run {check.run_id}: the run was deleted", check.run_id, None)
        check.run = found[1]
        return check.end()

    def verify(self, run_id: str) -> Verdict:
        """Recompute the run's hash chain: (ok, first bad seq, message)."""
        try:
            check = self.open_check(run_id)
        except JournalDamaged as exc:
            return False, exc.seq, str(exc)
        except JournalError:
            return False, None, f"no run {run_id!r} in this journal"
        last = check.run.head_seq  # records a live writer adds meanwhile are not this audit's
        try:
            for page in self._pages(run_id, 0, CHAIN_COLUMNS):
                for row in page:
                    if type(row[0]) is int and row[0] > last:
                        return True, None, check.end()
                    check.row(row)
            return True, None, check.end()
        except JournalDamaged as exc:
            return False, exc.seq, str(exc)

    def check_integrity(self) -> None:
        """The database's own check of its files (SQLite); raises `JournalDamaged`.
        PostgreSQL checks its pages itself (data checksums) and has nothing cheap to add."""

    def _chain(
        self, run_id: str, events: Sequence[Event], operator: str
    ) -> tuple[tuple[int, str], list[Row], tuple[int, str], str]:
        """(the head the append starts from, the chained records as insert rows, the new
        head, its seal)."""
        start = self._head(run_id)
        key = self._run_key(run_id)
        rows = chain_rows(run_id, start, events, operator, key)
        seq, last = rows[-1][1], rows[-1][7]
        return start, rows, (seq, last), head_mac(run_id, seq, last, key)

    def _chain_params(
        self, run_id: str, events: Sequence[Event], operator: str
    ) -> tuple[tuple[int, str], list[Any], tuple[int, str], str]:
        """`_chain` with the records flattened for a multi-row INSERT (`chain_params`)."""
        start = self._head(run_id)
        key = self._run_key(run_id)
        params = chain_params(run_id, start, events, operator, key)
        seq, last = params[-7], params[-1]
        return start, params, (seq, last), head_mac(run_id, seq, last, key)

    _MOVE_HEAD = (
        "UPDATE runs SET head_seq = {p}, head_hash = {p}, head_mac = {p} "
        "WHERE run_id = {p} AND head_seq = {p} AND head_hash = {p}"
    )
    """The compare-and-set that moves a run's head: fails if another writer moved it."""
