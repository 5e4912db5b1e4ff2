"""Command palette (ctrl+p): every console action, and "go to service".

Actions that do not apply now are listed greyed out with the reason, the same
answer the footer gives; choosing one only writes that reason to the log.
"""

from __future__ import annotations

from functools import partial
from typing import cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from core import ACTIONS, Action
from tui.console.screens.console import ConsoleScreen, RolloutApp, binding_action


PALETTE: tuple[Action, ...] = tuple(
    sorted((a for a in ACTIONS if a.title), key=lambda a: not a.changes_rollout)
)
"""The table's actions that have a palette entry: what changes the rollout first, then views."""


class ConsoleCommands(Provider):
    """The console's actions and its services, for the command palette."""

    @property
    def _console_screen(self) -> ConsoleScreen | None:
        screen = self.screen
        return screen if isinstance(screen, ConsoleScreen) else None

    def _hits(self) -> list[tuple[str, bool, object, str]]:
        """(title, applies now, callback, help) for every action and service."""
        console = self._console_screen
        if console is None:
            return []
        app = cast(RolloutApp, self.app)
        out: list[tuple[str, bool, object, str]] = []
        for action in PALETTE:
            state = app.availability(action.name)
            if state is False:
                continue
            if state:
                out.append((action.title, True, partial(console.run_action, binding_action(action)), action.summary))
            else:
                why = app.refusal(action.name)
                out.append((action.title, False, partial(app.note, why), f"not now: {why}"))
        for name in console.state.ctx.graph.order:
            out.append((f"Go to service {name}", True, partial(console.go_to, name), "select it in the graph"))
        return out

    async def discover(self) -> Hits:
        for title, enabled, command, help_text in self._hits():
            shown = Content(title) if enabled else Content.styled(title, "$text-disabled")
            yield DiscoveryHit(shown, command, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, enabled, command, help_text in self._hits():
            score = matcher.match(title)
            if score > 0:
                shown = matcher.highlight(title)
                if not enabled:
                    shown = shown.stylize("$text-disabled")
                yield Hit(score, shown, command, help=help_text)  # type: ignore[arg-type]
