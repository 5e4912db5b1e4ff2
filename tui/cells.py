"""Text columns measured in terminal cells, for every table the command line prints.

`len()` counts code points: an emoji or a CJK character takes two cells and shifts every
column after it by one, and a 300-character service name padded with `:<{width}` pushes
every row to 300 columns. These helpers measure with `rich.cells` (what the console's
widgets use too) and cut a name that is too long with an ellipsis, so a table stays a
table whatever a plan names its services.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len, set_cell_size

NAME_CELLS = 32
"""The widest a name column grows: longer names are cut to this with `…`."""


def width_of(texts: Iterable[str], cap: int = NAME_CELLS) -> int:
    """The cells a column needs for `texts`, at most `cap`."""
    return min(cap, max((cell_len(text) for text in texts), default=0))


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells: padded with spaces, or cut with `…` when longer."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        text = set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def cut(text: str, width: int = NAME_CELLS) -> str:
    """`text` cut with `…` to at most `width` cells (never padded): a name inside a sentence."""
    return text if cell_len(text) <= width else fit(text, width)
