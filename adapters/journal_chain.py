"""What a run's hash chain covers and how it is checked: the run's facts, its seal, its head.

A run's chain starts at its *genesis*, a hash over everything that decides the
run: the plan text and path, the seed, the clock and speed, the rollout name,
the start time and the operator who started it (schema version 2). Record 1's
`prev_hash` is the genesis, so an edit of any of those facts breaks the chain.
The runs row keeps a digest of each fact (`facts`), so a check can say *which*
fact changed, not only that one did.

The *seal* says how hashes are made. Without a key: SHA-256, which proves that
records were not changed by someone who did not also recompute the chain. With
`INTERLOCK_AUDIT_KEY` in the environment: HMAC-SHA256 under that key, so only
a holder of the key can make a chain, a genesis or a head that verifies. The
key is never stored, printed or logged; the runs row keeps a short key id
(an HMAC of a fixed string) so a wrong key is told apart from tampering.

The run's head (last seq and hash) is stored with `head_mac`, a hash of both
under the same seal: with a key, the head cannot be moved back to an earlier
record (to hide a cut tail) without the key.

`ChainCheck` verifies a run one row at a time, so a replay can verify the
records it folds in the same pass (`resume` drives nothing it has not checked).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Iterable
from typing import Any, NamedTuple

from adapters.journal_codec import JournalError, decode_body, encode_body, quote_json, chain_hash, mac
from core import RunInfo

AUDIT_KEY_ENV = "INTERLOCK_AUDIT_KEY"

FACTS: dict[str, str] = {
    "rollout": "rollout name",
    "plan_path": "plan path",
    "plan_text": "plan text",
    "seed": "seed",
    "clock": "clock",
    "speed": "speed",
    "created": "start time",
    "operator": "operator",
}
"""The `RunInfo` fields the genesis covers, and how a message names each."""

HMAC_SEAL = "hmac-sha256:"


class JournalDamaged(JournalError):
    """A run's records or the database failed verification: changed, cut, or damaged.
    `seq` is the first bad record (0: the run's facts; None: not known). The message
    names the run and the record, never a record's contents."""

    def __init__(self, message: str, run_id: str | None = None, seq: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.seq = seq


def audit_key_from_env() -> bytes | None:
    """`$INTERLOCK_AUDIT_KEY` as bytes, None when unset or empty."""
    value = os.environ.get(AUDIT_KEY_ENV, "")
    return value.encode("utf-8", "surrogateescape") if value else None


def key_id(key: bytes) -> str:
    """A short public name of a key (it reveals nothing of the key)."""
    return hmac.digest(key, b"interlock audit key id", "sha256").hex()[:16]


def seal_for(key: bytes | None) -> str:
    """The seal a new run gets: '' (SHA-256) without a key."""
    return f"{HMAC_SEAL}{key_id(key)}" if key else ""


def key_for_seal(seal: str, key: bytes | None, run_id: str, writing: bool = False) -> bytes | None:
    """The key a run with `seal` is hashed under; raises `JournalDamaged` when the key
    at hand cannot check (or extend) it."""
    if not seal:
        if key is not None and not writing:
            raise JournalDamaged(
                f"run {run_id} is not sealed with an audit key (written without {AUDIT_KEY_ENV}, or "
                "its seal was removed): with a key set, only sealed runs verify", run_id, 0,
            )
        return None
    if not seal.startswith(HMAC_SEAL):
        raise JournalDamaged(f"run {run_id}: its seal is not one interlock writes", run_id, 0)
    doing = "drive or extend" if writing else "verify"
    if key is None:
        raise JournalDamaged(
            f"run {run_id} is sealed with an audit key: set {AUDIT_KEY_ENV} to {doing} it", run_id, 0
        )
    if key_id(key) != seal[len(HMAC_SEAL):]:
        raise JournalDamaged(
            f"run {run_id} was sealed with another audit key than {AUDIT_KEY_ENV} (or its seal "
            "was changed)", run_id, 0,
        )
    return key


def _fact_value(name: str, info: RunInfo) -> object:
    """A fact as the genesis covers it: the column's type normalised (SQLite gives an int
    for a whole REAL), anything of another type kept apart so it never matches."""
    value = getattr(info, name)
    if isinstance(value, bytes):
        return ["bytes", value.hex()]
    if name == "seed":
        return value if type(value) is int else ["not a number", str(value)]
    if name == "speed":
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return float(value) if isinstance(value, (int, float)) else ["not a number", str(value)]
    return "" if value is None else str(value)


def run_facts(info: RunInfo) -> str:
    """The `facts` column of a run: a digest of each fact, as compact JSON."""
    return encode_body({name: hashlib.sha256(encode_body(_fact_value(name, info)).encode("ascii")).hexdigest() for name in FACTS})


def genesis(run_id: str, facts: str, seal: str, key: bytes | None) -> str:
    """The hash record 1 follows: the run's facts under its seal."""
    return mac(key, encode_body(["interlock run", run_id, seal, facts]))


def head_mac(run_id: str, seq: int, last_hash: str, key: bytes | None) -> str:
    """What seals the run's head (last seq and hash) against being moved."""
    return mac(key, encode_body(["interlock head", run_id, seq, last_hash]))


class ChainRow(NamedTuple):
    """What a check needs of one stored record, in seq order."""

    seq: int
    kind: str
    at: float | None
    body: str
    operator: str
    prev_hash: str
    hash: str


class RunSeal(NamedTuple):
    """What a check needs of a runs row beyond `RunInfo`."""

    facts: str
    seal: str
    head_seq: int
    head_hash: str
    head_mac: str


Verdict = tuple[bool, int | None, str]
"""(ok, first bad seq or None, message for the operator); seq 0 is the run's facts."""


def _same_at(column: float | None, body_at: object) -> bool:
    if not isinstance(body_at, (int, float)):
        return False
    if math.isnan(body_at):
        return column is None  # SQLite stores NaN as NULL
    return column is not None and float(column) == float(body_at)


def _changed_facts(info: RunInfo, stored: str) -> list[str]:
    try:
        kept = json.loads(stored)
    except ValueError:
        kept = None
    if not isinstance(kept, dict):
        return list(FACTS.values())
    now = json.loads(run_facts(info))
    return [label for name, label in FACTS.items() if kept.get(name) != now[name]]


class ChainCheck:
    """Checks one run: its facts and seal at construction, then each record in seq order
    (`row`), then its head (`end`). Each failure raises `JournalDamaged`."""

    def __init__(self, info: RunInfo, run: RunSeal, key: bytes | None, *, writing: bool = False) -> None:
        rid = info.run_id
        self.run_id = rid
        self.run = run
        self.key = key_for_seal(run.seal, key, rid, writing)
        changed = _changed_facts(info, run.facts)
        if changed:
            raise JournalDamaged(
                f"run {rid}: its {', '.join(changed)} changed after the run began "
                "(no longer what its chain's genesis holds)", rid, 0,
            )
        self.prev = genesis(rid, run.facts, run.seal, self.key)
        self.seq = 0
        self._rid = quote_json(rid)  # quoted once: every record's hash starts with it

    def _bad(self, seq: int, what: str) -> JournalDamaged:
        return JournalDamaged(f"run {self.run_id}: record {seq} {what}", self.run_id, seq)

    def row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """Check the next record (a `ChainRow`, or a plain tuple in its order); its body
        decoded. The happy path is kept short: it runs once per record of a replay."""
        seq, kind, at, body, operator, prev_hash, digest = row
        if seq != self.seq + 1 or prev_hash != self.prev:
            self._misplaced(seq, prev_hash)
        if type(body) is not str or type(operator) is not str or type(digest) is not str:
            raise self._bad(seq, "holds a value of the wrong type: it was changed outside interlock")
        if chain_hash(prev_hash, self._rid, seq, operator, body, self.key) != digest:
            raise self._bad(seq, "was changed (hash mismatch)")
        try:
            data = decode_body(body)
            ok = type(data) is dict and data.get("kind") == kind and (
                at == data.get("at") or _same_at(at, data.get("at"))
            )
        except ValueError:
            ok = False
        if not ok:
            raise self._bad(seq, "is inconsistent: its kind/at columns disagree with its body")
        self.prev = digest
        self.seq = seq
        return data

    def _misplaced(self, seq: object, prev_hash: object) -> None:
        expected = self.seq + 1
        if type(seq) is not int:
            raise self._bad(expected, "has a record number that is not a number: it was changed outside interlock")
        if seq > expected:
            raise self._bad(expected, f"is missing (the next one is {seq})")
        if seq < expected:
            raise self._bad(seq, "is out of order")
        if expected == 1:
            raise self._bad(1, "does not follow the run's genesis: the run's facts, its seal "
                               "or its first record were changed")
        raise self._bad(seq, f"does not follow record {seq - 1} (its prev_hash differs): "
                             "records were reordered, replaced or removed")

    def end(self) -> str:
        """Check the head against the records seen; the verdict's message when intact."""
        run, last = self.run, self.seq
        if run.head_seq != last or run.head_hash != self.prev:
            first_bad = last + 1 if run.head_seq > last else (run.head_seq + 1 if run.head_seq < last else last or None)
            raise JournalDamaged(
                f"run {self.run_id}: the run's head says it ends at record {run.head_seq}, but the "
                f"records end at {last}: records were removed from the end or added", self.run_id, first_bad,
            )
        if run.head_mac != head_mac(self.run_id, run.head_seq, run.head_hash, self.key):
            raise JournalDamaged(
                f"run {self.run_id}: the run's head (record {run.head_seq}) is not sealed: it was moved "
                "or set by hand", self.run_id, run.head_seq or None,
            )
        keyed = " (HMAC)" if self.key is not None else ""
        return f"run {self.run_id}: {last} records, chain intact{keyed}"


def verify_chain(info: RunInfo, run: RunSeal, rows: Iterable[ChainRow], key: bytes | None) -> Verdict:
    """Check a whole run: (ok, first bad seq, message)."""
    try:
        check = ChainCheck(info, run, key)
        for row in rows:
            check.row(row)
        return True, None, check.end()
    except JournalDamaged as exc:
        return False, exc.seq, str(exc)
