"""The journal's wire format and hash chain, shared by every journal adapter.

A record's body is the JSON of `event.to_dict()`, compact and deterministic
(sorted keys, no spaces, ASCII only), so the same event always yields the same
bytes and the hash chain can be recomputed anywhere, in any language. Python
writes floats with their shortest exact repr, so they round-trip bit for bit;
NaN and infinities are kept (as `NaN`/`Infinity`) rather than refused, because
a metric source may well answer NaN and a journal that cannot record what
happened is worse than one with a non-standard token.

Each record's `hash` is sha256 over the JSON array
`[prev_hash, run_id, seq, operator, body]` (same encoder), `prev_hash` being
the previous record's hash, "" for the first. A JSON array cannot be confused
with another split of the same characters, which a plain concatenation could.
"""

from __future__ import annotations

import hashlib
import json

import orjson
import math
from collections.abc import Iterable
from typing import Any, NamedTuple

from core.events import Event, adopt_event


SCHEMA_VERSION = 1
"""The journal schema both backends write; a newer one is refused, not guessed at."""


class JournalError(Exception):
    """The journal cannot be opened, read or written. The message is for the operator:
    it names the file and what is wrong, and never contains an event body."""


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_encode = _ENCODER.encode


def _decode(body: str) -> Any:
    """A record body as Python data. orjson is several times faster than `json` for the
    replay of long journals; it refuses the NaN and Infinity tokens `json` writes for a
    metric that answered NaN, and those bodies go through `json`."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def encode_event(event: Event) -> str:
    """The record body for `event`: compact, deterministic JSON of `to_dict()`."""
    try:
        return _encode(event.to_dict())
    except (TypeError, ValueError) as exc:
        raise JournalError(f"cannot encode a {event.kind!r} event: {exc}") from None


def decode_event(body: str) -> Event:
    """The event a record body holds. Raises ValueError/KeyError/TypeError on a bad body."""
    data = _decode(body)
    if not isinstance(data, dict):
        raise TypeError("a record body must be a JSON object")
    return adopt_event(data)


def chain_hash(prev_hash: str, run_id: str, seq: int, operator: str, body: str) -> str:
    """The hash that links a record to the one before it (see the module docstring)."""
    material = _encode([prev_hash, run_id, seq, operator, body])
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def record_operator(event: Event, default: str) -> str:
    """Who a record is attributed to: an operator action names its own operator (the
    console that sent it); every other event takes the batch's `operator`."""
    named = getattr(event, "operator", "")
    return named if isinstance(named, str) and named else default


class NewRecord(NamedTuple):
    """One record ready to store, chained to the one before it."""

    seq: int
    at: float
    kind: str
    body: str
    operator: str
    prev_hash: str
    hash: str


def chain_records(
    run_id: str, head: tuple[int, str], events: Iterable[Event], operator: str = ""
) -> list[NewRecord]:
    """Encode and chain `events` after the run's `head` (last seq, last hash). Every
    journal backend appends exactly these, so their chains are interchangeable."""
    seq, prev = head
    out: list[NewRecord] = []
    for event in events:
        body = encode_event(event)
        seq += 1
        who = record_operator(event, operator)
        digest = chain_hash(prev, run_id, seq, who, body)
        out.append(NewRecord(seq, event.at, event.kind, body, who, prev, digest))
        prev = digest
    return out


class ChainRow(NamedTuple):
    """What `verify_chain` needs of one stored record, in seq order."""

    seq: int
    kind: str
    at: float | None
    body: str
    operator: str
    prev_hash: str
    hash: str


Verdict = tuple[bool, int | None, str]
"""(ok, first bad seq or None, message for the operator)."""


def _same_at(column: float | None, body_at: object) -> bool:
    if not isinstance(body_at, (int, float)):
        return False
    if math.isnan(body_at):
        return column is None  # SQLite stores NaN as NULL
    return column is not None and float(column) == float(body_at)


def verify_chain(
    run_id: str, rows: Iterable[ChainRow], head: tuple[int, str] | None = None
) -> Verdict:
    """Recompute a run's chain. Detects a changed record (its hash no longer matches),
    a removed one (a gap in seq), reordered ones (hash and prev_hash disagree) and,
    given the run's recorded `head` (last seq, last hash), records cut off the end."""
    expected_seq = 1
    prev = ""
    for row in rows:
        if row.seq != expected_seq:
            if row.seq > expected_seq:
                return (
                    False,
                    expected_seq,
                    f"run {run_id}: record {expected_seq} is missing (the next one is {row.seq})",
                )
            return False, row.seq, f"run {run_id}: record {row.seq} is out of order"
        if row.prev_hash != prev:
            return (
                False,
                row.seq,
                f"run {run_id}: record {row.seq} does not follow record {row.seq - 1} "
                "(its prev_hash differs): records were reordered, replaced or removed",
            )
        if chain_hash(prev, run_id, row.seq, row.operator, row.body) != row.hash:
            return False, row.seq, f"run {run_id}: record {row.seq} was changed (hash mismatch)"
        try:
            data = _decode(row.body)
            kind_ok = isinstance(data, dict) and data.get("kind") == row.kind
            at_ok = kind_ok and _same_at(row.at, data.get("at"))
        except ValueError:
            kind_ok = at_ok = False
        if not (kind_ok and at_ok):
            return (
                False,
                row.seq,
                f"run {run_id}: record {row.seq}: its kind/at columns disagree with its body",
            )
        prev = row.hash
        expected_seq += 1
    last = expected_seq - 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != last or head_hash != prev:
            if head_seq > last:
                first_bad: int | None = last + 1
            elif head_seq < last:
                first_bad = head_seq + 1
            else:
                first_bad = last or None
            return (
                False,
                first_bad,
                f"run {run_id}: the run's head says it ends at record {head_seq}, "
                f"but the records end at {last}: records were removed from the end or added",
            )
    return True, None, f"run {run_id}: {last} records, chain intact"
