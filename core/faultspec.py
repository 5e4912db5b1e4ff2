"""What a drill's fault may break, and the fields each kind takes: the `inject:` mapping of a
drill file (`core.drill`), apart from the drill's other parts because every new kind of fault
(issue 14 adds five) lands here and nowhere else in the format.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from core.checkspec import HookName
from core.durations import parse_duration
from core.spec import Duration, Strict, Version

FaultKind = Literal[
    "error_rate", "latency", "prediction_drift", "schema_break", "shadow_disagreement",
    "flag_service_outage", "router_timeout", "metrics_outage", "slow_adapter",
    "stale_data", "missing_fields", "schema_drift", "hook_failure",
]
SERVICE_FAULTS: tuple[str, ...] = (
    "error_rate", "latency", "prediction_drift", "schema_break", "shadow_disagreement", "stale_data",
    "missing_fields", "schema_drift")
"""Faults that degrade one version of one service; the others hit an adapter."""

FAULT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required fields, optional fields); `kind` and `duration` always apply.
    "error_rate": (("service", "value"), ("version",)),
    "latency": (("service",), ("version", "add_ms", "multiply")),
    "prediction_drift": (("service", "shift"), ("version",)),
    "schema_break": (("service", "contract", "produces"), ("version",)),
    "shadow_disagreement": (("service", "value"), ("version",)),
    "flag_service_outage": ((), ()),
    "router_timeout": ((), ()),
    "metrics_outage": ((), ()),
    "slow_adapter": (("delay_s",), ()),
    # The data a producer's version publishes (`adapters.sim.data`); `contract` defaults to all it produces.
    "stale_data": (("service",), ("version", "contract", "age")),
    "missing_fields": (("service", "value"), ("version", "contract", "field")),
    "schema_drift": (("service",), ("version", "contract", "field", "value")),
    "hook_failure": ((), ("hook", "service", "status")),
}
INJECT_KEYS = ("service", "version", "value", "add_ms", "multiply", "shift", "contract", "produces", "delay_s",
                "age", "field", "hook", "status")


MAX_FAULT_DURATION = 6 * 3600.0
"""A fault lasts at most 6 hours: a held rollout retries all along, and a 100-hour outage
would write tens of thousands of records to rehearse nothing more."""


def _fault_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds > MAX_FAULT_DURATION:
        raise ValueError("a fault lasts at most 6h in a drill")
    return seconds


FaultDuration = Annotated[float, BeforeValidator(_fault_duration)]


class Inject(Strict):
    """What to break; the fields a kind takes are checked against `FAULT_FIELDS`."""

    kind: FaultKind
    service: str | None = None
    version: Version | None = None
    """`new` (the default), `old`, or one of the service's version strings."""
    value: float | None = Field(default=None, ge=0, le=1)
    """error_rate: the version's error probability while the fault lasts; missing_fields,
    schema_drift: the share of records spoiled; shadow_disagreement: the share of requests the
    new version answers independently of the old (same output distribution, different answers:
    only `prediction_agreement` sees it)."""
    add_ms: float | None = Field(default=None, ge=0)
    multiply: float | None = Field(default=None, gt=0)
    shift: float | None = None
    """prediction_drift: added to the mean prediction."""
    contract: str | None = None
    produces: int | None = None
    """schema_break: the contract version the service produces instead."""
    delay_s: float | None = Field(default=None, ge=0, le=60)
    """slow_adapter: wall seconds every flag and router call takes."""
    age: Duration | None = None
    """stale_data: how long before the fault the feed stopped (default 1h)."""
    field: str | None = None
    """missing_fields, schema_drift: the declared field spoiled (default: any / the first)."""
    hook: HookName | None = None
    """hook_failure: the hook that fails (Flagger's name); every hook when absent."""
    status: int | None = Field(default=None, ge=0, le=599)
    """hook_failure: the HTTP status the hook answers (500 when absent; 0: no answer, a timeout)."""
    duration: FaultDuration | None = None
    """Also accepted here (DESIGN.md's example); same as the fault's `duration`."""


    def world_fault(self) -> dict[str, object]:
        """The mapping the fault injector receives (no duration: the drill clears it)."""
        return {"kind": self.kind} | {
            k: v for k in INJECT_KEYS if (v := getattr(self, k)) is not None
        }
