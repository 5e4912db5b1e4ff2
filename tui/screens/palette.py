"""Command palette (ctrl+p): every console action, and "go to service".

Actions that do not apply now are listed greyed out with the reason, the same
answer the footer gives; choosing one only writes that reason to the log.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from tui.screens.console import ConsoleScreen

if TYPE_CHECKING:
    from tui.app import InterlockApp

ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("pause", "Pause the rollout", "no exposure rises until resumed"),
    ("resume", "Resume the rollout", "carry on from where it paused"),
    ("step", "Step one transition", "while paused: exactly one transition, then pause"),
    ("approve", "Approve the selected service", "its stage or wave awaits approval"),
    ("rollback", "Roll back the selected service…", "shows the cascade before anything happens"),
    ("abort", "Abort the whole rollout…", "every moved service back to 0%, asks first"),
    ("faster", "Speed up the clock ×2", "simulated or scaled clocks only"),
    ("slower", "Slow down the clock ÷2", "simulated or scaled clocks only"),
    ("details", "Toggle the detail pane full screen", "the selected service up close"),
    ("next_metric", "Chart the next gate metric", "of the selected service"),
    ("filter", "Filter services by name", "escape clears"),
    ("help", "Help: keys and status legend", ""),
)


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
        app = cast("InterlockApp", self.app)
        out: list[tuple[str, bool, object, str]] = []
        for action, title, help_text in ACTIONS:
            state = app.availability(action)
            if state is False:
                continue
            if state:
                out.append((title, True, partial(console.run_action, action), help_text))
            else:
                why = app.why_not(action)
                out.append((title, False, partial(app.note, why), f"not now: {why}"))
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
