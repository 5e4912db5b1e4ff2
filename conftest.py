"""Repository-wide pytest setup: SVG snapshots live in the top-level `snapshots/`,
and the servers a session starts die with it (`tests/reaper.py`).

pytest-textual-snapshot stores each snapshot beside its test by default; the
project keeps the canonical screens in one folder a reviewer can browse,
one subfolder per test module (syrupy relates a snapshot to its test by that
folder's name, which keeps `--snapshot-update` able to spot stale files).
`snap_compare` looks the extension up on its module at call time, so
replacing it there is enough.
"""

from __future__ import annotations

from pathlib import Path

import pytest_textual_snapshot
from syrupy.location import PyTestLocation

pytest_plugins = ["tests.reaper"]

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


class TopLevelSVGExtension(pytest_textual_snapshot.SVGImageExtension):
    """Snapshots in `snapshots/`, named after their test."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS / test_location.basename)


pytest_textual_snapshot.SVGImageExtension = TopLevelSVGExtension  # type: ignore[misc]
