"""Pre-flight checks and hooks in the reducer (issue 14 points 1-2), with the fake answers
of `tests.helpers.Driver`: the phase before the first exposure, confirm-* waits, and that
a failing check never exposes its service."""

from __future__ import annotations

from typing import Any

import pytest

from core.commands import Probe, SetExposure
from core.events import CheckFinished, OperatorAction
from core.state import RolloutState
from tests.helpers import Driver, design_plan, design_services, replay

READY = "http://127.0.0.1:8080/v2/models/ranker/ready"


def _plan(*, policy: dict[str, Any] | None = None, ranker: dict[str, Any] | None = None,
          rollout_hooks: dict[str, Any] | None = None) -> dict[str, Any]:
    services = design_services()
    services["ranker"].update(ranker if ranker is not None else {
        "preflight": [
            {"http": {"url": READY, "status": 200, "timeout": "5s"}},
            {"run": {"argv": ["pytest", "-q", "tests/contract"], "timeout": "2m", "retries": 1}},
        ],
    })
    doc = design_plan(services=services, policy=policy, default_gates=[])
    if rollout_hooks is not None:
        doc["hooks"] = rollout_hooks
    return doc


def _fail_ready(cmd: Probe, _state: RolloutState) -> tuple[bool, str]:
    return (False, "HTTP 503, expected 200") if cmd.url == READY else (True, "HTTP 200")


def _never_exposed(driver: Driver, *names: str) -> None:
    """Not one event left any of `names` with exposure or a target above 0%."""
    state = driver.initial
    for event in driver.events:
        state, cmds = _step(state, event)
        for name in names:
            assert state.services[name].exposure == 0.0 and state.services[name].target == 0.0, (event, name)
        assert not any(isinstance(c, SetExposure) and c.service in names and c.percent > 0 for c in cmds)


def _step(state: RolloutState, event: Any) -> tuple[RolloutState, list[Any]]:
    from core.reducer import reduce

    return reduce(state, event)


def test_checks_run_before_any_of_the_lockstep_group_moves() -> None:
    driver = Driver(_plan())
    driver.start()
    final = driver.run()
    assert final.phase == "completed"
    order = [c for c in driver.commands if isinstance(c, (Probe, SetExposure)) and c.service in ("embedder", "ranker")]
    probes = [i for i, c in enumerate(order) if isinstance(c, Probe)]
    first_move = next(i for i, c in enumerate(order) if isinstance(c, SetExposure))
    assert [c.name for c in order if isinstance(c, Probe)] == [f"pre-flight http {READY}", "pre-flight run pytest -q tests/contract"]
    assert max(probes) < first_move  # both checks answered before embedder or ranker got a user
    run = next(c for c in order if isinstance(c, Probe) and c.kind == "run")
    assert run.argv == ("pytest", "-q", "tests/contract") and run.timeout == 120.0 and run.retries == 1
    assert replay(driver.initial, driver.events) == final


def test_a_failing_check_keeps_its_group_at_zero_and_follows_on_failure() -> None:
    driver = Driver(_plan())
    driver.probe = _fail_ready
    driver.start()
    final = driver.run()
    assert final.phase == "rolled_back"
    assert final.reason == f"pre-flight http {READY} on ranker failed: HTTP 503, expected 200"
    assert final.groups[final.group_of("ranker")].phase == "failed"
    assert final.services["features"].exposure == 100.0  # before it in the order: stays
    assert final.services["api"].exposure == 0.0
    _never_exposed(driver, "embedder", "ranker", "api")
    assert not any(isinstance(c, Probe) and c.kind == "run" for c in driver.commands)  # stops at the first failure


def test_pause_on_failure_then_resume_runs_every_check_again() -> None:
    driver = Driver(_plan(policy={"on_failure": "pause"}))
    driver.probe = _fail_ready
    driver.start()
    state = driver.run()
    assert state.phase == "paused" and "pre-flight http" in state.reason
    _never_exposed(driver, "embedder", "ranker")
    driver.probe = lambda cmd, s: (True, "HTTP 200")
    asked = len([c for c in driver.commands if isinstance(c, Probe)])
    driver.op("resume")
    final = driver.run()
    assert final.phase == "completed"
    again = [c.name for c in driver.commands if isinstance(c, Probe)][asked:]
    assert again == [f"pre-flight http {READY}", "pre-flight run pytest -q tests/contract"]


def test_pre_rollout_hook_failing_is_a_failed_check() -> None:
    driver = Driver(_plan(ranker={"hooks": {"pre-rollout": {"url": "http://127.0.0.1:9000/pre"}}}))
    driver.probe = lambda cmd, s: (False, "HTTP 500, expected 2xx")
    driver.start()
    final = driver.run()
    assert final.phase == "rolled_back"
    assert final.reason == "hook pre-rollout on ranker failed: HTTP 500, expected 2xx"
    _never_exposed(driver, "embedder", "ranker")


@pytest.mark.parametrize("hook", ["confirm-promotion", "confirm-traffic-increase", "confirm-rollout"])
def test_confirm_hooks_keep_waiting_and_are_asked_each_interval(hook: str) -> None:
    driver = Driver(_plan(ranker={"hooks": {hook: {"url": "http://127.0.0.1:9000/ok", "interval": "20s"}}}))
    refusals = 3
    asked_at: list[float] = []

    def answer(cmd: Probe, state: RolloutState) -> tuple[bool, str]:
        asked_at.append(driver.now)
        return (len(asked_at) > refusals, "HTTP 403, expected 2xx" if len(asked_at) <= refusals else "HTTP 200")

    driver.probe = answer
    driver.start()
    waiting = driver.run(until=lambda s: len(asked_at) == 2)
    group = waiting.groups[waiting.group_of("ranker")]
    assert group.phase == ("preparing" if hook == "confirm-rollout" else "confirming")
    assert group.reason == f"waiting for {hook} on ranker: HTTP 403, expected 2xx"
    exposure = waiting.services["ranker"].exposure
    final = driver.run()
    assert final.phase == "completed"
    assert [b - a for a, b in zip(asked_at, asked_at[1:])][:refusals] == [20.0] * refusals
    # Asked once more per transition it guards: before 50% and before 100% for traffic increases.
    assert len(asked_at) == refusals + (2 if hook == "confirm-traffic-increase" else 1)
    if hook == "confirm-rollout":
        assert exposure == 0.0
    # The wait held the exposure where it was: nothing moved while the hook said no.
    moves = [e.at for e in driver.events if hasattr(e, "percent") and getattr(e, "service", "") == "ranker"]
    assert not any(asked_at[0] < at < asked_at[refusals] for at in moves)


def test_hook_payload_names_rollout_service_stage_and_phase() -> None:
    driver = Driver(_plan(ranker={"hooks": {"confirm-promotion": {"url": "http://127.0.0.1:9000/ok",
                                                                  "metadata": {"ticket": "CHG-1"}}}}))
    driver.start()
    driver.run()
    hook = next(c for c in driver.commands if isinstance(c, Probe) and c.kind == "hook")
    assert dict(hook.payload) == {
        "name": "ranker", "namespace": "design", "type": "confirm-promotion", "phase": "confirming",
        "rollout": "design", "service": "ranker", "stage": 100.0, "next_stage": None,
        "from_version": "5.0", "to_version": "6.0", "metadata": {"ticket": "CHG-1"},
    }


def test_rollout_level_hooks_apply_to_every_service() -> None:
    driver = Driver(_plan(ranker={}, rollout_hooks={"pre-rollout": {"url": "http://127.0.0.1:9000/pre"}}))
    driver.start()
    assert driver.run().phase == "completed"
    called = sorted(c.service for c in driver.commands if isinstance(c, Probe))
    assert called == ["api", "embedder", "features", "ranker"]


def test_check_answers_are_journaled_with_their_output() -> None:
    driver = Driver(_plan())
    driver.probe = lambda cmd, s: (True, "exit 0" if cmd.kind == "run" else "HTTP 200")
    driver.start()
    driver.run()
    finished = [e for e in driver.events if isinstance(e, CheckFinished)]
    assert [(e.service, e.check, e.passed) for e in finished] == [
        ("ranker", f"pre-flight http {READY}", True), ("ranker", "pre-flight run pytest -q tests/contract", True),
    ]
    assert CheckFinished(**{k: v for k, v in finished[0].to_dict().items() if k != "kind"}) == finished[0]


def test_break_glass_promote_moves_past_a_refusing_confirm_hook() -> None:
    driver = Driver(_plan(ranker={"hooks": {"confirm-promotion": {"url": "http://127.0.0.1:9000/ok"}}}))
    driver.probe = lambda cmd, s: (False, "HTTP 403, expected 2xx")
    driver.start()
    waiting = driver.run(until=lambda s: s.groups[s.group_of("ranker")].phase == "confirming")
    assert waiting.groups[waiting.group_of("ranker")].phase == "confirming"
    driver.feed(OperatorAction(at=driver.now, action="promote", service="ranker", operator="ana", reason="CAB ok"))
    assert driver.group_phase("ranker") == "promoted"
    assert driver.run().phase == "completed"


def _hook_calls(driver: Driver, name: str) -> list[Probe]:
    return [c for c in driver.commands if isinstance(c, Probe) and c.name == f"hook {name}"]


def test_event_hooks_hear_every_phase_change_and_never_block() -> None:
    plain = Driver(_plan(ranker={}))
    plain.start()
    plain.run()
    driver = Driver(_plan(ranker={"hooks": {"event": {"url": "http://127.0.0.1:9000/events"}}},
                          rollout_hooks={"event": {"url": "http://127.0.0.1:9000/all"}}))
    driver.probe = lambda cmd, s: (False, "timed out after 10s")  # a dead receiver
    driver.start()
    final = driver.run()
    assert final.phase == "completed"
    moves = lambda d: [(e.at, e.service, e.percent) for e in d.events if type(e).__name__ == "ExposureApplied"]  # noqa: E731
    assert moves(driver) == moves(plain)  # not one exposure moved later
    calls = _hook_calls(driver, "event")
    own = [c.payload["metadata"]["eventMessage"] for c in calls if c.url.endswith("/events")]
    assert own[0] == "ranker progressing" and own[-1] == "ranker promoted"
    rollout = [c.payload for c in calls if c.service == ""]
    assert [p["phase"] for p in rollout] == ["running", "completed"]
    assert {c.service for c in calls if c.url.endswith("/all")} == {"", "features", "embedder", "ranker", "api"}


def test_post_rollout_hooks_after_a_service_ends_and_once_for_the_rollout() -> None:
    driver = Driver(_plan(ranker={"hooks": {"post-rollout": {"url": "http://127.0.0.1:9000/post"}}},
                          rollout_hooks={"post-rollout": {"url": "http://127.0.0.1:9000/done"}}))
    driver.start()
    assert driver.run().phase == "completed"
    calls = _hook_calls(driver, "post-rollout")
    assert [(c.service, c.payload["phase"], c.url[-5:]) for c in calls] == [
        ("ranker", "promoted", "/post"), ("", "completed", "/done")]


def test_a_rollback_hook_answering_2xx_rolls_its_service_back() -> None:
    driver = Driver(_plan(ranker={"hooks": {"rollback": {"url": "http://127.0.0.1:9000/abort", "interval": "20s"}}}))
    answers = iter([False, False, True])
    driver.probe = lambda cmd, s: ((True, "HTTP 200") if cmd.name != "hook rollback"
                                   else ((True, "HTTP 200") if next(answers) else (False, "HTTP 404, expected 2xx")))
    driver.start()
    final = driver.run()
    calls = _hook_calls(driver, "rollback")
    assert len(calls) == 3
    first_exposure = next(e.at for e in driver.events if getattr(e, "service", "") == "ranker" and getattr(e, "percent", 0) > 0)
    asked = [at for at in (next(e.at for e in driver.events if getattr(e, "cmd_id", -1) == c.cmd_id) for c in calls)]
    assert asked == [first_exposure + 20.0, first_exposure + 40.0, first_exposure + 60.0]
    assert final.phase == "rolled_back"
    assert final.reason == "hook rollback on ranker answered HTTP 200: roll back"
    assert final.services["ranker"].exposure == 0.0 and final.services["embedder"].exposure == 0.0


def test_the_headless_lines_name_the_check_and_the_wait() -> None:
    from tui.printer import describe, phase_line

    driver = Driver(_plan(ranker={"preflight": [{"http": {"url": READY}}],
                                  "hooks": {"confirm-promotion": {"url": "http://127.0.0.1:9000/ok", "interval": "1m"}}}))
    driver.probe = lambda cmd, s: (False, "HTTP 403, expected 2xx") if cmd.kind == "hook" else (True, "HTTP 200")
    driver.start()
    driver.run(until=lambda s: s.groups[s.group_of("ranker")].phase == "confirming" and s.at > 0
               and sum(isinstance(e, CheckFinished) for e in driver.events) >= 3)
    lines: list[str] = []
    before = driver.initial
    for event in driver.events:
        after, _ = _step(before, event)
        for line in (describe(event, after, before), phase_line(before, after)):
            if line:
                lines.append(line)
        before = after
    assert f"ranker: pre-flight http {READY} ✓ HTTP 200" in lines
    assert "ranker: hook confirm-promotion ✗ HTTP 403, expected 2xx; asked again in 1m00s" in lines
    assert any("ranker confirming (waiting for confirm-promotion on ranker)" in line for line in lines)


def test_a_check_is_named_without_the_secrets_in_its_url() -> None:
    url = "http://ops:hunter2@127.0.0.1:8080/ready?access_token=abc123&x=1"
    driver = Driver(_plan(ranker={"preflight": [{"http": {"url": url}}]}))
    driver.probe = lambda cmd, s: (False, "HTTP 503, expected 200")
    driver.start()
    final = driver.run()
    named = [e.check for e in driver.events if isinstance(e, CheckFinished)]
    assert named == ["pre-flight http http://ops:***@127.0.0.1:8080/ready?access_token=***&x=1"]
    assert "hunter2" not in final.reason and "abc123" not in final.reason
