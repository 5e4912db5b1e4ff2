"""`interlock runs` and `interlock events` on both journal backends: what a team's
other terminals and tools read from a journal a driver writes."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pgtools import Backend

from tui.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recsys.yaml"


def test_runs_lists_every_run_with_its_live_driver(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        assert main(["run", str(EXAMPLE), "--headless", "--journal", backend.spec]) == 0
    capsys.readouterr()
    with backend.open() as journal:
        first, second = (info.run_id for info in journal.runs())
        journal.acquire_lease(second, "carol@box pid 7")
        assert main(["runs", "--journal", backend.spec, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert main(["runs", "--journal", backend.spec]) == 0
        text = capsys.readouterr().out
    assert [row["run"] for row in rows] == [first, second]
    for row in rows:
        assert {"run", "rollout", "phase", "driver", "started", "operator", "head"} <= set(row)
        assert row["rollout"] == "recsys-embeddings-v3" and row["phase"] == "completed"
        assert row["started"] and row["operator"]
    assert rows[0]["driver"] is None and rows[1]["driver"] == "carol@box pid 7"
    assert "driver: carol@box pid 7" in text and "driver: no live driver" in text
    assert main(["runs", "--journal", backend.spec, "--json"]) == 0
    assert [row["driver"] for row in json.loads(capsys.readouterr().out)] == [None, None]  # the lease went


DRIVER = "import sys; from tui.cli.main import main; sys.exit(main(sys.argv[1:]))"


def test_events_follow_a_run_another_process_drives_until_it_ends(
    backend: Backend, processes: Callable[..., subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    driver = processes(DRIVER, "run", str(EXAMPLE), "--headless", "--speed", "1000", "--journal", backend.spec,
                       stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:  # the driver creates the journal and its run
        assert time.monotonic() < deadline and driver.poll() is None
        try:
            with backend.open(readonly=True) as journal:
                if journal.runs():
                    break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.05)
    assert driver.poll() is None  # still driving: events follows it live
    assert main(["events", "--follow", "--json", "--journal", backend.spec]) == 0  # the run completed
    followed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert driver.wait(timeout=30) == 0
    assert main(["events", "--json", "--journal", backend.spec]) == 0
    stored = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["log", "--json", "--journal", backend.spec]) == 0
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert followed == stored == logged[:-1] and "summary" in logged[-1]
    assert [event["seq"] for event in followed] == list(range(1, len(followed) + 1))
    assert followed[0]["kind"] == "rollout_started" and len(followed) > 10
