"""The command line as scripts and CI use it: exit codes, JSON shapes, error lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import DESIGN_PLAN_JSON
from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
REGRESSION = REPO / "examples" / "recsys-regression.yaml"


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "4 moving" in capsys.readouterr().out


def test_bad_plan_gets_one_located_line_per_problem_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text(
        "rollout: x\n"
        "services:\n"
        "  ranker:\n"
        "    from: {version: '1'}\n"
        "    to: {version: '2'}\n"
        "    stagse: [1, 100]\n"
        "  api:\n"
        "    from: {version: '1'}\n"
        "    to: {version: '2'}\n"
        "    bake: 5q\n"
    )
    assert main(["validate", str(plan)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{plan}:6:5: services.ranker.stagse: unknown field 'stagse'; did you mean 'stages'?",
        f"{plan}:10:11: services.api.bake: '5q' is not a duration; use forms like 30s, 5m, 1h or 1h30m",
    ]


def test_missing_file_is_bad_input_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml:1:1:" in err and "Traceback" not in err


def test_cycle_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "cycle.yaml"
    plan.write_text(
        "rollout: c\nservices:\n"
        "  a: {depends_on: [b], from: {version: '1'}, to: {version: '2'}}\n"
        "  b: {depends_on: [a], from: {version: '1'}, to: {version: '2'}}\n"
    )
    assert main(["validate", str(plan)]) == 2
    assert "a -> b -> a" in capsys.readouterr().err


def test_plan_json_is_the_design_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == DESIGN_PLAN_JSON


def _json_run(plan: Path, journal: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["run", str(plan), "--headless", "--json", "--journal", str(journal)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, lines


def test_headless_json_run_completes_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _json_run(EXAMPLE, tmp_path / "j.db", capsys)
    assert code == 0
    assert lines[0]["kind"] == "rollout_started"
    assert all("kind" in line and "at" in line for line in lines[:-1])
    assert lines[-1] == {
        "summary": {
            "phase": "completed",
            "services": {n: {"phase": "promoted", "exposure": 100.0} for n in ("api", "embedder", "features", "ranker")},
        }
    }


def test_regression_rolls_back_along_the_graph_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _json_run(REGRESSION, tmp_path / "j.db", capsys)
    assert code == 1
    summary = lines[-1]["summary"]
    assert summary["phase"] == "rolled_back"
    assert summary["services"]["features"] == {"phase": "promoted", "exposure": 100.0}
    assert summary["services"]["embedder"] == {"phase": "rolled_back", "exposure": 0.0}
    assert summary["services"]["ranker"] == {"phase": "rolled_back", "exposure": 0.0}
    assert summary["services"]["api"] == {"phase": "waiting", "exposure": 0.0}


def test_same_seed_same_output_other_seed_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for i, seed in enumerate(("3", "3", "4")):
        main(["run", str(EXAMPLE), "--headless", "--json", "--seed", seed, "--journal", str(tmp_path / f"{i}.db")])
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_log_replays_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.db"
    _json_run(REGRESSION, journal, capsys)
    assert main(["log", "--journal", str(journal)]) == 0
    out = capsys.readouterr().out
    assert "rollout recsys-embeddings-v3-regression started" in out
    assert "rollout rolled back" in out.splitlines()[-1]
    assert main(["log", "--journal", str(journal), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seq"] for line in lines[:-1]] == list(range(1, len(lines)))
    assert lines[-1]["summary"]["phase"] == "rolled_back"


def test_resume_with_nothing_to_resume_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.db"
    assert main(["resume", "--headless", "--journal", str(journal)]) == 2
    assert "no journal here" in capsys.readouterr().err
    _json_run(EXAMPLE, journal, capsys)
    assert main(["resume", "--headless", "--journal", str(journal)]) == 2
    assert "no unfinished rollout" in capsys.readouterr().err


def test_not_a_journal_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.db"
    journal.write_text("this is not sqlite" * 100)
    assert main(["log", "--journal", str(journal)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(journal) in err
