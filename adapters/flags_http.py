"""A generic JSON flag service as a `FlagService`, for in-house flag systems.

A team whose flags live in its own service puts this small HTTP contract in
front of it and points the plan at it (``flags: {kind: http, url: ...}``).

The contract
------------
``PUT {url}/flags/{name}`` with the JSON body ``{"percent": 25.0, "cohort": "embedder+ranker"}``
    Set the flag so that `percent` (0..100, a number) of users get the new
    version. `cohort` is the bucketing key: flags set with the same cohort and
    percentage must select the *same* users (hash the user with the cohort, not
    with the flag name), which is how a lockstep group moves together. The
    call is absolute and must be idempotent: interlock retries it after a
    timeout or a 429/5xx. Answer 200 or 204 (any body is ignored); 404 when
    the flag does not exist (interlock does not create flags).
``GET {url}/flags/{name}``
    Answer 200 with ``{"percent": 25.0}`` (other fields are ignored): the
    percentage the service applies *now*, read from its own store, because
    interlock compares it with its journal after a restart. 404 when the flag
    does not exist.

`{name}` is percent-encoded as one path segment. When the plan names a
`token_env`, every request carries ``Authorization: Bearer <token>``; answer 401
or 403 to a wrong one (not retried). Answers 429, 500, 502, 503 and 504 and
network errors are retried a few times with jittered backoff; anything else
is final.
"""

from __future__ import annotations

import math
from urllib.parse import quote

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from core import AdapterError, TargetReading


class HttpFlags:
    """Flags behind the contract above."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HttpClient(
            "flags", url, timeout=timeout, headers=headers, secrets=[token or ""], policy=policy, transport=transport
        )

    def __repr__(self) -> str:
        return f"HttpFlags({self._http.base_url!r})"

    @staticmethod
    def _path(flag: str) -> str:
        return f"/flags/{quote(flag, safe='')}"

    def _missing(self, flag: str) -> AdapterError:
        return AdapterError(f"flags: flag {flag!r} does not exist at {self._http.base_url}")

    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"flags: rollout for {flag!r} must be within 0..100, got {percent:g}")
        response = await self._http.request(
            "PUT", self._path(flag), json={"percent": percent, "cohort": cohort}, ok=(200, 201, 204), final=(404,)
        )
        if response.status_code == 404:
            raise self._missing(flag)

    async def get_rollout(self, flag: str) -> float:
        response = await self._http.request("GET", self._path(flag), ok=(200,), final=(404,))
        if response.status_code == 404:
            raise self._missing(flag)
        body = self._http.parse(response, f"flags GET {self._path(flag)}")
        value = body.get("percent") if isinstance(body, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise AdapterError(f"flags: GET {self._path(flag)} gave no numeric \"percent\": {self._http.safe(str(body))!r}")
        if not 0.0 <= value <= 100.0:
            raise AdapterError(f"flags: flag {flag!r} reads {value:g}%, outside 0..100")
        return float(value)

    async def inspect(self, flag: str) -> TargetReading:
        """The contract has one percentage per flag and no owner: the reading is that percentage."""
        return TargetReading(await self.get_rollout(flag))

    async def aclose(self) -> None:
        await self._http.aclose()
