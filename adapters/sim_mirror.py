"""The `interlock sim serve` services as a `Mirror`: they copy their own live requests.

HAProxy's runtime API and Caddy cannot copy requests, so on the real stack the services
mirror themselves, as a sidecar or a mesh (Envoy's `request_mirror_policies`) would: the
plan names the sim services' admin API (``environment.mirror: {kind: sim_serve, url:
http://127.0.0.1:PORT}``) and interlock turns a service's mirror on and off there.

The contract (`adapters.sim.serve`):

``PUT {url}/mirror`` with ``{"service": name, "percent": 100}``
    The stable listener of `service` copies `percent` of its requests, over HTTP, to the
    service's canary listener, throws the copies' answers away, and counts how often the two
    predictions agree. Absolute and idempotent (retried after a timeout or a 5xx).
``GET {url}/mirror``
    ``{"mirrors": {service: percent, ...}}``, read from the server itself.
"""

from __future__ import annotations

import math

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from core import AdapterError


class SimServeMirror:
    """Mirrors through the sim services' admin API (see the module's docstring)."""

    def __init__(self, url: str, *, timeout: float = 5.0, policy: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        if "://" not in url:
            url = f"http://{url}"
        self._http = HttpClient("mirror", url, timeout=timeout, policy=policy, transport=transport)

    def __repr__(self) -> str:
        return f"SimServeMirror({self._http.base_url!r})"

    async def set_mirror(self, service: str, route: str | None, percent: float) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"mirror: percent for {service!r} must be within 0..100, got {percent:g}")
        await self._http.request("PUT", "/mirror", json={"service": service, "percent": percent}, ok=(200,))

    async def get_mirror(self, service: str, route: str | None) -> float:
        body = await self._http.json("GET", "/mirror", ok=(200,))
        mirrors = body.get("mirrors") if isinstance(body, dict) else None
        if not isinstance(mirrors, dict):
            raise AdapterError(f"mirror: GET /mirror gave no \"mirrors\" object: {self._http.safe(str(body))!r}")
        value = mirrors.get(service, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise AdapterError(f"mirror: {service!r} reads {self._http.safe(repr(value))}, not a percentage")
        return float(value)

    async def aclose(self) -> None:
        await self._http.aclose()
