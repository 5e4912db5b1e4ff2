"""The console's detail pane shows a service's runbook (issue 13 point 6)."""

from __future__ import annotations

from core import compile_plan, initial_state, parse_plan
from tui.console.widgets.detail import summary

PLAN = """\
rollout: r
services:
  ranker:
    from: {version: "1"}
    to: {version: "2"}
    runbook: https://wiki.example/ranker-rollback
  api: {from: {version: "1"}, to: {version: "2"}}
"""


def test_the_detail_pane_shows_the_runbook_link_of_a_service_that_has_one() -> None:
    plan, source = parse_plan(PLAN, "plan.yaml")
    state = initial_state(plan, compile_plan(plan, source))
    assert "runbook: https://wiki.example/ranker-rollback" in summary(state, "ranker").plain
    assert "runbook" not in summary(state, "api").plain
