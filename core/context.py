"""Resolve a plan and its compiled graph into a run's `Context` and first state.

Resolution happens once: stage tables per group (lockstep members share one
table, the longest bake and any approval), gate specs per service, exposure
handles. The reducer then never looks anything up in the raw plan.
"""

from __future__ import annotations

from typing import Any

from core.beforefirst import steps_for
from core.hooks import hooked
from core.datagates import contract_gates, contract_gates_of
from core.graph import RolloutGraph
from core.plan import Gate, Plan, Stage
from core.shadow import shadow_gates, shadowed
from core.state import Context, GroupSpec, GroupState, RolloutState, ServiceState, live_groups


def _group_stages(plan: Plan, members: tuple[str, ...]) -> tuple[Stage, ...]:
    tables = [plan.stages_of(name) for name in members]
    merged: list[Stage] = []
    for index, first in enumerate(tables[0]):
        column = [table[index] for table in tables if index < len(table)]
        merged.append(
            Stage(
                percent=first.percent,
                bake=max(stage.bake or 0.0 for stage in column),
                approval=any(stage.approval for stage in column),
            )
        )
    return tuple(merged)


def scored(plan: Plan, gate: Gate) -> bool:
    """Judged by the stage's Kayenta score rather than alone."""
    return (plan.defaults.score is not None and gate.judge == "mann_whitney" and gate.group is not None
            and not gate.dry_run)


def _scored_gates(plan: Plan) -> dict[str, Gate]:
    """With `defaults.score`, a grouped mann_whitney gate fails alone only when `critical`;
    otherwise the stage's score decides (`core.schedule`)."""
    return {
        name: gate.model_copy(update={"failure_limit": -1}) if scored(plan, gate) and not gate.critical else gate
        for name, gate in plan.gates.items()
    }


MEASURE_SHAPE = {
    "threshold": "value", "mann_whitney": "series", "sequential": "counts", "drift": "histogram", "quantile": "tail",
}
"""What each judge needs measured."""


def _measure_fields(gates: dict[str, Gate], service_gates: dict[str, tuple[str, ...]],
                    versions: dict[str, tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every field of the `Measure` each (service, gate) run asks for, in field order,
    `cmd_id` 0: asking for one copies them and sets the command's id (`core.tx`)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for service, names in service_gates.items():
        from_version, to_version = versions[service]
        for name in names:
            gate = gates[name]
            out[service, name] = dict(
                cmd_id=0,
                service=service,
                gate=name,
                metric=gate.metric,
                window=gate.interval,
                canary_version=to_version,
                baseline_version=from_version,
                with_baseline=gate.against_baseline,
                shape=MEASURE_SHAPE[gate.judge],
                points=gate.samples if gate.judge == "mann_whitney" else 1,
                margin=(gate.max_increase or 0.0) if gate.judge == "quantile" else 0.0,
            )
    return out


def anytime_valid(gate: Gate) -> bool:
    """Judged by a test whose false-alarm rate holds over every look (`core.judges.mixture`)."""
    return gate.judge == "quantile" or (gate.judge == "sequential" and gate.compare != "configured")


def _spend_alpha(plan: Plan, gates: dict[str, Gate], groups: tuple[GroupSpec, ...]) -> dict[str, Gate]:
    """Split `policy.false_rollbacks` evenly over every anytime-valid test the rollout will
    run: one per service and gate that judges at some stage (a baseline comparison has
    nothing to compare with at 100%). The test runs on from stage to stage
    (`core.schedule`), and its false alarm over all its looks is at most its share (Ville's
    inequality), so by the union bound a healthy rollout rolls back because of these gates
    with probability at most `false_rollbacks`. A gate that sets its own `alpha` keeps it
    and its tests are not counted."""
    tests = 0
    for spec in groups:
        for name in spec.services:
            for gate_name in plan.gates_of(name):
                gate = gates[gate_name]
                if anytime_valid(gate) and "alpha" not in gate.model_fields_set:
                    tests += any(stage.percent < 100.0 or not gate.against_baseline for stage in spec.stages)
            for gate_name in shadow_gates(plan, name):  # a shadow is one more test of its gates
                if anytime_valid(gates[gate_name]) and "alpha" not in gates[gate_name].model_fields_set:
                    tests += 1
    if tests == 0:
        return gates
    share = plan.policy.false_rollbacks / tests
    return {
        name: gate.model_copy(update={"alpha": share})
        if anytime_valid(gate) and "alpha" not in gate.model_fields_set else gate
        for name, gate in gates.items()
    }


def build_context(plan: Plan, graph: RolloutGraph) -> Context:
    groups = tuple(
        GroupSpec(
            index=index,
            services=members,
            stages=_group_stages(plan, members),
            wave=graph.wave_of_group[index],
            preds=graph.group_preds[index],
            after=graph.group_after[index],
            cohort="+".join(members),
        )
        for index, members in enumerate(graph.groups)
    )
    versions = {}
    for name in graph.moving:
        service = plan.services[name]
        assert service.to is not None
        versions[name] = (service.from_.version, service.to.version)
    gates = _spend_alpha(plan, {**_scored_gates(plan), **contract_gates(plan)}, groups)
    service_gates = {name: tuple(plan.gates_of(name) + contract_gates_of(plan, name)) for name in graph.moving}
    return Context(
        plan=plan,
        graph=graph,
        groups=groups,
        gates=gates,
        service_gates=service_gates,
        exposure={name: plan.exposure_of(name) for name in graph.moving},
        versions=versions,
        measures=_measure_fields(gates, {  # stage gates, then the shadow's (`core.shadow`)
            name: tuple(dict.fromkeys(names + shadow_gates(plan, name))) for name, names in service_gates.items()
        }, versions),
        succs=_succs(groups),
        hooked=hooked(plan),
        shadowed=frozenset(name for name in graph.moving if shadowed(plan, name)),
        before_first=tuple(steps_for(plan, spec.services, spec.stages[0].percent) for spec in groups),
    )


def _succs(groups: tuple[GroupSpec, ...]) -> tuple[tuple[int, ...], ...]:
    out: list[list[int]] = [[] for _ in groups]
    for spec in groups:
        for pred in spec.preds:
            out[pred].append(spec.index)
    return tuple(tuple(sorted(s)) for s in out)


def initial_state(plan: Plan, graph: RolloutGraph) -> RolloutState:
    ctx = build_context(plan, graph)
    groups = tuple(GroupState() for _ in graph.groups)
    return RolloutState(
        ctx=ctx,
        services={name: ServiceState() for name in graph.moving},
        groups=groups,
        live=live_groups(ctx, groups),
    )
