"""The shortcuts of `core.quiet` against the full path of `core.reducer`.

The property tests compare them after every random event; these pin the
cases that matter most: a long healthy bake really goes through the
shortcuts (the replay speed depends on it), and the events that can move
something (the bake's last tick, a failing answer, a paused rollout) never do.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

from core import quiet
from core.commands import Measure
from core.events import Measured, OperatorAction, Tick
from core.evolve import build, evolve
from core.gates import GateRun
from core.reducer import reduce, reduce_fully
from core.schedule import next_deadline
from core.state import RolloutState
from tests.helpers import Driver, design_plan, independent_plan

LONG_GATES: dict[str, Any] = {
    "errors": {"metric": "error_rate", "max": 0.01, "interval": 5},
    "drift": {"metric": "prediction_psi", "max": 0.2, "interval": 5},
}


class Checked(Driver):
    """A driver that feeds every event through both paths and counts the shortcuts."""

    def __init__(self, document: dict[str, Any]):
        super().__init__(document)
        self.shortcuts: Counter[str] = Counter()

    def feed(self, event: Any) -> list[Any]:
        before = self.state
        if isinstance(event, Tick) and quiet.quiet_tick(before, event) is not None:
            self.shortcuts["tick"] += 1
        if isinstance(event, Measured) and quiet.quiet_measurement(before, event) is not None:
            self.shortcuts["measured"] += 1
        cmds = super().feed(event)
        full_state, full_cmds = reduce_fully(before, event)
        assert repr(self.state) == repr(full_state), event
        assert cmds == full_cmds, event
        return cmds


def long_bake() -> dict[str, Any]:
    return design_plan(bake=600.0, stages=[50, 100], gates=LONG_GATES, default_gates=["errors", "drift"])


def test_a_long_healthy_bake_goes_through_the_shortcuts_and_ends_as_the_full_path_does() -> None:
    driver = Checked(long_bake())
    driver.start()
    final = driver.run()
    assert final.phase == "completed"
    # 600 s bakes measured every 5 s: almost every tick and answer is quiet.
    assert driver.shortcuts["tick"] > 500
    assert driver.shortcuts["measured"] > 1000
    ticks = sum(isinstance(e, Tick) for e in driver.events)
    assert driver.shortcuts["tick"] > 0.8 * ticks


def test_the_last_tick_of_a_bake_takes_the_full_path_and_moves_the_stage() -> None:
    driver = Checked(long_bake())
    driver.start()
    driver.run(until=lambda s: s.groups[0].phase == "baking")
    bake_until = driver.state.groups[0].bake_until
    assert bake_until is not None
    driver.run(until=lambda s: (next_tick := s.at) >= bake_until - 5 and next_tick < bake_until)
    driver.settle()
    at_end = Tick(at=bake_until)
    assert quiet.quiet_tick(driver.state, at_end) is None
    driver.feed(at_end)
    driver.settle()
    assert driver.state.groups[0].stage == 1


def _baking_with_a_measure_in_flight() -> tuple[Checked, Measure]:
    driver = Checked(long_bake())
    driver.start()
    driver.run(until=lambda s: s.groups[0].phase == "baking")
    deadline = next_deadline(driver.state)
    assert deadline is not None
    cmds = driver.tick(deadline)  # due measurements asked for, not answered yet
    cmd = next(c for c in cmds if isinstance(c, Measure))
    return driver, cmd


def test_a_failing_answer_takes_the_full_path_and_fails_the_group() -> None:
    driver, cmd = _baking_with_a_measure_in_flight()
    bad = Measured(at=driver.now, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, value=0.5)
    assert quiet.quiet_measurement(driver.state, bad) is None
    driver.feed(bad)
    assert driver.state.phase == "rolling_back"


def test_nothing_is_quiet_while_paused() -> None:
    driver, cmd = _baking_with_a_measure_in_flight()
    driver.feed(OperatorAction(at=driver.now, action="pause", operator="t"))
    answer = Measured(at=driver.now, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, value=0.0)
    assert quiet.quiet_measurement(driver.state, answer) is None
    assert quiet.quiet_tick(driver.state, Tick(at=driver.now + 60)) is None
    driver.feed(answer)
    assert driver.feed(Tick(at=driver.now + 60)) == []  # paused: no measurement asked for


def test_evolve_copies_changes_and_refuses_unknown_fields() -> None:
    run = GateRun(service="ranker", gate="errors", next_at=5.0)
    changed = evolve(run, count=3, next_at=None)
    assert changed == dataclasses.replace(run, count=3, next_at=None)
    assert run.count == 0 and run.next_at == 5.0  # the original is untouched
    with pytest.raises(TypeError, match="no field cuont"):
        evolve(run, cuont=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.count = 4  # type: ignore[misc]
    values = tuple(getattr(run, f.name) for f in dataclasses.fields(GateRun))
    assert build(GateRun, values) == run
    with pytest.raises(ValueError):
        build(GateRun, values[:-1])
    with pytest.raises(TypeError, match="not a plain dataclass"):
        evolve(dataclasses.make_dataclass("Slotted", ["x"], slots=True, frozen=True)(1), x=2)


def test_the_state_stays_a_frozen_value() -> None:
    driver, _ = _baking_with_a_measure_in_flight()
    state: RolloutState = driver.state
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.phase = "paused"  # type: ignore[misc]
    assert reduce(state, Tick(at=state.at))[0] is not state


def test_a_tick_at_which_a_change_window_opens_takes_the_full_path() -> None:
    """b is ready (c promoted) outside the change window and waits for the next one while a
    bakes, quietly measuring; at the tick the window opens a gate of a is due too. That tick
    must let b rise, as the full path does (`quiet_tick`'s window guard)."""
    doc = independent_plan(["a", "b", "c"], max_parallel=2, stages=[50, 100], bake=1200.0)
    doc["gates"] = {"errors": {"metric": "error_rate", "max": 0.01, "interval": 60}}
    doc["defaults"]["gates"] = ["errors"]
    doc["services"]["a"]["bake"] = 2 * 86400.0
    doc["services"]["b"]["depends_on"] = ["c"]
    doc["policy"]["windows"] = {"timezone": "UTC", "allow": ["Mon-Sun 00:00-00:30"]}
    doc["policy"]["readback"] = 3 * 86400.0  # not due at the opening
    driver = Checked(doc)
    driver.start()
    driver.run(until=lambda s: s.window_opens is not None)
    assert driver.state.window_opens == 86400.0 and driver.group_phase("b") == "waiting"
    before = driver.shortcuts["tick"]
    driver.run(until=lambda s: s.at >= 86400.0)
    assert driver.shortcuts["tick"] - before > 1000  # a's day of measuring went through the shortcut
    assert driver.state.at == 86400.0 and driver.group_phase("b") != "waiting"  # rose at the opening
