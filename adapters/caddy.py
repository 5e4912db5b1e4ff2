"""Caddy (admin API) as a `Router`: a reverse proxy's upstream list as a traffic split.

Caddy 2.6 has no weighted load-balancing policy, so a split is written as a
list that repeats upstreams in the ratio: 25% is one canary to three stable
(``[stable, stable, canary, stable]``), 1% one to 99, 0.5% one to 199. The
ratio is the fraction ``percent/100`` with the smallest denominator, capped at
`MAX_SLOTS` upstreams, so every whole and half percentage is exact and reads
back exactly (finer ones take the nearest ratio that fits, and their read-back
differs by that rounding). Canary entries are spread evenly through the list,
so with ``round_robin`` (use it: the default ``random`` policy only follows
the ratio on average) any run of consecutive requests is split as closely as
the ratio allows. A split is one PATCH of the whole list: Caddy swaps it in
atomically, and the next request uses it.

Addressing: the route's ``reverse_proxy`` handler carries an ``"@id"`` (the
route name unless the plan names another), so the list lives at
``/id/<id>/upstreams``, wherever the handler sits in the config. The plan gives
the stable and canary ``dial`` addresses; reading back counts them, and an
upstream that is neither is an error (someone else edited the route).
Caddy's admin API has no authentication: keep it on loopback or a Unix socket.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from adapters.weights import percent_of, ratio
from core import AdapterError, TargetReading

MAX_SLOTS = 200


@dataclass(frozen=True)
class Upstreams:
    stable: str
    """The stable version's dial address, such as ``127.0.0.1:8001``."""
    canary: str
    id: str | None = None
    """The reverse_proxy handler's ``@id``; defaults to the route name."""


def spread(canary: int, stable: int, canary_dial: str, stable_dial: str) -> list[str]:
    """`canary + stable` dial addresses with the canary ones evenly spaced."""
    total = canary + stable
    out: list[str] = []
    for i in range(total):
        hit = (i + 1) * canary // total > i * canary // total
        out.append(canary_dial if hit else stable_dial)
    return out


class CaddyRouter:
    """Routes as Caddy reverse_proxy handlers, driven over the admin API."""

    def __init__(
        self,
        url: str,
        *,
        routes: Mapping[str, Upstreams],
        timeout: float = 5.0,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.routes = dict(routes)
        for name, up in self.routes.items():
            if up.stable == up.canary:
                raise AdapterError(f"caddy: route {name!r} has the same stable and canary upstream {up.stable!r}")
        self._http = HttpClient("caddy", url, timeout=timeout, policy=policy, transport=transport)

    def __repr__(self) -> str:
        return f"CaddyRouter({self._http.base_url!r})"

    def _route(self, route: str) -> tuple[Upstreams, str]:
        found = self.routes.get(route)
        if found is None:
            raise AdapterError(f"caddy: route {route!r} has no stable/canary upstreams in the plan's router.routes")
        return found, f"/id/{quote(found.id or route, safe='')}/upstreams"

    async def set_weight(self, route: str, percent: float) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"caddy: weight for {route!r} must be within 0..100, got {percent:g}")
        up, path = self._route(route)
        canary, stable = ratio(percent, MAX_SLOTS)
        dials = spread(canary, stable, up.canary, up.stable)
        await self._http.request("PATCH", path, json=[{"dial": d} for d in dials], ok=(200,))

    async def inspect_route(self, route: str) -> TargetReading:
        """Caddy's upstream list records no owner: the reading is the canary's share."""
        return TargetReading(await self.get_weight(route))

    async def get_weight(self, route: str) -> float:
        up, path = self._route(route)
        body = await self._http.json("GET", path, ok=(200,))
        if not isinstance(body, list):
            raise AdapterError(f"caddy: {path} is not a list of upstreams")
        counts = Counter(_dial(item) for item in body)
        strangers = sorted(set(counts) - {up.stable, up.canary})
        if strangers:
            raise AdapterError(f"caddy: route {route!r} has upstreams that are neither stable nor canary: {strangers}")
        return percent_of(counts[up.canary], counts[up.stable])

    async def aclose(self) -> None:
        await self._http.aclose()


def _dial(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("dial"), str):
        return str(item["dial"])
    return repr(item)
