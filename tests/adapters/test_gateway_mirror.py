"""Shadow stages through the Gateway API: an HTTPRoute `RequestMirror` filter, against
recorded API server answers (the HTTPRoute of fixtures/gateway/ as `kubectl get -o json`
shows it). PATCH bodies are applied by an RFC 6902 interpreter of the operations the adapter
sends (`test`, `add` including `-` for appending, `remove`), as the API server would."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest

from adapters.gateway_api import GatewayRouter, HTTPRouteRef
from adapters.http_retry import RetryPolicy
from core import Mirror
from core.ports import AdapterError
from test_gateway_api import ROUTE_PATH, TOKEN, RecordedApiServer, fixture


class MirroringApiServer(RecordedApiServer):
    """The recorded server, applying `remove` and list appends too."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method != "PATCH" or request.url.path != ROUTE_PATH:
            return super().__call__(request)
        self.requests.append(request)
        if self.before_patch is not None:
            self.before_patch(self.route)
            self.before_patch = None
        patched = copy.deepcopy(self.route)
        for op in json.loads(request.content):
            *parents, last = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
            node: Any = patched
            for part in parents:
                node = node[part]
            if op["op"] == "test":
                if (node[last] if isinstance(node, list) else node.get(last)) != op["value"]:
                    return httpx.Response(422, json=fixture("status-422-test-failed.json"))
            elif op["op"] == "add":
                if isinstance(node, list):
                    node.append(op["value"]) if last == "-" else node.insert(last, op["value"])
                else:
                    node[last] = op["value"]
            elif op["op"] == "remove":
                del node[last]
        self.route = patched
        return httpx.Response(200, json=patched)

    def filters(self, rule: int = 1) -> list[dict[str, Any]]:
        return list(self.route["spec"]["rules"][rule].get("filters", []))


def router(api: RecordedApiServer) -> GatewayRouter:
    return GatewayRouter(
        "https://10.96.0.1:443", token=TOKEN, namespace="recsys",
        routes={"embedder": HTTPRouteRef(stable="embedder-v2-4", canary="embedder-v3-0")},
        transport=httpx.MockTransport(api), policy=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002),
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_gateway_router_is_a_mirror() -> None:
    assert isinstance(router(MirroringApiServer()), Mirror)


def test_a_shadow_adds_a_request_mirror_filter_to_the_canary_and_removes_it() -> None:
    api = MirroringApiServer()
    assert run(router(api).get_mirror("embedder", "embedder")) == 0.0
    run(router(api).set_mirror("embedder", "embedder", 100.0))
    assert api.filters() == [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"group": "", "kind": "Service", "name": "embedder-v3-0", "port": 8080}}}]
    assert api.filters(rule=0) == []  # a rule without both Services is left alone
    assert api.weights() == {"embedder-v2-4": 100, "embedder-v3-0": 0}  # nobody is exposed
    patch = json.loads(api.requests[-1].content)
    assert patch[:2] == [
        {"op": "test", "path": "/spec/rules/1/backendRefs/0/name", "value": "embedder-v2-4"},
        {"op": "test", "path": "/spec/rules/1/backendRefs/1/name", "value": "embedder-v3-0"},
    ]
    assert run(router(api).get_mirror("embedder", "embedder")) == 100.0
    sent = len(api.requests)
    run(router(api).set_mirror("embedder", "embedder", 100.0))  # idempotent: read, nothing to patch
    assert [r.method for r in api.requests[sent:]] == ["GET"]
    run(router(api).set_mirror("embedder", "embedder", 0.0))
    assert api.filters() == []
    assert run(router(api).get_mirror("embedder", "embedder")) == 0.0


def test_a_partial_mirror_sets_percent_and_keeps_other_filters() -> None:
    api = MirroringApiServer()
    header = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x-team", "value": "rank"}]}}
    api.route["spec"]["rules"][1]["filters"] = [header]
    run(router(api).set_mirror("embedder", "embedder", 25.0))
    assert api.filters()[0] == header
    assert api.filters()[1]["requestMirror"]["percent"] == 25
    assert run(router(api).get_mirror("embedder", "embedder")) == 25.0
    run(router(api).set_mirror("embedder", "embedder", 0.0))
    assert api.filters() == [header]  # only interlock's mirror goes


def test_a_route_reordered_before_the_patch_is_read_again() -> None:
    api = MirroringApiServer()
    api.before_patch = lambda route: route["spec"]["rules"][1]["backendRefs"].reverse()
    run(router(api).set_mirror("embedder", "embedder", 100.0))
    assert [r.method for r in api.requests] == ["GET", "PATCH", "GET", "PATCH"]
    assert api.filters()[0]["requestMirror"]["backendRef"]["name"] == "embedder-v3-0"


def test_a_service_without_a_route_cannot_be_mirrored() -> None:
    with pytest.raises(AdapterError, match="no route to mirror"):
        run(router(MirroringApiServer()).set_mirror("ranker", None, 100.0))


PLAN = """\
rollout: r
environment:
  router: {{kind: {kind}, url: "https://127.0.0.1:6443", admin: "127.0.0.1:9999", token_env: T,
           routes: {{embedder: {{stable: embedder-v2-4, canary: embedder-v3-0}}}}}}
{mirror}services:
  embedder:
    from: {{version: "1"}}
    to: {{version: "2"}}
    exposure: {{route: embedder}}
    shadow: {{side_effect_free: true}}
"""


@pytest.mark.parametrize("kind, mirror, expected", [
    ("gateway_api", "", "GatewayRouter"),
    ("haproxy", "  mirror: {kind: sim_serve, url: 'http://127.0.0.1:9'}\n", "SimServeMirror"),
])
def test_who_mirrors_follows_the_environment(kind: str, mirror: str, expected: str) -> None:
    from adapters.environment import build_adapters, build_mirror
    from core import VirtualClock, parse_plan

    plan, source = parse_plan(PLAN.format(kind=kind, mirror=mirror), "p.yaml")
    _, router_, _, close = build_adapters(plan, clock=VirtualClock(), source=source, environ={"T": "x"})
    found, close_both = build_mirror(plan, router_, close)
    assert type(found).__name__ == expected
    run(close_both())
