"""Time, injected. `core` never reads the wall clock; it asks a `Clock`.

`VirtualClock` jumps straight to the next deadline whenever the engine is
idle, so an hour-long rollout replays in well under a second. The real,
scaled clock reads the wall clock and therefore lives in `adapters.clock`.
"""

from __future__ import annotations

import asyncio
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
