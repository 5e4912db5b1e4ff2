"""Waiting on no data is bounded (issue 11): with `no_data: ignore`, measurements
without data are ignored only for `no_data_timeout` (default three intervals); after
that the next one counts as inconclusive, so a `[$window]` too short for the data
pauses the rollout instead of waiting forever."""

from __future__ import annotations

from typing import Any

from helpers import Driver, independent_plan

from core.gates import GateRun, record
from core.plan import Gate


def gate(**fields: Any) -> Gate:
    return Gate.model_validate({"metric": "error_rate", "max": 0.01, "no_data": "ignore", "interval": "30s", **fields})


def measure(g: Gate, values: list[float | None]) -> list[GateRun]:
    run = GateRun(service="s", gate="g", next_at=30.0)
    out = []
    for i, value in enumerate(values, start=1):
        run = record(g, run, 30.0 * i, value, None, None)
        out.append(run)
    return out


def test_no_data_is_ignored_for_three_intervals_by_default_then_inconclusive() -> None:
    runs = measure(gate(), [None, None, None])
    assert [r.phase for r in runs] == ["running", "running", "inconclusive"]
    assert [r.count for r in runs] == [0, 0, 1]
    assert runs[-1].samples[-1].phase == "inconclusive"


def test_the_timeout_is_a_gate_field() -> None:
    assert [r.phase for r in measure(gate(no_data_timeout="2m"), [None] * 4)] == ["running"] * 3 + ["inconclusive"]


def test_data_in_between_starts_the_wait_afresh() -> None:
    runs = measure(gate(), [None, None, 0.001, None, None])
    assert [r.phase for r in runs] == ["running"] * 5
    assert runs[-1].no_data_since == 90.0


def test_a_rollout_waiting_on_no_data_pauses_instead_of_waiting_forever() -> None:
    doc = independent_plan("a", stages=[50, 100], bake=3600)
    doc["gates"] = {"errors": {"metric": "error_rate", "max": 0.01, "no_data": "ignore", "interval": 30}}
    doc["defaults"]["gates"] = ["errors"]
    d = Driver(doc)
    d.start()
    state = d.run(metric=lambda cmd, state: None, until=lambda s: s.phase == "paused")
    assert state.phase == "paused" and "inconclusive" in state.reason
    assert d.now == 90.0
