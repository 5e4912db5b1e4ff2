"""The journal's body encoder writes orjson's bytes only where they are `json`'s bytes.

`adapters.journal_codec.encode_body` must be byte for byte
`json.dumps(obj, sort_keys=True, separators=(",", ":"))` (ASCII): the bodies and the
hash chain over them are a contract (`audit verify`, other languages, old journals).
A large seeded corpus mixes what records hold (names, numbers, nested maps and lists)
with what orjson spells differently (floats below 1e-4, NaN and infinities, non-ASCII,
DEL, control characters, integers beyond 64 bits); each corner is also pinned alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import struct
from typing import Any

import pytest

from adapters.journal_codec import chain_records, encode_body
from core import ExposureRead, Measured, Tick

REFERENCE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode

_TEXT = ["s00001", "ranker", "errors", "flag:embedder-v3", "route:api", "é", "\u2028", "\x7f", "\x00",
         "\n\t\"\\", "0.00001", "scale-1", "e-7", "日本", "\ud83d\ude00", "", "null"]


def _float(rng: random.Random) -> float:
    kind = rng.randrange(8)
    if kind == 0:
        return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]  # any bits: NaN too
    if kind == 1:
        return rng.choice([math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1e16, 1e-5, 1e-7, 1e-10])
    if kind == 2:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-12, 20)
    return round(rng.uniform(0, 100), rng.randint(0, 6))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([rng.randint(-10**6, 10**6), rng.getrandbits(70), -(2**63), 2**64 - 1])
    if kind in (3, 4):
        return _float(rng)
    if kind == 5:
        return rng.choice(_TEXT) + str(rng.randint(0, 99))
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if kind == 7:
        return tuple(_float(rng) for _ in range(rng.randint(0, 20)))  # long ones are summed
    return {rng.choice(_TEXT) + str(i): _value(rng, depth + 1) for i in range(rng.randint(0, 6))}


def test_bodies_are_byte_identical_to_json_over_a_large_random_corpus() -> None:
    rng = random.Random(17)
    for _ in range(60_000):
        obj = {f"k{i}": _value(rng) for i in range(rng.randint(1, 6))}
        assert encode_body(obj) == REFERENCE(obj), obj


@pytest.mark.parametrize("obj", [
    {"v": 5.7283863008376676e-05}, {"v": 1e-07}, {"v": -7.473322098043116e-09}, {"v": 1e-10},
    {"v": math.nan}, {"v": [0.5, math.inf]}, {"v": {"a": -math.inf}}, {"v": [1e308, 1e308]},
    {"v": "é"}, {"v": "\x7f"}, {"v": 2**64}, {"v": 1e16}, {"v": 1e-4}, {"v": [None, 0.1]},
    {"v": {"b": 1, "a": [1, 2.5, "x"]}}, {"v": (1.0, 2.0)},
])
def test_each_float_and_text_corner_is_written_as_json_writes_it(obj: dict[str, Any]) -> None:
    assert encode_body(obj) == REFERENCE(obj)


def test_what_json_refuses_is_refused() -> None:
    for obj in ({"v": {1, 2}}, {"v": object()}):
        with pytest.raises(TypeError):
            encode_body(obj)
    assert encode_body({1: "x"}) == REFERENCE({1: "x"})  # json turns int keys into text; so do we


def _reference_chain(run_id: str, head: tuple[int, str], events: list[Any]) -> list[tuple[str, str]]:
    seq, prev = head
    out = []
    for event in events:
        body = REFERENCE(event.to_dict())
        seq += 1
        digest = hashlib.sha256(REFERENCE([prev, run_id, seq, "", body]).encode("ascii")).hexdigest()
        out.append((body, digest))
        prev = digest
    return out


def test_the_hash_chain_over_random_events_is_the_one_json_gives() -> None:
    rng = random.Random(5)
    events: list[Any] = []
    for i in range(20_000):
        at = round(i * 0.5, 1)
        kind = rng.randrange(3)
        if kind == 0:
            events.append(Tick(at=at))
        elif kind == 1:
            data = [_float(rng) for _ in range(rng.randint(0, 4))] or None
            events.append(Measured(at=at, cmd_id=i, service=rng.choice(_TEXT), gate="errors",
                                   value=_float(rng), baseline=rng.choice([None, _float(rng)]),
                                   canary_data=data))
        else:
            names = [f"s{n:05d}" for n in range(rng.randint(0, 50))]
            events.append(ExposureRead(at=at, cmd_id=i, exposures={n: _float(rng) for n in names},
                                       targets={f"flag:{n}": _float(rng) for n in names}))
    chained = chain_records("run-é-1", (0, "genesis"), events)
    assert [(r.body, r.hash) for r in chained] == _reference_chain("run-é-1", (0, "genesis"), events)
