"""`interlock drill DRILL`: run a rehearsal and print its scorecard.

A table for people, `--json` for scripts (DESIGN.md's object, extended), and
`--report FILE.md` / `--junit FILE.xml` so a drill can run in CI and show up
next to the test results. Exit 0 when every expectation held, 1 when one did
not, 2 on bad input or a refused target (nothing is created then). Nothing
here prints a wall-clock time, a journal path or a run id into the scorecard,
so the same seed gives the same output byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Callable

from adapters.journal_chain import JournalDamaged
from adapters.journal_codec import JournalError, JournalIOError
from core import InputError, Scorecard, shown_path
from tui.session.drills import DrillRunner, prepare_drill
from tui.scorecard_text import render_junit, render_markdown, render_table, scorecard_json

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
CONSOLE_SPEED = 60.0
"""Simulated seconds per second in the console when `--speed` is not given."""


def drill_main(args: argparse.Namespace) -> int:
    """Run the drill `args.drill` as the command line asked; returns the exit code."""
    console = _console() if getattr(args, "console", False) else None
    try:
        runner = prepare_drill(
            args.drill,
            journal_path=getattr(args, "journal", None),
            live=bool(getattr(args, "live", False)),
            seed=getattr(args, "seed", None),
            interactive=console is not None,
            speed=(getattr(args, "speed", None) or CONSOLE_SPEED) if console is not None else None,
        )
    except InputError as exc:
        return _bad([p.format() for p in exc.problems])
    except JournalError as exc:
        _raise_storage(exc)
        return _bad([str(exc)])
    try:
        card = console(runner) if console is not None else asyncio.run(runner.run())
    except JournalError as exc:
        _raise_storage(exc)
        return _bad([str(exc)])
    finally:
        runner.close()
    context = f"plan {runner.loaded.drill.plan}, seed {card.seed}, {runner.clock_label}"
    if getattr(args, "json", False):
        print(scorecard_json(card))
    else:
        print(render_table(card, context))
    for option, render in (("report", lambda: render_markdown(card, context)), ("junit", lambda: render_junit(card))):
        target = getattr(args, option, None)
        if target is None:
            continue
        try:
            Path(target).write_text(render(), encoding="utf-8")
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            from tui.cli.exits import EXIT_IO

            why = getattr(exc, "strerror", None) or str(exc)
            print(f"interlock: cannot write --{option} {shown_path(target)}: {why}", file=sys.stderr)
            return EXIT_IO
    return EXIT_PASSED if card.passed else EXIT_FAILED


def _raise_storage(exc: JournalError) -> None:
    """A full disk or a damaged journal is not bad input: the command line gives those
    their own exit codes (6, 5)."""
    if isinstance(exc, (JournalIOError, JournalDamaged)):
        raise exc


def _console() -> Callable[[DrillRunner], Scorecard] | None:
    """The console's drill mode, `tui.console.drill_console.run_drill_console(runner) -> Scorecard`, if built."""
    try:
        from tui.console.drill_console import run_drill_console
    except ImportError:
        print("the console's drill mode is not available in this build; running headless", file=sys.stderr)
        return None
    return run_drill_console


def _bad(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_BAD_INPUT


# --- renderings -----------------------------------------------------------------
