"""How fast the SQLite journal appends durably and replays a long run.

The engine appends before it acts, so append latency bounds how fast a rollout
moves; crash recovery replays the whole journal, so replay time bounds how fast
`interlock resume` gets going. Goals: >= 20,000 events/s in durable batches,
a 1,000,000-event replay (read + decode, later + reduce) in under 20 s.

    python bench/journal_bench.py [--events 1000000] [--verify] [--audit-key] [--appends-only]

`--audit-key` seals the runs with an HMAC key (as `INTERLOCK_AUDIT_KEY` does);
`--verify` also times a whole-run verify and the verified replay `resume` does.

Everything happens in a temporary directory (on the same disk as the default
journal would be, if TMPDIR says so). Results are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.journal_sqlite import SqliteJournal  # noqa: E402
from core.events import Event, ExposureApplied, Measured, Tick  # noqa: E402
from core.ports import RunInfo  # noqa: E402

SERVICES = ("features", "embedder", "ranker", "api")
GATES = ("errors", "latency", "drift")


def realistic_events(count: int, start: int = 0) -> Iterator[Event]:
    """A steady-state mix: per ten events four ticks, five measurements, one exposure change."""
    for i in range(start, start + count):
        at = i * 0.5
        slot = i % 10
        service = SERVICES[(i // 10) % len(SERVICES)]
        if slot in (0, 3, 6, 8):
            yield Tick(at=at)
        elif slot == 9:
            yield ExposureApplied(at=at, cmd_id=i, service=service, percent=(i % 100) * 1.0)
        else:
            yield Measured(
                at=at,
                cmd_id=i,
                service=service,
                gate=GATES[slot % 3],
                value=0.001 * (i % 997) / 7,
                baseline=0.001 * (i % 991) / 7,
            )


def new_run(journal: SqliteJournal, run_id: str) -> str:
    journal.create_run(
        RunInfo(run_id, "bench", "bench.yaml", "rollout: bench\n", 7, "virtual", float("inf"), "")
    )
    return run_id


Rates = tuple[float, float]
"""(events per wall second, events per CPU second of this process: user + system)."""


def _rates(events: int, wall: float, cpu: float) -> Rates:
    return events / wall, events / max(cpu, 1e-9)


def append_rate(journal: SqliteJournal, run_id: str, batch: int, total: int) -> Rates:
    """Durable appends of `total` events in calls of `batch` events → events per second.
    Everything `SqliteJournal.append` does is inside the clock: encoding the bodies,
    chaining their hashes, one transaction (BEGIN IMMEDIATE, the inserts, the run's head
    moved by a compare-and-set, COMMIT with its sync) and a checkpoint of the WAL when a
    batch applies an exposure (at most every 0.25 s). The events are built beforehand."""
    batches = [list(realistic_events(batch, start=n * batch)) for n in range(total // batch)]
    began, cpu = time.perf_counter(), time.process_time()
    for events in batches:
        journal.append(run_id, events, operator="bench")
    return _rates(len(batches) * batch, time.perf_counter() - began, time.process_time() - cpu)


def bare_rate(path: Path, batch: int, total: int) -> Rates:
    """The floor `append_rate` is held to (issue 17: at least 0.7x): a plain sqlite3 loop
    inserting the same rows (the same bodies, hashes and columns, encoded and chained
    beforehand, outside the clock) into the same schema (a new file, like interlock's),
    one transaction per batch (BEGIN IMMEDIATE, one executemany, COMMIT), WAL with
    synchronous=FULL. What it leaves out is what interlock adds: encoding the bodies,
    chaining their hashes, moving the run's head, and its stage-boundary checkpoints."""
    import sqlite3

    from adapters.journal_codec import chain_records

    with SqliteJournal(path) as journal:  # the schema's tables, made as interlock makes them
        journal.runs()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    rows = []
    for n in range(total // batch):
        chained = chain_records("bare", (n * batch, "0" * 64), realistic_events(batch, start=n * batch), "bench")
        rows.append([("bare", *record) for record in chained])
    insert = ("INSERT INTO records (run_id, seq, at, kind, body, operator, prev_hash, hash) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    began, cpu = time.perf_counter(), time.process_time()
    for chunk in rows:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, chunk)
        db.execute("COMMIT")
    rates = _rates(len(rows) * batch, time.perf_counter() - began, time.process_time() - cpu)
    db.close()
    return rates


def write_events(journal: SqliteJournal, run_id: str, total: int, batch: int = 1000) -> float:
    began = time.perf_counter()
    for start in range(0, total, batch):
        journal.append(run_id, list(realistic_events(min(batch, total - start), start)))
    return time.perf_counter() - began


def replay_seconds(
    journal: SqliteJournal,
    run_id: str,
    fold: Callable[[Any, Event], Any] | None = None,
    initial: Any = None,
) -> float:
    """Seconds to stream every record of the run and decode its event, folding each
    into `state = fold(state, event)` when given (pass the reducer, e.g.
    `lambda s, e: reduce(s, e)[0]` with `initial=` the plan's initial state)."""
    state = initial
    count = 0
    began = time.perf_counter()
    if fold is None:
        for _record in journal.records(run_id):
            count += 1
    else:
        for record in journal.records(run_id):
            state = fold(state, record.event)
            count += 1
    elapsed = time.perf_counter() - began
    if count != journal.last_seq(run_id):
        raise RuntimeError(f"replayed {count} records, journal holds {journal.last_seq(run_id)}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events for the replay run")
    parser.add_argument("--verify", action="store_true", help="also time a hash-chain verify")
    parser.add_argument("--audit-key", action="store_true", help="seal the runs with an HMAC key")
    parser.add_argument("--appends-only", action="store_true", help="only the append rates, no replay")
    args = parser.parse_args(argv)
    key = {"audit_key": b"bench audit key"} if args.audit_key else {}

    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        path = Path(tmp) / "journal.db"
        print(f"journals in {tmp} (WAL, synchronous=FULL); rates per wall second | per CPU second")
        for batch, total in ((1, 300), (100, 30_000), (1_000, 100_000)):
            with SqliteJournal(Path(tmp) / f"append-{batch}.db", **key) as journal:
                rate = append_rate(journal, new_run(journal, f"append-{batch}"), batch, total)
            bare = bare_rate(Path(tmp) / f"bare-{batch}.db", batch, total)
            print(f"durable append, batches of {batch:>5}: {rate[0]:>9,.0f} | {rate[1]:>9,.0f} events/s; "
                  f"a bare sqlite3 loop: {bare[0]:>9,.0f} | {bare[1]:>9,.0f}/s; "
                  f"{rate[0] / bare[0]:.2f}x | {rate[1] / bare[1]:.2f}x")
        if args.appends_only:
            return

        with SqliteJournal(path, **key) as journal:
            run_id = new_run(journal, "replay")
            wrote = write_events(journal, run_id, args.events)
            print(f"wrote {args.events:,} events in {wrote:.1f} s ({args.events / wrote:,.0f}/s)")

        size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob("*-wal"))
        print(f"journal size: {size / 2**20:.0f} MiB")

        with SqliteJournal(path, readonly=True, **key) as journal:
            seconds = replay_seconds(journal, run_id)
            print(f"replay (read + decode) {args.events:,} events: {seconds:.1f} s")
            counted = replay_seconds(journal, run_id, fold=lambda n, _e: n + 1, initial=0)
            print(f"replay with a trivial fold:              {counted:.1f} s")
            if args.verify:
                began = time.perf_counter()
                ok, bad, message = journal.verify(run_id)
                print(f"verify: {message} in {time.perf_counter() - began:.1f} s")
                if hasattr(journal, "checked_records"):
                    began = time.perf_counter()
                    check = journal.open_check(run_id)
                    count = sum(1 for _ in journal.checked_records(check))
                    journal.end_check(check)
                    print(f"verified replay (read + check + decode) {count:,} events: "
                          f"{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
