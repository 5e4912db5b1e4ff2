"""The generic JSON flag service adapter, against a tiny real HTTP server that
implements the contract in `adapters.flags_http` (and can misbehave on request)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest

from adapters.flags_http import HttpFlags
from adapters.http_retry import RetryPolicy
from core.ports import AdapterError, TargetReading

TOKEN = "flag-svc-secret-42"


class FlagStore:
    def __init__(self) -> None:
        self.flags: dict[str, dict] = {"ranker-v6": {"percent": 0.0, "cohort": ""}, "a b/c": {"percent": 0.0, "cohort": ""}}
        self.failures: list[int] = []
        self.bodies: dict[str, str] = {}
        self.seen: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()


def make_handler(store: FlagStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object | None = None, raw: str | None = None) -> None:
            data = (raw if raw is not None else ("" if body is None else json.dumps(body))).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> str | None:
            store.seen.append((self.command, self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": "bad credentials"})
                return None
            with store.lock:
                if store.failures:
                    self._send(store.failures.pop(0), {"error": "overloaded"})
                    return None
            if not self.path.startswith("/flags/"):
                self._send(404, {"error": "no such route"})
                return None
            name = unquote(self.path.removeprefix("/flags/"))
            if name not in store.flags:
                self._send(404, {"error": f"unknown flag {name}"})
                return None
            return name

        def do_GET(self) -> None:
            name = self._route()
            if name is not None:
                if name in store.bodies:
                    self._send(200, raw=store.bodies[name])
                else:
                    self._send(200, {"percent": store.flags[name]["percent"], "updated_by": "interlock"})

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            name = self._route()
            if name is not None:
                store.flags[name] = {"percent": body["percent"], "cohort": body["cohort"]}
                self._send(204)

    return Handler


@pytest.fixture
def service() -> Iterator[tuple[FlagStore, str]]:
    store = FlagStore()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(store))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield store, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def flags(url: str, token: str | None = TOKEN) -> HttpFlags:
    return HttpFlags(url, token=token, timeout=2.0, policy=RetryPolicy(attempts=3, base_delay=0.005, max_delay=0.01))


async def _set_get(adapter: HttpFlags, flag: str, percent: float, cohort: str) -> float:
    try:
        await adapter.set_rollout(flag, percent, cohort)
        return await adapter.get_rollout(flag)
    finally:
        await adapter.aclose()


def test_set_then_read_back(service: tuple[FlagStore, str]) -> None:
    store, url = service
    assert asyncio.run(_set_get(flags(url), "ranker-v6", 25.0, "embedder+ranker")) == 25.0
    assert store.flags["ranker-v6"] == {"percent": 25.0, "cohort": "embedder+ranker"}
    assert store.seen[0][:2] == ("PUT", "/flags/ranker-v6")


def test_inspect_reads_the_percentage_without_an_owner(service: tuple[FlagStore, str]) -> None:
    store, url = service
    store.flags["ranker-v6"] = {"percent": 40.0, "cohort": "g"}

    async def go() -> TargetReading:
        adapter = flags(url)
        try:
            return await adapter.inspect("ranker-v6")
        finally:
            await adapter.aclose()

    assert asyncio.run(go()) == TargetReading(40.0, owner=None, detail="", warnings=())


def test_a_flag_name_is_one_encoded_path_segment(service: tuple[FlagStore, str]) -> None:
    store, url = service
    assert asyncio.run(_set_get(flags(url), "a b/c", 5, "g")) == 5.0
    assert store.seen[0][1] == "/flags/a%20b%2Fc"


def test_an_unknown_flag_is_not_created(service: tuple[FlagStore, str]) -> None:
    store, url = service
    with pytest.raises(AdapterError, match="flags: flag 'ghost' does not exist"):
        asyncio.run(_set_get(flags(url), "ghost", 5, "g"))
    assert "ghost" not in store.flags and len(store.seen) == 1


def test_overload_answers_are_retried(service: tuple[FlagStore, str]) -> None:
    store, url = service
    store.failures = [503, 429]
    assert asyncio.run(_set_get(flags(url), "ranker-v6", 50, "g")) == 50.0
    assert [s[0] for s in store.seen] == ["PUT", "PUT", "PUT", "GET"]


def test_a_wrong_token_is_final_and_not_shown(service: tuple[FlagStore, str]) -> None:
    store, url = service
    with pytest.raises(AdapterError) as info:
        asyncio.run(_set_get(flags(url, token="nope-secret-9"), "ranker-v6", 5, "g"))
    assert "HTTP 401: not authorised (check the token): bad credentials" in str(info.value)
    assert "nope-secret-9" not in str(info.value)
    assert len(store.seen) == 1


@pytest.mark.parametrize(
    "body, message",
    [("not json", "the answer is not JSON"), ('{"pct": 5}', 'no numeric "percent"'), ('{"percent": "5"}', 'no numeric "percent"'),
     ('{"percent": 140}', "outside 0..100"), ('[1, 2]', 'no numeric "percent"')],
)
def test_malformed_read_backs_are_errors(service: tuple[FlagStore, str], body: str, message: str) -> None:
    store, url = service
    store.bodies["ranker-v6"] = body

    async def read() -> float:
        adapter = flags(url)
        try:
            return await adapter.get_rollout("ranker-v6")
        finally:
            await adapter.aclose()

    with pytest.raises(AdapterError, match=message):
        asyncio.run(read())


def test_nothing_listening_is_reported_after_bounded_retries() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AdapterError, match=r"cannot reach http://127\.0\.0\.1:\d+ \(ConnectError\) \(gave up after 3 attempts\)"):
        asyncio.run(_set_get(flags(f"http://127.0.0.1:{port}"), "x", 5, "g"))
