"""Stages on an Unleash flag must be whole percents: Unleash's SDKs bucket users into whole
percents, so a fractional stage reads back as set and exposes the wrong share (0.5% exposes
nobody; tests/stack/test_stack_unleash_sdk.py shows it with the official SDK)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.planload import parse_plan
from core.problems import InputError
from tui.cli.main import main

PLAN = """\
rollout: r
environment:
  flags: {kind: KIND, url: "http://127.0.0.1:4242", token_env: T}
  router: {kind: haproxy, admin: "127.0.0.1:9999"}
defaults:
  stages: [0.5, 2.5, 25, 100]
services:
  features:
    from: {version: "1"}
    to: {version: "2"}
  embedder:
    from: {version: "1"}
    to: {version: "2"}
    exposure: {route: embedder}
  ranker:
    from: {version: "1"}
    to: {version: "2"}
    exposure: {flag: ranker-v6}
    stages:
      - 10
      - {percent: 33.3, bake: 1m}
      - 100
"""


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_plan(text, "plan.yaml")
    return [p.format() for p in info.value.problems]


def test_fractional_stages_on_unleash_flags_are_located_and_explained() -> None:
    assert problems(PLAN.replace("KIND", "unleash")) == [
        "plan.yaml:6:12: defaults.stages[0]: 0.5 is not a whole percent, and flag 'features' is in unleash, "
        "whose SDKs bucket users into whole percents (0.5% would expose 0%); use 1",
        "plan.yaml:6:17: defaults.stages[1]: 2.5 is not a whole percent, and flag 'features' is in unleash, "
        "whose SDKs bucket users into whole percents (2.5% would expose 2%); use 2 or 3",
        "plan.yaml:21:19: services.ranker.stages[1].percent: 33.3 is not a whole percent, and flag 'ranker-v6' "
        "is in unleash, whose SDKs bucket users into whole percents (33.3% would expose 33%); use 33 or 34",
    ]  # embedder moves on a route only: its defaults are fine for a router


@pytest.mark.parametrize("kind", ["http"])
def test_other_flag_services_and_the_simulated_world_keep_fractional_stages(kind: str) -> None:
    parse_plan(PLAN.replace("KIND", kind), "plan.yaml")
    sim = "rollout: r\ndefaults: {stages: [0.5, 100]}\nservices:\n  a: {from: {version: '1'}, to: {version: '2'}}\n"
    parse_plan(sim, "sim.yaml")


def test_validate_refuses_with_exit_2_and_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.replace("KIND", "unleash"), encoding="utf-8")
    assert main(["validate", str(plan)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith(f"{plan}:") for line in err)
    assert "Traceback" not in "\n".join(err)
    plan.write_text(textwrap.dedent(PLAN.replace("KIND", "unleash")).replace("0.5, 2.5", "1, 2")
                    .replace("33.3", "33"), encoding="utf-8")
    assert main(["validate", str(plan)]) == 0
