"""Plan loading: the DESIGN.md example loads, and every kind of bad input is
reported as `FILE:LINE:COL: path: message`, all at once, in file order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.plan import Stage
from core.planload import load_and_compile, load_plan, parse_plan
from core.problems import InputError

DESIGN_PLAN = """\
rollout: recsys-embeddings-v3
environment: sim                 # or a mapping of adapters, see below

policy:
  max_parallel: 2                # services in canary at once
  on_failure: rollback_dependents   # rollback_self | rollback_dependents | pause
  approval: none                 # none | each_wave | each_stage

defaults:
  stages: [1, 5, 25, 50, 100]    # percent of traffic on the new version; or
                                 # [{percent: 25, bake: 10m, approval: true}, ...]
  bake: 5m                       # time at a stage before it may advance
  gates: [errors, latency]

gates:
  errors:  {metric: error_rate, max: 0.01, interval: 30s, count: 4, failure_limit: 1}
  latency: {metric: latency_p99, compare: baseline, max_increase: 10%}
  drift:   {metric: prediction_psi, max: 0.2}

services:
  features:
    from: {version: "3.1", produces: {features: 6}}
    to:   {version: "3.2", produces: {features: 7}}
    exposure: {flag: features-v32}
  embedder:
    depends_on: [features]
    from: {version: "2.4", consumes: {features: [6, 7]}, produces: {embeddings: 2}}
    to:   {version: "3.0", consumes: {features: [7]}, produces: {embeddings: 3}}
    exposure: {flag: embedder-v3, route: embedder}
  ranker:
    depends_on: [embedder]
    from: {version: "5.0", consumes: {embeddings: [2]}}
    to:   {version: "6.0", consumes: {embeddings: [3]}}
    gates: [errors, latency, drift]
  api:
    depends_on: [ranker]
    from: {version: "1.9"}
    to:   {version: "2.0"}
"""

MINIMAL = """\
rollout: r
services:
  a:
    from: {version: "1"}
    to: {version: "2"}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_plan(textwrap.dedent(text), "plan.yaml")
    return [p.format() for p in info.value.problems]


def one_problem(text: str) -> str:
    lines = problems_of(text)
    assert len(lines) == 1, lines
    return lines[0]


def test_design_example_loads() -> None:
    plan, source = parse_plan(DESIGN_PLAN, "recsys.yaml")
    assert list(plan.services) == ["features", "embedder", "ranker", "api"]
    assert plan.policy.max_parallel == 2
    assert plan.defaults.bake == 300.0
    assert plan.gates["errors"].interval == 30.0
    assert plan.gates["latency"].max_increase == pytest.approx(0.1)
    assert plan.services["embedder"].from_.consumes == {"features": [6, 7]}
    assert plan.gates_of("ranker") == ["errors", "latency", "drift"]
    assert source.file == "recsys.yaml"
    assert source.key_marks[("services", "ranker")] == (30, 3)
    assert source.marks[("services", "ranker", "gates", 2)] == (34, 30)


def test_load_plan_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(DESIGN_PLAN, encoding="utf-8")
    plan, source = load_plan(path)
    assert plan.rollout == "recsys-embeddings-v3"
    assert source.file == str(path)


def test_load_and_compile_orders_the_design_example(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(DESIGN_PLAN, encoding="utf-8")
    plan, graph, source = load_and_compile(path)
    assert graph.waves == (("features",), ("embedder", "ranker"), ("api",))
    assert source.file == str(path)


def test_load_and_compile_reports_ordering_problems_as_input_error(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    cycle = '    depends_on: [b]\n  b:\n    from: {version: "1"}\n    to: {version: "2"}\n    depends_on: [a]\n'
    path.write_text(MINIMAL + cycle, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_and_compile(path)
    assert info.value.problems[0].format().startswith(f"{path}:6:")


def test_unreadable_file_is_one_problem_at_1_1(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InputError) as info:
        load_plan(missing)
    assert [p.format() for p in info.value.problems] == [
        f"{missing}:1:1: <root>: cannot read the plan: No such file or directory"
    ]
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError) as info:
        load_plan(binary)
    assert info.value.problems[0].message == "cannot read the plan: it is not UTF-8 text"


def test_not_yaml() -> None:
    assert one_problem("rollout: [a, b\nservices: {}\n") == (
        "plan.yaml:2:9: <root>: not valid YAML: expected ',' or ']', but got ':'"
    )


def test_empty_file_and_comments_only() -> None:
    expected = "plan.yaml:1:1: <root>: the file is empty; expected a mapping of `key: value` lines"
    assert one_problem("") == expected
    assert one_problem("# nothing here\n") == expected


def test_top_level_list() -> None:
    assert one_problem("- rollout: r\n- services: {}\n") == (
        "plan.yaml:1:1: <root>: the top level must be a mapping of `key: value` lines, not a list"
    )


def test_top_level_scalar() -> None:
    assert "not a scalar ('rollout')" in one_problem("rollout\n")


def test_duplicate_service_is_reported_at_the_second() -> None:
    text = MINIMAL + '  a:\n    from: {version: "9"}\n'
    assert one_problem(text) == (
        "plan.yaml:6:3: services.a: duplicate key 'a' (first defined on line 3); "
        "YAML would silently keep only the last one"
    )


def test_unknown_field_suggests_the_close_name() -> None:
    text = MINIMAL + "    stagse: [1, 100]\n"
    assert one_problem(text) == "plan.yaml:6:5: services.a.stagse: unknown field 'stagse'; did you mean 'stages'?"


def test_unknown_field_lists_allowed_names_when_nothing_is_close() -> None:
    line = one_problem("rollout: r\npolicy: {wibble: 1}\n" + MINIMAL.split("\n", 1)[1])
    assert line == (
        "plan.yaml:2:10: policy.wibble: unknown field 'wibble'; allowed fields: false_rollbacks, max_parallel, on_failure, approval, readback, windows"
    )


def test_unknown_field_inside_a_union_member() -> None:
    line = one_problem(MINIMAL + "    stages: [{percent: 100, bakee: 1m}]\n")
    assert line == "plan.yaml:6:29: services.a.stages[0].bakee: unknown field 'bakee'; did you mean 'bake'?"


def test_missing_field_points_at_the_parent_key() -> None:
    assert one_problem("rollout: r\nservices:\n  a:\n    to: {version: '2'}\n") == (
        "plan.yaml:3:3: services.a: missing required field 'from'"
    )
    assert one_problem("rollout: r\n") == "plan.yaml:1:1: <root>: missing required field 'services'"


def test_literal_lists_the_valid_values() -> None:
    line = one_problem("rollout: r\npolicy:\n  on_failure: rollback\n" + MINIMAL.split("\n", 1)[1])
    assert line == (
        "plan.yaml:3:15: policy.on_failure: expected one of 'rollback_self', 'rollback_dependents', "
        "'pause'; got 'rollback'; did you mean 'rollback_self'?"
    )


def test_environment_union_collapses_to_one_message() -> None:
    line = one_problem(MINIMAL + "environment: prod\n")
    assert line == (
        "plan.yaml:6:14: environment: expected 'sim' or a mapping "
        "{flags, router, metrics, mirror, staging}, got 'prod'"
    )


def test_environment_mapping_reports_only_the_mapping_errors() -> None:
    lines = problems_of(MINIMAL + "environment:\n  flags: {url: 1}\n")
    assert lines == [
        "plan.yaml:7:3: environment.flags: missing required field 'kind'",
        "plan.yaml:7:16: environment.flags.url: expected text, got 1",
    ]


def test_stage_union_collapses_per_item() -> None:
    lines = problems_of(MINIMAL + "    stages: [150, x, {percent: 0}]\n")
    assert lines == [
        "plan.yaml:6:14: services.a.stages[0]: expected a number in (0, 100] or a mapping "
        "{percent, bake, approval}, got 150",
        "plan.yaml:6:19: services.a.stages[1]: expected a number in (0, 100] or a mapping "
        "{percent, bake, approval}, got 'x'",
        "plan.yaml:6:32: services.a.stages[2].percent: must be greater than 0, got 0",
    ]


@pytest.mark.parametrize(
    ("stages", "expected"),
    [
        ("[5, 5, 100]", "services.a.stages[1]: stages must increase: 5 comes after 5"),
        ("[50, 25, 100]", "services.a.stages[1]: stages must increase: 25 comes after 50"),
        ("[10, 50]", "services.a.stages[1]: the last stage must be 100 (all traffic), not 50"),
        ("[]", "services.a.stages: at least one stage is required, and the last one must be 100"),
        ("[{percent: 10}, {percent: 60}]", "services.a.stages[1].percent: the last stage must be 100"),
    ],
)
def test_stage_order(stages: str, expected: str) -> None:
    assert expected in one_problem(MINIMAL + f"    stages: {stages}\n")


def test_stage_shapes_that_load() -> None:
    plan, _ = parse_plan(MINIMAL + "    stages: [10, {percent: 50, bake: 1h30m, approval: true}, 100]\n", "p")
    stages = plan.stages_of("a")
    assert [s.percent for s in stages] == [10, 50, 100]
    assert stages[1] == Stage(percent=50, bake=5400.0, approval=True)
    assert stages[0].bake == 300.0


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("45", 45.0)])
def test_durations(text: str, seconds: float) -> None:
    plan, _ = parse_plan(MINIMAL + f"defaults: {{bake: {text}}}\n", "p")
    assert plan.defaults.bake == seconds


def test_bad_duration_says_what_is_valid() -> None:
    assert one_problem(MINIMAL + "defaults: {bake: 5 minutes}\n") == (
        "plan.yaml:6:18: defaults.bake: '5 minutes' is not a duration; use forms like 30s, 5m, 1h or 1h30m"
    )


def test_unknown_service_and_self_dependency() -> None:
    text = MINIMAL + "    depends_on: [a, embeder, zzz]\n  embedder:\n    from: {version: '1'}\n"
    assert problems_of(text) == [
        "plan.yaml:6:18: services.a.depends_on[0]: service 'a' cannot depend on itself",
        "plan.yaml:6:21: services.a.depends_on[1]: unknown service 'embeder'; did you mean 'embedder'?",
        "plan.yaml:6:30: services.a.depends_on[2]: unknown service 'zzz'; known services: embedder",
    ]


def test_unknown_gate_in_defaults_and_service() -> None:
    text = MINIMAL + "    gates: [latncy]\ndefaults: {gates: [errors, nope]}\ngates:\n  latency: {metric: p99, max: 1}\n"
    assert problems_of(text) == [
        "plan.yaml:6:13: services.a.gates[0]: unknown gate 'latncy'; did you mean 'latency'?",
        "plan.yaml:7:20: defaults.gates[0]: unknown gate 'errors'; known gates: latency",
        "plan.yaml:7:28: defaults.gates[1]: unknown gate 'nope'; known gates: latency",
    ]


def test_unknown_gate_when_none_are_defined() -> None:
    assert one_problem(MINIMAL + "    gates: [errors]\n").endswith(
        "unknown gate 'errors'; no gates are defined under `gates`"
    )


def test_gate_bounds() -> None:
    text = MINIMAL + textwrap.dedent(
        """\
        gates:
          latency: {metric: p99, compare: baseline}
          errors: {metric: e, max_increase: 5%}
          band: {metric: m, pass_min: 3, pass_max: 1, min: 2, max: 1}
        """
    )
    assert problems_of(text) == [
        "plan.yaml:7:12: gates.latency: compare: baseline needs max_increase or max_decrease (e.g. 10%)",
        "plan.yaml:8:23: gates.errors.max_increase: max_increase only applies with compare: baseline or judge: mann_whitney",
        "plan.yaml:9:21: gates.band.pass_min: pass_min (3) is greater than pass_max (1)",
        "plan.yaml:9:47: gates.band.min: min (2) is greater than max (1)",
    ]


def test_limits_that_count_cannot_reach_are_refused_as_argo_does() -> None:
    # Argo's ValidateMetric (utils/analysis/factory.go, TestValidateMetrics).
    text = MINIMAL + textwrap.dedent(
        """\
        gates:
          few:   {metric: e, max: 1, count: 2, failure_limit: 5}
          both:  {metric: e, max: 1, count: 4, failure_limit: 1, consecutive_success_limit: 4}
          only:  {metric: e, max: 1, count: 2, failure_limit: -1, consecutive_success_limit: 3}
          incon: {metric: e, max: 1, pass_max: 0.5, count: 1, inconclusive_limit: 2}
          fine:  {metric: e, max: 1, count: 5, failure_limit: 1, consecutive_success_limit: 4, inconclusive_limit: 5}
          open:  {metric: e, max: 1, failure_limit: 9, inconclusive_limit: 9}
          seq:   {metric: e, judge: sequential, max: 0.01, consecutive_success_limit: 2}
        """
    )
    assert problems_of(text) == [
        "plan.yaml:7:30: gates.few.count: count (2) must be at least failure_limit (5), as Argo requires",
        "plan.yaml:8:30: gates.both.count: count (4) must be at least failure_limit + consecutive_success_limit"
        " (1 + 4), as Argo requires",
        "plan.yaml:9:30: gates.only.count: count (2) must be at least consecutive_success_limit (3), as Argo requires",
        "plan.yaml:10:45: gates.incon.count: count (1) must be at least inconclusive_limit (2), as Argo requires",
        "plan.yaml:13:52: gates.seq.consecutive_success_limit: a sequential gate decides on its evidence;"
        " consecutive_success_limit does not apply",
    ]


def test_services_must_not_be_empty_and_something_must_move() -> None:
    assert one_problem("rollout: r\nservices: {}\n") == (
        "plan.yaml:2:1: services: no services; a plan needs at least one service"
    )
    assert one_problem("rollout: r\nservices:\n  ctx: {from: {version: '1'}}\n") == (
        "plan.yaml:2:1: services: no service has a `to` version, so there is nothing to roll out"
    )


def test_type_errors_say_what_was_expected() -> None:
    lines = problems_of(
        MINIMAL
        + "    depends_on: b\n    bake: [1]\n"
        + "  b:\n    from: 5\n    to: {version: '2', produces: {f: 1.5}}\npolicy: {max_parallel: 0}\n"
    )
    assert lines == [
        "plan.yaml:6:17: services.a.depends_on: expected a list, got 'b'; for one item write [b]",
        "plan.yaml:7:11: services.a.bake: expected a duration like 30s, 5m or 1h, got a list",
        "plan.yaml:9:11: services.b.from: expected a mapping {version, produces, consumes}, got 5",
        "plan.yaml:10:38: services.b.to.produces.f: expected a whole number, got 1.5",
        "plan.yaml:11:24: policy.max_parallel: must be at least 1, got 0",
    ]


def test_all_problems_at_once_sorted_by_position() -> None:
    text = """\
        rollout: ""
        policy: {approval: always}
        defaults:
          stages: [1, 50, 25]
          bake: soon
        services:
          a:
            from: {version: "1"}
            to: {version: "2"}
            exposure: {flagg: a}
          a:
            from: {version: "3"}
        """
    lines = problems_of(text)
    assert [line.split(": ", 2)[0] for line in lines] == [
        "plan.yaml:1:10",
        "plan.yaml:2:20",
        "plan.yaml:5:9",
        "plan.yaml:10:16",
        "plan.yaml:11:3",
    ]
    assert lines[0] == "plan.yaml:1:10: rollout: must not be empty"
    assert "expected one of 'none', 'each_wave', 'each_stage'" in lines[1]
    assert "duplicate key 'a' (first defined on line 7)" in lines[4]


def test_semantic_checks_collect_every_problem() -> None:
    text = MINIMAL + "    depends_on: [x]\n    gates: [y]\n    stages: [50, 10]\n"
    lines = problems_of(text)
    assert len(lines) == 4
    assert [line.split(":")[1] for line in lines] == ["6", "7", "8", "8"]


def test_merge_keys_share_gate_settings() -> None:
    text = MINIMAL + textwrap.dedent(
        """\
        gates:
          errors: &base {metric: error_rate, max: 0.01, interval: 1m}
          strict:
            <<: *base
            max: 0.001
        """
    )
    plan, source = parse_plan(text, "p")
    assert plan.gates["strict"].max == 0.001
    assert plan.gates["strict"].interval == 60.0
    assert source.marks[("gates", "strict", "max")] == (10, 10)


NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True), flow=st.booleans(), data=st.data())
def test_service_key_marks_point_at_the_name(names: list[str], flow: bool, data: st.DataObject) -> None:
    services: dict[str, object] = {}
    for i, name in enumerate(names):
        service: dict[str, object] = {"from": {"version": "1"}, "to": {"version": "2"}}
        if i:
            service["depends_on"] = data.draw(st.lists(st.sampled_from(names[:i]), max_size=2, unique=True))
        services[name] = service
    text = yaml.safe_dump({"rollout": "r", "services": services}, default_flow_style=flow, sort_keys=False)
    plan, source = parse_plan(text, "p")
    lines = text.splitlines()
    assert list(plan.services) == names
    for name in names:
        line, col = source.key_marks[("services", name)]
        assert lines[line - 1][col - 1 :].lstrip("'\"").startswith(name)


EDITS = st.lists(
    st.tuples(st.integers(0, len(DESIGN_PLAN) - 1), st.sampled_from(["del", "ins", "sub"]),
              st.sampled_from(list(" :-[]{},\n#&*!'\"%09az\t") + ["<<: *a", "&a ", "~", "yes", "!!set"])),
    min_size=1, max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(edits=EDITS)
def test_mangled_plans_only_ever_raise_input_error_sorted(edits: list[tuple[int, str, str]]) -> None:
    chars = list(DESIGN_PLAN)
    for pos, op, text in edits:
        pos = min(pos, len(chars) - 1)
        if op == "del":
            del chars[pos]
        elif op == "ins":
            chars.insert(pos, text)
        else:
            chars[pos] = text
    mangled = "".join(chars)
    try:
        parse_plan(mangled, "p")
    except InputError as err:
        assert err.problems
        assert err.problems == sorted(err.problems, key=lambda p: (p.line, p.col))
        last_line = mangled.count("\n") + 1
        assert all(1 <= p.line <= last_line and p.col >= 1 and p.message for p in err.problems)
