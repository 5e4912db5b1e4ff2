"""Steering a rollout from another terminal (issue 13 points 2-3), on both journal backends:
a driver process runs `interlock run ... --headless`, and `interlock pause | resume | approve
| promote | rollback | abort` from this process reach it through the journal, with the
exit codes the README gives (0 applied, 1 refused, 4 no live driver)."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pgtools import Backend

from adapters.journals import open_requests
from core import Answer, OperatorAction, Request, RolloutState
from tui.cli.main import main
from tui.session import runtime

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "recsys.yaml"
DRIVER = "import sys; from tui.cli.main import main; sys.exit(main(sys.argv[1:]))"


def _approval_plan(tmp_path: Path) -> Path:
    plan = tmp_path / "approve.yaml"
    plan.write_text(EXAMPLE.read_text().replace("approval: none ", "approval: each_stage "))
    return plan


def _state(backend: Backend) -> tuple[str, RolloutState]:
    with backend.open(readonly=True) as journal:
        info = journal.runs()[-1]
        return info.run_id, runtime.replay(journal, info).state


def _wait(backend: Backend, ready: Callable[[RolloutState], bool], driver: subprocess.Popen[str] | None = None) -> str:
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the driver never got there"
        assert driver is None or driver.poll() is None, "the driver ended"
        try:
            run_id, state = _state(backend)
            with backend.open(readonly=True) as journal:
                live = bool(journal.driver(run_id))
            if live and ready(state):
                return run_id
        except Exception:  # noqa: BLE001 - no journal or run yet
            pass
        time.sleep(0.05)


def _operator_events(backend: Backend) -> list[OperatorAction]:
    with backend.open(readonly=True) as journal:
        info = journal.runs()[-1]
        return [r.event for r in journal.records(info.run_id) if isinstance(r.event, OperatorAction)]


def _ask(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def _awaits(service: str, stage: int) -> Callable[[RolloutState], bool]:
    def ready(state: RolloutState) -> bool:
        group = state.groups[state.group_of(service)]
        return group.phase == "awaiting_approval" and group.stage == stage
    return ready


def test_a_second_terminal_pauses_approves_promotes_and_rolls_back_a_live_driver(
    backend: Backend, processes: Callable[..., subprocess.Popen[str]], capsys: pytest.CaptureFixture[str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTERLOCK_OPERATOR", "alice")
    j = ("--journal", backend.spec)
    driver = processes(DRIVER, "run", str(_approval_plan(tmp_path)), "--headless", "--speed", "600", *j,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_id = _wait(backend, _awaits("features", 0), driver)

    code, out, _ = _ask(capsys, "pause", "--reason", "checking the dashboards", *j)
    assert code == 0 and out.startswith(f"paused run {run_id}") and f"{backend.person('alice')}@" in out
    code, _, err = _ask(capsys, "pause", *j)
    assert (code, err) == (1, "interlock: refused: nothing to pause or resume: the rollout is paused")
    code, _, err = _ask(capsys, "rollback", "ranker", *j)
    assert code == 1 and "nothing to roll back: ranker and what follows it have not moved" in err
    code, out, _ = _ask(capsys, "approve", "features", *j)
    assert code == 0 and out.startswith("approved features")
    code, out, _ = _ask(capsys, "resume", *j)  # a live driver: resume is a request to it
    assert code == 0 and out.startswith(f"resumed run {run_id}")

    _wait(backend, _awaits("features", 1), driver)
    code, _, err = _ask(capsys, "promote", "features", *j)
    assert code == 2 and "needs --reason" in err  # bad input: nothing was sent
    code, out, _ = _ask(capsys, "promote", "features", "--reason", "hotfix for incident 7", *j)
    assert code == 0 and "promoted features: its bake ended, now going to 25%" in out
    _wait(backend, lambda s: s.services["features"].exposure == 25.0, driver)
    code, out, _ = _ask(capsys, "promote", "features", "--full", "--reason", "every user now", *j)
    assert code == 0 and "now going to 100%" in out
    _wait(backend, lambda s: s.services["features"].exposure == 100.0, driver)

    code, out, _ = _ask(capsys, "rollback", "features", *j)  # no confirmation: it prints the cascade
    assert code == 0 and out.startswith("rolling back features: back to 0% in this order: features")
    assert driver.wait(timeout=60) == 1  # the driver saw the rollout roll back and ended
    code, _, err = _ask(capsys, "abort", *j)
    assert code == 4 and f"run {run_id} ended (rolled back)" in err

    ops = [(e.action, e.service, e.operator.split("@")[0], e.reason) for e in _operator_events(backend)]
    alice = backend.person("alice")  # on PostgreSQL the database role, whatever the variable says
    assert ops == [
        ("pause", None, alice, "checking the dashboards"), ("approve", "features", alice, ""),
        ("resume", None, alice, ""), ("promote", "features", alice, "hotfix for incident 7"),
        ("promote_full", "features", alice, "every user now"), ("rollback", "features", alice, ""),
    ]


def test_without_a_live_driver_a_request_says_how_to_resume(
    backend: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    j = ("--journal", backend.spec)
    assert main(["run", str(_approval_plan(tmp_path)), "--headless", *j]) == 3  # awaiting approval, nobody drives
    run_id, _ = _state(backend)
    capsys.readouterr()
    code, _, err = _ask(capsys, "approve", "features", *j)
    assert code == 4
    assert err == (f"interlock: no live driver for run {run_id} (running); "
                   f"`interlock resume --run {run_id}` drives it again, then ask again")
    code, _, err = _ask(capsys, "approve", "nosuch", *j)
    assert code == 2 and "'nosuch' is not a service that moves" in err
    assert [e for e in _operator_events(backend)] == []


def test_requests_are_idempotent_and_a_stale_one_is_never_applied(
    backend: Backend, tmp_path: Path,
) -> None:
    assert main(["run", str(_approval_plan(tmp_path)), "--headless", "--journal", backend.spec]) == 3
    with backend.open() as journal:
        run_id = journal.runs()[-1].run_id
        box = open_requests(journal)
        try:
            stale = Request(id="r-stale", run_id=run_id, action="pause", service=None, operator="bob@h")
            box.send(stale, ttl=0.05)
            time.sleep(0.2)  # its driver died: nobody took it in time
            assert box.take(run_id) == []  # a driver that comes later never applies it
            assert box.expire("r-stale") == Answer("expired", "no driver took it in time; it will never be applied")

            fresh = Request(id="r-1", run_id=run_id, action="pause", service=None, operator="bob@h")
            box.send(fresh, ttl=30)
            box.send(fresh, ttl=30)  # the same id again: still one request
            assert box.take(run_id) == [dataclasses.replace(fresh, operator=f"{backend.person('bob')}@h")]
            assert box.take(run_id) == []  # taken once, by one driver
            assert box.answer_of("r-1") is None
            box.reply("r-1", Answer("applied", "paused"))
            box.send(fresh, ttl=30)  # resent after its answer: the answer stands, nothing to take
            assert box.take(run_id) == [] and box.answer_of("r-1") == Answer("applied", "paused")
            assert box.expire("r-1") == Answer("applied", "paused")
        finally:
            box.close()


def test_a_driver_that_does_not_answer_leaves_the_request_expired(backend: Backend, tmp_path: Path) -> None:
    """A live lease whose holder never takes requests (hung, or an older interlock): the
    requester gives up after the request's lifetime, and the request can never be applied."""
    from tui.session.steering import ask

    assert main(["run", str(_approval_plan(tmp_path)), "--headless", "--journal", backend.spec]) == 3
    with backend.open() as journal:
        info = journal.runs()[-1]
        lease = journal.acquire_lease(info.run_id, "hung@box pid 9")
        try:
            asked = ask(journal, info, "pause", None, operator="bob@h", request_id="r-hung", ttl=0.3)
            box = open_requests(journal)
            try:
                assert box.take(info.run_id) == []  # too late for any driver
            finally:
                box.close()
        finally:
            lease.release()
    assert asked.driver == "hung@box pid 9"
    assert asked.answer == Answer("expired", "the driver (hung@box pid 9) did not take the request within 0.3 s; "
                                             "it expired and will never be applied")


def test_a_request_the_plans_governance_forbids_is_refused_naming_the_rule(
    backend: Backend, processes: Callable[..., subprocess.Popen[str]], capsys: pytest.CaptureFixture[str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver asks governance with the requester's identity (issue 13 points 2 and 4):
    who may not approve or promote hears the rule (exit 1); pause is never restricted."""
    monkeypatch.setenv("INTERLOCK_OPERATOR", "carol")
    carol = backend.person("carol")  # on PostgreSQL the database role, whatever the variable says
    plan = _approval_plan(tmp_path)
    plan.write_text(plan.read_text() + "governance:\n  groups: {release: [someone-else]}\n"
                    "  may: {approve: [release], promote: [release]}\n")
    j = ("--journal", backend.spec)
    driver = processes(DRIVER, "run", str(plan), "--headless", "--speed", "600", *j,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(backend, _awaits("features", 0), driver)
    code, _, err = _ask(capsys, "approve", "features", *j)
    assert (code, err) == (1, f"interlock: refused: approve needs group release: {carol} is in no group")
    code, _, err = _ask(capsys, "promote", "features", "--full", "--reason", "now", *j)
    assert (code, err) == (1, f"interlock: refused: promote --full needs group release: {carol} is in no group")
    code, out, _ = _ask(capsys, "pause", *j)  # never restricted
    assert code == 0 and out.startswith("paused run")
    assert [(e.action, e.operator.split("@")[0]) for e in _operator_events(backend)] == [("pause", carol)]
