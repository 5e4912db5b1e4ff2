"""Can a lockstep group's routes keep each user on one side? The plan-level half of the rule.

A lockstep group moves services that cannot talk across versions: a user must get
every new version of the group or none. Flags keep that by bucketing every flag of
the group on the same cohort (Unleash: one ``groupId`` and stickiness). Routes keep
it only if the router picks the side *per user* and picks it identically on every
route of the group; a router that splits each request on its own (round robin,
random, Caddy's repeated upstreams, Gateway API weights) sends one user's calls to
the new embedder and the old ranker in the same session.

What each router kind can keep (the README's "What interlock expects of your flag
service and router" says the same to users):

- ``haproxy``: yes, when every backend of the group balances on a hash of the same
  user header with ``hash-type consistent`` and has the same server ids and weights.
  The consistent-hash ring of a backend is built from its servers' ids and weights
  only, so identical backends map a given user to the same side; raising the canary
  weight adds canary points without moving anyone back. The plan cannot show the
  backends' configuration, so the pre-flight read checks it over the runtime API
  (`adapters.haproxy.HAProxyRouter.cohort_problems`).
- ``caddy`` (2.6): no. Weights are upstreams repeated to the ratio; its hashing
  policies (``header``, ``cookie``, ``ip_hash``) choose among distinct upstreams by
  rendezvous hashing, so repetition no longer weights them.
- ``gateway_api``: no. HTTPRoute ``backendRefs`` weights split each request; session
  persistence is per route and experimental, and nothing ties two routes together.

A group mixing routed services with services exposed by a flag only cannot keep a
cohort either: the flag service and the router pick users by different hashes.
"""

from __future__ import annotations

from core.plan import Plan
from core.problems import Problem, SourceMap, located

COHORT_ROUTERS = ("haproxy",)
"""Router kinds that can keep a user on one side across routes (checked again at pre-flight)."""

COHORT_HEADER = "X-User"
"""The request header a cohort-keeping router hashes on; the stack's load generator sends it."""

_FIX = (
    f"use router kind haproxy with every backend of the group on `balance hdr({COHORT_HEADER})` and "
    "`hash-type consistent` with the same server ids and weights, or expose the group by flags only"
)


def lockstep_route_problems(
    plan: Plan, groups: list[tuple[str, ...]], source: SourceMap | None
) -> list[Problem]:
    """One problem per lockstep group (of two or more services) whose routes cannot keep a cohort."""
    problems: list[Problem] = []
    if plan.simulated:
        return problems  # the simulated world picks every user of a group by the group's cohort
    for group in groups:
        if len(group) < 2:
            continue
        routed = [n for n in group if plan.exposure_of(n).route]
        if not routed:
            continue
        members = " + ".join(group)
        unrouted = [n for n in group if n not in routed]
        if unrouted:
            problems.append(located(source, ("services", unrouted[0]), (
                f"lockstep group {members} must keep each user on one side, but "
                f"{', '.join(routed)} {'goes' if len(routed) == 1 else 'go'} through a route and "
                f"{', '.join(unrouted)} only through a flag, and a router and a flag service pick users "
                f"by different hashes; give {', '.join(unrouted)} a route too, or expose "
                f"{', '.join(routed)} by flag only"
            ), key=True))
            continue
        router = getattr(plan.environment, "router", None)
        kind = getattr(router, "kind", None)
        if kind in COHORT_ROUTERS or router is None:
            continue  # no router: build_adapters names the missing section
        routes = ", ".join(sorted({plan.exposure_of(n).route or "" for n in group}))
        problems.append(located(source, ("environment", "router", "kind"), (
            f"lockstep group {members} goes through routes {routes}, but router {kind!r} splits each "
            f"request on its own and cannot keep a user on one side across routes; {_FIX}"
        )))
    return problems
