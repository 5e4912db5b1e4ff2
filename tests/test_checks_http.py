"""Pre-flight checks and hooks against a real HTTP receiver on 127.0.0.1 and real child
processes (issue 14 points 1-2): `adapters.checks.HttpChecks` alone, then an engine run
whose checks and hooks go to the receiver while the simulated world carries the traffic."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapters.checks import HttpChecks, secrets_of
from adapters.sim.world import SimWorld
from core import Engine, VirtualClock
from core.events import CheckFinished, Event
from core.plan import Plan
from tests.helpers import build, design_plan, design_services
from tests.test_engine import MemoryJournal


class Receiver:
    """A local HTTP endpoint: answers each path with the statuses queued for it (the last
    one repeats), records every request (method, path, JSON body)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[int]] = {}
        self.delay: dict[str, float] = {}
        self.seen: list[tuple[str, str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                receiver.seen.append((method, self.path, json.loads(raw) if raw else None))
                time.sleep(receiver.delay.get(self.path, 0.0))
                queue = receiver.answers.get(self.path, [200])
                code = queue.pop(0) if len(queue) > 1 else queue[0]
                body = f"answer {code} token=s3cr3t-value http://u:pw@h/x?access_token=abc".encode()
                self.send_response(code)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._answer("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._answer("POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _go(coro: Any) -> Any:
    return asyncio.run(coro)


def test_http_check_passes_on_the_expected_status_only(receiver: Receiver) -> None:
    receiver.answers = {"/ready": [503, 200]}

    async def go() -> list[Any]:
        checks = HttpChecks(["s3cr3t-value"])
        try:
            return [await checks.http(receiver.url + "/ready", timeout=2, status=200) for _ in range(2)]
        finally:
            await checks.aclose()

    first, second = _go(go())
    assert (first.passed, first.detail) == (False, "HTTP 503, expected 200")
    assert (second.passed, second.detail) == (True, "HTTP 200")
    assert "s3cr3t-value" not in first.output and "***" in first.output  # a value the plan names
    assert "pw@" not in first.output and "access_token=***" in first.output  # tokens in URLs
    assert [(m, p) for m, p, _ in receiver.seen] == [("GET", "/ready"), ("GET", "/ready")]


def test_http_check_is_bounded_by_its_timeout_and_survives_a_closed_port(receiver: Receiver) -> None:
    receiver.delay["/slow"] = 2.0

    async def go() -> list[Any]:
        checks = HttpChecks()
        try:
            started = time.monotonic()
            slow = await checks.http(receiver.url + "/slow", timeout=0.3, status=200)
            took = time.monotonic() - started
            closed = await checks.http("http://127.0.0.1:9/ready?token=abc", timeout=1, status=200)
            return [slow, took, closed]
        finally:
            await checks.aclose()

    slow, took, closed = _go(go())
    assert (slow.passed, slow.detail) == (False, "timed out after 0.3s") and took < 1.5
    assert not closed.passed and closed.detail.startswith("cannot reach http://127.0.0.1:9/ready?token=***")


def test_hook_posts_json_and_any_2xx_passes(receiver: Receiver) -> None:
    receiver.answers = {"/hook": [202, 500]}

    async def go() -> list[Any]:
        checks = HttpChecks()
        try:
            body = {"type": "pre-rollout", "service": "ranker"}
            return [await checks.http(receiver.url + "/hook", timeout=2, status=None, payload=body) for _ in range(2)]
        finally:
            await checks.aclose()

    accepted, refused = _go(go())
    assert (accepted.passed, accepted.detail) == (True, "HTTP 202")
    assert (refused.passed, refused.detail) == (False, "HTTP 500, expected 2xx")
    assert receiver.seen[0] == ("POST", "/hook", {"type": "pre-rollout", "service": "ranker"})


def test_run_check_runs_argv_without_a_shell_and_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_TOKEN", "tok-123456")
    plan = Plan.model_validate({**design_plan(), "environment": {
        "flags": {"kind": "unleash", "url": "http://127.0.0.1:4242", "token_env": "CHECK_TOKEN"}}})
    checks = HttpChecks(secrets_of(plan))
    script = "import os, sys; print('$HOME', os.environ['CHECK_TOKEN']); sys.exit(3)"
    result = _go(checks.run([sys.executable, "-c", script], timeout=10))
    assert (result.passed, result.detail) == (False, "exit 3")
    assert result.output.strip() == "$HOME ***"  # no shell expanded it; the token is masked
    ok = _go(checks.run([sys.executable, "-c", "print('fine')"], timeout=10))
    assert (ok.passed, ok.detail, ok.output.strip()) == (True, "exit 0", "fine")
    missing = _go(checks.run(["/nonexistent/interlock-check"], timeout=5))
    assert not missing.passed and missing.detail.startswith("cannot start /nonexistent/interlock-check")


def test_run_check_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    result = _go(HttpChecks().run([sys.executable, "-c", script], timeout=1.0))
    assert (result.passed, result.detail) == (False, "timed out after 1s (killed)")
    assert time.monotonic() - started < 10
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _engine_plan(url: str, top: dict[str, Any] | None = None) -> dict[str, Any]:
    services = design_services()
    services["ranker"]["preflight"] = [{"http": {"url": f"{url}/ready", "status": 200, "timeout": "2s"}}]
    services["ranker"]["hooks"] = {
        "pre-rollout": {"url": f"{url}/pre", "timeout": "2s"},
        "confirm-promotion": {"url": f"{url}/confirm", "timeout": "2s", "interval": "30s",
                              "metadata": {"ticket": "CHG-7"}},
    }
    doc = design_plan(services=services, default_gates=[])
    if top:
        doc["hooks"] = top
    return doc


def _run_engine(url: str, top: dict[str, Any] | None = None) -> tuple[list[Event], SimWorld]:
    state = build(_engine_plan(url, top))
    world = SimWorld(state.ctx.plan, state.ctx.graph, seed=3)
    journal = MemoryJournal()
    checks = HttpChecks()

    async def go() -> None:
        engine = Engine(state, clock=VirtualClock(), journal=journal, run_id="run-42", flags=world.flags,
                        router=world.router, metrics=world.metrics, checks=checks)
        try:
            await engine.run()
        finally:
            await checks.aclose()

    asyncio.run(go())
    return journal.events, world


def test_engine_runs_checks_and_hooks_against_the_receiver(receiver: Receiver) -> None:
    receiver.answers = {"/confirm": [409, 409, 200]}
    events, world = _run_engine(receiver.url)
    from core.replay import fold

    final = fold(build(_engine_plan(receiver.url)), events)
    assert final.phase == "completed"
    paths = [p for _, p, _ in receiver.seen]
    assert paths == ["/ready", "/pre", "/confirm", "/confirm", "/confirm"]
    posted = [body for method, _, body in receiver.seen if method == "POST"]
    assert posted[0] == {
        "name": "ranker", "namespace": "design", "type": "pre-rollout", "phase": "preparing",
        "rollout": "design", "run": "run-42", "service": "ranker", "stage": 0.0, "next_stage": 10.0,
        "from_version": "5.0", "to_version": "6.0", "metadata": {},
    }
    assert posted[-1]["type"] == "confirm-promotion" and posted[-1]["metadata"] == {"ticket": "CHG-7"}
    waits = [e for e in events if isinstance(e, CheckFinished) and e.check == "hook confirm-promotion"]
    assert [(e.passed, e.detail) for e in waits] == [(False, "HTTP 409, expected 2xx")] * 2 + [(True, "HTTP 200")]
    assert waits[1].at - waits[0].at == 30.0  # asked again each interval
    assert world.canary_fraction("ranker") == 1.0


def test_engine_keeps_a_service_failing_its_check_at_zero(receiver: Receiver) -> None:
    receiver.answers = {"/ready": [503]}
    events, world = _run_engine(receiver.url)
    from core.replay import fold

    final = fold(build(_engine_plan(receiver.url)), events)
    assert final.phase == "rolled_back"
    assert final.reason == f"pre-flight http {receiver.url}/ready on ranker failed: HTTP 503, expected 200"
    assert [p for _, p, _ in receiver.seen] == ["/ready"]  # pre-rollout never called after a failed check
    assert world.canary_fraction("ranker") == 0.0 and world.canary_fraction("embedder") == 0.0
    assert not any(getattr(e, "service", "") in ("ranker", "embedder") and getattr(e, "percent", 0) > 0
                   for e in events)


def test_event_and_post_rollout_hooks_reach_the_receiver(receiver: Receiver) -> None:
    receiver.answers = {"/events": [500]}  # a broken event receiver blocks nothing
    top = {"event": {"url": f"{receiver.url}/events", "timeout": "1s"}, "post-rollout": {"url": f"{receiver.url}/done"}}
    events, _ = _run_engine(receiver.url, top)
    from core.replay import fold

    final = fold(build(_engine_plan(receiver.url, top)), events)
    assert final.phase == "completed"
    posted = [(path, body) for method, path, body in receiver.seen if method == "POST"]
    rollout_events = [body for path, body in posted if path == "/events" and body["service"] == ""]
    assert [(b["phase"], b["metadata"]["eventMessage"]) for b in rollout_events] == [
        ("running", "rollout running"), ("completed", "rollout completed: every service promoted")]
    assert all(body["run"] == "run-42" and body["type"] == "event" for path, body in posted if path == "/events")
    assert {body["service"] for path, body in posted if path == "/events"} == {"", "features", "embedder", "ranker", "api"}
    done = [body for path, body in posted if path == "/done"]  # concurrent with the last events: order free
    assert [(b["phase"], b["service"], b["type"]) for b in done] == [("completed", "", "post-rollout")]
