"""A drill's scorecard as text: a terminal table, JSON, Markdown and JUnit XML.

Shared by the headless `interlock drill` (`tui.cli.drill_cmd`) and the console's drill mode
(`tui.console.drill_console`), so both print the same table.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from core import Scorecard, format_duration, format_moment
from tui.printer import words


def scorecard_json(card: Scorecard) -> str:
    return json.dumps(card.to_json(), indent=2, ensure_ascii=False)


def _time(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(seconds)


def _at(seconds: float | None) -> str:
    return "—" if seconds is None else format_moment(seconds)


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def summary_rows(card: Scorecard) -> list[tuple[str, str]]:
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
        ("final phase", words(card.final)),
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
    width = max(len(k) for k, _ in summary_rows(card))
    lines += [f"  {k:<{width}}  {v}" for k, v in summary_rows(card)]
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
    out += [f"| {k} | {_cell(v)} |" for k, v in summary_rows(card)]
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
    out.text = "\n".join(f"{k}: {v}" for k, v in summary_rows(card))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
