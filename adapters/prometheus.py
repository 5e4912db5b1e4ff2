"""Prometheus (HTTP API) as a `MetricSource`: instant queries from the plan's templates.

The plan's ``metrics.queries`` maps a gate's metric name to a PromQL template;
``$service``, ``$version``, ``$window`` and ``$contract`` (a data-contract check's
contract, `core.datagates`) are substituted (``${service}`` works
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
``no_data`` setting judges. More than one series, or a query Prometheus rejects
(``bad_data``), is a `ConfigurationError`: the rollout holds for a person, it
never counts against the canary. Other error answers, an HTTP error or a
non-JSON answer raise `AdapterError` with Prometheus's own explanation, which
holds no secret.

`check` (the pre-flight) runs each query once, and compares a query's
``[$window]`` with the scrape interval Prometheus reports
(``/api/v1/status/config``): ``rate()`` over less than two scrapes has no data,
ever.
"""

from __future__ import annotations

import math
from string import Template
from typing import Any, Mapping

import httpx

from adapters.http_retry import HttpClient, RetryPolicy
from core import Clock
from core import format_duration, parse_duration
from core import AdapterError, ConfigurationError
from core import split_metric


def fmt_window(seconds: float) -> str:
    """A Prometheus duration for a window: whole seconds as ``30s``, else milliseconds."""
    if seconds <= 0:
        raise AdapterError(f"prometheus: a query window must be longer than 0s, got {seconds:g}s")
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{max(1, round(seconds * 1000))}ms"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(template: str, service: str, version: str, window: float, contract: str = "") -> str:
    """The PromQL for one measurement (`$contract`: a data-contract check's contract)."""
    try:
        return Template(template).substitute(service=_label(service), version=_label(version), window=fmt_window(window),
                                             contract=_label(contract))
    except (KeyError, ValueError) as exc:
        raise AdapterError(
            f"prometheus: the query template {template!r} has a placeholder other than "
            f"$service, $version, $window, $contract ({exc})"
        ) from None


def template_of(queries: Mapping[str, str], metric: str) -> tuple[str | None, str]:
    """(the query template of `metric`, its contract): a data-contract metric
    (`data_freshness@features`) takes a query written for it, else its base metric's
    (`data_freshness`) with `$contract` filled in."""
    base, contract = split_metric(metric)
    return queries.get(metric, queries.get(base) if contract is not None else None), contract or ""


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
        template, contract = template_of(self.queries, metric)
        if template is None:
            raise AdapterError(f"prometheus: no query for metric {metric!r} in the plan's metrics.queries")
        params = {"query": render(template, service, version, window, contract)}
        if self._wall_time():
            params["time"] = f"{at:.3f}"
        return await self.instant(params)

    async def histogram(self, service: str, version: str, window: float, at: float) -> list[float] | None:
        """Prometheus keeps no binned predictions interlock can ask for: a drift gate needs a
        source that does (the simulated world)."""
        raise AdapterError(f"prometheus: no prediction histograms for {service} (a drift gate needs binned predictions)")

    async def exceedances(
        self, metric: str, service: str, version: str, window: float, at: float, threshold: float
    ) -> tuple[int, int] | None:
        """Not counted here: a latency tail gate judges the two quantiles alone."""
        return None

    async def instant(self, params: Mapping[str, str]) -> float | None:
        """Run an instant query and reduce its answer to one number or None."""
        # Prometheus answers 400/422 with a JSON error body that says what is wrong.
        response = await self._http.request("GET", "/api/v1/query", params=dict(params), ok=(200,), final=(400, 422))
        body = self._http.parse(response, "prometheus GET /api/v1/query")
        if not isinstance(body, dict):
            raise AdapterError("prometheus: the answer is not a JSON object")
        if body.get("status") != "success":
            kind = body.get("errorType") or f"HTTP {response.status_code}"
            error = ConfigurationError if kind == "bad_data" else AdapterError
            raise error(f"prometheus: {kind}: {self._http.safe(str(body.get('error') or 'no reason given'))}")
        return _value(body.get("data"))

    async def scrape_interval(self) -> float | None:
        """The longest scrape interval in Prometheus's loaded configuration (global or any
        job), in seconds; None when the server does not say."""
        import yaml

        body = await self._http.json("GET", "/api/v1/status/config", ok=(200,))
        text = (body.get("data") or {}).get("yaml") if isinstance(body, dict) else None
        try:
            config = yaml.safe_load(text) if isinstance(text, str) else None
        except yaml.YAMLError:
            return None
        if not isinstance(config, dict):
            return None
        found = [(config.get("global") or {}).get("scrape_interval", "1m")]
        found += [job.get("scrape_interval") for job in config.get("scrape_configs") or [] if isinstance(job, dict)]
        seconds = []
        for value in found:
            try:
                seconds.append(parse_duration(value))
            except (ValueError, TypeError):
                continue
        return max(seconds) if seconds else None

    async def check(self, metric: str, service: str, version: str, window: float) -> str | None:
        template, contract = template_of(self.queries, metric)
        if template is None:
            return f"no query for metric {metric!r}; add one to environment.metrics.queries"
        try:
            if "$window" in template or "${window}" in template:
                scrape = await self.scrape_interval()
                if scrape is not None and window < 2 * scrape:
                    return (
                        f"its query's [$window] would be {format_duration(window)}, shorter than twice the scrape "
                        f"interval Prometheus reports ({format_duration(scrape)}): rate() over it has no data, "
                        f"ever; make the window at least {format_duration(2 * scrape)} (the gate's interval; for "
                        "mann_whitney, interval / samples)"
                    )
            # At Prometheus's own now: the engine's clock has not started.
            await self.instant({"query": render(template, service, version, window, contract)})
        except AdapterError as exc:
            return str(exc).removeprefix("prometheus: ")
        return None

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
            raise ConfigurationError(
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
