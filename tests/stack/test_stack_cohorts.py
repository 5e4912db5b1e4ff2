"""Lockstep through routers, with real traffic through a real HAProxy.

A lockstep group (a new embedder needs the new ranker) must give each user both new
versions or neither. Two routes split by round robin pick a side per request; two
backends hashing the user header with consistent hashing and the same server ids and
weights pick it per user, identically. 2,000 users each call both routes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.haproxy import HAProxyRouter
from adapters.stack.haproxy import HAProxyServer, start_haproxy
from conftest import start_or_skip
from core.cohorts import COHORT_HEADER
from tui.cli.main import main
from sdkjudge import within_sampling_error

ROUTES = ("embedder", "ranker")
USERS = [f"user-{i}" for i in range(2_000)]


def group_haproxy(stack_dir: Path, backends: dict[str, str], *, cohort: bool) -> Iterator[HAProxyServer]:
    name = "haproxy-cohort" if cohort else "haproxy-roundrobin"
    server = start_or_skip("HAProxy", lambda: start_haproxy(
        stack_dir, {r: (backends["stable"], backends["canary"]) for r in ROUTES}, cohort=cohort, name=name))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hashed(stack_dir: Path, backends: dict[str, str]) -> Iterator[HAProxyServer]:
    yield from group_haproxy(stack_dir, backends, cohort=True)


@pytest.fixture(scope="module")
def round_robin(stack_dir: Path, backends: dict[str, str]) -> Iterator[HAProxyServer]:
    yield from group_haproxy(stack_dir, backends, cohort=False)


def set_group(server: HAProxyServer, percent: float, routes: tuple[str, ...] = ROUTES) -> None:
    async def go() -> None:
        router = HAProxyRouter(server.admin)
        for route in routes:
            await router.set_weight(route, percent)

    asyncio.run(go())


def sides(server: HAProxyServer) -> dict[str, tuple[str, str]]:
    """Each user's (embedder side, ranker side): every user calls both routes, with its header.
    The calls reach each route in a different order, as real traffic does (a router that splits
    per request and saw the two routes in lockstep order would look consistent by accident)."""
    clients = {r: httpx.Client(base_url=server.url(r), timeout=5.0, trust_env=False) for r in ROUTES}
    answers: dict[str, dict[str, str]] = {r: {} for r in ROUTES}
    try:
        for i, route in enumerate(ROUTES):
            order = USERS[:]
            random.Random(i).shuffle(order)
            for user in order:
                answers[route][user] = clients[route].get("/", headers={COHORT_HEADER: user}).text
        return {user: (answers[ROUTES[0]][user], answers[ROUTES[1]][user]) for user in USERS}
    finally:
        for client in clients.values():
            client.close()


def mixed(seen: dict[str, tuple[str, str]]) -> int:
    return sum(1 for a, b in seen.values() if a != b)


def cohort_problems(server: HAProxyServer) -> list[str]:
    return asyncio.run(HAProxyRouter(server.admin).cohort_problems(list(ROUTES)))


def test_round_robin_routes_mix_versions_for_a_user(round_robin: HAProxyServer) -> None:
    """The failure the hashing fixes (the number is in the closing note): per-request splits."""
    set_group(round_robin, 25)
    seen = sides(round_robin)
    print(f"round robin at 25%: {mixed(seen)} of {len(USERS)} users got mixed versions")
    assert mixed(seen) > 0.1 * len(USERS)
    (problem, *_) = cohort_problems(round_robin)
    assert "backend 'embedder' balances by roundrobin, not a hash of the user header" in problem
    assert f"balance hdr({COHORT_HEADER})" in problem and "hash-type consistent" in problem


def test_hashed_routes_keep_every_user_on_one_side_at_every_stage(hashed: HAProxyServer) -> None:
    assert cohort_problems(hashed) == []
    previous: set[str] = set()
    for percent in (25, 50):
        set_group(hashed, percent)
        seen = sides(hashed)
        print(f"hashed at {percent}%: {mixed(seen)} of {len(USERS)} users got mixed versions")
        assert mixed(seen) == 0
        canary = {u for u, (a, _) in seen.items() if a == "canary"}
        assert within_sampling_error(len(canary), len(USERS), percent), (percent, len(canary))
        assert previous <= canary  # a bigger stage keeps everyone who already had the new versions
        previous = canary
    set_group(hashed, 0)
    assert {side for pair in sides(hashed).values() for side in pair} == {"stable"}


def test_a_group_whose_weights_differ_is_refused_by_the_pre_flight_check(hashed: HAProxyServer) -> None:
    set_group(hashed, 25)
    set_group(hashed, 30, ("ranker",))  # a hand edit on one route of the group
    try:
        stable, canary = cohort_problems(hashed)
        assert "route 'ranker': canary server ranker/canary has id 2, weight 30" in canary
        assert "the group's first route has id 2, weight 25" in canary
        assert "route 'ranker': stable server ranker/stable has id 1, weight 70" in stable
    finally:
        set_group(hashed, 0)


GROUP_PLAN = """\
rollout: lockstep-routes
environment:
  router: {kind: haproxy, admin: "ADMIN"}
defaults: {stages: [25, 100], bake: 1s, gates: []}
services:
  embedder:
    from: {version: "2", produces: {embeddings: 2}}
    to: {version: "3", produces: {embeddings: 3}}
    exposure: {route: embedder}
  ranker:
    depends_on: [embedder]
    from: {version: "5", consumes: {embeddings: [2]}}
    to: {version: "6", consumes: {embeddings: [3]}}
    exposure: {route: ranker}
"""


def run_group(server: HAProxyServer, tmp_path: Path) -> int:
    plan = tmp_path / "plan.yaml"
    plan.write_text(GROUP_PLAN.replace("ADMIN", server.admin), encoding="utf-8")
    return main(["run", str(plan), "--headless", "--journal", str(tmp_path / "journal.db")])


def test_a_run_through_round_robin_routes_is_refused_before_anything_is_journaled_or_set(
    round_robin: HAProxyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_group(round_robin, 0)
    assert run_group(round_robin, tmp_path) == 2
    # (the test backends' threads may log a reset connection on stderr too: keep interlock's lines)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith(str(tmp_path))]
    assert len(err) == 2, err  # one line per route of the group
    assert all(line.startswith(f"{tmp_path / 'plan.yaml'}:3:11: environment.router: lockstep group embedder + ranker: ")
               for line in err)
    assert "balances by roundrobin" in err[0] and "hash-type consistent" in err[0]
    assert asyncio.run(HAProxyRouter(round_robin.admin).get_weight("embedder")) == 0.0
    assert not (tmp_path / "journal.db").exists() or main(["runs", "--journal", str(tmp_path / "journal.db")]) == 0
    assert "lockstep-routes" not in capsys.readouterr().out


def test_a_run_through_hashed_routes_passes_the_check_and_moves_both(
    hashed: HAProxyServer, tmp_path: Path
) -> None:
    set_group(hashed, 0)
    assert run_group(hashed, tmp_path) == 0
    router = HAProxyRouter(hashed.admin)
    assert [asyncio.run(router.get_weight(r)) for r in ROUTES] == [100.0, 100.0]
    set_group(hashed, 0)
