"""Every status the console shows, as glyph + word + theme colour, in one table.

Colour alone fails the colour-blind, a monochrome terminal and a screenshot
pasted into a ticket; a glyph alone is a puzzle. So each phase has all three,
and every widget (graph rows, header, detail pane, help screen) draws from
these tables, which keeps the help screen's legend true by construction.
Colours are theme variables, resolved by Textual when the content renders.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content


@dataclass(frozen=True, slots=True)
class Status:
    """How one phase looks on screen."""

    glyph: str
    """One terminal cell, never an emoji."""
    word: str
    colour: str
    """A Textual theme variable, e.g. `$text-success`."""
    meaning: str
    """One line for the help screen."""

    def content(self, *, width: int = 0, bold: bool = False) -> Content:
        """`glyph word`, coloured, padded to `width` cells."""
        text = f"{self.glyph} {self.word}".ljust(width)
        return Content.styled(text, f"{self.colour} bold" if bold else self.colour)

    def glyph_content(self) -> Content:
        return Content.styled(self.glyph, self.colour)


SERVICE: dict[str, Status] = {
    "waiting": Status("○", "waiting", "$text-muted", "not started: waits for what it follows, or for capacity"),
    "preparing": Status("◇", "preparing", "$text-accent", "pre-flight checks and hooks before the first user (0%)"),
    "shadowing": Status("◍", "shadowing", "$text-secondary", "answers copies of live requests; no user sees it"),
    "progressing": Status("◔", "progressing", "$text-accent", "traffic is being shifted to the next stage"),
    "baking": Status("◑", "baking", "$text-primary", "at a stage, gates measuring, bake time running"),
    "analyzing": Status("◕", "analyzing", "$text-secondary", "bake is over, gates still deciding"),
    "awaiting_approval": Status("◆", "awaiting approval", "$text-warning", "stage passed; press a to approve"),
    "confirming": Status("◈", "confirming", "$text-warning", "waiting for a confirm-* hook to answer 2xx"),
    "promoted": Status("●", "promoted", "$text-success", "100% on the new version, done"),
    "rolling_back": Status("↺", "rolling back", "$text-warning", "traffic is being taken back to 0%"),
    "rolled_back": Status("↩", "rolled back", "$text-error", "back at 0%: all traffic on the old version"),
    "failed": Status("✗", "failed", "$text-error", "a gate or a pre-flight check failed; policy decides what follows"),
}

ROLLOUT: dict[str, Status] = {
    "planned": Status("○", "planned", "$text-muted", "not started yet"),
    "running": Status("▶", "running", "$text-accent", "moving forward stage by stage"),
    "paused": Status("‖", "paused", "$text-warning", "no exposure rises until resumed (space)"),
    "completed": Status("✓", "completed", "$text-success", "every service promoted"),
    "rolling_back": Status("↺", "rolling back", "$text-warning", "taking services back, latest first"),
    "rolled_back": Status("↩", "rolled back", "$text-error", "the rollback finished"),
    "aborted": Status("■", "aborted", "$text-error", "aborted: every moved service back at 0%"),
    "held": Status("⊘", "held", "$text-warning", "an adapter failed; retrying, then checking the state"),
}

SAMPLE: dict[str, Status] = {
    "successful": Status("✓", "successful", "$text-success", "measurement within bounds"),
    "failed": Status("✗", "failed", "$text-error", "measurement out of bounds"),
    "inconclusive": Status("?", "inconclusive", "$text-warning", "neither passes nor fails"),
    "error": Status("!", "error", "$text-error", "the metric source did not answer"),
    "running": Status("◌", "running", "$text-muted", "gate still measuring"),
    "ignored": Status("·", "ignored", "$text-muted", "no data, ignored by the gate"),
}

MODE: dict[str, Status] = {
    "driving": Status("◉", "driving", "$text-accent", "this console drives the rollout"),
    "watching": Status("◎", "watching", "$text-secondary", "read-only: following the journal"),
    "stopped": Status("■", "stopped", "$text-muted", "the engine stopped; `interlock resume` continues"),
    "ended": Status("□", "ended", "$text-muted", "the rollout ended; nothing is left to drive"),
    "viewing": Status("▷", "viewing", "$text-secondary", "another run of this journal (o), as journaled when opened"),
}


def service_status(phase: str) -> Status:
    return SERVICE.get(phase, Status("?", phase, "$text-muted", ""))


def rollout_status(phase: str) -> Status:
    return ROLLOUT.get(phase, Status("?", phase, "$text-muted", ""))


def sample_status(phase: str | None) -> Status:
    return SAMPLE["ignored" if phase is None else phase]
