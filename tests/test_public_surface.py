"""A small public surface: the console, the command line and the adapters use `core` through
its facade (`core/__init__.py`, `__all__`), and no module imports another's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def _imports(folder: str) -> list[tuple[str, int, str | None, list[str]]]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level:
                found.append((rel, node.lineno, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found.append((rel, node.lineno, alias.name, []))
    return found


def test_the_facade_exports_what_it_names() -> None:
    assert len(core.__all__) == len(set(core.__all__))
    missing = [name for name in core.__all__ if not hasattr(core, name)]
    assert missing == []


def test_tui_and_adapters_reach_core_through_its_facade() -> None:
    direct = [
        f"{rel}:{line}: {module}"
        for folder in ("tui", "adapters")
        for rel, line, module, _ in _imports(folder)
        if module is not None and module.startswith("core.")
    ]
    assert direct == []
    used = {name for folder in ("tui", "adapters") for _, _, module, names in _imports(folder)
            if module == "core" for name in names}
    assert used <= set(core.__all__)


def test_no_private_name_is_imported_from_another_module() -> None:
    private = [
        f"{rel}:{line}: {module}.{name}"
        for folder in ("core", "adapters", "tui")
        for rel, line, module, names in _imports(folder)
        if module not in (None, "__future__") and module.split(".")[0] in ("core", "adapters", "tui")
        for name in names
        if name.startswith("_")
    ]
    assert private == []


def test_no_import_cycles() -> None:
    """Modules import in one direction only (tui -> adapters -> core, and within each):
    every import, lazy and TYPE_CHECKING ones included, counts."""
    modules: dict[str, Path] = {}
    for folder in ("core", "adapters", "tui"):
        for path in (ROOT / folder).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".") if package else name.split(".")[:-1]
                module = (
                    ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                    if node.level else node.module or ""
                )
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return True
            if nxt not in state and visit(nxt, trail + [node]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if start not in state and visit(start, []):
            break
    assert cycle == []


def test_the_command_line_the_console_and_the_session_import_downward_only() -> None:
    """`tui/session` (running a rollout) knows neither the command line nor the console; the
    console (Textual) never reaches into the command line; the command line may open the
    console. What both print (`tui/printer.py`, `tui/scorecard_text.py`) sits above them."""
    forbidden = {"tui/session": ("tui.cli", "tui.console"), "tui/console": ("tui.cli",)}
    upward = [
        f"{rel}:{line}: {module}"
        for folder, banned in forbidden.items()
        for rel, line, module, _ in _imports(folder)
        if module is not None and module.startswith(banned)
    ]
    assert upward == []
    textual = [f"{rel}:{line}" for folder in ("tui/cli", "tui/session")
               for rel, line, module, _ in _imports(folder)
               if module is not None and module.split(".")[0] == "textual"]
    assert textual == []


MAX_MODULE_LINES = 420
"""Issue 12: modules of about 400 lines at most, named for what they hold."""


def test_every_module_stays_about_400_lines() -> None:
    """A module that grows past this holds two things: move one of them into a module named
    for it (as core/measuring.py left core/engine.py), rather than raising the limit."""
    long = [
        f"{path.relative_to(ROOT)}: {count} lines"
        for folder in ("core", "adapters", "tui")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []
