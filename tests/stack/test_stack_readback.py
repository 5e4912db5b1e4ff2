"""Hand edits on the real stack (issue 11, points 1 and 2): Unleash and HAProxy changed
behind interlock's back are noticed.

- During a stage, the periodic read-back (`policy.readback: 1s` here) holds the rollout
  on a raised or a lowered value, on a flag and on a route, naming the target, the
  expected and the found value in the journal, the state and `interlock log`.
- Across a resume, each target is compared on its own: a route raised while its flag
  agrees (what `min(flag, route)` let through) holds, and so does a flag edit.
- A fresh run refuses a world not at 0% before its first command.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapters.haproxy import HAProxyRouter
from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from adapters.unleash import UnleashFlags
from stackrun import (
    COHORTS, cli, cli_env, events, fast_plan, read_back, reset, resume_until_held, run_engine, shared_stack,
    stop_shared, wait_state,
)


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def readback_plan(stack: Stack, folder: Path) -> Path:
    def edit(doc: dict[str, Any]) -> None:
        doc.setdefault("policy", {})["readback"] = "1s"

    return fast_plan(stack, folder, bake="8s", edit=edit)


async def hand_edit(stack: Stack, target: str, percent: float, owner: str) -> None:
    """What a person does in Unleash's UI or on HAProxy's admin socket: change the value."""
    kind, name = target.split(":")
    if kind == "route":
        await HAProxyRouter(stack.urls["haproxy_admin"], timeout=3.0).set_weight(name, percent)
        return
    flags = UnleashFlags(stack.urls["unleash"], token=stack.token, owner=owner, timeout=3.0)
    try:
        await flags.set_rollout(name, percent, COHORTS[name])
    finally:
        await flags.aclose()


def exposed_at_first_stage(state: Any, service: str) -> bool:
    group = state.groups[state.group_of(service)]
    return group.phase == "baking" and group.stage == 0 and state.services[service].exposure == 50.0


EDITS = [
    ("flag:features-v32", "features", 80.0),  # raised
    ("flag:features-v32", "features", 10.0),  # lowered
    ("route:embedder", "embedder", 70.0),     # raised, the flag untouched
    ("route:embedder", "embedder", 20.0),     # lowered
]


@pytest.mark.parametrize(("target", "service", "percent"), EDITS)
def test_a_hand_edit_during_a_stage_holds_the_rollout(
    real_stack: Stack, tmp_path: Path, target: str, service: str, percent: float
) -> None:
    reset(real_stack)
    plan, journal = readback_plan(real_stack, tmp_path), tmp_path / "journal.db"
    seen: dict[str, Any] = {}

    async def during(session: Any) -> None:
        await wait_state(session, lambda s: exposed_at_first_stage(s, service), timeout=90)
        await hand_edit(real_stack, target, percent, session.info.run_id)
        seen["edited"] = time.time()

    # A headless driver stops at a hold that waits for the operator (exit 3 from the CLI).
    state, recorder = run_engine(plan, journal, real_stack, during=during, timeout=150)
    assert state.effective_phase == "held"
    held_at = min(t for t, s in recorder.states if s.hold is not None)
    assert held_at - seen["edited"] < 5, "noticed within a few read-back intervals"
    assert (target, 50.0, percent) in state.hold.differences
    name = target.replace(":", " ")
    assert f"state differs from the journal: {name} reads {percent:g}% (journal 50%)" in state.hold.reason
    reads = [e for e in events(journal) if e["kind"] == "exposure_read" and e["targets"].get(target) == percent]
    assert reads and reads[0]["cmd_id"] != 0
    assert read_back(real_stack)[target] == percent, "interlock did not fight the person: it holds"
    log = cli("log", "--journal", str(journal), env=cli_env(real_stack))
    assert f"{name} reads {percent:g}% (journal 50%)" in log.stdout


ACROSS = [
    ("route:embedder", 90.0),    # the flag still agrees: min(flag, route) read 50% and went on
    ("flag:embedder-v3", 20.0),
]


@pytest.mark.parametrize(("target", "percent"), ACROSS)
def test_a_hand_edit_while_down_holds_the_resumed_run(
    real_stack: Stack, tmp_path: Path, target: str, percent: float
) -> None:
    reset(real_stack)
    plan, journal = readback_plan(real_stack, tmp_path), tmp_path / "journal.db"
    owner: dict[str, str] = {}

    async def during(session: Any) -> None:
        await wait_state(session, lambda s: exposed_at_first_stage(s, "embedder"), timeout=90)
        owner["run"] = session.info.run_id
        session.engine.stop()

    run_engine(plan, journal, real_stack, during=during, timeout=150)
    asyncio.run(hand_edit(real_stack, target, percent, owner["run"]))

    name = target.replace(":", " ")
    held = f"{name} reads {percent:g}% (journal 50%)"
    code, out, err = resume_until_held(real_stack, journal, held)
    assert code == 3, out[-3000:] + err  # still held, resumable
    assert f"state differs from the journal: {held}" in out
    assert read_back(real_stack)[target] == percent


def test_a_fresh_run_refuses_a_world_not_at_zero(real_stack: Stack, tmp_path: Path) -> None:
    reset(real_stack)
    asyncio.run(hand_edit(real_stack, "flag:features-v32", 20.0, "someone"))
    asyncio.run(hand_edit(real_stack, "route:api", 100.0, "someone"))
    plan, journal = readback_plan(real_stack, tmp_path), tmp_path / "journal.db"
    before = read_back(real_stack)
    refused = cli("run", str(plan), "--headless", "--speed", "1", "--journal", str(journal), env=cli_env(real_stack))
    assert refused.returncode == 7, refused.stdout[-2000:] + refused.stderr
    lines = refused.stderr.splitlines()
    assert any(line.startswith("interlock: refused: flag features-v32 (features): ") and "found 20%" in line
               or "at 20% and marked by run someone" in line for line in lines), lines
    assert any(line.startswith("interlock: refused: route api (api): found 100%, the plan starts at 0%")
               for line in lines), lines
    assert read_back(real_stack) == before, "nothing was changed"
    assert events(journal) == [], "nothing was journaled"


def test_a_flag_another_interlock_marked_is_refused_even_at_zero_until_taken_over(
    real_stack: Stack, tmp_path: Path
) -> None:
    """One driver per target across journals: a strategy marked by a run this journal does not
    know may be another interlock about to move it, so even at 0% the run is refused; once the
    operator says that interlock has finished (`--adopt --reason`), the take-over is journaled."""
    reset(real_stack)
    asyncio.run(hand_edit(real_stack, "flag:features-v32", 0.0, "elsewhere-run"))
    plan, journal = fast_plan(real_stack, tmp_path), tmp_path / "journal.db"
    refused = cli("run", str(plan), "--headless", "--speed", "1", "--journal", str(journal), env=cli_env(real_stack))
    assert refused.returncode == 7, refused.stdout[-2000:] + refused.stderr
    assert ("interlock: refused: flag features-v32 (features): last moved by run elsewhere-run, which this journal "
            "does not know; if that interlock has finished, take the target over with --adopt --reason TEXT"
            ) in refused.stderr.splitlines(), refused.stderr
    assert events(journal) == [], "nothing was journaled"
    taken = cli("run", str(plan), "--headless", "--speed", "1", "--journal", str(journal),
                "--adopt", "--reason", "its laptop was wiped", env=cli_env(real_stack))
    assert taken.returncode in (0, 1), taken.stdout[-2000:] + taken.stderr
    assert "last moved by run elsewhere-run" in taken.stderr  # still said, as a warning
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        kinds = [kind for (kind,) in db.execute("SELECT kind FROM records ORDER BY seq")]
        (body,) = db.execute("SELECT body FROM records WHERE kind = 'adopted'").fetchone()
    finally:
        db.close()
    assert kinds.index("adopted") < kinds.index("exposure_applied"), kinds[:10]
    assert "its laptop was wiped" in body
