"""Git-log-style lanes: the dependency edges drawn beside one-service rows.

Rows are the services in rollout order. Every `depends_on` edge between two
moving services becomes a vertical line on its own lane, from the upper row
to the lower one; a horizontal connector joins each row's node to the lanes
that start or end there. Lanes are reused as soon as their previous edge
ends (interval colouring), so a chain stays one lane wide, like `git log
--graph`. A lockstep group gets a bracket on the left: its services move on
one cohort, and the bracket says so at a glance. Pure and computed once per
plan: the graph's shape does not change while a rollout runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import RolloutGraph
from core import Plan

MAX_LANES = 6
"""Edges beyond this many concurrent lanes are not drawn (the order still shows)."""

_BOX: dict[tuple[bool, bool, bool, bool], str] = {
    # (up, down, left, right)
    (True, True, False, False): "│",
    (True, True, True, False): "┤",
    (True, True, True, True): "┼",
    (False, True, True, False): "╮",
    (False, True, True, True): "┬",
    (True, False, True, False): "╯",
    (True, False, True, True): "┴",
    (False, False, True, True): "─",
    (False, False, True, False): "─",
}


@dataclass(frozen=True, slots=True)
class LaneRow:
    """What to draw left and right of one service's status glyph."""

    bracket: str
    """`┏`, `┃`, `┗` inside a lockstep group, else a space."""
    lanes: str
    """One character per lane, `width` long."""


def _edges(plan: Plan, rows: dict[str, int]) -> list[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for name, service in plan.services.items():
        if name not in rows:
            continue
        for dep in service.depends_on:
            if dep in rows and rows[dep] != rows[name]:
                a, b = rows[dep], rows[name]
                out.add((min(a, b), max(a, b)))
    return sorted(out)


def _assign(edges: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Edges per lane; an edge takes the first lane free at its start row."""
    lanes: list[list[tuple[int, int]]] = []
    ends: list[int] = []
    for start, end in edges:
        for k, last in enumerate(ends):
            if last <= start:
                lanes[k].append((start, end))
                ends[k] = end
                break
        else:
            if len(lanes) < MAX_LANES:
                lanes.append([(start, end)])
                ends.append(end)
    return lanes


def layout(plan: Plan, graph: RolloutGraph) -> dict[str, LaneRow]:
    """The lane drawing of every moving service, keyed by name."""
    order = list(graph.order)
    rows = {name: i for i, name in enumerate(order)}
    lanes = _assign(_edges(plan, rows))
    width = len(lanes)
    out: dict[str, LaneRow] = {}
    for r, name in enumerate(order):
        up = [any(s < r <= e for s, e in lane) for lane in lanes]
        down = [any(s <= r < e for s, e in lane) for lane in lanes]
        ends_here = [any(r in (s, e) for s, e in lane) for lane in lanes]
        reach = max((k for k in range(width) if ends_here[k]), default=-1)
        chars = []
        for k in range(width):
            left = k <= reach
            right = k < reach
            chars.append(_BOX.get((up[k], down[k], left, right), " "))
        out[name] = LaneRow(bracket=_bracket(graph, name), lanes="".join(chars))
    return out


def _bracket(graph: RolloutGraph, name: str) -> str:
    members = graph.group(name)
    if len(members) < 2:
        return " "
    ordered = [n for n in graph.order if n in members]
    if name == ordered[0]:
        return "┏"
    if name == ordered[-1]:
        return "┗"
    return "┃"
