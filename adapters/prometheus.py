"""Prometheus (HTTP API) as a `MetricSource`: instant queries from the plan's templates.

The plan's ``metrics.queries`` maps a gate's metric name to a PromQL template;
``$service``, ``$version`` and ``$window`` are substituted (``${service}`` works
too), the window as a duration Prometheus reads (``30s``, ``1500ms``). Label
values are escaped for a double-quoted PromQL string, so a version such as
``3.1"x`` cannot change the query. Each measurement is one instant query,
``GET /api/v1/query``; ``time=`` is the moment the engine asked about when the
clock is wall time (a real clock at speed 1), and left out otherwise (a
scaled or virtual clock's seconds are not Prometheus's), so Prometheus
evaluates at its own now.

The answer must be one number: a scalar, or a vector with exactly one series
(aggregate in the template with ``sum``/``avg`` when a metric has more). No
series, and NaN (0/0 with no traffic), are *no data*: `None`, which the gate's
``no_data`` setting judges. More than one series, an error answer
(``"status": "error"``), an HTTP error or a non-JSON answer raise
`AdapterError` with Prometheus's own explanation, which holds no secret.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any, Mapping

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from core.clock import Clock
from core.ports import AdapterError


def fmt_window(seconds: float) -> str:
    """A Prometheus duration for a window: whole seconds as ``30s``, else milliseconds."""
    if seconds <= 0:
        raise AdapterError(f"prometheus: a query window must be longer than 0s, got {seconds:g}s")
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{max(1, round(seconds * 1000))}ms"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(template: str, service: str, version: str, window: float) -> str:
    """The PromQL for one measurement."""
    try:
        return Template(template).substitute(service=_label(service), version=_label(version), window=fmt_window(window))
    except (KeyError, ValueError) as exc:
        raise AdapterError(
            f"prometheus: the query template {template!r} has a placeholder other than "
            f"$service, $version, $window ({exc})"
        ) from None


class PrometheusMetrics:
    """Metrics from one Prometheus server."""

    def __init__(
        self,
        url: str,
        *,
        queries: Mapping[str, str],
        clock: Clock | None = None,
        token: str | None = None,
        timeout: float = 5.0,
        policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.queries = dict(queries)
        self._clock = clock
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HttpClient(
            "prometheus", url, timeout=timeout, headers=headers, secrets=[token or ""], policy=policy, transport=transport
        )

    def __repr__(self) -> str:
        return f"PrometheusMetrics({self._http.base_url!r})"

    def _wall_time(self) -> bool:
        clock = self._clock
        return clock is not None and not clock.virtual and clock.speed == 1.0

    async def query(self, metric: str, service: str, version: str, window: float, at: float) -> float | None:
        template = self.queries.get(metric)
        if template is None:
            raise AdapterError(f"prometheus: no query for metric {metric!r} in the plan's metrics.queries")
        params = {"query": render(template, service, version, window)}
        if self._wall_time():
            params["time"] = f"{at:.3f}"
        return await self.instant(params)

    async def instant(self, params: Mapping[str, str]) -> float | None:
        """Run an instant query and reduce its answer to one number or None."""
        # Prometheus answers 400/422 with a JSON error body that says what is wrong.
        response = await self._http.request("GET", "/api/v1/query", params=dict(params), ok=(200,), final=(400, 422))
        body = self._http.parse(response, "prometheus GET /api/v1/query")
        if not isinstance(body, dict):
            raise AdapterError("prometheus: the answer is not a JSON object")
        if body.get("status") != "success":
            kind = body.get("errorType") or f"HTTP {response.status_code}"
            raise AdapterError(f"prometheus: {kind}: {self._http.safe(str(body.get('error') or 'no reason given'))}")
        return _value(body.get("data"))

    async def aclose(self) -> None:
        await self._http.aclose()


def _value(data: Any) -> float | None:
    if not isinstance(data, dict):
        raise AdapterError("prometheus: the answer has no data object")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            labels = ", ".join(sorted(str(r.get("metric", {})) for r in result if isinstance(r, dict))[:3])
            raise AdapterError(
                f"prometheus: the query returned {len(result)} series ({labels}); aggregate it to one "
                f"(sum or avg) in metrics.queries"
            )
        sample = result[0]
        return _number(sample.get("value") if isinstance(sample, dict) else None)
    raise AdapterError(f"prometheus: expected a scalar or a vector, got {kind!r}")


def _number(sample: Any) -> float | None:
    if not isinstance(sample, list) or len(sample) != 2:
        raise AdapterError(f"prometheus: malformed sample {str(sample)[:80]!r}")
    try:
        value = float(sample[1])
    except (TypeError, ValueError):
        raise AdapterError(f"prometheus: the sample value {str(sample[1])[:40]!r} is not a number") from None
    return None if math.isnan(value) else value
