"""Problems in input files, reported as `FILE:LINE:COL: path.in.document: what is wrong`.

Every loader collects *all* problems before giving up, so an engineer fixes a
file in one pass. A `SourceMap` remembers where each node of a YAML document
stood, so a problem found after parsing (a cycle, an unknown gate) still
points at the right line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class SourceMap:
    """Path inside a document → (line, column), both 1-based."""

    file: str
    marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path, tuple[int, int]] = field(default_factory=dict)
    """Where the *key* of a mapping entry stands (for unknown-field errors)."""

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        if key and path in self.key_marks:
            return self.key_marks[path]
        probe = tuple(path)
        while probe:
            if probe in self.marks:
                return self.marks[probe]
            probe = probe[:-1]
        return self.marks.get((), (1, 1))


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
