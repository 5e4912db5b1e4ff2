"""interlock's core, as the console, the command line and the adapters use it.

Pure: plan loading and compiling, the reducer and the fold over a journal, the
engine, the operator action table, events, state, clocks and the ports the
adapters implement. Import these names from `core`; the modules behind them
are free to move. (Inside `core`, modules import each other directly.)
"""

from __future__ import annotations

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
from core.notices import notices
from core.notices import payload as notice_payload
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
