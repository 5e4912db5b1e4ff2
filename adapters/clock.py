"""The real clock, optionally scaled: the one place that reads the wall clock.

At speed 1 it is wall time (epoch seconds), so a real rollout's bake times
are real and keep running while a crashed process is down. At speed N it
runs N times faster from an origin, which is how `interlock demo` shows an
hour-long rollout in a minute; `set_speed` re-anchors without a jump.
"""

from __future__ import annotations

import asyncio
import time


def _elapsed() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (Linux's
    CLOCK_BOOTTIME; the monotonic clock elsewhere). A suspended laptop or VM then shows up
    as time that passed, and a bake's unmeasured stretch as a gap (`core.coverage`),
    instead of as time that never happened."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


class RealClock:
    virtual = False

    def __init__(self, speed: float = 1.0, origin: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._origin = time.time() if origin is None else origin
        self._anchor = _elapsed()

    def now(self) -> float:
        return self._origin + (_elapsed() - self._anchor) * self.speed

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._origin = self.now()
        self._anchor = _elapsed()
        self.speed = float(speed)

    def interrupt(self) -> None:
        """Nothing to do: the engine waits on its own queue with a timeout, never on this clock."""

    def real_delay(self, deadline: float) -> float:
        return max(0.0, (deadline - self.now()) / self.speed)

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(self.real_delay(deadline))
