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
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

from adapters.journal_chain import JournalDamaged
from adapters.journal_codec import JournalError, JournalIOError
from core import InputError, Scorecard, format_duration, shown_path
from tui.drills import DrillRunner, prepare_drill

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
            from tui.cli import EXIT_IO

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
    """The console's drill mode, `tui.app.run_drill_console(runner) -> Scorecard`, if built."""
    try:
        from tui.app import run_drill_console
    except ImportError:
        print("the console's drill mode is not available in this build; running headless", file=sys.stderr)
        return None
    return run_drill_console  # type: ignore[no-any-return]


def _bad(lines: list[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_BAD_INPUT


# --- renderings -----------------------------------------------------------------


def scorecard_json(card: Scorecard) -> str:
    return json.dumps(card.to_json(), indent=2, ensure_ascii=False)


def _time(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(seconds)


def _at(seconds: float | None) -> str:
    return "—" if seconds is None else f"T+{format_duration(seconds)}"


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def _summary(card: Scorecard) -> list[tuple[str, str]]:
    rows = [
        ("time to detect", _time(card.detect_s)),
        ("detected by", card.detected_by or "—"),
        ("time to decide", _time(card.decide_s)),
        ("decided by", card.decided_by or "—"),
        ("time to restore", _time(card.restore_s)),
        ("served while bad", "not counted" if card.bad_requests is None else f"{card.bad_requests} requests"),
        ("rolled back", _names(card.rolled_back)),
        ("untouched", _names(card.untouched)),
        ("collateral", _names(card.collateral)),
        ("journal intact", "yes" if card.journal_intact else "NO"),
        ("final phase", card.final),
    ]
    if card.human is not None:
        h = card.human
        rows.append(("operator: pause", _time(h.pause_s)))
        right = "" if h.rollback_right is None else (" (right service)" if h.rollback_right else " (wrong service)")
        rows.append(("operator: rollback", f"{_time(h.rollback_s)} {h.rollback_service or ''}{right}".strip()))
    return rows


def _verdict(passed: bool) -> str:
    return "✓ pass" if passed else "✗ FAIL"


def render_table(card: Scorecard, context: str) -> str:
    """The scorecard for a terminal; `context` says which plan, seed and clock."""
    lines = [f"drill {card.drill}: {'PASSED' if card.passed else 'FAILED'}  ({context})", ""]
    for f in card.faults:
        until = f"cleared {_at(f.cleared_s)}" if f.cleared_s is not None else "until the end"
        fired = f"injected {_at(f.injected_s)}, {until}" if f.injected_s is not None else "never fired"
        lines.append(f"  fault {f.index}  {f.what}  when {f.trigger}: {fired}")
    if card.faults:
        lines.append("")
    width = max(len(k) for k, _ in _summary(card))
    lines += [f"  {k:<{width}}  {v}" for k, v in _summary(card)]
    lines.append("")
    name_width = max(len(e.name) for e in card.expectations)
    lines += [f"  {_verdict(e.passed)}  {e.name:<{name_width}}  {e.detail}" for e in card.expectations]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(card: Scorecard, context: str) -> str:
    out = [f"# Drill `{card.drill}`: {'passed' if card.passed else 'FAILED'}", "", context[:1].upper() + context[1:] + ".", ""]
    if card.faults:
        out += ["## Faults", "", "| # | fault | trigger | injected | cleared |", "|---|---|---|---|---|"]
        out += [
            f"| {f.index} | {_cell(f.what)} | {_cell(f.trigger)} | {_at(f.injected_s)} | "
            f"{_at(f.cleared_s) if f.cleared_s is not None else 'at the end'} |"
            for f in card.faults
        ]
        out.append("")
    out += ["## Scorecard", "", "| measure | value |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in _summary(card)]
    out += ["", "## Expectations", "", "| expectation | result | detail |", "|---|---|---|"]
    out += [
        f"| {e.name} | {'✅ pass' if e.passed else '❌ FAIL'} | {_cell(e.detail)} |" for e in card.expectations
    ]
    return "\n".join(out) + "\n"


def render_junit(card: Scorecard) -> str:
    """One test suite per drill, one test case per expectation (no timestamps)."""
    failures = sum(1 for e in card.expectations if not e.passed)
    counts = {"tests": str(len(card.expectations)), "failures": str(failures), "errors": "0", "skipped": "0"}
    root = ET.Element("testsuites", {"name": "interlock drills", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": f"drill.{card.drill}", **counts})
    for e in card.expectations:
        case = ET.SubElement(suite, "testcase", {"classname": f"drill.{card.drill}", "name": e.name, "time": "0"})
        if not e.passed:
            failure = ET.SubElement(case, "failure", {"type": "expectation", "message": e.detail})
            failure.text = e.detail
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(f"{k}: {v}" for k, v in _summary(card))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
