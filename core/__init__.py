"""interlock's core, as the console, the command line and the adapters use it.

Pure: plan loading and compiling, the reducer and the fold over a journal, the
engine, the operator action table, events, state, clocks and the ports the
adapters implement. Import these names from `core`; the modules behind them
are free to move. (Inside `core`, modules import each other directly.)

Lazy (PEP 562): `from core import load_plan` imports only the modules behind that
name, so `interlock validate` does not pay for the engine, the action table and
pydantic models it never uses (about a third of a second at every start). The
imports under `TYPE_CHECKING` are the one table of what `core` exports: mypy and
readers see real imports, and `__getattr__` reads the same statements (parsed
once, on the first lookup) to find each name's module. `__all__` lists them for
`import *` and mypy's re-export check; `tests/test_core_facade.py` holds the three
together. A module of `core` must not share a name with an export (an imported
submodule becomes an attribute of the package and would shadow it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.actions import (
        ACTIONS,
        ALL_VERBS,
        BY_NAME,
        Action,
        available,
        awaiting_approval,
        help_rows,
        refused,
        why_not,
    )
    from core.clock import SPEEDS, Clock, HeldClock, VirtualClock, next_speed
    from core.cohorts import COHORT_HEADER
    from core.context import build_context, initial_state
    from core.datacontract import DataContract, incomplete
    from core.datacontract import validate as validate_payload
    from core.datagates import split_metric
    from core.drill import SCRIPT_OPERATOR, Fault, LoadedDrill, OperatorStep, Trigger, load_drill
    from core.durations import format_duration, format_moment, parse_duration
    from core.engine import Engine, safe_message
    from core.events import (
        Abandoned,
        Adopted,
        CheckFinished,
        CommandFailed,
        Event,
        ExposureApplied,
        ExposureRead,
        FaultInjected,
        GateMisconfigured,
        MeasurementGap,
        Measured,
        MirrorApplied,
        NotificationSent,
        OperatorAction,
        OperatorVerb,
        Resumed,
        RolloutStarted,
        Tick,
        adopt_event,
    )
    from core.notice_triggers import notices
    from core.notice_triggers import payload as notice_payload
    from core.notify import Webhook
    from core.replay import fold, folding, steps
    from core.graph import Precedence, RolloutGraph
    from core.inputs import read_input, seed_problem, shown_path, speed_problem
    from core.masking import mask_url
    from core.judges.analysis import analyze, render_text
    from core.judges.drift import psi
    from core.judges.measure import classify as classify_measurement
    from core.order import classify as classify_edge
    from core.order import compile_plan, mismatches, reads
    from core.plan import Contracts, Gate, Plan, Service, SimService, SimVersion
    from core.planload import load_and_compile, load_plan, parse_plan
    from core.ports import (
        AdapterError,
        Answer,
        CheckResult,
        CheckRunner,
        ConfigurationError,
        FaultInjector,
        FlagService,
        Journal,
        Lease,
        LeaseHeld,
        LeaseLost,
        MetricSource,
        Mirror,
        NoCheckRunner,
        Record,
        Request,
        RequestBox,
        Router,
        RunInfo,
        TargetReading,
    )
    from core.preflight import Found, Refused, Report, judge, read_targets
    from core.readback import MIRROR
    from core.problems import InputError, Problem, SourceMap, located
    from core.problems import Path as ProblemPath
    from core.reducer import reduce
    from core.rollback import abort_order, rollback_cascade
    from core.scorecard import Scorecard, score
    from core.shadow import shadowed
    from core.state import Context, RolloutState
    from core.verdict import of_event as verdict_of_event
    from core.verdict import of_sample
    from core.yamlcompose import collector_paused

_exports: dict[str, tuple[str, str]] | None = None


def _export_table() -> dict[str, tuple[str, str]]:
    """Each exported name -> (module, attribute), read from the `TYPE_CHECKING` imports
    above: the one place the export list is written."""
    global _exports
    if _exports is None:
        import ast

        with open(__file__, encoding="utf-8") as source:
            tree = ast.parse(source.read())
        found: dict[str, tuple[str, str]] = {}
        for node in tree.body:
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                for statement in node.body:
                    assert isinstance(statement, ast.ImportFrom) and statement.module is not None
                    for alias in statement.names:
                        found[alias.asname or alias.name] = (statement.module, alias.name)
        _exports = found
    return _exports


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _export_table()[name]
    except KeyError:
        raise AttributeError(f"module 'core' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Abandoned", "abort_order", "Action", "ACTIONS", "AdapterError", "adopt_event", "Adopted",
    "ALL_VERBS", "analyze", "Answer", "available", "awaiting_approval", "build_context", "BY_NAME",
    "CheckFinished", "CheckResult", "CheckRunner",
    "classify_edge", "classify_measurement", "Clock", "COHORT_HEADER", "collector_paused",
    "CommandFailed", "compile_plan", "ConfigurationError", "Context", "Contracts", "DataContract", "Engine",
    "Event", "ExposureApplied", "ExposureRead", "Fault", "FaultInjected", "FaultInjector",
    "FlagService", "fold", "folding", "format_duration", "format_moment", "Found", "Gate", "GateMisconfigured",
    "HeldClock", "help_rows", "incomplete", "initial_state", "InputError", "Journal", "judge", "Lease",
    "LeaseHeld", "LeaseLost", "load_drill", "load_and_compile", "load_plan", "LoadedDrill", "located", "Measured",
    "MeasurementGap", "MetricSource", "MIRROR", "Mirror", "MirrorApplied", "mask_url", "mismatches", "notice_payload", "notices", "NotificationSent", "next_speed", "NoCheckRunner",
    "of_sample", "OperatorAction", "OperatorStep",
    "OperatorVerb", "parse_duration", "parse_plan", "Plan", "Precedence", "Problem", "ProblemPath",
    "psi", "read_input", "read_targets", "reads", "Record", "reduce", "Request", "RequestBox", "Refused", "refused", "render_text",
    "Report", "Resumed", "rollback_cascade", "RolloutGraph", "RolloutStarted", "RolloutState",
    "Router", "RunInfo", "safe_message", "score", "Scorecard", "SCRIPT_OPERATOR", "seed_problem",
    "Service", "shadowed", "shown_path", "split_metric", "SPEEDS", "SimService", "SimVersion", "SourceMap", "speed_problem", "steps",
    "TargetReading", "Tick", "Trigger", "validate_payload", "verdict_of_event", "VirtualClock", "Webhook", "why_not",
]
