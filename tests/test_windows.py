"""Change windows (issue 13 point 5) on the virtual clock: outside a window exposure never
rises, the rollout waits visibly until the next opening, rollback and abort always work."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import Driver, independent_plan
from hypothesis import given
from hypothesis import strategies as st

from core.commands import SetExposure
from core.events import RolloutStarted
from core.planload import parse_plan
from core.problems import InputError
from core.schedule import next_deadline
from core.windows import Windows, describe_next, is_open, next_open

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {"timezone": "Europe/Berlin", "allow": ["Mon-Thu 09:00-16:00"], "freeze": ["2026-12-20/2027-01-04"]}


def t(*args: int) -> float:
    """Epoch seconds of a Berlin wall-clock time."""
    return datetime(*args, tzinfo=BERLIN).timestamp()  # type: ignore[misc]


def windowed(windows: dict[str, Any], stages: list[Any], bake: float) -> Driver:
    doc = independent_plan(["ranker"], stages=stages, bake=bake)
    doc["policy"]["windows"] = windows
    return Driver(doc)


def rises(d: Driver) -> list[tuple[float, float]]:
    """(when, percent) of every raise the reducer commanded."""
    return [(event.at, c.percent) for event, cmds in d.log for c in cmds
            if isinstance(c, SetExposure) and c.percent > 0]


def test_the_rules_read_local_time_in_the_zone() -> None:
    w = Windows.model_validate(OFFICE)
    assert is_open(w, t(2026, 12, 3, 9, 0)) and is_open(w, t(2026, 12, 3, 15, 59))
    assert not is_open(w, t(2026, 12, 3, 16, 0)) and not is_open(w, t(2026, 12, 4, 10, 0))  # Friday
    assert not is_open(w, t(2026, 12, 21, 10, 0))  # frozen Monday
    assert next_open(w, t(2026, 12, 4, 10, 0)) == t(2026, 12, 7, 9, 0)
    assert describe_next(w, t(2026, 12, 4, 10, 0)) == "next window Mon 09:00 Europe/Berlin"
    # Across the freeze: the first allowed time after 2027-01-04 is Tuesday the 5th.
    assert next_open(w, t(2026, 12, 18, 17, 0)) == t(2027, 1, 5, 9, 0)
    assert describe_next(w, t(2026, 12, 18, 17, 0)) == "next window Tue 2027-01-05 09:00 Europe/Berlin"


def test_windows_follow_daylight_saving_time() -> None:
    w = Windows.model_validate({"zone": "Europe/Berlin", "allow": ["Mon-Thu 09:00-16:00"]})
    assert next_open(w, t(2026, 3, 27, 12, 0)) == t(2026, 3, 30, 9, 0)  # summer time from the 29th
    assert t(2026, 3, 30, 9, 0) - t(2026, 3, 26, 9, 0) == 4 * 86400 - 3600


@given(at=st.floats(t(2026, 1, 1), t(2028, 1, 1)))
def test_next_open_is_open_and_nothing_before_it_is(at: float) -> None:
    w = Windows.model_validate(OFFICE)
    opens = next_open(w, at)
    assert opens is not None and opens >= at and is_open(w, opens)
    if opens > at:
        assert not is_open(w, (at + opens) / 2) and not is_open(w, opens - 1)


def test_a_rollout_started_outside_a_window_waits_visibly_for_the_next() -> None:
    d = windowed(OFFICE, [10, 100], bake=600)
    friday = t(2026, 12, 4, 10, 0)
    d.feed(RolloutStarted(at=friday, rollout="independent"))
    assert d.set_exposures() == []
    assert d.state.window_note == "next window Mon 09:00 Europe/Berlin"
    assert d.state.groups[0].reason == "waiting for the change window: next window Mon 09:00 Europe/Berlin"
    assert next_deadline(d.state) == t(2026, 12, 7, 9, 0)
    d.run()
    assert rises(d) == [(t(2026, 12, 7, 9, 0), 10.0), (t(2026, 12, 7, 9, 10), 100.0)]
    assert d.state.phase == "completed" and d.state.window_note == ""


def test_a_bake_that_ends_after_the_window_closed_waits_for_the_next_one() -> None:
    d = windowed(OFFICE, [10, 50, 100], bake=600)
    d.feed(RolloutStarted(at=t(2026, 12, 3, 15, 55), rollout="independent"))  # Thursday
    d.run()
    assert rises(d) == [(t(2026, 12, 3, 15, 55), 10.0), (t(2026, 12, 7, 9, 0), 50.0), (t(2026, 12, 7, 9, 10), 100.0)]


def test_a_window_that_opens_mid_bake_lets_the_stage_advance_when_its_bake_ends() -> None:
    d = windowed(OFFICE, [10, 100], bake=3 * 86400 + 19 * 3600)  # Thu 15:00 + 3 d 19 h = Mon 10:00
    d.feed(RolloutStarted(at=t(2026, 12, 3, 15, 0), rollout="independent"))
    d.run(until=lambda s: s.groups[0].phase == "baking")
    assert d.state.window_note == ""  # baking is not waiting: nothing rises during a bake anyway
    d.run()
    assert rises(d) == [(t(2026, 12, 3, 15, 0), 10.0), (t(2026, 12, 7, 10, 0), 100.0)]


def test_a_freeze_that_begins_mid_bake_holds_the_next_stage_until_it_ends() -> None:
    d = windowed({"timezone": "Europe/Berlin", "freeze": ["2026-12-20/2027-01-04"]}, [10, 100], bake=7200)
    d.feed(RolloutStarted(at=t(2026, 12, 19, 23, 0), rollout="independent"))
    d.run(until=lambda s: s.window_note != "")
    assert d.state.window_note == "next window Tue 2027-01-05 00:00 Europe/Berlin"
    assert d.group_phase("ranker") == "analyzing"
    d.run()
    assert rises(d) == [(t(2026, 12, 19, 23, 0), 10.0), (t(2027, 1, 5, 0, 0), 100.0)]


@pytest.mark.parametrize("verb", ["rollback", "abort"])
def test_rollback_and_abort_work_outside_a_window(verb: str) -> None:
    d = windowed(OFFICE, [10, 50, 100], bake=600)
    d.feed(RolloutStarted(at=t(2026, 12, 3, 15, 55), rollout="independent"))
    d.run(until=lambda s: s.window_note != "")
    d.op(verb, "ranker" if verb == "rollback" else None)
    d.run()
    assert d.state.phase == ("rolled_back" if verb == "rollback" else "aborted")
    assert d.exposures() == {"ranker": 0.0} and d.state.window_note == ""
    assert max(at for at, _ in rises(d)) < t(2026, 12, 3, 16, 0)


def test_window_mistakes_are_located() -> None:
    text = (
        "rollout: r\npolicy:\n  windows:\n    timezone: Europe/Berlln\n"
        "    allow: [\"Mon-Thu 09:00-16:00\", \"Mon-Frid 09:00-12:00\", \"Tue 25:00-26:00\"]\n"
        "    freeze: [\"2027-01-04/2026-12-20\"]\n"
        "services:\n  a: {from: {version: '1'}, to: {version: '2'}}\n"
    )
    with pytest.raises(InputError) as err:
        parse_plan(text, "plan.yaml")
    assert [p.format() for p in err.value.problems] == [
        "plan.yaml:4:15: policy.windows.timezone: unknown time zone 'Europe/Berlln'; use an IANA name such as "
        "Europe/Berlin or UTC",
        "plan.yaml:5:36: policy.windows.allow[1]: unknown day 'Frid'; days are Mon, Tue, Wed, Thu, Fri, Sat, Sun",
        "plan.yaml:5:60: policy.windows.allow[2]: 25:00 is not a time of day (00:00 to 24:00)",
        "plan.yaml:6:14: policy.windows.freeze[0]: freeze '2027-01-04/2026-12-20' ends before it starts",
    ]


def test_the_engine_wakes_at_the_opening_and_says_why_it_waits(tmp_path: Path) -> None:
    """Through the whole engine on the virtual clock (which starts at 1970-01-01 00:00 UTC, a
    Thursday, 01:00 in Berlin): nothing rises before 09:00, the first stage starts at 09:00."""
    import asyncio

    from core.events import ExposureApplied
    from tui.printer import phase_line
    from tui.session import runtime

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "rollout: windowed\npolicy:\n  windows: {timezone: Europe/Berlin, allow: ['Mon-Thu 09:00-16:00']}\n"
        "defaults: {stages: [10, 100], bake: 10m}\nservices:\n  ranker: {from: {version: '1'}, to: {version: '2'}}\n"
    )
    session = runtime.start_run(plan, journal_path=tmp_path / "j.db")
    lines: list[str] = []
    last = [session.engine.state]

    def seen(state: Any, _events: Any) -> None:
        line = phase_line(last[0], state)
        last[0] = state
        if line:
            lines.append(line)

    session.engine.subscribe(seen)
    state = asyncio.run(session.engine.run())
    records = [r.event for r in session.journal.records(session.info.run_id)]
    session.journal.close()
    assert state.phase == "completed"
    assert [(e.at, e.percent) for e in records if isinstance(e, ExposureApplied)] == [(8 * 3600.0, 10.0),
                                                                                    (8 * 3600.0 + 600, 100.0)]
    assert "waiting for the change window: next window Thu 09:00 Europe/Berlin" in lines[0]
