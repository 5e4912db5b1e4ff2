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
the previous record's hash; the first record's is the run's genesis (a hash of
the run's facts, `adapters.journal_chain`). A JSON array cannot be confused
with another split of the same characters, which a plain concatenation could.
"""

from __future__ import annotations

import dataclasses
import hashlib
from hashlib import sha256 as _sha256
import hmac
import json
import re
from itertools import chain, count, repeat
from operator import attrgetter, countOf

import orjson
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from core import Event, adopt_event


SCHEMA_VERSION = 2
"""The journal schema both backends write; a newer one is refused, not guessed at.
Version 2 chains each run's facts (its genesis), its seal and its head (`journal_chain`)."""


class JournalError(Exception):
    """The journal cannot be opened, read or written. The message is for the operator:
    it names the file and what is wrong, and never contains an event body."""


class JournalIOError(JournalError):
    """The journal's storage failed under it: the disk is full, the file or database is
    read-only, or the device reported an I/O error. Not bad input: its own exit code."""


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)
_quote_ascii = json.encoder.encode_basestring_ascii  # what _ENCODER writes for a str
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
"""Sorted keys, compact; every type `json` would not write as orjson does (dataclasses,
dates, subclasses of str/int/float/dict/list) is refused, so it goes through `json`."""
_SHORT_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9](?![0-9])")


def encode_body(obj: Any) -> str:
    """`json.dumps(obj, sort_keys=True, separators=(",", ":"))` (ASCII), byte for byte,
    written by orjson wherever that gives the same bytes (several times faster).

    orjson differs from `json` in four places, each detected here: non-ASCII text and DEL
    (orjson leaves them unescaped: the output is not ASCII or holds 0x7f; they are then
    escaped with `json`'s own function), and, handed to `json` whole, floats between
    1e-10 and 1e-4 (Python writes `5e-05` and `1e-07`; orjson writes `0.00005` and
    `1e-7`: the output holds `0.0000` or a one-digit negative exponent), NaN and infinities (orjson writes `null`; `json` writes `NaN` and
    `Infinity`, which the journal keeps: found by `_non_finite`), and what orjson cannot
    write at all (integers beyond 64 bits, keys that are not strings: `TypeError`).
    A string that merely contains `0.0000` or `e-7` costs the slower path, never a
    different byte. `tests/test_journal_orjson.py` holds both paths to each other over
    a large random corpus."""
    try:
        out = orjson.dumps(obj, option=_ORJSON_OPTIONS)
    except TypeError:
        return _ENCODER.encode(obj)
    if (
        b"0.0000" in out
        or (b"e-" in out and _SHORT_NEGATIVE_EXPONENT.search(out) is not None)
        or _non_finite(obj)
    ):
        return _ENCODER.encode(obj)
    if not out.isascii() or b"\x7f" in out:
        # Only inside strings, and escaped there by `json`'s own function: a verdict's
        # `≤ ✓` on every measurement line of `run --json` took the slow path whole.
        return _UNESCAPED.sub(_escaped, out.decode("utf-8"))
    return out.decode("ascii")


_UNESCAPED = re.compile(r"[^\x00-\x7e]+")
"""What `json` escapes (`ensure_ascii`) and orjson writes as it is: non-ASCII and DEL."""


def _escaped(found: re.Match[str]) -> str:
    return _quote_ascii(found.group())[1:-1]


def _non_finite(obj: Any) -> bool:
    """Whether `obj` holds a NaN or an infinity anywhere (or, rarely, a sum that overflows:
    a false alarm only costs the slower encoder). A long container of numbers is summed
    in one C-level pass (NaN and infinities survive a sum); a record's own few fields are
    looked at one by one."""
    kind = type(obj)
    if kind is float:
        return bool(obj - obj)  # NaN - NaN and inf - inf are NaN (true); finite x - x is 0.0
    if kind is dict:
        values: Any = obj.values()
    elif kind is list or kind is tuple:
        values = obj
    else:
        return False
    if len(obj) > 8:
        try:
            total = sum(values, 0.0)
        except (TypeError, OverflowError):
            pass
        else:
            return bool(total - total)
    for value in values:
        kind = type(value)
        if kind is float:
            if value - value:
                return True
        elif (kind is dict or kind is list or kind is tuple) and _non_finite(value):
            return True
    return False


def decode_body(body: str) -> Any:
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
        return encode_body(event.to_dict())
    except (TypeError, ValueError) as exc:
        raise JournalError(f"cannot encode a {event.kind!r} event: {exc}") from None


def decode_event(body: str) -> Event:
    """The event a record body holds. Raises ValueError/KeyError/TypeError on a bad body."""
    data = decode_body(body)
    if not isinstance(data, dict):
        raise TypeError("a record body must be a JSON object")
    return adopt_event(data)


class _Quoted(str):
    """A string already written as a JSON string (`quote_json`), so `chain_hash` copies it."""


def quote_json(text: str) -> _Quoted:
    return _Quoted(_quote_ascii(text))


def chain_hash(
    prev_hash: str, run_id: str, seq: int, operator: str, body: str, key: bytes | None = None
) -> str:
    """The hash that links a record to the one before it (see the module docstring):
    SHA-256, or HMAC-SHA256 under the run's audit key (`adapters.journal_chain`).

    The material is `encode_body([prev_hash, run_id, seq, operator, body])`, written out
    here with the encoder's own C string quoting: byte for byte the same (a test
    checks), without the encoder's per-call overhead, once per record of a replay.
    `run_id` may come pre-quoted (`quote_json`)."""
    rid = run_id if type(run_id) is _Quoted else _quote_ascii(run_id)
    if type(seq) is not int:
        return mac(key, encode_body([prev_hash, str(run_id), seq, operator, body]))
    data = f"[{_quote_ascii(prev_hash)},{rid},{seq},{_quote_ascii(operator)},{_quote_ascii(body)}]".encode("ascii")
    return _sha256(data).hexdigest() if key is None else hmac.digest(key, data, "sha256").hex()


def mac(key: bytes | None, material: str) -> str:
    """SHA-256 of `material` (ASCII), or HMAC-SHA256 under `key`: every hash of the chain."""
    data = material.encode("ascii")
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.digest(key, data, "sha256").hex()


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
    run_id: str, head: tuple[int, str], events: Iterable[Event], operator: str = "",
    key: bytes | None = None,
) -> list[NewRecord]:
    """Encode and chain `events` after the run's `head` (last seq, last hash), under the
    run's audit `key` if it has one. Every journal backend appends exactly these, so
    their chains are interchangeable. One event at a time: the plain path `chain_rows`
    is held to (`tests/test_journal_batch.py`)."""
    seq, prev = head
    out: list[NewRecord] = []
    for event in events:
        body = encode_event(event)
        seq += 1
        who = record_operator(event, operator)
        digest = chain_hash(prev, run_id, seq, who, body, key)
        out.append(NewRecord(seq, event.at, event.kind, body, who, prev, digest))
        prev = digest
    return out


Row = tuple[str, int, float, str, str, str, str, str]
"""A record as both journals insert it: run_id, then `NewRecord`'s fields in order."""


def chain_rows(
    run_id: str, head: tuple[int, str], events: Sequence[Event], operator: str = "",
    key: bytes | None = None,
) -> list[Row]:
    """`chain_records` as insert rows (`Row`), byte for byte, for a whole batch at once:
    the batch's bodies are written by one orjson call (`_batch_bodies`), their hash
    material by another, and hashed in one tight loop. Whatever the batch path cannot
    vouch for goes through `chain_records`, and so does a single event (cheaper there)."""
    chained = _chain_batch(run_id, head, events, operator, key)
    if chained is None:
        return [(run_id, *record) for record in chain_records(run_id, head, events, operator, key)]
    bodies, who, hashes = chained
    seq, prev = head
    return list(zip(repeat(run_id), count(seq + 1), map(_AT, events), map(_KIND, events), bodies,
                    repeat(operator) if who is None else who, chain((prev,), hashes), hashes))


def chain_params(
    run_id: str, head: tuple[int, str], events: Sequence[Event], operator: str = "",
    key: bytes | None = None,
) -> list[Any]:
    """`chain_rows` flattened, row after row (8 values each): what a multi-row INSERT binds.
    Laid out a column at a time by slice assignment, not as a tuple per row that is then
    taken apart again (~0.3 µs a record less, measured at batches of 100 and 1,000)."""
    chained = _chain_batch(run_id, head, events, operator, key)
    if chained is None:
        records = chain_records(run_id, head, events, operator, key)
        return list(chain.from_iterable((run_id, *record) for record in records))
    bodies, who, hashes = chained
    (seq, prev), n = head, len(events)
    flat: list[Any] = [run_id] * (8 * n)  # column 0 stays the run id
    flat[1::8] = range(seq + 1, seq + 1 + n)
    flat[2::8] = list(map(_AT, events))
    flat[3::8] = list(map(_KIND, events))
    flat[4::8] = bodies
    flat[5::8] = [operator] * n if who is None else who
    flat[6::8] = [prev, *hashes[:-1]]
    flat[7::8] = hashes
    return flat


def _chain_batch(
    run_id: str, head: tuple[int, str], events: Sequence[Event], operator: str, key: bytes | None,
) -> tuple[list[str], list[str] | None, list[str]] | None:
    """(bodies, operators or None when all are `operator`, hashes) of a batch written at
    once, or None for what goes through `chain_records`."""
    seq, prev = head
    bodies = _batch_bodies(events) if type(seq) is int and type(run_id) is str and len(events) > 1 else None
    if bodies is None:
        return None
    who: list[str] | None
    if _NAMES_OPERATOR.isdisjoint(map(type, events)):
        who = None
        quoted_who: Iterable[orjson.Fragment] = repeat(_fragment(operator))
    else:
        who = [record_operator(event, operator) for event in events]
        quoted_who = list(map(_fragment, who))
    # Each record's hash material but its `prev_hash`, from one orjson call: the run id and
    # operator go in as written by `_quote_ascii` (fragments), and every body is printable
    # ASCII (`_batch_bodies`), which orjson quotes as `json` does (only `\` and `"` escaped).
    items: list[Any] = [_SEPARATOR] * (2 * len(bodies) - 1)
    items[::2] = zip(repeat(_fragment(run_id)), count(seq + 1), quoted_who, bodies)
    tails = orjson.dumps(items)[2:-2].decode("ascii").split("],\n,[")
    first = f"[{_quote_ascii(prev)},{tails[0]}]".encode("ascii")
    hashes: list[str] = []
    add = hashes.append
    if key is None:
        add(last := _sha256(first).hexdigest())
        for tail in tails[1:]:
            add(last := _sha256(f'["{last}",{tail}]'.encode("ascii")).hexdigest())
    else:
        add(last := hmac.digest(key, first, "sha256").hex())
        for tail in tails[1:]:
            add(last := hmac.digest(key, f'["{last}",{tail}]'.encode("ascii"), "sha256").hex())
    return bodies, who, hashes


def _fragment(text: str) -> orjson.Fragment:
    """`text` as `json` quotes it, for orjson to copy as it is."""
    return orjson.Fragment(_quote_ascii(text).encode("ascii"))


_AT = attrgetter("at")
_KIND = attrgetter("kind")
_DICT = attrgetter("__dict__")
_SEPARATOR = orjson.Fragment(b"\n")
"""Written raw between a batch's bodies: compact JSON never holds a raw newline (a string
escapes it), so the batch splits exactly where these are."""
_CLEAN: set[type] = set()
"""Event classes whose `to_dict` is `{"kind": kind, **__dict__}`: a dataclass keeping its
fields in its `__dict__` (no slots) and `Event`'s own `to_dict`."""
_WIDTH: dict[type, int] = {}
"""Keys of each clean class's body: its fields and `kind`."""
_NAMES_OPERATOR: set[type] = set()
"""Classes whose events may name their own operator (`record_operator`)."""


def _learn(cls: type) -> bool:
    """Whether `cls` is clean (`_CLEAN`), found out once per class."""
    if cls not in _WIDTH:
        plain = (dataclasses.is_dataclass(cls) and not hasattr(cls, "__slots__")
                 and getattr(cls, "to_dict", None) is Event.to_dict)
        names = [f.name for f in dataclasses.fields(cls)] if plain else []
        _WIDTH[cls] = len(names) + 1 if plain and "kind" not in names else 0
        if "operator" in names or hasattr(cls, "operator"):
            _NAMES_OPERATOR.add(cls)
        if _WIDTH[cls]:
            _CLEAN.add(cls)
    return cls in _CLEAN


def _batch_bodies(events: Sequence[Event]) -> list[str] | None:
    """Each event's `encode_event` body, from one orjson call over the batch: None when
    the batch cannot be written that way (a class with its own `to_dict` or slots, an
    attribute that is not a field, a value orjson refuses), which `chain_records` then
    writes event by event. A body orjson may spell unlike `json` (`encode_body`'s four
    cases, looked for over the whole batch first) is written by `encode_event` instead."""
    classes = list(map(type, events))
    if not _CLEAN.issuperset(classes) and not all(map(_learn, set(classes))):
        return None
    dicts = list(map(dict.copy, map(_DICT, events)))  # copied in C, not a dict display per event
    for fields, kind in zip(dicts, map(_KIND, events)):
        fields["kind"] = kind  # orjson sorts the keys: where it goes in the dict does not matter
    if sum(map(len, dicts)) != sum(map(_WIDTH.__getitem__, classes)):
        return None  # an attribute beyond the fields, which `to_dict` would leave out
    items: list[Any] = [_SEPARATOR] * (2 * len(dicts) - 1)
    items[::2] = dicts
    try:
        out = orjson.dumps(items, option=_ORJSON_OPTIONS)
    except TypeError:
        return None
    # A NaN or infinity is written `null`, like None: as many `null`s as Nones (counted
    # by identity first) proves there is none. A `null` inside a text only costs the check below.
    nones = sum(map(countOf, map(dict.values, dicts), repeat(None)))
    if (
        out.isascii() and b"\x7f" not in out and b"0.0000" not in out
        and (b"-" not in out or b"e-" not in out or _SHORT_NEGATIVE_EXPONENT.search(out) is None)
        and out.count(b"null") == nones
    ):
        bodies = out[1:-1].decode("ascii").split(",\n,")
    else:
        bodies = out[1:-1].decode("utf-8").split(",\n,")
        for n, body in enumerate(bodies):
            if (
                not body.isascii() or "\x7f" in body or "0.0000" in body
                or ("e-" in body and _SHORT_NEGATIVE_EXPONENT.search(body.encode("ascii")) is not None)
                or body.count("null") != countOf(dicts[n].values(), None)
            ):
                bodies[n] = encode_event(events[n])
    return bodies if len(bodies) == len(events) else None
