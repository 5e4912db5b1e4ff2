"""A gate as the plan writes it: a metric check with Argo Rollouts' analysis semantics,
and the judges (`sequential`, `quantile`, `mann_whitney`, `drift`) that refine it.

Apart from :mod:`core.plan` because it is the largest model and the judges import it alone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.spec import Duration, Fraction, Strict


ANYTIME_INTERVAL = 10.0
"""The default interval of sequential and quantile gates (others: 30 s)."""


def quantile_of(metric: str) -> float | None:
    """0.99 for `latency_p99`, 0.999 for `latency_p999`, 0.5 for `latency_p50`; else None."""
    head, _, tail = metric.rpartition("_p")
    if not head or not tail.isdigit():
        return None
    return float(int(tail) / 10 ** len(tail))


class Gate(Strict):
    """A metric check with Argo Rollouts' analysis semantics."""

    metric: str
    max: float | None = None
    """Failure bound: a measurement above it fails."""
    min: float | None = None
    """Failure bound: a measurement below it fails."""
    pass_max: float | None = None
    """Success bound. With failure bounds too, a measurement that neither passes nor fails is
    inconclusive; alone, a measurement that misses it fails (as Argo's successCondition)."""
    pass_min: float | None = None
    compare: Literal["baseline", "configured"] | None = None
    """Judge the canary against the baseline version instead of absolute bounds.
    `configured` (sequential only): test against the configured rates, one-sample."""
    max_increase: Fraction | None = None
    max_decrease: Fraction | None = None
    interval: Duration = 30.0
    initial_delay: Duration = 0.0
    count: int | None = Field(default=None, ge=1)
    """Measurements needed for success; unset means: measure until the stage's bake ends."""
    failure_limit: int = Field(default=0, ge=-1)
    """Failures tolerated; -1 turns failing off."""
    inconclusive_limit: int = Field(default=0, ge=0)
    consecutive_error_limit: int = Field(default=4, ge=0)
    consecutive_success_limit: int = Field(default=0, ge=0)
    """Argo v1.8+: successes in a row that end the gate successful; 0 turns it off. With
    `count`, reaching the count without them is inconclusive (failed if failure_limit is -1);
    without `count`, the gate keeps measuring past the bake until they come."""
    no_data: Literal["fail", "inconclusive", "error", "ignore"] = "inconclusive"
    """A measurement without data (none, or NaN): `error` is Argo's (an Error measurement)."""
    no_data_timeout: Duration | None = None
    """How long measurements without data may be ignored (`no_data: ignore`) before the
    next one counts as inconclusive; unset: three intervals. Waiting on no data is bounded."""
    dry_run: bool = False
    """Measured, judged and shown, but never pauses, fails or rolls back anything (Argo's dryRun)."""
    judge: Literal["threshold", "mann_whitney", "sequential", "drift", "quantile"] = "threshold"
    """`threshold`: bounds on one value per interval. `mann_whitney`: canary samples against
    baseline samples (Kayenta's judge). `sequential`: an error-rate test of the canary against
    the baseline, anytime-valid (or, with `compare: configured`, Wald's SPRT against fixed
    rates). `drift`: divergence of the prediction histograms (PSI or JS). `quantile`: the
    canary's requests slower than (1 + max_increase) x the baseline's quantile, tested
    anytime-valid. Unset, a `compare: baseline` gate on `error_rate` is `sequential` and one
    on a latency quantile (`latency_p99`) is `quantile`; anything else is `threshold`."""
    quantile: float | None = Field(default=None, gt=0, lt=1)
    """quantile: which quantile (default from the metric's name: `latency_p99` → 0.99)."""
    direction: Literal["increase", "decrease", "either"] | None = None
    """mann_whitney: which change fails (default from max_increase / max_decrease)."""
    confidence: float = Field(default=0.98, gt=0.5, lt=1)
    """mann_whitney: confidence of the Mann–Whitney test and the Hodges–Lehmann interval."""
    min_samples: int = Field(default=5, ge=2)
    """mann_whitney: fewer points than this on either side is no data."""
    samples: int = Field(default=10, ge=2, le=1000)
    """mann_whitney: points per side, each covering interval / samples."""
    critical: bool = False
    """mann_whitney: a failure of this metric fails the whole stage at once."""
    alpha: float = Field(default=0.005, gt=0, lt=0.5)
    """sequential, quantile: the false-rollback probability of one stage's test. Unset, the
    run splits `policy.false_rollbacks` evenly over every such test of the rollout."""
    beta: float = Field(default=0.01, gt=0, lt=0.5)
    """sequential: the probability of missing an error rate at `max`."""
    calibrated: bool = True
    """sequential: exact boundaries (error rates within alpha and beta) instead of Wald's."""
    divergence: Literal["psi", "js"] = "psi"
    """drift: Population Stability Index or Jensen–Shannon divergence (base 2)."""
    group: str | None = None
    """mann_whitney with `defaults.score`: the metric group this gate scores in (Kayenta)."""
    weight: float | None = Field(default=None, ge=0, le=100)
    """mann_whitney with `defaults.score`: the group's weight out of 100 (unweighted groups
    share what is left)."""

    @property
    def open_ended(self) -> bool:
        """Measures until the stage's bake ends: neither a `count` nor a success streak ends it."""
        return self.count is None and self.consecutive_success_limit == 0

    @model_validator(mode="before")
    @classmethod
    def _default_judge(cls, data: object) -> object:
        """A canary-versus-baseline gate on an error rate or a latency quantile is judged by a
        test that accounts for sample size, unless the plan names a judge."""
        if not isinstance(data, dict):
            return data
        if "judge" not in data and data.get("compare") == "baseline":
            metric = str(data.get("metric", ""))
            if metric == "error_rate":
                data = {**data, "judge": "sequential"}
            elif quantile_of(metric) is not None:
                data = {**data, "judge": "quantile"}
        if "interval" not in data and data.get("judge") in ("sequential", "quantile"):
            # An anytime-valid test loses nothing by looking often, and stops sooner.
            data = {**data, "interval": ANYTIME_INTERVAL}
        return data

    @property
    def against_baseline(self) -> bool:
        """Judged against the baseline's traffic (so not at 100%, where there is none)."""
        return (
            self.compare == "baseline" or self.judge in ("mann_whitney", "drift")
            or (self.judge == "sequential" and self.compare != "configured")
        )

    @property
    def level(self) -> float | None:
        """The quantile a `quantile` gate judges."""
        return self.quantile if self.quantile is not None else quantile_of(self.metric)

    @field_validator("interval")
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("interval must be longer than 0s")
        return value

    @field_validator("no_data_timeout")
    @classmethod
    def _positive_timeout(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("no_data_timeout must be longer than 0s")
        return value

    @property
    def no_data_wait(self) -> float:
        """How long no data may be ignored before it counts as inconclusive."""
        return self.no_data_timeout if self.no_data_timeout is not None else 3 * self.interval

    @model_validator(mode="after")
    def _judge_needs(self) -> "Gate":
        if self.judge == "quantile":
            if self.compare != "baseline" or self.max_increase is None or self.max_increase <= 0:
                raise ValueError("a quantile gate needs compare: baseline and max_increase above 0%")
            if self.level is None:
                raise ValueError("a quantile gate needs quantile (or a metric named like latency_p99)")
        if self.compare == "configured" and self.judge != "sequential":
            raise ValueError("compare: configured is for sequential gates")
        if self.judge == "sequential":
            if self.compare == "baseline":
                if self.max_increase is None or self.max_increase <= 0:
                    raise ValueError("a sequential gate with compare: baseline needs max_increase above 0%")
            elif self.max is None:
                raise ValueError("a sequential gate needs max: the error rate that must fail")
            elif self.pass_max is not None and not self.pass_max < self.max:
                raise ValueError("a sequential gate needs pass_max (the acceptable rate) below max")
        if self.judge == "drift" and self.max is None and self.pass_max is None:
            raise ValueError("a drift gate needs max (the largest divergence allowed)")
        return self
