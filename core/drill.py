"""Drill files: a plan, faults to inject, a script for the operator, and what should happen.

A drill is a rehearsal of a bad day. The file names a plan (relative to the
drill file), the clock, the seed of the simulated world, faults triggered when
a service reaches a percentage or at a time since the rollout started,
scripted operator actions, and the expected outcome. This module is the
format (pydantic models that forbid unknown fields) and its loader, which
reports every problem at once as `FILE:LINE:COL: path: problem` lines, the
referenced plan's own problems included. Running a drill is wiring and lives
in `tui.session.drills`; scoring it is pure and lives in `core.scorecard`.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Literal

from pydantic import Field, ValidationError

from core.actions import ALL_VERBS
from core.durations import format_duration, format_moment
from core.events import OperatorVerb
from core.graph import RolloutGraph
from core.inputs import MAX_SPEED, SEED_RANGE, read_input, shown_path
from core.order import compile_plan
from core.plan import Duration, Plan, Strict
from core.faultspec import FAULT_FIELDS, INJECT_KEYS, FaultDuration, Inject
from core.faultspec import SERVICE_FAULTS as SERVICE_FAULTS  # re-exported: the format's names
from core.faultspec import FaultKind as FaultKind
from core.planload import parse_plan
from core.validation import sort_problems, validation_problems
from core.problems import InputError, Path, Problem, SourceMap, located
from core.state import RolloutPhase
from core.yamlsrc import load_yaml

SCRIPT_OPERATOR = "drill-script"
"""The operator name on scripted actions; anything else is a person at the console."""

class Trigger(Strict):
    """`{time: 40m}` since the rollout started, or `{service: ranker, percent: 25}`:
    when the service's confirmed exposure first reaches the percentage."""

    time: Duration | None = None
    service: str | None = None
    percent: float | None = Field(default=None, gt=0, le=100)

    def describe(self) -> str:
        if self.time is not None:
            return format_moment(self.time)
        return f"{self.service} at {self.percent:g}%"


class Fault(Strict):
    at: Trigger
    inject: Inject
    duration: FaultDuration | None = None
    """How long the fault lasts; until the drill ends when absent."""

    @property
    def lasts(self) -> float | None:
        return self.duration if self.duration is not None else self.inject.duration

    def describe(self) -> str:
        fault = self.inject.world_fault()
        where = f" {fault.pop('service')}" if "service" in fault else ""
        kind = fault.pop("kind")
        shown = {k: format_duration(self.inject.age) if k == "age" and self.inject.age is not None else v
                 for k, v in fault.items()}
        rest = " ".join(f"{k}={v}" for k, v in shown.items())
        return f"{kind}{where}" + (f" ({rest})" if rest else "")


class OperatorStep(Strict):
    at: Trigger
    do: OperatorVerb
    service: str | None = None
    reason: str = ""


class Expect(Strict):
    rolled_back: list[str] | None = None
    """Exactly the services that move and then return to 0%."""
    untouched: list[str] | None = None
    """Services that move and are not rolled back."""
    detect_within: Duration | None = None
    decide_within: Duration | None = None
    restore_within: Duration | None = None
    final: RolloutPhase | None = None
    max_bad_requests: float | None = Field(default=None, ge=0)
    never_exposed: list[str] | None = None
    """Services no user ever saw: their exposure stayed 0% in every event (a shadow caught them)."""


class Drill(Strict):
    drill: str = Field(min_length=1)
    plan: str = Field(min_length=1)
    clock: Literal["virtual", "real"] = "virtual"
    speed: float = Field(default=1.0, gt=0, le=MAX_SPEED, allow_inf_nan=False)
    """Real clock only: simulated seconds per wall second."""
    seed: int = Field(default=0, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    adapter_timeout: Duration = Field(default=10.0, le=60)
    """Wall seconds the engine waits for one adapter call (rehearse slow adapters)."""
    faults: list[Fault] = Field(default_factory=list)
    operator: list[OperatorStep] = Field(default_factory=list)
    expect: Expect = Field(default_factory=Expect)


@dataclass(frozen=True)
class LoadedDrill:
    """A validated drill and the compiled plan it rehearses."""

    drill: Drill
    source: SourceMap
    file: str
    plan: Plan
    plan_source: SourceMap
    graph: RolloutGraph
    plan_path: str
    plan_text: str


def load_drill(path: str | FilePath) -> LoadedDrill:
    """Read and validate a drill file and its plan; raises `InputError` with every problem."""
    return parse_drill(read_input(path, "the drill"), shown_path(path), FilePath(path).parent)


def parse_drill(text: str, file: str, base_dir: str | FilePath) -> LoadedDrill:
    """Validate drill text; its plan is read relative to `base_dir`.

    Every problem at once: the drill's shape, its references into the plan
    (checked for each fault, step and expectation that is well formed even
    when others are not), and the plan's own problems, listed after the drill's.
    """
    data, source, problems = load_yaml(text, file)
    drill: Drill | None = None
    if isinstance(data, dict):
        try:
            drill = Drill.model_validate(data)
        except ValidationError as err:
            problems += validation_problems(err, Drill, data, source)
    parts = _Parts.of(data if isinstance(data, dict) else {})
    problems += parts.shape_problems(source)
    plan_problems: list[Problem] = []
    loaded: tuple[Plan, SourceMap, RolloutGraph, str, str] | None = None
    plan_ref = data.get("plan") if isinstance(data, dict) else None
    if isinstance(plan_ref, str) and plan_ref:
        plan_path = os.path.normpath(os.path.join(str(base_dir), plan_ref))
        try:
            plan_text = read_input(plan_path, f"the plan {shown_path(plan_path)}")
        except InputError as err:
            problems.append(located(source, ("plan",), err.problems[0].message))
        else:
            try:
                plan, plan_source = parse_plan(plan_text, plan_path)
                loaded = (plan, plan_source, compile_plan(plan, plan_source), plan_path, plan_text)
            except InputError as err:
                plan_problems = sort_problems(err.problems)
                problems.append(located(source, ("plan",), f"the plan {plan_path} has problems (listed below)"))
    if loaded is not None:
        problems += parts.reference_problems(loaded[0], loaded[2], source)
    if problems or plan_problems or drill is None or loaded is None:
        raise InputError(sort_problems(problems) + plan_problems)
    plan, plan_source, graph, plan_path, plan_text = loaded
    return LoadedDrill(drill, source, file, plan, plan_source, graph, plan_path, plan_text)


# --- checks the models cannot make alone --------------------------------------


def _valid(model: type[Strict], value: object) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None  # its problems were reported by the whole drill's validation


def _entries(data: dict[str, Any], key: str) -> list[tuple[Path, dict[str, Any]]]:
    raw = data.get(key)
    if not isinstance(raw, list):
        return []
    return [((key, i), item) for i, item in enumerate(raw) if isinstance(item, dict)]


def _names(value: object) -> list[tuple[int, str]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] if isinstance(value, list) else []


@dataclass
class _Parts:
    """The well-formed pieces of a drill document, each with its path, so one
    broken field does not hide the problems of its neighbours."""

    triggers: list[tuple[Path, Trigger]] = field(default_factory=list)
    injects: list[tuple[Path, Inject]] = field(default_factory=list)
    twice: list[Path] = field(default_factory=list)
    """Faults that give `duration` both beside and under `inject`."""
    steps: list[tuple[Path, str, str | None]] = field(default_factory=list)
    """(path, verb, service) of each scripted action with a valid verb."""
    services: list[tuple[Path, str]] = field(default_factory=list)
    """Every moving-service name the drill mentions outside `inject`."""
    expected: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, data: dict[str, Any]) -> _Parts:
        parts = cls()
        for key in ("faults", "operator"):
            for at, item in _entries(data, key):
                trigger = _valid(Trigger, item.get("at"))
                if trigger is not None:
                    parts.triggers.append((at + ("at",), trigger))
                    if isinstance(trigger.service, str):
                        parts.services.append((at + ("at", "service"), trigger.service))
                if key == "faults":
                    inject = _valid(Inject, item.get("inject"))
                    if inject is not None:
                        parts.injects.append((at + ("inject",), inject))
                    if "duration" in item and isinstance(item.get("inject"), dict) and "duration" in item["inject"]:
                        parts.twice.append(at + ("duration",))
                    continue
                service = item.get("service")
                if isinstance(service, str):
                    parts.services.append((at + ("service",), service))
                if item.get("do") in ALL_VERBS:
                    parts.steps.append((at, item["do"], service if isinstance(service, str) else None))
        expect = data.get("expect")
        for key in ("rolled_back", "untouched", "never_exposed"):
            names = _names(expect.get(key)) if isinstance(expect, dict) else []
            parts.expected[key] = names
            parts.services += [(("expect", key, j), name) for j, name in names]
        return parts

    def shape_problems(self, source: SourceMap) -> list[Problem]:
        problems: list[Problem] = []
        for at, trigger in self.triggers:
            problems += _trigger_problems(trigger, at, source)
        for at, inject in self.injects:
            problems += _inject_problems(inject, at, source)
        for at in self.twice:
            problems.append(located(source, at, "duration is given twice (here and under inject)", key=True))
        for at, verb, service in self.steps:
            if verb in ("approve", "rollback") and service is None:
                problems.append(located(source, at, f"`do: {verb}` needs a service", key=True))
            if verb not in ("approve", "rollback") and service is not None:
                problems.append(located(source, at + ("service",), f"`do: {verb}` takes no service", key=True))
        rolled_back = {name for _, name in self.expected.get("rolled_back", [])}
        for j, name in self.expected.get("untouched", []):
            if name in rolled_back:
                message = f"'{name}' is expected both rolled back and untouched"
                problems.append(located(source, ("expect", "untouched", j), message))
        return problems

    def reference_problems(self, plan: Plan, graph: RolloutGraph, source: SourceMap) -> list[Problem]:
        """Names the drill uses that the plan must have: services, versions, contracts."""
        moving = list(graph.moving)
        problems = [
            located(source, at, _unknown(name, moving, plan)) for at, name in self.services if name not in moving
        ]
        for at, inject in self.injects:
            problems += _inject_references(inject, at, plan, source)
        return problems


def _trigger_problems(trigger: Trigger, at: Path, source: SourceMap) -> list[Problem]:
    by_time = trigger.time is not None
    by_percent = trigger.service is not None or trigger.percent is not None
    if by_time and by_percent:
        return [located(source, at, "give either time, or service and percent, not both")]
    if not by_time and not by_percent:
        return [located(source, at, "expected {time: 10m} or {service: NAME, percent: 25}")]
    if by_percent and (trigger.service is None or trigger.percent is None):
        missing = "percent" if trigger.percent is None else "service"
        return [located(source, at, f"missing required field '{missing}' (a percent trigger needs both)")]
    return []


def _inject_problems(inject: Inject, at: Path, source: SourceMap) -> list[Problem]:
    required, optional = FAULT_FIELDS[inject.kind]
    problems: list[Problem] = []
    for key in INJECT_KEYS:
        if getattr(inject, key) is not None and key not in required and key not in optional:
            takes = ", ".join(("kind", *required, *optional, "duration"))
            message = f"'{key}' does not apply to a {inject.kind} fault; it takes: {takes}"
            problems.append(located(source, at + (key,), message, key=True))
    for key in required:
        if getattr(inject, key) is None:
            problems.append(located(source, at, f"a {inject.kind} fault needs '{key}'"))
    if inject.kind == "latency" and inject.add_ms is None and inject.multiply is None:
        problems.append(located(source, at, "a latency fault needs add_ms or multiply (or both)"))
    return problems


def _inject_references(inject: Inject, where: Path, plan: Plan, source: SourceMap) -> list[Problem]:
    if inject.service is None:
        return []
    if inject.service not in plan.services:
        message = _unknown(inject.service, sorted(plan.services), plan, what="service")
        return [located(source, where + ("service",), message)]
    service = plan.services[inject.service]
    sides = {"old": service.from_, service.from_.version: service.from_}
    if service.to is not None:
        sides |= {"new": service.to, service.to.version: service.to}
    version = inject.version or "new"
    side = sides.get(version)
    if side is None:
        message = f"{inject.service} has no version '{version}'; known: {', '.join(sides)}"
        if service.to is None and inject.version is None:
            message = f"{inject.service} does not move, so only its old version can be faulted; add version: old"
        return [located(source, where + ("version",) if inject.version else where, message)]
    if inject.contract is not None and inject.contract not in side.produces:
        produced = sorted(side.produces)
        it = f"it produces: {', '.join(produced)}" if produced else "it produces no contract"
        message = f"{inject.service} {side.version} does not produce '{inject.contract}'; {it}"
        return [located(source, where + ("contract",), message)]
    if inject.field is not None:
        names = [inject.contract] if inject.contract is not None else sorted(side.produces)
        declared = sorted({f for c in names if c in plan.contracts for f in plan.contracts[c].declared_fields()})
        if inject.field not in declared:
            fields = f"its declared fields: {', '.join(declared)}" if declared else "no schema under `contracts` declares any"
            message = f"'{inject.field}' is not a field of {', '.join(names) or 'any contract'} ({fields})"
            return [located(source, where + ("field",), message)]
    return []


def _unknown(name: str, known: list[str], plan: Plan, what: str = "moving service") -> str:
    if what == "moving service" and name in plan.services:
        return f"'{name}' does not move in this plan (it has no `to` version)"
    message = f"unknown {what} '{name}'"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return message + f"; did you mean '{close[0]}'?"
    return message + (f"; known: {', '.join(known)}" if known else "")
