"""One driver per target (issue 11, point 3), on SQLite and PostgreSQL: every flag and
route a run moves is leased to it, so a second rollout sharing the journal and one
target is refused naming the run that moves it, and a crash frees the target."""

from __future__ import annotations

import time

import pytest
from pgtools import Backend

from core.ports import LeaseHeld
from core.preflight import Refused
from tui.session.startup import lease_targets

HOLDER = """
    import sys, time
    from adapters.journals import open_journal
    journal = open_journal(sys.argv[1])
    journal.acquire_target_lease("route:embedder", "run r-1, ana@laptop pid 1")
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_target_is_held_by_one_run_at_a_time(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    try:
        lease = first.acquire_target_lease("flag:embedder-v3", "run r-1, ana@laptop pid 1")
        with pytest.raises(LeaseHeld) as held:
            second.acquire_target_lease("flag:embedder-v3", "run r-2, bo@desk pid 2")
        assert held.value.holder == "run r-1, ana@laptop pid 1"
        other = second.acquire_target_lease("flag:ranker-v6", "run r-2, bo@desk pid 2")  # another target is free
        with pytest.raises(Refused) as refused:
            lease_targets(second, ["flag:embedder-v3", "route:api"], "bo@desk pid 2", "r-2")
        assert refused.value.kind == "driver"
        assert refused.value.lines == [
            "interlock: flag embedder-v3 is moved by run r-1, ana@laptop pid 1; two rollouts must not move one "
            "flag or route (wait for that run to end, or take this target out of the plan)"
        ]
        lease_targets(first, ["route:api"], "ana@laptop pid 1", "r-1")  # the refusal let route:api go again
        lease.release()
        lease_targets(second, ["flag:embedder-v3"], "bo@desk pid 2", "r-2")
        other.release()
    finally:
        first.close()
        second.close()


def test_a_crashed_driver_frees_its_targets(backend: Backend, processes) -> None:  # type: ignore[no-untyped-def]
    import signal
    import subprocess

    proc = processes(HOLDER, backend.spec, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    journal = backend.open()
    try:
        with pytest.raises(LeaseHeld, match="run r-1, ana@laptop pid 1"):
            journal.acquire_target_lease("route:embedder", "run r-2, bo")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10  # the server notices the dead session within moments
        while True:
            try:
                journal.acquire_target_lease("route:embedder", "run r-2, bo").release()
                break
            except LeaseHeld:
                assert time.monotonic() < deadline, "the dead driver's target stayed leased"
                time.sleep(0.1)
    finally:
        journal.close()
