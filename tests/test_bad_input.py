"""Issue 18, point 6: every break an adversarial run found, as input to the real CLI entry.

Each case must end with exit 2 and one line on stderr (`FILE:LINE:COL: path: what` for a
file, `interlock: ...` otherwise), never a traceback, and without unbounded work: the
command is called in-process, so an exception escaping `main` fails the test outright.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.inputs import MAX_INPUT_BYTES
from tui.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
DRILL = REPO / "examples" / "drills" / "ranker-error-burst.yaml"


def _one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("speed", ["0", "-5", "nan", "inf", "1e9"])
def test_a_speed_that_no_clock_can_run_at_is_refused(
    speed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.db"
    line = _one_line(capsys, ["run", str(EXAMPLE), "--headless", "--speed", speed, "--journal", str(journal)])
    assert line.startswith("interlock: --speed: the speed must be a number above 0")
    assert not journal.exists()  # refused before anything was created


@pytest.mark.parametrize("seed", [str(2**64), str(2**63), "-1"])
def test_a_seed_a_journal_cannot_store_is_refused(
    seed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "j.db"
    line = _one_line(capsys, ["run", str(EXAMPLE), "--headless", "--seed", seed, "--journal", str(journal)])
    assert line.startswith("interlock: --seed: the seed must be a whole number from 0 to")
    assert not journal.exists()


def test_the_largest_seed_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXAMPLE), "--headless", "--seed", str(2**63 - 1), "--journal", str(tmp_path / "j.db")]) == 0


def test_yaml_nested_500_deep_is_one_located_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "deep.yaml"
    plan.write_text("rollout: x\nservices: " + "[" * 500 + "]" * 500 + "\n")
    line = _one_line(capsys, ["validate", str(plan)])
    assert line == f"{plan}:2:74: <root>: nested more than 64 levels deep; a plan needs a handful"


def test_aliases_nesting_without_nesting_the_text_are_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "alias.yaml"
    lines = ["rollout: x", "services: {}", "x-0: &a0 [1]"]
    lines += [f"x-{i}: &a{i} [*a{i - 1}]" for i in range(1, 800)]
    plan.write_text("\n".join(lines) + "\n")
    assert main(["validate", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "nested more than 64 levels deep through aliases" in err and "Traceback" not in err


def test_reading_a_special_file_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line(capsys, ["validate", "/dev/zero"])
    assert line == f"/dev/zero:1:1: <root>: cannot read the plan: it is larger than {MAX_INPUT_BYTES // 2**20} MiB"


def test_a_file_that_is_not_utf8_is_located_at_its_first_bad_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "latin1.yaml"
    plan.write_bytes(b"rollout: x\nservices:\n  caf\xe9: {}\n")
    line = _one_line(capsys, ["validate", str(plan)])
    assert line == f"{plan}:3:6: <root>: cannot read the plan: it is not UTF-8 text"


def test_a_nul_byte_in_a_drills_plan_path_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text('drill: x\nplan: "rec\\0sys.yaml"\n')
    line = _one_line(capsys, ["drill", str(drill)])
    assert line == f"{drill}:2:7: plan: cannot read the plan {tmp_path}/rec\\x00sys.yaml: the path contains a NUL byte"


def test_a_nul_byte_in_a_command_line_path_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line(capsys, ["validate", "plan\x00.yaml"])
    assert line == "plan\\x00.yaml:1:1: <root>: cannot read the plan: the path contains a NUL byte"


@pytest.mark.parametrize("written", ["18446744073709551616", "18446744073709551616s", "31d", ".inf", "9" * 401])
def test_a_duration_longer_than_30_days_is_refused(
    written: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "long.yaml"
    plan.write_text(EXAMPLE.read_text().replace("bake: 5m ", f"bake: {written} "))
    line = _one_line(capsys, ["validate", str(plan)])
    assert line.startswith(f"{plan}:15:9: defaults.bake: ") and line.endswith("a duration may last at most 30 days")


def test_a_drill_fault_lasts_at_most_six_hours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(
        f"drill: long-outage\nplan: {EXAMPLE}\nfaults:\n"
        "  - at: {time: 10m}\n    inject: {kind: flag_service_outage}\n    duration: 100h\n"
    )
    line = _one_line(capsys, ["drill", str(drill), "--journal", str(tmp_path / "d.db")])
    assert line == f"{drill}:6:15: faults[0].duration: a fault lasts at most 6h in a drill"
    assert not (tmp_path / "d.db").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("speed", ".inf", "speed: Input should be a finite number"),
        ("seed", str(2**64), "seed: Input should be less than or equal to 9223372036854775807"),
        ("adapter_timeout", "1h", "adapter_timeout: Input should be less than or equal to 60"),
    ],
)
def test_a_drills_numbers_are_bounded(
    field: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(f"drill: x\nplan: {EXAMPLE}\n{field}: {value}\n")
    assert main(["drill", str(drill), "--journal", str(tmp_path / "d.db")]) == 2
    err = capsys.readouterr().err
    assert f"{drill}:3:" in err and "Traceback" not in err
    assert err.splitlines()[0].split(": ", 1)[1].startswith(message.split(":")[0])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe[]", "m.json:1:1: <root>: cannot read the measurements: it is not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "m.json:1:33: <root>: nested more than 32 levels deep"),
        (b'[{"at": ' + b"9" * 401 + b', "value": 1}]', "m.json:1:3: [0].at: expected a time in seconds"),
    ],
)
def test_analyze_refuses_what_it_cannot_read_in_one_line(
    content: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.json").write_bytes(content)
    assert _one_line(capsys, ["analyze", str(EXAMPLE), "errors", "m.json"]) == expected


def test_analyze_locates_items_late_in_a_long_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The line index that replaced a count from the start of the text per item (quadratic
    on 40,000 measurements) still gives the right line for the last item."""
    items = [{"value": 0.001}] * 39_999 + [{"value": "high"}]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(items, indent=1))
    line = _one_line(capsys, ["analyze", str(EXAMPLE), "errors", str(path)])
    assert line == f"{path}:120000:3: [39999].value: expected a number, NaN or null, got \"high\""


@pytest.mark.parametrize("digits", [401, 5000])
def test_analyze_reads_a_huge_integer_as_an_infinite_value(
    digits: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read digit by digit it raised OverflowError (401 digits) or hit Python's 4,300-digit
    limit; as a float it is +inf, which a threshold gate judges like Prometheus's "+Inf"."""
    path = tmp_path / "m.json"
    path.write_bytes(b'[{"value": ' + b"9" * digits + b"}]")
    assert main(["analyze", str(EXAMPLE), "errors", str(path)]) == 0
    assert "value inf" in capsys.readouterr().out
