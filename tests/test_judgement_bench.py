"""The judgement benchmark's rules are the tools' rules (checked on hand-made checks), and
on seeded traffic the default test keeps its promise where a per-look rule does not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import judgement as jb  # noqa: E402


def test_flagger_rolls_back_at_the_fifth_failed_check_and_promotes_after_ten_passes() -> None:
    fails = np.array([
        [1, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0],   # 5th failure at check 7
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],   # 10 passes first: promoted, missed
        [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],   # 4 failures, then 8 passes: still running at the end
    ], dtype=bool)
    out = jb._flagger(fails, 60)
    assert out[0] == 7 * 60 and np.isnan(out[1]) and np.isnan(out[2])


def test_argo_count_and_failure_limit() -> None:
    fails = np.array([[0, 1, 0, 1] + [0] * 7, [1] + [0] * 10, [0] * 9 + [1, 1]], dtype=bool)
    out = jb._argo(fails, 30, count=10, limit=1)
    assert out[0] == 4 * 30 and np.isnan(out[1]) and np.isnan(out[2])  # the third succeeded at 10
    assert jb._argo(fails, 30, count=None, limit=0)[1] == 30


def test_on_a_drifting_baseline_the_default_holds_and_a_per_look_rule_cries_wolf() -> None:
    rng = np.random.default_rng(11)
    healthy = jb.error_traffic(10, "same", "drift", 200, rng)
    assert np.isnan(jb.err_interlock(healthy, 200)).sum() >= 198
    assert (~np.isnan(jb.err_argo_now(healthy, 200))).sum() > 100
    bad = jb.error_traffic(10, 0.05, "drift", 50, rng)
    caught = jb.err_interlock(bad, 50)
    assert not np.isnan(caught).any() and np.median(caught) <= 60
