"""Recorded measurements for `interlock analyze`: reading a file of them, bounded and located.

A measurement file is untrusted input: its nesting and number sizes are bounded before it is
parsed, every problem is reported at once with its line and column (`InputError`), and each
item becomes a `Measurement` that `core.judges.analysis` replays through a gate.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from core.problems import InputError, Path, Problem, SourceMap, located

FIELDS = ("value", "baseline", "error", "canary", "errors", "requests", "slow", "baseline_requests", "at")


@dataclass(frozen=True, slots=True)
class Measurement:
    kind: str
    """value | error | samples | counts | arm_counts | tail"""
    value: float | None = None
    baseline_value: float | None = None
    error: str | None = None
    canary: tuple[float, ...] = ()
    baseline: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    """(errors, requests), or (canary errors, canary requests, baseline errors, baseline requests),
    or for a tail (slow canary requests, canary requests, baseline requests)."""
    at: float | None = None


MAX_DEPTH = 32
"""Nested lists and objects a measurements file may have (a measurement needs three)."""

MAX_DIGITS = 40
"""An integer with more digits is read as a float (infinite past 308 digits, then refused
as not finite) rather than converted digit by digit."""

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _parse_int(digits: str) -> int | float:
    return int(digits) if len(digits) <= MAX_DIGITS else float(digits)


class _Lines:
    """Line and column of increasing offsets in one text, in linear time overall."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line, self.start = text, 0, 1, 0

    def at(self, pos: int) -> tuple[int, int]:
        if pos < self.pos:  # rare: a key looked up behind the last offset
            self.pos, self.line, self.start = 0, 1, 0
        newlines = self.text.count("\n", self.pos, pos)
        if newlines:
            self.line += newlines
            self.start = self.text.rfind("\n", self.pos, pos) + 1
        self.pos = pos
        return self.line, pos - self.start + 1


def _too_deep(text: str) -> int | None:
    """The offset where the JSON first nests deeper than `MAX_DEPTH`, or None (strings skipped)."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


def _scan(text: str, file: str) -> tuple[list[Any], SourceMap]:
    """Decode the top-level list item by item, remembering where items and their keys start."""
    source = SourceMap(file=file)
    decoder = json.JSONDecoder(parse_int=_parse_int)
    lines = _Lines(text)
    deep = _too_deep(text)
    if deep is not None:
        line, col = lines.at(deep)
        raise InputError([Problem((), f"nested more than {MAX_DEPTH} levels deep", file, line, col)])
    try:
        decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem((), f"not valid JSON: {exc.msg}", file, exc.lineno, exc.colno)]) from None
    except (ValueError, RecursionError) as exc:  # a number or a nesting the decoder cannot take
        raise InputError([Problem((), f"not valid JSON: {exc}", file, 1, 1)]) from None
    pos = len(text) - len(text.lstrip())
    source.marks[()] = lines.at(pos)
    if not text.startswith("[", pos):
        raise InputError([located(source, (), "expected a JSON list of measurements")])
    items: list[Any] = []
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if text.startswith("]", pos):
            return items, source
        item, end = decoder.raw_decode(text, pos)
        index = len(items)
        source.marks[(index,)] = lines.at(pos)
        if isinstance(item, dict):
            cursor = pos
            for key in item:
                found = text.find(json.dumps(key), cursor, end)
                if found >= 0:
                    source.marks[(index, key)] = source.key_marks[(index, key)] = lines.at(found)
                    cursor = found + 1
        items.append(item)
        pos = end


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_SPECIAL = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
"""Prometheus's spellings of the values JSON cannot hold."""


def _reading(value: Any) -> float | None | bool:
    """A value or baseline as a float (NaN and infinities allowed), None for null, False if invalid."""
    if value is None:
        return None
    if isinstance(value, str):
        return _SPECIAL.get(value.strip().lower(), False)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return False


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _counts(obj: Any, path: Path, problems: list[tuple[Path, str]]) -> tuple[int, int] | None:
    if not isinstance(obj, dict) or set(obj) != {"errors", "requests"}:
        problems.append((path, 'expected {"errors": e, "requests": n}'))
        return None
    errors, requests = obj["errors"], obj["requests"]
    if not (_count(errors) and _count(requests)) or errors > requests:
        problems.append((path, "errors and requests must be whole numbers with 0 <= errors <= requests"))
        return None
    return errors, requests


def _samples(values: Any, path: Path, problems: list[tuple[Path, str]]) -> tuple[float, ...] | None:
    if not isinstance(values, list):
        problems.append((path, "expected a list of numbers"))
        return None
    bad = [i for i, v in enumerate(values) if not _number(v)]
    for i in bad:
        problems.append((path + (i,), f"expected a number, got {json.dumps(values[i])}"))
    return None if bad else tuple(float(v) for v in values)


def _parse_item(item: Any, i: int, problems: list[tuple[Path, str]]) -> Measurement | None:
    shapes = (
        '{"value": x}, {"error": "..."}, {"canary": [...], "baseline": [...]}, {"errors": e, "requests": n} '
        'or {"slow": k, "requests": n, "baseline_requests": m}'
    )
    if not isinstance(item, dict):
        problems.append(((i,), f"expected an object: {shapes}"))
        return None
    start = len(problems)
    for key in item:
        if key not in FIELDS:
            problems.append(((i, key), f"unknown field; expected one of {', '.join(FIELDS)}"))
    at = item.get("at")
    if at is not None and not _number(at):
        problems.append(((i, "at"), "expected a time in seconds"))
    keys = set(item) & set(FIELDS) - {"at"}
    if keys == {"error"}:
        if not isinstance(item["error"], str):
            problems.append(((i, "error"), "expected the error message as a string"))
        return None if len(problems) > start else Measurement("error", error=item["error"], at=at)
    if keys in ({"value"}, {"value", "baseline"}):
        for key in sorted(keys):
            if _reading(item[key]) is False:
                problems.append(((i, key), f"expected a number, NaN or null, got {json.dumps(item[key])}"))
        if len(problems) > start:
            return None
        value, base = _reading(item["value"]), _reading(item.get("baseline"))
        assert value is not False and base is not False
        return Measurement("value", value=value, baseline_value=base, at=at)
    if keys == {"canary", "baseline"}:
        if isinstance(item["canary"], dict) or isinstance(item["baseline"], dict):
            canary = _counts(item["canary"], (i, "canary"), problems)
            baseline = _counts(item["baseline"], (i, "baseline"), problems)
            if canary is None or baseline is None or len(problems) > start:
                return None
            return Measurement("arm_counts", counts=canary + baseline, at=at)
        c = _samples(item["canary"], (i, "canary"), problems)
        b = _samples(item["baseline"], (i, "baseline"), problems)
        if c is None or b is None or len(problems) > start:
            return None
        return Measurement("samples", canary=c, baseline=b, at=at)
    if keys in ({"slow", "requests", "baseline_requests"}, {"slow", "requests", "baseline_requests", "value", "baseline"}):
        # A quantile gate's look: the canary's requests slower than (1 + max_increase) x the
        # baseline's quantile, out of its requests, and the baseline's requests that placed it.
        tail = (item["slow"], item["requests"], item["baseline_requests"])
        if not all(_count(c) for c in tail) or tail[0] > tail[1]:
            problems.append(((i,), "slow, requests and baseline_requests must be whole numbers with slow <= requests"))
        value, base = _reading(item.get("value")), _reading(item.get("baseline"))
        for key, read in (("value", value), ("baseline", base)):
            if read is False:
                problems.append(((i, key), f"expected a number, NaN or null, got {json.dumps(item[key])}"))
        if len(problems) > start or value is False or base is False:
            return None
        return Measurement("tail", value=value, baseline_value=base, counts=tail, at=at)
    if keys == {"errors", "requests"}:
        counts = _counts({k: item[k] for k in keys}, (i,), problems)
        return None if counts is None or len(problems) > start else Measurement("counts", counts=counts, at=at)
    if len(problems) == start:
        problems.append(((i,), f"expected one measurement: {shapes}"))
    return None


# -- judging -----------------------------------------------------------------------

def parse_measurements(text: str, *, file: str = "<measurements>") -> tuple[list[Measurement], SourceMap]:
    """The measurements of a file, or InputError with every problem in it."""
    items, source = _scan(text, file)
    problems: list[tuple[Path, str]] = []
    parsed = [_parse_item(item, i, problems) for i, item in enumerate(items)]
    if problems:
        raise InputError([located(source, p, msg, key=len(p) == 2) for p, msg in problems])
    return [m for m in parsed if m is not None], source


