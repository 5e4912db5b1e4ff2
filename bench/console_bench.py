"""How quickly the console shows a change, and what it costs while nothing happens.

An operator trusts a console that reacts at once and leaves the machine alone
when the rollout is paused. On a generated 200-service plan this measures:

- update latency: from the engine publishing a state (its subscriber call) to
  the screen's next frame being written (the compositor update rendered to the
  terminal's byte stream, as the real driver would write it); median and p95,
  at the demo's speed (×60) and under load (×600, many events per second).
  Goal: median under 30 ms.
- idle CPU: process CPU time over 10 s of wall time with the rollout paused,
  as a share of one core. Goal: under 5%.

    python bench/console_bench.py [--services 200] [--seconds 8] [--idle 10]

Runs headless at 200×60 cells. Results are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "tui"))

from console_plans import generated_plan
from textual.screen import Screen

from core.events import Event
from core.state import RolloutState
from tui.session import runtime
from tui.console.app import InterlockApp

SIZE = (200, 60)
WARM_UP = 1.5
"""Seconds left out at the start: mounting, first layout, first plots."""


class ProbedApp(InterlockApp):
    """The console, timing each published state until a frame that shows it is written."""

    def __init__(self, session: runtime.Session) -> None:
        super().__init__(session, operator="bench@console")
        self.latencies: list[float] = []
        self.frames = 0
        self._published: list[float] = []
        self._drawn: list[float] = []
        session.engine.subscribe(self._stamp)
        self.on_flush = self._flushed

    def _stamp(self, state: RolloutState, events: Sequence[Event]) -> None:
        self._published.append(time.perf_counter())

    def _flushed(self, batches: int) -> None:
        self._drawn.extend(self._published)
        self._published.clear()

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        super()._display(screen, renderable)
        if renderable is None:
            return
        if hasattr(renderable, "render_segments"):
            renderable.render_segments(self.console)  # what the terminal driver would write
        self.frames += 1
        if self._drawn:
            now = time.perf_counter()
            self.latencies.extend(now - t for t in self._drawn)
            self._drawn.clear()


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(plan: Path, tmp: Path, *, speed: float, seconds: float, idle: float) -> dict[str, float]:
    session = runtime.start_run(
        plan, journal_path=tmp / f"journal-{speed:g}.db", clock="real", speed=speed, interactive=True
    )
    app = ProbedApp(session)
    out: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("j", "j", "j")  # a service in the middle of the first wave
        await asyncio.sleep(WARM_UP)
        app.latencies.clear()
        app.frames = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        out["busy_cpu_pct"] = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        out["updates"] = len(app.latencies)
        out["frames"] = app.frames
        out["median_ms"] = statistics.median(app.latencies) if app.latencies else float("nan")
        out["median_ms"] *= 1000
        out["p95_ms"] = _ms(app.latencies, 0.95) if app.latencies else float("nan")
        out["sim_minutes"] = (session.engine.state.at - (session.engine.state.started_at or 0)) / 60
        if idle:
            await pilot.press("space")
            while session.engine.state.phase != "paused":
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.5)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(idle)
            out["idle_cpu_pct"] = 100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        session.engine.stop()
        while app.engine_running:
            await asyncio.sleep(0.01)
    if session.engine.lease is not None:
        session.engine.lease.release()
    session.journal.close()
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0, help="wall seconds of rollout per speed")
    parser.add_argument("--idle", type=float, default=10.0, help="wall seconds paused for the CPU figure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plan = tmp / "plan.yaml"
        plan.write_text(generated_plan(args.services), encoding="utf-8")
        print(f"console bench: {args.services} services, {SIZE[0]}×{SIZE[1]} cells, headless")
        for speed, idle in ((60.0, args.idle), (600.0, 0.0)):
            result = asyncio.run(measure(plan, tmp, speed=speed, seconds=args.seconds, idle=idle))
            print(
                f"  ×{speed:<4g} {result['sim_minutes']:6.1f} simulated min, {result['updates']:5.0f} updates, "
                f"{result['frames']:4.0f} frames: state→screen median {result['median_ms']:.1f} ms, "
                f"p95 {result['p95_ms']:.1f} ms (goal: median < 30 ms); CPU {result['busy_cpu_pct']:.0f}%"
            )
            if idle:
                print(f"  paused: idle CPU {result['idle_cpu_pct']:.2f}% of one core over {args.idle:g} s (goal < 5%)")


if __name__ == "__main__":
    main()
