"""The plan's `preflight:` checks and Flagger-style `hooks:` (issue 14, points 1-2).

A pre-flight check proves a service's new version before its first user: an HTTP
probe (`http: {url, status, timeout}`) or a program (`run: {argv, timeout, retries}`,
run without a shell). A hook is an HTTP endpoint interlock POSTs a JSON payload to at
Flagger's moments, by Flagger's names; a 2xx answer passes. How they run in a rollout
lives in `core.beforefirst` (the phase before the first exposure) and `core.hooks`
(the hooks between and after stages).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from core.masking import mask_url
from core.spec import Duration, Strict

MAX_CHECK_TIMEOUT = 3600.0
"""A check or hook waits at most an hour: a pre-flight is bounded in time."""

MAX_RETRIES = 10


def _bounded(value: float) -> float:
    if value <= 0:
        raise ValueError("timeout must be longer than 0s")
    if value > MAX_CHECK_TIMEOUT:
        raise ValueError("timeout is at most 1h")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("url must start with http:// or https://")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("interval must be longer than 0s")
    return value


Timeout = Annotated[Duration, AfterValidator(_bounded)]
"""A check's or hook's time limit: above 0s, at most an hour."""
Interval = Annotated[Duration, AfterValidator(_positive)]
Url = Annotated[str, Field(min_length=1), AfterValidator(_http_url)]


class HttpProbe(Strict):
    """GET `url`; the check passes when the answer's status is `status`."""

    url: Url
    status: int = Field(default=200, ge=100, le=599)
    timeout: Timeout = 5.0
    retries: int = Field(default=0, ge=0, le=MAX_RETRIES)




class RunProbe(Strict):
    """Run `argv` (no shell); the check passes when it exits 0 within `timeout`."""

    argv: list[str] = Field(min_length=1)
    timeout: Timeout = 60.0
    retries: int = Field(default=0, ge=0, le=MAX_RETRIES)

    @field_validator("argv", mode="before")
    @classmethod
    def _words(cls, value: object) -> object:
        # `argv: [pytest, -q, 3]`: YAML makes numbers of some words; a program gets text.
        if isinstance(value, list):
            return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
        return value



class PreflightCheck(Strict):
    """One entry of a service's `preflight:` list: exactly one of `http` or `run`."""

    http: HttpProbe | None = None
    run: RunProbe | None = None

    @model_validator(mode="after")
    def _one(self) -> "PreflightCheck":
        if (self.http is None) == (self.run is None):
            raise ValueError("a pre-flight check is either http: {url, status, timeout} or run: {argv, timeout, retries}")
        return self

    @property
    def label(self) -> str:
        """How the journal, the log and the console name the check."""
        if self.http is not None:
            return f"http {mask_url(self.http.url)}"
        assert self.run is not None
        return "run " + " ".join(self.run.argv)


HookName = Literal[
    "confirm-rollout", "pre-rollout", "confirm-traffic-increase", "confirm-promotion",
    "post-rollout", "rollback", "event",
]
HOOK_NAMES: tuple[str, ...] = (
    "confirm-rollout", "pre-rollout", "confirm-traffic-increase", "confirm-promotion",
    "post-rollout", "rollback", "event",
)
CONFIRM_HOOKS: frozenset[str] = frozenset({"confirm-rollout", "confirm-traffic-increase", "confirm-promotion"})
"""Hooks that keep the service waiting (asked again each `interval`) until they answer 2xx."""


class Hook(Strict):
    """An HTTP endpoint POSTed the hook payload (`core.hooks.payload`); 2xx passes."""

    url: Url
    timeout: Timeout = 10.0
    interval: Interval = 30.0
    """confirm-* and rollback hooks: how often they are asked again."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Sent as the payload's `metadata`, as Flagger's webhooks do."""




class Hooks(Strict):
    """`hooks:` of a service or the rollout, by Flagger's names (one endpoint each)."""

    confirm_rollout: Hook | None = Field(default=None, alias="confirm-rollout")
    pre_rollout: Hook | None = Field(default=None, alias="pre-rollout")
    confirm_traffic_increase: Hook | None = Field(default=None, alias="confirm-traffic-increase")
    confirm_promotion: Hook | None = Field(default=None, alias="confirm-promotion")
    post_rollout: Hook | None = Field(default=None, alias="post-rollout")
    rollback: Hook | None = None
    event: Hook | None = None

    def get(self, name: str) -> Hook | None:
        """The hook named `name` (Flagger's spelling), or None."""
        hook = getattr(self, name.replace("-", "_"))
        assert hook is None or isinstance(hook, Hook)
        return hook
