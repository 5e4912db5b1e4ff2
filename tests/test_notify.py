"""Notifications (issue 13 point 6) against a real HTTP receiver on 127.0.0.1: payloads with
the gate's arithmetic and the runbook, bounded retries, deliveries in the journal, a slow
receiver that delays nothing, and a webhook URL (its own secret) nowhere in the journal,
the log or the screen."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters.journals import open_journal
from adapters.notify import deliver
from core.events import NotificationSent
from core.notify import Webhook
from core.planload import parse_plan
from core.problems import InputError
from tui.session import runtime

REPO = Path(__file__).resolve().parent.parent
TOKEN = "XOXB-SECRET-0042"

PLAN = """\
rollout: notified
defaults: {stages: [10, 50, 100], bake: 2m, gates: [errors]}
gates:
  errors: {metric: error_rate, max: 0.01, interval: 30s, count: 2}
notify:
  - {url_env: TEAM_HOOK, on: [stage_completed, gate_failed, rolling_back, rolled_back]}
services:
  features:
    from: {version: "1"}
    to: {version: "2"}
    sim: {from: {error_rate: 0.001}, to: {error_rate: 0.001}}
  ranker:
    depends_on: [features]
    from: {version: "1"}
    to: {version: "2"}
    runbook: https://wiki.example/ranker-rollback
    sim: {from: {error_rate: 0.001}, to: {error_rate: 0.2}}
"""


class Receiver:
    """A webhook receiver: records each POST's path and JSON; answers with `statuses` in turn
    (then 200), and waits for `gate` before answering when it is given."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.statuses: list[int] = []
        self.gate: threading.Event | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.gate is not None:
                    receiver.gate.wait(10)
                receiver.received.append((self.path, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T01/B02/{TOKEN}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        if r.gate is not None:
            r.gate.set()
        r.server.shutdown()
        r.server.server_close()


def run_plan(tmp_path: Path) -> tuple[Any, list[NotificationSent]]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    session = runtime.start_run(plan, journal_path=tmp_path / "j.db", seed=3)
    state = asyncio.run(session.engine.run())
    records = [r.event for r in session.journal.records(session.info.run_id)]
    session.journal.close()
    return state, [e for e in records if isinstance(e, NotificationSent)]


def test_a_failing_gate_is_told_with_its_arithmetic_and_runbook(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_HOOK", receiver.url)
    state, sent = run_plan(tmp_path)
    assert state.phase == "rolled_back"
    # Deliveries run concurrently: those of one batch may arrive in any order.
    triggers = sorted(body["trigger"] for _, body in receiver.received)
    assert triggers == ["gate_failed", "rolled_back", "rolling_back"] + ["stage_completed"] * 3
    assert all(path == f"/services/T01/B02/{TOKEN}" for path, _ in receiver.received)
    failed = next(body for _, body in receiver.received if body["trigger"] == "gate_failed")
    assert failed["service"] == "ranker" and failed["gate"] == "errors" and failed["rollout"] == "notified"
    assert failed["run"].startswith("notified-") and failed["runbook"] == "https://wiki.example/ranker-rollback"
    assert "error_rate" in failed["arithmetic"] and "> max 1%" in failed["arithmetic"] and failed["arithmetic"].endswith("✗")
    assert failed["text"].startswith("interlock · notified: ranker gate failed — gate errors: error_rate")
    assert "Runbook: <https://wiki.example/ranker-rollback>" in failed["text"]
    # Every delivery is journaled, naming the webhook by its variable, never its URL.
    assert sorted(e.trigger for e in sent) == triggers
    assert all(e.ok and e.status == 200 and e.attempts == 1 and e.webhook == "$TEAM_HOOK" for e in sent)
    assert TOKEN.encode() not in (tmp_path / "j.db").read_bytes()


def test_retries_are_bounded_and_errors_never_show_the_url(receiver: Receiver) -> None:
    hook = Webhook(url_env="HOOK", retries=2, timeout=2)
    body = {"trigger": "paused", "service": None}
    receiver.statuses = [503, 200]
    ok = asyncio.run(deliver(hook, body, {"HOOK": receiver.url}))
    assert (ok.ok, ok.status, ok.attempts) == (True, 200, 2)
    receiver.statuses = [503, 503, 503, 503]
    failed = asyncio.run(deliver(hook, body, {"HOOK": receiver.url}))
    assert (failed.ok, failed.attempts) == (False, 3) and "HTTP 503" in failed.error
    receiver.statuses = [404]
    final = asyncio.run(deliver(hook, body, {"HOOK": receiver.url}))
    assert (final.ok, final.attempts, final.error) == (False, 1, "$HOOK: HTTP 404")
    dead = asyncio.run(deliver(hook, body, {"HOOK": f"http://127.0.0.1:9/hooks/{TOKEN}"}))
    assert not dead.ok and dead.attempts == 3 and "cannot reach the webhook" in dead.error
    unset = asyncio.run(deliver(hook, body, {}))
    assert (unset.ok, unset.attempts, unset.error) == (False, 0, "$HOOK is not set; nothing was sent")
    for event in (failed, final, dead):
        assert TOKEN not in json.dumps(event.to_dict()) and "127.0.0.1" not in event.error


def test_a_slow_receiver_delays_no_command(receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollout reaches its end while the receiver still holds the first delivery; the run
    returns once the deliveries are done and journaled."""
    monkeypatch.setenv("TEAM_HOOK", receiver.url)
    receiver.gate = threading.Event()
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    session = runtime.start_run(plan, journal_path=tmp_path / "j.db", seed=3)

    async def main() -> None:
        task = asyncio.create_task(session.engine.run())
        for _ in range(400):
            if session.engine.state.phase == "rolled_back":
                break
            await asyncio.sleep(0.01)
        assert session.engine.state.phase == "rolled_back" and receiver.received == []
        assert not task.done()  # it waits for the deliveries before it ends
        assert receiver.gate is not None
        receiver.gate.set()
        await asyncio.wait_for(task, 20)

    asyncio.run(main())
    records = [r.event for r in session.journal.records(session.info.run_id)]
    session.journal.close()
    assert len([e for e in records if isinstance(e, NotificationSent) and e.ok]) == len(receiver.received) >= 4


def test_the_headless_log_names_the_webhook_not_its_url(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    env = {**os.environ, "TEAM_HOOK": receiver.url, "INTERLOCK_JOURNAL": str(tmp_path / "j.db")}
    run = subprocess.run([sys.executable, "-m", "tui.cli.main", "run", str(tmp_path / "plan.yaml"), "--headless"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert run.returncode == 1, run.stderr
    log = subprocess.run([sys.executable, "-m", "tui.cli.main", "log"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)
    assert "notified $TEAM_HOOK: gate_failed (ranker)" in log.stdout
    for text in (run.stdout, run.stderr, log.stdout, log.stderr):
        assert TOKEN not in text and "/services/T01" not in text
    journal = open_journal(tmp_path / "j.db", readonly=True)
    journal.close()


def test_an_inline_url_with_a_secret_is_refused() -> None:
    text = PLAN.replace("{url_env: TEAM_HOOK,", "{url: 'https://hooks.example/x?token=abc',")
    with pytest.raises(InputError) as err:
        parse_plan(text, "plan.yaml")
    assert [p.format() for p in err.value.problems] == [
        "plan.yaml:6:11: notify[0].url: this URL carries a secret (a user, password or query string) and the plan "
        "is kept in the journal; put the URL in an environment variable and name it with url_env"
    ]
