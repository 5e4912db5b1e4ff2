"""What a person reads from the command line: the same words and times everywhere, services in
rollout order, plain one-liners for errors that are not about a file, and tables that stay
aligned whatever a plan names its services (issue 16, points 6 and 7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.cells import cell_len, set_cell_size

from core import format_duration, format_moment
from tui.cells import NAME_CELLS, fit
from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
REGRESSION = REPO / "examples" / "recsys-regression.yaml"


def test_times_keep_their_seconds_after_an_hour() -> None:
    assert format_duration(2 * 3600 + 6 * 60 + 10) == "2h06m10s"
    assert format_duration(3600) == "1h00m00s"
    assert format_duration(330) == "5m30s"
    assert format_moment(7570) == "T+ 2h06m10s"
    assert format_moment(300, width=6) == "T+  5m00s" and format_moment(1530, width=6) == "T+ 25m30s"


def test_human_output_says_rolled_back_and_json_keeps_the_phase_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.db"
    assert main(["run", str(REGRESSION), "--headless", "--journal", str(journal)]) == 1
    run = capsys.readouterr().out
    assert main(["log", "--journal", str(journal)]) == 0
    log = capsys.readouterr().out
    for text in (run, log):
        assert "rolled back" in text and "rolling back" in text
        assert not re.search(r"rolled_back|rolling_back|awaiting_approval", text)
    assert main(["runs", "--journal", str(journal)]) == 0
    assert " rolled back " in capsys.readouterr().out
    assert main(["log", "--journal", str(journal), "--json"]) == 0
    assert '"phase":"rolled_back"' in capsys.readouterr().out  # the contract stays


def test_the_exit_summary_lists_services_in_rollout_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(REGRESSION), "--headless", "--journal", str(tmp_path / "j.db")]) == 1
    out = capsys.readouterr().out.splitlines()
    end = next(i for i, line in enumerate(out) if line.startswith("rollout rolled back"))
    rows = [line.split() for line in out[end + 1:end + 5]]
    assert [row[0] for row in rows] == ["features", "embedder", "ranker", "api"]  # not alphabetical
    assert rows[1][1:] == ["rolled", "back", "0%"] and rows[0][1:] == ["promoted", "100%"]


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_errors_that_are_not_about_a_file_are_plain_one_liners(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.db"
    assert main(["resume", "--headless", "--journal", str(journal)]) == 2
    assert _err_lines(capsys) == [f"interlock: {journal}: no journal here; start a rollout with `interlock run`"]
    assert main(["run", str(EXAMPLE), "--headless", "--journal", str(journal)]) == 0
    capsys.readouterr()
    cases = {
        ("resume", "--headless"): f"interlock: no unfinished rollout in {journal}",
        ("log", "--run", "nope"): f"interlock: no run nope in {journal}",
        ("events", "--run", "nope"): f"interlock: no run nope in {journal}",
        ("watch", "--headless", "--run", "nope"): f"interlock: no run nope in {journal}",
        ("run", str(EXAMPLE), "--json"): "interlock: --json needs --headless",
        ("audit", "verify", "--anchor", "12:ab"): "interlock: --anchor is not SEQ:HASH as `interlock runs` prints a head",
    }
    for argv, line in cases.items():
        assert main([*argv, "--journal", str(journal)]) == 2, argv
        assert _err_lines(capsys) == [line], argv
    for argv in (["log"], ["runs"], ["events"], ["watch", "--headless"]):
        assert main([*argv, "--journal", str(tmp_path / "missing.db")]) == 2
        assert _err_lines(capsys) == [f"interlock: {tmp_path / 'missing.db'}: no journal here"], argv


def _wide_plan(tmp_path: Path) -> tuple[Path, list[str]]:
    names = ["s" * 300, "ranker-🚀", "推荐排序服务", "api"]
    lines = ["rollout: wide", "services:"]
    previous = None
    for name in names:
        lines.append(f"  {name}:")
        if previous is not None:
            lines.append(f"    depends_on: [{previous}]")
        lines += ['    from: {version: "1.0"}', '    to: {version: "2.0"}']
        previous = name
    plan = tmp_path / "wide.yaml"
    plan.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return plan, names


def _column(line: str, text: str) -> int:
    """The cell at which `text` starts in `line`."""
    return cell_len(line[:line.index(text)])


def test_long_and_wide_names_keep_tables_aligned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, names = _wide_plan(tmp_path)
    assert main(["plan", str(plan)]) == 0
    out = capsys.readouterr().out.splitlines()
    waves = [line for line in out if "1.0 -> 2.0" in line]
    assert len(waves) == 4
    assert {_column(line, "1.0 -> 2.0") for line in waves} == {5 + NAME_CELLS + 2}
    assert all(cell_len(line) < 80 for line in waves)  # a 300-character name does not pad every row
    assert any("s" * (NAME_CELLS - 1) + "…" in line for line in waves)
    radius = out[out.index(next(line for line in out if line.startswith("blast radius"))) + 1:]
    assert len(radius) == 4
    for line in radius:  # the column after the names starts at the same cell on every row
        prefix = set_cell_size(line, 2 + NAME_CELLS + 2)
        assert line.startswith(prefix) and prefix.endswith("  ") and line[len(prefix)] in "n123", line

    assert main(["run", str(plan), "--headless", "--journal", str(tmp_path / "j.db")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith("100%")]
    assert len(rows) == 4 and {_column(row, "promoted") for row in rows} == {2 + NAME_CELLS + 2}


def test_fit_pads_and_cuts_by_cells() -> None:
    for text in ("ab", "推荐排序服务推荐排序服务", "🚀rocket", "x" * 300):
        assert cell_len(fit(text, 10)) == 10
    assert fit("x" * 300, 10) == "x" * 9 + "…"
    assert fit("推荐排序服务推荐排序服务", 10).endswith("…")


def test_a_version_yaml_reads_as_a_number_is_refused_with_its_quoted_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "numbers.yaml"
    plan.write_text(
        "rollout: numbers\n"
        "services:\n"
        "  a:\n"
        '    from: {version: "9.9"}\n'
        "    to: {version: 9.10}\n"
        "  b:\n"
        "    from:\n"
        "      version: 3\n"
        '    to: {version: "4"}\n'
    )
    assert main(["validate", str(plan)]) == 2
    assert _err_lines(capsys) == [
        f'{plan}:5:19: services.a.to.version: YAML reads 9.10 as the number 9.1; quote the version: "9.10"',
        f'{plan}:8:16: services.b.from.version: YAML reads 3 as a number; quote the version: "3"',
    ]
    assert main(["run", str(plan), "--headless", "--journal", str(tmp_path / "j.db")]) == 2
    assert not (tmp_path / "j.db").exists()  # nothing half-applied
    plan.write_text(plan.read_text().replace("9.10", '"9.10"').replace("version: 3", 'version: "3"'))
    assert main(["validate", str(plan)]) == 0


def test_a_moving_service_whose_to_is_its_from_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "same.yaml"
    plan.write_text(
        "rollout: same\n"
        "services:\n"
        '  a: {from: {version: "1.0"}, to: {version: "1.1"}}\n'
        '  b: {from: {version: "2.0"}, to: {version: "2.0"}, depends_on: [a]}\n'
        '  c: {from: {version: "2.0"}, depends_on: [a]}\n'  # static: no `to`, fine
    )
    assert main(["validate", str(plan)]) == 2
    assert _err_lines(capsys) == [
        f"{plan}:4:45: services.b.to.version: '2.0' is also its 'from' version: a service that moves needs a "
        "new version (or no `to`, to keep b as static context)",
    ]
