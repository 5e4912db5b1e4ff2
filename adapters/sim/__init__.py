"""The simulated world, interlock's embedded default environment (`environment: sim`).

`SimWorld` plays flag service, router, metric source and fault injector in one
process, seeded and deterministic; see :mod:`adapters.sim.world` for its
behaviour and :mod:`adapters.sim.model` for the metric models.
"""

from adapters.sim.faults import FAULT_KINDS
from adapters.sim.model import VersionModel
from core import reads
from adapters.sim.world import METRICS, ROUTE_COHORT, SimFaults, SimFlags, SimMetrics, SimRouter, SimWorld

__all__ = [
    "FAULT_KINDS",
    "METRICS",
    "ROUTE_COHORT",
    "SimFaults",
    "SimFlags",
    "SimMetrics",
    "SimRouter",
    "SimWorld",
    "VersionModel",
    "reads",
]
