"""Kubernetes Gateway API as a `Router`: the weights of an HTTPRoute's backendRefs.

A route of the plan is an HTTPRoute (``gateway.networking.k8s.io/v1``) whose
rules send traffic to two backendRefs, the stable and the canary Service. A
canary percentage becomes the pair of weights (P, 100-P) for whole
percentages and (basis points, 10000 - basis points) otherwise, set in every
rule that names both Services, in one request: Kubernetes applies a patch
atomically, so the split never passes through an in-between state.

The write is a JSON Patch (RFC 6902) computed from a fresh read: a ``test``
of each backendRef's name at the index the read found, then an ``add`` of its
weight (``add`` sets a member whether or not it exists). If someone reordered
the rules in between, a test fails, the API server answers 422, and the
adapter reads again and recomputes (a few times), instead of writing a weight
onto the wrong backend. A merge patch would have to replace the whole
``rules`` list and could silently undo someone else's edit.

Read-back takes the canary share of each such rule (a weight left out counts
as 1, the API's default) and reports the largest, because exposure is judged
by the most that any user can get.

Shadow stages (`core.shadow`) mirror a route: `set_mirror` adds (or removes) a
``RequestMirror`` filter on every rule that names both Services, whose backendRef is the
canary Service on the canary's port; the gateway then sends a copy of each request to the
canary and throws its answer away. 100% is written without ``percent`` (every Gateway API
version mirrors everything then); a partial mirror sets ``percent`` (Gateway API v1.2+).
The same guarded JSON Patch: the names are tested before anything is added or removed.

Auth is a bearer token (a ServiceAccount token) from the environment variable
the plan names; ``ca_file`` verifies the API server's certificate. The tests run
against recorded API answers (`httpx.MockTransport`), not a live cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from adapters.weights import percent_of, split
from core import AdapterError, TargetReading

GROUP_VERSION = "gateway.networking.k8s.io/v1"
CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class HTTPRouteRef:
    stable: str
    """The stable version's Service name, as the backendRef names it."""
    canary: str
    httproute: str | None = None
    """The HTTPRoute's name; defaults to the route name."""
    namespace: str | None = None
    """Defaults to the router's namespace."""


class GatewayRouter:
    """Routes as HTTPRoutes, driven through the Kubernetes API."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        routes: Mapping[str, HTTPRouteRef],
        namespace: str = "default",
        timeout: float = 5.0,
        ca_file: str | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.routes = dict(routes)
        self.namespace = namespace
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HttpClient(
            "kubernetes",
            url,
            timeout=timeout,
            headers=headers,
            secrets=[token or ""],
            policy=policy,
            transport=transport,
            verify=ca_file if ca_file else True,
        )

    def __repr__(self) -> str:
        return f"GatewayRouter({self._http.base_url!r}, namespace={self.namespace!r})"

    def _ref(self, route: str) -> tuple[HTTPRouteRef, str]:
        ref = self.routes.get(route)
        if ref is None:
            raise AdapterError(f"gateway_api: route {route!r} has no stable/canary backends in the plan's router.routes")
        ns = quote(ref.namespace or self.namespace, safe="")
        name = quote(ref.httproute or route, safe="")
        return ref, f"/apis/{GROUP_VERSION}/namespaces/{ns}/httproutes/{name}"

    async def _read(self, route: str) -> tuple[HTTPRouteRef, str, list[Any]]:
        ref, path = self._ref(route)
        response = await self._http.request("GET", path, ok=(200,), final=(404,))
        if response.status_code == 404:
            raise AdapterError(f"gateway_api: HTTPRoute {ref.httproute or route!r} not found ({path})")
        body = self._http.parse(response, f"kubernetes GET {path}")
        rules = body.get("spec", {}).get("rules") if isinstance(body, dict) else None
        if not isinstance(rules, list):
            raise AdapterError(f"gateway_api: {path} has no spec.rules")
        return ref, path, rules

    @staticmethod
    def _pairs(ref: HTTPRouteRef, rules: list[Any]) -> list[tuple[int, int, int]]:
        """(rule index, stable index, canary index) for every rule naming both Services."""
        out = []
        for i, rule in enumerate(rules):
            refs = rule.get("backendRefs") if isinstance(rule, dict) else None
            if not isinstance(refs, list):
                continue
            names = [r.get("name") if isinstance(r, dict) and r.get("kind", "Service") == "Service" else None for r in refs]
            if ref.stable in names and ref.canary in names:
                out.append((i, names.index(ref.stable), names.index(ref.canary)))
        return out

    def _no_pair(self, ref: HTTPRouteRef, route: str) -> AdapterError:
        return AdapterError(
            f"gateway_api: HTTPRoute {ref.httproute or route!r} has no rule with both backendRefs "
            f"{ref.stable!r} and {ref.canary!r}"
        )

    async def set_weight(self, route: str, percent: float) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"gateway_api: weight for {route!r} must be within 0..100, got {percent:g}")
        total = 100 if float(percent).is_integer() else 10_000
        canary, stable = split(percent, total)
        for _ in range(CONFLICT_RETRIES):
            ref, path, rules = await self._read(route)
            pairs = self._pairs(ref, rules)
            if not pairs:
                raise self._no_pair(ref, route)
            ops: list[dict[str, Any]] = []
            for i, s, c in pairs:
                for j, name, weight in ((s, ref.stable, stable), (c, ref.canary, canary)):
                    base = f"/spec/rules/{i}/backendRefs/{j}"
                    ops.append({"op": "test", "path": f"{base}/name", "value": name})
                    ops.append({"op": "add", "path": f"{base}/weight", "value": weight})
            response = await self._http.request(
                "PATCH",
                path,
                content=_json_bytes(ops),
                headers={"Content-Type": "application/json-patch+json"},
                ok=(200,),
                final=(409, 422),
            )
            if response.status_code == 200:
                return
        raise AdapterError(
            f"gateway_api: HTTPRoute {ref.httproute or route!r} kept changing while its weights were set "
            f"({CONFLICT_RETRIES} tries)"
        )

    async def set_mirror(self, service: str, route: str | None, percent: float) -> None:
        """Copy `percent` of the route's requests to the canary Service (0: remove the copy)."""
        if route is None:
            raise AdapterError(f"gateway_api: {service!r} has no route to mirror")
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"gateway_api: mirror for {route!r} must be within 0..100, got {percent:g}")
        for _ in range(CONFLICT_RETRIES):
            ref, path, rules = await self._read(route)
            pairs = self._pairs(ref, rules)
            if not pairs:
                raise self._no_pair(ref, route)
            ops = [op for i, s, c in pairs for op in _mirror_ops(ref, rules[i], i, s, c, percent)]
            if not ops:
                return  # already as asked
            response = await self._http.request(
                "PATCH", path, content=_json_bytes(ops), headers={"Content-Type": "application/json-patch+json"},
                ok=(200,), final=(409, 422),
            )
            if response.status_code == 200:
                return
        raise AdapterError(
            f"gateway_api: HTTPRoute {ref.httproute or route!r} kept changing while its mirror was set "
            f"({CONFLICT_RETRIES} tries)"
        )

    async def get_mirror(self, service: str, route: str | None) -> float:
        """The largest share of the route's requests any rule copies to the canary."""
        if route is None:
            return 0.0
        ref, _path, rules = await self._read(route)
        return max((_mirrored(ref, rules[i]) for i, _, _ in self._pairs(ref, rules)), default=0.0)

    async def inspect_route(self, route: str) -> TargetReading:
        """An HTTPRoute's weights record no owner: the reading is the canary's share."""
        return TargetReading(await self.get_weight(route))

    async def get_weight(self, route: str) -> float:
        ref, _path, rules = await self._read(route)
        pairs = self._pairs(ref, rules)
        if not pairs:
            raise self._no_pair(ref, route)
        shares = []
        for i, s, c in pairs:
            refs = rules[i]["backendRefs"]
            shares.append(percent_of(_weight(refs[c]), _weight(refs[s])))
        return max(shares)

    async def aclose(self) -> None:
        await self._http.aclose()


def _weight(backend_ref: dict[str, Any]) -> int:
    value = backend_ref.get("weight", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AdapterError(f"gateway_api: backendRef {backend_ref.get('name')!r} has an invalid weight {value!r}")
    return value


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _mirror_filters(ref: HTTPRouteRef, rule: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(index, filter) of the rule's RequestMirror filters that copy to the canary Service."""
    filters = rule.get("filters")
    out = []
    for k, f in enumerate(filters if isinstance(filters, list) else []):
        target = f.get("requestMirror", {}).get("backendRef", {}) if isinstance(f, dict) else {}
        if f.get("type") == "RequestMirror" and isinstance(target, dict) and target.get("name") == ref.canary:
            out.append((k, f))
    return out


def _mirrored(ref: HTTPRouteRef, rule: dict[str, Any]) -> float:
    shares = [0.0]
    for _, f in _mirror_filters(ref, rule):
        mirror = f["requestMirror"]
        if isinstance(mirror.get("percent"), int):
            shares.append(float(mirror["percent"]))
        elif isinstance(mirror.get("fraction"), dict):
            fraction = mirror["fraction"]
            shares.append(100.0 * fraction.get("numerator", 0) / (fraction.get("denominator") or 100))
        else:
            shares.append(100.0)
    return max(shares)


def _mirror_ops(ref: HTTPRouteRef, rule: dict[str, Any], i: int, s: int, c: int, percent: float) -> list[dict[str, Any]]:
    """The JSON Patch that makes rule `i` copy `percent` of its requests to the canary."""
    base = f"/spec/rules/{i}"
    guard: list[dict[str, Any]] = [{"op": "test", "path": f"{base}/backendRefs/{s}/name", "value": ref.stable},
             {"op": "test", "path": f"{base}/backendRefs/{c}/name", "value": ref.canary}]
    present = _mirror_filters(ref, rule)
    if percent == 0.0:
        if not present:
            return []
        ops = list(guard)
        for k, _ in sorted(present, reverse=True):  # later indices first: removals shift the rest
            ops += [{"op": "test", "path": f"{base}/filters/{k}/requestMirror/backendRef/name", "value": ref.canary},
                    {"op": "remove", "path": f"{base}/filters/{k}"}]
        return ops
    canary = rule["backendRefs"][c]
    backend = {key: canary[key] for key in ("group", "kind", "namespace", "name", "port") if key in canary}
    mirror: dict[str, Any] = {"backendRef": backend}
    if percent < 100.0:
        mirror["percent"] = max(1, round(percent))
    wanted = {"type": "RequestMirror", "requestMirror": mirror}
    if len(present) == 1 and present[0][1] == wanted:
        return []
    ops = list(guard)
    for k, _ in sorted(present, reverse=True):
        ops.append({"op": "remove", "path": f"{base}/filters/{k}"})
    if isinstance(rule.get("filters"), list):
        ops.append({"op": "add", "path": f"{base}/filters/-", "value": wanted})
    else:
        ops.append({"op": "add", "path": f"{base}/filters", "value": [wanted]})
    return ops
