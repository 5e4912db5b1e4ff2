"""Where a real rollout acts: the flag service, the router and the metric source a plan's
`environment:` names (the `sim` world needs none of this).

Apart from :mod:`core.plan` because only the adapters' factory reads these."""

from __future__ import annotations

from pydantic import Field

from core.spec import Duration, Strict


class FlagsEnv(Strict):
    kind: str
    url: str | None = None
    project: str | None = None
    environment: str | None = None
    token_env: str | None = None
    timeout: Duration = 5.0


class RouteTarget(Strict):
    """Where one route's stable and canary traffic go, in the router's own names."""

    backend: str | None = None
    """HAProxy backend (defaults to the route's name)."""
    stable: str | None = None
    """Stable server (HAProxy), upstream dial (Caddy) or backend Service (Gateway API)."""
    canary: str | None = None
    id: str | None = None
    """Caddy `@id` of the reverse_proxy handler."""
    httproute: str | None = None
    """Gateway API HTTPRoute name (defaults to the route's name)."""
    namespace: str | None = None


class RouterEnv(Strict):
    kind: str
    admin: str | None = None
    url: str | None = None
    timeout: Duration = 5.0
    routes: dict[str, RouteTarget] = Field(default_factory=dict)
    namespace: str | None = None
    token_env: str | None = None
    ca_file: str | None = None


class MetricsEnv(Strict):
    kind: str
    url: str | None = None
    queries: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = None
    timeout: Duration = 5.0


class MirrorEnv(Strict):
    """Who copies live requests to a shadowed service's new version (`core.shadow`), when the
    router cannot: `sim_serve`, the `interlock sim serve` services' admin API."""

    kind: str
    url: str | None = None
    timeout: Duration = 5.0


class Environment(Strict):
    flags: FlagsEnv | None = None
    router: RouterEnv | None = None
    metrics: MetricsEnv | None = None
    mirror: MirrorEnv | None = None
    """Who mirrors requests for shadow stages; unset, a router that can (gateway_api)."""
    staging: bool = False
    """Marks a real environment as staging, where drills may run with --live."""
