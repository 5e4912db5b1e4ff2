"""Ports: the Protocols that adapters implement and the engine calls.

`core` defines what it needs from the outside world here and never imports an
implementation. Every call is absolute and idempotent; implementations own
their timeouts and bounded retries and raise `AdapterError` when they give up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable

from core.events import Event


class AdapterError(Exception):
    """An adapter gave up on a call (after its retries). The message is safe to show:
    implementations must never put a secret into it."""


class ConfigurationError(AdapterError):
    """The service answered, but what it was asked cannot work as configured (a metric
    query that returns several series, or that the server rejects). Retrying will not
    help and the canary is not at fault: the rollout holds for a person to fix it."""


@dataclass(frozen=True)
class TargetReading:
    """What a flag (or route) reads as before interlock acts on it, from the service itself.

    `percent` is the share of users (or traffic) the new version gets through the part
    interlock drives; `owner` is the run that marked that part as its own (None: nobody
    marked it, or the service cannot record an owner); `detail` says in words what users
    actually get when that differs from the bare percentage ("50%, restricted by segment
    beta"); `warnings` are things on the target, not interlock's, that still expose users
    (Unleash ORs every enabled strategy of a flag). All of it is safe to show."""

    percent: float
    owner: str | None = None
    detail: str = ""
    warnings: tuple[str, ...] = ()


@runtime_checkable
class FlagService(Protocol):
    async def set_rollout(self, flag: str, percent: float, cohort: str) -> None:
        """Expose `percent` of users to the flag's new variant, bucketed by `cohort`."""

    async def get_rollout(self, flag: str) -> float:
        """The flag's current rollout percentage, read from the service itself."""

    async def inspect(self, flag: str) -> TargetReading:
        """The flag as the service has it now: interlock's percentage, who owns it, what users
        really get, and what else on the flag exposes users (the pre-flight read)."""

    async def aclose(self) -> None:
        """Release what the adapter holds (HTTP clients); idempotent. Await it in the loop
        that used the adapter."""


@runtime_checkable
class Router(Protocol):
    async def set_weight(self, route: str, percent: float) -> None:
        """Send `percent` of the route's traffic to the canary backend."""

    async def get_weight(self, route: str) -> float:
        """The route's current canary percentage, read from the router itself."""

    async def inspect_route(self, route: str) -> TargetReading:
        """The route as the router has it now (the pre-flight read): its canary
        percentage, and what else about it a person should know before interlock acts."""

    async def aclose(self) -> None:
        """Release what the adapter holds (HTTP clients); idempotent. Await it in the loop
        that used the adapter."""


@runtime_checkable
class Mirror(Protocol):
    """Copies a service's live requests to its new version, whose answers nobody sees (a
    shadow stage). A Gateway API router mirrors a route (HTTPRoute `RequestMirror`); the
    `interlock sim serve` services mirror themselves; the simulated world per request."""

    async def set_mirror(self, service: str, route: str | None, percent: float) -> None:
        """Copy `percent` of the service's (or route's) requests to the new version; 0: none."""

    async def get_mirror(self, service: str, route: str | None) -> float:
        """The share of requests copied now, read from the mirroring side itself."""

    async def aclose(self) -> None:
        """Release what the adapter holds (HTTP clients); idempotent."""


@runtime_checkable
class MetricSource(Protocol):
    async def query(
        self, metric: str, service: str, version: str, window: float, at: float
    ) -> float | None:
        """The metric for one version of a service over `[at - window, at]`; None means no data."""

    async def check(self, metric: str, service: str, version: str, window: float) -> str | None:
        """Run the metric's query once before the first stage: None when it can judge, else
        what stops it, in words that say the fix (pre-flight). No data is not a problem
        here: the canary has no traffic before its first stage."""

    async def histogram(self, service: str, version: str, window: float, at: float) -> list[float] | None:
        """Counts of one version's predictions in the source's bins over the window, for a
        drift gate; None without traffic or data. A source that cannot bin predictions
        raises `AdapterError` (the gate then records an error, never a verdict)."""

    async def exceedances(
        self, metric: str, service: str, version: str, window: float, at: float, threshold: float
    ) -> tuple[int, int] | None:
        """(requests slower than `threshold`, requests) of one version over the window, for
        a latency tail gate; None without data or when the source cannot count them (the
        gate then judges the two quantiles alone)."""

    async def aclose(self) -> None:
        """Release what the adapter holds (HTTP clients); idempotent. Await it in the loop
        that used the adapter."""


@runtime_checkable
class FaultInjector(Protocol):
    async def inject(self, fault: dict[str, Any], at: float) -> None:
        """Start a fault (drills). `fault` is the drill file's `inject` mapping."""

    async def clear(self, fault: dict[str, Any], at: float) -> None:
        """End a fault started by `inject`."""

    async def aclose(self) -> None:
        """Release what the adapter holds (HTTP clients); idempotent. Await it in the loop
        that used the adapter."""


@dataclass(frozen=True)
class CheckResult:
    """What one try of a pre-flight check or a hook call found. `detail` is one line
    (`HTTP 200`, `HTTP 503, expected 200`, `exit 1`, `timed out after 5s`); `output` what
    it printed or answered. Both are safe to journal and show: the runner masks secrets."""

    passed: bool
    detail: str
    output: str = ""


@runtime_checkable
class CheckRunner(Protocol):
    """Runs pre-flight checks and calls hooks (`core.checkspec`). A call never raises for
    what it checks: a refused connection, a timeout or a bad status is a failed result.
    Each call is bounded by its `timeout`; a program still running then is killed."""

    async def http(
        self, url: str, *, timeout: float, status: int | None, payload: Mapping[str, Any] | None = None
    ) -> CheckResult:
        """GET `url` and pass on `status`; or, with `payload`, POST it as JSON and pass on
        any 2xx (`status` None), as Flagger's webhooks do."""

    async def run(self, argv: Sequence[str], *, timeout: float) -> CheckResult:
        """Run `argv` without a shell; pass on exit status 0."""

    async def aclose(self) -> None:
        """Release what the runner holds (HTTP clients); idempotent."""


class NoCheckRunner:
    """The runner of an engine given none: every check fails, saying so (a service with
    checks then never gets exposure, rather than skipping them)."""

    async def http(
        self, url: str, *, timeout: float, status: int | None, payload: Mapping[str, Any] | None = None
    ) -> CheckResult:
        return CheckResult(False, "no check runner is configured")

    async def run(self, argv: Sequence[str], *, timeout: float) -> CheckResult:
        return CheckResult(False, "no check runner is configured")

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class RunInfo:
    """What a journal keeps about one run of a plan, enough to resume it."""

    run_id: str
    rollout: str
    plan_path: str
    plan_text: str
    seed: int
    clock: str
    """`virtual` or `real`."""
    speed: float
    created: str
    """Wall-clock time of creation, ISO 8601, as the journal adapter saw it."""
    operator: str = ""


class Record(NamedTuple):
    """One journal record: an event with its position and who caused it. A tuple: a
    replay builds a million of them."""

    seq: int
    event: Event
    operator: str = ""


@runtime_checkable
class Journal(Protocol):
    """The source of truth. `append` is durable when it returns."""

    def create_run(self, info: RunInfo) -> None: ...

    def runs(self) -> list[RunInfo]: ...

    def append(self, run_id: str, events: Sequence[Event], operator: str = "") -> None: ...

    def records(self, run_id: str, after: int = 0) -> Iterator[Record]: ...

    def close(self) -> None: ...


class LeaseHeld(Exception):
    """Another driver holds the run's lease. `holder` is `user@host pid N` as that driver
    recorded it ("" if it could not be read); safe to show."""

    def __init__(self, run_id: str, holder: str) -> None:
        self.run_id = run_id
        self.holder = holder
        who = holder or "another driver (its identity could not be read)"
        super().__init__(
            f"run {run_id} is being driven by {who}; watch it with `interlock watch`, "
            "or wait and take it over with --take-over"
        )


class LeaseLost(Exception):
    """This driver no longer holds the run's lease (its lock connection or lock file is gone):
    it must stop issuing commands at once. Safe to show."""


@runtime_checkable
class Lease(Protocol):
    """The right to drive one run: at most one live `Lease` per run across every process
    and machine sharing the journal. Drop it with `release()`; a crash drops it too."""

    run_id: str
    holder: str

    def check(self) -> None:
        """Raise `LeaseLost` unless the lease is still held. Call before issuing commands."""

    def release(self) -> None:
        """Give the lease up (idempotent)."""


@dataclass(frozen=True)
class Request:
    """An operator's request to the live driver of a run, sent through the journal from
    another terminal (`interlock pause`, ...) or a watching console. `id` makes it
    idempotent: sending the same id again changes nothing and gets the same answer."""

    id: str
    run_id: str
    action: str
    """An operator verb of `core.actions.ACTIONS` (`promote_full` for `promote --full`)."""
    service: str | None
    operator: str
    """Who asks (`user@host`), journaled with the action when it is applied."""
    reason: str = ""


@dataclass(frozen=True)
class Answer:
    """What became of a request. `status`: `applied`, `refused` (the driver said why),
    `expired` (nobody took it in time: it will never be applied), `lost` (a driver took
    it and never answered: it died). `text` is one line for the requester."""

    status: str
    text: str


@runtime_checkable
class RequestBox(Protocol):
    """The journal's mailbox between requesters and a run's live driver. A request lives
    for `ttl` seconds by the database's own clock; a driver takes only live ones, so a
    request nobody took in time (its driver was dead) is never applied later."""

    def send(self, request: Request, ttl: float) -> None:
        """Post a request (no-op if one with this id exists) and wake the run's driver."""

    def answer_of(self, request_id: str, wait: float = 0.0) -> Answer | None:
        """The request's answer, waiting up to `wait` seconds for it; None while pending."""

    def expire(self, request_id: str) -> Answer:
        """End a pending request untaken (`expired`); if it was answered or taken meanwhile,
        that answer (or `lost` for taken)."""

    def take(self, run_id: str, wait: float = 0.0) -> list[Request]:
        """Claim the run's live pending requests (waiting up to `wait` seconds for one), oldest
        first; each is taken once, by one driver."""

    def reply(self, request_id: str, answer: Answer) -> None:
        """Record a taken request's answer and wake its requester."""

    def close(self) -> None: ...
