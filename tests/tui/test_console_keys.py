"""Keys pressed in the console, judged by what the engine and the journal did.

Most tests open the console on a rollout held at a chosen moment (a virtual
clock the test controls, see `console_harness`), so a key always lands on
the same state. The pause test uses a fast real clock instead: pausing must
hold while real time passes.
"""

from __future__ import annotations

import pytest
from console_harness import (
    OPERATOR,
    SIZE,
    HeldClock,
    GatedFlags,
    at_minute,
    console,
    operator_actions,
    prerun,
    settle,
    wait_for,
)
from console_plans import RECSYS, REGRESSION, approval_plan, write

from core.events import ExposureApplied, OperatorAction
from core.rollback import rollback_cascade
from tui.session import runtime
from tui.console.screens.confirm import AbortScreen, QuitScreen, RollbackScreen
from tui.console.screens.console import ConsoleScreen
from tui.console.widgets.eventlog import EventLog

pytestmark = pytest.mark.anyio


def held(sessions: list[runtime.Session], *args: object, **kwargs: object) -> runtime.Session:
    session = prerun(*args, **kwargs)  # type: ignore[arg-type]
    sessions.append(session)
    return session


def log_text(app: object) -> list[str]:
    return app.query_one(EventLog).plain()  # type: ignore[attr-defined]


async def test_pause_stops_every_exposure_increase(tmp_path, sessions) -> None:
    session = runtime.start_run(
        RECSYS, journal_path=tmp_path / "journal.db", clock="real", speed=3000.0, interactive=True
    )
    sessions.append(session)
    engine = session.engine
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: engine.state.services["features"].exposure >= 5)
        await pilot.press("space")
        await wait_for(pilot, lambda: engine.state.phase == "paused")
        paused = engine.state
        await pilot.pause(0.5)  # 25 simulated minutes at ×3000: five bakes' worth
        assert session.clock.now() - paused.at > 20 * 60
        later = engine.state
        assert later.phase == "paused"
        for name, svc in later.services.items():
            assert svc.target <= paused.services[name].target, name
        records = list(session.journal.records(session.info.run_id))
        pause_at = next(
            i for i, r in enumerate(records) if isinstance(r.event, OperatorAction) and r.event.action == "pause"
        )
        for record in records[pause_at + 1 :]:
            if isinstance(record.event, ExposureApplied):
                assert record.event.percent <= paused.services[record.event.service].target

        await pilot.press("space")  # resume: exposure rises again, so the pause was what held it
        await wait_for(
            pilot, lambda: any(s.target > paused.services[n].target for n, s in engine.state.services.items())
        )
        engine.stop()
        await wait_for(pilot, lambda: not app.engine_running)


async def test_step_advances_exactly_one_transition(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(12))
    engine, clock = session.engine, session.clock
    assert isinstance(clock, HeldClock)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: engine.state.phase == "paused")
        before = engine.state.transitions
        assert app.screen.check_action("step", ()) is True
        clock.release()  # time may pass now; only the step lets anything move
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: engine.state.phase == "paused" and not engine.state.stepping
            and engine.state.transitions > before,
        )
        await settle(pilot)
        assert engine.state.transitions == before + 1
        assert engine.state.reason == "stepped one transition"
        lines = log_text(app)
        assert any("⏵ step requested by " + OPERATOR in line for line in lines)


async def test_rollback_confirm_rolls_the_cascade_back_latest_first(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(33))
    engine = session.engine
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.selected == "features"
        expected = rollback_cascade(engine.state, "features")
        assert expected == [("embedder", "ranker"), ("features",)]
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackScreen))
        modal = app.screen
        assert isinstance(modal, RollbackScreen)
        assert modal.groups == expected
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: engine.state.phase == "rolled_back")

    zeros = [
        r.event.service for r in session.journal.records(session.info.run_id)
        if isinstance(r.event, ExposureApplied) and r.event.percent == 0
    ]
    assert sorted(zeros[:2]) == ["embedder", "ranker"] and zeros[2:] == ["features"]
    final = engine.state
    for name in ("embedder", "ranker", "features"):
        assert final.services[name].exposure == 0 and final.services[name].phase == "rolled_back"
    assert final.services["api"].exposure == 0 and final.services["api"].phase == "waiting"
    (action,) = operator_actions(session)
    assert (action.action, action.service, action.operator) == ("rollback", "features", OPERATOR)


async def test_rollback_cancel_changes_nothing(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(33))
    engine = session.engine
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = engine.state
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackScreen))
        await pilot.press("enter")  # Cancel has the focus
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        await settle(pilot)
        assert engine.state.phase == "running"
        assert engine.state.services == before.services
        assert engine.state.groups == before.groups
        assert any("rollback of features cancelled" in line for line in log_text(app))
    assert operator_actions(session) == []


async def test_greyed_actions_do_nothing_and_say_why(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(12))
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("approve", ()) is None  # nothing awaits approval
        assert screen.check_action("step", ()) is None  # running, not paused
        assert screen.check_action("faster", ()) is None  # a virtual clock has no speed
        assert screen.active_bindings["a"].enabled is False
        await pilot.press("a", "s", "plus")
        await settle(pilot)
        lines = log_text(app)
        assert any("a: approve does not apply now: features does not await approval" in line for line in lines)
        assert any("s: step does not apply now: step works while paused" in line for line in lines)
        assert any("+: faster does not apply now: the clock is virtual" in line for line in lines)
    assert operator_actions(session) == []


async def test_approve_lets_the_waiting_stage_go_on(tmp_path, sessions) -> None:
    plan = write(tmp_path, "approval.yaml", approval_plan())
    session = held(sessions, plan, tmp_path, lambda s: s.groups[0].phase == "awaiting_approval")
    engine, clock = session.engine, session.clock
    assert isinstance(clock, HeldClock)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.check_action("approve", ()) is True
        await pilot.press("a")
        clock.release()
        await wait_for(pilot, lambda: engine.state.groups[0].stage == 1)
        await settle(pilot)
    (action,) = operator_actions(session)
    assert (action.action, action.service) == ("approve", "features")


async def test_abort_takes_every_moved_service_back(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(33))
    engine = session.engine
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: isinstance(app.screen, AbortScreen))
        assert app.screen.groups == [("embedder", "ranker"), ("features",)]  # type: ignore[attr-defined]
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: engine.state.phase == "aborted")
        await settle(pilot)
        assert all(svc.exposure == 0 for svc in engine.state.services.values())
        assert app.screen.check_action("pause", ()) is None  # the rollout ended: nothing applies


async def test_quit_asks_then_stops_and_the_rollout_resumes_later(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(12))
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        assert app.focused is not None and app.focused.id == "stay"
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        assert app.engine_running
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_value is not None and app.return_value.phase == "running"
    assert operator_actions(session) == []
    assert session.engine.lease is not None
    session.engine.lease.release()  # as the console's process would on exit
    resumed = runtime.resume_run(journal_path=tmp_path / "journal.db", run_id=session.info.run_id, interactive=True)
    sessions.append(resumed)
    assert resumed.engine.state.services == app.return_value.services
    assert resumed.backlog is not None  # gathered by resume's own replay, for the console
    again = console(resumed)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: again.state.at >= app.return_value.at)
        assert resumed.backlog.drain() == ([], [])  # the console took it
        assert again.history.points("features", "errors")  # measured before the quit
        assert log_text(again)
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not again.is_running)


async def test_speed_keys_climb_a_fixed_ladder_and_come_back(tmp_path, sessions) -> None:
    session = runtime.start_run(
        RECSYS, journal_path=tmp_path / "journal.db", clock="real", speed=60.0, interactive=True
    )
    sessions.append(session)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.state.phase == "running")
        await pilot.press("plus")
        assert session.clock.speed == 120.0
        await pilot.press("minus", "minus")
        assert session.clock.speed == 30.0
        await pilot.pause()
        assert "×30" in str(app.query_one("#header").render())
        await pilot.press("plus")
        assert session.clock.speed == 60.0  # `-` then `+` returns to where it was
        await pilot.press(*["minus"] * 8)
        assert session.clock.speed == 1.0
        await pilot.press(*["plus"] * 6)
        assert session.clock.speed == 60.0  # from the floor, back up to ×60 (not ×64)
        session.engine.stop()
        await wait_for(pilot, lambda: not app.engine_running)


async def test_keys_are_acknowledged_while_an_adapter_hangs(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(33), gated_flags=True)
    engine = session.engine
    flags = engine.flags
    assert isinstance(flags, GatedFlags)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        flags.hold_zero = True  # every flag set to 0% now hangs until released
        await pilot.press("r", "tab", "enter")
        await wait_for(pilot, lambda: engine.state.phase == "rolling_back" and bool(engine.state.inflight))
        await pilot.press("ctrl+x", "tab", "enter")
        await wait_for(pilot, lambda: engine.state.rollback_final == "aborted")
        lines = log_text(app)
        ack = next(i for i, line in enumerate(lines) if "■ abort requested by" in line)
        applied = next(i for i, line in enumerate(lines) if "operator abort by" in line)
        assert ack < applied
        assert engine.state.inflight  # the adapter still hangs: the engine never waited for it
        flags.release()
        await wait_for(pilot, lambda: engine.state.phase == "aborted")


async def test_modal_follows_the_rollout_while_open(tmp_path, sessions) -> None:
    session = held(sessions, RECSYS, tmp_path, at_minute(12))
    clock = session.clock
    assert isinstance(clock, HeldClock)
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackScreen))
        modal = app.screen
        assert isinstance(modal, RollbackScreen)
        assert modal.groups == [("features",)]
        clock.release(30 * 60)  # features finishes, embedder+ranker start, the dialog still open
        await wait_for(pilot, lambda: modal.groups == [("embedder", "ranker"), ("features",)])
        assert app.state.services["embedder"].target > 0  # the screen behind kept updating
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConsoleScreen))
    assert operator_actions(session) == []


async def test_rollback_after_a_rolled_back_rollout_takes_back_what_still_moved(tmp_path, sessions) -> None:
    """`core.actions.available` is the console's only rulebook: after the ranker's gate
    rolled embedder+ranker back, features still serves its traffic, and `r` on it applies
    (an earlier console rule refused every rollback once the rollout had ended rolled back)."""
    session = held(sessions, REGRESSION, tmp_path)
    engine = session.engine
    app = console(session)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert engine.state.phase == "rolled_back"
        assert engine.state.services["features"].exposure > 0
        assert app.selected == "features"
        assert app.screen.check_action("rollback", ()) is True
        await pilot.press("j", "j")
        await settle(pilot)
        assert app.selected == "ranker"
        assert app.screen.check_action("rollback", ()) is None
        await pilot.press("r")
        await settle(pilot)
        assert any("r: rollback does not apply now: nothing to roll back: ranker" in line for line in log_text(app))
        await pilot.press("k", "k")
        await settle(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackScreen))
        assert app.screen.groups == [("features",)]  # type: ignore[attr-defined]
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: engine.state.services["features"].exposure == 0 and engine.state.finished)
    assert engine.state.phase == "rolled_back"
    (action,) = operator_actions(session)
    assert (action.action, action.service) == ("rollback", "features")
