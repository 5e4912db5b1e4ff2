"""The shared HTTP plumbing: bounded retries, jittered backoff, timeouts, safe errors."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from adapters.http_retry import HttpClient, RetryPolicy, Retryable, redact, retrying
from core.ports import AdapterError

TOKEN = "tok-3f9a-very-secret"


def run(coro):
    return asyncio.run(coro)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(handler, *, attempts: int = 3, sleep=None, rnd=lambda: 0.5, timeout: float = 1.0) -> HttpClient:
    return HttpClient(
        "svc",
        "http://svc.test:8080",
        timeout=timeout,
        headers={"Authorization": f"Bearer {TOKEN}"},
        secrets=[TOKEN],
        policy=RetryPolicy(attempts=attempts, base_delay=0.1, max_delay=0.3),
        transport=httpx.MockTransport(handler),
        sleep=sleep or Sleeps(),
        rnd=rnd,
    )


@pytest.mark.parametrize("retry, cap", [(0, 0.1), (1, 0.2), (2, 0.3), (5, 0.3)])
def test_backoff_stays_between_half_the_cap_and_the_cap(retry: int, cap: float) -> None:
    policy = RetryPolicy(attempts=9, base_delay=0.1, max_delay=0.3)
    assert policy.delay(retry, lambda: 0.0) == pytest.approx(cap / 2)
    assert policy.delay(retry, lambda: 0.999999) == pytest.approx(cap, rel=1e-5)
    assert policy.delay(retry, lambda: 0.5) == pytest.approx(cap * 0.75)


def test_jitter_really_varies_the_delay() -> None:
    policy = RetryPolicy(attempts=9, base_delay=0.1, max_delay=1.0)
    delays = {round(policy.delay(3), 6) for _ in range(20)}
    assert len(delays) > 10
    assert all(0.4 <= d <= 0.8 for d in delays)


def test_retrying_gives_up_after_the_bounded_number_of_attempts() -> None:
    calls = 0
    sleeps = Sleeps()

    async def attempt() -> int:
        nonlocal calls
        calls += 1
        raise Retryable("down")

    with pytest.raises(AdapterError, match=r"thing: down \(gave up after 4 attempts\)"):
        run(retrying(attempt, what="thing", policy=RetryPolicy(4, 0.1, 0.3), sleep=sleeps, rnd=lambda: 1.0))
    assert calls == 4
    assert sleeps.calls == pytest.approx([0.1, 0.2, 0.3])  # no sleep before the first try, none after the last


def test_a_final_error_is_not_retried() -> None:
    calls = 0

    async def attempt() -> int:
        nonlocal calls
        calls += 1
        raise AdapterError("no such flag")

    with pytest.raises(AdapterError, match="no such flag"):
        run(retrying(attempt, what="x", policy=RetryPolicy(5), sleep=Sleeps()))
    assert calls == 1


def test_5xx_is_retried_until_the_server_answers() -> None:
    statuses = iter([503, 502, 200])
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        seen.append(status)
        return httpx.Response(status, json={"ok": status == 200})

    sleeps = Sleeps()
    assert run(client(handler, sleep=sleeps).json("GET", "/x")) == {"ok": True}
    assert seen == [503, 502, 200]
    assert len(sleeps.calls) == 2


def test_5xx_every_time_ends_in_an_adapter_error_with_the_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"message": "database is starting"})

    with pytest.raises(AdapterError) as info:
        run(client(handler).request("PUT", "/flags/a"))
    assert str(info.value) == "svc PUT /flags/a: HTTP 503: database is starting (gave up after 3 attempts)"


def test_4xx_is_final_and_says_what_the_server_said() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"message": "rollout must be a number"})

    with pytest.raises(AdapterError, match="HTTP 400: rollout must be a number"):
        run(client(handler).request("PUT", "/x"))
    assert calls == 1


def test_timeouts_are_retried_then_reported_with_the_limit() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(AdapterError, match=r"timed out after 0\.5s \(gave up after 3 attempts\)"):
        run(client(handler, timeout=0.5).request("GET", "/slow"))
    assert calls == 3


def test_a_server_that_never_answers_is_cut_off_by_the_timeout() -> None:
    async def go() -> tuple[str, float, int]:
        accepted = 0

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            await reader.read()  # hold the connection open and never answer

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        http = HttpClient("svc", f"http://127.0.0.1:{port}", timeout=0.1,
                          policy=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01))
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await http.request("GET", "/")
        except AdapterError as exc:
            message = str(exc)
        finally:
            await http.aclose()
            server.close()
        return message, loop.time() - started, accepted

    message, took, accepted = run(go())
    assert message == "svc GET /: timed out after 0.1s (gave up after 2 attempts)"
    assert accepted == 2
    assert took < 1.0


def test_connection_refused_is_retried_and_named() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(AdapterError, match=r"cannot reach http://svc\.test:8080 \(ConnectError\)"):
        run(client(handler).request("GET", "/"))


def test_malformed_json_is_an_adapter_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    with pytest.raises(AdapterError, match="the answer is not JSON: '<html>proxy error</html>'"):
        run(client(handler).json("GET", "/x"))


def test_auth_errors_never_carry_the_token_even_when_the_server_echoes_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(401, json={"message": f"token {TOKEN} is not valid"})

    calls = 0

    def counting(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return handler(request)

    with pytest.raises(AdapterError) as info:
        run(client(counting).request("GET", "/x"))
    message = str(info.value)
    assert TOKEN not in message
    assert "HTTP 401: not authorised (check the token): token *** is not valid" in message
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert calls == 1  # a wrong token does not get better by retrying


def test_the_client_repr_and_url_hide_credentials() -> None:
    http = HttpClient("svc", "http://user:pw@svc.test:8080/base?key=abc", timeout=1, headers={"Authorization": TOKEN})
    assert repr(http) == "HttpClient('svc', 'http://svc.test:8080/base')"
    assert "pw" not in http.base_url and "abc" not in http.base_url


def test_redact_replaces_every_secret() -> None:
    assert redact("a SECRET b SECRET", ["SECRET", ""]) == "a *** b ***"


def test_a_request_body_reaches_the_server_unchanged() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    run(client(handler).request("PUT", "/flags/a", json={"percent": 25.0}))
    assert bodies == [{"percent": 25.0}]
