"""The simulated world as interlock's ports: `FlagService`, `Router`, `MetricSource`,
`CheckRunner` and `FaultInjector`, each a thin face over one shared `SimWorld`.

The engine talks to these exactly as to the real adapters, so outages and slow
calls (the world's adapter faults) happen here, on the port, where a real
adapter would fail.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import adapters.sim.data as data
from core import CheckResult, TargetReading, split_metric

World = Any
"""The `SimWorld` these faces share (not imported: `adapters.sim.world` builds them, and
an import back would make a cycle)."""


class SimFlags:
    """The world as a `FlagService`."""

    def __init__(self, world: World):
        self._world = world

    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        await self._world._adapter_call("flag_service_outage", "sim: flag service unavailable")
        self._world._set_flag(flag, percent, cohort)

    async def get_rollout(self, flag: str) -> float:
        world = self._world
        if world._faults:  # else nothing can slow or stop it: a read-back reads every flag
            await world._adapter_call("flag_service_outage", "sim: flag service unavailable")
        flags = world._flags
        if flag not in flags:
            world._known(flag, flags, "flag")  # raises, naming the known flags
        return flags[flag]

    async def inspect(self, flag: str) -> TargetReading:
        """The simulated flag service has one rule per flag and records no owner."""
        return TargetReading(await self.get_rollout(flag))

    def cohort(self, flag: str) -> str:
        self._world._known(flag, self._world._flags, "flag")
        return self._world._cohorts[flag]

    async def aclose(self) -> None:
        """Nothing to release: the world lives in memory (and its state file)."""


class SimRouter:
    """The world as a `Router`."""

    def __init__(self, world: World):
        self._world = world

    async def set_weight(self, route: str, percent: float) -> None:
        await self._world._adapter_call("router_timeout", f"sim: router timed out setting {route!r}")
        self._world._set_route(route, percent)

    async def get_weight(self, route: str) -> float:
        world = self._world
        if world._faults:
            await world._adapter_call("router_timeout", f"sim: router timed out reading {route!r}")
        routes = world._routes
        if route not in routes:
            world._known(route, routes, "route")  # raises, naming the known routes
        return routes[route]

    async def inspect_route(self, route: str) -> TargetReading:
        """The simulated router has one weight per route and records no owner."""
        return TargetReading(await self.get_weight(route))

    async def aclose(self) -> None:
        """Nothing to release: the world lives in memory (and its state file)."""


class SimMetrics:
    """The world as a `MetricSource` (plus binned prediction histograms for judges)."""

    def __init__(self, world: World):
        self._world = world

    async def query(
        self, metric: str, service: str, version: str, window: float, at: float
    ) -> float | None:
        """`prediction_psi` compares against the `from` version's sample of the same
        window, so asking it of the `from` version itself gives 0. A data metric
        (`data_freshness@features`) is measured on the feed the version reads."""
        base, contract = split_metric(metric)
        if contract is not None:  # a data-contract check: what this version reads
            self._world._seen(at)
            return None if self._world._outage("metrics_outage") else data.query(
                self._world, base, contract, service, version, window, at)
        return self._world._query(metric, service, version, window, at)

    async def check(self, metric: str, service: str, version: str, window: float) -> str | None:
        """The simulated world answers every metric it knows over any window."""
        return None

    async def histogram(
        self, service: str, version: str, window: float, at: float
    ) -> list[float] | None:
        """Counts of predictions in 10 equal bins on [0, 1]; None without traffic or data."""
        return self._world._histogram(service, version, window, at)

    async def exceedances(
        self, metric: str, service: str, version: str, window: float, at: float, threshold: float
    ) -> tuple[int, int] | None:
        """(requests slower than `threshold` ms, requests) of one version over the window,
        for a latency metric; None without traffic or data."""
        return self._world._exceedances(service, version, window, at, threshold)

    async def aclose(self) -> None:
        """Nothing to release: the world lives in memory (and its state file)."""


class SimFaults:
    """The world as a `FaultInjector`; faults live in memory only (never persisted)."""

    def __init__(self, world: World):
        self._world = world

    @property
    def active(self) -> list[dict[str, Any]]:
        return self._world.active_faults

    async def inject(self, fault: dict[str, Any], at: float) -> None:
        self._world._inject(fault, at)

    async def clear(self, fault: dict[str, Any], at: float) -> None:
        self._world._clear(fault, at)

    async def aclose(self) -> None:
        """Nothing to release: the world lives in memory (and its state file)."""


class SimChecks:
    """The world as a `CheckRunner`. Its services answer every pre-flight `http` check with
    the status it expects and every hook with 200 (a `rollback` hook with 404: nobody asks
    for a rollback), except a hook a `hook_failure` fault names (by `hook` and `service`;
    any when absent), which gets the fault's `status` (500 by default; 0: no answer, a
    timeout; a `rollback` hook answering 200 asks for the rollback). `run` checks run for real: they are
    programs on this machine, not part of the simulated world."""

    def __init__(self, world: World):
        self._world = world
        self._real: Any = None

    async def http(
        self, url: str, *, timeout: float, status: int | None, payload: Mapping[str, Any] | None = None
    ) -> CheckResult:
        if payload is not None:
            hook, service = payload.get("type"), payload.get("service")
            for fault in self._world._faults:
                if fault["kind"] != "hook_failure" or fault.get("hook", hook) != hook:
                    continue
                if fault.get("service", service) != service:
                    continue
                code = int(fault.get("status", 500))
                if code == 0:
                    return CheckResult(False, f"timed out after {timeout:g}s (simulated)")
                return CheckResult(200 <= code < 300, f"HTTP {code}, expected 2xx (simulated)")
        if payload is not None and payload.get("type") == "rollback":
            return CheckResult(False, "HTTP 404, expected 2xx (simulated: no rollback asked for)")
        return CheckResult(True, f"HTTP {status or 200} (simulated)")

    async def run(self, argv: Sequence[str], *, timeout: float) -> CheckResult:
        if self._real is None:
            from adapters.checks import HttpChecks

            self._real = HttpChecks()
        result: CheckResult = await self._real.run(argv, timeout=timeout)
        return result

    async def aclose(self) -> None:
        if self._real is not None:
            await self._real.aclose()
