"""The rollout's state: an immutable value the reducer replaces, never mutates.

`Context` is what never changes during a run (the plan, its compiled graph,
stage tables resolved per group). `RolloutState` is everything that does.
Subscribers (the console, the headless printer) receive these values as
snapshots; since they are frozen, sharing them across tasks is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import AbstractSet, Any, Iterable, Literal, Mapping, Sequence

from core.commands import Command
from core.evolve import DICT_ONLY
from core.gates import GateRun
from core.graph import RolloutGraph
from core.plan import Exposure, Gate, Plan, Stage

RolloutPhase = Literal[
    "planned", "running", "paused", "completed", "rolling_back", "rolled_back", "aborted", "held"
]
ServicePhase = Literal[
    "waiting",
    "preparing",
    "shadowing",
    "progressing",
    "baking",
    "analyzing",
    "awaiting_approval",
    "confirming",
    "promoted",
    "rolling_back",
    "rolled_back",
    "failed",
]
TERMINAL: frozenset[str] = frozenset({"completed", "rolled_back", "aborted"})
IN_CANARY: frozenset[str] = frozenset(
    {"shadowing", "progressing", "baking", "analyzing", "awaiting_approval", "confirming", "failed"}
)


@dataclass(frozen=True)
class GroupSpec:
    """A unit of progression: one service, or a lockstep group sharing one cohort."""

    index: int
    services: tuple[str, ...]
    stages: tuple[Stage, ...]
    wave: int
    preds: frozenset[int]
    after: AbstractSet[int]
    cohort: str


def exposure_keys(handle: Exposure) -> list[str]:
    """A service's targets as read-backs name them: `flag:NAME`, `route:NAME`."""
    keys = [f"flag:{handle.flag}"] if handle.flag is not None else []
    if handle.route is not None:
        keys.append(f"route:{handle.route}")
    return keys


@dataclass(frozen=True)
class Step:
    """One thing a group must pass before its first user sees it (`core.beforefirst`)."""

    kind: str
    """Who runs it: `confirm` (a confirm-* hook: waits until 2xx), `check` (a pre-flight
    check or a pre-rollout hook: a failure follows `on_failure`); other modules add theirs."""
    service: str
    name: str
    """How the journal, the log and the console name it."""
    spec: Mapping[str, Any] = field(default_factory=dict)
    """What running it needs (for `confirm` and `check`: the `Probe`'s fields)."""


@dataclass(frozen=True)
class Context:
    """Everything about a run that does not change while it runs."""

    plan: Plan
    graph: RolloutGraph
    groups: tuple[GroupSpec, ...]
    gates: Mapping[str, Gate]
    service_gates: Mapping[str, tuple[str, ...]]
    exposure: Mapping[str, Exposure]
    versions: Mapping[str, tuple[str, str]]
    """Moving service → (from version, to version)."""
    measures: Mapping[tuple[str, str], dict[str, Any]]
    """(service, gate) → every field of the `Measure` its runs ask for, `cmd_id` 0."""
    succs: tuple[tuple[int, ...], ...] = ()
    """Per group: the groups that list it in their `preds` (whose liveness its phase decides)."""
    before_first: tuple[tuple[Step, ...], ...] = ()
    """Per group: the ordered `core.beforefirst.Step`s it passes before its first exposure
    (confirm-rollout, pre-flight checks, pre-rollout hooks, ...); empty: it starts at once."""
    hooked: frozenset[str] = frozenset()
    """Every hook name the plan configures (`core.hooks.hooked`): none, no per-event cost."""
    shadowed: frozenset[str] = frozenset()
    """The moving services with a shadow stage (`core.shadow.shadowed`), found once: a
    read-back asks it of every exposed service."""

    @cached_property
    def moving_sorted(self) -> tuple[str, ...]:
        """The moving services in name order (the order read-backs list them in)."""
        return tuple(sorted(self.exposure))

    @cached_property
    def target_owners(self) -> Mapping[str, tuple[str, ...]]:
        """`flag:NAME` / `route:NAME` → the moving services exposed through that target."""
        owners: dict[str, tuple[str, ...]] = {}
        for name in self.moving_sorted:
            for key in exposure_keys(self.exposure[name]):
                owners[key] = (*owners.get(key, ()), name)
        return owners


@dataclass(frozen=True)
class ServiceState:
    phase: ServicePhase = "waiting"
    exposure: float = 0.0
    """The last percentage an adapter confirmed."""
    target: float = 0.0
    """The last percentage commanded."""
    mirror: float = 0.0
    """The share of live requests last commanded to be copied to the new version (a shadow
    stage, `core.shadow`); nobody sees the copies' answers, so it is no exposure."""

    @property
    def moved(self) -> bool:
        """Serving (or commanded to serve) the new version to anyone: what a rollback takes back."""
        return self.exposure > 0 or self.target > 0


@dataclass(frozen=True)
class GroupState:
    __slots__ = DICT_ONLY  # a copy is cheaper (`core.evolve`)

    phase: ServicePhase = "waiting"
    stage: int = -1
    """Index into the group's stages; -1 before the first."""
    bake_until: float | None = None
    gates: tuple[GateRun, ...] = ()
    approved: bool = False
    """An operator approved the wait this group is in (or is about to be in)."""
    start_order: int | None = None
    """Position at which this group first moved; rollbacks go latest first."""
    reason: str = ""
    prep: int = 0
    """`preparing`: the index of the step before the first exposure it is at
    (`Context.before_first`, `core.beforefirst`)."""
    asking: int | None = None
    """The pre-flight check or hook command in flight for this group (`Probe`)."""
    ask_at: float | None = None
    """When a confirm-* hook that did not answer 2xx is asked again."""
    confirmed: str = ""
    """The confirm-* hook that answered 2xx for the transition this group is about to make."""
    votes: frozenset[str] = frozenset()
    """People who approved this group's current wait, while the approval is short of its
    quorum or separation (`core.governance`)."""
    evidence: tuple[tuple[str, str, Any], ...] = ()
    """(service, gate, test state): the anytime-valid tests of the stage before, carried into
    the next stage's bake (`core.schedule`): one test per service and gate for the whole
    rollout, so `policy.false_rollbacks` is split per service and gate, not per stage."""
    poll_at: float | None = None
    """When its `rollback` hooks are asked next, while it is in canary (`core.hooks`)."""


@dataclass(frozen=True)
class Hold:
    """An adapter failed; the rollout waits, retries, and checks before going on."""

    reason: str
    failed: tuple[int, ...] = ()
    """Commands that failed and are retried at `retry_at`."""
    retry_at: float | None = None
    attempts: int = 0
    reading: int | None = None
    """The in-flight read-back command, once the failed commands went through."""
    mismatch: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Service → (journal says, adapter says): waits for the operator."""
    differences: tuple[tuple[str, float, float], ...] = ()
    """Each target that differs: (`flag:NAME` / `route:NAME`, expected, found)."""
    config: str = ""
    """A gate cannot judge as configured (`GateMisconfigured`): waits for the operator,
    whose `resume` measures it again."""


@dataclass(frozen=True)
class RolloutState:
    __slots__ = DICT_ONLY  # a copy is cheaper (`core.evolve`)

    ctx: Context = field(compare=False, repr=False)
    phase: RolloutPhase = "planned"
    at: float = 0.0
    started_at: float | None = None
    services: Mapping[str, ServiceState] = field(default_factory=dict)
    groups: tuple[GroupState, ...] = ()
    inflight: Mapping[int, Command] = field(default_factory=dict)
    next_cmd: int = 1
    hold: Hold | None = None
    frozen_at: float | None = None
    """When timers stopped (paused or held); deadlines shift by the frozen time."""
    stepping: bool = False
    rollback_queue: tuple[int, ...] = ()
    rollback_final: RolloutPhase = "rolled_back"
    approved_waves: frozenset[int] = frozenset()
    transitions: int = 0
    """Group transitions so far; `step` lets exactly one more happen."""
    moved_count: int = 0
    reason: str = ""
    """Why the rollout is paused, held or rolling back, in words."""
    readback_at: float | None = None
    """When the exposed services' flags and routes are next read back (`policy.readback`)."""
    readback_cmd: int | None = None
    """The periodic read-back in flight."""
    live: frozenset[int] = frozenset()
    """The groups that may still move or count (`is_live`): every group but the promoted
    ones and those waiting behind a group not yet promoted. `advance`, `next_deadline`
    and the quiet tick look only at these, so an event costs what is in flight, not the
    size of the plan. Kept up to date by `Tx.set_group`; the full path (`reduce_fully`)
    recomputes it from scratch and the property tests compare the two after every event."""
    wave_votes: Mapping[int, frozenset[str]] = field(default_factory=dict)
    """Wave → people who approved it, while that approval is short (`core.governance`)."""
    starter: str = ""
    """Who started the run (`RolloutStarted.operator`): separation of duties reads it."""
    window_opens: float | None = None
    """While a rise waits for a change window (`policy.windows`): when the next one opens."""
    window_note: str = ""
    """That wait in words (`next window Mon 09:00 Europe/Berlin`); empty when nothing waits."""

    @property
    def effective_phase(self) -> RolloutPhase:
        if self.hold is not None and self.phase not in TERMINAL:
            return "held"
        return self.phase

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL and not self.inflight

    @property
    def frozen(self) -> bool:
        return self.phase == "paused" or self.hold is not None

    def group_of(self, service: str) -> int:
        return self.ctx.graph.group_of[service]

    def group_moved(self, index: int) -> bool:
        """Has any service of group `index` moved? (`ServiceState.moved`, the one rule.)"""
        return group_moved(self.services, self.ctx.groups[index].services)

    def stage_percent(self, group: int) -> float:
        stage = self.groups[group].stage
        return 0.0 if stage < 0 else self.ctx.groups[group].stages[stage].percent


def is_live(ctx: Context, groups: Sequence[GroupState], index: int) -> bool:
    """Whether group `index` belongs in `RolloutState.live`."""
    phase = groups[index].phase
    if phase == "promoted":
        return False
    if phase == "waiting":
        return all(groups[p].phase == "promoted" for p in ctx.groups[index].preds)
    return True


def live_groups(ctx: Context, groups: Sequence[GroupState]) -> frozenset[int]:
    """`RolloutState.live` computed from scratch (the full path and the first state)."""
    return frozenset(i for i in range(len(groups)) if is_live(ctx, groups, i))


def group_moved(services: Mapping[str, ServiceState], names: Iterable[str]) -> bool:
    """Has any of `names` moved? The rollout's one "has this group moved" rule: the reducer's
    working copy (`Tx.moved`), a snapshot (`RolloutState.group_moved`) and every dialog ask it."""
    return any(services[name].moved for name in names)
