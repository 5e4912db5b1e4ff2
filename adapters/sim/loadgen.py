"""The load generator of `interlock sim serve`, and how it keeps the world in step.

What it does, and why this way:

- **Traffic.** Each service gets ``sim.rps × rps_scale`` requests a second from
  a few keep-alive workers. A service with a route that HAProxy fronts is
  requested *through HAProxy*, so its split between the stable and canary
  listeners is whatever HAProxy's weights make it — the thing the HAProxy
  adapter sets. Any other service (a flag-only one, or a route without a
  frontend) is requested directly. Every request is for a random user, named
  in the ``X-User`` header that HAProxy hashes to pick the side (`core.cohorts`),
  so one user sees the same versions on every route of a lockstep group. A
  flag-only service: the generator evaluates the flag for that user exactly as Unleash's SDKs do for a ``flexibleRollout`` strategy
  (``murmur3_32("<groupId>:<userId>") % 100 + 1 <= rollout``), with the rollout
  and groupId it read from Unleash (below), and sends the request to the
  canary listener if the flag is on for that user. For a service with both a
  flag and a route, the route carries the traffic (interlock sets both to the
  same percentage).
- **Exposure.** Every ``poll_interval`` it reads every flag from Unleash's
  Admin API (interlock's strategy: its rollout and groupId) and each route's
  weight from HAProxy, and applies them to the
  simulated world, which then degrades consumers whose traffic crosses an
  incompatible contract. A reading is applied only after two identical reads
  in a row: interlock moves the services of a lockstep group one after the
  other, milliseconds apart, and a snapshot taken in between would show
  traffic crossing versions that never really meet (real SDKs poll flags
  every few seconds and see such gaps as rarely). Without Unleash or HAProxy
  in the config, exposure is set by hand (``PUT /exposure``).
- A server that stops answering (an outage a test provokes) leaves the last
  reading in force; the poll's errors are counted in ``GET /state``.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any, Awaitable, Callable, cast

from adapters.haproxy import HAProxyRouter
from adapters.http_retry import RetryPolicy
from adapters.sim.httpmini import Connection
from adapters.unleash import UnleashFlags
from core import COHORT_HEADER
from core import AdapterError

SimServer = Any
"""`adapters.sim.serve.SimServer`, which starts this generator (not imported: a cycle)."""
LoadConfig = Any
"""`adapters.sim.serve.LoadConfig`, the plan's `load` section (not imported: a cycle)."""

ONCE = RetryPolicy(attempts=1)


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, as the `murmurhash3js` package Unleash's SDKs use (ASCII keys)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    tail = len(data) & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    rest = data[tail:]
    if len(rest) >= 3:
        k ^= rest[2] << 16
    if len(rest) >= 2:
        k ^= rest[1] << 8
    if rest:
        k ^= rest[0]
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def flag_on(user: str, group: str, percent: float) -> bool:
    """Unleash's flexibleRollout decision for one user (stickiness ``default`` = userId)."""
    return percent > 0 and murmur3_32(f"{group}:{user}".encode()) % 100 + 1 <= percent


Reading = tuple[dict[str, tuple[float, str]], dict[str, float]]


class ExposurePoller:
    """Reads flags from Unleash and weights from HAProxy into the simulated world."""

    def __init__(self, server: SimServer, load: LoadConfig):
        self.server = server
        self.load = load
        plan = server.plan
        moving = [n for n, s in plan.services.items() if s.moves]
        self.flag_names = sorted({f for n in moving if (f := plan.exposure_of(n).flag)}) if load.unleash_url else []
        self.route_names = sorted({r for n in moving if (r := plan.exposure_of(n).route)}) if load.haproxy_admin else []
        self.unleash: UnleashFlags | None = None
        if self.flag_names:
            token = os.environ.get(load.token_env or "", "")
            if not token:
                raise AdapterError(f"sim serve: environment variable {load.token_env or '(none named)'} "
                                   "must hold the Unleash admin token")
            self.unleash = UnleashFlags(load.unleash_url or "", token=token, project=load.unleash_project,
                                        environment=load.unleash_environment, timeout=1.0, policy=ONCE)
        self.router = HAProxyRouter(cast(str, load.haproxy_admin), timeout=1.0, policy=ONCE) if self.route_names else None
        self.stats: dict[str, Any] = {"reads": 0, "errors": 0, "last_error": ""}
        server.load_stats["poller"] = self.stats
        if self.flag_names or self.route_names:
            server.exposure_source = "servers"

    async def read_flags(self) -> dict[str, tuple[float, str]]:
        """Every flag as interlock's strategy has it (Admin API, one read per flag): its rollout
        and groupId; 0% when the environment is off or interlock has no strategy on the flag
        (other strategies are not modelled). The client API an SDK reads cannot be used here:
        it leaves out the titles that mark interlock's strategy."""
        assert self.unleash is not None
        out = {}
        for flag in self.flag_names:
            percent, cohort = await self.unleash.rollout_and_cohort(flag)
            out[flag] = (percent, cohort or self.server.default_cohorts[flag])
        return out

    async def read(self) -> Reading:
        flags = await self.read_flags() if self.flag_names else {}
        routes = {}
        for route in self.route_names:
            assert self.router is not None
            routes[route] = await self.router.get_weight(route)
        return flags, routes

    async def run(self) -> None:
        last: Reading | None = None
        applied: Reading | None = None
        try:
            while True:
                try:
                    reading = await self.read()
                    self.stats["reads"] += 1
                except AdapterError as exc:
                    self.stats["errors"] += 1
                    self.stats["last_error"] = str(exc)
                    reading = None
                if reading is not None and reading == last and reading != applied:
                    await self.server.apply_exposure(*reading)
                    applied = reading
                last = reading
                await asyncio.sleep(self.load.poll_interval)
        finally:
            if self.unleash is not None:
                await self.unleash.aclose()


class Traffic:
    """Requests to every service, through HAProxy where it fronts the service's route."""

    def __init__(self, server: SimServer, load: LoadConfig, seed: int):
        self.server = server
        self.load = load
        self.rng = random.Random(seed)

    def target(self, service: str, user: str) -> tuple[str, str]:
        """(address, how) for `user`'s next request of `service`."""
        plan, listeners = self.server.plan, self.server.listeners[service]
        route = plan.exposure_of(service).route if plan.services[service].moves else None
        if route is not None and route in self.load.routes:
            return self.load.routes[route], "router"
        if not plan.services[service].moves:
            return f"127.0.0.1:{listeners['stable']}", "stable"
        world = self.server.world
        canary = flag_on(user, world.cohort_of(service) or "", 100.0 * world.canary_fraction(service))
        role = "canary" if canary else "stable"
        return f"127.0.0.1:{listeners[role]}", role

    async def worker(self, service: str, period: float, offset: float) -> None:
        loop = asyncio.get_running_loop()
        stats = self.server.load_stats.setdefault(service, {"sent": 0, "failed": 0, "router": 0})
        conns: dict[str, Connection] = {}
        next_at = loop.time() + offset
        try:
            while True:
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                next_at = max(next_at + period, loop.time() - 1.0)  # behind by >1 s: do not burst
                user = f"user-{self.rng.randrange(1_000_000)}"
                address, how = self.target(service, user)
                conn = conns.get(address) or conns.setdefault(address, Connection(address, timeout=2.0))
                try:
                    # HAProxy hashes this header, so a user stays on one side of every route
                    await conn.request("GET", f"/{service}", headers={COHORT_HEADER: user})
                    stats["sent"] += 1
                    stats["router"] += how == "router"
                except (OSError, TimeoutError, ConnectionError):
                    stats["failed"] += 1
        finally:
            for conn in conns.values():
                conn.close()

    def tasks(self) -> list[asyncio.Task[None]]:
        out = []
        workers = max(1, self.load.concurrency)
        for name, service in self.server.plan.services.items():
            rps = (service.sim.rps if service.sim is not None else 200.0) * self.load.rps_scale
            if rps <= 0:
                continue
            period = workers / rps
            for i in range(workers):
                out.append(asyncio.create_task(self.worker(name, period, period * i / workers)))
        return out


async def start_load(server: SimServer, load: LoadConfig,
                     before: Callable[[], Awaitable[None]]) -> list[asyncio.Task[None]]:
    """Check the config, run `before` (binding the listeners), then start the poller and the
    traffic; the caller cancels the tasks to stop them."""
    poller = ExposurePoller(server, load)
    await before()
    tasks = [asyncio.create_task(poller.run())]
    return tasks + Traffic(server, load, server.config.seed + 1).tasks()
