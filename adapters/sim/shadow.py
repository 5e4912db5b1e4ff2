"""Shadow traffic in the simulated world: mirrored requests and how far two versions agree.

A shadow stage (`core.shadow`) copies a service's live requests to its new version while
0% of users see it. In the simulated world that is per request: with a mirror on, the new
version answers `mirror × (1 - canary fraction)` of the service's requests on top of its
own canary traffic, so every metric of the new version (errors, latency, predictions) has
data at 0% exposure, and the copies' answers count nowhere else: not as served while bad,
not in any consumer's traffic. Copies flow through the shadowed producers' new versions
(a lockstep group shadows together; `adapters.sim.model`'s propagation sees a mirrored
producer as new for a mirrored consumer's new side).

`prediction_agreement` is the share of mirrored requests on which the new version's
prediction is within `AGREEMENT_TOLERANCE` of the old version's prediction *for the same
request*. The two versions are modelled as answering one request with correlated scores
(`PAIRED_CORRELATION`): the difference of the two predictions is normal with the
difference of their means and a small spread, so two identical versions agree on about
98% of requests, and a mean shift of 0.1 drops that to a few percent. The fault
`shadow_disagreement` (value v) makes the new version answer a share v of requests
independently of the old one, *from the same distribution*: its prediction histogram
(PSI, JS) does not move, only agreement sees it.
"""

from __future__ import annotations

import math
from typing import Any

import adapters.sim.model as model
from adapters.sim.statefile import percent_of
from core import AdapterError

AGREEMENT_TOLERANCE = 0.05
"""Two predictions agree when they differ by at most this (scores are on [0, 1])."""

PAIRED_CORRELATION = 0.99
"""How closely two versions of one model score the same request (a retrained model)."""


def moments(version: model.VersionModel) -> tuple[float, float]:
    """(mean, standard deviation) of a version's predictions (a normal mixture)."""
    mean = sum(c.weight * c.prediction_mean for c in version.components)
    second = sum(c.weight * (c.prediction_std ** 2 + c.prediction_mean ** 2) for c in version.components)
    return mean, math.sqrt(max(second - mean * mean, 1e-12))


def _within(mean: float, sd: float, tolerance: float) -> float:
    """P(|D| <= tolerance) for D normal(mean, sd)."""
    phi = model._phi
    return phi((tolerance - mean) / sd) - phi((-tolerance - mean) / sd)


def agreement(
    old: model.VersionModel, new: model.VersionModel, disagree: float = 0.0,
    tolerance: float = AGREEMENT_TOLERANCE,
) -> float:
    """The probability that the two versions' predictions for one request agree within
    `tolerance`, when a share `disagree` of the new version's answers ignore the request."""
    mean_old, sd_old = moments(old)
    mean_new, sd_new = moments(new)
    shift = mean_new - mean_old
    rho = PAIRED_CORRELATION
    paired = math.sqrt((sd_new * rho - sd_old) ** 2 + sd_new ** 2 * (1.0 - rho ** 2))
    independent = math.sqrt(sd_new ** 2 + sd_old ** 2)
    return (1.0 - disagree) * _within(shift, paired, tolerance) + disagree * _within(shift, independent, tolerance)


class Mirroring:
    """The mirror table of `SimWorld` (a mixin: the world owns the rest)."""

    _mirrors: dict[str, float]
    _faults: list[dict[str, Any]]
    seed: int

    def mirror_fraction(self, service: str) -> float:
        """The share of the service's baseline requests copied to its new version."""
        return self._mirrors.get(service, 0.0) / 100.0

    def _set_mirror(self, service: str, percent: float) -> None:
        if not self._service(service).moves:  # type: ignore[attr-defined]
            raise AdapterError(f"sim: {service!r} has no new version to mirror requests to")
        value = percent_of(percent)
        self._settle(None)  # type: ignore[attr-defined]  # changes from another moment are recorded first
        if value > 0:
            self._mirrors[service] = value
        else:
            self._mirrors.pop(service, None)
        self._log({"mirror": service, "percent": value})  # type: ignore[attr-defined]
        self._changed(None, moved={service})  # type: ignore[attr-defined]

    def _mirrored_requests(self, service: str, window: float) -> int:
        """Copies the new version answered over the window."""
        share = (1.0 - self.canary_fraction(service)) * self.mirror_fraction(service)  # type: ignore[attr-defined]
        return round(self._rps(service) * share * max(window, 0.0))  # type: ignore[attr-defined]

    def _disagreement(self, service: str) -> float:
        """The share of requests the new version answers independently (`shadow_disagreement`)."""
        share = sum(float(f["value"]) for f in self._faults
                    if f["kind"] == "shadow_disagreement" and f.get("service") == service and f["_side"] == "new")
        return min(1.0, share)

    def _agreement(self, service: str, side: str, window: float, at: float) -> float | None:
        """`prediction_agreement` of the new version with the old on the mirrored requests of
        the window; None for the old version or without copies."""
        if side != "new":
            return None
        n = self._mirrored_requests(service, window)
        if n < 1:
            return None
        old = self.version_model(service, "old")  # type: ignore[attr-defined]
        new = self.version_model(service, "new")  # type: ignore[attr-defined]
        p = agreement(old, new, self._disagreement(service))
        rng = model.rng_for(self.seed, service, "new", "prediction_agreement", round(at * 1000))
        return model.binomial(rng, n, p) / n


class SimMirror:
    """The world as a `Mirror` (shadow stages)."""

    def __init__(self, world: Any):
        self._world = world

    async def set_mirror(self, service: str, route: str | None, percent: float) -> None:
        await self._world._adapter_call("router_timeout", f"sim: router timed out mirroring {service!r}")
        self._world._set_mirror(service, percent)

    async def get_mirror(self, service: str, route: str | None) -> float:
        return float(self._world.mirror_fraction(service) * 100.0)

    async def aclose(self) -> None:
        """Nothing to release: the world lives in memory (and its state file)."""
