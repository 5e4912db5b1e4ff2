"""Timeouts, bounded retries and secret-safe errors, shared by every real adapter.

Every command the engine sends is absolute and idempotent ("set ranker to
25%"), so retrying one after a timeout or a 503 can never overshoot; that is
what makes blind retries safe here. They are still *bounded* (a few attempts,
capped backoff) because the engine has its own command timeout and a held
rollout must notice quickly that a service stopped answering.

Backoff is "equal jitter": before retry n (n = 0, 1, ...) we sleep a random
time in ``[cap_n / 2, cap_n]`` with ``cap_n = min(max_delay, base_delay * 2**n)``,
so consoles that lost a server at the same moment do not hammer it in step,
yet each wait has a known floor and ceiling (the unit tests pin both).

Errors become `AdapterError` with a message an operator can read on screen:
which server, what went wrong, after how many attempts. Secrets (tokens) are
sent only in headers, never in URLs, and any text that came back from a
server is passed through `redact` before it reaches a message, so a server
that echoes a token cannot leak it. Causes are suppressed (`from None`) so a
traceback cannot carry a request object with its headers either.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Mapping, TypeVar

import httpx

from core import AdapterError

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers worth another try: overload and gateway trouble. Other 4xx are final."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    """Total tries, the first included."""
    base_delay: float = 0.1
    max_delay: float = 1.0

    def delay(self, retry: int, rnd: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (0-based): in [cap/2, cap]."""
        cap = min(self.max_delay, self.base_delay * (2**retry))
        return float(cap / 2 + rnd() * cap / 2)


class Retryable(Exception):
    """Raised inside an attempt to ask for another one; its message is already safe."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rnd: Callable[[], float] = random.random,
) -> T:
    """Run `attempt` until it returns, raising `AdapterError` after `policy.attempts`.

    `attempt` raises `Retryable` for a transient failure and `AdapterError` for a
    final one (which is not retried).
    """
    last = ""
    for n in range(policy.attempts):
        if n:
            await sleep(policy.delay(n - 1, rnd))
        try:
            return await attempt()
        except Retryable as exc:
            last = str(exc)
    tries = "attempt" if policy.attempts == 1 else "attempts"
    raise AdapterError(f"{what}: {last} (gave up after {policy.attempts} {tries})")


def _safe_url(url: httpx.URL) -> str:
    """Scheme, host, port and path only: no user-info, no query string."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


class HttpClient:
    """One `httpx.AsyncClient` for one server, with retries and safe errors.

    `name` labels messages ("unleash", "prometheus"); `secrets` are redacted from
    anything a server sends back. The repr shows the server, never the headers.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rnd: Callable[[], float] = random.random,
    ):
        self.name = name
        self.policy = policy or RetryPolicy()
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self._rnd = rnd
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers=dict(headers or {}),
            transport=transport,
            verify=verify,
            follow_redirects=False,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"HttpClient({self.name!r}, {_safe_url(self._client.base_url)!r})"

    @property
    def base_url(self) -> str:
        return _safe_url(self._client.base_url)

    def safe(self, text: str) -> str:
        return short(redact(text, self._secrets))

    async def request(
        self,
        method: str,
        path: str,
        *,
        ok: Iterable[int] = (200, 201, 202, 204),
        final: Iterable[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request with retries; return the response if its status is in
        `ok` or `final` (statuses the caller handles itself, such as 404)."""
        ok_set, final_set = frozenset(ok), frozenset(final)
        what = f"{self.name} {method} {path}"

        async def attempt() -> httpx.Response:
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.TimeoutException:
                raise Retryable(f"timed out after {self._timeout_s():g}s") from None
            except httpx.TransportError as exc:
                raise Retryable(f"cannot reach {self.base_url} ({type(exc).__name__})") from None
            status = response.status_code
            if status in ok_set or status in final_set:
                return response
            detail = self._detail(response)
            if status in RETRY_STATUSES:
                raise Retryable(f"HTTP {status}{detail}")
            if status in (401, 403):
                raise AdapterError(f"{what}: HTTP {status}: not authorised (check the token){detail}")
            raise AdapterError(f"{what}: HTTP {status}{detail}")

        return await retrying(attempt, what=what, policy=self.policy, sleep=self._sleep, rnd=self._rnd)

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, then the body parsed as JSON (malformed JSON is an `AdapterError`)."""
        response = await self.request(method, path, **kwargs)
        return self.parse(response, f"{self.name} {method} {path}")

    def parse(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise AdapterError(f"{what}: the answer is not JSON: {self.safe(response.text)!r}") from None

    def _detail(self, response: httpx.Response) -> str:
        text = response.text.strip()
        if not text:
            return ""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f": {self.safe(text)}"
        if isinstance(body, dict):
            for key in ("message", "error", "details"):
                if isinstance(body.get(key), str):
                    return f": {self.safe(body[key])}"
        return f": {self.safe(text)}"

    def _timeout_s(self) -> float:
        timeout = self._client.timeout
        return max(t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t is not None)

    async def aclose(self) -> None:
        await self._client.aclose()
