"""Unleash (Admin API) as a `FlagService`: a flag's flexibleRollout percentage.

interlock owns one `flexibleRollout` strategy per flag and environment, titled
``interlock``. Setting a rollout reads the flag's environment, then updates
that strategy in place (PUT, the whole strategy: absolute and idempotent) or
creates it, and only then turns the environment on. The order matters: Unleash
7, asked to enable an environment that has no enabled strategy, adds a default
strategy that serves 100% of users — the one outcome a rollout must never
cause. A flag that has a flexibleRollout strategy without constraints but not
titled ``interlock`` (made by hand in the UI) is adopted rather than doubled.

Lockstep: services of one lockstep group are given the same cohort, which
becomes the strategy's ``groupId``; with the same stickiness (``default``) and
the same percentage Unleash buckets every user identically on every flag of
the group, so the same users get every new version together.

Read-back (`get_rollout`) asks Unleash itself: a disabled environment or a
missing or disabled strategy reads as 0%. ``rollout`` is a string in the API;
percentages are written as short exact decimals ("25", "2.5"), and SDKs bucket
users into whole percents.

Flags are not created by `set_rollout`: a typo in a plan must fail loudly, not
move a new, unused flag. `ensure_flag` creates one (for `interlock stack up`
and tests). The admin token goes only into the Authorization header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from adapters.weights import fmt_percent
from core.ports import AdapterError, TargetReading

STRATEGY = "flexibleRollout"
TITLE = "interlock"


class UnleashFlags:
    """Flags of one Unleash project and environment."""

    def __init__(
        self,
        url: str,
        *,
        token: str,
        project: str = "default",
        environment: str = "development",
        timeout: float = 5.0,
        stickiness: str = "default",
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.project = project
        self.environment = environment
        self.stickiness = stickiness
        self._http = HttpClient(
            "unleash",
            url,
            timeout=timeout,
            headers={"Authorization": token, "Accept": "application/json"},
            secrets=[token],
            policy=policy,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"UnleashFlags({self._http.base_url!r}, project={self.project!r}, environment={self.environment!r})"

    def _feature(self, flag: str) -> str:
        return f"/api/admin/projects/{quote(self.project, safe='')}/features/{quote(flag, safe='')}"

    def _env(self, flag: str) -> str:
        return f"{self._feature(flag)}/environments/{quote(self.environment, safe='')}"

    async def _read_env(self, flag: str) -> dict[str, Any]:
        response = await self._http.request("GET", self._env(flag), final=(404,))
        if response.status_code == 404:
            raise AdapterError(
                f"unleash: flag {flag!r} does not exist in project {self.project!r} "
                f"or has no environment {self.environment!r}"
            )
        body = self._http.parse(response, f"unleash GET {self._env(flag)}")
        if not isinstance(body, dict) or not isinstance(body.get("strategies"), list):
            raise AdapterError(f"unleash: unexpected answer for flag {flag!r}: no strategies list")
        return body

    @staticmethod
    def _ours(strategies: list[Any]) -> dict[str, Any] | None:
        flexible = [s for s in strategies if isinstance(s, dict) and s.get("name") == STRATEGY]
        for strategy in flexible:
            if strategy.get("title") == TITLE:
                return strategy
        for strategy in flexible:
            if not strategy.get("constraints") and not strategy.get("segments"):
                return strategy
        return None

    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"unleash: rollout for {flag!r} must be within 0..100, got {percent:g}")
        env = await self._read_env(flag)
        existing = self._ours(env["strategies"])
        body = {
            "name": STRATEGY,
            "title": TITLE,
            "disabled": False,
            "constraints": [] if existing is None else existing.get("constraints") or [],
            "parameters": {"rollout": fmt_percent(percent), "stickiness": self.stickiness, "groupId": cohort},
        }
        strategies = f"{self._env(flag)}/strategies"
        if existing is None:
            await self._http.request("POST", strategies, json=body)
        else:
            await self._http.request("PUT", f"{strategies}/{quote(str(existing.get('id')), safe='')}", json=body)
        if not env.get("enabled"):
            await self._http.request("POST", f"{self._env(flag)}/on")

    async def get_rollout(self, flag: str) -> float:
        env = await self._read_env(flag)
        if not env.get("enabled"):
            return 0.0
        strategy = self._ours(env["strategies"])
        if strategy is None or strategy.get("disabled"):
            return 0.0
        raw = (strategy.get("parameters") or {}).get("rollout", "100")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise AdapterError(f"unleash: flag {flag!r} has a rollout that is not a number: {raw!r}") from None
        return min(100.0, max(0.0, value))

    async def inspect(self, flag: str) -> TargetReading:
        return TargetReading(await self.get_rollout(flag))

    async def cohort_of(self, flag: str) -> str | None:
        """The groupId of interlock's strategy on `flag`, if it has one."""
        strategy = self._ours((await self._read_env(flag))["strategies"])
        return None if strategy is None else (strategy.get("parameters") or {}).get("groupId")

    async def ensure_flag(self, flag: str, description: str = "") -> None:
        """Create a release flag in the project unless it exists (off, no strategy)."""
        response = await self._http.request("GET", self._feature(flag), final=(404,))
        if response.status_code == 200:
            return
        path = f"/api/admin/projects/{quote(self.project, safe='')}/features"
        body = {"name": flag, "type": "release", "description": description or "rolled out by interlock"}
        await self._http.request("POST", path, json=body, final=(409,))

    async def aclose(self) -> None:
        await self._http.aclose()
