"""Faults the simulated world takes: which kinds exist, what each needs, and how the ones
that change a version's behaviour change its parameters.

Apart from :mod:`adapters.sim.model` (the mathematics of a version) because drills,
`sim serve` and the world all check faults, and new kinds land here."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping, Sequence

from adapters.sim.model import Params
from core import AdapterError

DATA_FAULTS = ("stale_data", "missing_fields", "schema_drift")
"""Faults on the data a producer's version publishes (`adapters.sim.data`): they leave its
requests alone."""
SERVICE_FAULTS = ("error_rate", "latency", "prediction_drift", "schema_break", "shadow_disagreement", *DATA_FAULTS)
FAULT_KINDS = (*SERVICE_FAULTS, "flag_service_outage", "router_timeout", "metrics_outage", "slow_adapter",
               "hook_failure")
_NUMBERS = {"value": (0.0, 1.0), "add_ms": (0.0, math.inf), "multiply": (1e-9, math.inf),
            "shift": (-math.inf, math.inf), "delay_s": (0.0, math.inf), "age": (0.0, math.inf),
            "status": (0, 599)}
_REQUIRED = {"error_rate": ("value",), "prediction_drift": ("shift",), "shadow_disagreement": ("value",),
             "schema_break": ("contract", "produces"), "slow_adapter": ("delay_s",), "missing_fields": ("value",)}


def validate_fault(fault: object) -> None:
    """Reject a fault the world cannot apply (unknown kind, missing or bad fields)."""
    if not isinstance(fault, dict) or fault.get("kind") not in FAULT_KINDS:
        kind = fault.get("kind") if isinstance(fault, dict) else fault
        raise AdapterError(f"sim: unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
    kind = fault["kind"]
    required = _REQUIRED.get(kind, ())
    if kind in SERVICE_FAULTS:
        required = ("service", *required)
    if kind == "latency" and "add_ms" not in fault and "multiply" not in fault:
        raise AdapterError("sim: a latency fault needs add_ms or multiply")
    for key in required:
        if key not in fault:
            raise AdapterError(f"sim: a {kind} fault needs {key}")
    for key, (low, high) in _NUMBERS.items():
        value = fault.get(key, low)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise AdapterError(f"sim: {kind} fault: {key} must be a number in [{low}, {high}]")
    if kind == "schema_break" and (
        not isinstance(fault["produces"], int) or isinstance(fault["produces"], bool)
    ):
        raise AdapterError("sim: schema_break fault: produces must be a contract version (integer)")


def with_faults(params: Params, faults: Sequence[Mapping[str, Any]]) -> Params:
    """Apply `error_rate`, `latency` and `prediction_drift` faults, in injection order."""
    for f in faults:
        kind = f["kind"]
        if kind == "error_rate":
            params = replace(params, error_rate=float(f["value"]))
        elif kind == "latency":
            latency = params.latency_ms * float(f.get("multiply", 1.0))
            latency += float(f.get("add_ms", 0.0))
            params = replace(params, latency_ms=max(latency, 1e-3))
        elif kind == "prediction_drift":
            shift = float(f["shift"])
            params = replace(params, prediction_mean=params.prediction_mean + shift)
    return params
