"""A journal's past as a console shows it first, in bounded memory.

A console opened on a resumed or watched rollout replays the journal so far.
Replaying gives one state per record, and a long rollout has a million
records: a batch each would hold gigabytes. What the screen needs of the past
is bounded: the latest state, one batch per record for the records the event
log can word (`EventLog.MAX_LINES`), and for each gate the measurements its
chart keeps (`MetricHistory.keep`). A `Backlog` keeps exactly that while the
records are folded, whoever folds them: `interlock resume` during its own
replay, a watcher while it catches up.
"""

from __future__ import annotations

from collections import deque

from core import Event, Measured
from core import RolloutState

Batch = tuple[RolloutState, tuple[Event, ...]]
"""A state after one journal record (or a run of them), and their events."""

KEEP_BATCHES = 2000
"""Records that stay batches of their own: as many as the event log words."""

KEEP_MEASUREMENTS = 240
"""Older measurements kept per (service, gate): as many as the metric history shows."""


class Backlog:
    """The states and measurements of records folded so far, bounded."""

    def __init__(
        self, keep: int = KEEP_BATCHES, measurements: int = KEEP_MEASUREMENTS, expected: int | None = None
    ) -> None:
        self.keep = keep
        """Records kept as batches of their own."""
        self.measurements = measurements
        """Older measurements kept per (service, gate)."""
        self._skip = max(0, expected - keep) if expected is not None else 0  # at most what comes
        """Records that will not be among the last `keep` (with `expected` records to
        come): their states are never queued, so they die young (holding thousands of
        states for a while costs the garbage collector more than the replay itself)."""
        self._seen = 0
        self._tail: deque[Batch] = deque()
        self._folded: RolloutState | None = None
        self._older: dict[tuple[str, str], deque[Measured]] = {}

    def add(self, state: RolloutState, event: Event) -> None:
        """One more record: `event`, and the state it led to."""
        self._seen += 1
        if self._seen <= self._skip:
            self._folded = state
            if type(event) is Measured:
                self._remember(event)
            return
        self._tail.append((state, (event,)))
        if len(self._tail) > self.keep:
            self._folded, events = self._tail.popleft()
            for older in events:
                if type(older) is Measured:
                    self._remember(older)

    def _remember(self, event: Measured) -> None:
        key = (event.service, event.gate)
        kept = self._older.get(key)
        if kept is None:
            kept = self._older[key] = deque(maxlen=self.measurements)
        kept.append(event)

    def drain(self) -> tuple[list[Measured], list[Batch]]:
        """(the measurements of records no longer batches, oldest first for each gate;
        the batches: the state those records led to, without events, then one batch per
        kept record), and start empty again."""
        older = [event for kept in self._older.values() for event in kept]
        batches = ([(self._folded, ())] if self._folded is not None else []) + list(self._tail)
        self._tail.clear()
        self._folded = None
        self._older = {}
        self._seen = self._skip = 0
        return older, batches
