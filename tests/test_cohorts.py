"""`validate` refuses a lockstep group whose routes cannot keep each user on one side
(core/cohorts.py); the router-side half (HAProxy's backends, read at pre-flight) is proven
with real traffic in tests/stack/test_stack_cohorts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.order import compile_plan
from core.planload import parse_plan
from core.problems import InputError
from tui.cli.main import main

PLAN = """\
rollout: r
environment:
  flags: {kind: unleash, url: "http://127.0.0.1:4242", token_env: T}
  router: {kind: ROUTER, url: "http://127.0.0.1:2019"}
defaults: {stages: [25, 100], gates: []}
services:
  embedder:
    from: {version: "2", produces: {embeddings: 2}}
    to: {version: "3", produces: {embeddings: 3}}
    exposure: EMBEDDER
  ranker:
    depends_on: [embedder]
    from: {version: "5", consumes: {embeddings: [2]}}
    to: {version: "6", consumes: {embeddings: [3]}}
    exposure: RANKER
  api:
    depends_on: [ranker]
    from: {version: "1"}
    to: {version: "2"}
    exposure: {route: api}
"""
ROUTED = {"EMBEDDER": "{flag: embedder-v3, route: embedder}", "RANKER": "{flag: ranker-v6, route: ranker}"}


def plan_text(router: str, **exposure: str) -> str:
    text = PLAN.replace("ROUTER", router)
    for key, value in {**ROUTED, **exposure}.items():
        text = text.replace(key, value)
    return text


def problems(text: str) -> list[str]:
    plan, source = parse_plan(text, "plan.yaml")
    with pytest.raises(InputError) as info:
        compile_plan(plan, source)
    return [p.format() for p in info.value.problems]


@pytest.mark.parametrize("router", ["caddy", "gateway_api"])
def test_a_lockstep_group_through_a_router_that_splits_per_request_is_refused(router: str) -> None:
    (line,) = problems(plan_text(router))
    assert line.startswith(f"plan.yaml:4:18: environment.router.kind: lockstep group embedder + ranker goes "
                           f"through routes embedder, ranker, but router '{router}' splits each request on its own")
    assert "balance hdr(X-User)" in line and "hash-type consistent" in line and "flags only" in line


def test_a_group_mixing_a_route_with_a_flag_only_service_is_refused_naming_the_fix() -> None:
    (line,) = problems(plan_text("haproxy", RANKER="{flag: ranker-v6}"))
    assert line == (
        "plan.yaml:11:3: services.ranker: lockstep group embedder + ranker must keep each user on one side, but "
        "embedder goes through a route and ranker only through a flag, and a router and a flag service pick "
        "users by different hashes; give ranker a route too, or expose embedder by flag only"
    )


@pytest.mark.parametrize(("router", "exposure"), [
    ("haproxy", {}),  # checked against the backends at pre-flight
    ("caddy", {"EMBEDDER": "{flag: embedder-v3}", "RANKER": "{flag: ranker-v6}"}),  # flags keep the cohort
])
def test_groups_that_can_keep_a_cohort_compile(router: str, exposure: dict[str, str]) -> None:
    plan, source = parse_plan(plan_text(router, **exposure), "plan.yaml")
    assert compile_plan(plan, source).lockstep == (("embedder", "ranker"),)


def test_the_simulated_world_keeps_every_group() -> None:
    text = plan_text("caddy", RANKER="{flag: ranker-v6}")
    text = text[: text.index("environment:")] + "environment: sim\n" + text[text.index("defaults:"):]
    plan, source = parse_plan(text, "plan.yaml")
    compile_plan(plan, source)


def test_validate_refuses_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text("caddy"), encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}:4:18: environment.router.kind: lockstep group embedder + ranker")
