"""Data contracts (issue 14 point 4): the `contracts:` format, its located errors, the JSON
Schema subset interlock checks payloads with, the gates a contract's checks become, and
the data the simulated world produces and spoils for them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from adapters.sim.world import SimWorld
from core import InputError, build_context, compile_plan, load_plan, parse_plan
from core.datacontract import schema_problems, validate
from core.datagates import contract_gates_of, split_metric
from core.events import Event, ExposureApplied, ExposureRead, Measured
from tui.session.drills import prepare_drill

REPO = Path(__file__).resolve().parent.parent
DATA_PLAN = REPO / "examples" / "recsys-data.yaml"

SCHEMA = {
    "type": "object",
    "required": ["user_id", "vector"],
    "additionalProperties": False,
    "properties": {
        "user_id": {"type": "string", "minLength": 1},
        "vector": {"type": "array", "items": {"type": "number"}, "minItems": 2},
        "ts": {"type": ["integer", "null"], "minimum": 0},
        "tier": {"enum": ["free", "paid"]},
    },
}


def test_validate_accepts_a_conforming_payload_and_names_the_first_break() -> None:
    good = {"user_id": "u1", "vector": [0.1, 2], "ts": None, "tier": "paid"}
    assert validate(good, SCHEMA) is None
    assert validate({**good, "vector": "0.1,2"}, SCHEMA) == "$.vector: expected array, got string"
    assert validate({**good, "vector": [0.1, "x"]}, SCHEMA) == "$.vector[1]: expected number, got string"
    assert validate({"vector": [1, 2]}, SCHEMA) == "$: missing required field 'user_id'"
    assert validate({**good, "extra": 1}, SCHEMA) == "$: field 'extra' is not declared"
    assert validate({**good, "ts": -1}, SCHEMA) == "$.ts: -1 breaks minimum 0"
    assert validate({**good, "ts": 1.5}, SCHEMA) == "$.ts: expected integer or null, got number"
    assert validate({**good, "tier": "gold"}, SCHEMA) == "$.tier: 'gold' is not one of ['free', 'paid']"
    assert validate({**good, "vector": [1]}, SCHEMA) == "$.vector: 1 items is outside minItems/maxItems"
    assert validate({**good, "user_id": True}, SCHEMA) == "$.user_id: expected string, got boolean"


def test_keywords_interlock_does_not_check_are_refused_not_ignored() -> None:
    found = schema_problems({"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}},
                             "description": "annotations are fine"})
    assert found == [(("properties", "a", "pattern"), found[0][1])]
    assert found[0][1].startswith("JSON Schema keyword 'pattern' is not checked by interlock; use: type, properties")
    assert schema_problems({"type": "text"})[0][1].startswith("expected one of object, array, string")
    assert schema_problems({"required": ["id"], "properties": {"ID": {}}}) == [
        (("required",), "required field 'id' is not declared under properties")]


PLAN = """\
    rollout: r
    services:
      features:
        from: {version: "1", produces: {features: 1}}
      embedder:
        depends_on: [features]
        from: {version: "1", consumes: {features: [1]}}
        to:   {version: "2", consumes: {features: [1]}}
    contracts:
"""


def problems_of(contracts: str) -> list[str]:
    text = textwrap.dedent(PLAN) + textwrap.indent(textwrap.dedent(contracts), "  ")
    with pytest.raises(InputError) as err:
        parse_plan(text, "plan.yaml")
    return [p.format() for p in err.value.problems]


def test_contract_problems_are_located_one_line_each() -> None:
    assert problems_of("""\
        features:
          checks:
            freshness: {max_age: 5q}
            volume: {}
    """) == [
        "plan.yaml:12:28: contracts.features.checks.freshness.max_age: '5q' is not a duration; use forms like "
        "30s, 5m, 1h or 1h30m",
        "plan.yaml:13:15: contracts.features.checks.volume: a volume check needs max_decrease or max_increase "
        "(e.g. 50%)",
    ]
    assert problems_of("""\
        features:
          schema: {type: object, properties: {id: {type: string, format: uuid}}}
    """) == [
        "plan.yaml:11:60: contracts.features.schema.properties.id.format: JSON Schema keyword 'format' is not "
        "checked by interlock; use: type, properties, required, additionalProperties, items, enum, const, minimum, "
        "maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, minItems, maxItems",
    ]
    assert problems_of("""\
        featurez:
          checks: {schema: {max_invalid: 1%}, completeness: {max_missing: 2%}}
    """) == [
        "plan.yaml:10:3: contracts.featurez: no service produces or consumes contract 'featurez' "
        "(contracts the services name: features)",
        "plan.yaml:11:14: contracts.featurez.checks.schema: a schema check needs the contract's `schema`",
        "plan.yaml:11:41: contracts.featurez.checks.completeness: completeness counts the declared fields: give "
        "the contract a `schema` with `properties`",
    ]


def test_a_data_metric_needs_a_prometheus_query() -> None:
    text = textwrap.dedent(PLAN).replace(
        "rollout: r\n",
        "rollout: r\nenvironment:\n  flags: {kind: http, url: 'http://127.0.0.1:1'}\n"
        "  metrics: {kind: prometheus, url: 'http://127.0.0.1:2', queries: {data_freshness: 'x'}}\n")
    text += "  features:\n    checks: {freshness: {max_age: 1h}, volume: {max_decrease: 50%}}\n"
    with pytest.raises(InputError) as err:
        parse_plan(text, "plan.yaml")
    assert [p.format() for p in err.value.problems] == [
        "plan.yaml:14:40: contracts.features.checks.volume: no query for metric 'data_volume' (or "
        "'data_volume@features') in environment.metrics.queries; add one ($contract is the contract's name), "
        "or the check cannot measure",
    ]


def test_checks_become_gates_of_the_services_whose_new_version_reads_the_contract() -> None:
    plan, _ = load_plan(DATA_PLAN)
    ctx = build_context(plan, compile_plan(plan))
    assert contract_gates_of(plan, "features") == []
    assert ctx.service_gates["embedder"] == (
        "errors", "latency", "features:freshness", "features:completeness", "features:volume", "features:schema")
    assert ctx.service_gates["ranker"][-2:] == ("embeddings:freshness", "embeddings:schema")
    volume = ctx.gates["features:volume"]
    assert (volume.metric, volume.compare, volume.max_decrease, volume.interval) == (
        "data_volume@features", "baseline", 0.5, 60.0)
    assert ctx.gates["features:freshness"].max == 900.0
    assert split_metric("data_missing@features") == ("data_missing", "features")
    assert split_metric("error_rate@x") == ("error_rate@x", None)


def _world() -> SimWorld:
    plan, _ = load_plan(DATA_PLAN)
    return SimWorld(plan, seed=3)


def _ask(world: SimWorld, metric: str, at: float, version: str = "3.0") -> float | None:
    return asyncio.run(world.metrics.query(f"{metric}@features", "embedder", version, 60.0, at))


def test_the_simulated_feed_is_healthy_until_a_data_fault_spoils_it() -> None:
    world = _world()
    assert _ask(world, "data_freshness", 100.0) < 30.0  # type: ignore[operator]
    assert _ask(world, "data_missing", 100.0) == 0.0
    assert _ask(world, "data_invalid", 100.0) == 0.0
    rows = _ask(world, "data_volume", 100.0)
    assert rows is not None and abs(rows - 400 * 60) < 5 * (400 * 60) ** 0.5  # features serves 400 rps
    # measured at 0% exposure: the feed a new version is about to read exists already

    asyncio.run(world.faults.inject({"kind": "stale_data", "service": "features", "version": "old",
                                     "age": 600.0}, 1000.0))
    assert _ask(world, "data_freshness", 1300.0) == 900.0  # stopped at 400, asked at 1300
    assert _ask(world, "data_volume", 1300.0) == 0.0

    world = _world()
    asyncio.run(world.faults.inject({"kind": "missing_fields", "service": "features", "version": "old",
                                     "value": 0.5, "field": "vector"}, 0.0))
    missing = _ask(world, "data_missing", 60.0)
    assert missing is not None and 0.25 < missing < 0.75
    invalid = _ask(world, "data_invalid", 60.0)  # a missing required field breaks the schema, a null too
    assert invalid == missing

    world = _world()
    asyncio.run(world.faults.inject({"kind": "schema_drift", "service": "features", "version": "old",
                                     "field": "ts"}, 0.0))
    assert _ask(world, "data_invalid", 60.0) == 1.0
    assert _ask(world, "data_missing", 60.0) == 0.0
    assert world.active_faults == [{"kind": "schema_drift", "service": "features", "version": "old", "field": "ts"}]


def test_a_fault_on_a_contract_the_reader_does_not_read_changes_nothing() -> None:
    world = _world()
    asyncio.run(world.faults.inject({"kind": "schema_drift", "service": "embedder", "version": "old",
                                     "contract": "embeddings"}, 0.0))
    assert _ask(world, "data_invalid", 60.0) == 0.0
    ranker = asyncio.run(world.metrics.query("data_invalid@embeddings", "ranker", "5.0", 60.0, 60.0))
    assert ranker == 1.0  # the old ranker reads the old embedder's embeddings


# --- before the first user (core.datapreflight, a step of core.beforefirst) ----------------


def _drill(path: Path, journal: Path) -> tuple[Any, list[Event]]:
    runner = prepare_drill(path, journal_path=journal)
    try:
        card = asyncio.run(runner.run())
        events = [r.event for r in runner.journal.records(runner.session.info.run_id)]
    finally:
        runner.close()
    return card, events


def _exposed(events: list[Event], services: set[str]) -> list[Event]:
    """Every event that shows one of `services` above 0%."""
    return [e for e in events
            if (isinstance(e, ExposureApplied) and e.service in services and e.percent > 0)
            or (isinstance(e, ExposureRead) and any(e.exposures.get(s, 0.0) > 0 for s in services))]


@pytest.mark.parametrize("stem, gate", [("stale-features", "features:freshness"),
                                        ("missing-fields", "features:completeness")])
def test_a_spoiled_feed_keeps_its_consumers_at_zero_in_every_event(stem: str, gate: str, tmp_path: Path) -> None:
    card, events = _drill(REPO / "examples" / "drills" / f"{stem}.yaml", tmp_path / "j.db")
    assert card.passed, [e for e in card.expectations if not e.passed]
    assert _exposed(events, {"embedder", "ranker"}) == []
    failed = [e for e in events if isinstance(e, Measured) and e.gate == gate]
    assert len(failed) == 1 and failed[0].service == "embedder"  # one look, before any exposure
    assert card.decided_by is not None and f"gate {gate} on embedder failed before the first user" in card.decided_by


def test_the_checks_pass_before_the_first_exposure_and_judge_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    with out.open("w") as sink:
        code = subprocess.run([sys.executable, "-m", "tui.cli.main", "run", str(DATA_PLAN), "--headless", "--json",
                               "--journal", str(tmp_path / "j.db")], stdout=sink, cwd=REPO).returncode
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    first_exposure = next(i for i, e in enumerate(lines)
                          if e.get("kind") == "exposure_applied" and e["service"] == "embedder")
    checked = {e["gate"] for e in lines[:first_exposure] if e.get("kind") == "measured" and e["service"] == "embedder"}
    assert checked == {"features:freshness", "features:completeness", "features:volume", "features:schema"}
    before = [e for e in lines[:first_exposure] if e.get("kind") == "measured" and e["service"] == "ranker"]
    assert {e["gate"] for e in before} == {"embeddings:freshness", "embeddings:schema"}  # the whole group first
    later = [e for e in lines[first_exposure:] if e.get("kind") == "measured" and e.get("gate") == "features:schema"]
    assert len(later) > 10  # and they judge at every stage after
    assert lines[-1]["summary"]["phase"] == "completed"


def test_a_lockstep_partner_s_failing_check_keeps_the_whole_group_at_zero(tmp_path: Path) -> None:
    drill = tmp_path / "lockstep.yaml"
    drill.write_text(f"""\
drill: lockstep-stale-embeddings
plan: {DATA_PLAN}
seed: 7
faults:
  - at: {{service: features, percent: 100}}
    inject: {{kind: stale_data, service: embedder, version: new, contract: embeddings, age: 2h}}
expect: {{rolled_back: [], untouched: [features], final: rolled_back}}
""")
    card, events = _drill(drill, tmp_path / "j.db")
    assert card.passed
    assert _exposed(events, {"embedder", "ranker"}) == []
    assert card.decided_by is not None and "gate embeddings:freshness on ranker failed before the first user" in (
        card.decided_by)


def test_no_data_before_the_first_user_pauses_and_resume_measures_again(tmp_path: Path) -> None:
    drill = tmp_path / "outage.yaml"
    drill.write_text(f"""\
drill: metrics-outage-before-the-first-user
plan: {DATA_PLAN}
seed: 7
faults:
  - at: {{time: 23m}}
    inject: {{kind: metrics_outage}}
    duration: 5m
operator:
  - at: {{time: 35m}}
    do: resume
expect: {{final: completed}}
""")
    card, events = _drill(drill, tmp_path / "j.db")
    assert card.passed, [e for e in card.expectations if not e.passed]
    paused_at = min(e.at for e in events if isinstance(e, Measured) and e.service == "embedder")
    assert paused_at == 25 * 60  # it asked at the first moment it could, found no data, and waited
    first = min(e.at for e in events if isinstance(e, ExposureApplied) and e.service == "embedder")
    assert first == 35 * 60  # resumed, measured again (the outage is over), then exposed
