"""`notify:` in a plan: webhooks told when the rollout does something a team must hear about.

The triggers are Argo Rollouts' notification triggers in interlock's words. A
webhook's URL usually carries a token (Slack's does, in its path), and the plan's
text is kept in the journal, so a URL is named by the environment variable that
holds it (`url_env`); an inline `url` is for endpoints without a secret and is
refused when it visibly carries one (a user or password, a query string).
What fires when is `core.notice_triggers`; sending is `adapters.notify`.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from core.spec import Duration, Strict

Trigger = Literal[
    "stage_completed", "paused", "held", "awaiting_approval", "gate_failed", "gate_inconclusive",
    "rolling_back", "rolled_back", "completed", "aborted",
]
TRIGGERS: tuple[str, ...] = (
    "stage_completed", "paused", "held", "awaiting_approval", "gate_failed", "gate_inconclusive",
    "rolling_back", "rolled_back", "completed", "aborted",
)
"""Argo's on-rollout-step-completed, -paused, -aborted, -completed, on-analysis-run-failed
(and -error), -inconclusive; plus interlock's own held, awaiting approval and the rollback's two."""


class Webhook(Strict):
    """One webhook: where, on which triggers, how patiently."""

    url: str | None = None
    """Only for a URL without a secret: the plan (and so this URL) is kept in the journal."""
    url_env: str | None = None
    """The environment variable that holds the URL (read by the driver when it sends)."""
    on: list[Trigger] = Field(default_factory=lambda: list(TRIGGERS))  # type: ignore[arg-type]
    """The triggers that send; unset: all of them."""
    timeout: Duration = 5.0
    """Seconds one attempt may take."""
    retries: int = Field(default=2, ge=0, le=5)
    """Attempts after the first, with a short backoff; then the delivery is recorded as failed."""

    @field_validator("url")
    @classmethod
    def _no_secret_inline(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")
        if parts.username or parts.password or parts.query:
            raise ValueError(
                "this URL carries a secret (a user, password or query string) and the plan is kept in "
                "the journal; put the URL in an environment variable and name it with url_env"
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> "Webhook":
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook needs exactly one of url or url_env")
        return self

    @property
    def label(self) -> str:
        """How the webhook is named in the journal, the log and on screen: never its URL's
        path or query (`$SLACK_WEBHOOK_URL`, or `https://host` for an inline URL)."""
        if self.url_env is not None:
            return f"${self.url_env}"
        parts = urlsplit(self.url or "")
        return f"{parts.scheme}://{parts.netloc}"
