"""One fold: every reader of a journal folds records through `core.replay`, so none can
drift from what the engine computed (resume, watch, log, the console's backlog, drills)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import Driver, design_plan

from core.replay import fold, folding, steps

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("core", "adapters", "tui")
ALLOWED = {Path("core/replay.py"), Path("core/engine.py"), Path("core/reducer.py")}
"""The fold itself, the engine (which reduces live events as they happen) and `reduce`."""


def test_only_the_fold_and_the_engine_call_reduce() -> None:
    callers = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel in ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", getattr(node.func, "attr", None))
                    if name in ("reduce", "reduce_fully"):
                        callers.append(f"{rel}:{node.lineno}")
    assert callers == []


def test_fold_folding_and_steps_agree_with_the_live_run() -> None:
    d = Driver(design_plan())
    d.start()
    final = d.run()
    assert fold(d.initial, d.events) == final
    after = [state for _, state in folding(d.initial, [type("R", (), {"event": e})() for e in d.events])]
    assert after[-1] == final and len(after) == len(d.events)
    trace = list(steps(d.initial, d.events))
    assert [event for event, _, _ in trace] == d.events
    assert trace[0][1] == d.initial and trace[-1][2] == final
    assert all(trace[i][2] is trace[i + 1][1] for i in range(len(trace) - 1))
