"""The runs a journal holds, one row each: what `interlock runs` prints and the console's
runs screen lists (one home, so the two never list a run differently).

A row carries DESIGN.md's keys (`run`, `rollout`, `phase`, `driver`, `started`,
`operator`) and the run's chain head. `phase` comes from replaying the run, the one
way a run's state is known; `driver` is the live lease holder, or None.
"""

from __future__ import annotations

from typing import Any

from adapters.journals import SharedJournal
from tui.session import runtime


def head_text(head: tuple[int, str]) -> str:
    """How a head is written for people and anchors: `SEQ:HASH`."""
    return f"{head[0]}:{head[1]}"


def run_rows(journal: SharedJournal) -> list[dict[str, Any]]:
    """Each run as `runs --json` prints it, oldest first (the journal's order)."""
    rows = []
    for info in journal.runs():
        state = runtime.replay(journal, info).state
        rows.append({
            "run": info.run_id, "rollout": info.rollout, "phase": state.effective_phase,
            "driver": journal.driver(info.run_id) or None, "started": info.created,
            "operator": info.operator, "head": head_text(journal.head(info.run_id)),
        })
    return rows
