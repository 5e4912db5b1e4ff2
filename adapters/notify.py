"""Webhooks: tell the team what the rollout did (the plan's `notify:`).

After every batch the engine applies, the triggers it fired (`core.notice_triggers`) are
posted as JSON to each webhook that listens for them, in the background
(`Engine.spawn`): a slow or dead receiver never delays a command or the clock.
Each delivery is an HTTP POST with the webhook's timeout and bounded retries
(`adapters.http_retry`), and its outcome is journaled as a `NotificationSent`
naming the webhook by its label (`$SLACK_WEBHOOK_URL`), never by its URL: a
webhook URL usually is its own secret, so it stays out of the journal, the log
and the screen, including every error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from adapters.http_retry import RETRY_STATUSES, RetryPolicy, Retryable, redact, retrying
from core import AdapterError, Engine, Event, NotificationSent, RolloutState, Webhook, notice_payload, notices


class Notifier:
    """Posts a run's notifications. `attach` it to the engine before `engine.run()`.

    Args:
        hooks: the plan's `notify:` entries.
        run_id: the run the payloads name.
        env: where `url_env` is looked up (the process environment by default).
    """

    def __init__(self, hooks: list[Webhook], run_id: str, env: Mapping[str, str] | None = None) -> None:
        self.hooks = hooks
        self.run_id = run_id
        self.env = os.environ if env is None else env
        self._engine: Engine | None = None
        self._last: RolloutState | None = None

    def attach(self, engine: Engine) -> None:
        self._engine = engine
        self._last = engine.state
        engine.subscribe(self._on_batch)

    def _on_batch(self, state: RolloutState, events: Sequence[Event]) -> None:
        before, self._last = self._last, state
        if before is None or self._engine is None:
            return
        for notice in notices(before, state, events):
            body = notice_payload(notice, state, self.run_id)
            for hook in self.hooks:
                if notice.trigger in hook.on:
                    self._engine.spawn(lambda hook=hook, body=body: deliver(hook, body, self.env))  # type: ignore[misc]


async def deliver(hook: Webhook, body: dict[str, Any], env: Mapping[str, str]) -> NotificationSent:
    """POST `body` to the webhook; the outcome as the event that records it (never raises).
    Errors are worded here, never taken from httpx (whose messages carry the URL)."""
    record: dict[str, Any] = dict(at=0.0, trigger=body["trigger"], webhook=hook.label, service=body.get("service"))
    url = hook.url if hook.url is not None else env.get(hook.url_env or "", "")
    if not url:
        return NotificationSent(**record, error=f"{hook.label} is not set; nothing was sent")
    path = urlsplit(url).path
    secrets = [url] + ([path] if len(path) > 1 else [])
    policy = RetryPolicy(attempts=hook.retries + 1, base_delay=0.2, max_delay=2.0)
    tries = 0
    async with httpx.AsyncClient(timeout=hook.timeout, follow_redirects=False, trust_env=False) as client:

        async def attempt() -> int:
            nonlocal tries
            tries += 1
            try:
                response = await client.post(url, json=body)
            except httpx.TimeoutException:
                raise Retryable(f"timed out after {hook.timeout:g}s") from None
            except httpx.TransportError as exc:
                raise Retryable(f"cannot reach the webhook ({type(exc).__name__})") from None
            status = response.status_code
            if status < 300:
                return status
            if status in RETRY_STATUSES:
                raise Retryable(f"HTTP {status}")
            raise AdapterError(f"{hook.label}: HTTP {status}")

        try:
            status = await retrying(attempt, what=hook.label, policy=policy)
        except AdapterError as exc:
            return NotificationSent(**record, attempts=tries, error=redact(str(exc), secrets))
    return NotificationSent(**record, ok=True, status=status, attempts=tries)
