"""Real servers for the adapter integration tests, each started once per session.

Every fixture starts the real program through the launcher `interlock stack up`
uses (`adapters.stack.*`), on 127.0.0.1 and free ports, in one scratch folder.
Two tiny HTTP backends answer "stable" or "canary" (for counting what a router
really sends where), and a tiny exporter serves Prometheus metrics whose rates
are known exactly.

A server that cannot start fails the test in CI (`CI` set): CI must prove the
adapters against the real servers, never quietly leave them out. On a
developer's machine without the servers the tests are skipped with the reason
(install them with `bash .ci/install-servers`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

from adapters.stack.caddy import CaddyServer, start_caddy
from adapters.stack.haproxy import HAProxyServer, start_haproxy
from adapters.stack.postgres import PgServer, PostgresUnavailable, start_postgres
from adapters.stack.process import ServerUnavailable
from adapters.stack.prometheus import PrometheusServer, start_prometheus
from adapters.stack.unleash import UnleashServer, start_unleash
from stackutil import ROUTE

T = TypeVar("T")


def start_or_skip(what: str, start: Callable[[], T]) -> T:
    try:
        return start()
    except (ServerUnavailable, PostgresUnavailable) as exc:
        message = f"{what} is needed for the stack tests and cannot start: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


class _Quiet(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def named_backend(name: str) -> ThreadingHTTPServer:
    class Handler(_Quiet):
        def do_GET(self) -> None:
            self.reply(name.encode())

    return serve(Handler)


@dataclass
class Exporter:
    """Counters that grow at fixed rates, so rate() answers are known: per second,
    10 requests for every series, and errors at 1% (version 5.0) or 5% (6.0)."""

    server: ThreadingHTTPServer
    started: float = field(default_factory=time.monotonic)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def text(self) -> str:
        t = time.monotonic() - self.started
        lines = ["# TYPE interlock_requests_total counter", "# TYPE interlock_errors_total counter"]
        for version, error_share in (("5.0", 0.01), ("6.0", 0.05)):
            labels = f'service="ranker",version="{version}"'
            lines.append(f"interlock_requests_total{{{labels}}} {10 * t:.6f}")
            lines.append(f"interlock_errors_total{{{labels}}} {10 * t * error_share:.6f}")
        lines += [
            'interlock_requests_total{service="idle",version="1.0"} 0',
            'interlock_errors_total{service="idle",version="1.0"} 0',
            "# TYPE interlock_error_ratio gauge",
            'interlock_error_ratio{service="ranker",version="6.0"} 0.05',
            'interlock_error_ratio{service="idle",version="1.0"} NaN',
        ]
        return "\n".join(lines) + "\n"


def exporter_server() -> Exporter:
    holder: list[Exporter] = []

    class Handler(_Quiet):
        def do_GET(self) -> None:
            self.reply(holder[0].text().encode(), "text/plain; version=0.0.4")

    exporter = Exporter(serve(Handler))
    holder.append(exporter)
    return exporter


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="interlock-stack-"))
    base.chmod(0o711)  # as root, PostgreSQL runs as `postgres` and must enter this folder
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def backends() -> Iterator[dict[str, str]]:
    servers = {name: named_backend(name) for name in ("stable", "canary")}
    try:
        yield {name: f"127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.shutdown()
            s.server_close()


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    exp = exporter_server()
    try:
        yield exp
    finally:
        exp.server.shutdown()
        exp.server.server_close()


@pytest.fixture(scope="session")
def haproxy(stack_dir: Path, backends: dict[str, str]) -> Iterator[HAProxyServer]:
    # Round robin: these tests count exact splits of a few hundred requests without a user
    # header; the user-hashed configuration is measured with real users in test_stack_cohorts.py.
    server = start_or_skip("HAProxy", lambda: start_haproxy(
        stack_dir, {ROUTE: (backends["stable"], backends["canary"])}, cohort=False))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def caddy(stack_dir: Path, backends: dict[str, str]) -> Iterator[CaddyServer]:
    server = start_or_skip("Caddy", lambda: start_caddy(stack_dir, {ROUTE: (backends["stable"], backends["canary"])}))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus(stack_dir: Path, exporter: Exporter) -> Iterator[PrometheusServer]:
    server = start_or_skip("Prometheus", lambda: start_prometheus(stack_dir, [exporter.address], scrape_interval=1.0))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres(stack_dir: Path) -> Iterator[PgServer]:
    server = start_or_skip("PostgreSQL", lambda: start_postgres(stack_dir, database="unleash"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def unleash(stack_dir: Path, postgres: PgServer) -> Iterator[UnleashServer]:
    token = f"*:*.{secrets.token_hex(16)}"
    server = start_or_skip("Unleash", lambda: start_unleash(stack_dir, postgres.url, token=token))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sdk_token(unleash: UnleashServer) -> str:
    """A client token for the official SDK (`tests/stack/sdkjudge.py`), made through the Admin API."""
    from sdkjudge import client_token

    return client_token(unleash.url, unleash.token)
