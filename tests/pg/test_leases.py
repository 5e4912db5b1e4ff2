"""One driver per run: leases on SQLite (flock) and PostgreSQL (advisory lock).

The stress test runs several driver processes against one run. Each, while it
believes it holds the lease, logs the start and end of every "issue commands"
step (CLOCK_MONOTONIC, shared by all processes on Linux); the test SIGKILLs
whoever holds the lease now and then, and proves from the logs that no two
drivers' steps ever overlap and that another driver takes over each time. The
same harness without leases does find overlaps, so the check has teeth.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pgtools import Backend

from adapters.journal_codec import JournalError
from adapters.lease import lock_file_for
from core.events import Tick
from core.ports import Lease, LeaseHeld, LeaseLost, RunInfo

RUN = "run-1"


def make_run(backend: Backend) -> None:
    with backend.open() as journal:
        journal.create_run(RunInfo(RUN, "ro", "plan.yaml", "rollout: ro\n", 1, "virtual", 1.0, "", "ana"))


@pytest.fixture
def run(backend: Backend) -> Backend:
    make_run(backend)
    return backend


HOLDER = """
    import os, sys, time
    from adapters.journals import open_journal
    journal = open_journal(sys.argv[1])
    lease = journal.acquire_lease(sys.argv[2], f"{sys.argv[3]} pid {os.getpid()}")
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(processes: Callable, backend: Backend, who: str):  # type: ignore[no-untyped-def]
    import subprocess

    proc = processes(HOLDER, backend.spec, RUN, who, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    return proc


# -- refusal, release, waiting ------------------------------------------------------


def test_second_driver_is_refused_naming_the_holder(run: Backend) -> None:
    first, second = run.open(), run.open()
    lease = first.acquire_lease(RUN, "ana@laptop pid 11")
    assert isinstance(lease, Lease) and lease.holder == "ana@laptop pid 11"
    with pytest.raises(LeaseHeld) as refused:
        second.acquire_lease(RUN, "bo@desk pid 22")
    assert refused.value.holder == "ana@laptop pid 11"
    assert str(refused.value).startswith("run run-1 is being driven by ana@laptop pid 11;")
    assert "--take-over" in str(refused.value)
    lease.check()
    lease.release()
    lease.release()
    with pytest.raises(LeaseLost):
        lease.check()
    taken = second.acquire_lease(RUN, "bo@desk pid 22")
    with pytest.raises(LeaseHeld, match="bo@desk pid 22"):
        first.acquire_lease(RUN, "ana@laptop pid 11")
    taken.release()
    first.close()
    second.close()


def test_leases_are_per_run(run: Backend) -> None:
    with run.open() as journal:
        journal.create_run(RunInfo("run-2", "ro", "p", "t", 1, "virtual", 1.0, "", ""))
        a = journal.acquire_lease(RUN, "ana")
        b = journal.acquire_lease("run-2", "bo")
        a.check()
        b.check()
        a.release()
        b.release()


def test_waiting_gives_up_after_the_timeout(run: Backend) -> None:
    with run.open() as first, run.open() as second:
        first.acquire_lease(RUN, "ana@laptop pid 11")
        started = time.monotonic()
        with pytest.raises(LeaseHeld, match="ana@laptop"):
            second.acquire_lease(RUN, "bo", wait=True, timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 2.0


def test_waiting_driver_takes_over_once_the_holder_releases(run: Backend) -> None:
    with run.open() as first, run.open() as second:
        lease = first.acquire_lease(RUN, "ana")
        threading.Timer(0.3, lease.release).start()
        started = time.monotonic()
        taken = second.acquire_lease(RUN, "bo", wait=True, timeout=10)
        assert 0.25 <= time.monotonic() - started < 2.0
        taken.check()


def test_take_over_after_the_holder_process_is_killed(run: Backend, processes: Callable) -> None:
    holder = start_holder(processes, run, "ana@host-a")
    with run.open() as journal:
        with pytest.raises(LeaseHeld) as refused:
            journal.acquire_lease(RUN, "bo@host-b")
        assert refused.value.holder == f"ana@host-a pid {holder.pid}"
        got: list[float] = []

        def take_over() -> None:
            journal.acquire_lease(RUN, "bo@host-b", wait=True, timeout=20)
            got.append(time.monotonic())

        waiter = threading.Thread(target=take_over)
        waiter.start()
        time.sleep(0.3)
        assert not got  # still waiting while the holder lives
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        killed = time.monotonic()
        waiter.join(timeout=20)
        assert got and got[0] - killed < 5.0  # waiters poll every 0.1 s; slack for a loaded machine
        journal.append(RUN, [Tick(at=1.0)], operator="bo@host-b")
        assert journal.verify(RUN)[0]


def test_readonly_and_unknown_runs_get_no_lease(run: Backend) -> None:
    with run.open(readonly=True) as watcher:
        with pytest.raises(JournalError, match="read-only"):
            watcher.acquire_lease(RUN, "ana")


# -- losing the lease ---------------------------------------------------------------


def test_sqlite_lease_file_holds_the_holder_and_goes_on_release(tmp_path: Path) -> None:
    backend = Backend("sqlite", str(tmp_path / "journal.db"))
    make_run(backend)
    path = lock_file_for(Path(backend.spec), RUN)
    assert path.name == "journal.db.run-1.lock"
    assert lock_file_for(Path("j.db"), "a/b c").name.startswith("j.db.a_b_c-")
    with backend.open() as journal:
        lease = journal.acquire_lease(RUN, "ana@laptop pid 7")
        assert path.read_text() == "ana@laptop pid 7\n"
        lease.release()
        assert not path.exists()
        lease = journal.acquire_lease(RUN, "ana@laptop pid 7")
        journal.append(RUN, [Tick(at=0.0)])
        path.unlink()  # someone removed it: a second driver could now lock a new file
        with pytest.raises(LeaseLost, match="removed or replaced"):
            lease.check()
        with pytest.raises(LeaseLost):
            journal.append(RUN, [Tick(at=1.0)])
        assert journal.last_seq(RUN) == 1
        lease.release()
        journal.append(RUN, [Tick(at=1.0)])  # released, not lost: the journal is usable again


def test_pg_lease_lost_with_its_connection_is_detected_and_fences_appends(pg_url: str) -> None:
    import psycopg

    backend = Backend("postgres", pg_url)
    make_run(backend)
    with backend.open() as driver, backend.open() as other:
        lease = driver.acquire_lease(RUN, "ana@laptop pid 7")
        driver.append(RUN, [Tick(at=0.0)])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            row = admin.execute("SELECT backend_pid FROM leases WHERE run_id = %s", (RUN,)).fetchone()
            assert row is not None
            (pid,) = row
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(LeaseLost, match="lost the lease"):
            lease.check()
        with pytest.raises(LeaseLost, match="nothing was written"):
            driver.append(RUN, [Tick(at=1.0)])
        taken = other.acquire_lease(RUN, "bo@desk pid 8")  # the lock went with the session
        other.append(RUN, [Tick(at=1.0)])
        assert [r.seq for r in other.records(RUN)] == [1, 2]
        assert other.verify(RUN)[0]
        taken.release()


def test_pg_stale_holder_row_is_never_reported(pg_url: str, processes: Callable) -> None:
    backend = Backend("postgres", pg_url)
    make_run(backend)
    holder = start_holder(processes, backend, "ana@host-a")
    holder.kill()
    holder.wait()
    assert backend.scalar("SELECT holder FROM leases") == f"ana@host-a pid {holder.pid}"  # left behind
    with backend.open() as journal, backend.open() as third:
        lease = journal.acquire_lease(RUN, "bo@host-b pid 9", wait=True, timeout=10)
        with pytest.raises(LeaseHeld) as refused:
            third.acquire_lease(RUN, "cy@host-c")
        assert refused.value.holder == "bo@host-b pid 9"
        lease.release()
    assert backend.scalar("SELECT count(*) FROM leases") == 0


# -- stress: never two drivers issuing commands at once ------------------------------------

DRIVER = """
    import os, sys, time
    from adapters.journals import open_journal
    from core.events import Tick
    spec, run_id, name, out, batches, mode = sys.argv[1:7]
    journal = open_journal(spec)
    lease = None
    if mode == "lease":
        lease = journal.acquire_lease(run_id, f"{name} pid {os.getpid()}", wait=True)
    with open(out, "a", buffering=1) as log:
        for batch in range(int(batches)):
            if lease is not None:
                lease.check()
            log.write(f"start {time.monotonic_ns()}\\n")
            if lease is not None:
                journal.append(run_id, [Tick(at=float(batch))], operator=name)
            time.sleep(0.01)  # issuing commands
            log.write(f"end {time.monotonic_ns()}\\n")
    if lease is not None:
        lease.release()
    journal.close()
"""

Interval = tuple[int, int, str]


def intervals(logs: dict[str, Path], killed_at: dict[str, int]) -> list[Interval]:
    """Every driver's issuing intervals; one cut short by SIGKILL ends at the kill."""
    out: list[Interval] = []
    for name, path in logs.items():
        start: int | None = None
        for line in path.read_text().splitlines() if path.exists() else []:
            word, stamp = line.split()
            if word == "start":
                start = int(stamp)
            else:
                assert start is not None
                out.append((start, int(stamp), name))
                start = None
        if start is not None:
            out.append((start, killed_at[name], name))
    return sorted(out)


def overlaps(found: list[Interval]) -> list[tuple[Interval, Interval]]:
    return [(a, b) for a, b in zip(found, found[1:]) if b[0] < a[1]]


def current_holder(backend: Backend) -> str | None:
    with backend.open() as journal:
        try:
            journal.acquire_lease(RUN, "probe").release()
        except LeaseHeld as held:
            return held.holder.split(" pid ")[0]
    return None


@pytest.mark.parametrize("seed", [7])
def test_no_two_drivers_ever_issue_commands_at_once(
    run: Backend, tmp_path: Path, processes: Callable, seed: int
) -> None:
    rng = random.Random(seed)
    drivers, batches = 4, 20
    logs = {f"d{i}": tmp_path / f"d{i}.log" for i in range(drivers)}
    procs = {
        name: processes(DRIVER, run.spec, RUN, name, str(log), str(batches), "lease")
        for name, log in logs.items()
    }
    killed_at: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while len(killed_at) < 2 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.02, 0.1))
        name = current_holder(run)
        if name is None or name in killed_at or not logs[name].exists():
            continue
        procs[name].send_signal(signal.SIGKILL)
        procs[name].wait()
        killed_at[name] = time.monotonic_ns()
    assert len(killed_at) == 2, "never caught a holder to kill"
    for name, proc in procs.items():
        assert proc.wait(timeout=60) == (-signal.SIGKILL if name in killed_at else 0)

    found = intervals(logs, killed_at)
    assert overlaps(found) == []
    for name, when in killed_at.items():
        after = [who for start, _, who in found if start > when]
        assert after and after[0] != name  # someone else took over after the kill
    survivors = [n for n in logs if n not in killed_at]
    with run.open(readonly=True) as journal:
        records = list(journal.records(RUN))
        assert journal.verify(RUN)[0]
    by_driver = {n: sum(1 for r in records if r.operator == n) for n in logs}
    assert all(by_driver[n] == batches for n in survivors)
    assert all(by_driver[n] <= batches for n in killed_at)
    turns = [who for who, _ in itertools.groupby(r.operator for r in records)]
    assert len(turns) == len(set(turns))  # each driver's records are one block: one driver at a time


def test_the_overlap_check_catches_drivers_without_a_lease(
    run: Backend, tmp_path: Path, processes: Callable
) -> None:
    logs = {f"d{i}": tmp_path / f"d{i}.log" for i in range(3)}
    procs = [processes(DRIVER, run.spec, RUN, n, str(log), "40", "none") for n, log in logs.items()]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert overlaps(intervals(logs, {}))


def test_interval_bookkeeping() -> None:
    assert overlaps([(0, 5, "a"), (5, 9, "b"), (9, 10, "a")]) == []
    assert overlaps([(0, 5, "a"), (4, 9, "b")]) == [((0, 5, "a"), (4, 9, "b"))]


def test_holder_of_a_killed_stress_driver_is_the_pid_it_wrote(run: Backend, processes: Callable) -> None:
    holder = start_holder(processes, run, "d9")
    assert current_holder(run) == "d9"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 5
    while current_holder(run) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert current_holder(run) is None
