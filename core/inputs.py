"""Reading an input file (a plan, a drill, recorded measurements), with bounds.

Every file a user names goes through `read_input`, so every command refuses the
same things the same way, as one `FILE:LINE:COL: <root>: what is wrong` line
(`InputError`), never a traceback and never unbounded work:

- a path with a NUL byte (the OS would refuse it with a ValueError);
- a file larger than `MAX_INPUT_BYTES`: at most that many bytes (plus one) are
  ever read, so `/dev/zero` or a runaway log costs a few megabytes, not all memory;
- text that is not UTF-8, located at its first bad byte.

Reading is I/O, but it is the one I/O a loader in `core` does; nothing here
touches the clock or imports an adapter.
"""

from __future__ import annotations

import os
from pathlib import Path as FilePath

from core.problems import InputError, Problem

MAX_INPUT_BYTES = 64 * 1024 * 1024
"""A plan, a drill or a measurements file larger than this is refused. Plans are usually
kilobytes, but a 50,000-service plan (issue 17) is 12-30 MB and must load."""

MAX_SPEED = 100_000.0
"""Simulated seconds per wall second a real clock may run at; beyond it a scheduling hiccup
of a millisecond is minutes of simulated time (the virtual clock is the fast way)."""

SEED_RANGE = (0, 2**63 - 1)
"""Seeds a journal can store (SQLite and PostgreSQL integers are 64-bit, signed)."""


def speed_problem(speed: float) -> str | None:
    """What is wrong with a clock speed, or None."""
    if not (0.0 < speed <= MAX_SPEED):  # NaN fails this too
        return f"the speed must be a number above 0 and at most {MAX_SPEED:g}, not {speed!r}"
    return None


def seed_problem(seed: int) -> str | None:
    """What is wrong with a seed, or None."""
    low, high = SEED_RANGE
    if not low <= seed <= high:
        return f"the seed must be a whole number from {low} to {high} (2^63 - 1)"
    return None


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as problems print it: control characters escaped, so a NUL or a newline in a
    name cannot split or truncate the one line a problem is."""
    text = os.fspath(path)
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def line_col(data: bytes, pos: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of byte offset `pos`."""
    line = data.count(b"\n", 0, pos) + 1
    return line, pos - (data.rfind(b"\n", 0, pos) + 1) + 1


def read_input(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of the file at `path`; `what` names it in problems ("the plan").
    Raises `InputError` with one problem for anything it cannot read."""
    file = shown_path(path)

    def refuse(message: str, line: int = 1, col: int = 1) -> InputError:
        return InputError([Problem((), f"cannot read {what}: {message}", file, line, col)])

    if "\x00" in os.fspath(path):
        raise refuse("the path contains a NUL byte")
    try:
        with open(FilePath(path), "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as err:
        raise refuse(err.strerror or type(err).__name__) from None
    except (ValueError, OverflowError) as err:  # e.g. a path too long to encode
        raise refuse(str(err)) from None
    if len(data) > MAX_INPUT_BYTES:
        raise refuse(f"it is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = line_col(data, err.start)
        raise refuse("it is not UTF-8 text", line, col) from None
