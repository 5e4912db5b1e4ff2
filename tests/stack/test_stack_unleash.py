"""The Unleash adapter against a real Unleash 7 on PostgreSQL.

Besides reading back what the adapter wrote, the tests ask Unleash's own
evaluator (the Admin API playground) which users get a flag, so "the same
users get every new version of a lockstep group together" is checked where it
is decided."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from adapters.http_retry import RetryPolicy
from adapters.stack.unleash import UnleashServer
from adapters.unleash import UnleashFlags
from core.ports import AdapterError

T = TypeVar("T")
USERS = [f"user-{i}" for i in range(300)]


def with_flags(unleash: UnleashServer, body: Callable[[UnleashFlags], Awaitable[T]], **kwargs) -> T:
    async def go() -> T:
        flags = UnleashFlags(unleash.url, token=kwargs.pop("token", unleash.token), owner="run-1", **kwargs)
        try:
            return await body(flags)
        finally:
            await flags.aclose()

    return asyncio.run(go())


def new_flag(unleash: UnleashServer, prefix: str = "flag") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with_flags(unleash, lambda f: f.ensure_flag(name))
    return name


def admin(unleash: UnleashServer, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{unleash.url}{path}", headers={"Authorization": unleash.token}, timeout=10, **kwargs)


def environment(unleash: UnleashServer, flag: str) -> dict:
    return admin(unleash, "GET", f"/api/admin/projects/default/features/{flag}/environments/development").json()


def enabled_users(unleash: UnleashServer, flag: str) -> set[str]:
    """The users Unleash itself would serve the flag to (advanced playground)."""
    response = admin(unleash, "POST", "/api/admin/playground/advanced", json={
        "environments": ["development"], "projects": "*",
        "context": {"appName": "interlock-test", "userId": ",".join(USERS)},
    })
    response.raise_for_status()
    (feature,) = [f for f in response.json()["features"] if f["name"] == flag]
    return {r["context"]["userId"] for r in feature["environments"]["development"] if r["isEnabled"]}


def test_set_and_read_back_one_strategy_in_the_environment(unleash: UnleashServer) -> None:
    flag = new_flag(unleash)

    async def body(flags: UnleashFlags) -> float:
        await flags.set_rollout(flag, 25, "ranker")
        return await flags.get_rollout(flag)

    assert with_flags(unleash, body) == 25.0
    env = environment(unleash, flag)
    assert env["enabled"] is True
    (strategy,) = env["strategies"]  # enabling added no default 100% strategy
    assert strategy["name"] == "flexibleRollout" and strategy["title"] == "interlock run run-1"
    assert strategy["parameters"] == {"rollout": "25", "stickiness": "default", "groupId": "ranker"}


def test_stages_update_the_same_strategy_in_place(unleash: UnleashServer) -> None:
    flag = new_flag(unleash)

    async def body(flags: UnleashFlags) -> list[float]:
        seen = []
        for percent in (1, 5, 25, 50, 100, 0):
            await flags.set_rollout(flag, percent, "g")
            seen.append(await flags.get_rollout(flag))
        return seen

    assert with_flags(unleash, body) == [1.0, 5.0, 25.0, 50.0, 100.0, 0.0]
    (strategy,) = environment(unleash, flag)["strategies"]
    first_id = strategy["id"]
    with_flags(unleash, lambda f: f.set_rollout(flag, 5, "g"))
    (strategy,) = environment(unleash, flag)["strategies"]
    assert strategy["id"] == first_id


def test_a_lockstep_group_exposes_the_same_users_on_every_flag(unleash: UnleashServer) -> None:
    embedder, ranker, other = new_flag(unleash, "embedder"), new_flag(unleash, "ranker"), new_flag(unleash, "other")

    async def body(flags: UnleashFlags) -> None:
        await flags.set_rollout(embedder, 30, "embedder+ranker")
        await flags.set_rollout(ranker, 30, "embedder+ranker")
        await flags.set_rollout(other, 30, "other")

    with_flags(unleash, body)
    group = enabled_users(unleash, embedder)
    assert group == enabled_users(unleash, ranker)
    assert 0.2 * len(USERS) <= len(group) <= 0.4 * len(USERS)
    assert enabled_users(unleash, other) != group  # the cohort, not the percentage, picks the users

    with_flags(unleash, lambda f: f.set_rollout(embedder, 60, "embedder+ranker"))
    assert group < enabled_users(unleash, embedder)  # a bigger stage keeps everyone who already had it


def test_zero_percent_serves_nobody_and_leaves_an_environment_off(unleash: UnleashServer) -> None:
    flag = new_flag(unleash)
    with_flags(unleash, lambda f: f.set_rollout(flag, 0, "g"))
    assert environment(unleash, flag)["enabled"] is False  # turning it on could expose others' strategies
    assert enabled_users(unleash, flag) == set()
    with_flags(unleash, lambda f: f.set_rollout(flag, 100, "g"))
    assert enabled_users(unleash, flag) == set(USERS)


def test_a_flag_switched_off_by_hand_reads_as_zero(unleash: UnleashServer) -> None:
    flag = new_flag(unleash)
    with_flags(unleash, lambda f: f.set_rollout(flag, 50, "g"))
    response = admin(unleash, "POST", f"/api/admin/projects/default/features/{flag}/environments/development/off")
    assert response.status_code == 200
    assert with_flags(unleash, lambda f: f.get_rollout(flag)) == 0.0
    with_flags(unleash, lambda f: f.set_rollout(flag, 50, "g"))  # setting again switches it back on
    assert with_flags(unleash, lambda f: f.get_rollout(flag)) == 50.0
    assert len(environment(unleash, flag)["strategies"]) == 1


def test_a_missing_flag_is_named_and_ensure_flag_is_idempotent(unleash: UnleashServer) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    with pytest.raises(AdapterError, match=f"unleash: flag '{ghost}' does not exist in project 'default'"):
        with_flags(unleash, lambda f: f.set_rollout(ghost, 5, "g"))
    with_flags(unleash, lambda f: f.ensure_flag(ghost))
    with_flags(unleash, lambda f: f.ensure_flag(ghost))
    assert with_flags(unleash, lambda f: f.get_rollout(ghost)) == 0.0


def test_a_wrong_token_is_refused_and_never_shown(unleash: UnleashServer) -> None:
    wrong = "*:*.0123456789abcdef-wrong"
    with pytest.raises(AdapterError) as info:
        with_flags(unleash, lambda f: f.get_rollout("anything"), token=wrong)
    assert "HTTP 401: not authorised" in str(info.value)
    assert wrong not in str(info.value) and unleash.token not in str(info.value)
    assert unleash.token not in repr(unleash)


def test_an_unleash_that_stops_answering_fails_within_the_bounded_retries(unleash: UnleashServer) -> None:
    flag = new_flag(unleash)
    with_flags(unleash, lambda f: f.set_rollout(flag, 5, "g"))
    unleash.proc.pause()
    try:
        started = time.monotonic()
        with pytest.raises(AdapterError, match=r"timed out after 0\.5s \(gave up after 2 attempts\)"):
            with_flags(unleash, lambda f: f.set_rollout(flag, 25, "g"),
                       timeout=0.5, policy=RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.05))
        assert time.monotonic() - started < 3.0
    finally:
        unleash.proc.resume()
    # nothing overshot: the read that timed out came before any write
    assert with_flags(unleash, lambda f: f.get_rollout(flag)) == 5.0
    with_flags(unleash, lambda f: f.set_rollout(flag, 25, "g"))
    assert with_flags(unleash, lambda f: f.get_rollout(flag)) == 25.0
