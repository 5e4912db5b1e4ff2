"""Gate measurements over the whole rollout, for sparklines and charts.

The state keeps only the current stage's gate runs (the reducer needs no
more). An operator wants the trend across stages, so the console keeps its
own bounded history, built from the same `Measured` events the journal
holds; a watcher rebuilds exactly the same history from the journal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core import Event, Measured
from core import classify_measurement
from core import Context


@dataclass(frozen=True, slots=True)
class Point:
    """One measurement of one gate of one service."""

    at: float
    value: float | None
    baseline: float | None
    phase: str | None
    """The gate's verdict on this measurement (None: ignored)."""
    error: str | None = None


class MetricHistory:
    """Per (service, gate): the last `keep` measurements, oldest first."""

    def __init__(self, ctx: Context, keep: int = 240) -> None:
        self.ctx = ctx
        self.keep = keep
        self._points: dict[tuple[str, str], deque[Point]] = {}
        self.version: dict[str, int] = {}
        """Per service: how many measurements it has had (a cheap change marker)."""

    def record(self, events: Iterable[Event]) -> set[str]:
        """Take the measurements among `events`; returns the services that got one."""
        touched: set[str] = set()
        for event in events:
            if not isinstance(event, Measured) or event.gate not in self.ctx.gates:
                continue
            gate = self.ctx.gates[event.gate]
            phase = classify_measurement(gate, event.value, event.baseline, event.error)
            key = (event.service, event.gate)
            points = self._points.get(key)
            if points is None:
                points = self._points[key] = deque(maxlen=self.keep)
            points.append(Point(event.at, event.value, event.baseline, phase, event.error))
            self.version[event.service] = self.version.get(event.service, 0) + 1
            touched.add(event.service)
        return touched

    def points(self, service: str, gate: str) -> Sequence[Point]:
        return self._points.get((service, gate), ())

    def gates(self, service: str) -> tuple[str, ...]:
        """The service's stage gates, then its shadow's (a shadow-only gate has a history too)."""
        if service not in self.ctx.service_gates:
            return ()
        return tuple(dict.fromkeys((*self.ctx.service_gates[service], *self.ctx.plan.judging(service))))

    def main_gate(self, service: str) -> str | None:
        """The gate a row's sparkline follows: the service's first gate."""
        gates = self.gates(service)
        return gates[0] if gates else None

    def values(self, service: str, last: int) -> list[float]:
        gate = self.main_gate(service)
        if gate is None:
            return []
        points = self.points(service, gate)
        return [p.value for p in list(points)[-last:] if p.value is not None]

    def last_phase(self, service: str) -> str | None:
        gate = self.main_gate(service)
        points = self.points(service, gate) if gate else ()
        return points[-1].phase if points else None
