"""Turning a canary percentage into router weights and back, exactly.

The journal compares what it set with what a router reads back (to within
1e-6), so a router adapter must represent a stage's percentage exactly or the
reconcile after a restart would see a difference that is only rounding. Routers
take small integers (HAProxy weights 0..256, Caddy a list of upstreams, the
Gateway API int32 weights), so a percentage becomes a ratio canary : stable of
integers: ``percent / 100`` as a fraction with the smallest denominator that
represents it within `max_total`. Whole percentages and halves are always
exact (1% is 1:99, 25% is 1:3, 0.5% is 1:199); a finer one takes the nearest
fraction the router can hold, and its read-back then differs by the rounding.
"""

from __future__ import annotations

from fractions import Fraction


def ratio(percent: float, max_total: int) -> tuple[int, int]:
    """(canary, stable) integer weights, reduced, with canary + stable <= max_total."""
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"percent must be within 0..100, got {percent:g}")
    share = Fraction(round(percent * 10_000), 1_000_000).limit_denominator(max_total)
    return share.numerator, share.denominator - share.numerator


def percent_of(canary: int, stable: int) -> float:
    """The canary percentage of a weight pair; no traffic at all reads as 0%."""
    total = canary + stable
    return 0.0 if total <= 0 else canary * 100.0 / total


def fmt_percent(percent: float) -> str:
    """A percentage as a short, exact decimal string: 25 → "25", 0.5 → "0.5"."""
    text = f"{round(percent, 4):.4f}".rstrip("0").rstrip(".")
    return text or "0"


def split(percent: float, total: int) -> tuple[int, int]:
    """(canary, stable) integer weights that always add up to `total`.

    A fixed total makes every change move the two weights in opposite
    directions, so a router that applies them one after the other passes only
    through percentages between the old and the new one, never beyond."""
    if not 0.0 <= percent <= 100.0:
        raise ValueError(f"percent must be within 0..100, got {percent:g}")
    canary = min(total, max(0, round(percent * total / 100.0)))
    return canary, total - canary
