"""A plan's data-contract checks as gates, judged like every other gate.

Each check a contract declares (`core.datacontract`) becomes one threshold gate,
named `CONTRACT:CHECK` (`features:freshness`), on every moving service whose new
version consumes that contract: what the new version is about to read is what must
be fresh, complete, plentiful and well-formed. The gates run before the service's
first exposure (the pre-flight: `core.schedule`) and at every stage, through the
ordinary gate machinery, so a failure rolls back or pauses by `on_failure` and
explains itself with `core.verdict`'s arithmetic (`data_freshness@features 2h05m >
max 15m ✗`).

A data metric names its contract after an `@`: `data_freshness@features`. A metric
source answers it for a (service, version) as *the input that version reads* on
that contract; Prometheus substitutes `$contract` in the query of `data_freshness`
(or takes a query written for `data_freshness@features` itself).
"""

from __future__ import annotations

from core.datacontract import DataContract, schema_problems
from core.plan import Gate, Plan
from core.problems import Problem, SourceMap, located

DATA_METRICS: dict[str, str] = {
    "freshness": "data_freshness",
    "completeness": "data_missing",
    "volume": "data_volume",
    "schema": "data_invalid",
}
"""Check → the metric it measures: age of the newest input (seconds), share of records
with a declared field missing or null, rows read over the interval, share of sampled
payloads failing the schema."""


def qualified(metric: str, contract: str) -> str:
    return f"{metric}@{contract}"


def split_metric(metric: str) -> tuple[str, str | None]:
    """`data_freshness@features` → (`data_freshness`, `features`); others → (metric, None)."""
    base, at, contract = metric.partition("@")
    if at and base in DATA_METRICS.values() and contract:
        return base, contract
    return metric, None


def gate_name(contract: str, check: str) -> str:
    return f"{contract}:{check}"


def _gates_of(name: str, contract: DataContract) -> dict[str, Gate]:
    checks = contract.checks
    every = checks.interval
    out: dict[str, Gate] = {}
    if checks.freshness is not None:
        out[gate_name(name, "freshness")] = Gate(
            metric=qualified(DATA_METRICS["freshness"], name), max=checks.freshness.max_age, interval=every)
    if checks.completeness is not None:
        out[gate_name(name, "completeness")] = Gate(
            metric=qualified(DATA_METRICS["completeness"], name), max=checks.completeness.max_missing, interval=every)
    if checks.volume is not None:
        out[gate_name(name, "volume")] = Gate(
            metric=qualified(DATA_METRICS["volume"], name), compare="baseline", interval=every,
            max_decrease=checks.volume.max_decrease, max_increase=checks.volume.max_increase)
    if checks.schema_ is not None:
        out[gate_name(name, "schema")] = Gate(
            metric=qualified(DATA_METRICS["schema"], name), max=checks.schema_.max_invalid, interval=every)
    return out


def contract_gates(plan: Plan) -> dict[str, Gate]:
    """Every data-contract gate of the plan, by name."""
    out: dict[str, Gate] = {}
    for name, contract in sorted(plan.contracts.items()):
        out.update(_gates_of(name, contract))
    return out


def contract_gates_of(plan: Plan, service: str) -> list[str]:
    """The data-contract gates of one service: those of every contract its new version reads."""
    target = plan.services[service].to
    if target is None:
        return []
    return [gate for name in sorted(target.consumes) if name in plan.contracts
            for gate in _gates_of(name, plan.contracts[name])]


def problems(plan: Plan, source: SourceMap) -> list[Problem]:
    """What `contracts:` gets wrong: a contract no service names, a check that needs a
    schema without one, a schema keyword interlock does not check, a gate name taken, a
    data metric without a Prometheus query."""
    out: list[Problem] = []
    named = {c for s in plan.services.values() for v in (s.from_, s.to) if v is not None
             for c in (*v.produces, *v.consumes)}
    for name, contract in plan.contracts.items():
        at = ("contracts", name)
        if name not in named:
            known = ", ".join(sorted(named)) or "none"
            out.append(located(source, at, f"no service produces or consumes contract '{name}' "
                                           f"(contracts the services name: {known})", key=True))
        if contract.schema_ is not None:
            out += [located(source, at + ("schema",) + where, message, key=True)
                    for where, message in schema_problems(contract.schema_)]
        checks = contract.checks
        if checks.schema_ is not None and contract.schema_ is None:
            out.append(located(source, at + ("checks", "schema"), "a schema check needs the contract's `schema`",
                               key=True))
        if checks.completeness is not None and not contract.declared_fields():
            out.append(located(source, at + ("checks", "completeness"),
                               "completeness counts the declared fields: give the contract a `schema` with "
                               "`properties`", key=True))
        for gate in _gates_of(name, contract):
            if gate in plan.gates:
                out.append(located(source, ("gates", gate), f"gate name '{gate}' is taken by the check of "
                                                             f"contract '{name}'; rename this gate", key=True))
    out += _query_problems(plan, source)
    return out


def _query_problems(plan: Plan, source: SourceMap) -> list[Problem]:
    env = plan.environment
    metrics = None if isinstance(env, str) else env.metrics
    if metrics is None or metrics.kind != "prometheus":
        return []
    used = {g for name, s in plan.services.items() if s.moves for g in contract_gates_of(plan, name)}
    gates = contract_gates(plan)
    out = []
    for gate in sorted(used):
        metric = gates[gate].metric
        base, _ = split_metric(metric)
        if metric not in metrics.queries and base not in metrics.queries:
            contract, check = gate.split(":", 1)
            out.append(located(source, ("contracts", contract, "checks", check), (
                f"no query for metric '{base}' (or '{metric}') in environment.metrics.queries; add one "
                "($contract is the contract's name), or the check cannot measure"), key=True))
    return out
