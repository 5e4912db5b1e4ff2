"""The Unleash admin token stays a secret: it reaches interlock only through the environment
variable the plan names, and after a whole rollout on the real stack it is in none of the
journal's bytes, the output, `interlock log`, the console's screen, the error messages of
failing adapters, or any file the stack wrote except its 0600 state file."""

from __future__ import annotations

import asyncio
import html
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapters.stack.stack import STATE_FILE, Stack
from adapters.stack.unleash import UnleashServer
from stackrun import (
    REPO, cli, cli_env, events, fast_plan, group_stage, reset, run_engine, shared_stack, stop_shared, wait_state,
)


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def secrets_of(token: str) -> list[bytes]:
    """The token, and its random part alone (what a partial leak would show)."""
    return [token.encode(), token.split(".", 1)[1].encode()]


def assert_clean(what: str, data: bytes | str, token: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for secret in secrets_of(token):
        assert secret not in raw, f"the token leaked into {what}"


def test_a_whole_rollout_leaves_the_token_nowhere_but_the_state_file(
    real_stack: Stack, stack_dir: Path, tmp_path: Path
) -> None:
    token = real_stack.token
    reset(real_stack)
    plan, journal = fast_plan(real_stack, tmp_path), tmp_path / "journal.db"
    assert_clean("the plan", plan.read_bytes(), token)
    done = cli("run", str(plan), "--headless", "--speed", "1", "--journal", str(journal), env=cli_env(real_stack))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "rollout completed" in done.stdout
    assert_clean("the headless output", done.stdout + done.stderr, token)
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{journal}{suffix}")
        if part.exists():
            assert_clean(f"the journal file {part.name}", part.read_bytes(), token)
    assert len(events(journal)) > 20
    for args in (["log"], ["log", "--json"]):
        shown = cli(*args, "--journal", str(journal), env=cli_env(real_stack))
        assert shown.returncode == 0 and "features" in shown.stdout and "completed" in shown.stdout
        assert_clean(f"`interlock {' '.join(args)}`", shown.stdout + shown.stderr, token)
    status = subprocess.run([sys.executable, "-m", "tui.cli.stack_cmd", "stack", "status", "--dir", str(real_stack.dir)],
                            cwd=REPO, env=cli_env(real_stack), capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and "passed as $INTERLOCK_STACK_UNLEASH_TOKEN" in status.stdout
    assert_clean("`stack status`", status.stdout + status.stderr, token)

    state_file = real_stack.dir / STATE_FILE
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert token in state_file.read_text()
    checked = 0
    for path in stack_dir.rglob("*"):
        # PostgreSQL's data files hold Unleash's own token table; that is Unleash's store, not ours
        if path.is_file() and path != state_file and "pg" not in path.relative_to(stack_dir).parts:
            assert_clean(f"the stack's file {path.relative_to(stack_dir)}", path.read_bytes(), token)
            checked += 1
    assert checked > 10


def refused_before_start(plan: Path, journal: Path, stack: Stack, token: str | None = None) -> list[str]:
    """The pre-flight refusal of a plan whose adapters fail (their first error now): its lines."""
    from core.preflight import Refused
    from tui.session import runtime

    os.environ[stack.token_env] = token or stack.token
    with pytest.raises(Refused) as refused:
        runtime.start_run(plan, journal_path=journal, clock="real", speed=1.0)
    return refused.value.lines


def past_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a run with failing adapters start, to reach the errors of a running rollout
    (the pre-flight would refuse it; `refused_before_start` checks that refusal)."""
    from core.preflight import Report
    from tui.session import startup

    monkeypatch.setattr(startup, "preflight", lambda *args, **kwargs: Report(found=()))


def wait_for_hold_then_stop(seen: dict[str, Any]):  # noqa: ANN201 - a coroutine factory
    async def during(session: Any) -> None:
        await wait_state(session, lambda s: s.hold is not None, timeout=40)
        seen["reason"] = session.engine.state.hold.reason
        session.engine.stop()

    return during


@pytest.mark.parametrize("broken", ["unleash_url", "wrong_token", "prometheus_url"])
def test_error_messages_of_failing_adapters_never_carry_the_token(
    real_stack: Stack, tmp_path: Path, broken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = real_stack.token
    reset(real_stack)
    wrong = "*:*." + "0123456789abcdef" * 3

    def breaking(doc: dict) -> None:
        if broken == "unleash_url":
            doc["environment"]["flags"]["url"] = "http://127.0.0.1:9"  # nothing listens on port 9
        elif broken == "prometheus_url":
            doc["environment"]["metrics"]["url"] = "http://127.0.0.1:9"
            for gate in doc["gates"].values():
                gate["consecutive_error_limit"] = 0

    plan, journal = fast_plan(real_stack, tmp_path, edit=breaking), tmp_path / "journal.db"
    seen: dict[str, Any] = {}
    try:
        refusal = refused_before_start(plan, journal, real_stack, token=wrong if broken == "wrong_token" else None)
        cause = "HTTP 401: not authorised" if broken == "wrong_token" else "cannot reach http://127.0.0.1:9"
        assert any(cause in line for line in refusal), refusal
        for line in refusal:
            assert_clean("a pre-flight refusal", line, token)
            assert_clean("a pre-flight refusal", line, wrong)
        past_preflight(monkeypatch)
        if broken == "prometheus_url":
            state, _ = run_engine(plan, journal, real_stack)
            messages = [e["error"] for e in events(journal) if e["kind"] == "measured" and e["error"]]
            assert state.phase == "rolled_back" and messages
            assert all("cannot reach http://127.0.0.1:9" in m for m in messages)
            messages.append(state.reason)
        else:
            state, _ = run_engine(plan, journal, real_stack, during=wait_for_hold_then_stop(seen),
                                  token=wrong if broken == "wrong_token" else None)
            messages = [seen["reason"]] + [e["error"] for e in events(journal) if e["kind"] == "command_failed"]
            expected = "cannot reach http://127.0.0.1:9" if broken == "unleash_url" else "HTTP 401: not authorised"
            assert expected in seen["reason"], seen["reason"]
    finally:
        os.environ[real_stack.token_env] = token
    for message in messages:
        assert_clean("an error message", message, token)
        assert_clean("an error message", message, wrong)
    assert_clean("the journal", journal.read_bytes(), token)
    assert_clean("the journal", journal.read_bytes(), wrong)


def screen_text(svg: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", svg))
    return text.replace("\xa0", " ")


def test_the_console_screen_shows_the_rollout_and_its_errors_but_never_the_token(
    real_stack: Stack, tmp_path: Path
) -> None:
    from tui.session import runtime
    from tui.console.app import InterlockApp

    token = real_stack.token
    reset(real_stack)

    plan, journal = fast_plan(real_stack, tmp_path), tmp_path / "journal.db"
    os.environ[real_stack.token_env] = token
    # Prometheus answers the pre-flight read (every gate's query runs once before the first
    # stage), then stops answering: the run's measurements fail while the console shows them.
    session = runtime.start_run(plan, journal_path=journal, clock="real", speed=1.0, interactive=True)
    real_stack.pause("prometheus")
    shots: list[str] = []

    async def drive() -> None:
        app = InterlockApp(session)
        async with app.run_test(size=(160, 50)) as pilot:
            deadline = asyncio.get_running_loop().time() + 40
            while not any(e["kind"] == "measured" and e["error"] for e in events(journal)):
                assert asyncio.get_running_loop().time() < deadline, "no measurement error in time"
                await pilot.pause(0.1)
            assert group_stage(session.engine.state, "features")[1] == 0  # it moved: Unleash took the token
            await pilot.pause(0.5)
            shots.append(app.export_screenshot())
            session.engine.stop()
            await pilot.pause(0.5)

    try:
        asyncio.run(drive())
    finally:
        real_stack.resume("prometheus")
        session.journal.close()
    screen = screen_text(shots[0])
    assert "features" in screen and "prometheus" in screen and "timed out after 1s" in screen
    assert_clean("the console's screen", shots[0], token)
    assert_clean("the console's screen", screen, token)
