"""The Unleash adapter's request logic, against a recorded-shape fake of the Admin API.

The real server is exercised in tests/stack/test_stack_unleash.py; here the fake
lets a test see the exact sequence of requests and make the server misbehave.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re

import httpx
import pytest

from adapters.http_retry import RetryPolicy
from adapters.unleash import UnleashFlags
from core.ports import AdapterError, TargetReading

TOKEN = "*:*.unit-secret-7781"
SEGMENT = re.compile(r"^/api/admin/segments/(\d+)$")
ENV = re.compile(r"^/api/admin/projects/default/features/([^/]+)/environments/development(/.*)?$")


class FakeUnleash:
    """The few Admin API endpoints the adapter uses, with Unleash 7's shapes and rules."""

    def __init__(self) -> None:
        self.flags: dict[str, dict] = {}
        self.log: list[tuple[str, str]] = []
        self.fail_next: list[int] = []
        self.segments: dict[int, str] = {}

    def add(self, name: str, *, enabled: bool = False, strategies: list[dict] | None = None) -> None:
        self.flags[name] = {"name": name, "environment": "development", "enabled": enabled, "strategies": strategies or []}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.path))
        if request.headers.get("Authorization") != TOKEN:
            return httpx.Response(401, json={"name": "UnauthorizedError", "message": "You must log in to use Unleash."})
        if self.fail_next:
            return httpx.Response(self.fail_next.pop(0), json={"message": "try later"})
        segment = SEGMENT.match(request.url.path)
        if segment is not None:
            name = self.segments.get(int(segment.group(1)))
            return httpx.Response(200, json={"id": int(segment.group(1)), "name": name}) if name else httpx.Response(404)
        match = ENV.match(request.url.path)
        if match is None:
            return httpx.Response(404, json={"message": "no route"})
        flag, rest = self.flags.get(match.group(1)), match.group(2) or ""
        if flag is None:
            return httpx.Response(404, json={"name": "NotFoundError", "message": f"no feature named {match.group(1)}"})
        if request.method == "GET" and rest == "":  # like Unleash: this endpoint omits segments
            return httpx.Response(200, json={**flag, "strategies": [
                {k: v for k, v in st.items() if k != "segments"} for st in flag["strategies"]]})
        if request.method == "GET" and rest == "/strategies":
            return httpx.Response(200, json=[{"segments": [], "variants": [], "constraints": [], **st} for st in flag["strategies"]])
        if request.method == "POST" and rest == "/strategies":
            body = json.loads(request.content)
            strategy = {"id": f"s{len(flag['strategies']) + 1}", "featureName": flag["name"], "sortOrder": 0, **body}
            flag["strategies"].append(strategy)
            return httpx.Response(200, json=strategy)
        if request.method in ("PUT", "PATCH") and rest.startswith("/strategies/"):
            sid = rest.rsplit("/", 1)[1]
            for i, strategy in enumerate(flag["strategies"]):
                if strategy["id"] == sid:
                    flag["strategies"][i] = self._update(strategy, request.method, json.loads(request.content))
                    return httpx.Response(200, json=flag["strategies"][i])
            return httpx.Response(404, json={"message": "no strategy"})
        if request.method == "POST" and rest == "/on":
            if not [s for s in flag["strategies"] if not s.get("disabled")]:  # Unleash 7's surprise
                flag["strategies"].append({"id": "default", "name": "flexibleRollout",
                                           "parameters": {"rollout": "100", "stickiness": "default", "groupId": flag["name"]}})
            flag["enabled"] = True
            return httpx.Response(200, json={})
        return httpx.Response(405)

    @staticmethod
    def _update(strategy: dict, method: str, body: object) -> dict:
        """PUT replaces (Unleash wipes variants and constraints a PUT leaves out); PATCH
        applies JSON Patch add/replace ops to the strategy as stored."""
        if method == "PUT":
            assert isinstance(body, dict)
            return {"id": strategy["id"], "variants": [], "constraints": [], **body}
        updated = copy.deepcopy(strategy)
        assert isinstance(body, list)
        for op in body:
            assert op["op"] in ("add", "replace")
            *parents, leaf = op["path"].strip("/").split("/")
            target = updated
            for part in parents:
                target = target[part]
            target[leaf] = op["value"]
        return updated


def flags(fake: FakeUnleash, token: str = TOKEN, owner: str | None = "run-1") -> UnleashFlags:
    return UnleashFlags(
        "http://unleash.test:4242", token=token, owner=owner, transport=httpx.MockTransport(fake),
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
    assert strategy["name"] == "flexibleRollout" and strategy["title"] == "interlock run run-1"
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
    assert [m for m, p in fake.log if "/strategies/" in p] == ["PATCH", "PATCH", "PATCH"]
    assert sum(1 for _, p in fake.log if p.endswith("/on")) == 1


def test_rollout_is_written_as_a_short_exact_string() -> None:
    fake = FakeUnleash()
    fake.add("f")
    for percent, text in ((25.0, "25"), (2.5, "2.5"), (0.25, "0.25"), (100, "100")):
        run(flags(fake).set_rollout("f", percent, "g"))
        assert fake.flags["f"]["strategies"][0]["parameters"]["rollout"] == text
        assert run(flags(fake).get_rollout("f")) == percent


PERSON = {"id": "h1", "name": "flexibleRollout", "title": "everyone", "constraints": [],
          "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "f"},
          "variants": [{"name": "blue", "weight": 1000, "stickiness": "default"}]}
CONSTRAINED = {"id": "c1", "name": "flexibleRollout", "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
               "parameters": {"rollout": "100", "stickiness": "default", "groupId": "f"}}


def test_a_persons_unconstrained_flexible_rollout_is_never_adopted() -> None:
    fake = FakeUnleash()
    fake.add("f", enabled=True, strategies=[copy.deepcopy(CONSTRAINED), copy.deepcopy(PERSON)])
    assert run(flags(fake).get_rollout("f")) == 0.0  # interlock has no strategy here yet
    run(flags(fake).set_rollout("f", 10, "grp"))
    strategies = {s["id"]: s for s in fake.flags["f"]["strategies"]}
    assert len(strategies) == 3
    assert strategies["h1"] == PERSON and strategies["c1"] == CONSTRAINED  # untouched, not renamed
    (ours,) = [s for s in strategies.values() if s["id"] not in ("h1", "c1")]
    assert ours["title"] == "interlock run run-1"
    assert ours["parameters"] == {"rollout": "10", "stickiness": "default", "groupId": "grp"}
    assert run(flags(fake).get_rollout("f")) == 10.0


def test_only_interlocks_parameters_change_on_its_own_strategy() -> None:
    fake = FakeUnleash()
    mine = {"id": "i1", "name": "flexibleRollout", "title": "interlock run run-1", "segments": [7],
            "constraints": [{"contextName": "region", "operator": "IN", "values": ["eu"]}],
            "variants": [{"name": "blue", "weight": 1000}],
            "parameters": {"rollout": "5", "stickiness": "sessionId", "groupId": "a-person-changed-it"}}
    fake.add("f", enabled=True, strategies=[copy.deepcopy(mine)])
    run(flags(fake).set_rollout("f", 50, "grp"))
    (after,) = fake.flags["f"]["strategies"]
    # the rollout and the cohort (stickiness, groupId) are interlock's; the rest is kept
    assert after == {**mine, "parameters": {"rollout": "50", "stickiness": "default", "groupId": "grp"}}
    assert ("PUT", "/api/admin/projects/default/features/f/environments/development/strategies/i1") not in fake.log


def test_interlocks_strategy_is_marked_with_the_run_and_read_back_with_it() -> None:
    fake = FakeUnleash()
    fake.add("f")
    run(flags(fake, owner="run-7").set_rollout("f", 25, "g"))
    assert run(flags(fake, owner="run-7").inspect("f")) == TargetReading(25.0, owner="run-7")
    # another run sees the owner (the pre-flight refuses on it) and the legacy mark has none
    assert run(flags(fake, owner="run-8").inspect("f")).owner == "run-7"
    fake.flags["f"]["strategies"][0]["title"] = "interlock"
    assert run(flags(fake, owner="run-8").inspect("f")).owner is None
    # a run that writes a marked strategy makes it its own; there is still one strategy
    run(flags(fake, owner="run-8").set_rollout("f", 0, "g"))
    (strategy,) = fake.flags["f"]["strategies"]
    assert strategy["title"] == "interlock run run-8" and strategy["parameters"]["rollout"] == "0"


def test_inspect_reports_what_users_get_and_warns_of_other_strategies() -> None:
    fake = FakeUnleash()
    fake.segments[7] = "beta"
    mine = {"id": "i1", "name": "flexibleRollout", "title": "interlock run run-1", "segments": [7],
            "parameters": {"rollout": "50", "stickiness": "default", "groupId": "g"}}
    off = {"id": "d1", "name": "default", "title": "kill switch", "disabled": True, "parameters": {}}
    zero = {"id": "z1", "name": "flexibleRollout", "parameters": {"rollout": "0"}}
    fake.add("f", enabled=True, strategies=[mine, copy.deepcopy(PERSON), copy.deepcopy(CONSTRAINED), off, zero])
    reading = run(flags(fake).inspect("f"))
    assert reading.percent == 50.0 and reading.owner == "run-1"
    assert reading.detail == "50%, restricted by segment beta"
    assert len(reading.warnings) == 2  # the disabled one and the one at 0% expose nobody
    everyone, eu = reading.warnings
    assert "strategy 'everyone' (flexibleRollout 50%, no constraints) exposes users" in everyone
    assert "strategy id c1 (flexibleRollout 100%, restricted by constraint region IN eu) exposes users" in eu
    # the same flag with its environment off: nobody now, the others would once it is on
    fake.flags["f"]["enabled"] = False
    reading = run(flags(fake).inspect("f"))
    assert reading.percent == 0.0 and "environment 'development' is off" in reading.detail
    assert all("once interlock turns the environment on" in w for w in reading.warnings)


def test_a_rollback_to_zero_does_not_turn_an_environment_on() -> None:
    fake = FakeUnleash()
    fake.add("f", strategies=[copy.deepcopy(PERSON)])
    run(flags(fake).set_rollout("f", 0, "g"))
    assert fake.flags["f"]["enabled"] is False
    assert not [p for _, p in fake.log if p.endswith("/on")]


@pytest.mark.parametrize(
    "env",
    [
        {"enabled": False, "strategies": [{"id": "a", "name": "flexibleRollout", "title": "interlock", "parameters": {"rollout": "40"}}]},
        {"enabled": True, "strategies": [{"id": "a", "name": "flexibleRollout", "title": "a person", "parameters": {"rollout": "40"}}]},
        {"enabled": True, "strategies": []},
        {"enabled": True, "strategies": [{"id": "a", "name": "flexibleRollout", "title": "interlock", "disabled": True,
                                          "parameters": {"rollout": "40"}}]},
    ],
    ids=["environment-off", "only-a-persons-strategy", "no-strategy", "strategy-disabled"],
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
