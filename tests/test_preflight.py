"""Read before acting, one driver per target (issue 11, points 1 and 3).

A real HTTP flag service (the generic contract of `adapters.flags_http`, served on
127.0.0.1) stands for the world; `interlock run` is the command line in-process. A
fresh run reads every flag first and refuses, exit 7, one line per target and
nothing journaled, when one is not at 0%; `--adopt --reason` starts from what was
found, journaled. A rollout with an unfinished run is refused, exit 8, naming the run,
its driver and the commands that continue it; `--abandon` gives it up, journaled. Two
rollouts moving one flag are refused through the target's lease.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from adapters.journals import open_journal
from core.events import Abandoned, Adopted, RolloutStarted
from core.ports import RunInfo, TargetReading
from core.preflight import Found, judge
from tui.cli.main import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, EXIT_TAKEN, main

TOKEN = "preflight-token-7"


class Flags:
    def __init__(self) -> None:
        self.percent: dict[str, float] = {"a-v2": 0.0, "b-v2": 0.0}
        self.puts: list[tuple[str, float]] = []


def serve(flags: Flags) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _name(self) -> str | None:
            name = unquote(self.path.removeprefix("/flags/"))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}" or name not in flags.percent:
                self._send(404, {"error": "no"})
                return None
            return name

        def do_GET(self) -> None:
            name = self._name()
            if name is not None:
                self._send(200, {"percent": flags.percent[name]})

        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            name = self._name()
            if name is not None:
                flags.percent[name] = float(body["percent"])
                flags.puts.append((name, float(body["percent"])))
                self._send(204)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flags, str]]:
    flags = Flags()
    server = serve(flags)
    monkeypatch.setenv("PREFLIGHT_FLAGS_TOKEN", TOKEN)
    monkeypatch.setenv("INTERLOCK_OPERATOR", "ana")
    try:
        yield flags, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def plan(tmp: Path, url: str, rollout: str = "shared", services: str = "ab") -> Path:
    body = "".join(
        f"  {s}:\n    from: {{version: '1'}}\n    to: {{version: '2'}}\n    exposure: {{flag: {s}-v2}}\n"
        for s in services
    )
    path = tmp / f"{rollout}.yaml"
    path.write_text(
        f"rollout: {rollout}\nenvironment:\n  flags: {{kind: http, url: '{url}', token_env: PREFLIGHT_FLAGS_TOKEN}}\n"
        "defaults: {stages: [50, 100], bake: 10s, gates: []}\n"
        f"services:\n{body}",
        encoding="utf-8",
    )
    return path


def run(*args: str | Path) -> int:
    return main(["run", *map(str, args), "--headless"])


def kinds(journal: Path, run_id: str) -> list[object]:
    with open_journal(journal) as j:
        return [r.event for r in j.records(run_id)]


def test_a_flag_not_at_zero_refuses_the_run_before_anything_changes(world, tmp_path, capsys) -> None:
    flags, url = world
    flags.percent.update({"a-v2": 20.0, "b-v2": 100.0})
    journal = tmp_path / "j.db"
    assert run(plan(tmp_path, url), "--journal", journal) == EXIT_REFUSED
    err = capsys.readouterr().err.splitlines()
    assert "interlock: refused: flag a-v2 (a): found 20%, the plan starts at 0%; set it back, or start from it with --adopt --reason TEXT" in err
    assert any(line.startswith("interlock: refused: flag b-v2 (b): found 100%") for line in err)
    assert flags.puts == [], "nothing was set"
    with open_journal(journal) as j:
        assert j.runs() == [], "nothing was journaled"


def test_the_console_is_refused_the_same_way_before_it_opens(world, tmp_path, capsys, monkeypatch) -> None:
    flags, url = world
    flags.percent["b-v2"] = 5.0
    import tui.console.app

    def no_console(session):  # type: ignore[no-untyped-def]
        raise AssertionError("the console opened on a refused run")

    monkeypatch.setattr(tui.console.app, "run_console", no_console)
    journal = tmp_path / "j.db"
    assert main(["run", str(plan(tmp_path, url)), "--journal", str(journal)]) == EXIT_REFUSED
    assert "interlock: refused: flag b-v2 (b): found 5%, the plan starts at 0%" in capsys.readouterr().err
    assert flags.puts == []


def test_adopt_needs_a_reason(world, tmp_path) -> None:
    _, url = world
    assert run(plan(tmp_path, url), "--journal", tmp_path / "j.db", "--adopt") == EXIT_BAD_INPUT


def test_adopt_starts_from_what_was_found_and_journals_who_and_why(world, tmp_path) -> None:
    flags, url = world
    flags.percent["a-v2"] = 20.0
    journal = tmp_path / "j.db"
    assert run(plan(tmp_path, url), "--journal", journal, "--adopt", "--reason", "set by hand in the incident") == EXIT_OK
    with open_journal(journal) as j:
        (info,) = j.runs()
        records = list(j.records(info.run_id))
    adopted = records[0].event
    assert isinstance(adopted, Adopted) and isinstance(records[1].event, RolloutStarted)
    assert adopted.exposures == {"a": 20.0} and adopted.targets == {"flag:a-v2": 20.0, "flag:b-v2": 0.0}
    assert (adopted.operator.split("@")[0], adopted.reason, records[0].operator.split("@")[0]) == (
        "ana", "set by hand in the incident", "ana")
    assert [p for n, p in flags.puts if n == "a-v2"] == [50.0, 100.0], "a never went below what was found"


def unfinished(journal: Path, rollout: str = "shared") -> str:
    with open_journal(journal) as j:
        j.create_run(RunInfo("old-run", rollout, "p.yaml", (journal.parent / f"{rollout}.yaml").read_text(), 0,
                             "virtual", 1.0, "2026-01-01T00:00:00+00:00", "bo@desk"))
        j.append("old-run", [RolloutStarted(at=0.0, rollout=rollout)])
    return "old-run"


def test_a_rollout_with_an_unfinished_run_is_refused_naming_it_and_how_to_continue(world, tmp_path, capsys) -> None:
    _, url = world
    path, journal = plan(tmp_path, url), tmp_path / "j.db"
    old = unfinished(journal)
    assert run(path, "--journal", journal) == EXIT_TAKEN
    err = capsys.readouterr().err
    assert f"rollout shared has an unfinished run {old} (running, driver: no live driver)" in err
    assert f"`interlock resume --run {old}`" in err and f"`interlock watch --run {old}`" in err
    assert f"--abandon {old}" in err
    with open_journal(journal) as j:
        assert [r.run_id for r in j.runs()] == [old]


def test_the_refusal_names_a_live_driver(world, tmp_path, capsys) -> None:
    _, url = world
    path, journal = plan(tmp_path, url), tmp_path / "j.db"
    old = unfinished(journal)
    with open_journal(journal) as other:
        other.acquire_lease(old, "bo@desk pid 77")
        assert run(path, "--journal", journal) == EXIT_TAKEN
    assert "driver: bo@desk pid 77" in capsys.readouterr().err


def test_abandon_gives_the_old_run_up_journaled_and_starts_a_new_one(world, tmp_path) -> None:
    _, url = world
    path, journal = plan(tmp_path, url), tmp_path / "j.db"
    old = unfinished(journal)
    assert run(path, "--journal", journal, "--abandon", "nope", "--reason", "x") == EXIT_BAD_INPUT
    assert run(path, "--journal", journal, "--abandon", old) == EXIT_BAD_INPUT  # no reason
    assert run(path, "--journal", journal, "--abandon", old, "--reason", "its laptop died") == EXIT_OK
    with open_journal(journal) as j:
        new = [r.run_id for r in j.runs() if r.run_id != old]
        last = list(j.records(old))[-1]
    assert isinstance(last.event, Abandoned)
    assert (last.event.operator.split("@")[0], last.event.reason, last.event.by_run) == ("ana", "its laptop died", new[0])
    assert main(["resume", "--run", old, "--headless", "--journal", str(journal)]) == EXIT_BAD_INPUT  # it ended


def test_two_rollouts_moving_one_flag_are_refused(world, tmp_path, capsys) -> None:
    _, url = world
    journal = tmp_path / "j.db"
    first = plan(tmp_path, url, rollout="first", services="a")
    second = plan(tmp_path, url, rollout="second", services="ab")
    with open_journal(journal) as j:  # `first` is being driven: it holds its targets
        j.acquire_target_lease("flag:a-v2", "run first-1, bo@desk pid 9")
        assert run(second, "--journal", journal) == EXIT_TAKEN
        assert "interlock: flag a-v2 is moved by run first-1, bo@desk pid 9;" in capsys.readouterr().err
    assert run(first, "--journal", journal) == EXIT_OK  # free again once that driver is gone


def found(target: str, percent: float = 0.0, **reading: object) -> Found:
    return Found(target.split(":")[1][0], target, TargetReading(percent, **reading))  # type: ignore[arg-type]


def test_a_target_marked_by_a_run_this_journal_does_not_know_is_refused() -> None:
    exposed = [found("flag:a-v2", 20.0, owner="other-journal-run")]
    for adopt in (False, True):
        report = judge(exposed, run_id="me", finished_runs={"done"}, adopt=adopt)
        assert report.refusals == (
            "flag a-v2 (a): at 20% and marked by run other-journal-run, which is not a finished run of this "
            "journal; another interlock drives it (finish or abandon that run first)",
        )
    assert judge([found("flag:a-v2", 20.0, owner="done")], run_id="me", finished_runs={"done"}, adopt=True).refusals == ()
    # At 0% another interlock may be about to move it: refused unless the operator takes it over on the record.
    left = judge([found("flag:a-v2", owner="other-journal-run")], run_id="me", finished_runs={"done"})
    assert left.refusals == (
        "flag a-v2 (a): last moved by run other-journal-run, which this journal does not know; "
        "if that interlock has finished, take the target over with --adopt --reason TEXT",)
    taken = judge([found("flag:a-v2", owner="other-journal-run")], run_id="me", finished_runs={"done"}, adopt=True)
    assert taken.refusals == () and taken.warnings == (
        "flag a-v2 (a): last moved by run other-journal-run, which this journal does not know",)
    assert judge([found("flag:a-v2", owner="other-journal-run")], run_id="me", finished_runs=(), adopt=True,
                 strict=True).refusals


def test_warnings_are_reported_and_refuse_only_with_strict() -> None:
    items = [found("flag:a-v2", warnings=("strategy 'beta users' exposes users too",))]
    lenient = judge(items, run_id="me", finished_runs=())
    assert lenient.refusals == () and lenient.warnings == ("flag a-v2 (a): strategy 'beta users' exposes users too",)
    strict = judge(items, run_id="me", finished_runs=(), strict=True)
    assert strict.refusals == ("flag a-v2 (a): strategy 'beta users' exposes users too (refused with --strict)",)


def test_what_users_get_is_shown_and_adopt_refuses_targets_that_disagree() -> None:
    report = judge([found("flag:a-v2", 50.0, detail="50%, restricted by segment beta")], run_id="me", finished_runs=())
    assert "found 50% (50%, restricted by segment beta)" in report.refusals[0]
    split = judge([found("flag:a-v2", 20.0), found("route:a", 30.0)], run_id="me", finished_runs=(), adopt=True)
    assert split.refusals == ("a: its targets disagree (flag a-v2 20%, route a 30%); set them alike before --adopt",)


def test_a_run_with_a_live_driver_is_not_abandoned(world, tmp_path, capsys) -> None:
    _, url = world
    path, journal = plan(tmp_path, url), tmp_path / "j.db"
    old = unfinished(journal)
    with open_journal(journal) as other:
        other.acquire_lease(old, "bo@desk pid 77")
        assert run(path, "--journal", journal, "--abandon", old, "--reason", "x") == EXIT_TAKEN
    assert f"run {old} still has a live driver (bo@desk pid 77)" in capsys.readouterr().err
    with open_journal(journal) as j:
        assert [r.run_id for r in j.runs()] == [old]
        assert not any(isinstance(r.event, Abandoned) for r in j.records(old))
