"""Events: everything that happens to a rollout, in the order it happened.

Events are the journal's records and the reducer's only input. Each carries
`at`, the injected clock's time in seconds, so replaying them needs no clock.
They are frozen dataclasses (cheap to build, cheap to compare) with a stable
`kind` tag; `to_dict`/`from_dict` are the journal's wire format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

OperatorVerb = Literal["pause", "resume", "step", "approve", "promote", "promote_full", "rollback", "abort"]
"""`promote` and `promote_full` are break-glass (issue 13): end the bake and take the next
stage now, or go to 100% now; both need a reason."""


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    record_only: ClassVar[bool] = False
    """Kept in the journal for people and tools, never changes the rollout (a notification
    delivered): the reducer passes it by, and the engine journals it even after the run ended."""
    at: float

    def to_dict(self) -> dict[str, Any]:
        names = _NAMES.get(type(self))
        if names is None:  # once per class: `dataclasses.fields` was a third of encoding a record
            names = _NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        out: dict[str, Any] = {"kind": self.kind}
        for name in names:
            value = getattr(self, name)
            out[name] = dict(value) if isinstance(value, dict) else value
        return out


_NAMES: dict[type[Event], tuple[str, ...]] = {}
"""Each event class's field names, in order (`Event.to_dict`)."""


@dataclass(frozen=True)
class RolloutStarted(Event):
    kind: ClassVar[str] = "rollout_started"
    rollout: str = ""
    seed: int = 0
    operator: str = ""
    """Who started the run (`user@host`); separation of duties reads it."""


@dataclass(frozen=True)
class Tick(Event):
    """The clock reached a deadline the state asked for."""

    kind: ClassVar[str] = "tick"


@dataclass(frozen=True)
class ExposureApplied(Event):
    """A `SetExposure` command took effect (flag and route both set)."""

    kind: ClassVar[str] = "exposure_applied"
    cmd_id: int = 0
    service: str = ""
    percent: float = 0.0


@dataclass(frozen=True)
class MirrorApplied(Event):
    """A `SetMirror` command took effect: `percent` of the service's live requests are copied
    to its new version (0: none), whose answers nobody sees."""

    kind: ClassVar[str] = "mirror_applied"
    cmd_id: int = 0
    service: str = ""
    percent: float = 0.0


@dataclass(frozen=True)
class CommandFailed(Event):
    """An adapter did not carry out a command after its bounded retries."""

    kind: ClassVar[str] = "command_failed"
    cmd_id: int = 0
    error: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class Measured(Event):
    """The result of one gate measurement: a value, or the reason there is none."""

    kind: ClassVar[str] = "measured"
    cmd_id: int = 0
    service: str = ""
    gate: str = ""
    value: float | None = None
    baseline: float | None = None
    error: str | None = None
    canary_data: list[float] | None = None
    """Series points, [errors, requests] or histogram bins of the canary (per the judge)."""
    baseline_data: list[float] | None = None


@dataclass(frozen=True)
class GateMisconfigured(Event):
    """A gate's measurement could not be made as configured (its query returns several
    series, or the metric source rejects it): a person must fix it, and the canary is not
    at fault, so the rollout holds instead of counting it against the canary."""

    kind: ClassVar[str] = "gate_misconfigured"
    cmd_id: int = 0
    service: str = ""
    gate: str = ""
    error: str = ""


@dataclass(frozen=True)
class ExposureRead(Event):
    """Exposures read back from the adapters (reconciling, after a hold, or the periodic
    read-back of `policy.readback`), or why they could not be."""

    kind: ClassVar[str] = "exposure_read"
    cmd_id: int = 0
    exposures: dict[str, float] = field(default_factory=dict)
    """Service → percent (the lowest of its flag and route: a summary for people)."""
    error: str | None = None
    targets: dict[str, float] = field(default_factory=dict)
    """`flag:NAME` / `route:NAME` → percent, each target on its own. When present, the
    reducer compares each target with the journal (a raised route cannot hide behind
    an untouched flag); older journals have only `exposures`."""


@dataclass(frozen=True)
class OperatorAction(Event):
    kind: ClassVar[str] = "operator"
    action: OperatorVerb = "pause"
    service: str | None = None
    operator: str = ""
    reason: str = ""


@dataclass(frozen=True)
class FaultInjected(Event):
    """A drill's fault took effect in the simulated world (recorded, not acted on)."""

    kind: ClassVar[str] = "fault_injected"
    fault: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Adopted(Event):
    """A fresh run starts from what its pre-flight read found instead of 0% (`--adopt`):
    each service's journaled exposure is `exposures[service]`. Recorded before the
    rollout starts, with who decided it and why."""

    kind: ClassVar[str] = "adopted"
    exposures: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    """What the pre-flight read found, per `flag:NAME` / `route:NAME`."""
    operator: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Abandoned(Event):
    """An operator gave this unfinished run up (`run --abandon RUN`): it ends where it
    stands, nothing is rolled back, and no driver may continue it."""

    kind: ClassVar[str] = "abandoned"
    operator: str = ""
    reason: str = ""
    by_run: str = ""
    """The run started in its place."""


@dataclass(frozen=True)
class MeasurementGap(Event):
    """No measurement of `gate` on `service` since `since` (a frozen process, a paused VM,
    a metric query that never came back): the service's bake starts over at `at`, and its
    gates count afresh. The engine journals it just before the event that found the gap
    (`core.coverage`)."""

    kind: ClassVar[str] = "measurement_gap"
    service: str = ""
    gate: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class CheckFinished(Event):
    """A pre-flight check or hook (`Probe`) answered, after its tries: whether it passed,
    in one line why, and what it printed or answered (secrets masked, tail only)."""

    kind: ClassVar[str] = "check_finished"
    cmd_id: int = 0
    service: str = ""
    check: str = ""
    """The `Probe`'s name: `pre-flight http URL`, `hook confirm-promotion`, ..."""
    passed: bool = False
    detail: str = ""
    """`HTTP 200`, `HTTP 503, expected 200`, `exit 1`, `timed out after 5s`, ..."""
    output: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class Resumed(Event):
    """A new process took the rollout over from its journal."""

    kind: ClassVar[str] = "resumed"
    note: str = ""


@dataclass(frozen=True)
class NotificationSent(Event):
    """A webhook of the plan's `notify:` was told about `trigger` (or gave up after its
    retries). `webhook` names it as `core.notify.Webhook.label` does, never its URL."""

    kind: ClassVar[str] = "notification_sent"
    record_only: ClassVar[bool] = True
    trigger: str = ""
    webhook: str = ""
    service: str | None = None
    ok: bool = False
    status: int | None = None
    attempts: int = 0
    error: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RolloutStarted,
        Tick,
        ExposureApplied,
        CommandFailed,
        Measured,
        ExposureRead,
        OperatorAction,
        FaultInjected,
        MeasurementGap,
        Resumed,
        Adopted,
        Abandoned,
        GateMisconfigured,
        MirrorApplied,
        CheckFinished,
        NotificationSent,
    )
}


_FIELDS: dict[type[Event], frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in EVENT_TYPES.values()
}
_new = object.__new__
_set = object.__setattr__


def event_from_dict(data: dict[str, Any]) -> Event:
    return adopt_event(dict(data))


def adopt_event(data: dict[str, Any]) -> Event:
    """The event `data` (a decoded journal body, `kind` included) describes, taking
    ownership of `data`. Replaying a long journal builds a million events: a body that
    names exactly the event's fields becomes the new event's attribute dict as it is
    (events have no slots for that reason); any other goes through the constructor,
    which fills defaults and refuses unknown fields (TypeError; KeyError for an unknown
    kind)."""
    cls = EVENT_TYPES[data.pop("kind")]
    if data.keys() == _FIELDS[cls]:
        event = _new(cls)
        _set(event, "__dict__", data)
        return event
    return cls(**data)

