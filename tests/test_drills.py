"""Drills: the format and its errors, faults in the journal, the scorecard, the interlock.

The drill library in examples/drills runs here as CI tests: every drill must
pass, and together they must cover every fault kind and a cascade through a
lockstep group.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, get_args

import pytest

from adapters.sim.faults import FAULT_KINDS
from adapters.sim.faults import SERVICE_FAULTS as SIM_SERVICE_FAULTS
from core.drill import SCRIPT_OPERATOR, SERVICE_FAULTS, FaultKind, load_drill, parse_drill
from core.events import Event, ExposureApplied, FaultInjected, Measured, OperatorAction
from core.problems import InputError
from core.scorecard import Scorecard
from core.state import RolloutState
from tui.cli.drill_cmd import drill_main
from tui.session.drills import DrillRunner, prepare_drill, run_drill

REPO = Path(__file__).resolve().parent.parent
DRILLS = sorted((REPO / "examples" / "drills").glob("*.yaml"))
RECSYS = REPO / "examples" / "recsys.yaml"
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<message>.+)$")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Path]:
    """A journal path on tmpfs when there is one: these tests check behaviour, not
    fsync latency (that is the benchmark's business), and each drill commits hundreds of times."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm) as fast:
            yield Path(fast) / "drills.db"
    else:
        yield tmp_path / "drills.db"


@dataclass
class Ran:
    card: Scorecard
    events: list[Event]
    active_faults: list[dict[str, Any]]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Ran]]:
    """Each example drill, run once per module and kept with its journaled events."""
    runs: dict[str, Ran] = {}
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None) as base:

        def run(stem: str) -> Ran:
            if stem not in runs:
                runner = prepare_drill(REPO / "examples" / "drills" / f"{stem}.yaml", journal_path=Path(base) / "j.db")
                card = asyncio.run(runner.run())
                events = [r.event for r in runner.journal.records(runner.session.info.run_id)]
                runner.close()
                runs[stem] = Ran(card, events, runner.world.faults.active)
            return runs[stem]

        yield run


def _args(drill: Path, journal: Path | None, **extra: Any) -> argparse.Namespace:
    values = {"drill": drill, "json": True, "report": None, "junit": None, "live": False,
              "journal": journal, "seed": None}
    values.update(extra)
    return argparse.Namespace(**values)


def _write_drill(tmp: Path, body: str, name: str = "drill.yaml") -> Path:
    path = tmp / name
    path.write_text(body, encoding="utf-8")
    return path


BURST = f"""\
drill: burst
plan: {RECSYS}
seed: 7
faults:
  - at: {{service: ranker, percent: 25}}
    inject: {{kind: error_rate, service: ranker, value: 0.05}}
"""


# --- the library ---------------------------------------------------------------


@pytest.mark.parametrize("drill", DRILLS, ids=[d.stem for d in DRILLS])
def test_every_example_drill_passes(drill: Path, library: Callable[[str], Ran]) -> None:
    assert drill.read_text().startswith("# Rehearses"), "each drill opens with what it rehearses"
    card = library(drill.stem).card
    failed = [e for e in card.expectations if not e.passed]
    assert card.passed and not failed, failed
    assert card.journal_intact and all(f.injected_s is not None for f in card.faults)


def test_the_library_covers_every_fault_kind_and_a_lockstep_cascade() -> None:
    assert len(DRILLS) >= 6
    kinds: set[str] = set()
    cascades = []
    for path in DRILLS:
        loaded = load_drill(path)
        kinds.update(f.inject.kind for f in loaded.drill.faults)
        expected = set(loaded.drill.expect.rolled_back or ())
        if any(set(group) <= expected for group in loaded.graph.lockstep):
            cascades.append(path.stem)
    assert kinds == set(FAULT_KINDS)
    assert cascades, "no drill rolls back a whole lockstep group"


def test_the_drill_format_knows_exactly_the_worlds_faults() -> None:
    assert set(get_args(FaultKind)) == set(FAULT_KINDS)
    assert set(SERVICE_FAULTS) == set(SIM_SERVICE_FAULTS)


# --- the scorecard ----------------------------------------------------------------


def test_json_scorecard_has_the_design_shape_and_is_byte_identical_per_seed(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = REPO / "examples" / "drills" / "lockstep-schema-break.yaml"
    assert drill_main(_args(drill, journal)) == 0
    first = capsys.readouterr().out
    assert drill_main(_args(drill, journal.with_name("other.db"))) == 0
    second = capsys.readouterr().out
    assert first == second
    card = json.loads(first)
    assert list(card)[:7] == ["drill", "passed", "detect_s", "restore_s", "rolled_back", "untouched", "expectations"]
    assert card["drill"] == "lockstep-schema-break" and card["passed"] is True
    assert card["rolled_back"] == ["embedder", "ranker"] and card["untouched"] == ["features"]
    assert isinstance(card["detect_s"], float) and isinstance(card["restore_s"], float)
    assert all(set(e) == {"name", "passed", "detail"} for e in card["expectations"])
    assert card["journal_intact"] is True and card["collateral"] == []
    # The fault hits the embedder, the failing gate is the ranker's: detected downstream.
    assert card["detect_s"] <= 60 and card["bad_requests"] > 0
    assert "tmp" not in first and "drill-lockstep" not in first  # no journal path, no run id


def test_times_come_from_the_journal_and_percent_faults_land_before_the_next_measurement(
    library: Callable[[str], Ran],
) -> None:
    ran = library("ranker-error-burst")
    card, events = ran.card, ran.events
    reached = next(i for i, e in enumerate(events)
                   if isinstance(e, ExposureApplied) and e.service == "ranker" and e.percent == 25)
    fault = next(i for i, e in enumerate(events) if isinstance(e, FaultInjected))
    assert reached < fault
    assert events[fault].at == events[reached].at
    assert not any(isinstance(e, Measured) and e.service == "ranker" for e in events[reached:fault])
    assert events[fault].fault == {"index": 1, "kind": "error_rate", "service": "ranker", "version": "new",
                                   "value": 0.05, "cleared": False}
    first_fail = next(e for e in events[fault:] if isinstance(e, Measured) and e.service == "ranker"
                      and e.gate == "errors" and (e.value or 0) > 0.01)
    assert card.detect_s == first_fail.at - events[fault].at
    assert card.faults[0].injected_s == events[fault].at
    scripted = [e for e in events if isinstance(e, OperatorAction)]
    assert [(e.action, e.operator) for e in scripted] == [("pause", SCRIPT_OPERATOR), ("resume", SCRIPT_OPERATOR)]
    assert [e.at for e in scripted] == [600.0, 720.0]


def test_a_fault_with_a_duration_is_cleared_and_both_ends_are_journaled(library: Callable[[str], Ran]) -> None:
    ran = library("flag-service-outage")
    card, faults = ran.card, [e for e in ran.events if isinstance(e, FaultInjected)]
    assert [(e.at, e.fault) for e in faults] == [
        (29 * 60.0, {"index": 1, "kind": "flag_service_outage", "cleared": False}),
        (32 * 60.0, {"index": 1, "kind": "flag_service_outage", "cleared": True}),
    ]
    assert ran.active_faults == []
    assert (card.faults[0].injected_s, card.faults[0].cleared_s) == (1740.0, 1920.0)
    assert card.final == "completed" and card.decide_s is not None


def test_wrong_expectations_fail_with_collateral_and_exit_1(
    tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drill = _write_drill(tmp_path, BURST + "expect:\n  rolled_back: [ranker]\n  untouched: [embedder, api]\n"
                         "  detect_within: 10s\n  final: completed\n")
    assert drill_main(_args(drill, journal)) == 1
    card = json.loads(capsys.readouterr().out)
    verdicts = {e["name"]: e for e in card["expectations"]}
    assert card["passed"] is False and card["collateral"] == ["embedder"]
    assert not verdicts["rolled_back"]["passed"] and "collateral: embedder" in verdicts["rolled_back"]["detail"]
    assert verdicts["untouched"]["detail"] == "api never moved; embedder was rolled back"
    assert verdicts["detect_within"]["detail"] == "detected in 30s (limit 10s)"
    assert not verdicts["final"]["passed"] and verdicts["faults_fired"]["passed"]


def test_a_fault_that_never_fires_fails_the_drill(tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = BURST + "  - at: {service: api, percent: 50}\n    inject: {kind: metrics_outage}\n"
    assert drill_main(_args(_write_drill(tmp_path, body), journal)) == 1
    card = json.loads(capsys.readouterr().out)
    fired = next(e for e in card["expectations"] if e["name"] == "faults_fired")
    assert fired == {"name": "faults_fired", "passed": False,
                     "detail": "fault 2 (metrics_outage at api at 50%) never fired"}
    assert card["faults"][1]["injected_s"] is None


def test_a_person_at_the_console_is_scored(tmp_path: Path, journal: Path) -> None:
    drill = _write_drill(tmp_path, BURST.replace("value: 0.05", "value: 0.009")
                         + "expect:\n  rolled_back: [embedder, ranker]\n")
    runner = prepare_drill(drill, journal_path=journal)

    def person(state: RolloutState, events: Any) -> None:
        if any(isinstance(e, FaultInjected) for e in events):
            runner.engine.schedule(state.at + 45, _act(OperatorAction(at=0, action="pause", operator="alice")))
            runner.engine.schedule(state.at + 90, _act(OperatorAction(at=0, action="rollback", service="ranker",
                                                                       operator="alice")))

    runner.engine.subscribe(person)
    card = asyncio.run(runner.run())
    runner.close()
    assert card.human is not None
    assert (card.human.pause_s, card.human.rollback_s) == (45.0, 90.0)
    assert card.human.rollback_service == "ranker" and card.human.rollback_right is True
    assert card.decide_s == 45.0 and card.rolled_back == ["embedder", "ranker"]
    assert card.to_json()["human"]["rollback_right"] is True


def _act(event: OperatorAction):  # noqa: ANN202
    async def fire() -> list[OperatorAction]:
        return [event]

    return fire


def test_report_and_junit_files(tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = _write_drill(tmp_path, BURST + "expect:\n  rolled_back: [ranker]\n  restore_within: 5m\n")
    report, junit = tmp_path / "drill.md", tmp_path / "drill.xml"
    assert drill_main(_args(drill, journal, json=False, report=report, junit=junit)) == 1
    table = capsys.readouterr().out
    assert table.startswith("drill burst: FAILED") and "✗ FAIL  rolled_back" in table
    assert "✓ pass  restore_within" in table
    markdown = report.read_text()
    assert markdown.startswith("# Drill `burst`: FAILED") and "| rolled_back | ❌ FAIL |" in markdown
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"faults_fired", "rolled_back", "restore_within", "journal_intact"}
    failure = cases["rolled_back"].find("failure")
    assert failure is not None and "collateral: embedder" in (failure.get("message") or "")
    assert cases["restore_within"].find("failure") is None


def test_a_real_clock_drill_runs_in_scaled_time(tmp_path: Path, journal: Path) -> None:
    plan = tmp_path / "tiny.yaml"
    plan.write_text(
        "rollout: tiny\n"
        "defaults: {stages: [50, 100], bake: 1m, gates: [errors]}\n"
        "gates: {errors: {metric: error_rate, max: 0.01, interval: 10s, count: 3}}\n"
        "services:\n  a: {from: {version: '1'}, to: {version: '2'}}\n"
    )
    drill = _write_drill(tmp_path, "drill: tiny\nplan: tiny.yaml\nclock: real\nspeed: 60\nfaults:\n"
                         "  - at: {service: a, percent: 50}\n    inject: {kind: error_rate, service: a, value: 0.5}\n"
                         "expect: {rolled_back: [a], detect_within: 30s, restore_within: 1m, final: rolled_back}\n")
    card = run_drill(drill, journal_path=journal)
    assert card.passed, card.expectations


# --- bad input ------------------------------------------------------------------


def test_bad_drill_reports_every_problem_at_once(tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = _write_drill(tmp_path, f"""\
drill: bad
plan: {RECSYS}
clock: virtul
faults:
  - at: {{service: rankr, percent: 25}}
    inject: {{kind: error_rate, service: ranker, value: 0.05}}
  - at: {{time: 4q}}
    inject: {{kind: latency_spike, service: ranker}}
  - at: {{time: 5m}}
    duration: soon
    inject: {{kind: schema_break, service: embedder, contract: features, produces: 9}}
  - at: {{time: 1m}}
    inject: {{kind: latency, service: api, value: 0.5}}
operator:
  - at: {{time: 10m}}
    do: rollback
expect:
  untouched: [feature]
  restore_within: 5 minutes
""")
    assert drill_main(_args(drill, journal)) == 2
    lines = capsys.readouterr().err.splitlines()
    parsed = [LOCATED.match(line) for line in lines]
    assert all(parsed), lines
    found = {(int(m["line"]), m["path"]) for m in parsed if m}
    assert found == {
        (3, "clock"), (5, "faults[0].at.service"), (7, "faults[1].at.time"), (8, "faults[1].inject.kind"),
        (10, "faults[2].duration"), (11, "faults[2].inject.contract"), (13, "faults[3].inject"), (13, "faults[3].inject.value"),
        (15, "operator[0]"), (18, "expect.untouched[0]"), (19, "expect.restore_within"),
    }
    text = "\n".join(lines)
    assert "did you mean 'ranker'?" in text and "did you mean 'virtual'?" in text
    assert "'value' does not apply to a latency fault" in text and "did you mean 'features'?" in text
    assert "`do: rollback` needs a service" in text and "'4q' is not a duration" in text
    assert not journal.exists()


def test_a_missing_plan_and_the_plans_own_problems_are_reported(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        parse_drill("drill: x\nplan: nowhere.yaml\nseed: many\n", "d.yaml", tmp_path)
    assert [p.format() for p in missing.value.problems] == [
        f"d.yaml:2:7: plan: cannot read the plan {tmp_path / 'nowhere.yaml'}: No such file or directory",
        "d.yaml:3:7: seed: expected a whole number, got 'many'",
    ]
    (tmp_path / "p.yaml").write_text("rollout: p\nservices:\n  a: {from: {version: '1'}, to: {version: '2'}, bake: 5q}\n")
    with pytest.raises(InputError) as broken:
        parse_drill("drill: x\nplan: p.yaml\nexpect: {rolled_back: [a], untouched: [a]}\n", "d.yaml", tmp_path)
    assert [p.format() for p in broken.value.problems] == [
        f"d.yaml:2:7: plan: the plan {tmp_path / 'p.yaml'} has problems (listed below)",
        "d.yaml:3:40: expect.untouched[0]: 'a' is expected both rolled back and untouched",
        f"{tmp_path / 'p.yaml'}:3:55: services.a.bake: '5q' is not a duration; use forms like 30s, 5m, 1h or 1h30m",
    ]


def test_versions_and_contracts_are_checked_against_the_plan(tmp_path: Path) -> None:
    body = (f"drill: x\nplan: {RECSYS}\nfaults:\n"
            "  - at: {time: 1m}\n    inject: {kind: error_rate, service: ranker, version: '7.0', value: 0.1}\n"
            "  - at: {time: 1m}\n    inject: {kind: schema_break, service: ranker, contract: embeddings, produces: 4}\n"
            "  - at: {time: 1m}\n    inject: {kind: prediction_drift, service: embedder, version: '2.4', shift: 0.1}\n")
    with pytest.raises(InputError) as err:
        parse_drill(body, "d.yaml", tmp_path)
    assert [p.format() for p in err.value.problems] == [
        "d.yaml:5:58: faults[0].inject.version: ranker has no version '7.0'; known: old, 5.0, new, 6.0",
        "d.yaml:7:61: faults[1].inject.contract: ranker 6.0 does not produce 'embeddings'; it produces no contract",
    ]


# --- the safety interlock ---------------------------------------------------------


@pytest.mark.parametrize(
    ("staging", "live", "says"),
    [
        (False, False, "not marked `staging: true`"),
        (False, True, "not marked `staging: true`"),
        (True, False, "pass --live"),
        (True, True, "faults can only be injected into the simulated world"),
    ],
)
def test_drills_refuse_real_environments_and_touch_nothing(
    staging: bool, live: bool, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTERLOCK_JOURNAL", raising=False)
    (tmp_path / "real.yaml").write_text(
        "rollout: real\nenvironment:\n  flags: {kind: unleash, url: 'http://127.0.0.1:4242'}\n"
        f"  staging: {'true' if staging else 'false'}\n"
        "services:\n  a: {from: {version: '1'}, to: {version: '2'}}\n"
    )
    drill = _write_drill(tmp_path, "drill: real\nplan: real.yaml\nfaults:\n"
                         "  - at: {time: 1m}\n    inject: {kind: metrics_outage}\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert drill_main(_args(drill, None, live=live)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'real.yaml'}:2:1: environment: drill refused: ") and says in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no journal, no run, no state


def test_a_live_drill_on_staging_scripts_the_operator_through_the_real_adapters(
    tmp_path: Path, journal: Path
) -> None:
    (tmp_path / "staging.yaml").write_text(
        "rollout: staging\nenvironment:\n  flags: {kind: http, url: 'http://127.0.0.1:9'}\n  staging: true\n"
        "services:\n  a: {from: {version: '1'}, to: {version: '2'}}\n"
    )
    drill = _write_drill(tmp_path, "drill: live\nplan: staging.yaml\noperator:\n  - at: {time: 1m}\n    do: pause\n")
    with pytest.raises(InputError):
        prepare_drill(drill, journal_path=journal)
    assert not journal.exists()
    runner = prepare_drill(drill, journal_path=journal, live=True)  # wired, not run: nothing is called yet
    assert runner.world is None and type(runner.engine.flags).__name__ == "HttpFlags"
    assert runner.clock_label == "real clock ×1" and runner.session.info.clock == "real"
    runner.close()


def test_the_simulated_world_is_always_allowed_even_with_live(journal: Path) -> None:
    runner = DrillRunner(load_drill(REPO / "examples" / "drills" / "api-latency.yaml"),
                         journal_path=journal, live=True)
    assert runner.session.world is runner.world and runner.session.info.operator == SCRIPT_OPERATOR
    assert runner.banner() == "DRILL api-latency · T+ 0s · faults 0/1 fired"
    runner.close()


def test_core_drill_modules_stay_pure() -> None:
    code = ("import sys, core.drill, core.scorecard; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('adapters', 'tui', 'textual', 'httpx')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_expectations_about_a_fault_that_never_fired_fail_instead_of_passing_vacuously(
    tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    never = BURST.replace("{service: ranker, percent: 25}", "{time: 10h}")  # the rollout ends long before
    body = never + "expect:\n  rolled_back: []\n  restore_within: 5m\n  final: completed\n  untouched: [features]\n"
    assert drill_main(_args(_write_drill(tmp_path, body), journal)) == 1
    card = json.loads(capsys.readouterr().out)
    verdicts = {e["name"]: e for e in card["expectations"]}
    for name in ("rolled_back", "restore_within", "final"):
        assert not verdicts[name]["passed"], name
        assert verdicts[name]["detail"].startswith("vacuous: fault 1 never fired"), verdicts[name]
    assert verdicts["untouched"]["passed"] and verdicts["journal_intact"]["passed"]
    assert card["detected_by"] is None


def test_nothing_exposed_is_nothing_restored(tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = BURST.replace("{service: ranker, percent: 25}", "{service: features, percent: 1}").replace(
        "service: ranker, value", "service: features, value"
    ) + "expect:\n  restore_within: 5m\n  rolled_back: [api]\n"
    assert drill_main(_args(_write_drill(tmp_path, body), journal)) == 1
    card = json.loads(capsys.readouterr().out)
    restore = next(e for e in card["expectations"] if e["name"] == "restore_within")
    assert restore == {"name": "restore_within", "passed": False, "detail": "never restored (limit 5m00s)"}
    assert card["restore_s"] is None


def test_the_scorecard_names_what_detected_and_what_decided(library: Callable[[str], Ran]) -> None:
    card = library("ranker-error-burst").card
    assert card.detected_by is not None and card.detected_by.startswith("ranker: gate errors: error_rate ")
    assert card.detected_by.endswith("> max 1% ✗")
    assert card.decided_by is not None and card.decided_by.startswith("gate errors on ranker failed")
    assert card.to_json()["detected_by"] == card.detected_by
