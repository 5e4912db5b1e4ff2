"""Snapshots of the console's canonical screens (top-level `snapshots/`).

Every screen is reached deterministically: a virtual clock held by the test,
seed 0, time frozen at a named moment of the rollout, and an operator
identity fixed by the test. The header shows rollout time only, so nothing on
screen depends on the wall clock. Update with `--snapshot-update` and look
at every changed SVG before accepting it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from console_harness import (
    OPERATOR,
    SIZE,
    GatedFlags,
    at_minute,
    console,
    prerun,
    settle,
    wait_for,
)
from console_plans import PREFLIGHT, RECSYS, REGRESSION, approval_plan, generated_plan, wide_names_plan, write

from tui.session import runtime
from tui.console.app import InterlockApp
from tui.session.watch import JournalFollower
from tui.console.widgets.detail import GateChart


def _session(sessions: list[runtime.Session], plan: Path, tmp: Path, *args: object, **kwargs: object) -> runtime.Session:
    session = prerun(plan, tmp, *args, **kwargs)  # type: ignore[arg-type]
    sessions.append(session)
    return session


def test_running(snap_compare, tmp_path, sessions) -> None:
    """recsys at T+33m: features promoted, embedder and ranker baking in lockstep; ranker selected."""
    session = _session(sessions, RECSYS, tmp_path, at_minute(33))
    assert snap_compare(console(session), press=["j", "j"], terminal_size=SIZE, run_before=settle)


FIT_SIZES = [(80, 24), (100, 30), (120, 40), (160, 48)]
"""Terminal sizes the console must fit (issue 16): a laptop over SSH up to a wide screen."""


@pytest.mark.parametrize("size", FIT_SIZES, ids=[f"{w}x{h}" for w, h in FIT_SIZES])
def test_fits(snap_compare, tmp_path, sessions, size) -> None:
    """recsys at T+33m, ranker selected, at each size: every row keeps glyph, word, name,
    versions and percent; the sparkline, then the bake bar, give way; under 120 columns
    the detail pane is hidden until `d`."""
    session = _session(sessions, RECSYS, tmp_path, at_minute(33))
    assert snap_compare(console(session), press=["j", "j"], terminal_size=size, run_before=settle)


def test_narrow_pane_and_wide_names(snap_compare, tmp_path, sessions) -> None:
    """80×24 with `d`: the pane beside rows cut to their essentials; a 68-cell name and a
    CJK name ellipsised and padded by cell width, an emoji version in line."""
    plan = write(tmp_path, "wide.yaml", wide_names_plan())
    session = _session(sessions, plan, tmp_path, at_minute(5))
    assert snap_compare(console(session), press=["j", "d"], terminal_size=(80, 24), run_before=settle)


def test_shadowing(snap_compare, tmp_path, sessions) -> None:
    """recsys-preflight at T+30m: features promoted, embedder and ranker shadowing at 0% (copies
    of live requests mirrored to them), their shadow gates measuring; ranker selected."""
    session = _session(sessions, PREFLIGHT, tmp_path, at_minute(30))
    assert snap_compare(console(session), press=["j", "j"], terminal_size=SIZE, run_before=settle)


def test_paused(snap_compare, tmp_path, sessions) -> None:
    """Paused by the operator at T+12m, mid-bake: the footer offers resume and step."""
    session = _session(sessions, RECSYS, tmp_path, at_minute(12))

    async def pause(pilot) -> None:
        await settle(pilot)
        await pilot.press("space")
        await wait_for(pilot, lambda: pilot.app.state.phase == "paused")
        await settle(pilot)

    assert snap_compare(console(session), terminal_size=SIZE, run_before=pause)


def test_awaiting_approval(snap_compare, tmp_path, sessions) -> None:
    """approval: each_stage — features passed its first stage and waits; `a` is live."""
    plan = write(tmp_path, "approval.yaml", approval_plan())
    session = _session(sessions, plan, tmp_path, lambda s: any(g.phase == "awaiting_approval" for g in s.groups))
    assert snap_compare(console(session), terminal_size=SIZE, run_before=settle)


def test_rollback_modal(snap_compare, tmp_path, sessions) -> None:
    """`r` on features at T+33m: the cascade lists embedder+ranker, then features; Cancel focused."""
    session = _session(sessions, RECSYS, tmp_path, at_minute(33))
    assert snap_compare(console(session), press=["r"], terminal_size=SIZE, run_before=settle)


def test_rolling_back(snap_compare, tmp_path, sessions) -> None:
    """A confirmed rollback of features, caught with the first 0% still on its way."""
    session = _session(sessions, RECSYS, tmp_path, at_minute(33), gated_flags=True)
    flags = session.engine.flags
    assert isinstance(flags, GatedFlags)

    async def roll_back(pilot) -> None:
        await settle(pilot)
        flags.hold_zero = True
        await pilot.press("r")
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: pilot.app.state.phase == "rolling_back" and bool(pilot.app.state.inflight))
        await pilot.pause(0.05)

    assert snap_compare(console(session), terminal_size=SIZE, run_before=roll_back)


def test_rolled_back(snap_compare, tmp_path, sessions) -> None:
    """recsys-regression: the ranker's errors gate fails, embedder+ranker go back to 0%."""
    session = _session(sessions, REGRESSION, tmp_path)
    assert snap_compare(console(session), press=["j", "j"], terminal_size=SIZE, run_before=settle)


def test_help(snap_compare, tmp_path, sessions) -> None:
    """The help screen: every key and every status glyph, word and colour."""
    session = _session(sessions, RECSYS, tmp_path, at_minute(0))
    assert snap_compare(console(session), press=["question_mark"], terminal_size=SIZE, run_before=settle)


def test_thirty_services(snap_compare, tmp_path, sessions) -> None:
    """A generated 30-service plan at T+20m: lanes, lockstep brackets, several waves at once."""
    plan = write(tmp_path, "thirty.yaml", generated_plan(30))
    session = _session(sessions, plan, tmp_path, at_minute(20))
    assert snap_compare(console(session), terminal_size=SIZE, run_before=settle)


def test_filtered(snap_compare, tmp_path, sessions) -> None:
    """`/` then `rank`: only matching services, lanes hidden (they would lie)."""
    plan = write(tmp_path, "thirty.yaml", generated_plan(30))
    session = _session(sessions, plan, tmp_path, at_minute(20))
    assert snap_compare(
        console(session), press=["slash", *"rank", "enter"], terminal_size=SIZE, run_before=settle
    )


def test_watching(snap_compare, tmp_path, sessions) -> None:
    """`interlock watch` on the finished regression run: same screen, "watching", every action greyed."""
    _session(sessions, REGRESSION, tmp_path)
    follower = JournalFollower.open(tmp_path / "journal.db")
    app = InterlockApp(follower=follower, operator=OPERATOR)

    async def caught_up(pilot) -> None:
        await wait_for(pilot, lambda: app.state.phase == "rolled_back" and not app._pending)
        await wait_for(pilot, lambda: not app.query_one(GateChart).pending)
        await pilot.pause()

    try:
        assert snap_compare(app, press=["j", "j"], terminal_size=SIZE, run_before=caught_up)
    finally:
        follower.close()
