"""Compile a plan into its rollout order: the data contracts decide who goes first.

This is the rule of DESIGN.md ("Compiling the graph"), implemented exactly:
each `depends_on` edge between two moving services is forced producer first,
forced consumer first, forced into lockstep (neither order is safe), or free
(both are). Strongly connected components of the forced edges are the lockstep
groups; free edges are then placed one by one, in (producer, consumer) name
order, producer first unless that would close a cycle.

Plans can hold thousands of services, so two things are not naive: placing a
free edge keeps a topological order of the group DAG up to date
(Pearce–Kelly), which answers "would this close a cycle?" by searching only
the affected slice of the order; and the transitive sets (`group_after`,
`blast_radius`) are bitmasks computed on first read and decoded only when read,
because they grow with the square of the plan and `validate` never reads them.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from core.digraph import (
    BlastRadius,
    DynamicOrder,
    components,
    descendants,
    topological,
)
import core.shadow as shadow
from core.cohorts import lockstep_route_problems
from core.graph import Precedence, RolloutGraph
from core.plan import Contracts, Plan, Stage
from core.problems import InputError, Problem, SourceMap, located

EdgeKind = Literal["producer_first", "consumer_first", "lockstep", "free"]
T = TypeVar("T")
Mismatch = tuple[str, list[int], int]
"""(contract, versions the consumer reads, version the producer produces)."""


def mismatches(consumer: Contracts, producer: Contracts) -> list[Mismatch]:
    """The contracts on which `consumer` cannot read `producer`, sorted by name."""
    consumes = consumer.consumes
    return sorted(
        (name, consumes[name], produced)
        for name, produced in producer.produces.items()
        if name in consumes and produced not in consumes[name]
    )


def reads(consumer: Contracts, producer: Contracts) -> bool:
    """A contract named on one side only imposes nothing; no contract at all is read."""
    consumes = consumer.consumes
    for name, produced in producer.produces.items():
        accepted = consumes.get(name)
        if accepted is not None and produced not in accepted:
            return False
    return True


def classify(plan: Plan, producer: str, consumer: str) -> EdgeKind:
    """Which order the contracts allow along one edge between two moving services."""
    p, c = plan.services[producer], plan.services[consumer]
    assert p.to is not None and c.to is not None, "only edges between moving services"
    producer_first = reads(c.from_, p.to)
    consumer_first = reads(c.to, p.from_)
    if producer_first and consumer_first:
        return "free"
    if producer_first:
        return "producer_first"
    if consumer_first:
        return "consumer_first"
    return "lockstep"


def compile_plan(plan: Plan, source: SourceMap | None = None) -> RolloutGraph:
    """The rollout graph of a plan, or `InputError` with every problem found."""
    names = sorted(plan.services)
    moving = [n for n in names if plan.services[n].moves]
    problems: list[Problem] = []
    edges = _edges(plan, source, problems)
    flow: dict[str, list[str]] = {name: [] for name in names}
    for p, c in edges:
        flow[p].append(c)
    flow_order = topological(names, flow)
    if len(flow_order) < len(names):
        _cycles(names, edges, source, problems)
    _contract_problems(plan, edges, source, problems)
    moves = set(moving)
    kinds = {(p, c): classify(plan, p, c) for p, c in edges if p in moves and c in moves}
    comp_of, members = _lockstep_components(moving, kinds)
    _stage_problems(plan, members, source, problems)
    problems += lockstep_route_problems(plan, members, source)
    problems += shadow.lockstep_problems(plan, members, source)
    if problems:
        raise InputError(problems)

    depth = dict.fromkeys(names, 0)
    for name in flow_order:
        for consumer in flow[name]:
            depth[consumer] = max(depth[consumer], depth[name] + 1)
    rank = [min(depth[n] for n in m) for m in members]
    comp_succ, precedence = _place(kinds, comp_of, rank)

    # Comps are numbered by first name, so "ties by first name" is "ties by number".
    ordered = topological(range(len(members)), comp_succ)
    index_of = {comp: i for i, comp in enumerate(ordered)}
    groups = tuple(members[comp] for comp in ordered)
    succs = [[index_of[b] for b in comp_succ[comp]] for comp in ordered]
    preds: list[set[int]] = [set() for _ in groups]
    for i, after_i in enumerate(succs):
        for j in after_i:
            preds[j].add(i)
    wave_of_group = [0] * len(groups)
    for i in range(len(groups)):
        wave_of_group[i] = max((wave_of_group[j] + 1 for j in preds[i]), default=0)
    waves: list[list[str]] = [[] for _ in range(max(wave_of_group, default=-1) + 1)]
    for i, group in enumerate(groups):
        waves[wave_of_group[i]].extend(group)

    position = {name: i for i, name in enumerate(names)}
    consumers = [[position[c] for c in flow[name]] for name in names]
    return RolloutGraph(
        rollout=plan.rollout,
        moving=tuple(moving),
        static=tuple(n for n in names if not plan.services[n].moves),
        groups=groups,
        group_of={name: index_of[comp_of[name]] for name in moving},
        group_preds=tuple(frozenset(p) for p in preds),
        group_succs=tuple(tuple(after) for after in succs),
        waves=tuple(tuple(sorted(wave)) for wave in waves),
        wave_of_group=tuple(wave_of_group),
        lockstep=tuple(sorted(g for g in groups if len(g) > 1)),
        precedence=tuple(sorted(precedence, key=lambda e: (e.before, e.after))),
        blast_radius=BlastRadius(  # computed when first read
            tuple(names), lambda: descendants([position[n] for n in flow_order], consumers)
        ),
        order=tuple(name for group in groups for name in group),
        downstream={name: tuple(flow[name]) for name in names},  # flow: from sorted edges
    )


def _edges(plan: Plan, source: SourceMap | None, problems: list[Problem]) -> list[tuple[str, str]]:
    """Data-flow edges (producer, consumer), deduplicated and sorted; unknown names reported."""
    edges: set[tuple[str, str]] = set()
    for name, service in plan.services.items():
        for i, dep in enumerate(service.depends_on):
            if dep in plan.services:
                edges.add((dep, name))
            else:
                known = sorted(plan.services)
                listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
                message = f"unknown service {dep!r}; the plan's services are: {listed}"
                problems.append(located(source, ("services", name, "depends_on", i), message))
    return sorted(edges)


def _cycles(
    names: list[str],
    edges: list[tuple[str, str]],
    source: SourceMap | None,
    problems: list[Problem],
) -> None:
    """One cycle per strongly connected knot of `depends_on`, shortest through its first name."""
    needs: dict[str, list[str]] = {name: [] for name in names}
    for p, c in edges:
        needs[c].append(p)  # sorted, since edges are
    knots = [
        sorted(comp)
        for comp in components(names, needs)
        if len(comp) > 1 or comp[0] in needs[comp[0]]
    ]
    for knot in sorted(knots):
        start, inside = knot[0], set(knot)
        parent: dict[str, str] = {}
        frontier: list[str] = [start]
        tail: str | None = None
        while tail is None:
            step = []
            for node in frontier:
                if start in needs[node]:
                    tail = node
                    break
                for dep in needs[node]:
                    if dep in inside and dep not in parent:
                        parent[dep] = node
                        step.append(dep)
            frontier = step
        path: list[str] = [tail]
        while path[-1] != start:
            path.append(parent[path[-1]])
        cycle = " -> ".join([*reversed(path), start])
        problems.append(
            located(source, ("services", start, "depends_on"), f"dependency cycle: {cycle}")
        )


def _contract_problems(
    plan: Plan, edges: list[tuple[str, str]], source: SourceMap | None, problems: list[Problem]
) -> None:
    """Static neighbours must be read by both versions; target versions must read each other."""
    for p, c in edges:
        producer, consumer = plan.services[p], plan.services[c]
        if producer.to is None and consumer.to is not None:
            for which, version in (("from", consumer.from_), ("to", consumer.to)):
                for contract, accepted, produced in mismatches(version, producer.from_):
                    message = (
                        f"{c} {version.version} consumes {contract} {accepted} but static {p} "
                        f"{producer.from_.version} produces {produced}; both versions of {c} "
                        f"must read {p} (add {produced} to the list)"
                    )
                    path = ("services", c, which, "consumes", contract)
                    problems.append(located(source, path, message))
        elif producer.to is not None and consumer.to is None:
            for which, version in (("from", producer.from_), ("to", producer.to)):
                for contract, accepted, produced in mismatches(consumer.from_, version):
                    message = (
                        f"{p} {version.version} produces {contract} {produced} but static {c} "
                        f"{consumer.from_.version} consumes {contract} {accepted}; both versions "
                        f"of {p} must be read by {c} (produce one of {accepted})"
                    )
                    path = ("services", p, which, "produces", contract)
                    problems.append(located(source, path, message))
        elif producer.to is not None and consumer.to is not None:
            for contract, accepted, produced in mismatches(consumer.to, producer.to):
                message = (
                    f"{c} {consumer.to.version} consumes {contract} {accepted} but {p} "
                    f"{producer.to.version} produces {produced}; the target versions must read "
                    f"each other ({c} must accept {produced}, or {p} produce one of {accepted})"
                )
                path = ("services", c, "to", "consumes", contract)
                problems.append(located(source, path, message))


def _lockstep_components(
    moving: list[str], kinds: dict[tuple[str, str], EdgeKind]
) -> tuple[dict[str, int], list[tuple[str, ...]]]:
    """Strongly connected components of the forced edges (a lockstep edge is a 2-cycle):
    service → comp number, and per comp its sorted names, comps sorted by first name."""
    forced: dict[str, list[str]] = {name: [] for name in moving}
    for (p, c), kind in kinds.items():
        if kind in ("producer_first", "lockstep"):
            forced[p].append(c)
        if kind in ("consumer_first", "lockstep"):
            forced[c].append(p)
    members = sorted(tuple(sorted(comp)) for comp in components(moving, forced))
    comp_of = {name: k for k, comp in enumerate(members) for name in comp}
    return comp_of, members


def _stage_problems(
    plan: Plan, members: list[tuple[str, ...]], source: SourceMap | None, problems: list[Problem]
) -> None:
    for group in members:
        if len(group) < 2:
            continue
        percents = {name: _stage_percents(plan, name) for name in group}
        if all(percents[name] == percents[group[0]] for name in group):
            continue
        blamed = next(name for name in group if percents[name] != percents[group[0]])
        listed = ", ".join(f"{name} has {_percents(percents[name])}" for name in group)
        message = (
            f"lockstep group {' + '.join(group)} moves on one cohort, so its services need the "
            f"same stage percents, but {listed}"
        )
        problems.append(located(source, ("services", blamed, "stages"), message))


def _stage_percents(plan: Plan, name: str) -> list[float]:
    """`[s.percent for s in plan.stages_of(name)]`, without building the stages."""
    specs = plan.services[name].stages
    specs = plan.defaults.stages if specs is None else specs
    return [spec.percent if isinstance(spec, Stage) else float(spec) for spec in specs]


def _percents(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _place(
    kinds: dict[tuple[str, str], EdgeKind], comp_of: dict[str, int], rank: list[int]
) -> tuple[list[set[int]], set[Precedence]]:
    """Orient every edge between groups, forced ones as forced, free ones by the rule;
    return the group DAG (successors per comp) and the precedence entries."""
    precedence: set[Precedence] = set()
    free: list[tuple[str, str]] = []
    forced: list[tuple[int, int]] = []
    for (p, c), kind in kinds.items():
        if comp_of[p] == comp_of[c]:
            continue
        if kind == "free":
            free.append((p, c))
        elif kind == "producer_first":
            forced.append((comp_of[p], comp_of[c]))
            precedence.add(Precedence(p, c, "producer_first"))
        else:  # consumer first: a lockstep edge never joins two comps
            forced.append((comp_of[c], comp_of[p]))
            precedence.add(Precedence(c, p, "consumer_first"))
    order = DynamicOrder(rank, forced)
    for p, c in sorted(free):
        u, v = comp_of[p], comp_of[c]
        if order.try_add(u, v):
            precedence.add(Precedence(p, c, "producer_first"))
        else:  # v already reaches u, so v → u keeps the order valid as it stands
            order.add_forward(v, u)
            precedence.add(Precedence(c, p, "consumer_first"))
    return order.succ, precedence
