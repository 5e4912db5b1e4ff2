"""HAProxy and Caddy adapters against the real servers: weights set through their
admin interfaces, read back from them, and checked by sending real requests
through the proxy to two backends that answer "stable" or "canary"."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from adapters.caddy import CaddyRouter, Upstreams
from adapters.haproxy import HAProxyRouter
from adapters.http_retry import RetryPolicy
from adapters.stack.caddy import CaddyServer
from adapters.stack.haproxy import HAProxyServer
from core.ports import AdapterError, TargetReading
from stackutil import ROUTE, count_answers


def set_weight(router, percent: float) -> float:
    """Set and read back in one event loop (an httpx client belongs to the loop it first ran in)."""

    async def go() -> float:
        await router.set_weight(ROUTE, percent)
        return await router.get_weight(ROUTE)

    return asyncio.run(go())


# -- HAProxy ---------------------------------------------------------------


def test_haproxy_applies_a_weight_to_the_very_next_request(haproxy: HAProxyServer) -> None:
    router = HAProxyRouter(haproxy.admin)
    assert set_weight(router, 0) == 0.0
    assert count_answers(haproxy.url(ROUTE), 20) == {"stable": 20}
    assert set_weight(router, 100) == 100.0
    assert count_answers(haproxy.url(ROUTE), 20) == {"canary": 20}
    assert set_weight(router, 0) == 0.0
    assert count_answers(haproxy.url(ROUTE), 20) == {"stable": 20}


@pytest.mark.parametrize("percent", [25, 50, 5])
def test_haproxy_splits_traffic_as_the_weights_say(haproxy: HAProxyServer, percent: int) -> None:
    router = HAProxyRouter(haproxy.admin)
    assert set_weight(router, percent) == float(percent)
    counts = count_answers(haproxy.url(ROUTE), 200)
    assert abs(counts.get("canary", 0) - 2 * percent) <= 3, counts
    assert asyncio.run(router.get_weight(ROUTE)) == float(percent)


def test_haproxy_unknown_backend_is_reported_in_haproxys_words(haproxy: HAProxyServer) -> None:
    router = HAProxyRouter(haproxy.admin)
    with pytest.raises(AdapterError, match=r"haproxy: set weight ranker/canary 5: No such (backend|server)"):
        asyncio.run(router.set_weight("ranker", 5))
    with pytest.raises(AdapterError, match=r"haproxy: get weight ranker/canary: No such (backend|server)"):
        asyncio.run(router.get_weight("ranker"))


def test_haproxy_that_stops_answering_fails_within_the_bounded_retries(haproxy: HAProxyServer) -> None:
    router = HAProxyRouter(haproxy.admin, timeout=0.3, policy=RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.05))
    set_weight(router, 10)
    haproxy.proc.pause()
    try:
        started = time.monotonic()
        with pytest.raises(AdapterError, match=r"timed out after 0\.3s \(gave up after 2 attempts\)"):
            asyncio.run(router.set_weight(ROUTE, 50))
        assert time.monotonic() - started < 2.0
    finally:
        haproxy.proc.resume()
    # The frozen HAProxy runs the lines queued in its backlog when it wakes: a partly applied
    # change, which the fixed-total weights keep between the old and the new split.
    assert 10.0 <= asyncio.run(router.get_weight(ROUTE)) <= 50.0
    assert set_weight(router, 50) == 50.0
    assert set_weight(router, 0) == 0.0


# -- Caddy -----------------------------------------------------------------


class caddy_router:
    """A fresh CaddyRouter for each event loop: `set_weight(caddy_router(...), 25)`."""

    def __init__(self, caddy: CaddyServer, backends: dict[str, str]):
        self.args = (caddy.admin_url, {ROUTE: Upstreams(backends["stable"], backends["canary"])})

    async def _with(self, call):
        router = CaddyRouter(self.args[0], routes=self.args[1])
        try:
            return await call(router)
        finally:
            await router.aclose()

    async def set_weight(self, route: str, percent: float) -> None:
        await self._with(lambda r: r.set_weight(route, percent))

    async def get_weight(self, route: str) -> float:
        return await self._with(lambda r: r.get_weight(route))

    async def inspect_route(self, route: str) -> TargetReading:
        return await self._with(lambda r: r.inspect_route(route))


@pytest.mark.parametrize("percent, requests, canary", [(25, 100, 25), (1, 100, 1), (50, 40, 20), (0, 30, 0), (100, 30, 30)])
def test_caddy_splits_the_next_requests_exactly_by_the_ratio(
    caddy: CaddyServer, backends: dict[str, str], percent: float, requests: int, canary: int
) -> None:
    router = caddy_router(caddy, backends)
    assert set_weight(router, percent) == float(percent)
    counts = count_answers(caddy.url(ROUTE), requests)
    assert counts.get("canary", 0) == canary, counts
    assert counts.get("stable", 0) == requests - canary, counts


def test_caddy_upstream_list_is_the_ratio_and_reads_back(caddy: CaddyServer, backends: dict[str, str]) -> None:
    router = caddy_router(caddy, backends)
    set_weight(router, 25)
    upstreams = httpx.get(f"{caddy.admin_url}/id/{ROUTE}/upstreams").json()
    assert [u["dial"] for u in upstreams] == [backends["stable"]] * 3 + [backends["canary"]]
    assert set_weight(router, 0.5) == 0.5
    assert len(httpx.get(f"{caddy.admin_url}/id/{ROUTE}/upstreams").json()) == 200


def test_caddy_a_stranger_in_the_upstreams_is_reported(caddy: CaddyServer, backends: dict[str, str]) -> None:
    router = caddy_router(caddy, backends)
    set_weight(router, 50)
    response = httpx.patch(
        f"{caddy.admin_url}/id/{ROUTE}/upstreams",
        json=[{"dial": backends["stable"]}, {"dial": "127.0.0.1:1"}],
    )
    assert response.status_code == 200
    try:
        with pytest.raises(AdapterError, match=r"upstreams that are neither stable nor canary: \['127\.0\.0\.1:1'\]"):
            asyncio.run(router.get_weight(ROUTE))
    finally:
        assert set_weight(router, 0) == 0.0


def test_caddy_unknown_route_id_is_reported(caddy: CaddyServer, backends: dict[str, str]) -> None:
    router = CaddyRouter(caddy.admin_url, routes={"ranker": Upstreams(backends["stable"], backends["canary"])},
                         policy=RetryPolicy(attempts=1))
    with pytest.raises(AdapterError, match=r"caddy PATCH /id/ranker/upstreams: HTTP (400|404): unknown object ID 'ranker'"):
        asyncio.run(router.set_weight("ranker", 5))
