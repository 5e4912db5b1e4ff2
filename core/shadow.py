"""The shadow stage: the new version proves itself on copies of live requests before any user.

A service with ``shadow: {duration, side_effect_free: true, gates}`` does not start at its
first stage. Its group first *shadows*: interlock turns a request mirror on (`SetMirror`),
the new version answers copies of the live requests while 0% of users see it, and the
listed gates judge that data for `duration` (errors and latency against the baseline; for
models, `prediction_agreement` between the old and new answers to the same requests, or a
drift gate on the two outputs). Then the mirror goes off and stage 1 starts. A gate that
fails keeps every service of the group at 0% and follows `on_failure`; nothing of the group
was exposed, so a rollback has nothing of it to take back.

Rules kept here, in one place:

- only a service declared ``side_effect_free: true`` may be shadowed (a mirrored write
  persists twice, as Flagger's maintainers warn), and only a service that moves;
- a lockstep group shadows together: if one member is shadowed, every member must be
  (the new ranker reads only what the new embedder writes, so the copies must flow
  through both new versions); the group shadows for its longest `duration`;
- a real environment must be able to copy requests: a Gateway API router (HTTPRoute
  `RequestMirror`) for routed services, or ``environment.mirror`` (the `interlock sim
  serve` services mirror themselves). HAProxy's runtime API and Caddy cannot mirror.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.gates import GateRun
from core.problems import Problem, SourceMap, located

if TYPE_CHECKING:
    from core.plan import Plan
    from core.state import Context
    from core.tx import Tx

MIRROR_ROUTERS = ("gateway_api",)
"""Router kinds that can copy a route's requests to the canary themselves."""

MIRROR_KINDS = ("sim_serve",)
"""`environment.mirror` kinds: services that mirror their own requests when told to."""

MIRROR_PERCENT = 100.0
"""A shadow mirrors every live request (the canary's answers are thrown away)."""


def shadowed(plan: Plan, name: str) -> bool:
    """Whether `name` moves and has a shadow stage."""
    service = plan.services[name]
    return service.moves and service.shadow is not None


def group_shadows(ctx: Context, index: int) -> bool:
    """Whether group `index` shadows before its first stage (validation makes it all or none)."""
    return any(shadowed(ctx.plan, name) for name in ctx.groups[index].services)


def shadow_gates(plan: Plan, name: str) -> tuple[str, ...]:
    """The gates that judge `name`'s shadow data."""
    service = plan.services[name]
    return tuple(service.shadow.gates) if service.moves and service.shadow is not None else ()


def duration(ctx: Context, index: int) -> float:
    """A group shadows for the longest `duration` of its members."""
    plan = ctx.plan
    return max((s.duration for n in ctx.groups[index].services if (s := plan.services[n].shadow)), default=0.0)


# --- validation ---------------------------------------------------------------------


def problems(plan: Plan, source: SourceMap | None) -> list[Problem]:
    """What is wrong with the plan's shadow stages, one located problem each (its gate names
    are checked with every other gate reference, in `core.planload`)."""
    out: list[Problem] = []
    for name, service in plan.services.items():
        shadow = service.shadow
        if shadow is None:
            continue
        at = ("services", name, "shadow")
        if not service.moves:
            out.append(located(source, at, f"service '{name}' has no `to` version, so there is nothing to shadow",
                               key=True))
            continue
        if not shadow.side_effect_free:
            field = "side_effect_free" in shadow.model_fields_set
            out.append(located(source, at + ("side_effect_free",) if field else at, (
                f"service '{name}' cannot be shadowed unless it declares side_effect_free: true: a mirrored "
                "request that writes (a database row, a message, a charge) persists twice; shadow only "
                "services whose requests only read"
            ), key=not field))
    out += _mirror_problems(plan, source)
    return out


def _mirror_problems(plan: Plan, source: SourceMap | None) -> list[Problem]:
    """A real environment must be able to copy each shadowed service's requests."""
    env = plan.environment
    if plan.simulated or isinstance(env, str):
        return []
    mirror = env.mirror
    if mirror is not None:
        if mirror.kind not in MIRROR_KINDS:
            return [located(source, ("environment", "mirror", "kind"),
                            f"unknown mirror {mirror.kind!r}; expected one of: {', '.join(MIRROR_KINDS)}")]
        return []
    router = env.router.kind if env.router is not None else None
    out: list[Problem] = []
    for name in sorted(plan.services):
        if not shadowed(plan, name):
            continue
        route = plan.exposure_of(name).route
        if router in MIRROR_ROUTERS and route:
            continue
        why = (f"router {router!r} cannot copy requests" if router and route
               else "it has no route through a router that can copy requests")
        out.append(located(source, ("services", name, "shadow"), (
            f"service '{name}' cannot be shadowed here: {why}; use router kind gateway_api "
            "(HTTPRoute RequestMirror) with a route for it, or environment.mirror {kind: sim_serve, url: ...}"
        ), key=True))
    return out


def lockstep_problems(plan: Plan, groups: list[tuple[str, ...]], source: SourceMap | None) -> list[Problem]:
    """A lockstep group shadows together: one problem per member left out."""
    out: list[Problem] = []
    for group in groups:
        shadowing = [n for n in group if shadowed(plan, n)]
        if not shadowing or len(shadowing) == len(group):
            continue
        for name in group:
            if name in shadowing:
                continue
            out.append(located(source, ("services", name), (
                f"service '{name}' moves in lockstep with {', '.join(shadowing)}, which "
                f"{'is' if len(shadowing) == 1 else 'are'} shadowed; a lockstep group shadows together "
                f"(the copies must flow through every new version), so give '{name}' a shadow too "
                "(shadow: {side_effect_free: true}) or remove the group's shadows"
            ), key=True))
    return out


# --- the reducer's part -----------------------------------------------------------------


def start(tx: Tx, index: int) -> None:
    """The group starts shadowing: every member's mirror goes on (sent again when the journal
    says it is on already: a shadow started over after a pause re-applies it, as a resume
    re-applies exposure); its gates start once the mirrors are confirmed (`enter`)."""
    tx.set_group(index, phase="shadowing", stage=-1, approved=False, bake_until=None, gates=(),
                 reason="shadow: the new version answers copies of live requests; no user sees it")
    for name in tx.ctx.groups[index].services:
        tx.set_mirror(name, MIRROR_PERCENT, force=True)


def enter(tx: Tx, index: int) -> None:
    """The mirrors are on: the shadow gates start measuring and the shadow's time runs."""
    runs = []
    for name in tx.ctx.groups[index].services:
        for gate_name in shadow_gates(tx.ctx.plan, name):
            gate = tx.ctx.gates[gate_name]
            runs.append(GateRun(service=name, gate=gate_name, next_at=tx.at + gate.initial_delay + gate.interval))
    tx.set_group(index, bake_until=tx.at + duration(tx.ctx, index), gates=tuple(runs))


def stop_mirrors(tx: Tx, names: tuple[str, ...] | None = None) -> None:
    """Turn off every mirror that is on (of `names`, or of the whole rollout)."""
    for name in names if names is not None else tuple(tx.services):
        if tx.services[name].mirror > 0:
            tx.set_mirror(name, 0.0)
