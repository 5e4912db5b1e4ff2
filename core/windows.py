"""Change windows: when a rollout may raise exposure (`policy.windows`).

Teams ship inside working hours and not over the holidays. `allow` lists the
times exposure may rise (`"Mon-Thu 09:00-16:00"`), `freeze` the dates it may not
(`"2026-12-20/2027-01-04"`), both in one named time zone (`timezone:
Europe/Berlin`; `zone:` is accepted too). Outside a window a rollout keeps
baking, measuring and judging, and a failure still rolls back; only the next
rise waits, visibly, for the next opening ("next window Mon 09:00
Europe/Berlin"). Rollback and abort never wait.

Pure: times are the engine's clock (epoch seconds), read through `zoneinfo`; no
wall clock is read here. Daylight-saving changes are the zone's business: a
window opens at 09:00 local time on both sides of one.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator

from core.spec import Strict

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HORIZON_DAYS = 400
"""How far ahead the next window is looked for (a freeze is at most about a year)."""

_ALLOW = re.compile(r"^\s*(?:(?P<days>[A-Za-z,\- ]+?)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")


_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(text: str) -> int:
    """`Mon` or `Monday` (any case) → 0."""
    name = text.strip().lower()
    for index, (short, full) in enumerate(zip(DAYS, _FULL)):
        if name in (short.lower(), full):
            return index
    raise ValueError(f"unknown day {text.strip()!r}; days are {', '.join(DAYS)}")


def _days(text: str | None) -> frozenset[int]:
    """`Mon-Thu`, `Sat,Sun`, `Fri-Mon` (wraps), `Tue` → weekday numbers (Monday 0)."""
    if not text:
        return frozenset(range(7))
    out: set[int] = set()
    for part in text.split(","):
        if "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            out.update((first + k) % 7 for k in range((last - first) % 7 + 1))
        else:
            out.add(_day(part))
    return frozenset(out)


def _clock_time(text: str) -> tuple[int, int]:
    hour, minute = (int(p) for p in text.split(":"))
    if not (0 <= hour <= 24 and 0 <= minute < 60) or (hour == 24 and minute):
        raise ValueError(f"{text} is not a time of day (00:00 to 24:00)")
    return hour, minute


def parse_allow(text: str) -> tuple[frozenset[int], tuple[int, int], tuple[int, int]]:
    """`"Mon-Thu 09:00-16:00"` → (weekdays, start, end). An end before the start runs past
    midnight into the next day; without days, every day."""
    match = _ALLOW.match(text)
    if match is None:
        raise ValueError(f"expected a window like 'Mon-Thu 09:00-16:00', got {text!r}")
    start, end = _clock_time(match["start"]), _clock_time(match["end"])
    if start == end:
        raise ValueError(f"window {text!r} starts and ends at the same time")
    return _days(match["days"]), start, end


def _moment(text: str, end: bool) -> datetime:
    """A freeze bound: a date (its start, or as the end its whole day) or a local date and time."""
    text = text.strip()
    if "T" in text or " " in text:
        return datetime.fromisoformat(text)
    day = date.fromisoformat(text)
    return datetime.combine(day + timedelta(days=1) if end else day, time())


def parse_freeze(text: str) -> tuple[datetime, datetime]:
    """`"2026-12-20/2027-01-04"` (both days included) or one date, or local `YYYY-MM-DDTHH:MM`
    bounds → (local start, local end), naive."""
    first, _, last = text.partition("/")
    try:
        start, stop = _moment(first, False), _moment(last or first, True)
    except ValueError:
        raise ValueError(f"expected a freeze like '2026-12-20/2027-01-04', got {text!r}") from None
    if start.tzinfo is not None or stop.tzinfo is not None:
        raise ValueError(f"freeze {text!r}: write local times without an offset (the zone is `timezone`)")
    if stop <= start:
        raise ValueError(f"freeze {text!r} ends before it starts")
    return start, stop


def _check_allow(text: str) -> str:
    parse_allow(text)
    return text


def _check_freeze(text: str) -> str:
    parse_freeze(text)
    return text


class Windows(Strict):
    """`policy.windows`: when exposure may rise."""

    zone: str = Field(default="UTC", alias="timezone")
    """An IANA time zone name (`Europe/Berlin`); `allow` and `freeze` are in it."""
    allow: list[Annotated[str, AfterValidator(_check_allow)]] = Field(default_factory=list)
    """When exposure may rise; empty: any time not frozen."""
    freeze: list[Annotated[str, AfterValidator(_check_freeze)]] = Field(default_factory=list)
    """When it may not, whatever `allow` says."""

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


def _frozen(w: Windows, local: datetime) -> datetime | None:
    """The end of the freeze `local` is in (naive local times), else None."""
    naive = local.replace(tzinfo=None)
    ends = [stop for start, stop in map(parse_freeze, w.freeze) if start <= naive < stop]
    return max(ends) if ends else None


def _allowed(w: Windows, local: datetime) -> bool:
    if not w.allow:
        return True
    naive = local.replace(tzinfo=None)
    for text in w.allow:
        days, (h0, m0), (h1, m1) = parse_allow(text)
        for back in (0, 1):  # a window that started yesterday may run past midnight
            day = naive.date() - timedelta(days=back)
            if day.weekday() not in days:
                continue
            start = datetime.combine(day, time()) + timedelta(hours=h0, minutes=m0)
            end = datetime.combine(day, time()) + timedelta(hours=h1, minutes=m1)
            if end <= start:
                end += timedelta(days=1)
            if start <= naive < end:
                return True
    return False


def _local(w: Windows, at: float) -> datetime:
    return datetime.fromtimestamp(at, w.tz)


def _epoch(w: Windows, naive: datetime) -> float:
    return naive.replace(tzinfo=w.tz).timestamp()


def is_open(w: Windows | None, at: float) -> bool:
    """May exposure rise at `at` (epoch seconds)?"""
    if w is None:
        return True
    local = _local(w, at)
    return _frozen(w, local) is None and _allowed(w, local)


def next_open(w: Windows | None, at: float) -> float | None:
    """The first moment at or after `at` when exposure may rise; None if none within
    `HORIZON_DAYS`. Everything between `at` and it is closed."""
    if is_open(w, at):
        return at
    assert w is not None
    today = _local(w, at).date()
    candidates: set[float] = set()
    for offset in range(HORIZON_DAYS + 1):
        day = today + timedelta(days=offset)
        for text in w.allow:
            days, (h0, m0), _ = parse_allow(text)
            if day.weekday() in days:
                candidates.add(_epoch(w, datetime.combine(day, time()) + timedelta(hours=h0, minutes=m0)))
    for _, stop in map(parse_freeze, w.freeze):
        candidates.add(_epoch(w, stop))
    return next((t for t in sorted(candidates) if t > at and is_open(w, t)), None)


def describe_next(w: Windows, at: float) -> str:
    """`next window Mon 09:00 Europe/Berlin` (with the date when it is a week or more away)."""
    opens = next_open(w, at)
    if opens is None:
        return f"no change window opens within {HORIZON_DAYS} days ({w.zone})"
    local = _local(w, opens)
    day = local.strftime("%a") if opens - at < 6 * 86400 else local.strftime("%a %Y-%m-%d")
    return f"next window {day} {local:%H:%M} {w.zone}"
