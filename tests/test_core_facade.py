"""`core`'s lazy facade: every name in its table resolves, and `__all__` and `dir` say the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def test_every_exported_name_resolves_to_its_module_attribute() -> None:
    import importlib

    table = core._export_table()
    assert len(table) > 100
    for name, (module, attribute) in table.items():
        assert getattr(core, name) is getattr(importlib.import_module(module), attribute), name


def test_all_and_dir_agree_with_the_table() -> None:
    table = core._export_table()
    assert sorted(core.__all__) == sorted(table)
    assert len(core.__all__) == len(set(core.__all__))
    assert set(table) <= set(dir(core))


def test_no_module_of_core_shadows_an_export() -> None:
    modules = {p.stem for p in (ROOT / "core").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert modules.isdisjoint(core._export_table()), modules & set(core._export_table())


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        core.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("core.no_such_name resolved")


def test_importing_one_name_imports_only_its_modules() -> None:
    script = (
        "import json, sys\n"
        "from core import load_plan\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('core.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = json.loads(out.stdout)
    assert "core.planload" in loaded
    assert not {"core.engine", "core.actions", "core.reducer"} & set(loaded)
