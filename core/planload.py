"""Plan files → a validated `Plan`, or every problem in them at once.

YAML is read with positions (:mod:`core.yamlsrc`), pydantic's errors become located lines
(:mod:`core.validation`), and the cross-references the models cannot check alone (unknown
services and gates, stage order, gate bounds, whole percents) are checked here, once the
document has the right shape. Ordering problems (cycles, contracts) belong to
`core.order.compile_plan`.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path as FilePath
from typing import TYPE_CHECKING

from pydantic import ValidationError

from core.gates import limit_problems
from core.governance import governance_problems
from core.plan import Gate, Plan, Stage, StageSpec
from core.inputs import read_input, shown_path
from core.problems import InputError, Path, Problem, SourceMap, located
from core.shadow import problems as shadow_problems
from core.validation import number_text, sort_problems, validation_problems
from core.yamlcompose import collector_paused
from core.yamlsrc import load_yaml

if TYPE_CHECKING:
    from core.graph import RolloutGraph


def load_plan(path: str | FilePath) -> tuple[Plan, SourceMap]:
    """Read and validate a plan file; raises `InputError` with every problem."""
    return parse_plan(read_input(path, "the plan"), shown_path(path))


def parse_plan(text: str, file: str) -> tuple[Plan, SourceMap]:
    """Validate plan text; `file` names it in problems. Raises `InputError`."""
    with collector_paused():
        data, source, problems = load_yaml(text, file)
        plan: Plan | None = None
        if isinstance(data, dict):
            problems += version_problems(data, text, source)
            try:
                plan = Plan.model_validate(data)
            except ValidationError as err:
                problems += validation_problems(err, Plan, data, source)
        if plan is not None:
            problems += plan_problems(plan, source)
    if problems or plan is None:
        raise InputError(sort_problems(problems))
    return plan, source


def load_and_compile(path: str | FilePath) -> tuple[Plan, RolloutGraph, SourceMap]:
    """Load a plan and compile its rollout graph; both steps raise `InputError`."""
    from core.order import compile_plan

    plan, source = load_plan(path)
    return plan, compile_plan(plan, source), source


# --- checks across the validated plan --------------------------------------


def plan_problems(plan: Plan, source: SourceMap) -> list[Problem]:
    """What the models cannot see alone: references, stage order, gate bounds."""
    problems: list[Problem] = []
    names = sorted(plan.services)
    if not plan.services:
        problems.append(located(source, ("services",), "no services; a plan needs at least one service", key=True))
    elif not any(s.moves for s in plan.services.values()):
        problems.append(
            located(
                source, ("services",), "no service has a `to` version, so there is nothing to roll out", key=True
            )
        )
    problems += _stage_problems(plan.defaults.stages, ("defaults", "stages"), source)
    problems += _gate_ref_problems(plan.defaults.gates, ("defaults", "gates"), plan, source)
    unknown = 0
    for name, service in plan.services.items():
        for i, dep in enumerate(service.depends_on):
            at: Path = ("services", name, "depends_on", i)
            if dep == name:
                problems.append(located(source, at, f"service '{name}' cannot depend on itself"))
            elif dep not in plan.services:
                unknown += 1
                others = [n for n in names if n != name] if unknown <= SUGGEST_LIMIT else None
                problems.append(located(source, at, _unknown("service", dep, others, "services")))
        if service.to is not None and service.to.version == service.from_.version:
            problems.append(located(source, ("services", name, "to", "version"), (
                f"{service.to.version!r} is also its 'from' version: a service that moves needs a new version "
                f"(or no `to`, to keep {name} as static context)")))
        if service.stages is not None:
            problems += _stage_problems(service.stages, ("services", name, "stages"), source)
        if service.gates is not None:
            problems += _gate_ref_problems(service.gates, ("services", name, "gates"), plan, source)
        if service.shadow is not None:
            problems += _gate_ref_problems(service.shadow.gates, ("services", name, "shadow", "gates"), plan, source)
    for name, gate in plan.gates.items():
        problems += _gate_problems(gate, ("gates", name), source)
    problems += _whole_percent_problems(plan, source)
    problems += shadow_problems(plan, source)
    problems += query_problems(plan, source)
    from core.datagates import problems as contract_problems

    problems += contract_problems(plan, source)
    problems += governance_problems(plan.governance, any(s.owners for s in plan.services.values()), source)
    return problems



WHOLE_PERCENT_FLAGS = ("unleash",)
"""Flag services whose SDKs bucket users into whole percents: a stage of 0.5 reads back as
set and exposes nobody, 2.5 exposes 2%."""


def _whole_percent_problems(plan: Plan, source: SourceMap) -> list[Problem]:
    """A fractional stage on a service whose exposure is a flag in a whole-percent flag service,
    once per place it is written (a `defaults.stages` entry names every service that uses it)."""
    flags = getattr(plan.environment, "flags", None)
    kind = getattr(flags, "kind", None)
    if kind not in WHOLE_PERCENT_FLAGS:
        return []
    users: dict[Path, list[str]] = {}
    for name, service in sorted(plan.services.items()):
        if not service.moves or not plan.exposure_of(name).flag:
            continue
        at: Path = ("services", name, "stages") if service.stages is not None else ("defaults", "stages")
        users.setdefault(at, []).append(name)
    problems = []
    for at, names in users.items():
        specs = plan.services[names[0]].stages if at[0] == "services" else plan.defaults.stages
        for i, spec in enumerate(specs or []):
            percent = spec.percent if isinstance(spec, Stage) else spec
            if float(percent).is_integer():
                continue
            where = at + (i, "percent") if isinstance(spec, Stage) else at + (i,)
            flags_named = ", ".join(f"'{plan.exposure_of(n).flag}'" for n in names)
            lower, upper = int(percent), int(percent) + 1
            instead = f"{lower} or {upper}" if lower else str(upper)
            problems.append(located(source, where, (
                f"{number_text(percent)} is not a whole percent, and {'flag' if len(names) == 1 else 'flags'} "
                f"{flags_named} {'is' if len(names) == 1 else 'are'} in {kind}, whose SDKs bucket users into "
                f"whole percents ({number_text(percent)}% would expose {lower}%); use {instead}"
            )))
    return problems


SUGGEST_LIMIT = 50
"""Unknown service names that get a "did you mean": each suggestion compares the name with
every service, so a 50,000-service plan that lost a service would otherwise be quadratic."""
LIST_LIMIT = 10
"""Known names listed in a message at most (a plan may have thousands)."""


def _unknown(what: str, name: str, known: list[str] | None, section: str) -> str:
    message = f"unknown {what} '{name}'"
    if known is None:
        return message + f"; check the names under `{section}`"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return message + f"; did you mean '{close[0]}'?"
    if known:
        listed = ", ".join(known[:LIST_LIMIT]) + (", ..." if len(known) > LIST_LIMIT else "")
        return message + f"; known {what}s: {listed}"
    return message + f"; no {what}s are defined under `{section}`"


def _gate_ref_problems(refs: list[str], at: Path, plan: Plan, source: SourceMap) -> list[Problem]:
    known = sorted(plan.gates)
    return [
        located(source, at + (i,), _unknown("gate", ref, known, "gates"))
        for i, ref in enumerate(refs)
        if ref not in plan.gates
    ]


def _stage_problems(stages: list[StageSpec], at: Path, source: SourceMap) -> list[Problem]:
    if not stages:
        return [located(source, at, "at least one stage is required, and the last one must be 100")]
    problems: list[Problem] = []
    previous: float | None = None
    for i, spec in enumerate(stages):
        percent = spec.percent if isinstance(spec, Stage) else spec
        where = at + (i, "percent") if isinstance(spec, Stage) else at + (i,)
        if previous is not None and percent <= previous:
            message = f"stages must increase: {number_text(percent)} comes after {number_text(previous)}"
            problems.append(located(source, where, message))
        previous = percent
    last = stages[-1]
    percent = last.percent if isinstance(last, Stage) else last
    if percent != 100:
        where = at + (len(stages) - 1, "percent") if isinstance(last, Stage) else at + (len(stages) - 1,)
        problems.append(located(source, where, f"the last stage must be 100 (all traffic), not {number_text(percent)}"))
    return problems


def _gate_problems(gate: Gate, at: Path, source: SourceMap) -> list[Problem]:
    problems: list[Problem] = []
    relative = [f for f in ("max_increase", "max_decrease") if getattr(gate, f) is not None]
    if gate.compare == "baseline" and not relative and gate.judge == "threshold":
        problems.append(located(source, at, "compare: baseline needs max_increase or max_decrease (e.g. 10%)"))
    if gate.compare is None and gate.judge not in ("mann_whitney",):
        for name in relative:
            problems.append(
                located(source, at + (name,), f"{name} only applies with compare: baseline or judge: mann_whitney", key=True)
            )
    problems += [located(source, at + (field,), message, key=True) for field, message in limit_problems(gate)]
    for low, high in (("pass_min", "pass_max"), ("min", "max")):
        lo, hi = getattr(gate, low), getattr(gate, high)
        if lo is not None and hi is not None and lo > hi:
            problems.append(
                located(source, at + (low,), f"{low} ({number_text(lo)}) is greater than {high} ({number_text(hi)})", key=True)
            )
    return problems


def version_problems(data: dict[str, object], text: str, source: SourceMap) -> list[Problem]:
    """Versions YAML read as numbers (`version: 9.10` is the float 9.1): refused, with the
    text as written, quoted. Nobody means a number by a version, and a silent `9.1` would
    roll out the wrong build."""
    services = data.get("services")
    if not isinstance(services, dict):
        return []
    lines = text.splitlines()
    problems = []
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        for side in ("from", "to"):
            spec = service.get(side)
            value = spec.get("version") if isinstance(spec, dict) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            at: Path = ("services", name, side, "version")
            line, col = source.locate(at)
            written = _written(lines, line, col) or number_text(value)
            read = number_text(value)
            how = f"YAML reads {written} as the number {read}" if written != read else f"YAML reads {written} as a number"
            problems.append(located(source, at, f'{how}; quote the version: "{written}"'))
    return problems


def _written(lines: list[str], line: int, col: int) -> str:
    """The plain scalar that starts at (line, col) as the file writes it."""
    if not 0 < line <= len(lines):
        return ""
    found = re.match(r"[^\s,\]\}#]+", lines[line - 1][col - 1:])
    return found.group(0) if found else ""


def query_problems(plan: Plan, source: SourceMap) -> list[Problem]:
    """With Prometheus, every metric a moving service's gates measure needs a query
    (a `sequential` gate also needs `requests`): each missing one is named at the gate."""
    env = plan.environment
    metrics = None if isinstance(env, str) else env.metrics
    if metrics is None or metrics.kind != "prometheus":
        return []
    used = sorted({g for name, s in plan.services.items() if s.moves for g in plan.judging(name) if g in plan.gates})
    known = ", ".join(sorted(metrics.queries)) or "none yet"
    problems: list[Problem] = []
    for name in used:
        gate = plan.gates[name]
        if gate.judge == "drift":
            continue  # prediction histograms come from the simulated world only
        for metric, at in ((gate.metric, ("gates", name, "metric")), ("requests", ("gates", name, "judge"))):
            if metric == "requests" and gate.judge != "sequential":
                continue
            if metric not in metrics.queries:
                problems.append(located(source, at, (
                    f"no query for metric '{metric}' in environment.metrics.queries (queries: {known}); "
                    "add one, or the gate cannot measure"
                )))
    return problems
