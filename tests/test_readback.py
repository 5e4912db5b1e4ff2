"""The reducer's side of reading the world back (issue 11): each flag and route compared
with the journal on its own, a periodic read-back while a service is exposed, `--adopt`
and `--abandon` as events that replay to the same state."""

from __future__ import annotations

from helpers import Driver, independent_plan

from core.commands import ReadExposure, SetExposure
from core.events import Abandoned, Adopted, ExposureRead
from core.reducer import reduce
from core.schedule import next_deadline


def routed(readback: float = 10.0, stages: list[float] | None = None) -> Driver:
    doc = independent_plan("a", stages=stages or [10, 50, 100], bake=60)
    doc["policy"]["readback"] = readback
    doc["services"]["a"]["exposure"] = {"flag": "a-flag", "route": "a-route"}
    return Driver(doc)


def started(d: Driver) -> None:
    (up,) = d.start()
    d.ack(up)


def periodic(d: Driver, at: float) -> ReadExposure:
    cmds = d.tick(at)
    reads = [c for c in cmds if isinstance(c, ReadExposure)]
    assert len(reads) == 1, cmds
    return reads[0]


def answer(d: Driver, cmd: ReadExposure, flag: float, route: float) -> None:
    d.feed(ExposureRead(at=d.now, cmd_id=cmd.cmd_id, exposures={"a": min(flag, route)},
                        targets={"flag:a-flag": flag, "route:a-route": route}))


def test_an_exposed_service_is_read_back_once_per_interval_and_agreement_goes_on() -> None:
    d = routed(readback=10.0)
    started(d)
    assert d.state.readback_at == 10.0
    assert next_deadline(d.state) == 60.0  # a virtual clock does not wake for it ...
    assert next_deadline(d.state, readback=True) == 10.0  # ... a real one does
    read = periodic(d, 10.0)
    assert read.services == ("a",) and d.state.readback_at is None
    answer(d, read, 10.0, 10.0)
    assert d.state.hold is None and d.state.readback_at == 20.0
    assert d.state.groups[0].phase == "baking"


def test_nothing_exposed_nothing_read() -> None:
    d = routed()
    assert d.state.readback_at is None
    d.start()  # the 10% is sent but not yet confirmed: the target counts as exposed
    assert d.state.readback_at == 10.0


def test_a_raised_route_holds_even_though_the_flag_agrees() -> None:
    d = routed()
    started(d)
    answer(d, periodic(d, 10.0), 10.0, 70.0)
    assert d.state.effective_phase == "held"
    assert d.state.hold.differences == (("route:a-route", 10.0, 70.0),)
    assert "route a-route reads 70% (journal 10%)" in d.state.hold.reason
    assert next_deadline(d.state, readback=True) is None  # waits for the operator
    bake = d.state.groups[0].bake_until
    d.tick(500.0)
    assert d.state.groups[0].stage == 0, "nothing rises while held"
    (again,) = d.op("resume")
    assert isinstance(again, SetExposure) and (again.percent, again.flag, again.route) == (10.0, "a-flag", "a-route")
    (read,) = d.ack(again)
    answer(d, read, 10.0, 10.0)
    assert d.state.effective_phase == "running"
    assert d.state.groups[0].bake_until > bake, "the bake does not count the held time"


def test_a_lowered_flag_holds_too() -> None:
    d = routed()
    started(d)
    answer(d, periodic(d, 10.0), 0.0, 10.0)
    assert d.state.hold.differences == (("flag:a-flag", 10.0, 0.0),)


def test_on_resume_each_target_is_compared_not_the_lower_of_the_two() -> None:
    # Journal: 10%. The flag still says 10%, someone raised the route to 70%: the
    # old min(flag, route) read 10% and agreed.
    d = routed()
    started(d)
    d.feed(ExposureRead(at=d.now, cmd_id=0, exposures={"a": 10.0},
                        targets={"flag:a-flag": 10.0, "route:a-route": 70.0}))
    assert d.state.hold is not None and dict(d.state.hold.mismatch) == {"a": (10.0, 70.0)}


def test_a_value_still_being_set_is_not_a_difference() -> None:
    d = routed()
    (up,) = d.start()  # 10% on its way: the flag is set, the route not yet
    d.feed(ExposureRead(at=d.now, cmd_id=0, exposures={"a": 0.0}, targets={"flag:a-flag": 10.0, "route:a-route": 0.0}))
    assert d.state.hold is None
    # A periodic read is not sent across a setting (it could be taken before the setting
    # lands and answer after it): it waits an interval for the setting to land.
    assert not [c for c in d.tick(10.0) if isinstance(c, ReadExposure)]
    d.ack(up)
    answer(d, periodic(d, 20.0), 10.0, 0.0)
    assert d.state.hold.differences == (("route:a-route", 10.0, 0.0),)


def test_a_read_out_when_a_setting_is_sent_says_nothing() -> None:
    d = routed(stages=[10, 50, 100])
    started(d)
    read = periodic(d, 10.0)
    (up,) = [c for c in d.tick(60.0) if isinstance(c, SetExposure)]  # the bake ends: 50% is sent
    d.ack(up)
    answer(d, read, 10.0, 10.0)  # taken before the 50% landed
    assert d.state.hold is None
    answer(d, periodic(d, 70.0), 50.0, 50.0)
    assert d.state.hold is None


def test_adopt_starts_from_what_was_found_and_never_lowers_it() -> None:
    d = routed(stages=[10, 50, 100])
    d.feed(Adopted(at=0.0, exposures={"a": 20.0}, targets={"flag:a-flag": 20.0, "route:a-route": 20.0},
                   operator="ana@desk", reason="someone set 20% by hand"))
    assert (d.state.services["a"].exposure, d.state.phase) == (20.0, "planned")
    (up,) = d.start()
    assert isinstance(up, SetExposure) and up.percent == 50.0
    assert d.state.groups[0].stage == 1


def test_adopt_after_the_start_changes_nothing() -> None:
    d = routed()
    started(d)
    before = d.state
    d.feed(Adopted(at=d.now, exposures={"a": 90.0}, operator="ana", reason="late"))
    assert d.state.services == before.services


def test_abandon_ends_the_run_where_it_stands() -> None:
    d = routed()
    started(d)
    d.feed(Abandoned(at=5.0, operator="bo@desk", reason="its driver is gone", by_run="run-2"))
    assert d.state.phase == "aborted" and d.state.finished
    assert d.state.services["a"].exposure == 10.0, "nothing is rolled back"
    assert "abandoned by bo@desk: its driver is gone; run run-2 took its place" in d.state.reason
    assert d.tick(500.0) == []


def test_replaying_the_events_gives_the_same_state() -> None:
    d = routed()
    started(d)
    answer(d, periodic(d, 10.0), 10.0, 70.0)
    state = d.initial
    for event in d.events:
        state, _ = reduce(state, event)
    assert state == d.state and state.hold == d.state.hold


def test_the_console_log_and_headless_lines_name_target_expected_and_found() -> None:
    from tui import printer
    from tui.console.widgets.eventlog import batch_lines

    d = routed()
    started(d)
    read = periodic(d, 10.0)
    before = d.state
    answer(d, read, 10.0, 70.0)
    event = d.events[-1]
    shown = [line.plain for line in batch_lines(before, d.state, [event])]
    assert shown[0].endswith("read back from adapters: flag a-flag 10%, route a-route 70%")
    assert "rollout held (state differs from the journal: route a-route reads 70% (journal 10%)" in shown[1]
    assert printer.phase_line(before, d.state) in shown[1]


def test_a_paused_rollout_keeps_reading_back_and_resume_reapplies() -> None:
    d = routed()
    started(d)
    d.op("pause", at=5.0)
    assert next_deadline(d.state) is None  # a headless driver stops here (exit 3) ...
    assert next_deadline(d.state, readback=True) == 10.0  # ... a console keeps reading
    answer(d, periodic(d, 10.0), 10.0, 70.0)
    assert (d.state.phase, d.state.effective_phase) == ("paused", "held")
    cmds = d.op("resume", at=12.0)
    assert [(c.percent, c.route) for c in cmds if isinstance(c, SetExposure)] == [(10.0, "a-route")]
    assert d.state.phase == "running"
