"""`chain_params` (what the SQLite journal binds: the rows flattened) is `chain_rows`,
row after row, for every batch the batch tests cross: both its own path and the plain one."""

from __future__ import annotations

import random
from itertools import chain

from adapters.journal_codec import chain_params, chain_rows
from core import OperatorAction, Tick
from tests.test_journal_batch import OwnDict, _random_event


def test_params_are_the_rows_flattened() -> None:
    rng = random.Random(29)
    for case in range(400):
        size = rng.choice([1, 2, 3, 49, 50, 51, 120])
        events = [_random_event(rng, case * 1000 + i) for i in range(size)]
        if rng.random() < 0.1:
            events.insert(rng.randrange(size), OwnDict(at=1.0, n=3))  # only the plain path writes it
        head = (rng.randint(0, 10**6), rng.choice(["genesis", "ab" * 32, "é\"\\"]))
        args = (rng.choice(["run-1", "run-é"]), head, events, rng.choice(["", "bob@host", "ü"]),
                rng.choice([None, b"audit key"]))
        rows = chain_rows(*args)
        assert [repr(v) for v in chain_params(*args)] == [repr(v) for v in chain.from_iterable(rows)], case


def test_each_record_names_the_hash_before_it() -> None:
    events = [Tick(at=float(i)) for i in range(5)] + [OperatorAction(at=9.0, action="pause", operator="ann")]
    flat = chain_params("run", (7, "genesis"), events, "bob")
    rows = [flat[i:i + 8] for i in range(0, len(flat), 8)]
    assert [row[1] for row in rows] == [8, 9, 10, 11, 12, 13]
    assert [row[6] for row in rows] == ["genesis", *[row[7] for row in rows[:-1]]]
    assert [row[5] for row in rows] == ["bob"] * 5 + ["ann"]
