"""The console says what is true (issue 16 point 2): an ended rollout's header and clock,
where a rolled-back service was, why a gate shows nothing, what a refused key runs into,
and the cause a stopped rollout leads its detail pane with.

Each test checks the words against the engine's own state, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from console_harness import at_minute, console, prerun, settle, wait_for
from console_plans import RECSYS, REGRESSION
from textual.widgets import Static

from core import initial_state
from core.clock import HeldClock
from core.state import RolloutState
from tui.console.app import InterlockApp
from tui.console.widgets.header import clock_label
from tui.console.widgets.why import not_measuring
from tui.session import runtime

pytestmark = pytest.mark.anyio


def held(sessions: list[runtime.Session], *args: object, **kwargs: object) -> runtime.Session:
    session = prerun(*args, **kwargs)  # type: ignore[arg-type]
    sessions.append(session)
    return session


def pane(app: InterlockApp, part: str) -> str:
    return str(app.console_screen.detail.query_one(f"#detail-{part}", Static).visual.plain)  # type: ignore[union-attr]


def log_lines(app: InterlockApp) -> list[str]:
    return app.console_screen.log_view.plain()


async def test_an_ended_rollout_says_ended_and_its_clock_stops(tmp_path, sessions) -> None:
    session = held(sessions, REGRESSION, tmp_path)
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        state = session.engine.state
        assert state.finished and state.phase == "rolled_back"
        assert app.engine_running, "the engine lingers: a late rollback is still served"
        header = app.console_screen.header
        text = header.render().plain
        assert "□ ended" in text and "◉ driving" not in text
        ended_at = clock_label(state.at - (state.started_at or 0.0))
        assert ended_at in text
        session.clock.now = lambda: state.at + 3600.0  # type: ignore[method-assign]  # an hour later
        app._update_header()
        assert ended_at in header.render().plain, "the clock of an ended rollout does not run on"


async def test_after_a_rollback_the_pane_leads_with_the_cause_and_the_cascade(tmp_path, sessions) -> None:
    session = held(sessions, REGRESSION, tmp_path)
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")
        await settle(pilot)
        state = session.engine.state
        assert app.selected == "ranker" and state.services["ranker"].exposure == 0
        detail = app.console_screen.detail
        assert detail.children[0].id == "detail-cause" and detail.children[0].display
        lead = pane(app, "cause").splitlines()
        assert lead[0] == "↩ rolled back: gate errors on ranker failed (2 failures > failure_limit 1)"
        assert lead[1].strip() == "error_rate 5% > max 1% ✗"
        assert state.reason.endswith(lead[1].strip()), "the words are the reducer's own"
        assert lead[2].strip() == "then: embedder + ranker ↩ rolled back"
        summary = pane(app, "summary").splitlines()
        assert summary[1] == "rolled back from stage 1/5 (1%) · at 0%"
        assert state.reason not in pane(app, "summary"), "said once, at the top"
        gates = pane(app, "gates")
        assert gates.count("— stopped: rolled back") == 3
        await pilot.press("k", "k")  # features was never rolled back: the cause still leads
        await settle(pilot)
        assert pane(app, "cause").startswith("↩ rolled back: gate errors on ranker failed")
        assert "promoted" in pane(app, "summary").splitlines()[0]


async def test_a_pause_says_why_gates_stand_still(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(12))
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: session.engine.state.phase == "paused")
        await settle(pilot)
        assert pane(app, "cause").splitlines() == [
            "‖ paused: paused by ops@console-test",
            "  nothing rolled back: exposure holds where it is (space resumes)",
        ]
        gates = pane(app, "gates")
        assert "‖ paused" in gates and "◌ running" not in gates  # features: its runs wait
        await pilot.press("j")  # embedder has not started
        await settle(pilot)
        assert pane(app, "gates").count("— waiting for its first stage") == len(app.history.gates("embedder"))


async def test_a_new_stage_says_no_data_yet_and_when_the_first_measurement_comes(tmp_path, sessions) -> None:
    def fresh_stage(state: RolloutState) -> bool:
        group = state.groups[0]
        return group.phase == "baking" and group.stage == 1 and any(not run.samples for run in group.gates)

    session = held(sessions, RECSYS, tmp_path, fresh_stage)
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        run = next(run for run in session.engine.state.groups[0].gates if not run.samples)
        assert run.next_at is not None
        assert "no data yet: first measurement at T+" in pane(app, "gates")


def test_every_reason_a_gate_is_not_measuring_has_words() -> None:
    plan, graph = runtime.compile_text(RECSYS.read_text(encoding="utf-8"), str(RECSYS))
    state = initial_state(plan, graph)
    group = state.groups[0]

    def with_group(**changes: object) -> RolloutState:
        groups = list(state.groups)
        groups[0] = replace(group, **changes)  # type: ignore[arg-type]
        services = dict(state.services)
        services["features"] = replace(services["features"], exposure=5.0, target=25.0)
        return replace(state, phase="running", groups=tuple(groups), services=services)

    assert not_measuring(state, "features") == "waiting for its first stage"
    assert not_measuring(with_group(phase="progressing", stage=2), "features") == (
        "waiting for the stage: traffic 5% → 25%"
    )
    assert not_measuring(with_group(phase="awaiting_approval", stage=2), "features").startswith("the stage passed")
    assert not_measuring(with_group(phase="promoted", stage=4), "features") == "done: promoted"
    paused = replace(with_group(phase="progressing", stage=2), phase="paused")
    assert not_measuring(paused, "features").startswith("the rollout is paused")


async def test_a_step_under_way_says_so_when_s_is_pressed_again(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(12))
    engine, clock = session.engine, session.clock
    assert isinstance(clock, HeldClock)
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: engine.state.phase == "paused")
        await pilot.press("s")  # the clock is held: the step's one transition cannot come yet
        await wait_for(pilot, lambda: engine.state.stepping)
        await settle(pilot)
        await pilot.press("s")
        await pilot.pause()
        assert engine.state.phase == "running" and engine.state.stepping
        assert log_lines(app)[-1].endswith(
            "s: step does not apply now: a step is under way: one transition, then the rollout pauses again by itself"
        )


def test_the_summary_keeps_a_runbook_and_a_warning_within_its_five_lines() -> None:
    from tui.console.widgets.detail import SUMMARY_HEIGHT, summary

    text = RECSYS.read_text(encoding="utf-8").replace(
        "  ranker:\n", "  ranker:\n    runbook: https://wiki.example/ranker-rollback\n", 1
    )
    plan, graph = runtime.compile_text(text, str(RECSYS))
    state = initial_state(plan, graph)
    index = state.group_of("ranker")
    groups = list(state.groups)
    groups[index] = replace(groups[index], reason="stage approval")
    lines = summary(replace(state, groups=tuple(groups)), "ranker").plain.splitlines()
    assert len(lines) == SUMMARY_HEIGHT
    assert lines[2] == "lockstep with embedder · after features · blast radius: api"
    assert lines[3:] == ["runbook: https://wiki.example/ranker-rollback", "stage approval"]
