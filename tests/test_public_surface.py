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
