"""`build_adapters`: the plan's environment mapping becomes adapters, or every problem at once."""

from __future__ import annotations

import asyncio
import textwrap
from types import SimpleNamespace

import pytest

from adapters.caddy import CaddyRouter
from adapters.environment import Unconfigured, build_adapters
from adapters.flags_http import HttpFlags
from adapters.gateway_api import GatewayRouter
from adapters.haproxy import HAProxyRouter
from adapters.prometheus import PrometheusMetrics
from adapters.unleash import UnleashFlags
from core.clock import VirtualClock
from core.planload import parse_plan
from core.ports import AdapterError
from core.problems import InputError

SECRET = "*:*.env-secret-5150"

PLAN = """\
rollout: env-test
environment:
  flags:   {kind: unleash, url: "http://127.0.0.1:4242", project: default,
            environment: development, token_env: TEST_UNLEASH_TOKEN}
  router:  {kind: haproxy, admin: "127.0.0.1:9999"}
  metrics: {kind: prometheus, url: "http://127.0.0.1:9090",
            queries: {error_rate: 'sum(rate(errors_total{service="$service",version="$version"}[$window]))'}}
gates:
  errors: {metric: error_rate, max: 0.01}
defaults: {gates: [errors]}
services:
  embedder:
    from: {version: "2.4"}
    to: {version: "3.0"}
    exposure: {flag: embedder-v3, route: embedder}
  ranker:
    depends_on: [embedder]
    from: {version: "5.0"}
    to: {version: "6.0"}
"""


def plan(text: str = PLAN):
    return parse_plan(textwrap.dedent(text), "plan.yaml")


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    p, source = plan(text)
    with pytest.raises(InputError) as info:
        build_adapters(p, clock=VirtualClock(), source=source, environ=environ or {})
    return [pr.format() for pr in info.value.problems]


def test_the_design_mapping_builds_unleash_haproxy_and_prometheus() -> None:
    p, source = plan()
    flags, router, metrics, close = build_adapters(p, clock=VirtualClock(), source=source,
                                                   environ={"TEST_UNLEASH_TOKEN": SECRET}, owner="run-42")
    assert isinstance(flags, UnleashFlags) and (flags.project, flags.environment) == ("default", "development")
    assert flags.owner == "run-42"  # interlock's strategy is marked with the run that builds the adapters
    assert isinstance(router, HAProxyRouter) and router.admin == "127.0.0.1:9999"
    assert isinstance(metrics, PrometheusMetrics) and set(metrics.queries) == {"error_rate"}
    assert SECRET not in repr((flags, router, metrics))
    asyncio.run(close())


def test_a_missing_token_names_the_variable_and_its_place_in_the_file() -> None:
    assert problems(PLAN) == [
        "plan.yaml:4:50: environment.flags.token_env: environment variable TEST_UNLEASH_TOKEN is not set (or empty)"
    ]


def test_every_problem_comes_at_once() -> None:
    text = PLAN.replace("kind: haproxy", "kind: nginx").replace("error_rate: ", "err_rate: ")
    with pytest.raises(InputError) as info:  # `validate` names the gate whose metric has no query
        plan(text)
    (missing,) = [p.format() for p in info.value.problems]
    assert missing.endswith("gates.errors.metric: no query for metric 'error_rate' in environment.metrics.queries "
                            "(queries: err_rate); add one, or the gate cannot measure")
    p, source = plan(PLAN.replace("kind: haproxy", "kind: nginx"))
    p = p.model_copy(update={"environment": p.environment.model_copy(update={
        "metrics": p.environment.metrics.model_copy(update={"queries": {"err_rate": "x"}})})})
    with pytest.raises(InputError) as info:
        build_adapters(p, clock=VirtualClock(), source=source, environ={"TEST_UNLEASH_TOKEN": SECRET})
    found = [pr.format() for pr in info.value.problems]
    assert any("environment.router.kind: unknown router 'nginx'; expected one of: haproxy, caddy, gateway_api" in f for f in found)
    assert any("environment.metrics.queries: no query for metric 'error_rate' (gate 'errors' measures it)" in f for f in found)
    assert all(SECRET not in f for f in found)


def test_services_need_the_adapters_their_exposure_uses() -> None:
    text = PLAN.replace('  router:  {kind: haproxy, admin: "127.0.0.1:9999"}\n', "")
    found = problems(text, {"TEST_UNLEASH_TOKEN": SECRET})
    assert found == ["plan.yaml:3:3: environment.router: service 'embedder' is exposed through route 'embedder', but there is no router"]


def test_a_broken_query_template_is_reported_before_any_query() -> None:
    text = PLAN.replace('[$window]', '[$windw]')
    (found,) = problems(text, {"TEST_UNLEASH_TOKEN": SECRET})
    assert "environment.metrics.queries.error_rate: the query template" in found


def test_generic_http_flags_take_an_optional_token() -> None:
    text = PLAN.replace(
        """{kind: unleash, url: "http://127.0.0.1:4242", project: default,
            environment: development, token_env: TEST_UNLEASH_TOKEN}""",
        '{kind: http, url: "http://127.0.0.1:7000"}',
    )
    p, source = plan(text)
    flags, *_ = build_adapters(p, clock=VirtualClock(), source=source, environ={})
    assert isinstance(flags, HttpFlags)


def _with_router(router: SimpleNamespace):
    p, _ = plan()
    return p.model_copy(update={"environment": p.environment.model_copy(update={"router": router})})


def test_caddy_and_gateway_routes_come_from_router_routes() -> None:
    routes = {"embedder": {"stable": "127.0.0.1:8001", "canary": "127.0.0.1:8002"}}
    caddy = SimpleNamespace(kind="caddy", admin=None, url="127.0.0.1:2019", timeout=2.0, routes=routes)
    _, router, _, _ = build_adapters(_with_router(caddy), clock=VirtualClock(), environ={"TEST_UNLEASH_TOKEN": SECRET})
    assert isinstance(router, CaddyRouter) and router.routes["embedder"].canary == "127.0.0.1:8002"

    gateway = SimpleNamespace(kind="gateway_api", admin=None, url="https://10.0.0.1:6443", timeout=2.0,
                              token_env="TEST_KUBE_TOKEN", namespace="recsys", ca_file=None,
                              routes={"embedder": {"stable": "embedder-v2", "canary": "embedder-v3"}})
    with pytest.raises(InputError, match="environment variable TEST_KUBE_TOKEN is not set"):
        build_adapters(_with_router(gateway), clock=VirtualClock(), environ={"TEST_UNLEASH_TOKEN": SECRET})
    _, router, _, _ = build_adapters(_with_router(gateway), clock=VirtualClock(),
                                     environ={"TEST_UNLEASH_TOKEN": SECRET, "TEST_KUBE_TOKEN": "kube-secret"})
    assert isinstance(router, GatewayRouter) and router.namespace == "recsys"
    assert "kube-secret" not in repr(router)


def test_caddy_without_the_routes_backends_is_a_problem() -> None:
    caddy = SimpleNamespace(kind="caddy", admin=None, url="http://127.0.0.1:2019", timeout=2.0, routes={})
    with pytest.raises(InputError, match="environment.router.routes.embedder: route 'embedder' needs its stable and canary"):
        build_adapters(_with_router(caddy), clock=VirtualClock(), environ={"TEST_UNLEASH_TOKEN": SECRET})


def test_a_sim_plan_is_refused() -> None:
    p, _ = plan("rollout: x\nservices:\n  a: {from: {version: '1'}, to: {version: '2'}}\n")
    with pytest.raises(ValueError):
        build_adapters(p, clock=VirtualClock())


def test_an_unconfigured_part_fails_as_an_adapter_error() -> None:
    with pytest.raises(AdapterError, match="no router section"):
        asyncio.run(Unconfigured("router").set_weight("r", 5))
