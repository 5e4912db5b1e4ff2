"""`interlock plan PLAN`: the compiled order as an on-call engineer reads it.

Before a rollout starts, the question is "what moves when, and why in that
order?". So every precedence and every lockstep group comes with its reason in
contract terms (which version reads which), not just a verdict. Plain text, no
colour: it goes into terminals, tickets and CI logs alike.
"""

from __future__ import annotations

from core import Precedence, RolloutGraph
from core import classify_edge, mismatches
from core import Contracts, Plan, format_duration
from tui.cells import fit, width_of


def render_plan(plan: Plan, graph: RolloutGraph) -> str:
    """The human form of `interlock plan --json`: waves, groups, reasons, blast radius
    (no trailing newline, ready for `print`)."""
    moving, static = len(graph.moving), len(graph.static)
    lines = [
        f"rollout {graph.rollout}: {_count(moving, 'service')} to move in "
        f"{_count(len(graph.waves), 'wave')}, {static} static",
        "",
        "waves",
    ]
    width = width_of(plan.services)
    for number, wave in enumerate(graph.waves, start=1):
        for i, name in enumerate(wave):
            service = plan.services[name]
            assert service.to is not None
            label = f"{number:>3}  " if i == 0 else "     "
            versions = f"{service.from_.version} -> {service.to.version}"
            partners = [other for other in graph.group(name) if other != name]
            note = f"   lockstep with {', '.join(partners)}" if partners else ""
            if service.shadow is not None:
                note += f"   shadow {format_duration(service.shadow.duration)} first (0% of users)"
            lines.append(f"{label}{fit(name, width)}  {versions}{note}")
    if graph.order:
        lines += [
            "",
            f"rollout order: {', '.join(graph.order)}",
            f"rollback order: {', '.join(reversed(graph.order))}"
            " (only services that moved go back)",
        ]

    lines += ["", "lockstep groups (one cohort: the same users see every new version)"]
    for group in graph.lockstep:
        lines.append(f"  {' + '.join(group)}")
        members = set(group)
        for consumer in group:
            for producer in sorted(set(plan.services[consumer].depends_on) & members):
                why = _edge_words(plan, producer, consumer)
                lines.append(f"    {producer} -> {consumer}: {why}")
    if not graph.lockstep:
        lines.append("  none")

    lines += ["", "precedence"]
    lines += [f"  {_precedence_words(plan, p)}" for p in graph.precedence] or ["  none"]

    lines += ["", "static services (not rolled out; their contracts still count)"]
    for name in graph.static:
        lines.append(f"  {fit(name, width)}  {plan.services[name].from_.version}")
    if not graph.static:
        lines.append("  none")

    lines += ["", f"blast radius (how many services are downstream of each; the {NEAREST} nearest first)"]
    consumers = _consumers(plan)
    for name in sorted(graph.blast_radius):
        count = graph.downstream_count(name)
        if not count:
            lines.append(f"  {fit(name, width)}  none")
            continue
        nearest = _nearest(name, consumers, NEAREST)
        more = f", ... {count - len(nearest)} more" if count > len(nearest) else ""
        lines.append(f"  {fit(name, width)}  {count} downstream: {', '.join(nearest)}{more}")
    return "\n".join(lines)


NEAREST = 5
"""Downstream services named per line of the blast radius; the rest are counted. Every
name written out would make the output grow with the square of the plan (`--json` has them)."""


def _consumers(plan: Plan) -> dict[str, list[str]]:
    """Service → the services that depend on it directly, sorted."""
    out: dict[str, list[str]] = {name: [] for name in plan.services}
    for name, service in plan.services.items():
        for dep in dict.fromkeys(service.depends_on):
            if dep in out:
                out[dep].append(name)
    for names in out.values():
        names.sort()
    return out


def _nearest(start: str, consumers: dict[str, list[str]], limit: int) -> list[str]:
    """Up to `limit` services downstream of `start`, nearest first, then by name.

    Breadth first, a level at a time; from each service's sorted consumers only
    the first `limit` unseen ones can make the cut, so a line costs about what
    it prints, not the size of the radius."""
    found: list[str] = []
    seen = {start}
    level = [start]
    while level and len(found) < limit:
        want = limit - len(found)
        candidates: set[str] = set()
        for name in level:
            taken = 0
            for consumer in consumers[name]:
                if taken == want:
                    break
                if consumer not in seen:
                    candidates.add(consumer)
                    taken += 1
        level = sorted(candidates)[:want]
        found += level
        seen.update(level)
    return found


def _precedence_words(plan: Plan, edge: Precedence) -> str:
    """`features before embedder: the old embedder 2.4 reads features 7 (producer first)`."""
    if edge.reason == "producer_first":
        producer, consumer = edge.before, edge.after
    else:
        producer, consumer = edge.after, edge.before
    why = _edge_words(plan, producer, consumer)
    if classify_edge(plan, producer, consumer) == "free" and edge.reason == "consumer_first":
        why = "either order is safe, but producer first would close a cycle"
    return f"{edge.before} before {edge.after}: {why} ({edge.reason.replace('_', ' ')})"


def _edge_words(plan: Plan, producer: str, consumer: str) -> str:
    """Why the contracts allow the orders they allow along producer → consumer."""
    p, c = plan.services[producer], plan.services[consumer]
    assert p.to is not None and c.to is not None
    kind = classify_edge(plan, producer, consumer)
    if kind == "producer_first":
        return (
            f"the old {consumer} {c.from_.version} {_reads(c.from_, p.to, producer)}, "
            f"the new one {_misses(c.to, p.from_)}"
        )
    if kind == "consumer_first":
        return (
            f"the new {consumer} {c.to.version} {_reads(c.to, p.from_, producer)}, "
            f"the old one {_misses(c.from_, p.to)}; expand/contract"
        )
    if kind == "lockstep":
        return (
            f"neither order is safe: the old {consumer} {c.from_.version} "
            f"{_misses(c.from_, p.to)}, the new one {_misses(c.to, p.from_)}"
        )
    if not _shared(p.from_, c.from_) and not _shared(p.to, c.to):
        return "no contract between them, either order is safe"
    return "either order is safe"


def _shared(producer: Contracts, consumer: Contracts) -> list[tuple[str, int]]:
    return sorted((k, v) for k, v in producer.produces.items() if k in consumer.consumes)


def _reads(consumer: Contracts, producer: Contracts, producer_name: str) -> str:
    shared = _shared(producer, consumer)
    if not shared:
        return f"shares no contract with {producer_name} {producer.version}"
    return "reads " + " and ".join(f"{k} {v}" for k, v in shared)


def _misses(consumer: Contracts, producer: Contracts) -> str:
    missed = mismatches(consumer, producer)
    return "does not read " + " and ".join(f"{k} {v}" for k, _, v in missed)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
