"""The rollout state machine, fed by hand: order, stages, timing, approvals,
failures and every operator action, with exact moments and exact commands.

Most tests use DESIGN.md's example (features → embedder + ranker in lockstep →
api) with stages [10, 50, 100], 60 s bakes and count-2 gates every 30 s.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Driver, Err, design_plan, independent_plan, replay

from core.actions import available
from core.commands import Measure, ReadExposure, SetExposure
from core.rollback import abort_order, rollback_cascade
from core.schedule import next_deadline
from core.state import RolloutState

LOCKSTEP = 1
"""Group index of embedder + ranker in the DESIGN example."""


def drift_bad_at(percent: float):
    """A metric callback: ranker's drift gate fails at `percent`, everything else is fine."""

    def metric(cmd: Measure, state: RolloutState) -> float:
        at = state.stage_percent(state.group_of("ranker"))
        return 0.9 if cmd.gate == "drift" and at == percent else 0.0

    return metric


def nonzero_sets(driver: Driver) -> list[tuple[str, float]]:
    return [(c.service, c.percent) for c in driver.set_exposures() if c.percent > 0]


def test_design_example_compiles_to_the_expected_groups() -> None:
    d = Driver(design_plan())
    assert d.state.ctx.graph.groups == (("features",), ("embedder", "ranker"), ("api",))
    assert [g.cohort for g in d.state.ctx.groups] == ["features", "embedder+ranker", "api"]


def test_the_whole_example_completes_in_precedence_order() -> None:
    d = Driver(design_plan(policy={"max_parallel": 4}))
    d.start()
    state = d.run()
    assert state.phase == "completed"
    assert all(s.phase == "promoted" and s.exposure == 100.0 for s in state.services.values())
    first = {}
    for service, percent in nonzero_sets(d):
        first.setdefault(service, len(first))
    assert list(first) == ["features", "embedder", "ranker", "api"]
    # Every raise happened only once all the group's predecessors were promoted.
    before = d.initial
    for event, cmds in d.log:
        after = replay(before, [event])
        for cmd in cmds:
            if isinstance(cmd, SetExposure) and cmd.percent > 0:
                group = after.group_of(cmd.service)
                preds = after.ctx.groups[group].preds
                assert all(after.groups[p].phase == "promoted" for p in preds), (cmd, event)
        before = after
    assert replay(d.initial, d.events) == state


def test_at_start_only_the_first_group_moves_even_with_room() -> None:
    d = Driver(design_plan(policy={"max_parallel": 4}))
    cmds = d.start()
    assert [(c.service, c.percent) for c in cmds] == [("features", 10.0)]
    assert d.state.phase == "running"
    assert [g.phase for g in d.state.groups] == ["progressing", "waiting", "waiting"]


def test_lockstep_members_move_together_on_one_cohort() -> None:
    d = Driver(design_plan())
    d.start()
    d.run(until=lambda s: s.groups[LOCKSTEP].stage >= 0)
    for _event, cmds in d.log:
        sets = [c for c in cmds if isinstance(c, SetExposure) and c.service in ("embedder", "ranker")]
        if sets:
            assert sorted(c.service for c in sets) == ["embedder", "ranker"]
            assert len({c.percent for c in sets}) == 1
            assert {c.cohort for c in sets} == {"embedder+ranker"}
    d.run()
    lockstep = [c for c in d.set_exposures() if c.service in ("embedder", "ranker")]
    assert [c.percent for c in lockstep] == [10.0, 10.0, 50.0, 50.0, 100.0, 100.0]
    flagged = {c.service: (c.flag, c.route) for c in lockstep}
    assert flagged == {"embedder": ("embedder-v3", "embedder"), "ranker": ("ranker", None)}


def test_max_parallel_limits_groups_in_canary() -> None:
    d = Driver(independent_plan("abcd", max_parallel=2))
    cmds = d.start()
    assert [(c.service, c.percent) for c in cmds] == [("a", 50.0), ("b", 50.0)]
    d.settle()
    assert [g.phase for g in d.state.groups] == ["baking", "baking", "waiting", "waiting"]
    d.tick(60.0)  # both reach 100%; still two in canary
    assert sorted(c.service for c in d.inflight(SetExposure)) == ["a", "b"]
    d.settle()
    cmds = d.tick(120.0)  # both promoted: the next two start
    assert sorted((c.service, c.percent) for c in cmds) == [("c", 50.0), ("d", 50.0)]


def test_a_freed_slot_is_taken_at_once() -> None:
    d = Driver(independent_plan("abc", max_parallel=2, stages=[100]))
    d.start()
    d.settle()
    d.tick(60.0)
    # a and b promoted in the same step; c starts in that same reduce call.
    assert [c.service for c in d.log[-1][1]] == ["c"]


def test_a_group_bigger_than_max_parallel_starts_only_when_nothing_is_in_canary() -> None:
    services = {
        **design_plan()["services"],
        "solo": {"from": {"version": "1"}, "to": {"version": "2"}, "stages": [100], "bake": 500},
    }
    d = Driver(design_plan(policy={"max_parallel": 2}, services=services, default_gates=[]))
    groups = d.state.ctx.graph.groups
    assert ("embedder", "ranker") in groups and ("solo",) in groups
    d.start()
    assert sorted(c.service for c in d.inflight(SetExposure)) == ["features", "solo"]
    d.run(until=lambda s: s.groups[s.group_of("features")].phase == "promoted")
    # features promoted, solo still baking: the pair (2) + solo (1) exceed 2.
    assert d.group_phase("solo") == "baking"
    assert d.group_phase("ranker") == "waiting"
    d.run(until=lambda s: s.groups[s.group_of("solo")].phase == "promoted")
    assert d.group_phase("ranker") in ("progressing", "baking")
    d = Driver(design_plan(policy={"max_parallel": 1}, default_gates=[]))
    d.start()
    assert d.run().phase == "completed"


def single(gate: dict[str, Any] | None = None, stages: list[Any] | None = None, bake: float = 60.0,
           policy: dict[str, Any] | None = None) -> Driver:
    doc = independent_plan("a", stages=stages or [10, 100], bake=bake)
    if gate is not None:
        doc["gates"] = {"g": {"metric": "m", "max": 1.0, **gate}}
        doc["defaults"]["gates"] = ["g"]
    if policy:
        doc["policy"].update(policy)
    return Driver(doc)


def test_stage_timing_with_initial_delay_and_count() -> None:
    d = single({"interval": 30, "initial_delay": 10, "count": 2})
    (cmd,) = d.start()
    d.now = 5.0
    d.ack(cmd)  # bake starts at 5: until 65; first measurement at 5 + 10 + 30
    group = d.state.groups[0]
    assert (group.phase, group.bake_until, group.gates[0].next_at) == ("baking", 65.0, 45.0)
    assert next_deadline(d.state) == 45.0
    assert d.tick(44.0) == []
    (m1,) = d.tick(45.0)
    assert isinstance(m1, Measure) and (m1.metric, m1.window) == ("m", 30.0)
    d.answer(m1, 0.1)
    assert next_deadline(d.state) == 65.0
    assert d.tick(65.0) == []  # baked, but the gate needs a second measurement
    assert d.state.groups[0].phase == "analyzing"
    assert next_deadline(d.state) == 75.0
    (m2,) = d.tick(75.0)
    assert [(c.service, c.percent) for c in d.answer(m2, 0.1)] == [("a", 100.0)]
    assert d.state.groups[0].stage == 1


def test_a_gate_without_count_measures_until_the_bake_ends() -> None:
    d = single({"interval": 30}, bake=100)
    d.ack(d.start()[0])
    times = []
    while True:
        deadline = next_deadline(d.state)
        cmds = d.tick(deadline)
        for cmd in cmds:
            if isinstance(cmd, Measure):
                times.append(d.now)
                cmds = d.answer(cmd, 0.5)
        if any(isinstance(c, SetExposure) for c in cmds):
            break
    assert times == [30.0, 60.0, 90.0]
    assert d.now == 100.0 and d.state.groups[0].stage == 1


def test_a_gate_without_count_needs_one_measurement_even_after_a_short_bake() -> None:
    d = single({"interval": 30}, bake=10)
    d.ack(d.start()[0])
    assert d.tick(10.0) == []
    assert d.state.groups[0].phase == "analyzing"
    (m,) = d.tick(30.0)
    assert [(c.service, c.percent) for c in d.answer(m, 0.5)] == [("a", 100.0)]


def test_errors_do_not_satisfy_an_open_ended_gate() -> None:
    d = single({"interval": 30}, bake=30)
    d.ack(d.start()[0])
    (m,) = d.tick(30.0)
    assert d.answer(m, Err()) == []
    assert d.state.groups[0].phase == "analyzing"
    (m,) = d.tick(60.0)
    assert [c.percent for c in d.answer(m, 0.5)] == [100.0]


def test_baseline_gates_are_skipped_at_100_percent() -> None:
    doc = independent_plan("a", stages=[50, 100], bake=30)
    doc["gates"] = {
        "lat": {"metric": "latency", "compare": "baseline", "max_increase": "10%", "interval": 30, "count": 1},
        "err": {"metric": "errors", "max": 1.0, "interval": 30, "count": 1},
    }
    doc["defaults"]["gates"] = ["lat", "err"]
    d = Driver(doc)
    d.start()
    d.run()
    assert d.state.phase == "completed"
    measured = [(c.gate, c.with_baseline, c.canary_version, c.baseline_version)
                for c in d.commands if isinstance(c, Measure)]
    assert measured == [("lat", True, "2", "1"), ("err", False, "2", "1"), ("err", False, "2", "1")]


def test_each_stage_approval_waits_for_the_operator_every_stage() -> None:
    d = single(stages=[10, 100], policy={"approval": "each_stage"})
    d.start()
    d.run()
    assert d.state.groups[0].phase == "awaiting_approval"
    assert d.tick(10_000.0) == []
    assert available(d.state, "a") >= {"approve"}
    assert [c.percent for c in d.op("approve", "a")] == [100.0]
    d.run()
    assert (d.state.groups[0].phase, d.state.phase) == ("awaiting_approval", "running")
    d.op("approve", "a")
    assert d.state.phase == "completed"


def test_stage_approval_only_where_asked() -> None:
    d = single(stages=[10, {"percent": 50, "approval": True}, 100])
    d.start()
    d.run()
    assert (d.state.groups[0].stage, d.state.groups[0].phase) == (1, "awaiting_approval")
    assert [c.percent for c in d.set_exposures()] == [10.0, 50.0]
    d.op("approve", "a")
    assert d.run().phase == "completed"


def test_each_wave_approval_gates_every_wave_after_the_first() -> None:
    d = Driver(design_plan(policy={"approval": "each_wave", "max_parallel": 4}))
    d.start()
    d.run()
    assert [g.phase for g in d.state.groups] == ["promoted", "awaiting_approval", "waiting"]
    assert d.state.groups[LOCKSTEP].stage == -1
    assert {c.service for c in d.set_exposures()} == {"features"}
    assert "approve" not in available(d.state, "api")
    cmds = d.op("approve", "ranker")
    assert sorted((c.service, c.percent) for c in cmds) == [("embedder", 10.0), ("ranker", 10.0)]
    d.run()
    assert [g.phase for g in d.state.groups] == ["promoted", "promoted", "awaiting_approval"]
    d.op("approve", "api")
    assert d.run().phase == "completed"


def test_each_wave_waits_for_every_earlier_wave_not_just_predecessors() -> None:
    doc = independent_plan("ab", max_parallel=1)
    doc["services"]["c"] = {"depends_on": ["a"], "from": {"version": "1"}, "to": {"version": "2"}}
    doc["policy"]["approval"] = "each_wave"
    d = Driver(doc)
    d.start()
    d.run(until=lambda s: s.groups[s.group_of("a")].phase == "promoted")
    assert d.group_phase("b") != "promoted"
    assert d.group_phase("c") == "waiting"  # a is promoted, but wave 0 also holds b
    d.run()
    assert d.group_phase("c") == "awaiting_approval"


@pytest.mark.parametrize("policy", ["rollback_dependents", "rollback_self"])
def test_a_failing_gate_rolls_the_lockstep_group_back(policy: str) -> None:
    d = Driver(design_plan(policy={"on_failure": policy}))
    d.start()
    state = d.run(drift_bad_at(50.0))
    assert state.phase == "rolled_back"
    assert {n: (s.phase, s.exposure) for n, s in state.services.items()} == {
        "features": ("promoted", 100.0),
        "embedder": ("rolled_back", 0.0),
        "ranker": ("rolled_back", 0.0),
        "api": ("waiting", 0.0),
    }
    assert "api" not in {c.service for c in d.set_exposures()}
    failing_step = next(cmds for e, cmds in d.log if e.kind == "measured" and e.value == 0.9)
    assert sorted((c.service, c.percent) for c in failing_step) == [("embedder", 0.0), ("ranker", 0.0)]
    assert state.finished and replay(d.initial, d.events) == state


def test_pause_policy_stops_everything_and_resume_reruns_the_stage() -> None:
    d = Driver(design_plan(policy={"on_failure": "pause"}))
    d.start()
    state = d.run(drift_bad_at(50.0))
    assert (state.phase, state.groups[LOCKSTEP].phase, state.groups[LOCKSTEP].stage) == ("paused", "failed", 1)
    assert "drift" in state.reason and d.exposures()["ranker"] == 50.0
    sets_before = len(d.set_exposures())
    assert d.tick(d.now + 3600) == [] and len(d.set_exposures()) == sets_before
    assert next_deadline(state) is None
    d.op("resume")
    assert (d.state.phase, d.state.groups[LOCKSTEP].phase) == ("running", "baking")
    assert d.state.groups[LOCKSTEP].gates and all(r.count == 0 for r in d.state.groups[LOCKSTEP].gates)
    assert d.run().phase == "completed"


def test_inconclusive_pauses_and_resume_restarts_the_stage() -> None:
    d = single({"interval": 30, "count": 2, "pass_max": 0.1})
    d.ack(d.start()[0])
    (m,) = d.tick(30.0)
    d.answer(m, 0.5)
    assert (d.state.phase, d.state.groups[0].gates[0].phase) == ("paused", "inconclusive")
    d.now = 100.0
    d.op("resume")
    group = d.state.groups[0]
    assert (d.state.phase, group.phase, group.bake_until, group.gates[0].next_at) == ("running", "baking", 160.0, 130.0)


def advanced_until_api_moved(**policy: Any) -> Driver:
    d = Driver(design_plan(policy={"max_parallel": 4, **policy}))
    d.start()
    d.run(until=lambda s: s.services["api"].exposure > 0)
    return d


def test_rollback_cascade_is_shown_latest_first_before_confirming() -> None:
    d = advanced_until_api_moved()
    assert rollback_cascade(d.state, "features") == [("api",), ("embedder", "ranker"), ("features",)]
    assert rollback_cascade(d.state, "ranker") == [("api",), ("embedder", "ranker")]
    assert rollback_cascade(d.state, "api") == [("api",)]
    assert rollback_cascade(d.state, "nope") == []
    fresh = Driver(design_plan())
    fresh.start()
    fresh.run(until=lambda s: s.services["ranker"].exposure > 0)
    assert rollback_cascade(fresh.state, "ranker") == [("embedder", "ranker")]
    assert rollback_cascade(fresh.state, "api") == []
    assert "rollback" not in available(fresh.state, "api")


def rollback_order(d: Driver) -> list[list[str]]:
    """Acks zero-exposure commands one reduce step at a time; returns each step's services."""
    steps: list[list[str]] = []
    for _ in range(20):
        pending = d.inflight(SetExposure)
        if not pending:
            break
        steps.append(sorted(c.service for c in pending))
        assert all(c.percent == 0.0 for c in pending)
        for cmd in pending:
            d.ack(cmd)
    return steps


def test_operator_rollback_follows_the_cascade_one_group_at_a_time() -> None:
    d = advanced_until_api_moved()
    d.settle()
    d.op("rollback", "features")
    assert d.state.phase == "rolling_back"
    assert rollback_order(d) == [["api"], ["embedder", "ranker"], ["features"]]
    assert d.state.phase == "rolled_back" and d.state.finished
    assert all(s.exposure == 0.0 and s.phase == "rolled_back" for s in d.state.services.values())


def test_operator_rollback_leaves_earlier_groups_where_they_are() -> None:
    d = advanced_until_api_moved()
    d.settle()
    d.op("rollback", "ranker")
    assert rollback_order(d) == [["api"], ["embedder", "ranker"]]
    assert d.state.phase == "rolled_back"
    assert (d.state.services["features"].phase, d.exposures()["features"]) == ("promoted", 100.0)


def test_a_completed_rollout_can_still_be_rolled_back() -> None:
    d = Driver(design_plan())
    d.start()
    d.run()
    assert d.state.phase == "completed" and "rollback" in available(d.state, "api")
    d.op("rollback", "api")
    assert rollback_order(d) == [["api"]]
    assert d.state.phase == "rolled_back" and d.exposures()["ranker"] == 100.0


def test_abort_takes_every_moved_group_back_latest_first() -> None:
    d = advanced_until_api_moved()
    d.settle()
    d.op("abort")
    assert rollback_order(d) == [["api"], ["embedder", "ranker"], ["features"]]
    assert d.state.phase == "aborted" and d.state.finished
    assert set(d.exposures().values()) == {0.0}


def test_abort_while_rolling_back_extends_the_queue_and_ends_aborted() -> None:
    d = advanced_until_api_moved()
    d.settle()
    d.op("rollback", "ranker")
    d.op("abort")
    assert rollback_order(d) == [["api"], ["embedder", "ranker"], ["features"]]
    assert d.state.phase == "aborted"


@pytest.mark.parametrize("in_flight", [None, "a", "b"])
def test_the_abort_dialog_shows_the_order_the_reducer_executes(in_flight: str | None) -> None:
    """What is confirmed is what is shown: the dialog's list (`abort_order`) is the order the
    zeros are sent, also while a rollback is in flight (its queue goes on first, which is
    not "latest first")."""
    from tui.console.screens.confirm import AbortScreen

    d = Driver(independent_plan("abc", max_parallel=3))
    d.start()
    d.run(until=lambda s: all(s.services[n].exposure > 0 for n in "abc"))
    d.settle()
    if in_flight is not None:
        d.op("rollback", in_flight)  # its 0% stays unanswered: the rollback is in flight
        assert d.state.phase == "rolling_back" and d.inflight(SetExposure)
    shown = abort_order(d.state)
    assert AbortScreen(d.state).groups == shown
    d.op("abort")
    assert [tuple(step) for step in rollback_order(d)] == shown
    assert d.state.phase == "aborted"
    latest_first = [("c",), ("b",), ("a",)]
    assert shown == (latest_first if in_flight is None else [(in_flight,)] + [g for g in latest_first if g != (in_flight,)])


def test_the_rollback_dialog_shows_the_order_the_reducer_executes() -> None:
    d = advanced_until_api_moved()
    d.settle()
    shown = rollback_cascade(d.state, "ranker")
    d.op("rollback", "ranker")
    assert [tuple(step) for step in rollback_order(d)] == shown


def test_abort_never_touches_services_that_did_not_move() -> None:
    d = Driver(design_plan())
    d.start()
    d.run(until=lambda s: s.services["ranker"].exposure == 50.0)
    d.settle()
    d.op("abort")
    assert rollback_order(d) == [["embedder", "ranker"], ["features"]]
    assert "api" not in {c.service for c in d.set_exposures()}


def test_pause_freezes_deadlines_and_resume_shifts_them() -> None:
    d = single({"interval": 30, "count": 2})
    d.ack(d.start()[0])
    (m,) = d.tick(30.0)
    d.answer(m, 0.1)
    group = d.state.groups[0]
    assert (group.bake_until, group.gates[0].next_at) == (60.0, 60.0)
    d.op("pause", at=40.0)
    assert (d.state.phase, d.state.frozen_at) == ("paused", 40.0)
    assert next_deadline(d.state) is None
    frozen = d.state
    assert d.tick(100.0) == []
    assert d.state.groups == frozen.groups
    d.op("resume", at=140.0)
    group = d.state.groups[0]
    assert (d.state.phase, d.state.frozen_at) == ("running", None)
    assert (group.bake_until, group.gates[0].next_at) == (160.0, 160.0)
    assert next_deadline(d.state) == 160.0


def test_a_measurement_that_arrives_while_paused_is_recorded_but_nothing_moves() -> None:
    d = single({"interval": 30, "count": 1})
    d.ack(d.start()[0])
    (m,) = d.tick(30.0)
    d.op("pause")
    assert d.answer(m, 0.1) == []
    assert (d.state.groups[0].gates[0].phase, d.state.groups[0].stage) == ("successful", 0)
    assert d.tick(1000.0) == []
    assert d.op("resume", at=1000.0) == []  # the bake was frozen at 30 with 30 s to go
    assert d.state.groups[0].bake_until == 1030.0
    assert [c.percent for c in d.tick(1030.0)] == [100.0]


def test_step_makes_exactly_one_transition() -> None:
    d = Driver(independent_plan("ab", max_parallel=2))
    cmds = d.start()
    d.op("pause")
    for cmd in cmds:
        d.ack(cmd)
    assert [g.phase for g in d.state.groups] == ["progressing", "progressing"]
    before = d.state.transitions
    d.op("step")
    assert d.state.transitions == before + 1
    assert (d.state.phase, [g.phase for g in d.state.groups]) == ("paused", ["baking", "progressing"])
    d.op("step")
    assert (d.state.phase, [g.phase for g in d.state.groups]) == ("paused", ["baking", "baking"])
    assert d.state.transitions == before + 2


def test_step_with_nothing_ready_runs_until_the_next_transition() -> None:
    d = single(bake=60)
    d.ack(d.start()[0])
    d.op("pause", at=10.0)
    d.op("step", at=20.0)
    assert (d.state.phase, d.state.stepping) == ("running", True)
    assert d.state.groups[0].bake_until == 70.0
    cmds = d.tick(70.0)
    assert [c.percent for c in cmds] == [100.0]
    assert (d.state.phase, d.state.stepping, d.state.groups[0].stage) == ("paused", False, 1)
    d.ack(cmds[0])
    assert d.state.groups[0].phase == "progressing"


def test_a_failed_command_holds_retries_with_backoff_and_resumes_by_itself() -> None:
    d = single(bake=60)
    (cmd,) = d.start()
    assert d.fail(cmd) == []
    assert d.state.effective_phase == "held" and d.state.phase == "running"
    assert (d.state.hold.failed, d.state.hold.retry_at) == ((cmd.cmd_id,), 1.0)
    assert next_deadline(d.state) == 1.0
    assert d.tick(0.5) == []
    assert d.tick(1.0) == [cmd]
    d.fail(cmd)
    assert d.state.hold.retry_at == 3.0  # 1 s, then 2 s
    assert d.tick(3.0) == [cmd]
    (read,) = d.ack(cmd)
    assert isinstance(read, ReadExposure) and read.services == ("a",)
    assert d.state.effective_phase == "held"
    d.read(read, {"a": 10.0})
    assert (d.state.hold, d.state.effective_phase) == (None, "running")
    assert d.state.groups[0].phase == "baking" and d.state.groups[0].bake_until == 63.0


def test_a_hold_freezes_other_groups_timers() -> None:
    d = Driver(independent_plan("ab", max_parallel=2))
    a, b = d.start()
    d.ack(a)
    assert d.state.groups[0].bake_until == 60.0
    d.fail(b)
    d.tick(1.0)
    (read,) = d.ack(b)
    d.now = 5.0
    d.read(read)
    assert d.state.hold is None
    assert d.state.groups[0].bake_until == 65.0


def test_a_read_back_error_retries_the_read() -> None:
    d = single()
    (cmd,) = d.start()
    d.fail(cmd)
    d.tick(1.0)
    (read,) = d.ack(cmd)
    d.read(read, error="router down")
    assert d.state.effective_phase == "held" and d.state.hold.retry_at == 3.0
    (again,) = d.tick(3.0)
    assert isinstance(again, ReadExposure) and again.cmd_id != read.cmd_id
    d.read(again)
    assert d.state.hold is None


def test_a_mismatch_waits_for_the_operator_and_resume_reapplies_the_journal() -> None:
    d = single()
    (cmd,) = d.start()
    d.fail(cmd)
    d.tick(1.0)
    (read,) = d.ack(cmd)
    d.read(read, {"a": 0.0})
    assert d.state.effective_phase == "held"
    assert dict(d.state.hold.mismatch) == {"a": (10.0, 0.0)}
    assert next_deadline(d.state) is None
    assert d.tick(1000.0) == []
    assert "resume" in available(d.state)
    (again,) = d.op("resume")
    assert isinstance(again, SetExposure) and (again.service, again.percent) == ("a", 10.0)
    assert again.cmd_id != cmd.cmd_id and d.state.effective_phase == "held"
    (read,) = d.ack(again)
    d.read(read)
    assert d.state.effective_phase == "running" and d.state.groups[0].phase == "baking"


def test_a_retry_never_resends_a_command_a_rollback_superseded() -> None:
    # Regression: the failed 10% used to be retried after the abort's 0%, leaving
    # the service at 10% and the rollback waiting forever.
    d = single()
    (up,) = d.start()
    d.fail(up)
    (down,) = d.op("abort")
    assert (down.service, down.percent) == ("a", 0.0)
    retried = d.tick(1.0)
    assert all(not (isinstance(c, SetExposure) and c.percent > 0) for c in retried)
    d.settle()
    assert (d.state.phase, d.exposures()) == ("aborted", {"a": 0.0})
    assert d.state.finished and d.state.hold is None


IGNORED = [
    ("resume", None, "running"),
    ("step", None, "running"),
    ("approve", "a", "running"),
    ("rollback", "b", "running"),
    ("approve", "zzz", "running"),
    ("pause", None, "paused"),
    ("abort", None, "planned"),
    ("pause", None, "planned"),
    ("rollback", "a", "completed_then_rolled"),
]


@pytest.mark.parametrize(("action", "service", "when"), IGNORED)
def test_actions_that_do_not_apply_change_nothing(action: str, service: str | None, when: str) -> None:
    d = Driver(independent_plan("ab", max_parallel=1))
    if when != "planned":
        d.start()
    if when == "paused":
        d.op("pause")
    if when == "completed_then_rolled":
        d.run()
        d.op("rollback", "a")
        d.settle()
        assert d.state.phase == "rolled_back"
    assert action not in available(d.state, service)
    before = d.state
    assert d.op(action, service) == []
    assert d.state == before


def test_a_failure_reported_after_a_newer_setting_is_not_retried() -> None:
    # The 10% was still out when the abort sent 0%; then the 10% failed.
    d = single()
    (up,) = d.start()
    (down,) = d.op("abort")
    d.fail(up)
    assert up.cmd_id not in d.state.inflight and d.state.hold is None
    d.ack(down)
    assert (d.state.phase, d.exposures()) == ("aborted", {"a": 0.0})


def test_a_command_failing_while_the_read_back_is_out_is_still_retried() -> None:
    d = single()
    (up,) = d.start()
    d.fail(up)
    d.tick(1.0)
    (read,) = d.ack(up)
    (down,) = d.op("abort")
    d.fail(down)
    d.read(read)  # agrees with the journal, but `down` still has to go through
    assert d.state.hold is not None and d.state.hold.failed == (down.cmd_id,)
    assert d.tick(d.state.hold.retry_at) == [down]
    d.settle()
    assert (d.state.phase, d.exposures(), d.state.hold) == ("aborted", {"a": 0.0}, None)


def test_resume_reapplies_the_journal_as_it_is_now_not_as_it_was() -> None:
    d = single(stages=[100])
    (up,) = d.start()
    d.fail(up)
    d.tick(1.0)
    (read,) = d.ack(up)
    d.read(read, {"a": 0.0})  # someone turned the flag off
    assert dict(d.state.hold.mismatch) == {"a": (100.0, 0.0)}
    d.op("rollback", "a")  # rolling back does not wait for the operator to settle the mismatch
    d.settle()
    assert d.state.phase == "rolled_back" and "resume" in available(d.state)
    cmds = d.op("resume")
    assert [(c.service, c.percent) for c in cmds] == [("a", 0.0)]


def test_a_mismatch_after_a_failed_read_leaves_no_deadline_to_spin_on() -> None:
    from core.events import ExposureRead

    d = single()
    (up,) = d.start()
    d.ack(up)
    d.feed(ExposureRead(at=0.0, cmd_id=0, error="unreachable"))  # reconcile after a restart
    d.feed(ExposureRead(at=0.0, cmd_id=0, exposures={"a": 0.0}))
    assert d.state.hold.mismatch and d.state.hold.retry_at == 1.0
    d.tick(1.0)
    assert next_deadline(d.state) is None
