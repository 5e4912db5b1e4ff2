"""Percentages as router weights: exact where the journal needs exactness, never overshooting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.caddy import MAX_SLOTS, spread
from adapters.weights import fmt_percent, percent_of, ratio, split


@pytest.mark.parametrize("percent, pair", [(0, (0, 1)), (1, (1, 99)), (25, (1, 3)), (50, (1, 1)), (0.5, (1, 199)), (100, (1, 0))])
def test_ratio_is_the_smallest_exact_pair(percent: float, pair: tuple[int, int]) -> None:
    assert ratio(percent, MAX_SLOTS) == pair


@given(st.integers(min_value=0, max_value=200))
def test_every_whole_and_half_percent_reads_back_exactly(halves: int) -> None:
    percent = halves / 2
    assert percent_of(*ratio(percent, MAX_SLOTS)) == pytest.approx(percent, abs=1e-9)
    assert sum(ratio(percent, MAX_SLOTS)) <= MAX_SLOTS


@given(st.floats(min_value=0, max_value=100))
def test_a_finer_percent_lands_within_the_resolution(percent: float) -> None:
    canary, stable = ratio(percent, MAX_SLOTS)
    assert canary + stable <= MAX_SLOTS
    assert abs(percent_of(canary, stable) - percent) <= 100 / MAX_SLOTS


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_split_weights_move_in_opposite_directions(a: float, b: float) -> None:
    (ca, sa), (cb, sb) = split(a, 100), split(b, 100)
    assert ca + sa == cb + sb == 100
    # either order of applying the two new weights passes only between the old and new share
    lo, hi = sorted((percent_of(ca, sa), percent_of(cb, sb)))
    for mid in (percent_of(cb, sa), percent_of(ca, sb)):
        assert lo - 1e-9 <= mid <= hi + 1e-9


def test_out_of_range_percent_is_refused() -> None:
    with pytest.raises(ValueError):
        ratio(101, 10)
    with pytest.raises(ValueError):
        split(-1, 100)


def test_no_traffic_at_all_reads_as_zero() -> None:
    assert percent_of(0, 0) == 0.0


@pytest.mark.parametrize("percent, text", [(25, "25"), (25.0, "25"), (2.5, "2.5"), (0.125, "0.125"), (0, "0"), (100, "100")])
def test_percent_strings_are_short_and_exact(percent: float, text: str) -> None:
    assert fmt_percent(percent) == text


def test_spread_interleaves_the_canary_evenly() -> None:
    assert spread(1, 3, "C", "S") == ["S", "S", "S", "C"]
    assert spread(2, 2, "C", "S") == ["S", "C", "S", "C"]
    dials = spread(3, 97, "C", "S")
    gaps = [i for i, d in enumerate(dials) if d == "C"]
    assert len(gaps) == 3 and all(b - a >= 33 for a, b in zip(gaps, gaps[1:]))
    assert spread(0, 1, "C", "S") == ["S"] and spread(1, 0, "C", "S") == ["C"]
