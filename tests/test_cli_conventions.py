"""The command line behaves like its peers: `--version`, help for everything, the exit codes
in the top-level help (from the README's table), and a closed pipe that ends a command
quietly, leaving a run resumable."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.helpers import independent_plan
from tui.cli.main import _parser, main
from tui.cli.helptext import exit_codes

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"


def _parsers(parser: argparse.ArgumentParser, name: str = "interlock") -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                out.extend(_parsers(sub, f"{name} {verb}"))
    return out


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    return out.getvalue()


def test_version_prints_the_package_version_and_exits_0() -> None:
    assert _help(["--version"]).strip() == f"interlock {metadata.version('interlock')}"


def test_every_command_and_option_has_help_text() -> None:
    missing = []
    for name, parser in _parsers(_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{name} {action.option_strings or action.dest}")
    assert missing == []


def test_top_level_help_has_a_description_examples_and_the_readmes_exit_codes() -> None:
    text = _help(["--help"])
    flat = " ".join(text.split())
    assert "Roll out dependent ML services" not in flat and "dependency order" in flat
    assert "examples:" in text and "interlock run examples/recsys.yaml --headless" in text
    codes = exit_codes()
    assert sorted(codes) == list(range(9))  # the README's table, read, not a copy
    for code, meaning in codes.items():
        assert f" {code} {meaning}" in flat, code


def test_exit_codes_are_read_from_the_table_given() -> None:
    table = "| code | meaning |\n|---|---|\n| `0` | fine, see [there](#x) |\n| `9` | `odd` |\n\nafter"
    assert exit_codes(table) == {0: "fine, see there", 9: "odd"}


def test_no_help_names_a_file_that_is_not_in_the_repository() -> None:
    for name, parser in _parsers(_parser()):
        text = parser.format_help()
        for file in re.findall(r"[\w./-]+\.(?:md|yaml|json|py|toml)\b", text):
            if "/" in file or file.isupper() or file[:1].isupper():  # a path or DESIGN.md, not FILE.md
                assert (REPO / file).exists() or file.startswith(("FILE", "drill.")), (name, file)


def test_help_does_not_mention_design_md() -> None:
    for name, parser in _parsers(_parser()):
        assert "DESIGN.md" not in parser.format_help(), name


# -- a closed pipe ----------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    """`interlock ARGS` with stdout on a pipe of one page, so a long output blocks early."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli.main", *args], stdout=write, stderr=subprocess.PIPE,
                            cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(write)
    proc.stdout = os.fdopen(read, "rb")
    return proc


def _head(proc: subprocess.Popen[bytes], lines: int) -> tuple[int, str]:
    """Read `lines` lines and close the pipe, as `| head -N` does."""
    assert proc.stdout is not None
    for _ in range(lines):
        assert proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode()


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def test_a_run_whose_reader_leaves_stops_quietly_and_resumes(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    code, err = _head(_cli("run", str(EXAMPLE), "--headless", "--journal", journal, cwd=tmp_path), 2)
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert code == 3  # interrupted: resumable
    assert re.fullmatch(r"interlock: output closed; run \S+ stopped while running; "
                        r"`interlock resume` continues it\n", err)
    assert _run("audit", "verify", "--journal", journal, cwd=tmp_path).returncode == 0
    resumed = _run("resume", "--headless", "--journal", journal, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "rollout completed" in resumed.stdout
    log = _run("log", "--journal", journal, cwd=tmp_path)
    assert log.returncode == 0 and log.stdout.splitlines()[-1].startswith("rollout completed")
    assert "resumed: resumed from the journal" in log.stdout  # one run, stopped then continued


@pytest.mark.parametrize("argv", [["log"], ["log", "--json"], ["watch", "--headless"], ["plan"], ["report"],
                                  ["status"]])
def test_reading_commands_end_quietly_when_the_reader_leaves(argv: list[str], tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    assert _run("run", str(EXAMPLE), "--headless", "--journal", journal, cwd=tmp_path).returncode == 0
    if argv == ["plan"]:
        big = tmp_path / "big.yaml"  # enough services that `plan` writes more than a pipe holds
        big.write_text(json.dumps(independent_plan([f"svc{i:04}" for i in range(400)])))
        args = ["plan", str(big)]
    else:
        args = [*argv, "--journal", journal]
    code, err = _head(_cli(*args, cwd=tmp_path), 1)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert code == 0 and err == ""


# -- an output that cannot be written ----------------------------------------------------


def _to_full_disk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`interlock ARGS > /dev/full`: every write of stdout fails with ENOSPC, as on a full disk."""
    with open("/dev/full", "w") as full:
        return subprocess.run([sys.executable, "-m", "tui.cli.main", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


@pytest.mark.parametrize("argv", [["validate"], ["plan"], ["plan", "--json"]])
def test_an_output_on_a_full_disk_is_one_line_and_exit_6(argv: list[str], tmp_path: Path) -> None:
    done = _to_full_disk(argv[0], str(EXAMPLE), *argv[1:], cwd=tmp_path)
    assert (done.returncode, done.stderr) == (6, "interlock: cannot write: No space left on device\n")


def test_a_run_that_cannot_write_its_output_stops_resumable_and_says_why(tmp_path: Path) -> None:
    journal = str(tmp_path / "j.db")
    done = _to_full_disk("run", str(EXAMPLE), "--headless", "--journal", journal, cwd=tmp_path)
    assert done.returncode == 6
    assert re.fullmatch(r"interlock: cannot write the output \(No space left on device\); run \S+ stopped while "
                        r"running; `interlock resume` continues it\n", done.stderr)
    resumed = _run("resume", "--headless", "--journal", journal, cwd=tmp_path)
    assert resumed.returncode == 0 and "rollout completed" in resumed.stdout, resumed.stderr
