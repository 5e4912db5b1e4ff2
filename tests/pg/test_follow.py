"""Watchers: `follow` streams a run another process drives, within one second.

PostgreSQL wakes watchers with NOTIFY at commit; SQLite is polled every 0.2 s.
Lag is measured end to end: the writer process stamps each event with
CLOCK_MONOTONIC (system-wide on Linux) just before appending it, and the
watcher compares on arrival.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable

from pgtools import Backend

from adapters.journals import afollow
from core.events import Resumed, Tick
from core.ports import Record, RunInfo

RUN = "run-1"
BATCHES = 5

WRITER = """
    import sys, time
    from adapters.journals import open_journal
    from core.events import Resumed
    journal = open_journal(sys.argv[1])
    for i in range(int(sys.argv[3])):
        if sys.stdin.readline().strip() != "go":
            break
        journal.append(sys.argv[2], [Resumed(at=float(i), note=str(time.monotonic_ns()))])
    journal.close()
"""


def make_run(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(RunInfo(RUN, "ro", "p", "t", 1, "virtual", 1.0, "", "ana"))


def test_watcher_sees_each_batch_from_another_process_within_a_second(
    backend: Backend, processes: Callable
) -> None:
    make_run(backend)
    writer = processes(WRITER, backend.spec, RUN, str(BATCHES), stdin=subprocess.PIPE)
    lags: list[float] = []
    seen: list[int] = []
    stop = threading.Event()
    arrived = threading.Semaphore(0)

    def watch() -> None:
        with backend.open(readonly=True) as watcher:
            for record in watcher.follow(RUN, stop=stop):
                lags.append((time.monotonic_ns() - int(record.event.note)) / 1e9)  # type: ignore[attr-defined]
                seen.append(record.seq)
                arrived.release()

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        for _ in range(BATCHES):
            writer.stdin.write("go\n")
            writer.stdin.flush()
            assert arrived.acquire(timeout=5), f"no record within 5 s (seen {seen})"
            time.sleep(0.1)  # the watcher waits again before the next batch
    finally:
        stop.set()
        writer.stdin.close()
        thread.join(timeout=5)
    assert writer.wait(timeout=10) == 0
    assert not thread.is_alive()
    assert seen == list(range(1, BATCHES + 1))
    assert max(lags) < 1.0, lags


def test_follow_starts_after_the_given_record_and_stops_when_asked(backend: Backend) -> None:
    make_run(backend)
    with backend.open() as journal:
        journal.append(RUN, [Tick(at=float(i)) for i in range(5)])
        stop = threading.Event()
        stream = journal.follow(RUN, after=3, stop=stop)
        assert [next(stream).seq, next(stream).seq] == [4, 5]
        threading.Timer(0.2, journal.append, args=(RUN, [Tick(at=5.0)])).start()
        assert next(stream).seq == 6  # blocks until the append lands
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        assert list(stream) == []
        assert time.monotonic() - started < 1.5


def test_follow_ignores_other_runs(backend: Backend) -> None:
    make_run(backend)
    with backend.open() as journal:
        journal.create_run(RunInfo("other", "ro", "p", "t", 1, "virtual", 1.0, "", ""))
        stream = journal.follow(RUN)
        journal.append("other", [Tick(at=0.0)])
        journal.append(RUN, [Tick(at=1.0)])
        first = next(stream)
        assert (first.seq, first.event.at) == (1, 1.0)
        stream.close()


def test_afollow_hands_records_to_asyncio_and_stops_its_thread(backend: Backend) -> None:
    make_run(backend)

    async def main() -> list[Record]:
        got: list[Record] = []
        with backend.open() as journal:
            journal.append(RUN, [Tick(at=0.0)])
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, journal.append, RUN, [Resumed(at=1.0, note="late")])
            stream = afollow(journal, RUN)
            async for record in stream:
                got.append(record)
                if len(got) == 2:
                    break
            await stream.aclose()
            await asyncio.sleep(0.5)  # the pump thread notices the stop within a slice
            assert not [t for t in threading.enumerate() if t.name == f"follow-{RUN}"]
        return got

    got = asyncio.run(main())
    assert [r.seq for r in got] == [1, 2]
    assert got[1].event == Resumed(at=1.0, note="late")
