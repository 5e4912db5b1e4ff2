"""The later subcommands as scripts use them: analyze, drill, audit verify, watch --headless."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
REGRESSION = REPO / "examples" / "recsys-regression.yaml"


def test_analyze_says_when_the_gate_would_have_fired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "m.json"
    data.write_text(json.dumps([{"value": 0.001}, {"value": 0.02}, {"error": "timeout"}, {"value": 0.03}]))
    assert main(["analyze", str(EXAMPLE), "errors", str(data), "--json"]) == 1  # it fails: exit 1
    out = json.loads(capsys.readouterr().out)
    assert out["phase"] == "failed" and out["decided_at"] == 3  # failure_limit 1: the second failure
    assert [m["phase"] for m in out["measurements"]] == ["running", "running", "running", "failed"]


def test_analyze_exits_0_when_the_gate_does_not_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "m.json"
    data.write_text(json.dumps([{"value": 0.001}, {"value": 0.002}]))
    assert main(["analyze", str(EXAMPLE), "errors", str(data)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("gate ")


def test_analyze_bad_input_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "m.json"
    data.write_text('[{"value": 0.1}, {"valeu": 2}]')
    assert main(["analyze", str(EXAMPLE), "errors", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}:1:" in err and "[1]" in err and "Traceback" not in err
    assert main(["analyze", str(EXAMPLE), "nope", str(data)]) == 2
    assert "no gate 'nope'" in capsys.readouterr().err


def test_drill_from_the_command_line_writes_json_markdown_and_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = REPO / "examples" / "drills" / "ranker-error-burst.yaml"
    report, junit = tmp_path / "d.md", tmp_path / "d.xml"
    args = ["drill", str(drill), "--json", "--report", str(report), "--junit", str(junit),
            "--journal", str(tmp_path / "drills.db")]
    assert main(args) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["drill"] == "ranker-error-burst" and card["passed"] is True
    assert card["rolled_back"] == ["embedder", "ranker"] and card["untouched"] == ["features"]
    assert "ranker-error-burst" in report.read_text()
    assert "<testcase" in junit.read_text()


def test_audit_verify_passes_untouched_and_names_a_changed_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.db"
    main(["run", str(REGRESSION), "--headless", "--json", "--journal", str(journal)])
    capsys.readouterr()
    assert main(["audit", "verify", "--journal", str(journal)]) == 0
    capsys.readouterr()
    db = sqlite3.connect(journal)
    db.execute(
        "UPDATE records SET body = replace(body, ?, ?) "
        "WHERE seq = (SELECT min(seq) FROM records WHERE kind = 'measured')",
        ('"service":"', '"service":"x'),
    )
    db.commit()
    db.close()
    assert main(["audit", "verify", "--journal", str(journal)]) == 1
    assert "first bad record" in capsys.readouterr().out


def test_watch_headless_follows_another_process_to_the_end(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    env = {"PYTHONPATH": str(REPO)}
    import os

    env = {**os.environ, **env}
    driver = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "run", str(REGRESSION), "--headless", "--speed", "600",
         "--journal", str(journal)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):
            if journal.exists():
                break
            import time

            time.sleep(0.05)
        watcher = subprocess.run(
            [sys.executable, "-m", "tui.cli.main", "watch", "--headless", "--json", "--journal", str(journal)],
            env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        driver.wait(timeout=120)
    assert watcher.returncode == 1, watcher.stderr
    lines = [json.loads(line) for line in watcher.stdout.splitlines()]
    assert lines[0]["kind"] == "rollout_started"
    assert lines[-1]["summary"]["phase"] == "rolled_back"
