"""interlock's Unleash adapter judged by the official Unleash Python SDK, against the real Unleash.

What the Admin API reads back is interlock's own view; these tests ask the SDK an
application would use which of 10,000 users get the flag, and check that what people
put on a flag (their own strategies, constraints, segments, variants) survives a whole
rollout and a rollback untouched.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from adapters.stack.unleash import UnleashServer
from adapters.unleash import UnleashFlags
from core.ports import TargetReading
from sdkjudge import USERS, enabled, variants, within_sampling_error

T = TypeVar("T")
STAGES = (1, 5, 25, 50, 100)
ENDS_IN_7 = {u for u in USERS if u.endswith("7")}


def with_flags(unleash: UnleashServer, body: Callable[[UnleashFlags], Awaitable[T]], owner: str = "run-sdk") -> T:
    async def go() -> T:
        flags = UnleashFlags(unleash.url, token=unleash.token, owner=owner)
        try:
            return await body(flags)
        finally:
            await flags.aclose()

    return asyncio.run(go())


def admin(unleash: UnleashServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{unleash.url}{path}", headers={"Authorization": unleash.token}, timeout=10, **kwargs)
    assert response.status_code in (200, 201), (method, path, response.status_code, response.text[:300])
    return response.json() if response.content else None


def strategies_path(flag: str) -> str:
    return f"/api/admin/projects/default/features/{flag}/environments/development/strategies"


def new_flag(unleash: UnleashServer, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with_flags(unleash, lambda f: f.ensure_flag(name))
    return name


def person_strategy(unleash: UnleashServer, flag: str, body: dict[str, Any]) -> dict[str, Any]:
    """A strategy a person adds by hand (the Admin API, as the UI does)."""
    return admin(unleash, "POST", strategies_path(flag), json=body)


def stored(unleash: UnleashServer, flag: str) -> dict[str, dict[str, Any]]:
    """The flag's strategies as Unleash stores them (with segments), by id."""
    return {s["id"]: s for s in admin(unleash, "GET", strategies_path(flag))}


def segment(unleash: UnleashServer, users: list[str]) -> dict[str, Any]:
    return admin(unleash, "POST", "/api/admin/segments", json={
        "name": f"beta-{uuid.uuid4().hex[:6]}",
        "constraints": [{"contextName": "userId", "operator": "IN", "values": users}],
    })


def roll(unleash: UnleashServer, flag: str, stages: tuple[float, ...], cohort: str = "g") -> None:
    async def body(flags: UnleashFlags) -> None:
        for percent in stages:
            await flags.set_rollout(flag, percent, cohort)

    with_flags(unleash, body)


def test_each_stage_enables_its_share_of_10000_users_and_a_rollback_nobody(unleash: UnleashServer, sdk_token: str) -> None:
    flag = new_flag(unleash, "share")
    shares = []
    for percent in STAGES:
        roll(unleash, flag, (percent,))
        users = enabled(unleash.url, sdk_token, flag)
        shares.append(len(users))
        assert within_sampling_error(len(users), len(USERS), percent), (percent, len(users))
    print(f"SDK: users of {len(USERS)} enabled at stages {STAGES}: {shares}")
    assert shares[-1] == len(USERS)
    roll(unleash, flag, (0,))
    assert enabled(unleash.url, sdk_token, flag) == set()


def test_a_fractional_rollout_enables_nobody_in_the_sdk(unleash: UnleashServer, sdk_token: str) -> None:
    """Why `validate` refuses fractional stages on Unleash flags: the SDK buckets users into
    whole percents, so 0.5% reads back as set and exposes nobody."""
    flag = new_flag(unleash, "fraction")
    roll(unleash, flag, (0.5,))
    assert with_flags(unleash, lambda f: f.get_rollout(flag)) == 0.5
    assert enabled(unleash.url, sdk_token, flag) == set()


def test_a_lockstep_group_enables_identical_users_on_every_flag(unleash: UnleashServer, sdk_token: str) -> None:
    embedder, ranker, other = (new_flag(unleash, p) for p in ("embedder", "ranker", "other"))
    previous: set[str] = set()
    for percent in (5, 25, 50):
        roll(unleash, embedder, (percent,), "embedder+ranker")
        roll(unleash, ranker, (percent,), "embedder+ranker")
        roll(unleash, other, (percent,), "other")
        group = enabled(unleash.url, sdk_token, embedder)
        assert group == enabled(unleash.url, sdk_token, ranker)
        assert within_sampling_error(len(group), len(USERS), percent)
        assert previous <= group  # a bigger stage keeps everyone who already had both
        assert enabled(unleash.url, sdk_token, other) != group  # the cohort picks the users
        previous = group


def test_what_people_put_on_a_flag_survives_a_whole_rollout_and_a_rollback(unleash: UnleashServer, sdk_token: str) -> None:
    flag = new_flag(unleash, "people")
    beta_users = USERS[:200]
    beta = segment(unleash, beta_users)
    constrained = person_strategy(unleash, flag, {
        "name": "flexibleRollout", "title": "users ending in 7",
        "constraints": [{"contextName": "userId", "operator": "STR_ENDS_WITH", "values": ["7"]}],
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": flag},
        "variants": [{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "default"}],
    })
    segmented = person_strategy(unleash, flag, {
        "name": "flexibleRollout", "title": "beta testers", "segments": [beta["id"]],
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": flag},
    })
    admin(unleash, "POST", f"/api/admin/projects/default/features/{flag}/environments/development/on")
    people = {sid: s for sid, s in stored(unleash, flag).items() if sid in (constrained["id"], segmented["id"])}
    assert people[segmented["id"]]["segments"] == [beta["id"]]
    people_users = ENDS_IN_7 | set(beta_users)
    assert enabled(unleash.url, sdk_token, flag) == people_users

    roll(unleash, flag, (1,))
    (ours_id,) = set(stored(unleash, flag)) - set(people)
    # a person gives interlock's strategy variants after its first stage
    ours = stored(unleash, flag)[ours_id]
    green = [{"name": "green", "weight": 1000, "weightType": "variable", "stickiness": "default"}]
    admin(unleash, "PUT", f"{strategies_path(flag)}/{ours_id}", json={**{k: v for k, v in ours.items() if k != "id"}, "variants": green})

    roll(unleash, flag, STAGES[1:])
    after_rollout = stored(unleash, flag)
    assert {sid: after_rollout[sid] for sid in people} == people
    assert [v["name"] for v in after_rollout[ours_id]["variants"]] == ["green"]
    assert after_rollout[ours_id]["parameters"]["rollout"] == "100"
    assert enabled(unleash.url, sdk_token, flag) == set(USERS)
    seen = variants(unleash.url, sdk_token, flag, ["user-17", "user-3", "user-1000"])
    assert seen["user-17"] == "blue" and seen["user-1000"] == "green"  # first matching strategy's variants

    roll(unleash, flag, (0,))
    after_rollback = stored(unleash, flag)
    assert {sid: after_rollback[sid] for sid in people} == people
    assert [v["name"] for v in after_rollback[ours_id]["variants"]] == ["green"]
    assert enabled(unleash.url, sdk_token, flag) == people_users  # only what people set, nothing of interlock's
    reading = with_flags(unleash, lambda f: f.inspect(flag))
    assert reading.percent == 0.0 and reading.owner == "run-sdk"
    assert [w for w in reading.warnings if "'users ending in 7'" in w and "restricted by constraint userId STR_ENDS_WITH 7" in w]
    assert [w for w in reading.warnings if f"'beta testers' (flexibleRollout 100%, restricted by segment {beta['name']})" in w]


def test_a_persons_unconstrained_strategy_is_never_adopted_and_is_reported(unleash: UnleashServer, sdk_token: str) -> None:
    flag = new_flag(unleash, "everyone")
    mine = person_strategy(unleash, flag, {
        "name": "flexibleRollout", "title": "ten percent by hand",
        "parameters": {"rollout": "10", "stickiness": "userId", "groupId": "by-hand"},
        "variants": [{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "userId"}],
    })
    admin(unleash, "POST", f"/api/admin/projects/default/features/{flag}/environments/development/on")
    before = stored(unleash, flag)[mine["id"]]
    by_hand = enabled(unleash.url, sdk_token, flag)
    assert within_sampling_error(len(by_hand), len(USERS), 10)

    roll(unleash, flag, (25, 100, 0))
    after = stored(unleash, flag)
    assert after[mine["id"]] == before  # not renamed, not re-bucketed, variants kept
    assert len(after) == 2  # interlock made its own strategy beside it
    assert enabled(unleash.url, sdk_token, flag) == by_hand  # the person's users, as before
    reading = with_flags(unleash, lambda f: f.inspect(flag))
    assert reading.percent == 0.0
    (warning,) = reading.warnings
    assert "strategy 'ten percent by hand' (flexibleRollout 10%, no constraints) exposes users" in warning


def test_a_segment_on_interlocks_strategy_is_kept_and_read_back_as_what_users_get(unleash: UnleashServer, sdk_token: str) -> None:
    flag = new_flag(unleash, "segmented")
    beta_users = USERS[:400]
    beta = segment(unleash, beta_users)
    roll(unleash, flag, (5,))
    (ours,) = stored(unleash, flag).values()
    admin(unleash, "PUT", f"{strategies_path(flag)}/{ours['id']}",
          json={**{k: v for k, v in ours.items() if k != "id"}, "segments": [beta["id"]]})

    roll(unleash, flag, (50,))
    (ours,) = stored(unleash, flag).values()
    assert ours["segments"] == [beta["id"]] and ours["parameters"]["rollout"] == "50"
    reading = with_flags(unleash, lambda f: f.inspect(flag))
    assert reading == TargetReading(50.0, owner="run-sdk", detail=f"50%, restricted by segment {beta['name']}")
    users = enabled(unleash.url, sdk_token, flag)
    assert users <= set(beta_users)  # nobody outside the segment
    assert within_sampling_error(len(users), len(beta_users), 50)
