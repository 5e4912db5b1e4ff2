"""`interlock runs` and `interlock events` on both journal backends: what a team's
other terminals and tools read from a journal a driver writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgtools import Backend

from tui.cli import main

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
