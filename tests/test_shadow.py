"""The shadow stage (issue 14 point 3): before its first user, a service's new version
answers mirrored copies of live requests, judged by its shadow gates; a failing shadow keeps
the group at 0% and follows `on_failure`; only side-effect-free services may be shadowed;
a lockstep group shadows together; the simulated world mirrors per request."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.sim.shadow import AGREEMENT_TOLERANCE, agreement
from adapters.sim.world import SimWorld
from core.commands import SetExposure, SetMirror
from core.context import initial_state
from core.events import Event, ExposureApplied, ExposureRead, MirrorApplied, RolloutStarted
from core.order import compile_plan
from core.planload import load_plan, parse_plan
from core.problems import InputError
from core.reducer import reduce, reduce_fully
from core.state import RolloutState
from tui.cli.main import main
from tui.session.drills import prepare_drill

REPO = Path(__file__).resolve().parent.parent
PREFLIGHT = REPO / "examples" / "recsys-preflight.yaml"
DISAGREEMENT = REPO / "examples" / "drills" / "ranker-shadow-disagreement.yaml"
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<path>\S+): (?P<message>.+)$")

PLAN = """\
rollout: shadowed
policy: {{on_failure: {on_failure}}}
defaults: {{stages: [10, 100], bake: 2m, gates: [errors]}}
gates:
  errors: {{metric: error_rate, max: 0.05, interval: 30s}}
  agreement: {{metric: prediction_agreement, min: 0.9, interval: 30s}}
services:
  model:
    from: {{version: "1"}}
    to: {{version: "2"}}
    shadow: {{duration: 3m, side_effect_free: true, gates: [agreement, errors]}}
    sim:
      from: {{prediction_mean: 0.5}}
      to: {{prediction_mean: {mean}}}
"""


def _plan(tmp_path: Path, *, mean: float = 0.5, on_failure: str = "rollback_self") -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN.format(mean=mean, on_failure=on_failure), encoding="utf-8")
    return path


def _refusals(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        plan, source = parse_plan(text, "p.yaml")
        compile_plan(plan, source)
    return [p.format() for p in caught.value.problems]


# --- validation --------------------------------------------------------------------


def test_validate_refuses_a_shadow_without_side_effect_free_with_file_line_col(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = PLAN.format(mean=0.5, on_failure="pause").replace("side_effect_free: true", "side_effect_free: false")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    match = LOCATED.match(err[0])
    assert match is not None, err
    assert match["path"] == "services.model.shadow.side_effect_free"
    line, col = int(match["line"]), int(match["col"])
    assert text.splitlines()[line - 1][col - 1:].startswith("false")  # points at the value
    assert "persists twice" in match["message"]


def test_a_shadow_that_does_not_say_side_effect_free_is_refused_at_the_shadow() -> None:
    text = PLAN.format(mean=0.5, on_failure="pause").replace("side_effect_free: true, ", "")
    found = _refusals(text)
    assert len(found) == 1 and ":11:5: services.model.shadow: " in found[0], found


def test_unknown_shadow_gates_and_static_shadows_are_refused() -> None:
    text = PLAN.format(mean=0.5, on_failure="pause").replace("gates: [agreement, errors]}", "gates: [agreemnt]}")
    text += '  static:\n    from: {version: "1"}\n    shadow: {side_effect_free: true}\n'
    found = _refusals(text)
    assert any("services.model.shadow.gates[0]: unknown gate 'agreemnt'; did you mean 'agreement'?" in f for f in found), found
    assert any("services.static.shadow: service 'static' has no `to` version" in f for f in found), found


def test_a_lockstep_group_shadows_together() -> None:
    text = (REPO / "examples" / "recsys-preflight.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("    shadow: {duration: 10m, side_effect_free: true, gates: [errors, latency]}")]
    found = _refusals("\n".join(lines) + "\n")
    assert len(found) == 1, found
    assert "services.embedder: service 'embedder' moves in lockstep with ranker, which is shadowed" in found[0]


def _real(env: str) -> str:
    return PLAN.format(mean=0.5, on_failure="pause").replace(
        "rollout: shadowed\n", f"rollout: shadowed\nenvironment:\n{env}"
    ).replace('    to: {version: "2"}\n', '    to: {version: "2"}\n    exposure: {route: model}\n', 1)


def test_a_real_environment_must_be_able_to_copy_requests() -> None:
    haproxy = "  router: {kind: haproxy, admin: 127.0.0.1:9999}\n"
    found = _refusals(_real(haproxy))
    assert any("services.model.shadow: service 'model' cannot be shadowed here: router 'haproxy' cannot copy requests"
               in f for f in found), found
    gateway = "  router: {kind: gateway_api, url: 'https://127.0.0.1:6443', token_env: T}\n"
    plan, _ = parse_plan(_real(gateway), "p.yaml")
    assert plan.services["model"].shadow is not None
    mirrored = haproxy + "  mirror: {kind: sim_serve, url: 'http://127.0.0.1:9000'}\n"
    parse_plan(_real(mirrored), "p.yaml")
    odd = haproxy + "  mirror: {kind: istio}\n"
    assert any("environment.mirror.kind: unknown mirror 'istio'" in f for f in _refusals(_real(odd)))


# --- the rollout ---------------------------------------------------------------------


def _run(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    import json

    code = main(["run", str(path), "--headless", "--json", "--journal", str(tmp_path / "j.db")])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return code, lines


def test_a_healthy_shadow_comes_before_the_first_stage_at_zero_exposure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(_plan(tmp_path), tmp_path, capsys)
    assert code == 0
    kinds = [(e["kind"], e.get("service"), e.get("percent")) for e in lines if "kind" in e]
    mirror_on = kinds.index(("mirror_applied", "model", 100.0))
    mirror_off = kinds.index(("mirror_applied", "model", 0.0))
    first_exposure = next(i for i, k in enumerate(kinds) if k[0] == "exposure_applied" and k[2])
    shadow = [e for e in lines[mirror_on:mirror_off] if e.get("kind") == "measured"]
    assert {e["gate"] for e in shadow} == {"agreement", "errors"}
    assert all(e["value"] is not None for e in shadow)  # mirrored requests give data at 0%
    assert all(e["at"] - lines[mirror_on]["at"] <= 180 for e in shadow)
    assert mirror_on < mirror_off < first_exposure  # shadow, mirror off, then stage 1
    assert lines[first_exposure]["at"] - lines[mirror_on]["at"] >= 180  # the whole 3m
    assert lines[-1]["summary"]["services"]["model"] == {"phase": "promoted", "exposure": 100.0}


@pytest.mark.parametrize("on_failure", ["rollback_self", "rollback_dependents"])
def test_a_failing_shadow_keeps_the_service_at_zero_and_follows_on_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on_failure: str
) -> None:
    code, lines = _run(_plan(tmp_path, mean=0.7, on_failure=on_failure), tmp_path, capsys)
    assert code == 1
    assert not [e for e in lines if e.get("kind") == "exposure_applied" and e["percent"] > 0]
    failed = [e for e in lines if e.get("kind") == "measured" and e["gate"] == "agreement"]
    assert failed and failed[-1]["value"] < 0.9
    mirrors = [e["percent"] for e in lines if e.get("kind") == "mirror_applied"]
    assert mirrors == [100.0, 0.0]  # the mirror goes off with the rollout
    summary = lines[-1]["summary"]
    assert summary["phase"] == "rolled_back"
    assert summary["services"]["model"] == {"phase": "failed", "exposure": 0.0}


def test_a_failing_shadow_under_pause_waits_and_resume_shadows_again(tmp_path: Path) -> None:
    plan, _ = load_plan(_plan(tmp_path, mean=0.7, on_failure="pause"))
    graph = compile_plan(plan)
    state, log = _drive(initial_state(plan, graph), SimWorld(plan, graph, seed=1), until=lambda s: s.phase == "paused")
    assert state.services["model"].phase == "failed" and state.services["model"].exposure == 0
    assert "in shadow failed" in state.reason
    assert state.services["model"].mirror == 100.0  # still mirroring while the operator looks
    from core.events import OperatorAction

    state, cmds = reduce(state, OperatorAction(at=state.at, action="resume"))
    assert state.services["model"].phase == "shadowing" and state.groups[0].stage == -1
    assert not [c for c in cmds if isinstance(c, SetExposure)]
    # the mirror is sent again (a restarted mirror server may have lost it), and the shadow's
    # gates wait for it before they measure
    assert [(c.service, c.percent) for c in cmds if isinstance(c, SetMirror)] == [("model", 100.0)]
    assert state.groups[0].bake_until is None
    assert all(not isinstance(e, ExposureApplied) or e.percent == 0 for e in log)


def _drive(state: RolloutState, world: SimWorld, *, until: Any, limit: int = 2000) -> tuple[RolloutState, list[Event]]:
    """A small synchronous engine over the simulated world: checks the fast and the full
    reducer agree on every event of a shadowing run."""
    from core.commands import Measure, ReadExposure
    from core.events import ExposureRead, Measured, Tick
    from core.readback import read_back
    from core.schedule import next_deadline

    async def outcome(cmd: Any) -> Event:
        if isinstance(cmd, SetMirror):
            await world.mirror.set_mirror(cmd.service, cmd.route, cmd.percent)
            return MirrorApplied(at=state.at, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent)
        if isinstance(cmd, SetExposure):
            if cmd.flag:
                await world.flags.set_rollout(cmd.flag, cmd.percent, cmd.cohort)
            return ExposureApplied(at=state.at, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent)
        if isinstance(cmd, ReadExposure):  # the periodic read-back reads a shadow's mirror too
            exposures, targets = await read_back(state.ctx, cmd.services, world.flags, world.router, world.mirror)
            return ExposureRead(at=state.at, cmd_id=cmd.cmd_id, exposures=exposures, targets=targets)
        assert isinstance(cmd, Measure)
        value = await world.metrics.query(cmd.metric, cmd.service, cmd.canary_version, cmd.window, state.at)
        return Measured(at=state.at, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate, value=value)

    log: list[Event] = []
    queue: list[Event] = [RolloutStarted(at=0.0, rollout=state.ctx.plan.rollout)]
    for _ in range(limit):
        if not queue:
            deadline = next_deadline(state)
            if deadline is None or until(state):
                break
            queue.append(Tick(at=deadline))
        event = queue.pop(0)
        log.append(event)
        fast, cmds = reduce(state, event)
        full, _ = reduce_fully(state, event)
        assert fast.groups == full.groups and fast.services == full.services and fast.phase == full.phase
        state = fast
        queue += [asyncio.run(outcome(c)) for c in cmds]
    return state, log


# --- the drill: a drifting model caught in shadow never reaches a user ------------------


def test_the_disagreement_drill_never_exposes_a_user_in_any_event(tmp_path: Path) -> None:
    runner = prepare_drill(DISAGREEMENT, journal_path=tmp_path / "j.db")
    card = asyncio.run(runner.run())
    events = [r.event for r in runner.journal.records(runner.session.info.run_id)]
    runner.close()
    assert card.passed, [e for e in card.expectations if not e.passed]
    caught = ("embedder", "ranker", "api")
    state = initial_state(*_compiled(PREFLIGHT))
    shadowed = False
    for event in events:  # every journaled event, and the state after each
        if isinstance(event, ExposureApplied) and event.service in caught:
            assert event.percent == 0, event
        if isinstance(event, ExposureRead):
            assert all(event.exposures.get(name, 0) == 0 for name in caught), event
        state, _ = reduce(state, event)
        shadowed = shadowed or state.services["ranker"].phase == "shadowing"
        assert all(state.services[name].exposure == 0 and state.services[name].target == 0 for name in caught)
    assert shadowed and state.phase == "rolled_back" and state.services["ranker"].phase == "failed"
    assert state.services["features"].phase == "promoted"
    assert card.detected_by is not None and "gate agreement" in card.detected_by
    assert not runner.world.mirror_fraction("ranker")  # the mirror went off with the rollout


def _compiled(path: Path) -> tuple[Any, Any]:
    plan, source = load_plan(path)
    return plan, compile_plan(plan, source)


def test_prediction_drift_during_shadow_is_caught_before_any_user(tmp_path: Path) -> None:
    drill = tmp_path / "drift.yaml"
    drill.write_text(
        f"drill: shadow-drift\nplan: {PREFLIGHT}\nseed: 2\nfaults:\n"
        "  - at: {time: 0s}\n    inject: {kind: prediction_drift, service: ranker, shift: 0.3}\n"
        "expect:\n  never_exposed: [embedder, ranker]\n  final: rolled_back\n",
        encoding="utf-8",
    )
    runner = prepare_drill(drill, journal_path=tmp_path / "j.db")
    card = asyncio.run(runner.run())
    runner.close()
    assert card.passed, [e for e in card.expectations if not e.passed]
    assert card.decided_by is not None and "in shadow failed" in card.decided_by


# --- the simulated world mirrors per request ---------------------------------------------


def _world(tmp_path: Path, **kw: Any) -> SimWorld:
    plan, _ = load_plan(_plan(tmp_path, **kw))
    return SimWorld(plan, compile_plan(plan), seed=3)


def test_the_world_answers_mirrored_copies_only_while_the_mirror_is_on(tmp_path: Path) -> None:
    world = _world(tmp_path)
    query = world.metrics.query
    assert asyncio.run(query("requests", "model", "2", 30.0, 30.0)) is None  # 0%, no mirror
    assert asyncio.run(query("prediction_agreement", "model", "2", 30.0, 30.0)) is None
    asyncio.run(world.mirror.set_mirror("model", None, 100.0))
    assert asyncio.run(world.mirror.get_mirror("model", None)) == 100.0
    assert asyncio.run(query("requests", "model", "2", 30.0, 60.0)) == 6000.0  # every request copied
    assert asyncio.run(query("requests", "model", "1", 30.0, 60.0)) == 6000.0  # and still all served by 1
    assert world.canary_fraction("model") == 0.0
    agreed = asyncio.run(query("prediction_agreement", "model", "2", 30.0, 60.0))
    assert agreed is not None and 0.96 < agreed < 0.995
    assert asyncio.run(query("prediction_agreement", "model", "1", 30.0, 60.0)) is None
    asyncio.run(world.mirror.set_mirror("model", None, 0.0))
    assert asyncio.run(query("requests", "model", "2", 30.0, 90.0)) is None


def test_shadow_disagreement_moves_agreement_not_the_histogram(tmp_path: Path) -> None:
    world = _world(tmp_path)
    asyncio.run(world.mirror.set_mirror("model", None, 100.0))
    before = asyncio.run(world.metrics.query("prediction_psi", "model", "2", 30.0, 60.0))
    asyncio.run(world.faults.inject({"kind": "shadow_disagreement", "service": "model", "value": 0.5}, 60.0))
    after = asyncio.run(world.metrics.query("prediction_psi", "model", "2", 30.0, 90.0))
    agreed = asyncio.run(world.metrics.query("prediction_agreement", "model", "2", 30.0, 90.0))
    assert before is not None and after is not None and before < 0.02 and after < 0.02
    assert agreed is not None and agreed < 0.65
    assert world.bad_rates()["model"] == 0.0  # nobody is served a mirrored answer


def test_agreement_is_near_one_for_equal_versions_and_falls_with_a_shift(tmp_path: Path) -> None:
    world = _world(tmp_path)
    old = world.version_model("model", "1")
    assert 0.97 < agreement(old, old) < 0.99
    shifted = world.version_model("model", "2")
    assert agreement(old, shifted, disagree=1.0) < 0.3
    drifted = _world(tmp_path, mean=0.5 + 2 * AGREEMENT_TOLERANCE).version_model("model", "2")
    assert agreement(old, drifted) < 0.01


def test_a_mirrored_lockstep_consumer_reads_the_mirrored_producer(tmp_path: Path) -> None:
    plan, source = load_plan(PREFLIGHT)
    world = SimWorld(plan, compile_plan(plan, source), seed=1)
    asyncio.run(world.flags.set_rollout("features-v32", 100.0, "features"))
    asyncio.run(world.mirror.set_mirror("ranker", None, 100.0))
    # The new ranker reads embeddings 3 only: copies through the old embedder cross contracts.
    assert world.version_model("ranker", "new").incompatible == 1.0
    asyncio.run(world.mirror.set_mirror("embedder", "embedder", 100.0))
    assert world.version_model("ranker", "new").incompatible == 0.0
    assert world.version_model("ranker", "old").incompatible == 0.0
    assert world.bad_rates()["ranker"] == 0.0


def test_the_worlds_mirror_survives_a_restart(tmp_path: Path) -> None:
    plan, _ = load_plan(_plan(tmp_path))
    graph = compile_plan(plan)
    state = tmp_path / "world.json"
    world = SimWorld(plan, graph, seed=1, state_path=state)
    asyncio.run(world.mirror.set_mirror("model", None, 100.0))
    assert SimWorld(plan, graph, seed=1, state_path=state).mirror_fraction("model") == 1.0
    world.save()
    assert SimWorld(plan, graph, seed=1, state_path=state).mirror_fraction("model") == 1.0


def test_plan_shows_which_services_shadow_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(PREFLIGHT)]) == 0
    lines = capsys.readouterr().out.splitlines()
    ranker = next(line for line in lines if line.strip().startswith("ranker "))
    assert ranker.endswith("shadow 10m00s first (0% of users)")
    assert not next(line for line in lines if "features " in line).endswith("(0% of users)")


def test_the_preflight_example_validates_and_completes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(PREFLIGHT)]) == 0
    code, lines = _run(PREFLIGHT, tmp_path, capsys)
    assert code == 0
    summary = lines[-1]["summary"]
    assert summary["phase"] == "completed"
    shadowed = {e["service"] for e in lines if e.get("kind") == "mirror_applied"}
    assert shadowed == {"embedder", "ranker"}
    # pre-flight checks and hooks, then the shadow, then the first user
    checks = [i for i, e in enumerate(lines) if e.get("kind") == "check_finished"]
    mirror_on = next(i for i, e in enumerate(lines) if e.get("kind") == "mirror_applied")
    exposed = next(i for i, e in enumerate(lines) if e.get("kind") == "exposure_applied"
                   and e["service"] == "ranker" and e["percent"] > 0)
    assert len(checks) == 3 and all(lines[i]["passed"] for i in checks)
    assert max(checks) < mirror_on < exposed


def test_a_gap_in_the_shadows_measurements_starts_its_time_over(tmp_path: Path) -> None:
    from core.coverage import measurement_gaps

    plan, _ = load_plan(_plan(tmp_path))
    graph = compile_plan(plan)
    state, _ = _drive(initial_state(plan, graph), SimWorld(plan, graph, seed=1),
                      until=lambda s: s.groups[0].phase == "shadowing" and s.groups[0].bake_until is not None)
    started = state.groups[0].bake_until
    assert started is not None
    frozen = state.at + 400.0  # the driver stood still: nobody measured the shadow
    gaps = measurement_gaps(state, frozen)
    assert [g.service for g in gaps] == ["model"]
    state, _ = reduce(state, gaps[0])
    assert state.groups[0].phase == "shadowing"
    assert state.groups[0].bake_until == frozen + 180.0  # the whole 3m again, from now
    assert "the shadow starts over" in state.groups[0].reason


@pytest.mark.parametrize("mean, code", [(0.5, 0), (0.8, 1)])
def test_a_js_drift_gate_compares_the_two_outputs_in_shadow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mean: float, code: int
) -> None:
    path = _plan(tmp_path, mean=mean)
    text = path.read_text(encoding="utf-8").replace(
        "agreement: {metric: prediction_agreement, min: 0.9, interval: 30s}",
        "agreement: {metric: prediction, judge: drift, divergence: js, max: 0.05, interval: 30s}",
    )
    path.write_text(text, encoding="utf-8")
    got, lines = _run(path, tmp_path, capsys)
    assert got == code
    judged = [e for e in lines if e.get("kind") == "measured" and e["gate"] == "agreement"]
    assert judged and all(e["canary_data"] and e["baseline_data"] for e in judged)  # two histograms, at 0%
    if code:  # caught in shadow: nobody ever saw the drifted model
        assert lines[-1]["summary"]["services"]["model"] == {"phase": "failed", "exposure": 0.0}
        assert not [e for e in lines if e.get("kind") == "exposure_applied" and e["percent"] > 0]
