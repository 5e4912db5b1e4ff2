"""A private Caddy on 127.0.0.1: one reverse proxy per route, driven by its admin API.

The JSON configuration is what `adapters.caddy` expects: each route is a
server listening on its own loopback port whose one handler is a
``reverse_proxy`` tagged ``"@id": <route>``, with the ``round_robin`` policy
(Caddy 2.6 has no weighted one; the adapter repeats upstreams instead) and the
stable upstream alone to start with. Automatic HTTPS is off, the admin API
listens on loopback, and the config is not persisted (`config.persist:
false`), so nothing outside `base_dir` is written: HOME and the XDG folders
point into it too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from adapters.stack.process import Proc, ServerUnavailable, find_program, http_get, port_open, ports, spawn


@dataclass
class CaddyServer:
    proc: Proc
    admin_port: int
    frontends: dict[str, int]

    @property
    def admin_url(self) -> str:
        """The admin API, as a plan's ``router.url`` names it."""
        return f"http://127.0.0.1:{self.admin_port}"

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.frontends[route]}"

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> CaddyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def caddy_config(admin_port: int, frontends: Mapping[str, int], backends: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    servers = {
        route: {
            "listen": [f"127.0.0.1:{frontends[route]}"],
            "automatic_https": {"disable": True},
            "routes": [
                {
                    "handle": [
                        {
                            "@id": route,
                            "handler": "reverse_proxy",
                            "load_balancing": {"selection_policy": {"policy": "round_robin"}},
                            "upstreams": [{"dial": stable}],
                        }
                    ]
                }
            ],
        }
        for route, (stable, _canary) in backends.items()
    }
    return {
        "admin": {"listen": f"127.0.0.1:{admin_port}", "config": {"persist": False}},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "apps": {"http": {"servers": servers}},
    }


def start_caddy(base_dir: Path, backends: Mapping[str, tuple[str, str]], *, timeout: float = 15.0) -> CaddyServer:
    """Start Caddy in `base_dir/caddy`; `backends` maps route → (stable, canary) ``host:port``."""
    program = find_program("caddy")
    folder = Path(base_dir).resolve() / "caddy"
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_DATA_HOME": str(folder / "data"),
    }
    last: ServerUnavailable | None = None
    for _ in range(3):  # a free port can be taken between choosing and binding it
        admin_port, *route_ports = ports(1 + len(backends))
        frontends = dict(zip(backends, route_ports))
        config = folder / "caddy.json"
        config.write_text(json.dumps(caddy_config(admin_port, frontends, backends), indent=2), encoding="utf-8")
        proc = spawn("caddy", [program, "run", "--config", str(config)], folder, env=env)
        try:
            proc.wait_until(
                lambda: http_get(f"http://127.0.0.1:{admin_port}/config/")[0] == 200
                and all(port_open(p) for p in route_ports),
                timeout,
                "its admin API and frontends answer",
            )
        except ServerUnavailable as exc:
            proc.stop()
            last = exc
            if "address already in use" in str(exc):
                continue
            raise
        return CaddyServer(proc, admin_port, frontends)
    assert last is not None
    raise last
