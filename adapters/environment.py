"""Build the real adapters a plan's `environment:` mapping names.

One place turns ``flags: {kind: unleash, ...}`` into an `UnleashFlags`, reads
tokens from the environment variables the plan names (the plan never holds a
secret), and checks, before anything talks to a server, that the environment
can carry the plan: every service's flag has a flag service, every route a
router that knows its backends, every gate metric a query. All problems come
at once as an `InputError` (``FILE:LINE:COL: environment.flags.token_env: ...``),
and a missing token names the variable, never a value.

Supported kinds: flags ``unleash`` and ``http`` (the generic JSON contract of
`adapters.flags_http`); router ``haproxy``, ``caddy`` and ``gateway_api``;
metrics ``prometheus``. Router fields beyond ``kind``/``admin``/``url``/``timeout``
(``routes``, ``namespace``, ``token_env``, ``ca_file``) are read when the plan
model has them, so this module works before and after they are added.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Coroutine, Mapping

from adapters.caddy import CaddyRouter, Upstreams
from adapters.flags_http import HttpFlags
from adapters.gateway_api import GatewayRouter, HTTPRouteRef
from adapters.haproxy import Backend, HAProxyRouter
from adapters.prometheus import PrometheusMetrics, render
from adapters.unleash import UnleashFlags
from core import Clock
from core import AdapterError, FlagService, MetricSource, Mirror, Router, TargetReading
from core import InputError, Problem, ProblemPath, SourceMap, located

Closer = Callable[[], Coroutine[Any, Any, None]]

FLAG_KINDS = ("unleash", "http")
ROUTER_KINDS = ("haproxy", "caddy", "gateway_api")
METRIC_KINDS = ("prometheus",)


class Unconfigured:
    """Stands in for an adapter the environment does not name (the checks make it unreachable)."""

    def __init__(self, part: str):
        self.part = part

    def _fail(self) -> AdapterError:
        return AdapterError(f"the plan's environment has no {self.part} section")

    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        raise self._fail()

    async def get_rollout(self, flag: str) -> float:
        raise self._fail()

    async def inspect(self, flag: str) -> TargetReading:
        raise self._fail()

    async def set_weight(self, route: str, percent: float) -> None:
        raise self._fail()

    async def get_weight(self, route: str) -> float:
        raise self._fail()

    async def inspect_route(self, route: str) -> TargetReading:
        raise self._fail()

    async def query(self, metric: str, service: str, version: str, window: float, at: float) -> float | None:
        raise self._fail()

    async def check(self, metric: str, service: str, version: str, window: float) -> str | None:
        raise self._fail()

    async def histogram(self, service: str, version: str, window: float, at: float) -> list[float] | None:
        raise self._fail()

    async def exceedances(
        self, metric: str, service: str, version: str, window: float, at: float, threshold: float
    ) -> tuple[int, int] | None:
        raise self._fail()

    async def aclose(self) -> None:
        return None


class _Builder:
    def __init__(self, plan: Any, source: SourceMap | None, environ: Mapping[str, str]):
        self.plan = plan
        self.source = source
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, path: ProblemPath, message: str) -> None:
        self.problems.append(located(self.source, ("environment", *path), message))

    def need(self, section: str, env: Any, field: str, why: str) -> Any:
        value = getattr(env, field, None)
        if not value:
            self.problem((section, field), f"required for kind {env.kind!r}: {why}")
        return value

    def token(self, section: str, env: Any, *, required: bool) -> str | None:
        name = getattr(env, "token_env", None)
        if not name:
            if required:
                self.problem(
                    (section, "token_env"),
                    f"kind {env.kind!r} needs the name of an environment variable holding its token",
                )
            return None
        value = self.environ.get(name)
        if not value:
            self.problem((section, "token_env"), f"environment variable {name} is not set (or empty)")
            return None
        return value


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        return {k: v for k, v in value.model_dump().items() if v is not None}
    return dict(value)


def _routes(env: Any) -> dict[str, dict[str, Any]]:
    return {name: _as_dict(target) for name, target in _as_dict(getattr(env, "routes", None)).items()}


def _flags(b: _Builder, env: Any, owner: str | None) -> FlagService | None:
    if env.kind == "unleash":
        url = b.need("flags", env, "url", "the Unleash server, such as http://127.0.0.1:4242")
        token = b.token("flags", env, required=True)
        if url and token:
            return UnleashFlags(
                url, token=token, project=env.project or "default",
                environment=env.environment or "development", timeout=env.timeout, owner=owner,
            )
        return None
    if env.kind == "http":
        url = b.need("flags", env, "url", "the flag service's base URL")
        token = b.token("flags", env, required=False)
        return HttpFlags(url, token=token, timeout=env.timeout) if url else None
    b.problem(("flags", "kind"), f"unknown flag service {env.kind!r}; expected one of: {', '.join(FLAG_KINDS)}")
    return None


def _router(b: _Builder, env: Any, used: set[str]) -> Router | None:
    routes = _routes(env)
    if env.kind in ("caddy", "gateway_api"):
        for route in sorted(used):
            target = routes.get(route, {})
            if not target.get("stable") or not target.get("canary"):
                b.problem(("router", "routes", route), f"route {route!r} needs its stable and canary backends")
    if env.kind == "haproxy":
        admin = b.need("router", env, "admin", "the runtime API address, such as 127.0.0.1:9999")
        backends = {
            name: Backend(t.get("backend") or name, t.get("stable") or "stable", t.get("canary") or "canary")
            for name, t in routes.items()
        }
        try:
            return HAProxyRouter(admin, routes=backends, timeout=env.timeout) if admin else None
        except AdapterError as exc:
            b.problem(("router", "routes"), str(exc))
            return None
    if env.kind == "caddy":
        url = getattr(env, "url", None) or getattr(env, "admin", None)
        if not url:
            b.problem(("router", "url"), "required for kind 'caddy': the admin API, such as http://127.0.0.1:2019")
            return None
        if "://" not in url:
            url = f"http://{url}"
        ups = {
            n: Upstreams(t["stable"], t["canary"], t.get("id"))
            for n, t in routes.items() if t.get("stable") and t.get("canary")
        }
        try:
            return CaddyRouter(url, routes=ups, timeout=env.timeout)
        except AdapterError as exc:
            b.problem(("router", "routes"), str(exc))
            return None
    if env.kind == "gateway_api":
        url = b.need("router", env, "url", "the Kubernetes API server, such as https://10.0.0.1:6443")
        token = b.token("router", env, required=True)
        refs = {
            n: HTTPRouteRef(t["stable"], t["canary"], t.get("httproute"), t.get("namespace"))
            for n, t in routes.items() if t.get("stable") and t.get("canary")
        }
        if url and token:
            return GatewayRouter(
                url, token=token, routes=refs, namespace=getattr(env, "namespace", None) or "default",
                timeout=env.timeout, ca_file=getattr(env, "ca_file", None),
            )
        return None
    b.problem(("router", "kind"), f"unknown router {env.kind!r}; expected one of: {', '.join(ROUTER_KINDS)}")
    return None


def _metrics(b: _Builder, env: Any, clock: Clock, metrics_used: dict[str, str]) -> MetricSource | None:
    if env.kind != "prometheus":
        b.problem(("metrics", "kind"), f"unknown metric source {env.kind!r}; expected one of: {', '.join(METRIC_KINDS)}")
        return None
    url = b.need("metrics", env, "url", "the Prometheus server, such as http://127.0.0.1:9090")
    token = b.token("metrics", env, required=False)
    for metric, gate in sorted(metrics_used.items()):
        if metric not in env.queries:
            b.problem(("metrics", "queries"), f"no query for metric {metric!r} (gate {gate!r} measures it)")
    for metric, template in sorted(env.queries.items()):
        try:
            render(template, "service", "version", 30.0)
        except AdapterError as exc:
            b.problem(("metrics", "queries", metric), str(exc).removeprefix("prometheus: "))
    return PrometheusMetrics(url, queries=env.queries, clock=clock, token=token, timeout=env.timeout) if url else None


async def cohort_refusals(plan: Any, graph: Any, router: Router, source: SourceMap | None = None) -> list[Problem]:
    """The pre-flight half of `core.cohorts`: for each lockstep group whose services go through
    two or more routes, ask the router whether those routes keep each user on one side.

    Only HAProxy can (the plan check refuses the other kinds); a router that cannot be read
    is a refusal too, since interlock never acts on a world it has not read."""
    if not isinstance(router, HAProxyRouter):
        return []
    problems: list[Problem] = []
    for group in graph.lockstep:
        routes = sorted({r for name in group if (r := plan.exposure_of(name).route)})
        if len(routes) < 2:
            continue
        try:
            found = await router.cohort_problems(routes)
        except AdapterError as exc:
            found = [f"cannot check that its routes keep a cohort: {exc}"]
        problems += [located(source, ("environment", "router"), f"lockstep group {' + '.join(group)}: {text}")
                     for text in found]
    return problems


def build_adapters(
    plan: Any,
    *,
    clock: Clock,
    source: SourceMap | None = None,
    environ: Mapping[str, str] | None = None,
    owner: str | None = None,
) -> tuple[FlagService, Router, MetricSource, Closer]:
    """(flags, router, metrics, close) for a plan whose `environment` is a mapping.

    `owner` is the run the adapters act for: a flag service that can mark what interlock
    owns (Unleash: the strategy's title) marks it with this run.

    Raises `InputError` listing every problem; `close()` closes every client."""
    env = plan.environment
    if env == "sim" or env is None:
        raise ValueError("build_adapters is for real environments; the simulated world builds its own")
    b = _Builder(plan, source, os.environ if environ is None else environ)
    flags_used: set[str] = set()
    routes_used: set[str] = set()
    for name, service in plan.services.items():
        if not service.moves:
            continue
        exposure = plan.exposure_of(name)
        if exposure.flag:
            flags_used.add(exposure.flag)
            if env.flags is None:
                b.problem(("flags",), f"service {name!r} is exposed through flag {exposure.flag!r}, but there is no flag service")
        if exposure.route:
            routes_used.add(exposure.route)
            if env.router is None:
                b.problem(("router",), f"service {name!r} is exposed through route {exposure.route!r}, but there is no router")
    metrics_used = {plan.gates[g].metric: g for name, s in plan.services.items() if s.moves
                    for g in plan.judging(name) if g in plan.gates}
    if metrics_used and env.metrics is None:
        b.problem(("metrics",), f"gates measure {', '.join(sorted(metrics_used))}, but there is no metric source")

    flags = _flags(b, env.flags, owner) if env.flags is not None else None
    router = _router(b, env.router, routes_used) if env.router is not None else None
    metrics = _metrics(b, env.metrics, clock, metrics_used) if env.metrics is not None else None
    built = [a for a in (flags, router, metrics) if a is not None]

    async def close() -> None:
        for adapter in built:
            await adapter.aclose()

    if b.problems:  # nothing has connected yet, so there is nothing to close
        raise InputError(b.problems)
    return (
        flags if flags is not None else Unconfigured("flags"),
        router if router is not None else Unconfigured("router"),
        metrics if metrics is not None else Unconfigured("metrics"),
        close,
    )


def build_mirror(plan: Any, router: Router, close: Closer) -> tuple[Mirror | None, Closer]:
    """Who copies live requests for the plan's shadow stages (`core.shadow`), and a `close`
    that closes it too: `environment.mirror` (the `interlock sim serve` services' admin API),
    else a router that mirrors (Gateway API), else nobody (validation then refuses a shadow)."""
    env = plan.environment
    spec = getattr(env, "mirror", None)
    if spec is not None and spec.kind == "sim_serve" and spec.url:
        from adapters.sim_mirror import SimServeMirror

        mirror = SimServeMirror(spec.url, timeout=spec.timeout)

        async def both() -> None:
            await close()
            await mirror.aclose()

        return mirror, both
    if isinstance(router, Mirror):
        return router, close
    return None, close
