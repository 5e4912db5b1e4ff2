"""A shadow's mirror is read back like a flag (issue 14 point 3 meets issue 11).

The journal says a shadowed service's mirror is on while its group shadows and off
otherwise. The periodic read-back, the read after a restart and a fresh run's pre-flight
read compare the mirror the mirroring side reports (`mirror:SERVICE`) with that: a
difference holds the rollout (or refuses the run) with the mirror named, expected and
found, and the operator's `resume` sends the journal's mirror again. An abandoned run's
mirror is its own doing: the abandon turns it off, journaled in that run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from helpers import Driver, independent_plan
from test_preflight import Flags, kinds, run, serve  # the preflight tests' real HTTP flag service

from adapters.journals import open_journal
from adapters.sim.world import SimWorld
from core.commands import ReadExposure, SetExposure, SetMirror
from core.events import Abandoned, Adopted, ExposureRead, MirrorApplied
from core.order import compile_plan
from core.planload import load_plan
from core.ports import TargetReading
from core.preflight import Found, judge
from core.reducer import reduce
from tui.cli.main import EXIT_OK, EXIT_REFUSED, main
from tui.session import runtime

# --- the comparison and the hold (the reducer) ----------------------------------------


def shadowing(readback: float = 10.0) -> Driver:
    doc = independent_plan("a", stages=[10, 100], bake=60)
    doc["policy"]["readback"] = readback
    doc["services"]["a"]["exposure"] = {"flag": "a-flag"}
    doc["services"]["a"]["shadow"] = {"duration": 120, "side_effect_free": True, "gates": []}
    d = Driver(doc)
    (on,) = d.start()
    assert isinstance(on, SetMirror) and on.percent == 100.0
    d.feed(MirrorApplied(at=d.now, cmd_id=on.cmd_id, service="a", percent=100.0))
    return d


def read(d: Driver, at: float) -> ReadExposure:
    reads = [c for c in d.tick(at) if isinstance(c, ReadExposure)]
    assert len(reads) == 1, "a shadowing service is read back though nobody is exposed"
    return reads[0]


def answer(d: Driver, cmd: ReadExposure, flag: float, mirror: float, cmd_id: int | None = None) -> list[Any]:
    return d.feed(ExposureRead(at=d.now, cmd_id=cmd.cmd_id if cmd_id is None else cmd_id, exposures={"a": flag},
                               targets={"flag:a-flag": flag, "mirror:a": mirror}))


def test_a_shadowing_mirror_is_read_back_and_agreement_goes_on() -> None:
    d = shadowing()
    cmd = read(d, 10.0)
    assert cmd.services == ("a",)
    answer(d, cmd, 0.0, 100.0)
    assert d.state.hold is None and d.state.readback_at == 20.0
    assert d.state.groups[0].phase == "shadowing"


def test_a_mirror_turned_off_while_shadowing_holds_and_resume_sends_it_again() -> None:
    d = shadowing()
    answer(d, read(d, 10.0), 0.0, 0.0)
    assert d.state.effective_phase == "held"
    assert d.state.hold.differences == (("mirror:a", 100.0, 0.0),)
    assert "mirror a reads 0% (journal 100%)" in d.state.hold.reason
    cmds = d.op("resume")
    assert [(type(c), c.percent) for c in cmds] == [(SetExposure, 0.0), (SetMirror, 100.0)]
    mirror = next(c for c in cmds if isinstance(c, SetMirror))
    d.ack(cmds[0])
    (again,) = d.feed(MirrorApplied(at=d.now, cmd_id=mirror.cmd_id, service="a", percent=100.0))
    answer(d, again, 0.0, 100.0)
    assert d.state.effective_phase == "running" and d.state.hold is None


def test_a_mirror_left_on_after_the_shadow_holds() -> None:
    d = shadowing()
    for _ in range(40):  # the shadow ends: the mirror goes off, stage 1 starts
        cmds = d.tick(d.now + 10.0)
        for c in cmds:
            if isinstance(c, SetMirror):
                d.feed(MirrorApplied(at=d.now, cmd_id=c.cmd_id, service="a", percent=c.percent))
            elif isinstance(c, SetExposure):
                d.ack(c)
            elif isinstance(c, ReadExposure):
                answer(d, c, d.state.services["a"].exposure, d.state.services["a"].mirror)
        if d.state.services["a"].exposure == 10.0:
            break
    assert d.state.services["a"].mirror == 0.0 and d.state.hold is None
    answer(d, read(d, d.now + 10.0), 10.0, 100.0)  # someone turned the copies back on
    assert d.state.hold.differences == (("mirror:a", 0.0, 100.0),)


def test_a_read_taken_while_the_mirror_is_changing_is_no_difference() -> None:
    d = shadowing()
    cmd = read(d, 10.0)
    d.op("abort")  # the mirror's SetMirror(0) is in flight when the read answers
    assert any(isinstance(c, SetMirror) and c.percent == 0.0 for c in d.state.inflight.values())
    answer(d, cmd, 0.0, 100.0)
    assert d.state.hold is None


def test_after_a_restart_the_mirror_is_compared_with_the_journal() -> None:
    d = shadowing()
    answer(d, read(d, 10.0), 0.0, 0.0, cmd_id=0)  # the reconcile of a resumed run
    assert d.state.hold is not None and d.state.hold.differences == (("mirror:a", 100.0, 0.0),)


def test_an_adopted_mirror_is_the_journals_and_goes_off_when_its_group_does_not_shadow() -> None:
    doc = independent_plan("a", stages=[10, 100], bake=60)
    doc["services"]["a"]["exposure"] = {"flag": "a-flag"}
    doc["services"]["a"]["shadow"] = {"duration": 120, "side_effect_free": True, "gates": []}
    d = Driver(doc)
    d.feed(Adopted(at=0.0, exposures={"a": 5.0}, targets={"flag:a-flag": 5.0, "mirror:a": 100.0},
                   operator="ana", reason="found so"))
    assert d.state.services["a"].mirror == 100.0
    cmds = d.start()
    assert [(type(c), c.percent) for c in cmds] == [(SetMirror, 0.0), (SetExposure, 10.0)]


def test_a_mirror_turned_off_by_an_abandon_replays_off() -> None:
    d = shadowing()
    d.feed(Abandoned(at=d.now, operator="ana", reason="gone", by_run="r2"))
    d.feed(MirrorApplied(at=d.now, service="a", percent=0.0))
    assert d.state.phase == "aborted" and d.state.services["a"].mirror == 0.0
    state = d.initial
    for event in d.events:
        state, _ = reduce(state, event)
    assert state == d.state


# --- the pre-flight read (core.preflight) -------------------------------------------------


def found(target: str, percent: float, service: str = "m") -> Found:
    return Found(service, target, TargetReading(percent))


def test_a_mirror_found_on_refuses_and_adopt_takes_it() -> None:
    items = [found("flag:m-v2", 0.0), found("mirror:m", 100.0)]
    report = judge(items, run_id="r", finished_runs=())
    assert report.refusals == ("mirror m: found on (100% of its requests copied to the new version), the plan starts "
                               "with it off; turn it off, or start from it with --adopt --reason TEXT",)
    adopted = judge(items, run_id="r", finished_runs=(), adopt=True)
    assert adopted.refusals == () and adopted.targets["mirror:m"] == 100.0 and dict(adopted.adopted) == {}
    assert judge(items, run_id="r", finished_runs=(), ours=("mirror:m",)).refusals == ()
    assert judge([found("mirror:m", 0.0)], run_id="r", finished_runs=()).refusals == ()


# --- the command line, against a real HTTP flag service and mirror ------------------------


class World(Flags):
    def __init__(self) -> None:
        super().__init__()
        self.mirrors: dict[str, float] = {}
        self.mirror_puts: list[tuple[str, float]] = []


def serve_mirror(world: World) -> Any:
    """`GET/PUT /mirror`, as `interlock sim serve`'s admin API answers it (`adapters.sim_mirror`)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"mirrors": world.mirrors})

        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            world.mirrors[body["service"]] = float(body["percent"])
            world.mirror_puts.append((body["service"], float(body["percent"])))
            self._send({"mirrors": world.mirrors})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


@pytest.fixture
def mirrored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    world = World()
    servers = [serve(world), serve_mirror(world)]
    monkeypatch.setenv("PREFLIGHT_FLAGS_TOKEN", "preflight-token-7")
    monkeypatch.setenv("INTERLOCK_OPERATOR", "ana")
    flags, mirror = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    path = tmp_path / "shadowed.yaml"
    path.write_text(
        "rollout: shadowed\nenvironment:\n"
        f"  flags: {{kind: http, url: '{flags}', token_env: PREFLIGHT_FLAGS_TOKEN}}\n"
        f"  mirror: {{kind: sim_serve, url: '{mirror}'}}\n"
        "defaults: {stages: [50, 100], bake: 10s, gates: []}\n"
        "services:\n"
        "  a:\n    from: {version: '1'}\n    to: {version: '2'}\n    exposure: {flag: a-v2}\n"
        "    shadow: {duration: 1h, side_effect_free: true, gates: []}\n",
        encoding="utf-8",
    )
    try:
        yield world, path
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_a_fresh_run_refuses_a_mirror_found_on(mirrored: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world, path = mirrored
    world.mirrors["a"] = 100.0
    journal = tmp_path / "j.db"
    assert run(path, "--journal", journal) == EXIT_REFUSED
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("interlock: refused: mirror a: found on (100% of its requests copied to the new version), the "
                      "plan starts with it off; turn it off, or start from it with --adopt --reason TEXT")
    assert err[1:] == ["interlock: nothing was changed and nothing was journaled"]
    assert world.puts == [] and world.mirror_puts == [], "nothing was set"
    with open_journal(journal) as j:
        assert j.runs() == [], "nothing was journaled"
    assert run(path, "--journal", journal, "--adopt", "--reason", "an old shadow") == EXIT_OK
    with open_journal(journal) as j:
        (info,) = j.runs()
    adopted = [e for e in kinds(journal, info.run_id) if isinstance(e, Adopted)]
    assert adopted and adopted[0].targets["mirror:a"] == 100.0


def _abandoned_while_shadowing(path: Path, journal: Path) -> str:
    """A run stopped while its group shadows (its mirror on), with no live driver."""
    session = runtime.start_run(path, journal_path=journal)

    def stop(state: Any, events: Any) -> None:
        if any(isinstance(e, MirrorApplied) and e.percent == 100.0 for e in events):
            session.engine.stop()

    async def drive() -> None:
        try:
            await session.engine.run()
        finally:
            await session.aclose()

    session.engine.subscribe(stop)
    asyncio.run(drive())
    session.journal.close()
    return session.info.run_id


def test_abandon_turns_the_abandoned_runs_mirror_off_journaled(
    mirrored: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world, path = mirrored
    journal = tmp_path / "j.db"
    old = _abandoned_while_shadowing(path, journal)
    assert world.mirrors == {"a": 100.0}
    capsys.readouterr()
    assert run(path, "--journal", journal) == 8  # unfinished: refused, nothing turned off
    assert world.mirrors == {"a": 100.0}
    assert run(path, "--journal", journal, "--abandon", old, "--reason", "its laptop died") == EXIT_OK
    assert f"interlock: run {old} had left the mirror of a on: turned off (journaled in that run)" in \
        capsys.readouterr().err
    assert world.mirror_puts[1] == ("a", 0.0)  # turned off before the new run's own shadow
    events = kinds(journal, old)
    assert isinstance(events[-2], Abandoned)
    assert isinstance(events[-1], MirrorApplied) and (events[-1].service, events[-1].percent) == ("a", 0.0)
    assert world.mirrors == {"a": 0.0}, "the new run's shadow ended with its mirror off"


# --- the simulated world: a resume with a mirror changed behind interlock's back ------------


SIM_PLAN = """\
rollout: sim-shadow
defaults: {stages: [10, 100], bake: 2m, gates: []}
services:
  model:
    from: {version: "1"}
    to: {version: "2"}
    shadow: {duration: 1h, side_effect_free: true, gates: []}
"""


def test_a_resumed_run_holds_when_the_sim_worlds_mirror_was_turned_off_behind_its_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, journal = tmp_path / "plan.yaml", tmp_path / "j.db"
    path.write_text(SIM_PLAN, encoding="utf-8")
    run_id = _abandoned_while_shadowing(path, journal)
    plan, _ = load_plan(path)
    world = SimWorld(plan, compile_plan(plan), seed=0, state_path=tmp_path / f"{run_id}.sim.json")
    assert asyncio.run(world.mirror.get_mirror("model", None)) == 100.0
    asyncio.run(world.mirror.set_mirror("model", None, 0.0))  # a person, not interlock

    capsys.readouterr()
    code = main(["resume", "--headless", "--journal", str(journal)])
    out = capsys.readouterr().out
    assert code == 3, out  # held: still going
    assert "mirror model reads 0% (journal 100%)" in out
    session = runtime.resume_run(journal_path=journal, run_id=run_id)
    try:
        assert session.engine.state.hold is not None
        assert session.engine.state.hold.differences == (("mirror:model", 100.0, 0.0),)
        assert all(s.exposure == 0 for s in session.engine.state.services.values()), "nobody was exposed"
    finally:
        session.journal.close()
