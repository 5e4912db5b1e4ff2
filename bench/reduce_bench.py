"""How fast `reduce` folds a real event stream, alone and behind the SQLite journal.

Two numbers (never asserted in tests):

1. Throughput: a virtual-clock run of examples/recsys.yaml is recorded once
   (engine + simulated world + journal, exactly as `interlock run` does), then
   `reduce` replays that stream from the initial state over and over on one
   core. Goal: >= 50,000 events/s.
2. Crash recovery: a history of ~1,000,000 events that `reduce` accepts —
   the recsys plan with day-long bakes and gates measuring every 3 s, driven
   by a scripted world that acks every change and answers every measurement —
   is written to a SQLite journal, then read back, decoded and folded through
   `reduce` with `bench/journal_bench.replay_seconds`. Goal: < 20 s, and (issue 17)
   within 3x the time of reading and decoding the same records.

`--profile` prints cProfile's view of both folds: the recorded run's and the long history's.

    python bench/reduce_bench.py [--repeat 200] [--events 1000000] [--skip-replay] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import yaml
from journal_bench import replay_seconds

from adapters.journal_sqlite import SqliteJournal
from core.commands import Measure, SetExposure
from core.context import initial_state
from core.events import Event, ExposureApplied, Measured, RolloutStarted, Tick
from core.order import compile_plan
from core.plan import Plan
from core.ports import RunInfo
from core.reducer import reduce
from core.schedule import next_deadline
from core.state import RolloutState
from tui.session.runtime import start_run

EXAMPLE = ROOT / "examples" / "recsys.yaml"


def recorded_run(tmp: Path) -> tuple[RolloutState, list[Event]]:
    """The initial state and every journaled event of one virtual run of the example."""
    session = start_run(EXAMPLE, journal_path=tmp / "record.db", seed=0)
    final = asyncio.run(session.engine.run())
    events = [record.event for record in session.journal.records(session.info.run_id)]
    session.journal.close()
    if final.phase != "completed":
        raise RuntimeError(f"the example ended {final.phase}, not completed")
    return initial_state(session.plan, session.graph), events


def fold(initial: RolloutState, events: list[Event]) -> RolloutState:
    state = initial
    for event in events:
        state, _ = reduce(state, event)
    return state


def throughput(initial: RolloutState, events: list[Event], repeat: int, rounds: int = 5) -> float:
    """Best of `rounds`: events per second over `repeat` replays of the stream."""
    best = 0.0
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(repeat):
            fold(initial, events)
        best = max(best, repeat * len(events) / (time.perf_counter() - began))
    return best


# -- a long, valid history ----------------------------------------------------------


def long_plan(bake: str, interval: str) -> Plan:
    """The example with day-long bakes and open-ended gates that measure often."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    doc["defaults"]["bake"] = bake
    for gate in doc["gates"].values():
        gate["interval"] = interval
        gate.pop("count", None)
    return Plan.model_validate(doc)


def scripted_history(plan: Plan, limit: int) -> tuple[RolloutState, list[Event], RolloutState]:
    """Drive `reduce` like the engine would with healthy adapters, up to `limit` events."""
    initial = initial_state(plan, compile_plan(plan))
    state = initial
    events: list[Event] = []
    queue: list[Any] = []

    def feed(event: Event) -> None:
        nonlocal state
        state, cmds = reduce(state, event)
        events.append(event)
        queue.extend(cmds)

    feed(RolloutStarted(at=0.0, rollout=plan.rollout, seed=0))
    n = 0
    while len(events) < limit:
        if queue:
            cmd = queue.pop(0)
            at = state.at
            if isinstance(cmd, SetExposure):
                feed(ExposureApplied(at=at, cmd_id=cmd.cmd_id, service=cmd.service, percent=cmd.percent))
            elif isinstance(cmd, Measure):
                n += 1
                value = 0.001 + (n * 7919 % 1000) * 1e-6
                baseline = value * 1.01 if cmd.with_baseline else None
                feed(Measured(at=at, cmd_id=cmd.cmd_id, service=cmd.service, gate=cmd.gate,
                              value=value, baseline=baseline))
            continue
        deadline = next_deadline(state)
        if deadline is None:
            break
        feed(Tick(at=deadline))
    return initial, events, state


def journal_replay(
    initial: RolloutState, events: list[Event], live: RolloutState, tmp: Path
) -> tuple[float, float, float]:
    """Seconds to write the history, to read + decode it, and to replay it through reduce."""
    path = tmp / "replay.db"
    with SqliteJournal(path) as journal:
        journal.create_run(RunInfo("replay", "bench", str(EXAMPLE), "", 0, "virtual", float("inf"), ""))
        began = time.perf_counter()
        for start in range(0, len(events), 5000):
            journal.append("replay", events[start:start + 5000])
        wrote = time.perf_counter() - began
    holder: dict[str, RolloutState] = {}

    def step(state: RolloutState, event: Event) -> RolloutState:
        state = reduce(state, event)[0]
        holder["state"] = state
        return state

    with SqliteJournal(path, readonly=True) as journal:
        cpu = time.process_time()
        decode = replay_seconds(journal, "replay")
        decode_cpu = time.process_time() - cpu
        cpu = time.process_time()
        seconds = replay_seconds(journal, "replay", fold=step, initial=initial)
        replay_cpu = time.process_time() - cpu
    if repr(holder["state"]) != repr(live):
        raise RuntimeError("the replayed state differs from the live one")
    print(f"CPU: read + decode {decode_cpu:.2f} s, replay {replay_cpu:.2f} s "
          f"= {replay_cpu / decode_cpu:.1f}x (wall clock counts waiting for a core too)")
    return wrote, decode, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="replays of the recorded stream per round")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the journal replay")
    parser.add_argument("--skip-replay", action="store_true", help="only the throughput number")
    parser.add_argument("--profile", action="store_true", help="print where reduce spends its time")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp_name:
        tmp = Path(tmp_name)
        initial, events = recorded_run(tmp)
        kinds: dict[str, int] = {}
        for event in events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
        print(f"recorded run of {EXAMPLE.name}: {len(events)} events {kinds}")
        rate = throughput(initial, events, args.repeat)
        print(f"reduce throughput: {rate:,.0f} events/s (goal >= 50,000)")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [fold(initial, events) for _ in range(50)])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

        if args.skip_replay:
            return
        began = time.perf_counter()
        plan = long_plan(bake="24h", interval="3s")
        initial, history, live = scripted_history(plan, args.events)
        print(f"history: {len(history):,} events (generated in {time.perf_counter() - began:.0f} s), "
              f"final phase {live.phase}")
        wrote, decode, seconds = journal_replay(initial, history, live, tmp)
        print(f"journal write: {wrote:.1f} s; read + decode alone: {decode:.1f} s")
        print(f"replay (read + decode + reduce): {seconds:.1f} s "
              f"= {len(history) / seconds:,.0f} events/s (goal < 20 s); "
              f"{seconds / decode:.1f}x read + decode (goal <= 3x)")
        if args.profile:  # the fold alone, from memory: where the replay's reduce time goes
            profiler = cProfile.Profile()
            profiler.runcall(fold, initial, history)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
