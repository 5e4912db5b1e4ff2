"""A whole `interlock run` of the stack plan on a flag people also use, judged by the official
Unleash SDK: a person's constrained strategy (with variants) and a segment strategy on
`ranker-v6` are warned about before the run, survive a rollout and a rollback along the graph
untouched, and after the rollback users get exactly what those people set, nothing of
interlock's."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from sdkjudge import USERS, enabled, variants
from stackrun import fast_plan, group_stage, inject, read_back, reset, run_engine, shared_stack, stop_shared, wait_state

FLAG = "ranker-v6"


@pytest.fixture(scope="module")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


def admin(stack: Stack, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{stack.urls['unleash']}{path}", headers={"Authorization": stack.token},
                             timeout=10, **kwargs)
    assert response.status_code in (200, 201), (method, path, response.status_code, response.text[:300])
    return response.json() if response.content else None


STRATEGIES = f"/api/admin/projects/default/features/{FLAG}/environments/development/strategies"


def test_peoples_strategies_survive_a_whole_run_and_its_rollback(
    real_stack: Stack, tmp_path: Path, sdk_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reset(real_stack)
    beta_users = USERS[:200]
    beta = admin(real_stack, "POST", "/api/admin/segments", json={
        "name": f"beta-{uuid.uuid4().hex[:6]}",
        "constraints": [{"contextName": "userId", "operator": "IN", "values": beta_users}]})
    admin(real_stack, "POST", STRATEGIES, json={
        "name": "flexibleRollout", "title": "users ending in 7",
        "constraints": [{"contextName": "userId", "operator": "STR_ENDS_WITH", "values": ["7"]}],
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": FLAG},
        "variants": [{"name": "blue", "weight": 1000, "weightType": "variable", "stickiness": "default"}]})
    admin(real_stack, "POST", STRATEGIES, json={
        "name": "flexibleRollout", "title": "beta testers", "segments": [beta["id"]],
        "parameters": {"rollout": "100", "stickiness": "default", "groupId": FLAG}})
    admin(real_stack, "POST", f"/api/admin/projects/default/features/{FLAG}/environments/development/on")
    people = {s["id"]: s for s in admin(real_stack, "GET", STRATEGIES)}
    people_users = {u for u in USERS if u.endswith("7")} | set(beta_users)

    def long_bake(doc: dict) -> None:
        for name in ("embedder", "ranker"):
            doc["services"][name]["bake"] = "60s"

    plan = fast_plan(real_stack, tmp_path, edit=long_bake)
    seen_at_stage: dict[str, set[str]] = {}

    async def regress(session: object) -> None:
        await wait_state(session, lambda s: group_stage(s, "ranker") == ("baking", 0))
        await asyncio.sleep(1.0)
        # the lockstep group at its first stage, as the SDK sees it: the same users on both flags
        seen_at_stage.update({f: await asyncio.to_thread(enabled, real_stack.urls["unleash"], sdk_token, f)
                              for f in ("embedder-v3", FLAG)})
        await asyncio.to_thread(inject, real_stack, {"kind": "error_rate", "service": "ranker", "value": 0.5})

    state, _ = run_engine(plan, tmp_path / "journal.db", real_stack, during=regress)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("interlock: warning:")]
    assert state.phase == "rolled_back", state.reason
    assert {n: s.phase for n, s in state.services.items()}["ranker"] == "rolled_back"

    # before the run: each of the people's strategies was named as exposing users on its own
    assert any("'users ending in 7'" in w and "exposes users" in w for w in warnings), warnings
    assert any("'beta testers'" in w and f"segment {beta['name']}" in w for w in warnings), warnings
    # during the run: interlock's 50% on top of what people set, and the group on one cohort
    group = seen_at_stage["embedder-v3"]
    assert 0.45 * len(USERS) < len(group) < 0.55 * len(USERS)
    assert seen_at_stage[FLAG] == group | people_users

    # after the rollback: the people's strategies as they were, and only their users
    after = {s["id"]: s for s in admin(real_stack, "GET", STRATEGIES)}
    assert {sid: after[sid] for sid in people} == people
    (ours,) = [s for sid, s in after.items() if sid not in people]
    assert ours["title"].startswith("interlock run ") and ours["parameters"]["rollout"] == "0"
    assert read_back(real_stack)["flag:ranker-v6"] == 0.0
    assert enabled(real_stack.urls["unleash"], sdk_token, FLAG) == people_users
    assert enabled(real_stack.urls["unleash"], sdk_token, "embedder-v3") == set()
    assert variants(real_stack.urls["unleash"], sdk_token, FLAG, ["user-17"]) == {"user-17": "blue"}
    reset(real_stack)
