"""`core` stays pure: it imports no UI, no HTTP, no adapters, and never reads the wall clock.

The import check runs in a fresh interpreter, so nothing this test process
already imported can hide a leak. The clock check reads the syntax tree of
every core module (docstrings that *mention* `time.time` are fine).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "core"
FORBIDDEN_PACKAGES = ("textual", "httpx", "adapters", "tui")
WALL_CLOCK_CALLS = {
    "time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns", "time.perf_counter",
    "time.perf_counter_ns", "time.localtime", "time.gmtime", "time.ctime",
    "datetime.now", "datetime.utcnow", "datetime.today", "date.today",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.date.today",
}
WALL_CLOCK_NAMES = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}


def core_modules() -> list[str]:
    """Every module under core/, subpackages included, as dotted names."""
    names = []
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def test_core_imports_no_ui_http_adapters_or_tui() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_PACKAGES!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        cwd=CORE.parent,
    )
    assert json.loads(out.stdout) == []
    assert len(core_modules()) > 10


def dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def wall_clock_reads(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name = dotted(node)
            if name in WALL_CLOCK_CALLS:
                found.append(f"{node.lineno}: {name}")
            # asyncio.get_event_loop().time() / get_running_loop().time()
            if node.attr == "time" and isinstance(node.value, ast.Call):
                func = dotted(node.value.func) or ""
                if func.endswith(("get_event_loop", "get_running_loop")):
                    found.append(f"{node.lineno}: {func}().time")
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                if node.module == "time" and alias.name in WALL_CLOCK_NAMES:
                    found.append(f"{node.lineno}: from time import {alias.name}")
                # Calendars need datetime (change windows read the engine's time in a zone):
                # imported under its own name, its `.now()` / `.today()` are caught above.
                if node.module == "datetime" and alias.name in ("datetime", "date") and alias.asname:
                    found.append(f"{node.lineno}: from datetime import {alias.name} as {alias.asname}")
        elif isinstance(node, ast.Import):
            found.extend(f"{node.lineno}: import {a.name}" for a in node.names if a.name in ("time", "datetime"))
    return found


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_no_core_module_reads_the_wall_clock(path: Path) -> None:
    assert wall_clock_reads(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\nx = time.time()",
        "import time\nx = time.monotonic()",
        "from datetime import datetime\nx = datetime.now()",
        "from datetime import date\nx = date.today()",
        "from datetime import datetime as D\nx = D.now()",
        "import asyncio\nx = asyncio.get_event_loop().time()",
        "import asyncio\nx = asyncio.get_running_loop().time()",
        "from time import perf_counter",
    ],
)
def test_the_clock_check_catches_each_form(snippet: str) -> None:
    assert wall_clock_reads(snippet)


def test_the_clock_check_ignores_mentions_in_text() -> None:
    assert wall_clock_reads('"""never call time.time() or datetime.now() here"""\nx = clock.now()') == []
