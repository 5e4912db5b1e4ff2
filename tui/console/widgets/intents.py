"""Intent messages: what a key, a button or the palette asks the app to do.

Widgets and screens only post these; the app alone turns them into engine
calls (or refuses, with a line in the event log saying why). One path for
every way of asking keeps "greyed out" and "refused" the same decision.
"""

from __future__ import annotations

from textual.message import Message

from core import OperatorVerb


class OperatorIntent(Message):
    """Ask the engine for an operator action."""

    def __init__(self, verb: OperatorVerb, service: str | None = None, reason: str = "") -> None:
        super().__init__()
        self.verb: OperatorVerb = verb
        self.service = service
        """The service for `approve` and `rollback`; None for rollout-wide verbs."""
        self.reason = reason


class SpeedIntent(Message):
    """Multiply the clock's speed by `factor` (2 or 0.5)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor


class RefusedIntent(Message):
    """A key whose action does not apply now: acknowledge it, say why."""

    def __init__(self, action: str, key: str) -> None:
        super().__init__()
        self.action = action
        self.key = key
