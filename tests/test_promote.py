"""Break-glass promotion (issue 13 point 3): `promote` ends a service's bake and takes its
next stage now, `promote_full` takes it to 100% now; both only while the rollout runs,
both need a reason, and both go through `core.actions.refused` like every request."""

from __future__ import annotations

from helpers import Driver, design_plan

from core.actions import available, refused, why_not
from core.events import OperatorAction


def _baking_features() -> Driver:
    d = Driver(design_plan(stages=[10, 50, 100], bake=600.0))
    d.start()
    d.run(until=lambda s: s.groups[s.group_of("features")].phase == "baking")
    assert d.stage_of("features") == 0 and d.exposures()["features"] == 10.0
    return d


def _promote(d: Driver, action: str, reason: str = "incident 42: the old version leaks memory") -> None:
    d.feed(OperatorAction(at=d.now, action=action, service="features", operator="alice@h", reason=reason))  # type: ignore[arg-type]


def test_promote_ends_the_bake_and_takes_the_next_stage_at_once() -> None:
    d = _baking_features()
    baked_until = d.state.groups[d.state.group_of("features")].bake_until
    assert baked_until is not None and d.now < baked_until
    _promote(d, "promote")
    d.settle()
    assert d.stage_of("features") == 1 and d.exposures()["features"] == 50.0
    assert d.group_phase("features") == "baking"  # a fresh bake at 50%, its gates afresh
    assert d.state.groups[d.state.group_of("features")].bake_until == d.now + 600.0
    assert d.exposures()["embedder"] == 0.0  # dependents still wait for features to be promoted


def test_promote_full_goes_to_100_percent_now_and_then_promoted() -> None:
    d = _baking_features()
    _promote(d, "promote_full")
    d.settle()
    assert d.stage_of("features") == 2 and d.exposures()["features"] == 100.0
    _promote(d, "promote_full")  # already at its last stage: promoted, its bake ends
    assert d.group_phase("features") == "promoted"


def test_promotion_is_refused_while_paused_and_without_a_reason() -> None:
    d = _baking_features()
    no_reason = OperatorAction(at=d.now, action="promote", service="features", operator="alice@h")
    assert refused(d.state, no_reason) == (
        "promote needs a reason (--reason TEXT): break-glass is journaled with who and why")
    d.op("pause")
    assert "promote" not in available(d.state, "features")
    assert why_not(d.state, "promote_full", "features") == (
        "the rollout is paused: resume first (exposure never rises while paused)")
    before = d.exposures()
    _promote(d, "promote_full")  # the reducer ignores what does not apply, as for every verb
    assert d.exposures() == before and d.stage_of("features") == 0
    assert why_not(d.state, "promote", "ranker") is not None
    assert refused(d.state, OperatorAction(at=d.now, action="promote", operator="a", reason="x")) == (
        "promote needs a service")


def test_a_service_that_has_not_started_cannot_be_promoted() -> None:
    d = _baking_features()
    assert why_not(d.state, "promote", "ranker") == (
        "ranker has not started its first stage; only a service at a stage "
        "(baking, analyzing, awaiting approval) can be promoted")
