"""`interlock status --watch` and `interlock report` on both journal backends: a script that
waits on a rollout another process drives (LISTEN/NOTIFY on PostgreSQL, polling on SQLite),
and the review read back from the same journal."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pgtools import Backend

from tui.cli.main import main

REGRESSION = Path(__file__).resolve().parents[2] / "examples" / "recsys-regression.yaml"
DRIVER = "import sys; from tui.cli.main import main; sys.exit(main(sys.argv[1:]))"


def test_status_watches_a_live_run_to_its_end_and_the_report_reads_it_back(
    backend: Backend, processes: Callable[..., subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    driver = processes(DRIVER, "run", str(REGRESSION), "--headless", "--speed", "200", "--journal", backend.spec,
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
    assert main(["status", "--watch", "--timeout", "2m", "--journal", backend.spec]) == 1  # rolled back
    lines = capsys.readouterr().out.splitlines()[1:]
    assert driver.wait(timeout=60) == 1
    assert len(lines) >= 3 and len(set(lines)) == len(lines)
    assert "rolled back · features promoted 100% · embedder rolled back 0%" in lines[-1]

    assert main(["report", "--journal", backend.spec]) == 0
    text = capsys.readouterr().out
    assert "## Decisions" in text and "| interlock | rollout rolling back | gate errors on ranker failed" in text
