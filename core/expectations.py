"""A drill's `expect:` judged against what happened: one named expectation each, passed or
not, with the detail a person reads on the scorecard.

Apart from :mod:`core.scorecard` (which measures what happened from the journal) because
the rules of each expectation, including "a fault that never fired cannot pass", are the
part people read and change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from core.durations import format_duration
from core.drill import LoadedDrill
from core.state import RolloutState

_PAST = {"detect_within": "detected", "decide_within": "decided", "restore_within": "restored"}

@dataclass(frozen=True)
class Expectation:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class FaultTimes:
    """When one of the drill's faults took effect and ended, seconds since the start."""

    index: int
    """1-based position in the drill's `faults`."""
    what: str
    trigger: str
    injected_s: float | None
    cleared_s: float | None


def expectations(
    loaded: LoadedDrill,
    final: RolloutState,
    faults: list[FaultTimes],
    rolled_back: list[str],
    untouched: list[str],
    moved: set[str],
    collateral: list[str],
    times: tuple[float | None, float | None, float | None],
    bad_requests: float | None,
    journal_intact: bool,
) -> list[Expectation]:
    expect = loaded.drill.expect
    out: list[Expectation] = []
    missing = [f for f in faults if f.injected_s is None]
    if faults:
        detail = (
            f"all {len(faults)} injected"
            if not missing
            else "; ".join(f"fault {f.index} ({f.what} at {f.trigger}) never fired" for f in missing)
        )
        out.append(Expectation("faults_fired", not missing, detail))
    outcomes = _outcomes(expect, final, rolled_back, untouched, moved, collateral, times, bad_requests)
    if missing:
        # What a fault should cause, when it never fired, would pass without anything rehearsed.
        why = "vacuous: " + "; ".join(f"fault {f.index} never fired" for f in missing)
        outcomes = [e if e.name == "untouched" else Expectation(e.name, False, f"{why} ({e.detail})")
                    for e in outcomes]
    out += outcomes
    out.append(Expectation("journal_intact", journal_intact,
                           "hash chain verifies" if journal_intact else "hash chain does not verify"))
    return out


def _outcomes(
    expect: Any,
    final: RolloutState,
    rolled_back: list[str],
    untouched: list[str],
    moved: set[str],
    collateral: list[str],
    times: tuple[float | None, float | None, float | None],
    bad_requests: float | None,
) -> list[Expectation]:
    out: list[Expectation] = []
    if expect.rolled_back is not None:
        want = sorted(set(expect.rolled_back))
        ok = want == rolled_back
        detail = f"rolled back: {_names(rolled_back)}"
        if not ok:
            lacking = sorted(set(want) - set(rolled_back))
            detail = f"expected {_names(want)}; " + detail
            detail += f"; not rolled back: {_names(lacking)}" if lacking else ""
            detail += f"; collateral: {_names(collateral)}" if collateral else ""
        out.append(Expectation("rolled_back", ok, detail))
    if expect.untouched is not None:
        problems = []
        for name in sorted(set(expect.untouched)):
            if name not in moved:
                problems.append(f"{name} never moved")
            elif name not in untouched:
                problems.append(f"{name} was rolled back")
        detail = "; ".join(problems) or f"moved and stayed: {_names(sorted(set(expect.untouched)))}"
        out.append(Expectation("untouched", not problems, detail))
    for name, limit, value in zip(
        ("detect_within", "decide_within", "restore_within"),
        (expect.detect_within, expect.decide_within, expect.restore_within),
        times,
    ):
        if limit is not None:
            done = _PAST[name]
            ok = value is not None and value <= limit
            bound = f"limit {format_duration(limit)}"
            detail = f"{done} in {_text(value)} ({bound})" if value is not None else f"never {done} ({bound})"
            out.append(Expectation(name, ok, detail))
    if expect.never_exposed is not None:
        seen = sorted(set(expect.never_exposed) & moved)
        detail = f"exposed: {_names(seen)}" if seen else f"never exposed: {_names(sorted(set(expect.never_exposed)))}"
        out.append(Expectation("never_exposed", not seen, detail))
    if expect.final is not None:
        phase = final.effective_phase
        out.append(Expectation("final", phase == expect.final, f"ended {phase} (expected {expect.final})"))
    if expect.max_bad_requests is not None:
        limit = f"limit {expect.max_bad_requests:g}"
        if bad_requests is None:
            out.append(Expectation("max_bad_requests", False, f"not counted in this environment ({limit})"))
        else:
            ok = bad_requests <= expect.max_bad_requests
            out.append(Expectation("max_bad_requests", ok, f"{round(bad_requests)} requests served while bad ({limit})"))
    return out


def _text(seconds: float | None) -> str:
    return "never" if seconds is None else format_duration(seconds)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"
