"""The README's exit-code table against what the commands really return.

Each scenario runs a command through the CLI entry and checks that the code it returned
is the one expected *and* listed in the README's row for that command; every command the
parser knows has a row. The fuzz suite (tests/test_fuzz.py) checks every exit it sees
against the same rows.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sqlite3
from pathlib import Path

import pytest

from tests.fuzzing import documented_exits
from tui.cli.main import _parser, main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "recsys.yaml"
REGRESSION = REPO / "examples" / "recsys-regression.yaml"
DRILL = REPO / "examples" / "drills" / "ranker-error-burst.yaml"


def _commands() -> set[str]:
    """Every command and sub-command the parser accepts, as the README names them."""
    names: set[str] = set()
    for action in _parser()._subparsers._group_actions:  # type: ignore[union-attr]
        assert isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items():
            nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            names.update(f"{name} {verb}" for a in nested for verb in a.choices) if nested else names.add(name)
    return names


def test_every_command_has_a_row() -> None:
    assert _commands() == set(documented_exits())


def _code(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


def _approval_plan(tmp_path: Path) -> Path:
    plan = tmp_path / "approve.yaml"
    plan.write_text(EXAMPLE.read_text().replace("approval: none ", "approval: each_stage "))
    return plan


def _measurements(tmp_path: Path, name: str, error_rate: float) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps([{"value": error_rate}] * 5))
    return path


def _tamper(journal: Path) -> None:
    db = sqlite3.connect(journal)
    changed = db.execute("UPDATE records SET body = replace(body, 'features', 'featurez') WHERE seq = 2").rowcount
    assert changed == 1
    db.commit()
    db.close()


SCENARIOS = {
    "validate ok": (["validate", "{example}"], 0),
    "validate bad": (["validate", "{tmp}/missing.yaml"], 2),
    "plan ok": (["plan", "{example}", "--json"], 0),
    "analyze bad": (["analyze", "{example}", "nope", "{tmp}/m.json"], 2),
    "analyze passes": (["analyze", "{example}", "errors", "{calm}"], 0),
    "analyze fails": (["analyze", "{example}", "errors", "{burst}"], 1),
    "run completes": (["run", "{example}", "--headless", "--journal", "{tmp}/a.db"], 0),
    "run rolls back": (["run", "{regression}", "--headless", "--journal", "{tmp}/b.db"], 1),
    "run bad speed": (["run", "{example}", "--headless", "--speed", "nan", "--journal", "{tmp}/c.db"], 2),
    "run waits for approval": (["run", "{approve}", "--headless", "--journal", "{tmp}/w.db"], 3),
    "resume waits again": (["resume", "--headless", "--journal", "{tmp}/w.db"], 3),
    "pause with no live driver": (["pause", "--journal", "{tmp}/w.db"], 4),
    "approve no such service": (["approve", "nosuch", "--journal", "{tmp}/w.db"], 2),
    "promote without a reason": (["promote", "features", "--journal", "{tmp}/w.db"], 2),
    "resume nothing": (["resume", "--headless", "--journal", "{tmp}/a.db"], 2),
    "log ok": (["log", "--journal", "{tmp}/a.db"], 0),
    "log no journal": (["log", "--journal", "{tmp}/none.db"], 2),
    "runs ok": (["runs", "--journal", "{tmp}/a.db"], 0),
    "events ok": (["events", "--json", "--journal", "{tmp}/a.db"], 0),
    "events follow rolled back": (["events", "--follow", "--journal", "{tmp}/b.db"], 1),
    "events no run": (["events", "--run", "nope", "--journal", "{tmp}/a.db"], 2),
    "status completed": (["status", "--journal", "{tmp}/a.db"], 0),
    "status rolled back": (["status", "--journal", "{tmp}/b.db"], 1),
    "status still going": (["status", "--timeout", "0.2s", "--journal", "{tmp}/w.db"], 3),
    "status no run": (["status", "--run", "nope", "--journal", "{tmp}/a.db"], 2),
    "report ok": (["report", "--md", "{tmp}/r.md", "--journal", "{tmp}/b.db"], 0),
    "report unwritable": (["report", "--html", "{tmp}/no/dir/r.html", "--journal", "{tmp}/b.db"], 6),
    "audit intact": (["audit", "verify", "--journal", "{tmp}/a.db"], 0),
    "backup ok": (["journal", "backup", "{tmp}/copy.db", "--journal", "{tmp}/a.db"], 0),
    "backup exists": (["journal", "backup", "{tmp}/copy.db", "--journal", "{tmp}/a.db"], 2),
    "audit tampered": (["audit", "verify", "--journal", "{tmp}/t.db"], 1),
    "resume tampered": (["resume", "--headless", "--journal", "{tmp}/t.db"], 5),
    "drill passes": (["drill", "{drill}", "--journal", "{tmp}/d.db"], 0),
    "drill report unwritable": (["drill", "{drill}", "--journal", "{tmp}/d.db", "--report", "{tmp}/no/dir/r.md"], 6),
}


def test_commands_return_the_codes_their_rows_list(tmp_path: Path) -> None:
    """In order: later scenarios use the journals earlier ones wrote."""
    table = documented_exits()
    values = {"example": EXAMPLE, "regression": REGRESSION, "drill": DRILL, "tmp": tmp_path,
              "approve": _approval_plan(tmp_path), "calm": _measurements(tmp_path, "calm", 0.001),
              "burst": _measurements(tmp_path, "burst", 0.2)}
    for name, (argv, expected) in SCENARIOS.items():
        if name == "audit tampered":
            (tmp_path / "t.db").write_bytes((tmp_path / "copy.db").read_bytes())  # a consistent copy
            _tamper(tmp_path / "t.db")
        args = [a.format(**values) for a in argv]
        code = _code(args)
        command = " ".join(args[:2]) if args[0] in ("audit", "journal") else args[0]
        assert code == expected, name
        assert code in table[command], (name, command, code)


@pytest.mark.parametrize("command", ["stack exec"])
def test_stack_exec_without_a_command_is_bad_input(command: str, tmp_path: Path) -> None:
    code = _code(["stack", "exec", "--dir", str(tmp_path)])
    assert code in documented_exits()[command]
