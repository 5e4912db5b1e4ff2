"""The Unleash adapter's request logic, against a recorded-shape fake of the Admin API.

The real server is exercised in tests/stack/test_stack_unleash.py; here the fake
lets a test see the exact sequence of requests and make the server misbehave.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from adapters.http_retry import RetryPolicy
from adapters.unleash import UnleashFlags
from core.ports import AdapterError

TOKEN = "*:*.unit-secret-7781"
ENV = re.compile(r"^/api/admin/projects/default/features/([^/]+)/environments/development(/.*)?$")


class FakeUnleash:
    """The few Admin API endpoints the adapter uses, with Unleash 7's shapes and rules."""

    def __init__(self) -> None:
        self.flags: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []
        self.fail_next: list[int] = []

    def add(self, name: str, *, enabled: bool = False, strategies: list[dict] | None = None) -> None:
        self.flags[name] = {"name": name, "environment": "development", "enabled": enabled, "strategies": strategies or []}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.path))
        if request.headers.get("Authorization") != TOKEN:
            return httpx.Response(401, json={"name": "UnauthorizedError", "message": "You must log in to use Unleash."})
        if self.fail_next:
            return httpx.Response(self.fail_next.pop(0), json={"message": "try later"})
        match = ENV.match(request.url.path)
        if match is None:
            return httpx.Response(404, json={"message": "no route"})
        flag, rest = self.flags.get(match.group(1)), match.group(2) or ""
        if flag is None:
            return httpx.Response(404, json={"name": "NotFoundError", "message": f"no feature named {match.group(1)}"})
        if request.method == "GET" and rest == "":
            return httpx.Response(200, json=flag)
        if request.method == "POST" and rest == "/strategies":
            body = json.loads(request.content)
            strategy = {"id": f"s{len(flag['strategies']) + 1}", "featureName": flag["name"], "sortOrder": 0, **body}
            flag["strategies"].append(strategy)
            return httpx.Response(200, json=strategy)
        if request.method == "PUT" and rest.startswith("/strategies/"):
            sid = rest.rsplit("/", 1)[1]
            for i, strategy in enumerate(flag["strategies"]):
                if strategy["id"] == sid:
                    flag["strategies"][i] = {**strategy, **json.loads(request.content)}
                    return httpx.Response(200, json=flag["strategies"][i])
            return httpx.Response(404, json={"message": "no strategy"})
        if request.method == "POST" and rest == "/on":
            if not [s for s in flag["strategies"] if not s.get("disabled")]:  # Unleash 7's surprise
                flag["strategies"].append({"id": "default", "name": "flexibleRollout",
                                           "parameters": {"rollout": "100", "stickiness": "default", "groupId": flag["name"]}})
            flag["enabled"] = True
            return httpx.Response(200, json={})
        return httpx.Response(405)


def flags(fake: FakeUnleash, token: str = TOKEN) -> UnleashFlags:
    return UnleashFlags(
        "http://unleash.test:4242", token=token, transport=httpx.MockTransport(fake),
        policy=RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002),
    )


def run(coro):
    return asyncio.run(coro)


def test_first_set_creates_the_strategy_and_only_then_enables_the_environment() -> None:
    fake = FakeUnleash()
    fake.add("ranker-v6")
    run(flags(fake).set_rollout("ranker-v6", 5, "embedder+ranker"))
    assert [m for m, _ in fake.log] == ["GET", "POST", "POST"]
    assert fake.log[1][1].endswith("/strategies") and fake.log[2][1].endswith("/on")
    (strategy,) = fake.flags["ranker-v6"]["strategies"]  # no default 100% strategy slipped in
    assert strategy["name"] == "flexibleRollout" and strategy["title"] == "interlock"
    assert strategy["parameters"] == {"rollout": "5", "stickiness": "default", "groupId": "embedder+ranker"}
    assert fake.flags["ranker-v6"]["enabled"] is True


def test_later_sets_update_the_same_strategy_in_place() -> None:
    fake = FakeUnleash()
    fake.add("ranker-v6")
    adapter = flags(fake)

    async def go() -> float:
        for percent in (5, 25, 2.5, 0):
            await adapter.set_rollout("ranker-v6", percent, "g")
        return await adapter.get_rollout("ranker-v6")

    assert run(go()) == 0.0
    (strategy,) = fake.flags["ranker-v6"]["strategies"]
    assert strategy["parameters"]["rollout"] == "0"
    assert [m for m, p in fake.log if "/strategies/" in p] == ["PUT", "PUT", "PUT"]
    assert sum(1 for _, p in fake.log if p.endswith("/on")) == 1


def test_rollout_is_written_as_a_short_exact_string() -> None:
    fake = FakeUnleash()
    fake.add("f")
    for percent, text in ((25.0, "25"), (2.5, "2.5"), (0.25, "0.25"), (100, "100")):
        run(flags(fake).set_rollout("f", percent, "g"))
        assert fake.flags["f"]["strategies"][0]["parameters"]["rollout"] == text
        assert run(flags(fake).get_rollout("f")) == percent


def test_a_hand_made_unconstrained_flexible_rollout_is_adopted_not_doubled() -> None:
    fake = FakeUnleash()
    fake.add("f", enabled=True, strategies=[
        {"id": "c1", "name": "flexibleRollout", "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
         "parameters": {"rollout": "100", "stickiness": "default", "groupId": "f"}},
        {"id": "h1", "name": "flexibleRollout", "constraints": [], "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "f"}},
    ])
    assert run(flags(fake).get_rollout("f")) == 50.0
    run(flags(fake).set_rollout("f", 10, "grp"))
    strategies = {s["id"]: s for s in fake.flags["f"]["strategies"]}
    assert len(strategies) == 2
    assert strategies["h1"]["parameters"] == {"rollout": "10", "stickiness": "default", "groupId": "grp"}
    assert strategies["c1"]["parameters"]["rollout"] == "100"  # the constrained one is not ours


@pytest.mark.parametrize(
    "env",
    [
        {"enabled": False, "strategies": [{"id": "a", "name": "flexibleRollout", "title": "interlock", "parameters": {"rollout": "40"}}]},
        {"enabled": True, "strategies": []},
        {"enabled": True, "strategies": [{"id": "a", "name": "flexibleRollout", "title": "interlock", "disabled": True,
                                          "parameters": {"rollout": "40"}}]},
    ],
    ids=["environment-off", "no-strategy", "strategy-disabled"],
)
def test_read_back_is_zero_when_nobody_can_get_the_flag(env: dict) -> None:
    fake = FakeUnleash()
    fake.add("f", **env)
    assert run(flags(fake).get_rollout("f")) == 0.0


def test_a_missing_flag_is_an_error_naming_it_and_is_not_created() -> None:
    fake = FakeUnleash()
    with pytest.raises(AdapterError, match="unleash: flag 'ghost' does not exist in project 'default'"):
        run(flags(fake).set_rollout("ghost", 5, "g"))
    assert fake.log == [("GET", "/api/admin/projects/default/features/ghost/environments/development")]


def test_a_wrong_token_fails_at_once_without_showing_either_token() -> None:
    fake = FakeUnleash()
    fake.add("f")
    wrong = "*:*.wrong-secret-0000"
    with pytest.raises(AdapterError) as info:
        run(flags(fake, wrong).get_rollout("f"))
    assert "HTTP 401: not authorised" in str(info.value)
    assert wrong not in str(info.value) and TOKEN not in str(info.value)
    assert len(fake.log) == 1
    assert wrong not in repr(flags(fake, wrong))


def test_a_503_during_a_set_is_retried_and_the_set_completes() -> None:
    fake = FakeUnleash()
    fake.add("f")
    fake.fail_next = [503, 503]
    run(flags(fake).set_rollout("f", 25, "g"))
    assert run(flags(fake).get_rollout("f")) == 25.0


def test_a_non_numeric_rollout_is_reported() -> None:
    fake = FakeUnleash()
    fake.add("f", enabled=True, strategies=[{"id": "a", "name": "flexibleRollout", "title": "interlock", "parameters": {"rollout": "lots"}}])
    with pytest.raises(AdapterError, match="rollout that is not a number: 'lots'"):
        run(flags(fake).get_rollout("f"))


def test_out_of_range_percent_is_refused_before_any_request() -> None:
    fake = FakeUnleash()
    with pytest.raises(AdapterError, match="within 0..100"):
        run(flags(fake).set_rollout("f", 120, "g"))
    assert fake.log == []
