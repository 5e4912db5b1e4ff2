"""The `CheckRunner` for real plans: pre-flight `http` checks and hooks over httpx, `run`
checks as child processes (asyncio, no shell), each bounded by its timeout.

Secrets stay out of what comes back: the values of the environment variables the plan
names (`token_env`, ...; `secrets_of`) and secret-looking parts of URLs (`mask_url`)
are replaced by `***` in every detail and output, before the journal sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from typing import Any, Iterable, Mapping, Sequence

import httpx

from adapters.journal_common import mask_url
from core import CheckResult, Plan

BODY_LIMIT = 2000
"""Characters of an HTTP answer kept (an error page says what is wrong in its start)."""

_URL = re.compile(r"https?://[^\s\"'<>]+")


def secrets_of(plan: Plan) -> list[str]:
    """The values of every environment variable the plan names (fields ending in `_env`),
    as set now: what must never be journaled."""
    names: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and key.endswith("_env") and isinstance(item, str):
                    names.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(plan.model_dump(by_alias=True))
    return [value for name in sorted(names) if len(value := os.environ.get(name, "")) >= 4]


class Masker:
    """Hides the given secret values and secret parts of URLs in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _URL.sub(lambda m: mask_url(m.group(0)), text)


def _seconds(value: float) -> str:
    return f"{value:g}s"


class HttpChecks:
    """Runs checks and hooks against the real world (one `httpx.AsyncClient`)."""

    def __init__(self, secrets: Iterable[str] = (), *, client: httpx.AsyncClient | None = None) -> None:
        self.mask = Masker(secrets)
        self._client = client
        self._closed = False

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def http(
        self, url: str, *, timeout: float, status: int | None, payload: Mapping[str, Any] | None = None
    ) -> CheckResult:
        """GET and expect `status`, or POST `payload` as JSON and expect any 2xx."""
        client = self._http()
        try:
            if payload is None:
                answer = await client.get(url, timeout=timeout)
            else:
                body = json.dumps(payload, sort_keys=True).encode()
                answer = await client.post(url, content=body, timeout=timeout,
                                           headers={"content-type": "application/json"})
        except httpx.TimeoutException:
            return CheckResult(False, f"timed out after {_seconds(timeout)}")
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            return CheckResult(False, self.mask(f"cannot reach {url}: {reason}"))
        code = answer.status_code
        passed = code == status if status is not None else 200 <= code < 300
        expected = "" if passed else (f", expected {status}" if status is not None else ", expected 2xx")
        text = answer.text[:BODY_LIMIT]
        return CheckResult(passed, f"HTTP {code}{expected}", self.mask(text))

    async def run(self, argv: Sequence[str], *, timeout: float) -> CheckResult:
        """Run `argv` without a shell, its stdout and stderr together; killed (with its
        process group) at `timeout`."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            return CheckResult(False, self.mask(f"cannot start {argv[0]}: {exc.strerror or type(exc).__name__}"))
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout)
        except asyncio.TimeoutError:
            _kill(process)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), 5.0)
            return CheckResult(False, f"timed out after {_seconds(timeout)} (killed)")
        except asyncio.CancelledError:
            _kill(process)
            raise
        text = self.mask(out.decode(errors="replace"))
        code = process.returncode
        return CheckResult(code == 0, f"exit {code}", text)

    async def aclose(self) -> None:
        if self._client is not None and not self._closed:
            self._closed = True
            await self._client.aclose()


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the check and whatever it started (its own session's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
