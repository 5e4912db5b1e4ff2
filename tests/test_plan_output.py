"""`interlock plan` on large plans: the text stays linear, `--json` stays the contract byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.order import compile_plan
from core.plan import Plan
from tui.cli.main import main
from tui.cli.plan_text import render_plan
from tui.json_block import json_block


def chain_and_fan(n: int) -> Plan:
    """`root` feeds a chain c000 → c001 → ... and a fan f000..f(n-1) reading c000."""
    services: dict[str, object] = {"root": {"from": {"version": "1"}, "to": {"version": "2"}}}
    for i in range(n):
        services[f"c{i:03d}"] = {"depends_on": ["root" if i == 0 else f"c{i - 1:03d}"],
                                 "from": {"version": "1"}, "to": {"version": "2"}}
        services[f"f{i:03d}"] = {"depends_on": ["c000"], "from": {"version": "1"}, "to": {"version": "2"}}
    return Plan.model_validate({"rollout": "big", "services": services})


def test_blast_radius_lines_count_and_name_the_nearest_first() -> None:
    plan = chain_and_fan(300)
    text = render_plan(plan, compile_plan(plan))
    lines = text.splitlines()
    # root: c000 (distance 1), then c001 and f000..f299 (distance 2) by name, then the rest counted
    assert "  root  600 downstream: c000, c001, f000, f001, f002, ... 595 more" in lines
    assert "  c298  1 downstream: c299" in lines
    assert "  c299  none" in lines
    assert "  c000  599 downstream: c001, f000, f001, f002, f003, ... 594 more" in lines
    # One line per service in the blast radius, each short: the text grows linearly.
    radius = lines[lines.index(next(line for line in lines if line.startswith("blast radius"))) + 1 :]
    assert len(radius) == 601
    assert max(len(line) for line in radius) < 80


def test_plan_text_size_grows_linearly() -> None:
    small, large = chain_and_fan(100), chain_and_fan(400)
    ratio = len(render_plan(large, compile_plan(large))) / len(render_plan(small, compile_plan(small)))
    assert ratio < 4.5  # 4x the services; every radius written out would be ~16x


def test_json_block_is_json_dumps_indent_2_byte_for_byte() -> None:
    plan = chain_and_fan(50)
    graph = compile_plan(plan).to_json()
    for value in (graph, {"é": ["ü"], "x": []}, {"a": "\x7f\x01\n\"\\"}, {"a": {}, "b": [[], {}]}, {"n": 2**70}):
        assert json_block(value) == json.dumps(value, indent=2)


def test_plan_json_of_a_large_plan_is_the_full_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = chain_and_fan(120)
    path = tmp_path / "big.yaml"
    path.write_text(json.dumps(plan.model_dump(by_alias=True, exclude_defaults=True)))
    assert main(["plan", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    expected = compile_plan(Plan.model_validate_json(path.read_text())).to_json()
    assert out == json.dumps(expected, indent=2) + "\n"
    assert len(json.loads(out)["blast_radius"]["root"]) == 240


def test_many_unknown_services_cost_linear_and_stay_one_short_line_each() -> None:
    from core.planload import LIST_LIMIT, SUGGEST_LIMIT, parse_plan
    from core.problems import InputError

    lines = ["rollout: r", "services:"]
    lines += [f"  s{i}: {{depends_on: [gone{i}], from: {{version: '1'}}, to: {{version: '2'}}}}" for i in range(3000)]
    with pytest.raises(InputError) as err:
        parse_plan("\n".join(lines) + "\n", "p.yaml")
    problems = [p.format() for p in err.value.problems]
    assert len(problems) == 3000
    assert problems[0].startswith("p.yaml:3:21: services.s0.depends_on[0]: unknown service 'gone0'; ")
    assert problems[0].endswith(", ...") and problems[0].count(",") == LIST_LIMIT
    assert problems[-1] == (
        "p.yaml:3002:24: services.s2999.depends_on[0]: unknown service 'gone2999'; check the names under `services`"
    )
    assert sum("check the names" in p for p in problems) == 3000 - SUGGEST_LIMIT


def _closure(downstream: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every service reachable along `downstream`, sorted: what `blast_radius` must be."""
    out = {}
    for start in downstream:
        seen: set[str] = set()
        stack = list(downstream[start])
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(downstream[name])
        out[start] = sorted(seen)
    return out


def test_plan_json_compact_lists_the_edges_whose_closure_is_the_blast_radius(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from compile_bench import layered_services

    plan = Plan.model_validate({"rollout": "layered", "services": layered_services(600, 50, 3)})
    path = tmp_path / "layered.yaml"
    path.write_text(json.dumps(plan.model_dump(by_alias=True, exclude_defaults=True)))
    assert main(["plan", str(path), "--json", "--compact"]) == 0
    compact = json.loads(capsys.readouterr().out)
    assert main(["plan", str(path), "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    # The same object but for one key: `downstream` in place of `blast_radius`.
    assert {k: v for k, v in compact.items() if k != "downstream"} == {k: v for k, v in full.items() if k != "blast_radius"}
    assert list(compact) == ["rollout", "waves", "lockstep", "precedence", "downstream"]
    assert _closure(compact["downstream"]) == full["blast_radius"]
    edges = {(p, c) for c, entry in plan.services.items() for p in entry.depends_on}
    assert {(p, c) for p, consumers in compact["downstream"].items() for c in consumers} == edges


def test_plan_json_compact_grows_linearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = []
    for n in (100, 400):
        path = tmp_path / f"chain-{n}.yaml"
        path.write_text(json.dumps(chain_and_fan(n).model_dump(by_alias=True, exclude_defaults=True)))
        assert main(["plan", str(path), "--json", "--compact"]) == 0
        sizes.append(len(capsys.readouterr().out))
    assert sizes[1] / sizes[0] < 4.5  # 4x the services; the whole blast radius would be ~16x


def test_compact_without_json_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "examples/recsys.yaml", "--compact"]) == 2
    assert capsys.readouterr().err == "interlock: --compact needs --json\n"
