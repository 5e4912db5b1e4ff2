"""A private HAProxy on 127.0.0.1: one frontend and one stable/canary backend per route.

The configuration is what `adapters.haproxy` expects and documents: each route
is a backend of the same name with servers ``stable`` (``id 1``, weight 100)
and ``canary`` (``id 2``, weight 0, so a fresh or reloaded HAProxy sends nothing
to the new version), and the runtime API on a loopback TCP stats socket at
admin level. Every backend balances on a hash of the user header
(``balance hdr(X-User)``) with ``hash-type consistent``: runtime weights apply
to the very next request, and because every backend has the same server ids
and weights, a user lands on the same side in every route of a lockstep group
(`core.cohorts`). A request without the header falls back to round robin.
``cohort=False`` writes the older ``balance roundrobin`` configuration, which
splits each request on its own (the tests measure what that does to a group).
No health checks: the test backends are up by construction, and a check
would make a backend's weight depend on timing.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from adapters.stack.process import Proc, ServerUnavailable, find_program, port_open, ports, spawn
from core import COHORT_HEADER

_CONFIG = """\
# written by interlock: a private loopback-only HAProxy
global
    stats socket ipv4@127.0.0.1:{admin_port} level admin
    stats timeout 30s
    maxconn 1000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
"""

_ROUTE = """
frontend fe_{route}
    bind 127.0.0.1:{port}
    default_backend {route}

backend {route}
{balance}
    server stable {stable} id 1 weight 100
    server canary {canary} id 2 weight 0
"""
_COHORT = f"    balance hdr({COHORT_HEADER})\n    hash-type consistent"
_ROUND_ROBIN = "    balance roundrobin"


@dataclass
class HAProxyServer:
    proc: Proc
    admin_port: int
    frontends: dict[str, int]
    """Route → the loopback port that route's traffic enters on."""
    config: Path = field(repr=False, default=Path())

    @property
    def admin(self) -> str:
        """The runtime API address, as a plan's ``router.admin`` names it."""
        return f"127.0.0.1:{self.admin_port}"

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.frontends[route]}"

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> HAProxyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _runtime(admin_port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", admin_port), timeout=1.0) as sock:
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def start_haproxy(
    base_dir: Path,
    backends: Mapping[str, tuple[str, str]],
    *,
    timeout: float = 15.0,
    cohort: bool = True,
    name: str = "haproxy",
) -> HAProxyServer:
    """Start HAProxy in `base_dir/<name>`; `backends` maps route → (stable, canary) ``host:port``.
    `cohort` hashes on the user header (the default); False balances round robin."""
    program = find_program("haproxy")
    folder = Path(base_dir).resolve() / name
    folder.mkdir(parents=True, exist_ok=True)
    last: ServerUnavailable | None = None
    for _ in range(3):  # a free port can be taken between choosing and binding it
        admin_port, *route_ports = ports(1 + len(backends))
        frontends = dict(zip(backends, route_ports))
        text = _CONFIG.format(admin_port=admin_port) + "".join(
            _ROUTE.format(route=route, port=frontends[route], stable=stable, canary=canary,
                          balance=_COHORT if cohort else _ROUND_ROBIN)
            for route, (stable, canary) in backends.items()
        )
        config = folder / "haproxy.cfg"
        config.write_text(text, encoding="utf-8")
        proc = spawn("haproxy", [program, "-db", "-f", str(config)], folder)
        try:
            proc.wait_until(
                lambda: port_open(admin_port)
                and "Name: HAProxy" in _runtime(admin_port, "show info")
                and all(port_open(p) for p in route_ports),
                timeout,
                "its runtime API and frontends answer",
            )
        except ServerUnavailable as exc:
            proc.stop()
            last = exc
            if "ddress already in use" in str(exc) or "cannot bind" in str(exc):
                continue
            raise
        return HAProxyServer(proc, admin_port, frontends, config)
    assert last is not None
    raise last
