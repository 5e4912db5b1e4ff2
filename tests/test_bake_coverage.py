"""Issue 18, point 5: bake needs measurement.

A real `interlock run --speed N` is frozen with SIGSTOP mid-bake and continued with
SIGCONT. Wall time kept passing, nobody measured: the run must journal a gap, start
that bake over, and raise exposure only after fresh measurements cover a whole bake
again. Before the fix, the stopped run woke thousands of simulated seconds later, took
one measurement and went to the next stage at once.

The reducer side (a gap restarts exactly one group's bake; shortcuts agree) is covered
here too, and by the property tests (tests/test_properties.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.coverage import GAP_INTERVALS, measurement_gaps
from core.events import Measured, MeasurementGap, RolloutStarted, Tick
from core.reducer import reduce, reduce_fully
from tests.helpers import build, design_plan, quiet_example

REPO = Path(__file__).resolve().parent.parent
SPEED = 300.0
STOPPED = 4.0
"""Wall seconds the process is stopped: 1,200 simulated seconds at SPEED, beyond the
engine's floor (3 wall seconds of jitter, so 900 simulated seconds) and 3 gate intervals."""
BAKE = 300.0


def _frozen_run(tmp_path: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli.main", "run", str(quiet_example(tmp_path)), "--headless", "--json", "--speed", str(SPEED),
         "--journal", str(tmp_path / "j.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    lines: list[dict] = []
    try:
        measured = 0
        for raw in proc.stdout:  # two measurements into the bake of features' second stage
            lines.append(json.loads(raw))
            if lines[-1].get("kind") == "exposure_applied" and lines[-1]["percent"] == 5.0:
                measured = 1
            elif measured and lines[-1].get("kind") == "measured" and lines[-1]["gate"] == "latency":
                measured += 1
                if measured > 2:
                    break
        proc.send_signal(signal.SIGSTOP)
        time.sleep(STOPPED)
        proc.send_signal(signal.SIGCONT)
        lines += [json.loads(raw) for raw in proc.stdout]
        why = [line["verdict"]["text"] for line in lines if (line.get("verdict") or {}).get("phase") == "failed"]
        assert proc.wait(timeout=120) == 0, (proc.stderr.read() if proc.stderr else "", why[:6], lines[-3:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return lines


def test_a_stopped_driver_bakes_again_on_fresh_measurements(tmp_path: Path) -> None:
    events = _frozen_run(tmp_path)
    assert events[-1]["summary"]["phase"] == "completed"
    gaps = [e for e in events if e.get("kind") == "measurement_gap"]
    assert gaps, "the frozen stretch was not journaled"
    gap = gaps[0]
    assert gap["at"] - gap["since"] > STOPPED * SPEED * 0.75
    assert all(g["at"] == gap["at"] for g in gaps)  # one batch found every late group
    for g in gaps:
        service = g["service"]
        after = [e for e in events if "at" in e and e["at"] >= g["at"] and e.get("service") == service]
        raise_at = next(e["at"] for e in after if e["kind"] == "exposure_applied")
        # No rise before a whole bake after the gap...
        assert raise_at >= g["at"] + BAKE
        # ...and that bake was measured from its first second to its last.
        latency = [e["at"] for e in after if e["kind"] == "measured" and e["gate"] == "latency" and e["at"] <= raise_at]
        assert latency[0] - g["at"] < 30.0
        assert raise_at - latency[-1] < 3 * 30.0
        assert max(b - a for a, b in zip(latency, latency[1:])) < GAP_INTERVALS * 30.0
    journal = [e for e in events if e.get("kind") in ("measurement_gap", "exposure_applied")]
    assert journal, "the journal and the stream agree on what happened"


def _baking() -> tuple:
    """The DESIGN plan after its first service entered its first bake, and a measure out."""
    state = build(design_plan(bake=BAKE))
    state, cmds = reduce(state, RolloutStarted(at=0.0, rollout="r", seed=1))
    from core.events import ExposureApplied

    for cmd in cmds:
        state, _ = reduce(state, ExposureApplied(at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent))
    assert state.groups[state.group_of("features")].phase == "baking"
    return state


def test_gaps_are_found_only_beyond_a_few_intervals_and_the_floor() -> None:
    state = _baking()
    run = state.groups[state.group_of("features")].gates[0]
    assert run.next_at is not None
    interval = state.ctx.gates[run.gate].interval
    assert measurement_gaps(state, run.next_at + GAP_INTERVALS * interval) == []
    late = run.next_at + GAP_INTERVALS * interval + 1
    gaps = measurement_gaps(state, late)
    assert [(g.service, g.since) for g in gaps] == [("features", run.next_at)]
    assert measurement_gaps(state, late, late_floor=10_000.0) == []


def test_a_gap_restarts_only_its_groups_bake_and_drops_the_stale_measurement() -> None:
    state = _baking()
    index = state.group_of("features")
    due = state.groups[index].gates[0].next_at
    state, cmds = reduce(state, Tick(at=due))
    assert cmds and all(c.service == "features" for c in cmds)
    stale = cmds[0].cmd_id
    later = due + 5000.0
    gap = MeasurementGap(at=later, service="features", gate=cmds[0].gate, since=due)
    assert measurement_gaps(state, later, answer_floor=100.0)[0].since == due
    full, full_cmds = reduce_fully(state, gap)
    after, again = reduce(state, gap)
    assert repr(after) == repr(full) and again == full_cmds
    group = after.groups[index]
    assert group.phase == "baking" and group.bake_until == later + BAKE
    assert stale not in after.inflight
    assert all(run.count == 0 and run.pending is not None for run in group.gates)  # measured at once
    assert {c.service for c in again} == {"features"}
    # The stale answer arriving now is ignored; a fresh one counts.
    ignored, none = reduce(after, Measured(at=later, cmd_id=stale, service="features", gate=cmds[0].gate, value=0.0))
    assert none == [] and ignored.groups[index] == group
