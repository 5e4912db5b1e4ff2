"""Durations (`30s`, `5m`, `1h30m`) and percentages (`10%`) as plans write them.

Kept apart from the models so the drill format and the CLI parse time the same way.
"""

from __future__ import annotations

import re

MAX_DURATION = 30 * 86400.0
"""No duration in a plan or a drill may exceed 30 days: a bake of 2^64 seconds is a typo,
and a rollout asked to wait that long would tick until the end of time."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Seconds from `250ms`, `30s`, `5m`, `1h30m` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 1h, not a boolean")
    if isinstance(value, (int, float)):
        if not value >= 0:  # NaN fails this too
            raise ValueError("a duration cannot be negative" if value < 0 else "a duration must be a number of seconds")
        return _capped(value, value)
    if not isinstance(value, str):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("expected a duration like 30s, 5m or 1h, got an empty string")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"{value!r} is not a duration; use forms like 30s, 5m, 1h or 1h30m")
    return _capped(total, value)


def _capped(seconds: float, written: object) -> float:
    if seconds > MAX_DURATION:  # inf too; compared before float() overflows on a huge int
        shown = f"{written!r} is too long: " if isinstance(written, str) and len(written) <= 32 else ""
        raise ValueError(f"{shown}a duration may last at most 30 days")
    return float(seconds)


def parse_percent(value: object) -> float:
    """A fraction from `10%` (0.1) or a bare fraction like 0.1."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage like 10%, not a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a percentage; write it like 10%")


def format_duration(seconds: float) -> str:
    """`2h06m10s`, `4m30s`, `12s`: short, and exact to the second (the one way every
    output writes a length of time; a moment of a run is `format_moment`)."""
    seconds = max(0.0, seconds)
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    if seconds < 10 and seconds != whole:
        return f"{seconds:.1f}s"
    return f"{secs}s"


def format_moment(seconds: float, width: int = 0) -> str:
    """`T+ 2h06m10s`: a moment of a run, counted from its start; `width` right-aligns the
    duration (`T+  5m00s` lines up under `T+ 25m30s` in a column)."""
    return f"T+ {format_duration(seconds):>{width}}"
