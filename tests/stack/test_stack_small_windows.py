"""The stack plan's error-rate query on a canary that has served only a handful of requests.

A gate look just after a stage starts sees the canary's first few requests: one error in
five reads as 20%, which fails the stack plan's `errors` gate (`max: 0.1`) on a healthy
canary (it rolled back a CI run). The template therefore answers no data until its window
holds 20 requests. Here, on the real stack, the api canary fails half its requests: on a
trickle of traffic the bare ratio is a number while the template's answer is no data, and
on full traffic the template measures the failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator

import yaml

import pytest

from adapters.clock import RealClock
from adapters.haproxy import HAProxyRouter
from adapters.prometheus import PrometheusMetrics
from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from stackrun import clear_faults, inject, reset, shared_stack, stop_shared

API = {"service": "api", "version": "2.0"}
SELECTOR = 'interlock_requests_total{service="$service",version="$version"}'
PROBES = {
    "bare_error_rate": f'sum(rate({SELECTOR[:-1]},code="500"}}[3s])) / sum(rate({SELECTOR}[3s]))',
    "requests": f"sum(increase({SELECTOR}[3s]))",
}


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def measure(stack: Stack, metric: str) -> float | None:
    queries = yaml.safe_load(stack.plan.read_text(encoding="utf-8"))["environment"]["metrics"]["queries"]

    async def go() -> float | None:
        source = PrometheusMetrics(stack.urls["prometheus"], queries={**queries, **PROBES}, clock=RealClock())
        try:
            return await source.query(metric, API["service"], API["version"], 3.0, time.time())
        finally:
            await source.aclose()

    return asyncio.run(go())


def set_route(stack: Stack, percent: float) -> None:
    async def go() -> None:
        router = HAProxyRouter(stack.urls["haproxy_admin"], timeout=5.0)
        try:
            await router.set_weight("api", percent)
        finally:
            await router.aclose()

    asyncio.run(go())


def until(stack: Stack, check, timeout: float = 20.0) -> tuple[float | None, float | None, float | None]:
    """(requests, bare ratio, template's error_rate) at the first look that satisfies `check`."""
    deadline = time.monotonic() + timeout
    while True:
        look = (measure(stack, "requests"), measure(stack, "bare_error_rate"), measure(stack, "error_rate"))
        if check(*look):
            return look
        assert time.monotonic() < deadline, f"no look satisfied the check; the last: {look}"
        time.sleep(0.25)


def test_the_error_rate_waits_for_twenty_requests_in_its_window(real_stack: Stack) -> None:
    reset(real_stack)
    inject(real_stack, {"kind": "error_rate", "service": "api", "value": 0.5})
    try:
        set_route(real_stack, 1)  # about one request in two seconds reaches the canary
        requests, bare, templated = until(real_stack, lambda n, bare, t: n is not None and 0 < n < 20 and bare is not None)
        assert templated is None, (requests, bare, templated)  # a trickle: no data, not a verdict

        set_route(real_stack, 100)
        requests, bare, templated = until(real_stack, lambda n, bare, t: n is not None and n >= 40 and t is not None)
        assert templated is not None and 0.3 < templated < 0.7, (requests, bare, templated)
    finally:
        clear_faults(real_stack)
        reset(real_stack)
