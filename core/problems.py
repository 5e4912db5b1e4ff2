"""Problems in input files, reported as `FILE:LINE:COL: path.in.document: what is wrong`.

Every loader collects *all* problems before giving up, so an engineer fixes a
file in one pass. A `SourceMap` remembers where each node of a YAML document
stood, so a problem found after parsing (a cycle, an unknown gate) still
points at the right line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Path) -> str:
    """`services.ranker.stages[2]`; the document root is `<root>`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


class SourceMap:
    """Path inside a document → (line, column), both 1-based.

    `marks` and `key_marks` may be recorded on first use: a loader passes `fill`, which
    returns both. A valid document never needs its positions (problems do), and recording
    the path of every node of a 50,000-service plan was a third of loading it.
    """

    __slots__ = ("file", "_marks", "_key_marks", "_fill")

    def __init__(
        self,
        file: str,
        marks: dict[Path, tuple[int, int]] | None = None,
        key_marks: dict[Path, tuple[int, int]] | None = None,
        *,
        fill: Callable[[], tuple[dict[Path, tuple[int, int]], dict[Path, tuple[int, int]]]] | None = None,
    ) -> None:
        self.file = file
        self._marks = {} if marks is None else marks
        self._key_marks = {} if key_marks is None else key_marks
        self._fill = fill

    def _filled(self) -> None:
        if self._fill is not None:
            fill, self._fill = self._fill, None
            marks, key_marks = fill()
            self._marks.update(marks)
            self._key_marks.update(key_marks)

    @property
    def marks(self) -> dict[Path, tuple[int, int]]:
        self._filled()
        return self._marks

    @property
    def key_marks(self) -> dict[Path, tuple[int, int]]:
        """Where the *key* of a mapping entry stands (for unknown-field errors)."""
        self._filled()
        return self._key_marks

    def __repr__(self) -> str:
        return f"SourceMap(file={self.file!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourceMap):
            return NotImplemented
        return (self.file, self.marks, self.key_marks) == (other.file, other.marks, other.key_marks)

    __hash__ = None  # type: ignore[assignment]  # equal by value, like the dataclass it was

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        marks, key_marks = self.marks, self.key_marks
        if key and path in key_marks:
            return key_marks[path]
        probe = tuple(path)
        while probe:
            if probe in marks:
                return marks[probe]
            probe = probe[:-1]
        return marks.get((), (1, 1))


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    file: str = "<input>"
    line: int = 1
    col: int = 1
    plain: bool = False
    """Not about a place in a file (a journal without the run, a flag without its partner):
    written as a plain one-liner, `interlock: message`, with no made-up location."""

    def format(self) -> str:
        if self.plain:
            return f"interlock: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {format_path(self.path)}: {self.message}"


class InputError(Exception):
    """One or more problems in an input file; nothing was applied."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(p.format() for p in problems))
        self.problems = problems

    @classmethod
    def plain(cls, message: str) -> InputError:
        """Bad input that is not a file's (an option, a run that is not in the journal):
        one line, `interlock: message`, exit 2 like every bad input."""
        return cls([Problem(path=(), message=message, file="<command line>", plain=True)])


def located(source: SourceMap | None, path: Path, message: str, *, key: bool = False) -> Problem:
    if source is None:
        return Problem(path=path, message=message)
    line, col = source.locate(path, key=key)
    return Problem(path=path, message=message, file=source.file, line=line, col=col)
