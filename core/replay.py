"""Records → state: the one fold every reader of a journal uses.

`resume` rebuilds the state it continues from, `watch` follows a run another
process drives, `log` words each record, the console shows a backlog, a drill
is scored, and `analyze` replays measurements: all of them fold the same
records through the same `reduce`, here, so none of them can drift from what
the engine computed when it wrote the journal. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

from core.events import Event
from core.reducer import reduce
from core.state import RolloutState


class HasEvent(Protocol):
    @property
    def event(self) -> Event: ...


R = TypeVar("R", bound=HasEvent)


def folding(state: RolloutState, records: Iterable[R]) -> Iterator[tuple[R, RolloutState]]:
    """Each record with the state after it, folded from `state` (lazily: a million-record
    journal keeps one state at a time)."""
    for record in records:
        state, _ = reduce(state, record.event)
        yield record, state


class _Bare:
    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event


def steps(state: RolloutState, events: Iterable[Event]) -> Iterator[tuple[Event, RolloutState, RolloutState]]:
    """Each event with the state before and after it (a scorecard's trace)."""
    before = state
    for bare, after in folding(state, (_Bare(event) for event in events)):
        yield bare.event, before, after
        before = after


def fold(state: RolloutState, events: Iterable[Event]) -> RolloutState:
    """The state after `events`, folded from `state`."""
    final = state
    for _, final in folding(state, (_Bare(event) for event in events)):  # noqa: B007 - keeps the last
        pass
    return final
