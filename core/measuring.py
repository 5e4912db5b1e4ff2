"""What a `Measure` command reads through the metric source, in the shape its gate's judge
needs: one value, a series of points, error and request counts, a histogram, or a tail
(requests slower than the baseline's quantile).

Apart from the engine's loop because it is the one part of acting that knows the judges'
shapes; the engine only dispatches to it."""

from __future__ import annotations

from core.clock import Clock
from core.commands import Measure
from core.events import Measured
from core.ports import MetricSource

TAIL_BASELINE_WINDOW = 60.0
"""Seconds of baseline traffic a quantile gate places the baseline's quantile on, at least."""


async def _one_side(metrics: MetricSource, clock: Clock, cmd: Measure, version: str) -> tuple[float | None, list[float] | None]:
    """What one version measures, in the shape the gate's judge needs."""
    at = clock.now()
    query = metrics.query
    if cmd.shape == "value":
        return await query(cmd.metric, cmd.service, version, cmd.window, at), None
    if cmd.shape == "series":
        step = cmd.window / cmd.points
        points = []
        for k in range(cmd.points):
            value = await query(cmd.metric, cmd.service, version, step, at - cmd.window + (k + 1) * step)
            if value is not None and value == value:
                points.append(float(value))
        return None, points
    if cmd.shape == "counts":
        rate = await query(cmd.metric, cmd.service, version, cmd.window, at)
        requests = await query("requests", cmd.service, version, cmd.window, at)
        if rate is None or requests is None or rate != rate or requests != requests:
            return None, None
        return None, [float(round(rate * requests)), float(round(requests))]
    bins = await metrics.histogram(cmd.service, version, cmd.window, at)
    return None, None if bins is None else [float(b) for b in bins]


async def _tail(metrics: MetricSource, clock: Clock, cmd: Measure) -> Measured:
    """The baseline's quantile and the canary's requests slower than it x (1 + margin); a
    metric source that cannot count them gives the two quantiles only."""
    at, query = clock.now(), metrics.query
    value = await query(cmd.metric, cmd.service, cmd.canary_version, cmd.window, at)
    # The baseline's quantile over at least a minute: a short window of a quiet baseline
    # cannot place its p99, and the baseline changes slowly.
    base_window = max(cmd.window, TAIL_BASELINE_WINDOW)
    baseline = await query(cmd.metric, cmd.service, cmd.baseline_version, base_window, at)
    data = base_data = None
    if baseline is not None and baseline == baseline:
        threshold = baseline * (1.0 + cmd.margin)
        slow = await metrics.exceedances(cmd.metric, cmd.service, cmd.canary_version, cmd.window, at, threshold)
        # Only a source that counts exceedances needs `requests` (Prometheus counts none, and
        # a plan for it need not have a `requests` query).
        base_requests = (
            None if slow is None else await query("requests", cmd.service, cmd.baseline_version, base_window, at)
        )
        if slow is not None and base_requests is not None and base_requests == base_requests:
            data, base_data = [float(slow[0]), float(slow[1]), threshold], [float(base_requests)]
    return Measured(
        at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, value=value,
        baseline=baseline, canary_data=data, baseline_data=base_data,
    )


async def measure(metrics: MetricSource, clock: Clock, cmd: Measure) -> Measured:
    if cmd.shape == "tail":
        return await _tail(metrics, clock, cmd)
    value, data = await _one_side(metrics, clock, cmd, cmd.canary_version)
    baseline, baseline_data = (None, None)
    if cmd.with_baseline:
        baseline, baseline_data = await _one_side(metrics, clock, cmd, cmd.baseline_version)
    return Measured(
        at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, value=value,
        baseline=baseline, canary_data=data, baseline_data=baseline_data,
    )
