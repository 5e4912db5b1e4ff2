"""`interlock validate` and `interlock plan` import only what they need: no console, no
journal, no engine (their start-up is most of what a small plan costs), and they parse
and answer exactly as the whole command line does."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "recsys.yaml"
HEAVY = ("textual", "httpx", "adapters", "tui.console", "tui.session", "tui.printer",
         "core.engine", "core.actions", "core.reducer", "core.preflight")


@pytest.mark.parametrize("argv", [
    ["validate", str(EXAMPLE)],
    ["plan", str(EXAMPLE)],
    ["plan", str(EXAMPLE), "--json"],
    ["plan", str(EXAMPLE), "--json", "--compact"],
])
def test_validate_and_plan_import_no_console_journal_or_engine(argv: list[str]) -> None:
    script = (
        "import contextlib, io, json, sys\n"
        "from tui.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({argv!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))\n"
        "print(json.dumps([code, heavy]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == [0, []]


def _answer(run: object, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: object = run(argv)  # type: ignore[operator]
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", [
    ["validate", "--help"], ["plan", "-h"], ["validate"], ["plan"], ["validate", "x.yaml", "--json"],
    ["plan", "x.yaml", "--jsn"], ["plan", "x.yaml", "--compact", "--nope"],
])
def test_the_short_way_in_parses_as_the_whole_command_line(argv: list[str]) -> None:
    """Help, usage errors and unknown options read the same as from `interlock`'s parser."""
    whole = _answer(lambda a: cli._parser().parse_args(a), argv)
    assert whole[0] != 0 or argv[-1] in ("--help", "-h")
    assert _answer(cli.main, argv) == whole


def test_the_short_way_in_gives_the_same_arguments() -> None:
    for argv in (["validate", "p.yaml"], ["plan", "p.yaml", "--json", "--compact"], ["plan", "p.yaml", "--js"]):
        assert cli.plan_cmd.parse(argv) == cli._parser().parse_args(argv)
    assert cli.plan_cmd.parse(["run", "p.yaml"]) is None


@pytest.mark.parametrize("argv", [
    ["run", "--help"], ["demo", "-h"], ["run"], ["run", "x.yaml", "--jsn"], ["run", "x.yaml", "extra"],
    ["demo", "x.yaml"], ["run", "x.yaml", "--seed", "x"], ["run", "x.yaml", "--speed"],
])
def test_runs_short_way_in_parses_as_the_whole_command_line(argv: list[str]) -> None:
    """`run` and `demo` parse without the whole parser; help and errors read the same."""
    whole = _answer(lambda a: cli._parser().parse_args(a), argv)
    assert whole[0] != 0 or argv[-1] in ("--help", "-h")
    assert _answer(cli.main, argv) == whole


def test_runs_short_way_in_gives_the_same_arguments() -> None:
    for argv in (["run", "p.yaml"], ["run", "p.yaml", "--headless", "--js", "--seed", "3", "--journal", "j.db"],
                 ["demo", "--stack", "--speed", "60"], ["run", "p.yaml", "--adopt", "--reason", "why"]):
        assert cli._parse_run(argv) == cli._parser().parse_args(argv)
    assert cli._parse_run(["resume"]) is None
    assert cli._parse_run(["run", "p.yaml", "extra"]) is None
