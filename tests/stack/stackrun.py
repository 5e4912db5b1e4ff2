"""Helpers for the tests that run whole rollouts on the real stack.

One stack per session (`shared_stack`): the Unleash of the conftest's session
fixture, plus HAProxy, the simulated services and Prometheus started by
`adapters.stack.stack.up` exactly as `interlock stack up` starts them. Each
test module asks for it through its own session fixture; the stack is started
once and stopped once (`down` is idempotent).

Rollouts use short variants of the stack plan (`fast_plan`): 2 s bakes, 1 s
gate intervals, two stages. They run either as a real `interlock run`
subprocess or in-process (`run_engine`) when a test must act at an exact state
or record every commanded percentage.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from adapters.haproxy import HAProxyRouter
from adapters.stack import stack as stk
from adapters.stack.postgres import PostgresUnavailable
from adapters.stack.process import ServerUnavailable
from adapters.unleash import UnleashFlags
from core.state import RolloutState

REPO = Path(__file__).resolve().parents[2]
FLAGS = ("features-v32", "embedder-v3", "ranker-v6")
ROUTES = ("embedder", "ranker", "api")
COHORTS = {"features-v32": "features", "embedder-v3": "embedder+ranker", "ranker-v6": "embedder+ranker"}
_SHARED: dict[str, stk.Stack] = {}


def shared_stack(base: Path, unleash_url: str, token: str) -> stk.Stack:
    if "stack" not in _SHARED:
        try:
            _SHARED["stack"] = stk.up(base / "stack", unleash=(unleash_url, token))
        except (stk.StackError, ServerUnavailable, PostgresUnavailable) as exc:
            message = f"the stack is needed for these tests and cannot start: {exc}"
            if os.environ.get("CI"):
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
    return _SHARED["stack"]


def stop_shared() -> None:
    stack = _SHARED.pop("stack", None)
    if stack is not None:
        stk.down(stack.dir)


# -- plans -------------------------------------------------------------------


def fast_plan(stack: stk.Stack, folder: Path, name: str = "plan.yaml", *, stages: list[float] | None = None,
              bake: str = "2s", interval: str = "1s", edit: Callable[[dict], None] | None = None) -> Path:
    """The stack plan with short stages: `stages` (default [50, 100]), `bake`, gate `interval`."""
    doc = yaml.safe_load(stack.plan.read_text(encoding="utf-8"))
    doc["defaults"]["stages"] = stages or [50, 100]
    doc["defaults"]["bake"] = bake
    for gate in doc["gates"].values():
        gate["interval"] = interval
    if edit is not None:
        edit(doc)
    path = folder / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


# -- the servers -------------------------------------------------------------


def read_back(stack: stk.Stack) -> dict[str, float]:
    """Every flag and route as the servers themselves report them: {"flag:x": %, "route:y": %}."""

    async def go() -> dict[str, float]:
        flags = UnleashFlags(stack.urls["unleash"], token=stack.token, timeout=3.0)
        router = HAProxyRouter(stack.urls["haproxy_admin"], timeout=3.0)
        try:
            out = {f"flag:{f}": await flags.get_rollout(f) for f in FLAGS}
            out.update({f"route:{r}": await router.get_weight(r) for r in ROUTES})
            return out
        finally:
            await flags.aclose()

    return asyncio.run(go())


def read_routes(stack: stk.Stack) -> dict[str, float]:
    async def go() -> dict[str, float]:
        router = HAProxyRouter(stack.urls["haproxy_admin"], timeout=3.0)
        return {f"route:{r}": await router.get_weight(r) for r in ROUTES}

    return asyncio.run(go())


def reset(stack: stk.Stack) -> None:
    """Every flag and route at 0%, no faults, and the simulated world has seen it. The flags
    are as `stack up` made them: without strategies, so no earlier test's run still owns one
    (a fresh run refuses a flag whose interlock strategy another, unfinished run marked)."""
    clear_faults(stack)

    async def go() -> None:
        flags = UnleashFlags(stack.urls["unleash"], token=stack.token, timeout=5.0)
        router = HAProxyRouter(stack.urls["haproxy_admin"], timeout=5.0)
        try:
            for flag in FLAGS:
                await flags.set_rollout(flag, 0.0, COHORTS[flag])
            for route in ROUTES:
                await router.set_weight(route, 0.0)
        finally:
            await flags.aclose()

    asyncio.run(go())
    for flag in FLAGS:
        path = f"{stack.urls['unleash']}/api/admin/projects/default/features/{flag}/environments/development/strategies"
        for strategy in httpx.get(path, headers={"Authorization": stack.token}, timeout=5).json():
            httpx.delete(f"{path}/{strategy['id']}", headers={"Authorization": stack.token}, timeout=5).raise_for_status()
    deadline = time.monotonic() + 10
    while any(sim_state(stack)["exposure"]["services"].values()):
        assert time.monotonic() < deadline, "the simulated world did not see the reset"
        time.sleep(0.1)


def served(stack: stk.Stack) -> dict[tuple[str, str], int]:
    """Requests answered so far per (service, version), from the simulated services' metrics."""
    text = httpx.get(f"{stack.sim_admin}/metrics", timeout=5).text
    out: dict[tuple[str, str], int] = {}
    for service, version, count in re.findall(
        r'interlock_requests_total\{service="(\w+)",version="([\d.]+)",code="\d+"\} (\d+)', text
    ):
        out[(service, version)] = out.get((service, version), 0) + int(count)
    return out


def sim_state(stack: stk.Stack) -> dict[str, Any]:
    return httpx.get(f"{stack.sim_admin}/state", timeout=5).json()


def inject(stack: stk.Stack, fault: dict[str, Any]) -> None:
    response = httpx.post(f"{stack.sim_admin}/faults", json=fault, timeout=5)
    assert response.status_code == 200, response.text


def clear_faults(stack: stk.Stack) -> None:
    assert httpx.delete(f"{stack.sim_admin}/faults", timeout=5).status_code == 200


# -- running interlock -------------------------------------------------------


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli.main", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def cli_env(stack: stk.Stack) -> dict[str, str]:
    env = stack.env()
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def events(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=1.0)
    try:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM records ORDER BY seq")]
    except sqlite3.Error:
        return []
    finally:
        db.close()


class Recorder:
    """Every state the engine publishes, with the wall time it was seen."""

    def __init__(self) -> None:
        self.states: list[tuple[float, RolloutState]] = []
        self.lock = threading.Lock()

    def __call__(self, state: RolloutState, _events: object) -> None:
        with self.lock:
            self.states.append((time.time(), state))

    def max_target(self, service: str, until: float) -> float:
        """The highest percentage commanded for `service` up to wall time `until`."""
        with self.lock:
            return max([s.services[service].target for t, s in self.states if t <= until] or [0.0])


def run_engine(plan: Path, journal: Path, stack: stk.Stack, *, during: Callable[[Any], Any] | None = None,
               timeout: float = 120.0, token: str | None = None) -> tuple[RolloutState, Recorder]:
    """Run `plan` in-process on the real clock at speed 1, with `token` (default: the stack's) in
    the plan's token variable; `during(session)` runs as a coroutine alongside the engine (to act
    at a chosen state). Returns the final state and every state seen."""
    from tui.session import runtime

    os.environ[stack.token_env] = token or stack.token
    session = runtime.start_run(plan, journal_path=journal, clock="real", speed=1.0)
    recorder = Recorder()
    session.engine.subscribe(recorder)

    async def go() -> RolloutState:
        helper = asyncio.create_task(during(session)) if during is not None else None
        try:
            state = await asyncio.wait_for(session.engine.run(), timeout)
        finally:
            if helper is not None and not helper.done():
                helper.cancel()
                await asyncio.gather(helper, return_exceptions=True)
        if helper is not None and not helper.cancelled() and helper.exception() is not None:
            raise helper.exception()  # type: ignore[misc]
        return state

    try:
        state = asyncio.run(go())
    finally:
        session.journal.close()
    return state, recorder


async def wait_state(session: Any, predicate: Callable[[RolloutState], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(session.engine.state):
        assert time.monotonic() < deadline, f"state not reached: {session.engine.state.reason}"
        await asyncio.sleep(0.02)


def group_stage(state: RolloutState, service: str) -> tuple[str, int]:
    group = state.groups[state.group_of(service)]
    return group.phase, group.stage


class Sampler(threading.Thread):
    """Reads HAProxy's weights every `period` seconds straight from its admin socket."""

    def __init__(self, stack: stk.Stack, period: float = 0.02):
        super().__init__(daemon=True)
        self.stack, self.period = stack, period
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append((time.time(), read_routes(self.stack)))
            except Exception:  # noqa: BLE001 - a failed read is simply no sample
                pass
            self._halt.wait(self.period)

    def stop(self) -> list[tuple[float, dict[str, float]]]:
        self._halt.set()
        self.join(5)
        return self.samples


def resume_until_held(stack: stk.Stack, journal: Path, held: str, timeout: float = 120.0) -> tuple[int, str, str]:
    """`interlock resume --headless` on a run that should hold: a real-clock driver that holds
    waits for the operator (who may steer it from another terminal) instead of exiting, so
    wait until the journal's log says `held`, then Ctrl-C it (it stays resumable: exit 3).
    Returns (exit code, stdout, stderr)."""
    resumed = subprocess.Popen([sys.executable, "-m", "tui.cli.main", "resume", "--headless", "--journal",
                                str(journal)], cwd=REPO, env=cli_env(stack), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while held not in cli("log", "--journal", str(journal), env=cli_env(stack)).stdout:
            assert resumed.poll() is None, "the resumed driver ended instead of holding"
            assert time.monotonic() < deadline, "the resumed run never held"
            time.sleep(1.0)
    finally:
        resumed.send_signal(signal.SIGINT)
        out, err = resumed.communicate(timeout=60)
    return resumed.returncode, out, err
