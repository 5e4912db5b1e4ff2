"""What `interlock --help` and `--version` say beyond the parser's own lines.

The exit codes are the README's table ("| code | meaning |"), read from the README beside
the package (a checkout or an editable install) or, installed from a wheel, from the
package's metadata (whose description is the README): one home for what each code
means, so the help cannot drift from the documentation.
"""

from __future__ import annotations

import re
import textwrap
from importlib import metadata
from pathlib import Path

DESCRIPTION = (
    "Roll out dependent ML models and services together: in dependency order, stage by stage,\n"
    "each stage judged by its gates against a baseline, rolled back (dependents first) when a\n"
    "gate fails. Every step is journaled, so a stopped rollout resumes where it was."
)

EXAMPLES = """\
examples:
  interlock validate examples/recsys.yaml            check a plan (exit 2 on problems)
  interlock plan examples/recsys.yaml                waves, lockstep groups, blast radius
  interlock demo                                     the console on the bundled example
  interlock run examples/recsys.yaml --headless      no console: one line per event
  interlock resume                                   continue the latest unfinished rollout
  interlock log --json | jq .                        a rollout's history as JSON lines
  interlock status --watch --timeout 1h              follow the latest run to its end (exit 0, 1 or 3)
  interlock report --html review.html                the post-rollout review, charts inline
  interlock drill examples/drills/ranker-error-burst.yaml --junit drill.xml"""

_README = Path(__file__).resolve().parents[2] / "README.md"
_HEADER = "| code | meaning |"


def version() -> str:
    """The installed package's version (pyproject's `version`)."""
    try:
        return metadata.version("interlock")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _readme() -> str:
    if _README.is_file():
        return _README.read_text(encoding="utf-8")
    try:
        return metadata.metadata("interlock").get_payload() or ""  # type: ignore[attr-defined]
    except metadata.PackageNotFoundError:
        return ""


def exit_codes(text: str | None = None) -> dict[int, str]:
    """The README's exit-code table: code → meaning, in the README's words (no backticks)."""
    text = _readme() if text is None else text
    if _HEADER not in text:
        return {}
    codes: dict[int, str] = {}
    for line in text[text.index(_HEADER):].splitlines()[2:]:
        found = re.match(r"\|\s*`(\d+)`\s*\|(.*)\|\s*$", line)
        if found is None:
            break
        meaning = found.group(2).strip().replace("`", "")
        codes[int(found.group(1))] = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", meaning)  # links → their words
    return codes


def epilog() -> str:
    """Examples, then the exit codes (wrapped for an 80-column terminal)."""
    codes = exit_codes()
    if not codes:
        return EXAMPLES + "\n\nexit codes: see the README's table"
    lines = [EXAMPLES, "", "exit codes:"]
    for code, meaning in codes.items():
        lines.extend(textwrap.wrap(meaning, width=78, initial_indent=f"  {code}  ", subsequent_indent="     "))
    return "\n".join(lines)
