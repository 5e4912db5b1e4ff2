"""`interlock status` for scripts, as `kubectl argo rollouts status`: exit 0 completed, 1 rolled
back or aborted, 3 still going (at once, or at `--timeout`); `--watch` prints each change
until the end (issue 16, point 5)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
REGRESSION = REPO / "examples" / "recsys-regression.yaml"


def test_status_exits_with_where_the_run_stands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done, back, waiting = tmp_path / "done.db", tmp_path / "back.db", tmp_path / "wait.db"
    approve = tmp_path / "approve.yaml"
    approve.write_text(EXAMPLE.read_text().replace("approval: none ", "approval: each_stage "))
    assert main(["run", str(EXAMPLE), "--headless", "--journal", str(done)]) == 0
    assert main(["run", str(REGRESSION), "--headless", "--journal", str(back)]) == 1
    assert main(["run", str(approve), "--headless", "--journal", str(waiting)]) == 3
    capsys.readouterr()

    assert main(["status", "--journal", str(done)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("run recsys-embeddings-v3-") and out[0].endswith("rollout recsys-embeddings-v3")
    assert out[1].endswith("completed · features promoted 100% · embedder promoted 100% · ranker promoted 100% "
                           "· api promoted 100%")
    assert main(["status", "--journal", str(back)]) == 1
    line = capsys.readouterr().out.splitlines()[1]
    assert "rolled back · features promoted 100% · embedder rolled back 0%" in line
    assert "(gate errors on ranker failed" in line

    assert main(["status", "--journal", str(waiting)]) == 3  # at once: still going
    assert "awaiting approval" in capsys.readouterr().out
    began = time.monotonic()
    assert main(["status", "--journal", str(waiting), "--timeout", "1s"]) == 3
    assert 1.0 <= time.monotonic() - began < 10
    captured = capsys.readouterr()
    assert captured.err.startswith("interlock: run recsys-embeddings-v3-") and "still going after 1s" in captured.err
    assert main(["status", "--journal", str(done), "--watch", "--timeout", "30s"]) == 0  # ended: at once


def test_status_refuses_bad_input_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--journal", str(tmp_path / "none.db")]) == 2
    assert capsys.readouterr().err == f"interlock: {tmp_path / 'none.db'}: no journal here\n"
    journal = tmp_path / "j.db"
    assert main(["run", str(EXAMPLE), "--headless", "--journal", str(journal)]) == 0
    capsys.readouterr()
    assert main(["status", "--journal", str(journal), "--timeout", "soon"]) == 2
    assert capsys.readouterr().err.startswith("interlock: --timeout: 'soon' is not a duration")
    assert main(["status", "--journal", str(journal), "--run", "nope"]) == 2
    assert capsys.readouterr().err == f"interlock: no run nope in {journal}\n"


def test_status_watch_follows_a_run_another_process_drives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "live.db"
    driver = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "run", str(REGRESSION), "--headless", "--speed", "200",
         "--journal", str(journal)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 60
        from adapters.journal_codec import JournalError
        from adapters.journals import open_journal

        while time.monotonic() < deadline:  # until the driver has created its run
            try:
                db = open_journal(journal, readonly=True) if journal.exists() else None
            except JournalError:  # the file is there, its tables not yet
                db = None
            if db is not None:
                try:
                    if db.runs():
                        break
                finally:
                    db.close()
            time.sleep(0.05)
        assert main(["status", "--watch", "--timeout", "5m", "--journal", str(journal)]) == 1
    finally:
        driver.wait(timeout=120)
    lines = capsys.readouterr().out.splitlines()[1:]
    assert driver.returncode == 1
    assert len(lines) >= 5 and len(set(lines)) == len(lines)  # a line per change, none twice
    assert "running" in lines[0] or "planned" in lines[0]
    assert any("features baking 1%" in line or "features progressing" in line for line in lines)
    assert lines[-1].split("s  ", 1)[1].startswith("rolled back · features promoted 100%")
    assert all(re.match(r"T\+ +\d\S*  [a-z]", line) for line in lines)
