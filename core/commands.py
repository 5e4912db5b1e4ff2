"""Commands: what the reducer asks the outside world to do.

Every command is absolute and idempotent ("set ranker to 25%", never "+20%"),
so the engine may retry it, and a resumed process may run it again, without
overshooting. `cmd_id` ties a command to the event that reports its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from core.evolve import DICT_ONLY


@dataclass(frozen=True)
class Command:
    __slots__ = DICT_ONLY  # cheaper to make (`core.evolve`), and so are its subclasses: a tick asks for three

    cmd_id: int


@dataclass(frozen=True)
class SetExposure(Command):
    """Put `percent` of the service's traffic on its new version (flag and/or route)."""

    service: str
    percent: float
    flag: str | None
    route: str | None
    cohort: str
    """Services of one lockstep group share a cohort: the same users see both."""


@dataclass(frozen=True)
class Measure(Command):
    """Query one gate's metric for the canary (and the baseline, when compared)."""

    service: str
    gate: str
    metric: str
    window: float
    canary_version: str
    baseline_version: str
    with_baseline: bool
    shape: str = "value"
    """What the judge needs: `value` (one number a side), `series` (`points` values a side
    over the window), `counts` (errors and requests a side), `histogram` (bin counts) or
    `tail` (the baseline's quantile, then the canary's requests slower than it x (1 + margin))."""
    points: int = 1
    margin: float = 0.0


@dataclass(frozen=True)
class ReadExposure(Command):
    """Read the actual exposure of these services back from the adapters."""

    services: tuple[str, ...]


@dataclass(frozen=True)
class SetMirror(Command):
    """Copy `percent` of the service's live requests to its new version, whose answers nobody
    sees (a shadow stage, `core.shadow`); 0 turns the copy off. Absolute, like `SetExposure`."""

    service: str
    percent: float
    route: str | None
    """The route whose requests are copied, for a router that mirrors (Gateway API)."""


@dataclass(frozen=True)
class Probe(Command):
    """Run one pre-flight check or call one hook (`core.checkspec`), within `timeout` a try
    and at most `retries` more tries. Checking changes nothing, so running it again after a
    resume is safe."""

    service: str
    """The service it is about ("" for a rollout-level post-rollout hook)."""
    name: str
    """What the journal, the log and the console call it: `pre-flight http URL`,
    `pre-flight run ARGV`, `hook confirm-promotion`."""
    kind: str
    """`http` (GET, expect `status`), `run` (argv exits 0) or `hook` (POST `payload`, any 2xx)."""
    url: str = ""
    status: int = 200
    argv: tuple[str, ...] = ()
    timeout: float = 5.0
    retries: int = 0
    payload: Mapping[str, Any] = field(default_factory=dict)
    """hook: the JSON body; the engine adds `run`."""
