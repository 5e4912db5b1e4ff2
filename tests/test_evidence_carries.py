"""One anytime-valid test per service and gate for the whole rollout (issue 15, point 2).

A mixture of likelihood ratios multiplies one factor per look, each of mean at most 1
under the null whatever the look's traffic split; so the test runs on from stage to stage
(`core.schedule`), its share of `policy.false_rollbacks` is spent once per service and gate
(`core.context`), and what a stage saw still counts at the next. A test that crossed is
not carried: a stage the operator resumes after a failure re-runs on fresh evidence."""

from __future__ import annotations

from core.commands import Measure, ReadExposure, SetExposure
from core.events import Measured
from core.judges.mixture import MixtureState
from core.schedule import next_deadline
from helpers import Driver, independent_plan


def _plan(on_failure: str = "rollback_self") -> dict:
    doc = independent_plan(["a"], stages=[10, 50, 100], bake=60.0)
    doc["policy"]["on_failure"] = on_failure
    doc["defaults"]["gates"] = ["errors"]
    doc["gates"] = {"errors": {"metric": "error_rate", "compare": "baseline", "max_increase": "100%"}}
    return doc


def _drive(d: Driver, counts: object, until: object, steps: int = 2000) -> None:
    """Answer every command (errors as (canary errors, requests, baseline errors, requests)
    from `counts(state)`) and tick, until `until(state)`."""
    for _ in range(steps):
        for cmd in d.inflight():
            if isinstance(cmd, SetExposure):
                d.ack(cmd)
            elif isinstance(cmd, ReadExposure):
                d.read(cmd)
            elif isinstance(cmd, Measure):
                ce, cn, be, bn = counts(d.state)  # type: ignore[operator]
                d.feed(Measured(at=d.now, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate,
                                value=ce / cn, baseline=be / bn, canary_data=[ce, cn], baseline_data=[be, bn]))
        if until(d.state):  # type: ignore[operator]
            return
        deadline = next_deadline(d.state)
        assert deadline is not None, "the rollout came to rest first"
        d.tick(max(deadline, d.now))
    raise AssertionError("never reached")


def _test(d: Driver) -> MixtureState | None:
    runs = d.state.groups[0].gates
    return runs[0].sprt if runs else None  # type: ignore[return-value]


def test_a_stages_evidence_carries_into_the_next_stage() -> None:
    d = Driver(_plan())
    d.start()
    healthy = lambda s: (1, 1000, 10, 10000)  # noqa: E731 - the canary errs as the baseline does
    _drive(d, healthy, lambda s: s.groups[0].stage == 0 and (t := _test(d)) is not None and t.updates >= 3)
    _drive(d, healthy, lambda s: s.groups[0].stage == 1)
    before = d.state.groups[0].evidence
    assert len(before) == 1 and before[0][:2] == ("a", "errors")
    carried = before[0][2]
    looks_at_stage_0 = carried.updates
    assert looks_at_stage_0 >= 3 and carried.requests == 1000 * looks_at_stage_0
    _drive(d, healthy, lambda s: s.groups[0].phase == "baking" and (t := _test(d)) is not None
           and t.updates == looks_at_stage_0 + 1)
    test = _test(d)
    assert test is not None and test.requests == carried.requests + 1000  # one look more, nothing lost
    assert test.alpha == carried.alpha == 0.01  # the whole 1%: one service, one gate, one test
    assert d.state.groups[0].evidence == ()  # handed over to the bake


def test_a_crossed_test_is_not_carried_into_the_stage_the_operator_resumes() -> None:
    d = Driver(_plan(on_failure="pause"))
    d.start()
    bad = lambda s: (40, 1000, 10, 10000)  # noqa: E731 - 4% against 0.1%: crosses quickly
    _drive(d, bad, lambda s: s.groups[0].phase == "failed")
    failed = _test(d)
    assert failed is not None and failed.crossed
    d.op("resume")
    _drive(d, lambda s: (1, 1000, 10, 10000), lambda s: s.groups[0].phase == "baking" and _test(d) is not None
           and _test(d) is not failed)
    fresh = _test(d)
    assert fresh is not None and not fresh.crossed and fresh.updates <= 1
