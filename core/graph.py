"""The compiled rollout graph: groups, their order, waves and blast radius.

`compile_plan` (in :mod:`core.order`) turns a validated `Plan` into this
immutable value; the reducer and the console only ever read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import AbstractSet, Literal, Mapping

from core.digraph import BlastRadius, IndexSet, descendants
from core.radius_json import radius_json

Reason = Literal["producer_first", "consumer_first"]


@dataclass(frozen=True)
class Precedence:
    before: str
    after: str
    reason: Reason


@dataclass(frozen=True)
class RolloutGraph:
    rollout: str
    moving: tuple[str, ...]
    """Services with a target version, sorted by name."""
    static: tuple[str, ...]
    """Services without a target version (context only), sorted by name."""
    groups: tuple[tuple[str, ...], ...]
    """Every moving service in exactly one group (a lockstep group or a singleton),
    names sorted inside a group, groups listed in rollout order (a topological
    order of the precedence DAG, ties broken by the group's first name)."""
    group_of: Mapping[str, int]
    """Service → index into `groups`."""
    group_preds: tuple[frozenset[int], ...]
    """Per group: the groups that must be promoted before it may start."""
    group_succs: tuple[tuple[int, ...], ...]
    """Per group: the groups ordered directly after it (the edges of `group_after`)."""
    waves: tuple[tuple[str, ...], ...]
    """Topological generations of the group DAG, service names sorted per wave."""
    wave_of_group: tuple[int, ...]
    lockstep: tuple[tuple[str, ...], ...]
    """Groups of more than one service, sorted."""
    precedence: tuple[Precedence, ...]
    """Edges between different groups, sorted by (before, after)."""
    blast_radius: Mapping[str, tuple[str, ...]]
    """Service → every service downstream of it along depends_on, sorted."""
    order: tuple[str, ...]
    """All moving services in rollout order (groups flattened)."""
    downstream: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Service → the services that depend on it directly, sorted (every service, static
    ones too): the edges whose transitive closure `blast_radius` is, written in linear space."""

    @cached_property
    def group_after(self) -> tuple[AbstractSet[int], ...]:
        """Per group: every group ordered after it, transitively. Computed on first read (a
        rollout's context reads it; `validate` and `plan` never do): n² bits in all."""
        return tuple(IndexSet(mask) for mask in descendants(range(len(self.groups)), self.group_succs))

    def group(self, service: str) -> tuple[str, ...]:
        return self.groups[self.group_of[service]]

    def downstream_count(self, service: str) -> int:
        """`len(blast_radius[service])`, without writing the names out (they grow with n²)."""
        radius = self.blast_radius
        return radius.size(service) if isinstance(radius, BlastRadius) else len(radius[service])

    def json_head(self) -> dict[str, object]:
        """The keys `interlock plan --json` writes before `blast_radius` (or `downstream`)."""
        return {
            "rollout": self.rollout,
            "waves": [list(w) for w in self.waves],
            "lockstep": [list(g) for g in self.lockstep],
            "precedence": [
                {"before": p.before, "after": p.after, "reason": p.reason} for p in self.precedence
            ],
        }

    def to_json(self, *, compact: bool = False) -> dict[str, object]:
        """The `interlock plan --json` object of DESIGN.md. `compact` (`plan --json --compact`)
        writes `downstream` (direct dependents) instead of `blast_radius`, its transitive
        closure: the closure is every service's whole downstream, which grows with the
        square of the plan (536 MB of JSON at 10,000 services), the edges with its size."""
        out = self.json_head()
        if compact:
            out["downstream"] = {k: list(v) for k, v in sorted(self.downstream.items())}
        else:
            out["blast_radius"] = {k: list(v) for k, v in sorted(self.blast_radius.items())}
        return out

    def blast_radius_json(self) -> Iterator[bytes | memoryview]:
        """`to_json()["blast_radius"]` as `json.dumps(self.to_json(), indent=2)` writes it (from
        its `{` to its `}`), in chunks, without building the names: see `core.radius_json`."""
        radius = self.blast_radius
        if isinstance(radius, BlastRadius):
            yield from radius_json(radius)
            return
        value = {k: list(v) for k, v in sorted(radius.items())}
        yield json.dumps(value, indent=2).replace("\n", "\n  ").encode("ascii")  # one level in
