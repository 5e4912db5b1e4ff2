"""The simulated world's bad-traffic accounting: which rates of degraded requests held when,
so a drill's scorecard can count the requests served while bad. A mixin of `SimWorld`,
which owns the models these rates come from.

Every change to the world is recorded at the moment it happened (a fault at its own
time, a flag or route change at the clock's). Exposure changes at one moment are
computed together: a round of commands sets several flags at once, and the models
are brought up to date once, when they are next asked for (a query, a report, or a
change at another moment), instead of once per flag. Everything that reads the
models or the timeline goes through `_model`, which records what waited first.
"""

from __future__ import annotations

import math
from typing import Any

from core import Clock


class Timeline:
    """Bad-traffic accounting for `SimWorld` (see the module's docstring)."""

    _clock: Clock | None
    _last_at: float
    _models: Any
    _moved: set[str]
    _rates: dict[str, float]
    _rates_changed: dict[str, float]
    _timeline: list[tuple[float, dict[str, float]]]
    _deferred: float | None

    def _compute(self) -> Any:
        raise NotImplementedError  # `SimWorld._compute`: the models, brought up to date

    def _model(self) -> Any:
        """The effective models, after recording any exposure changes still waiting."""
        if self._deferred is not None:
            when, self._deferred = self._deferred, None
            self._compute()
            self._record(when)
        return self._compute()

    def bad_rates(self) -> dict[str, float]:
        """Requests per second currently served on a degraded path, per service."""
        self._model()
        return dict(self._rates)

    def bad_requests(self, since: float, until: float, service: str | None = None) -> float:
        """Requests served on a degraded path during [since, until] (one service, or all)."""
        self._model()
        total = 0.0
        rates: dict[str, float] = {}
        for i, (start, changes) in enumerate(self._timeline):
            rates.update(changes)  # in dependency order, as the first (whole) entry set them
            end = self._timeline[i + 1][0] if i + 1 < len(self._timeline) else math.inf
            overlap = min(end, until) - max(start, since)
            if overlap > 0:
                rate = rates.get(service, 0.0) if service else sum(rates.values())
                total += rate * overlap
        return total

    def _seen(self, at: float) -> None:
        self._last_at = max(self._last_at, at)

    def _when(self, at: float | None) -> float:
        """The moment a change at `at` (None: now) is recorded at: never before the last."""
        when = self._clock.now() if self._clock is not None else self._last_at
        last = self._timeline[-1][0] if self._timeline else 0.0
        return max(when if at is None else at, last, last if self._deferred is None else self._deferred)

    def _settle(self, at: float | None, *, exposure: bool = True) -> None:
        """Before the world changes: record the exposure changes still waiting, unless this
        is one more exposure change at the same moment (then they are computed together)."""
        if self._deferred is not None and not (exposure and self._deferred == self._when(at)):
            self._model()

    def _changed(self, at: float | None, moved: set[str] | None = None) -> None:
        """Something changed at `at` (after `_settle`): the exposure of the `moved` services,
        or (None) anything at all. Records the bad-traffic rates from then on; an exposure
        change waits for the models to be asked for (see the module's docstring)."""
        when = self._when(at)
        if moved is not None and self._models is not None:
            self._moved |= moved
            self._deferred = when
            return
        if moved is not None or self._models is not None or self._deferred is not None:
            self._model()  # (not when there is nothing to bring up to date: a new world)
        if moved is None:
            self._models = None
        else:
            self._moved |= moved
        self._compute()
        self._record(when)

    def _record(self, when: float) -> None:
        if self._timeline and self._timeline[-1][0] == when:
            self._timeline[-1][1].update(self._rates_changed)
        else:
            self._timeline.append((when, self._rates_changed))
        self._rates_changed = {}
