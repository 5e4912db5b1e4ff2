"""The Kubernetes Gateway API adapter, against recorded API server answers.

No cluster can run here, so these tests replay answers recorded in the shapes
the Kubernetes API server sends (fixtures/gateway/: an HTTPRoute as `kubectl get
-o json` shows it, and `Status` objects for 401/403/404/422/503). PATCH requests
are applied to the recorded HTTPRoute by a minimal RFC 6902 interpreter (the
`test` and `add` operations the adapter sends), as the API server would.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import httpx
import pytest

from adapters.gateway_api import GatewayRouter, HTTPRouteRef
from adapters.http_retry import RetryPolicy
from core.ports import AdapterError

FIXTURES = Path(__file__).parent / "fixtures" / "gateway"
TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.recorded-sa-token"
ROUTE_PATH = "/apis/gateway.networking.k8s.io/v1/namespaces/recsys/httproutes/embedder"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class RecordedApiServer:
    def __init__(self) -> None:
        self.route = fixture("httproute-embedder.json")
        self.requests: list[httpx.Request] = []
        self.scripted: list[tuple[int, str]] = []
        self.before_patch = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json=fixture("status-401.json"))
        if self.scripted:
            status, name = self.scripted.pop(0)
            return httpx.Response(status, json=fixture(name))
        if request.url.path != ROUTE_PATH:
            return httpx.Response(404, json=fixture("status-404.json"))
        if request.method == "GET":
            return httpx.Response(200, json=self.route)
        if request.method == "PATCH":
            assert request.headers["Content-Type"] == "application/json-patch+json"
            if self.before_patch is not None:
                self.before_patch(self.route)
                self.before_patch = None
            patched = copy.deepcopy(self.route)
            for op in json.loads(request.content):
                *parents, last = [int(p) if p.isdigit() else p for p in op["path"].strip("/").split("/")]
                node = patched
                for part in parents:
                    node = node[part]
                if op["op"] == "test" and node.get(last) != op["value"]:
                    return httpx.Response(422, json=fixture("status-422-test-failed.json"))
                if op["op"] == "add":
                    node[last] = op["value"]
            patched["metadata"]["resourceVersion"] = str(int(patched["metadata"]["resourceVersion"]) + 1)
            self.route = patched
            return httpx.Response(200, json=patched)
        return httpx.Response(405)

    def weights(self, rule: int = 1) -> dict[str, int]:
        return {ref["name"]: ref.get("weight", 1) for ref in self.route["spec"]["rules"][rule]["backendRefs"]}


def router(api: RecordedApiServer, token: str = TOKEN) -> GatewayRouter:
    return GatewayRouter(
        "https://10.96.0.1:443",
        token=token,
        namespace="recsys",
        routes={"embedder": HTTPRouteRef(stable="embedder-v2-4", canary="embedder-v3-0")},
        transport=httpx.MockTransport(api),
        policy=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002),
    )


def run(coro):
    return asyncio.run(coro)


def test_reads_the_recorded_route_as_zero_percent() -> None:
    assert run(router(RecordedApiServer()).get_weight("embedder")) == 0.0


def test_sets_both_weights_in_one_json_patch_guarded_by_tests() -> None:
    api = RecordedApiServer()
    run(router(api).set_weight("embedder", 25))
    assert api.weights() == {"embedder-v2-4": 75, "embedder-v3-0": 25}
    assert api.weights(rule=0) == {"embedder-debug": 1}  # a rule without both backends is left alone
    patch = json.loads(api.requests[-1].content)
    assert patch == [
        {"op": "test", "path": "/spec/rules/1/backendRefs/0/name", "value": "embedder-v2-4"},
        {"op": "add", "path": "/spec/rules/1/backendRefs/0/weight", "value": 75},
        {"op": "test", "path": "/spec/rules/1/backendRefs/1/name", "value": "embedder-v3-0"},
        {"op": "add", "path": "/spec/rules/1/backendRefs/1/weight", "value": 25},
    ]
    assert run(router(api).get_weight("embedder")) == 25.0


def test_fractional_percent_uses_basis_points_and_reads_back_exactly() -> None:
    api = RecordedApiServer()
    run(router(api).set_weight("embedder", 2.5))
    assert api.weights() == {"embedder-v2-4": 9750, "embedder-v3-0": 250}
    assert run(router(api).get_weight("embedder")) == 2.5


def test_a_route_reordered_between_read_and_patch_is_read_again() -> None:
    api = RecordedApiServer()
    api.before_patch = lambda route: route["spec"]["rules"][1]["backendRefs"].reverse()
    run(router(api).set_weight("embedder", 10))
    assert api.weights() == {"embedder-v3-0": 10, "embedder-v2-4": 90}
    assert [r.method for r in api.requests] == ["GET", "PATCH", "GET", "PATCH"]


def test_an_omitted_weight_counts_as_one() -> None:
    api = RecordedApiServer()
    for ref in api.route["spec"]["rules"][1]["backendRefs"]:
        ref.pop("weight")
    assert run(router(api).get_weight("embedder")) == 50.0


def test_a_missing_route_is_named() -> None:
    api = RecordedApiServer()
    r = GatewayRouter("https://10.96.0.1:443", token=TOKEN, namespace="recsys",
                      routes={"ranker": HTTPRouteRef("ranker-v5", "ranker-v6")}, transport=httpx.MockTransport(api))
    with pytest.raises(AdapterError, match="HTTPRoute 'ranker' not found"):
        run(r.get_weight("ranker"))


def test_a_route_without_both_backends_is_an_error() -> None:
    api = RecordedApiServer()
    api.route["spec"]["rules"][1]["backendRefs"].pop()
    with pytest.raises(AdapterError, match="no rule with both backendRefs 'embedder-v2-4' and 'embedder-v3-0'"):
        run(router(api).set_weight("embedder", 5))
    assert all(r.method == "GET" for r in api.requests)


def test_unauthorised_and_forbidden_fail_at_once_without_the_token() -> None:
    api = RecordedApiServer()
    with pytest.raises(AdapterError) as info:
        run(router(api, token="wrong-token-123").get_weight("embedder"))
    assert "HTTP 401: not authorised (check the token): Unauthorized" in str(info.value)
    assert "wrong-token-123" not in str(info.value)
    assert len(api.requests) == 1

    api.scripted = [(403, "status-403.json")]
    with pytest.raises(AdapterError, match="HTTP 403: .*cannot patch resource"):
        run(router(api).get_weight("embedder"))
    assert TOKEN not in repr(router(api))


def test_a_503_from_the_api_server_is_retried() -> None:
    api = RecordedApiServer()
    api.scripted = [(503, "status-503.json")]
    run(router(api).set_weight("embedder", 50))
    assert api.weights() == {"embedder-v2-4": 50, "embedder-v3-0": 50}


def test_a_route_that_keeps_changing_gives_up() -> None:
    api = RecordedApiServer()
    api.scripted = []

    def always_reorder(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            api.route["spec"]["rules"][1]["backendRefs"].reverse()
        return api(request)

    r = GatewayRouter("https://10.96.0.1:443", token=TOKEN, namespace="recsys",
                      routes={"embedder": HTTPRouteRef("embedder-v2-4", "embedder-v3-0")},
                      transport=httpx.MockTransport(always_reorder))
    with pytest.raises(AdapterError, match="kept changing while its weights were set"):
        run(r.set_weight("embedder", 5))
