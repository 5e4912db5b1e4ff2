"""A batch's records, encoded and chained at once, are the plain path's byte for byte.

`adapters.journal_codec.chain_rows` writes a whole batch's bodies with one orjson call,
looks for orjson's spellings that `json` would not write over the batch's bytes, quotes
the bodies for the hash material by replacement and hashes them in one loop. Every
journal appends through it, so it must give exactly what `chain_records` (one event at a
time, held to `json` itself by `tests/test_journal_orjson.py`) gives: the same bodies,
operators, hashes and columns, for every batch size, head, audit key and operator, and
for what the batch path must hand to the plain one (an event class with its own
`to_dict`, an attribute that is not a field, values orjson refuses or spells its own way).
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from adapters.journal_codec import chain_records, chain_rows
from core import Event, ExposureApplied, ExposureRead, Measured, OperatorAction, Tick
from tests.test_journal_orjson import _TEXT, _float, _value


def _plain(run_id: str, head: tuple[int, str], events: list[Any], operator: str = "",
           key: bytes | None = None) -> list[tuple[Any, ...]]:
    return [(run_id, *record) for record in chain_records(run_id, head, events, operator, key)]


def _same(run_id: str, head: tuple[int, str], events: list[Any], operator: str = "",
          key: bytes | None = None) -> None:
    fast = chain_rows(run_id, head, events, operator, key)
    plain = _plain(run_id, head, events, operator, key)
    assert [repr(row) for row in fast] == [repr(row) for row in plain]  # NaN `at` compares by its text


def _random_event(rng: random.Random, i: int) -> Event:
    at = rng.choice([i * 0.5, _float(rng)])
    kind = rng.randrange(6)
    if kind == 0:
        return Tick(at=at)
    if kind == 1:
        return ExposureApplied(at=at, cmd_id=i, service=rng.choice(_TEXT), percent=_float(rng))
    if kind == 2:
        data = [_float(rng) for _ in range(rng.randint(0, 4))] or None
        return Measured(at=at, cmd_id=i, service=rng.choice(_TEXT), gate=rng.choice(_TEXT),
                        value=rng.choice([None, _float(rng)]), baseline=rng.choice([None, _float(rng)]),
                        error=rng.choice([None, "", *_TEXT]), canary_data=data)
    if kind == 3:
        names = [rng.choice(_TEXT) + str(n) for n in range(rng.randint(0, 6))]
        return ExposureRead(at=at, cmd_id=i, exposures={n: _float(rng) for n in names},
                            error=rng.choice([None, *_TEXT]), targets={f"flag:{n}": _float(rng) for n in names})
    if kind == 4:
        return OperatorAction(at=at, action="pause", service=rng.choice([None, *_TEXT]),
                              operator=rng.choice(["", "ann@host", "é", "\x7f"]), reason=str(_value(rng)))
    return Measured(at=at, cmd_id=i, service="s", gate="g", value=rng.random(), baseline=rng.random())


def test_random_batches_match_the_plain_path_record_for_record() -> None:
    """Each batch mixes clean events with the ones orjson spells its own way (tiny floats,
    NaN, infinities, non-ASCII, DEL, `null` as text), so both the whole-batch path and
    its per-body fallback are crossed, with and without an audit key."""
    rng = random.Random(23)
    for case in range(600):
        size = rng.choice([1, 2, 3, 10, 50, 200])
        events = [_random_event(rng, case * 1000 + i) for i in range(size)]
        head = (rng.randint(0, 10**6), rng.choice(["genesis", "ab" * 32, "é\"\\", "\x00"]))
        _same(rng.choice(["run-1", "run-é", "r\"un"]), head, events,
              rng.choice(["", "bench", "bob@host", "ü"]), rng.choice([None, b"audit key"]))


def test_clean_batches_chain_on_from_one_batch_to_the_next() -> None:
    """Batches of steady-state events (the path that never falls back) continue one chain."""
    rng = random.Random(5)
    events = [Measured(at=i * 0.5, cmd_id=i, service="ranker", gate="errors", value=rng.random(),
                       baseline=rng.random()) if i % 3 else Tick(at=i * 0.5) for i in range(3000)]
    head: tuple[int, str] = (0, "genesis")
    rows = []
    for start in range(0, 3000, 250):
        batch = chain_rows("run", head, events[start:start + 250], "bench")
        head = (batch[-1][1], batch[-1][7])
        rows += batch
    assert rows == _plain("run", (0, "genesis"), events, "bench")


@pytest.mark.parametrize("value", [
    math.nan, math.inf, -math.inf, 5e-05, 1e-07, 2**64, "é", "\x7f", "null", {"a": math.nan},
    [1.0, math.nan], ("t", math.inf),
])
def test_each_corner_alone_and_among_clean_events(value: Any) -> None:
    tricky = FaultInjected_(at=1.0, fault={"v": value}) if isinstance(value, (dict, list, tuple)) else \
        Measured(at=1.0, cmd_id=1, service="s", gate="g", value=value)  # type: ignore[arg-type]
    clean = [Tick(at=float(i)) for i in range(5)]
    for events in ([tricky], [*clean, tricky, *clean]):
        _same("run", (3, "h"), events, "op")


@dataclass(frozen=True)
class FaultInjected_(Event):
    kind: ClassVar[str] = "fault_injected"
    fault: Any = None


@dataclass(frozen=True)
class OwnDict(Event):
    """An event class that writes its own body: the batch path must not guess it."""

    kind: ClassVar[str] = "own"
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "n": self.n * 2}


class MyDict(dict[str, float]):
    pass


def test_what_the_batch_path_cannot_vouch_for_goes_the_plain_way() -> None:
    extra = Tick(at=2.0)
    object.__setattr__(extra, "cached", 7)  # an attribute `to_dict` leaves out
    named = OperatorAction(at=3.0, action="resume", operator="ann")  # names its own operator
    for odd in (OwnDict(at=1.0, n=4), extra, ExposureRead(at=1.0, exposures=MyDict(a=1.0)), named):
        events = [Tick(at=0.0), odd, Tick(at=5.0)]
        _same("run", (0, "g"), events, "bob")
    assert chain_rows("run", (0, "g"), [OwnDict(at=1.0, n=4)])[0][4] == '{"at":1.0,"kind":"own","n":8}'
    assert chain_rows("run", (0, "g"), [extra])[0][4] == '{"at":2.0,"kind":"tick"}'
    assert [row[5] for row in chain_rows("run", (0, "g"), [Tick(at=0.0), named], "bob")] == ["bob", "ann"]


def test_the_fields_the_batch_path_reads_are_the_event_classes_fields() -> None:
    """The batch path writes `{"kind": kind, **event.__dict__}`: that is `to_dict` only
    while an event's `__dict__` holds exactly its fields (no slots, no extra state)."""
    for cls in (Tick, Measured, ExposureRead, OperatorAction):
        event = cls(at=1.0)
        assert list(event.__dict__) == [f.name for f in dataclasses.fields(cls)]
        assert {"kind": event.kind, **event.__dict__} == event.to_dict()


def test_the_sqlite_journal_stores_exactly_the_plain_records_in_any_batch_size(tmp_path: Any) -> None:
    """Large batches go in as multi-row INSERTs of `_ROWS_PER_INSERT` rows and the rest
    row by row: every size around that boundary stores what inserting the plain path's
    rows one by one stores (SQLite's own conversions included: -0.0, NaN), in order."""
    import sqlite3

    from adapters.journal_sqlite import _INSERT, _ROWS_PER_INSERT, SqliteJournal
    from adapters.sqlite_file import SCHEMA
    from core import RunInfo

    rng = random.Random(11)
    events = [_random_event(rng, i) for i in range(1000)]
    sizes = [1, 2, _ROWS_PER_INSERT - 1, _ROWS_PER_INSERT, _ROWS_PER_INSERT + 1, 3 * _ROWS_PER_INSERT + 7]
    with SqliteJournal(tmp_path / "j.db") as journal:
        journal.create_run(RunInfo("run", "r", "p.yaml", "", 1, "virtual", 1.0, ""))
        genesis = journal.head("run")
        start = 0
        for size in sizes:
            journal.append("run", events[start:start + size], operator="op")
            start += size
    plain = sqlite3.connect(tmp_path / "plain.db")
    plain.executescript(SCHEMA)
    plain.executemany(_INSERT, _plain("run", genesis, events[:start], "op"))
    read = "SELECT run_id, seq, at, kind, body, operator, prev_hash, hash FROM records ORDER BY seq"
    stored = sqlite3.connect(tmp_path / "j.db").execute(read).fetchall()
    assert len(stored) == start
    assert [repr(row) for row in stored] == [repr(row) for row in plain.execute(read)]
