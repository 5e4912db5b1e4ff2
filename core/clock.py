"""Time, injected. `core` never reads the wall clock; it asks a `Clock`.

`VirtualClock` jumps straight to the next deadline whenever the engine is
idle, so an hour-long rollout replays in well under a second. `HeldClock` is
a virtual clock a test can hold at a moment and release (as temporalio's
time-skipping test environment does), so a test stops a run exactly where it
wants without touching the engine. The real, scaled clock reads the wall
clock and therefore lives in `adapters.clock`.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol


class Clock(Protocol):
    virtual: bool
    """True when time only moves because the engine asks it to."""
    speed: float

    def now(self) -> float: ...

    def real_delay(self, deadline: float) -> float:
        """Wall seconds until the clock reaches `deadline` (0 for a virtual clock)."""
        ...

    async def sleep_until(self, deadline: float) -> None: ...

    def set_speed(self, speed: float) -> None:
        """Simulated seconds per wall second from now on (a real clock); a virtual clock
        has no speed to set and refuses (`ValueError`)."""
        ...

    def interrupt(self) -> None:
        """Something arrived for the engine (an operator action, a wake, a stop): a clock
        holding time back lets the engine look at it. The engine calls this; most clocks
        need do nothing."""
        ...


class VirtualClock:
    """Time that passes only when the engine is idle and has a deadline."""

    virtual = True
    speed = float("inf")

    def __init__(self, start: float = 0.0):
        self._now = start

    def now(self) -> float:
        return self._now

    def real_delay(self, deadline: float) -> float:
        return 0.0

    def advance_to(self, deadline: float) -> None:
        if deadline > self._now:
            self._now = deadline

    async def sleep_until(self, deadline: float) -> None:
        self.advance_to(deadline)
        await asyncio.sleep(0)

    def set_speed(self, speed: float) -> None:
        raise ValueError("a virtual clock has no speed: time jumps to the next deadline")

    def interrupt(self) -> None:
        """Nothing to do: a virtual clock never waits."""


class HeldClock(VirtualClock):
    """Virtual time that does not pass `limit` until told to (tests, benchmarks).

    With the default limit it is a `VirtualClock`. `freeze()` holds time where it is,
    `release(until)` lets it run again (to `until`, or for good). While held, the engine
    waits idle (`waiting` is True) and an operator action, a wake or a stop reaches it
    through `interrupt`, as it would on a real clock.
    """

    def __init__(self, start: float = 0.0, limit: float = math.inf) -> None:
        super().__init__(start)
        self.limit = limit
        """Time does not pass this moment until `release`."""
        self.waiting = False
        """True while the engine is idle, held at the limit."""
        self._poke = asyncio.Event()

    async def sleep_until(self, deadline: float) -> None:
        if deadline > self.limit:
            self.waiting = True
            self._poke.clear()
            try:
                await self._poke.wait()
            finally:
                self.waiting = False
            if deadline > self.limit:
                return  # the engine records a harmless tick at `now` and looks at its queue
        self.advance_to(deadline)
        await asyncio.sleep(0)

    def interrupt(self) -> None:
        self._poke.set()

    def freeze(self) -> None:
        """Hold time at its current moment."""
        self.limit = self.now()

    def release(self, until: float = math.inf) -> None:
        """Let time run again, up to `until`."""
        self.limit = until
        self.interrupt()


SPEEDS: tuple[float, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 3600, 7200)
"""The console's clock speeds (`+` and `-`): a fixed ladder, so `-` then `+` returns to
where it was (×60 → ×30 → ×60); multiplying by 2 and clamping at the ends did not."""


def next_speed(speed: float, faster: bool) -> float:
    """The next rung of `SPEEDS` above (`faster`) or below `speed`; `speed` itself at the
    ladder's end. A speed between rungs (`--speed 45`) goes to the rung beside it."""
    if faster:
        return next((rung for rung in SPEEDS if rung > speed), speed)
    return next((rung for rung in reversed(SPEEDS) if rung < speed), speed)
