"""`interlock sim serve`: the simulated world's services as real HTTP servers on 127.0.0.1.

The in-process simulated world answers the engine's questions directly. To
prove the real adapters, the services must exist: this runs, for every moving
service of a plan, a *stable* and a *canary* HTTP listener (each on its own
port, so HAProxy can weigh them as two servers), one listener for a static
service, and one admin port. All of it is one asyncio process built on the
same `SimWorld` and metric models (`adapters.sim.model`):

- A request to a listener is answered as the version's model says *right
  now*: an error (HTTP 500) with the version's error probability, a latency
  drawn from its log-normal mixture, a prediction from its normal mixture.
  Contracts still bite: the world knows the real flag and route percentages
  (the load generator reads them from Unleash and HAProxy), so a consumer
  whose traffic crosses a producer version it cannot read really degrades.
- Latency is scaled: the server sleeps ``latency_scale`` × the simulated
  latency (default 0.01, so a 60 ms ranker answers in 0.6 ms and tests stay
  quick) but records the simulated latency itself in its histogram, so
  latency gates see the plan's milliseconds.
- Admin port: ``GET /metrics`` (Prometheus text, see `adapters.sim.exposition`),
  ``GET /healthz``, ``GET /state`` (listeners, exposure, faults, load),
  ``POST /faults`` with a drill's ``inject`` mapping, ``DELETE /faults`` (all,
  or the one in the body), ``PUT /exposure`` to set flag/route percentages
  by hand when no Unleash or HAProxy is polled, and ``GET``/``PUT /mirror`` to copy a
  service's requests to its canary (shadow stages, `adapters.sim.serve_mirror`). Service
  faults (error_rate, latency, prediction_drift, schema_break, shadow_disagreement) change
  the versions' models; data faults (stale_data, missing_fields, schema_drift) spoil the
  feeds consumers read, which ``/metrics`` exports (`adapters.sim.data.InputExport`);
  ``metrics_outage`` makes ``/metrics`` answer 503 (Prometheus then scrapes
  nothing). Adapter faults (flag_service_outage, router_timeout, slow_adapter)
  are refused: on the real stack, stop or slow the real server instead.
- With a ``load`` section, the built-in load generator (`adapters.sim.loadgen`)
  sends traffic and keeps the world's exposure in step with the real servers.

`python -m adapters.sim.serve --config FILE` runs it from a JSON config (what
`interlock stack up` writes); `tui.cli.stack_cmd.sim_serve_main` is the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from adapters.clock import RealClock
import adapters.sim.model as model
from adapters.sim.data import InputExport
from adapters.sim.exposition import Registry
from adapters.sim.httpmini import Handler, HttpServer, Request, Response, start_server
from adapters.sim.serve_mirror import ServeMirrors
from adapters.sim.world import SimWorld
from core import Plan
from core import load_plan
from core import AdapterError
from core import InputError

ADAPTER_FAULTS = ("flag_service_outage", "router_timeout", "slow_adapter")
ROLES = {"stable": "old", "canary": "new"}
DEFAULT_LATENCY_SCALE = 0.01
WORLD_FLOOR = 1e-6
"""Percent: the least exposure the world is told (see `SimServer.apply_exposure`)."""


@dataclass
class LoadConfig:
    """The built-in load generator; see `adapters.sim.loadgen`."""

    rps_scale: float = 1.0
    """Requests per second per service = the plan's ``sim.rps`` × this."""
    concurrency: int = 4
    routes: dict[str, str] = field(default_factory=dict)
    """Route → the HAProxy frontend (``127.0.0.1:port``) its traffic goes through."""
    unleash_url: str | None = None
    unleash_project: str = "default"
    unleash_environment: str = "development"
    token_env: str | None = None
    """The environment variable holding the Unleash admin token (never the token itself)."""
    haproxy_admin: str | None = None
    poll_interval: float = 0.25


@dataclass
class ServeConfig:
    plan: str
    seed: int = 0
    latency_scale: float = DEFAULT_LATENCY_SCALE
    admin_port: int = 0
    listeners: dict[str, dict[str, int]] = field(default_factory=dict)
    """Service → role (``stable``/``canary``) → port; missing or 0 picks a free port."""
    ready_file: str | None = None
    """Written (JSON: pid, admin port, listeners) once every port is bound."""
    load: LoadConfig | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = json.loads(text)
        load = data.pop("load", None)
        return cls(**data, load=LoadConfig(**load) if load is not None else None)


def roles_of(plan: Plan, service: str) -> tuple[str, ...]:
    return ("stable", "canary") if plan.services[service].moves else ("stable",)


def version_of(plan: Plan, service: str, role: str) -> str:
    s = plan.services[service]
    return s.to.version if role == "canary" and s.to is not None else s.from_.version


def reference_bins(plan: Plan, service: str) -> list[float]:
    """Bin shares of the old version as configured, before any neighbour or fault."""
    p = model.resolve_params(plan.services[service].sim)[0]
    sigma = model.LATENCY_SIGMA_PER_SPREAD * p.latency_spread
    comp = model.Component(1.0, p.error_rate, p.latency_ms, sigma, p.prediction_mean, p.prediction_std)
    return model.VersionModel((comp,), 0.0, 0.0).bin_probabilities()


def default_cohorts(plan: Plan) -> dict[str, str]:
    """Flag → the cohort interlock gives it (its lockstep group's members joined by ``+``), for a
    flag that has none yet: a canary's requests may arrive before the world hears the flag rose,
    and they must then be seen on the same cohort as their lockstep partners'."""
    from core import compile_plan

    graph = compile_plan(plan)
    out = {}
    for members in graph.groups:
        for name in members:
            flag = plan.exposure_of(name).flag
            if flag:
                out[flag] = "+".join(members)
    return out


def _json(status: int, body: Any) -> Response:
    return Response(status, (json.dumps(body, sort_keys=True) + "\n").encode(), "application/json")


class SimServer:
    """The listeners, the admin API and the world behind them."""

    def __init__(self, config: ServeConfig, plan: Plan):
        self.config = config
        self.plan = plan
        self.world = SimWorld(plan, seed=config.seed, clock=RealClock())
        self.rng = random.Random(config.seed)
        versions = [(s, version_of(plan, s, r)) for s in plan.services for r in roles_of(plan, s)]
        self.registry = Registry(versions, {s: reference_bins(plan, s) for s in plan.services})
        self.registry.inputs = InputExport(self.world)
        self.listeners: dict[str, dict[str, int]] = {}
        self.admin_port = 0
        self.load_stats: dict[str, dict[str, Any]] = {}
        self.exposure_source = "admin"
        self._servers: list[HttpServer] = []
        self.flags: dict[str, tuple[float, str]] = {}
        self.routes: dict[str, float] = {}
        self.default_cohorts = default_cohorts(plan)
        for name, service in plan.services.items():
            exp = plan.exposure_of(name)
            if service.moves and exp.flag:
                self.flags[exp.flag] = (0.0, self.default_cohorts[exp.flag])
            if service.moves and exp.route:
                self.routes[exp.route] = 0.0
        self._flagged_routes = {
            exp.route for n, s in plan.services.items() if s.moves and (exp := plan.exposure_of(n)).route and exp.flag
        }
        self._sync_exposure_gauges()
        self.mirrors = ServeMirrors(self)
        """Copies of stable requests to the canary (shadow stages; `adapters.sim.serve_mirror`)."""

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        await self.apply_exposure(dict(self.flags), dict(self.routes))
        for service in self.plan.services:
            ports = self.config.listeners.get(service, {})
            for role in roles_of(self.plan, service):
                server = await start_server(self._listener(service, role), ports.get(role, 0))
                self._servers.append(server)
                self.listeners.setdefault(service, {})[role] = server.port
        admin = await start_server(self._admin, self.config.admin_port)
        self._servers.append(admin)
        self.admin_port = admin.port
        if self.config.ready_file:
            ready = Path(self.config.ready_file)
            tmp = ready.with_name(f".{ready.name}.tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "admin_port": self.admin_port,
                                       "listeners": self.listeners}, sort_keys=True), encoding="utf-8")
            os.replace(tmp, ready)

    async def close(self) -> None:
        await self.mirrors.close()
        for server in self._servers:
            await server.close()

    # -- the services -------------------------------------------------------

    def _listener(self, service: str, role: str) -> Handler:
        version = version_of(self.plan, service, role)
        side = ROLES[role]
        scale = self.config.latency_scale

        async def answer(request: Request) -> Response:
            m = self.world.version_model(service, side)
            comps = m.components
            comp = comps[0] if len(comps) == 1 else self.rng.choices(comps, [c.weight for c in comps])[0]
            latency_ms = self.rng.lognormvariate(math.log(comp.latency_ms), comp.sigma)
            failed = self.rng.random() < comp.error_rate
            await asyncio.sleep(latency_ms * scale / 1000.0)
            request_id = self.mirrors.request_id(service, role, request)
            prediction = None if failed else self.mirrors.prediction(service, side, comp, request_id)
            code = 500 if failed else 200
            self.registry.observe(service, version, code, latency_ms / 1000.0, prediction)
            body = {"service": service, "version": version, "prediction": prediction}
            if role == "stable":
                self.mirrors.copy(service, request, request_id, prediction)
            return _json(code, body)

        return answer

    # -- exposure -----------------------------------------------------------

    async def apply_exposure(self, flags: dict[str, tuple[float, str]], routes: dict[str, float]) -> None:
        """Set flag (percent, cohort) and route percentages; unknown names raise AdapterError.

        What the world is told: a service with a flag takes its exposure from the flag alone,
        since the flag carries the cohort that keeps a lockstep group's users together (its
        route still decides which listener answers); a route-only service takes its route.
        And never exactly 0%: requests reach a canary listener as soon as HAProxy's weight
        moves, a poll before the world hears of it, and at a stale 0% the world would say the
        canary's users see the *old* version of a lockstep partner (the limit from below) and
        answer with contract errors that never happen. A sliver above 0 keeps partners in step.
        """
        for flag, (percent, cohort) in flags.items():
            await self.world.flags.set_rollout(flag, max(percent, WORLD_FLOOR), cohort)
            self.flags[flag] = (percent, cohort)
        for route, percent in routes.items():
            governed = route in self._flagged_routes
            await self.world.router.set_weight(route, 100.0 if governed else max(percent, WORLD_FLOOR))
            self.routes[route] = percent
        self._sync_exposure_gauges()

    def exposure(self) -> dict[str, Any]:
        return {
            "flags": {f: {"percent": p, "cohort": c} for f, (p, c) in sorted(self.flags.items())},
            "routes": dict(sorted(self.routes.items())),
            "services": {s: round(100 * self.world.canary_fraction(s), 3) for s in self.plan.services},
        }

    def _sync_exposure_gauges(self) -> None:
        self.registry.exposure = {("flag", f): p for f, (p, _) in self.flags.items()}
        self.registry.exposure.update({("route", r): p for r, p in self.routes.items()})

    # -- admin --------------------------------------------------------------

    async def _admin(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        method = request.method
        if path == "/metrics" and method == "GET":
            if any(f["kind"] == "metrics_outage" for f in self.world.active_faults):
                return Response(503, b"metrics outage injected\n")
            self.registry.faults = len(self.world.active_faults)
            self.registry.inputs.scrape(time.time())
            return Response(200, self.registry.render().encode(), "text/plain; version=0.0.4")
        if path == "/healthz" and method == "GET":
            return Response(200, b"ok\n")
        if path == "/state" and method == "GET":
            return _json(200, self.state())
        if path == "/faults":
            return await self._faults(method, request.body)
        if path == "/exposure" and method == "PUT":
            return await self._put_exposure(request.body)
        if path == "/mirror":
            return _json(*await self.mirrors.admin(method, request.body))
        if path in ("/metrics", "/healthz", "/state", "/exposure"):
            return _json(405, {"error": f"{method} is not allowed on {path}"})
        return _json(404, {"error": f"no such endpoint {path}"})

    def state(self) -> dict[str, Any]:
        return {"listeners": self.listeners, "admin_port": self.admin_port,
                "exposure_source": self.exposure_source, "exposure": self.exposure(),
                "faults": self.world.active_faults, "load": self.load_stats, "mirrors": dict(self.mirrors.percent)}

    async def _faults(self, method: str, body: bytes) -> Response:
        try:
            fault = json.loads(body) if body.strip() else None
        except ValueError:
            return _json(400, {"error": "the body is not JSON"})
        if fault is not None and not isinstance(fault, dict):
            return _json(400, {"error": "a fault is a JSON object, a drill's `inject` mapping"})
        now = time.time()
        try:
            if method == "POST":
                if fault is None:
                    return _json(400, {"error": "POST /faults needs a fault in the body"})
                if fault.get("kind") in ADAPTER_FAULTS:
                    return _json(400, {"error": f"{fault['kind']} is an adapter fault: on the real stack, "
                                                "stop or slow the real server (SIGSTOP Unleash, delay HAProxy's admin) "
                                                "instead"})
                fault.pop("duration", None)
                await self.world.faults.inject(fault, now)
            elif method == "DELETE":
                for active in [fault] if fault is not None else self.world.active_faults:
                    await self.world.faults.clear(active, now)
            else:
                return _json(405, {"error": f"{method} is not allowed on /faults"})
        except AdapterError as exc:
            return _json(400, {"error": str(exc).removeprefix("sim: ")})
        return _json(200, {"faults": self.world.active_faults})

    async def _put_exposure(self, body: bytes) -> Response:
        try:
            data = json.loads(body)
            flags = {f: (float(e["percent"]), str(e.get("cohort") or self.default_cohorts.get(f, f)))
                     for f, e in data.get("flags", {}).items()}
            routes = {r: float(p) for r, p in data.get("routes", {}).items()}
            await self.apply_exposure(flags, routes)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _json(400, {"error": f"expected {{flags: {{name: {{percent, cohort}}}}, routes: {{name: percent}}}}: {exc}"})
        except AdapterError as exc:
            return _json(400, {"error": str(exc).removeprefix("sim: ")})
        return _json(200, self.exposure())


async def serve(config: ServeConfig, stop: asyncio.Event | None = None,
                on_started: Callable[[SimServer], None] | None = None) -> SimServer:
    """Run until `stop` is set (or forever); `on_started` sees the server once its ports are bound."""
    plan, _ = load_plan(Path(config.plan))
    server = SimServer(config, plan)
    tasks: list[asyncio.Task[None]] = []
    if config.load is not None:
        from adapters.sim.loadgen import start_load

        tasks = await start_load(server, config.load, before=server.start)
    else:
        await server.start()
    if on_started is not None:
        on_started(server)
    try:
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.close()
    return server


def run(config: ServeConfig, on_started: Callable[[SimServer], None] | None = None) -> int:
    """Serve in the foreground until SIGTERM or SIGINT; 2 when the config cannot work."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop, on_started)

    try:
        asyncio.run(main())
    except (AdapterError, InputError, OSError) as exc:
        lines = [p.format() for p in exc.problems] if isinstance(exc, InputError) else [f"sim serve: {exc}"]
        print("\n".join(lines), file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.sim.serve")
    parser.add_argument("--config", type=Path, required=True, help="a ServeConfig JSON file")
    args = parser.parse_args(argv)
    try:
        config = ServeConfig.from_json(args.config.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
