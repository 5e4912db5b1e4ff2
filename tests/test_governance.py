"""Governance (issue 13 point 4): who may do what, quorum and separation, in the plan and in
the one function that says whether an operator action applies (`core.actions`), which the
reducer obeys too. Rules first (with hypothesis), then the reducer, then the plan's errors."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Driver, independent_plan
from hypothesis import given
from hypothesis import strategies as st

from core.actions import available, why_not
from core.events import OperatorAction, RolloutStarted
from core.governance import Governance, approval_complete, refusal
from core.planload import parse_plan
from core.problems import InputError

GOV: dict[str, Any] = {
    "groups": {"release": ["alice", "bob"], "oncall": ["carol"]},
    "may": {"approve": ["release"], "promote": ["release"], "rollback": ["oncall", "release"]},
}


def governed(gov: dict[str, Any] | None = None, **service: Any) -> Driver:
    doc = independent_plan(["ranker"], stages=[10, 100])
    doc["policy"]["approval"] = "each_stage"
    doc["governance"] = gov if gov is not None else GOV
    doc["services"]["ranker"].update(service)
    return Driver(doc)


def waiting_for_approval(d: Driver, starter: str = "alice@h1") -> Driver:
    d.feed(RolloutStarted(at=0.0, rollout="independent", operator=starter))
    d.run()
    assert d.group_phase("ranker") == "awaiting_approval"
    return d


def approve(d: Driver, who: str) -> None:
    d.feed(OperatorAction(at=d.now, action="approve", service="ranker", operator=who))


# --- the rules ---------------------------------------------------------------


def test_a_refusal_names_the_rule_and_the_person() -> None:
    gov = Governance.model_validate(GOV)
    assert refusal(gov, "approve", "carol@laptop") == "approve needs group release: carol is in oncall"
    assert refusal(gov, "rollback", "dave@laptop") == "rollback needs group oncall or release: dave is in no group"
    assert refusal(gov, "abort", "dave@x") == "abort needs group oncall or release: dave is in no group"
    assert refusal(gov, "approve", "bob@x") is None
    assert refusal(gov, "resume", "dave@x") is None  # not listed: anyone


def test_owners_may_approve_and_promote_their_service_only() -> None:
    gov = Governance.model_validate({**GOV, "groups": {**GOV["groups"], "ranking-team": ["erin"]}})
    assert refusal(gov, "approve", "erin@x", ["ranking-team"]) is None
    assert refusal(gov, "promote", "erin@x", ["ranking-team"]) is None
    assert refusal(gov, "rollback", "erin@x", ["ranking-team"]) is not None
    assert refusal(gov, "approve", "erin@x", []) == "approve needs group release: erin is in ranking-team"
    assert refusal(gov, "approve", "frank@x", ["frank"]) is None  # an owner may be a person


names = st.sampled_from(["alice", "bob", "carol", "dave", ""])


@given(
    groups=st.dictionaries(st.sampled_from(["g1", "g2", "g3"]), st.lists(names, max_size=3), max_size=3),
    who=names,
    verb=st.sampled_from(["approve", "promote", "rollback", "abort", "resume", "step"]),
)
def test_pause_is_never_restricted_and_listed_groups_decide(groups: dict[str, list[str]], who: str, verb: str) -> None:
    gov = Governance(groups=groups, may={v: sorted(groups) for v in ("approve", "promote", "rollback", "resume", "step")})
    assert refusal(gov, "pause", f"{who}@h") is None
    member = any(who in people for people in groups.values())
    assert (refusal(gov, verb, f"{who}@h") is None) == member


@given(votes=st.sets(names.filter(bool), max_size=4), quorum=st.integers(1, 3), separation=st.booleans(),
       starter=names.filter(bool))
def test_an_approval_needs_quorum_distinct_people_and_not_only_the_starter(
    votes: set[str], quorum: int, separation: bool, starter: str
) -> None:
    gov = Governance(quorum={"approve": quorum}, separation=separation)
    done = approval_complete(gov, votes, f"{starter}@host")
    assert done == (len(votes) >= quorum and not (separation and votes <= {starter}))


# --- the reducer and `available` obey it ----------------------------------------


def test_a_refused_approval_changes_nothing_and_says_why() -> None:
    d = waiting_for_approval(governed())
    assert "approve" not in available(d.state, "ranker", who="carol@h2")
    assert why_not(d.state, "approve", "ranker", who="carol@h2") == "approve needs group release: carol is in oncall"
    before = d.state
    approve(d, "carol@h2")
    assert d.state.groups == before.groups and d.commands == d.commands  # nothing moved
    assert d.group_phase("ranker") == "awaiting_approval"
    approve(d, "bob@h3")
    assert [c.percent for c in d.set_exposures()] == [10.0, 100.0]


def test_quorum_needs_distinct_people_and_the_same_person_twice_is_refused() -> None:
    d = waiting_for_approval(governed({**GOV, "quorum": {"approve": 2}}))
    approve(d, "alice@h1")
    assert d.group_phase("ranker") == "awaiting_approval"
    assert "approvals 1 of 2 (alice)" in d.state.reason
    assert why_not(d.state, "approve", "ranker", who="alice@other-host") == (
        "alice already approved ranker; approvals 1 of 2 (alice): approve needs 2 distinct people (quorum)"
    )
    approve(d, "alice@other-host")  # the same person from another machine still counts once
    assert d.group_phase("ranker") == "awaiting_approval"
    approve(d, "bob@h9")
    assert d.set_exposures()[-1].percent == 100.0
    # The next stage's approval starts from nobody.
    d.run()
    assert (d.state.groups[0].stage, d.group_phase("ranker")) == (1, "awaiting_approval")
    assert d.state.groups[0].votes == frozenset()


def test_separation_the_starter_cannot_approve_alone() -> None:
    d = waiting_for_approval(governed({**GOV, "separation": True}), starter="alice@h1")
    approve(d, "alice@h1")
    assert d.group_phase("ranker") == "awaiting_approval"
    assert "alice started the run and cannot approve it alone" in d.state.reason
    approve(d, "bob@h2")
    assert d.set_exposures()[-1].percent == 100.0


def test_separation_lets_anyone_else_approve_alone() -> None:
    d = waiting_for_approval(governed({**GOV, "separation": True}), starter="alice@h1")
    approve(d, "bob@h2")
    assert d.set_exposures()[-1].percent == 100.0


def test_wave_approvals_count_people_too() -> None:
    doc = independent_plan(["a", "b"], stages=[100])
    doc["services"]["b"]["depends_on"] = ["a"]
    doc["policy"]["approval"] = "each_wave"
    doc["governance"] = {**GOV, "quorum": {"approve": 2}}
    d = Driver(doc)
    d.feed(RolloutStarted(at=0.0, rollout="independent", operator="carol@h"))
    d.run()
    assert d.group_phase("b") == "awaiting_approval"
    d.feed(OperatorAction(at=d.now, action="approve", service="b", operator="alice@h"))
    assert d.group_phase("b") == "awaiting_approval" and d.state.wave_votes == {1: frozenset({"alice"})}
    d.feed(OperatorAction(at=d.now, action="approve", service="b", operator="bob@h"))
    assert d.state.wave_votes == {} and d.group_phase("b") == "progressing"


def test_rollback_and_abort_are_governed_but_pause_is_not() -> None:
    d = waiting_for_approval(governed())
    for verb, service in (("rollback", "ranker"), ("abort", None)):
        d.feed(OperatorAction(at=d.now, action=verb, service=service, operator="dave@h"))  # type: ignore[arg-type]
        assert d.state.phase == "running"
        assert why_not(d.state, verb, service, who="dave@h") == f"{verb} needs group oncall or release: dave is in no group"  # type: ignore[arg-type]
    d.feed(OperatorAction(at=d.now, action="pause", operator="dave@h"))
    assert d.state.phase == "paused"
    d.feed(OperatorAction(at=d.now, action="rollback", service="ranker", operator="carol@h"))
    assert d.state.phase == "rolling_back"


def test_owners_approve_their_service() -> None:
    d = waiting_for_approval(governed({**GOV, "groups": {**GOV["groups"], "ranking-team": ["erin"]}},
                                      owners=["ranking-team"], runbook="https://wiki.example/ranker"))
    assert why_not(d.state, "approve", "ranker", who="erin@h") is None
    approve(d, "erin@h")
    assert d.set_exposures()[-1].percent == 100.0


def test_without_governance_anyone_may_do_anything() -> None:
    d = waiting_for_approval(governed(gov={}))
    assert "approve" in available(d.state, "ranker", who="nobody@h")
    approve(d, "nobody@h")
    assert d.set_exposures()[-1].percent == 100.0


# --- the plan's errors ---------------------------------------------------------

PLAN = """\
rollout: r
governance:
  groups: {release: [alice, bob], oncall: [carol]}
  may:
    approve: [relase]
    pause: [oncall]
    abort: [oncall]
  quorum: {approve: 3, promote: 2}
services:
  ranker:
    from: {version: "1"}
    to: {version: "2"}
    owners: [ranking-team]
    runbook: https://wiki.example/ranker-rollback
"""


def test_governance_mistakes_are_located_one_line_each() -> None:
    with pytest.raises(InputError) as err:
        parse_plan(PLAN, "plan.yaml")
    assert [p.format() for p in err.value.problems] == [
        "plan.yaml:5:15: governance.may.approve[0]: unknown group 'relase'; known groups: oncall, release",
        "plan.yaml:6:5: governance.may.pause: pause is never restricted: anyone may stop exposure rising",
        "plan.yaml:7:5: governance.may.abort: abort is governed by may.rollback (rollback and abort)",
        "plan.yaml:8:24: governance.quorum.promote: quorum applies to approve only",
    ]


def test_a_quorum_nobody_can_reach_is_an_error() -> None:
    text = PLAN.replace("[relase]", "[release]").replace("    pause: [oncall]\n    abort: [oncall]\n", "")
    text = text.replace(", promote: 2", "").replace("    owners: [ranking-team]\n", "")
    with pytest.raises(InputError) as err:
        parse_plan(text, "plan.yaml")
    assert [p.format() for p in err.value.problems] == [
        "plan.yaml:6:21: governance.quorum.approve: an approval needs 3 distinct people but only 2 may approve "
        "(groups release)",
    ]


def test_the_issues_example_is_valid() -> None:
    text = PLAN.replace("[relase]", "[release]").replace("    pause: [oncall]\n    abort: [oncall]\n", "")
    text = text.replace("{approve: 3, promote: 2}", "{approve: 2}")
    plan, _ = parse_plan(text, "plan.yaml")
    assert plan.governance is not None and plan.governance.quorum == {"approve": 2}
    assert plan.services["ranker"].runbook == "https://wiki.example/ranker-rollback"
    assert plan.services["ranker"].owners == ["ranking-team"]


def test_a_request_that_approves_short_of_the_quorum_says_so() -> None:
    from tui.session.steering import applied_text

    d = waiting_for_approval(governed({**GOV, "quorum": {"approve": 2}}))
    before = d.state
    event = OperatorAction(at=d.now, action="approve", service="ranker", operator="alice@h1")
    d.feed(event)
    assert applied_text(before, d.state, event, "run-1") == (
        "approval of ranker recorded, not yet enough: approvals 1 of 2 (alice): approve needs 2 distinct people "
        "(quorum) (by alice@h1)"
    )
    before, event = d.state, OperatorAction(at=d.now, action="approve", service="ranker", operator="bob@h2")
    d.feed(event)
    assert applied_text(before, d.state, event, "run-1") == "approved ranker (by bob@h2)"
