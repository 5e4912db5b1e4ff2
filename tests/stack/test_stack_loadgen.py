"""The load generator decides a flag for a user exactly as Unleash does: checked against
Unleash's own evaluator (the Admin API playground) for the same users, rollout and groupId."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from adapters.sim.loadgen import flag_on
from adapters.stack.unleash import UnleashServer
from adapters.unleash import UnleashFlags

USERS = [f"user-{i}" for i in range(400)]


def unleash_says(unleash: UnleashServer, flag: str) -> set[str]:
    response = httpx.post(f"{unleash.url}/api/admin/playground/advanced", timeout=20,
                          headers={"Authorization": unleash.token}, json={
                              "environments": ["development"], "projects": "*",
                              "context": {"appName": "interlock-test", "userId": ",".join(USERS)}})
    response.raise_for_status()
    (feature,) = [f for f in response.json()["features"] if f["name"] == flag]
    return {r["context"]["userId"] for r in feature["environments"]["development"] if r["isEnabled"]}


def test_flag_evaluation_matches_unleash_for_every_user(unleash: UnleashServer) -> None:
    flag = f"loadgen-{uuid.uuid4().hex[:8]}"

    async def set_to(percent: float, group: str) -> None:
        flags = UnleashFlags(unleash.url, token=unleash.token)
        try:
            await flags.ensure_flag(flag)
            await flags.set_rollout(flag, percent, group)
        finally:
            await flags.aclose()

    for percent, group in ((30, "embedder+ranker"), (75, "features")):
        asyncio.run(set_to(percent, group))
        expected = unleash_says(unleash, flag)
        assert 0.1 * len(USERS) < len(expected) < 0.9 * len(USERS)
        assert {u for u in USERS if flag_on(u, group, percent)} == expected
