"""Issue 18, point 6: a seeded mutator over plans, drills, analyze inputs and journals,
through the CLI entry. Every case ends with a documented exit code and no traceback.

A few hundred cases here (seconds); `bench/fuzz_bench.py` runs thousands and counts
slow runs too (bench/README.md). A failing seed reproduces with
`tests.fuzzing.make_case(seed, ...)`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.fuzzing import KINDS, fuzz

CASES = 320


def test_mutated_inputs_never_raise_and_exit_with_documented_codes(tmp_path: Path) -> None:
    outcomes = fuzz(range(CASES), tmp_path)
    bad = [(o.case.seed, o.case.argv[0], o.problem) for o in outcomes if o.problem]
    assert bad == []
    kinds = Counter(o.case.kind for o in outcomes)
    assert set(kinds) == set(KINDS)
    # The mutator must reach past the loaders too, or it tests only the first check.
    codes = Counter((o.case.kind, o.code) for o in outcomes)
    assert codes["plan", 0] and codes["journal", 0] and codes["drill", 0] and codes["journal", 5]
