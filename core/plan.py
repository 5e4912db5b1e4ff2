"""The plan: what a rollout moves, in which stages, judged by which gates.

These pydantic models *are* the plan format of DESIGN.md. Every model forbids
unknown fields so a typo is an error, not a silently ignored setting. Loading
YAML with line numbers and turning validation errors into
``FILE:LINE:COL: path: message`` lines lives in :mod:`core.planload`; the
cross-references (unknown services, unknown gates) are checked there too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.checkspec import Hooks, PreflightCheck
from core.datacontract import DataContract
from core.envspec import Environment, FlagsEnv, MetricsEnv, MirrorEnv, RouterEnv, RouteTarget
from core.gatespec import ANYTIME_INTERVAL, Gate, quantile_of
from core.governance import Governance
from core.notify import Webhook
from core.spec import Duration, Fraction, Strict, Version
from core.windows import Windows

__all__ = [
    "ANYTIME_INTERVAL", "Contracts", "Defaults", "Duration", "Environment", "Exposure", "FlagsEnv",
    "Fraction", "Gate", "MetricsEnv", "MirrorEnv", "Plan", "Policy", "RouteTarget", "RouterEnv", "ScoreThresholds",
    "Service", "Shadow", "SimService", "SimVersion", "Stage", "StageSpec", "Strict", "quantile_of",
]


class Contracts(Strict):
    """A version of a service: its own version string and its data contracts."""

    version: Version
    produces: dict[str, int] = Field(default_factory=dict)
    """Contract name → the version this service version produces."""
    consumes: dict[str, list[int]] = Field(default_factory=dict)
    """Contract name → the versions this service version can read."""



class Exposure(Strict):
    """How traffic reaches the new version: a feature flag, a route, or both."""

    flag: str | None = None
    route: str | None = None


class Stage(Strict):
    """One step of a service's traffic shift."""

    percent: float = Field(gt=0, le=100)
    bake: Duration | None = None
    """Time at this stage before it may advance; defaults to the service's bake."""
    approval: bool = False
    """Wait for an operator's approval after this stage passes."""


StageSpec = Annotated[float, Field(gt=0, le=100)] | Stage


class SimVersion(Strict):
    """Simulated behaviour of one version of a service (the `sim` environment)."""

    error_rate: float | None = Field(default=None, ge=0, le=1)
    latency_ms: float | None = Field(default=None, gt=0)
    """Median latency; the p99 is derived from `latency_spread`."""
    latency_spread: float | None = Field(default=None, gt=0)
    prediction_mean: float | None = Field(default=None, ge=0, le=1)
    prediction_std: float | None = Field(default=None, gt=0)


class SimService(Strict):
    """How the simulated world behaves for a service."""

    rps: float = Field(default=200.0, gt=0)
    from_: SimVersion = Field(default_factory=SimVersion, alias="from")
    to: SimVersion = Field(default_factory=SimVersion)


class Shadow(Strict):
    """A stage before the first user: the new version answers mirrored copies of live requests
    (nobody sees its answers) for `duration`, judged by `gates` (`core.shadow`)."""

    duration: Duration = 600.0
    """How long the new version answers mirrored requests before its first stage."""
    side_effect_free: bool = False
    """The new version only reads: a mirrored write would persist twice. Required to be true."""
    gates: list[str] = Field(default_factory=list)
    """Gates judging the shadow data: errors and latency against the baseline, and for models
    `prediction_agreement` (or a drift gate) between the old and new version's answers."""

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("duration must be longer than 0s")
        return value


class Service(Strict):
    depends_on: list[str] = Field(default_factory=list)
    from_: Contracts = Field(alias="from")
    to: Contracts | None = None
    """The target version; a service without one is static context."""
    exposure: Exposure | None = None
    """Defaults to a flag named after the service."""
    stages: list[StageSpec] | None = None
    bake: Duration | None = None
    gates: list[str] | None = None
    sim: SimService | None = None
    shadow: Shadow | None = None
    """A shadow stage before the first exposure (`core.shadow`)."""
    preflight: list[PreflightCheck] = Field(default_factory=list)
    """Checks its new version passes before its first exposure (`core.beforefirst`)."""
    hooks: Hooks | None = None
    """Flagger-style webhooks for this service (`core.hooks`)."""
    owners: list[str] = Field(default_factory=list)
    """Groups (of `governance.groups`) or people who may also approve and promote this service."""
    runbook: str | None = None
    """Where the on-call finds what to do (shown in the console's detail pane and in notifications)."""

    @property
    def moves(self) -> bool:
        return self.to is not None


class Policy(Strict):
    false_rollbacks: Fraction = Field(default=0.01, gt=0, lt=0.5)
    """The probability that a healthy rollout rolls back anywhere, at most: split evenly over
    every anytime-valid test (sequential and quantile gates without their own `alpha`) of
    every service, gate and stage. Threshold and mann_whitney gates are outside this bound."""
    max_parallel: int = Field(default=1, ge=1)
    on_failure: Literal["rollback_self", "rollback_dependents", "pause"] = "rollback_dependents"
    approval: Literal["none", "each_wave", "each_stage"] = "none"
    readback: Duration = 30.0
    """While a service is exposed, read each of its flags and routes back at least this
    often; a value that differs from the journal holds the rollout (someone changed it)."""
    windows: Windows | None = None
    """When exposure may rise (`core.windows`); unset: any time."""

    @field_validator("readback")
    @classmethod
    def _positive_readback(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("readback must be longer than 0s")
        return value


class ScoreThresholds(Strict):
    """Kayenta's verdict on a stage's grouped metrics: a score out of 100."""

    pass_: float = Field(alias="pass", ge=0, le=100)
    """At or above: the stage passes."""
    marginal: float = Field(ge=0, le=100)
    """At or above (and below `pass`): inconclusive, the rollout pauses. Below: it fails."""

    @model_validator(mode="after")
    def _ordered(self) -> "ScoreThresholds":
        if self.marginal > self.pass_:
            raise ValueError("marginal cannot be above pass")
        return self


class Defaults(Strict):
    stages: list[StageSpec] = Field(default_factory=lambda: list[StageSpec]([1.0, 5.0, 25.0, 50.0, 100.0]))
    bake: Duration = 300.0
    gates: list[str] = Field(default_factory=list)
    score: ScoreThresholds | None = None
    """Judge each stage's mann_whitney gates that name a `group` together, by Kayenta's
    weighted group score, at the end of the stage's bake; alone they then fail only
    when `critical`."""



class Plan(Strict):
    rollout: str = Field(min_length=1)
    environment: Literal["sim"] | Environment = "sim"
    policy: Policy = Field(default_factory=Policy)
    defaults: Defaults = Field(default_factory=Defaults)
    gates: dict[str, Gate] = Field(default_factory=dict)
    services: dict[str, Service]
    contracts: dict[str, DataContract] = Field(default_factory=dict)
    """Contract name → its declared fields and the checks on the data consumers read
    (`core.datacontract`; as gates: `core.datagates`)."""
    hooks: Hooks | None = None
    """Flagger-style webhooks for every service (and post-rollout once, at the end)."""
    governance: Governance | None = None
    """Who may do what (`core.governance`); unset: anyone may do anything."""
    notify: list[Webhook] = Field(default_factory=list)
    """Webhooks told about the rollout's events (`core.notify`)."""

    @property
    def simulated(self) -> bool:
        return self.environment == "sim"

    def stages_of(self, name: str) -> list[Stage]:
        """The resolved stages of a service: percents with their bake and approval."""
        service = self.services[name]
        specs = service.stages if service.stages is not None else self.defaults.stages
        bake = service.bake if service.bake is not None else self.defaults.bake
        each_stage = self.policy.approval == "each_stage"
        out: list[Stage] = []
        for spec in specs:
            stage = spec if isinstance(spec, Stage) else Stage(percent=spec)
            out.append(
                Stage(
                    percent=stage.percent,
                    bake=stage.bake if stage.bake is not None else bake,
                    approval=stage.approval or each_stage,
                )
            )
        return out

    def gates_of(self, name: str) -> list[str]:
        service = self.services[name]
        return list(service.gates if service.gates is not None else self.defaults.gates)

    def judging(self, name: str) -> list[str]:
        """Every gate that judges `name`: its stages' gates, then its shadow's (`core.shadow`)."""
        shadow = self.services[name].shadow
        return list(dict.fromkeys(self.gates_of(name) + (list(shadow.gates) if shadow is not None else [])))

    def exposure_of(self, name: str) -> Exposure:
        service = self.services[name]
        return service.exposure if service.exposure is not None else Exposure(flag=name)
