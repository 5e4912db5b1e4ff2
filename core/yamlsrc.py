"""YAML text → plain data plus a `SourceMap`, with every problem located.

PyYAML's loaders forget where things stood and silently keep the last of two
duplicate keys; a plan with two `ranker:` entries would quietly lose one. So we
only *compose* the document (SafeLoader: no arbitrary objects are ever built)
and walk the node tree ourselves, recording the 1-based (line, col) of every
value and every mapping key, and reporting instead of guessing.

What the walk accepts, explicitly:
- scalars with the standard tags (null, bool, int, float, str); timestamps stay
  the text they were written as (`version: 2024-01-01` means a string);
- aliases (`*name`) resolve to their anchor's value; the aliased node itself is
  located at the alias, its children at the anchor. A recursive alias and an
  alias expansion beyond `MAX_NODES` nodes are problems;
- merge keys (`<<: *base`, or a list of them) are supported with YAML's
  semantics: explicit keys win, then earlier merged mappings win over later ones;
- anything else (custom `!tags`, `!!set`, `!!binary`, non-text keys, duplicate
  keys, an empty document, a top level that is not a mapping) is a problem.

Shared by plans and drills: nothing here knows either format.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.problems import Path, Problem, SourceMap

MAX_NODES = 100_000
"""Upper bound on nodes after alias expansion (a "billion laughs" guard)."""

MAX_DEPTH = 64
"""Upper bound on nested lists and mappings; a plan needs about six. PyYAML composes
recursively, so a document ~500 deep would otherwise end in a RecursionError."""

_TAG = "tag:yaml.org,2002:"
_CONSTRUCTOR = SafeConstructor()
_SCALARS = {
    _TAG + "null": SafeConstructor.construct_yaml_null,
    _TAG + "bool": SafeConstructor.construct_yaml_bool,
    _TAG + "int": SafeConstructor.construct_yaml_int,
    _TAG + "float": SafeConstructor.construct_yaml_float,
    _TAG + "str": SafeConstructor.construct_yaml_str,
}
_KIND_OF_TAG = {"null": "null", "bool": "a boolean", "int": "a number", "float": "a number"}


class _LocatingLoader(yaml.SafeLoader):
    """A SafeLoader whose aliases carry the alias's own position."""

    def compose_node(self, parent: Node | None, index: object) -> Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            alias = object.__new__(type(node))
            alias.__dict__.update(node.__dict__)
            alias.start_mark = mark
            return alias
        return super().compose_node(parent, index)


def _tag(node: Node) -> str:
    return "!!" + node.tag[len(_TAG) :] if node.tag.startswith(_TAG) else node.tag


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return f"a scalar ({value!r})"


class _Walker:
    def __init__(self, file: str) -> None:
        self.source = SourceMap(file=file)
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        self._count = 0
        self._too_big = False

    def problem(self, path: Path, at: tuple[int, int], message: str) -> None:
        self.problems.append(Problem(path, message, self.source.file, at[0], at[1]))

    def value(self, node: Node, path: Path) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            if not self._too_big:
                self._too_big = True
                self.problem(path, _mark(node), f"the document expands to more than {MAX_NODES} nodes (alias bomb?)")
            return None
        self.source.marks.setdefault(path, _mark(node))
        if len(path) > MAX_DEPTH:  # aliases nest without nesting the text
            if not self._too_big:
                self._too_big = True
                self.problem(path[:MAX_DEPTH], _mark(node), f"nested more than {MAX_DEPTH} levels deep through aliases")
            return None
        if id(node.value) in self._active:
            self.problem(path, _mark(node), "a recursive alias refers to itself; write the value out")
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        self._active.add(id(node.value))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _TAG + "seq":
                    self.problem(path, _mark(node), f"unsupported YAML tag {_tag(node)!r}; use a plain list")
                return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
            if node.tag != _TAG + "map":
                self.problem(path, _mark(node), f"unsupported YAML tag {_tag(node)!r}; use a plain mapping")
            return self.mapping(node, path)
        finally:
            self._active.discard(id(node.value))

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _TAG + "timestamp":
            return node.value
        construct = _SCALARS.get(node.tag)
        if construct is None:
            self.problem(path, _mark(node), f"unsupported YAML tag {_tag(node)!r}; use plain text, numbers or booleans")
            return node.value
        try:
            return construct(_CONSTRUCTOR, node)
        except (ValueError, yaml.YAMLError):
            self.problem(path, _mark(node), f"{node.value!r} is not a valid {_tag(node)}")
            return node.value

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, key_node, value_node in self.entries(node, path):
            self.source.key_marks.setdefault(path + (key,), _mark(key_node))
            out[key] = self.value(value_node, path + (key,))
        return out

    def entries(self, node: MappingNode, path: Path) -> list[tuple[str, Node, Node]]:
        """Explicit entries in order, then merged ones not already present."""
        explicit: list[tuple[str, Node, Node]] = []
        first_line: dict[str, int] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merges.append((key_node, value_node))
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in first_line:
                self.problem(
                    path + (key,),
                    _mark(key_node),
                    f"duplicate key {key!r} (first defined on line {first_line[key]}); "
                    "YAML would silently keep only the last one",
                )
                continue
            first_line[key] = _mark(key_node)[0]
            explicit.append((key, key_node, value_node))
        seen = set(first_line)
        for key_node, value_node in merges:
            for entry in self.merged(key_node, value_node, path):
                if entry[0] not in seen:
                    seen.add(entry[0])
                    explicit.append(entry)
        return explicit

    def key(self, node: Node, path: Path) -> str | None:
        if isinstance(node, ScalarNode) and node.tag == _TAG + "str":
            return node.value
        if isinstance(node, ScalarNode) and node.value == "":
            self.problem(path + ("",), _mark(node), "an entry has no key; write `name: value`")
        elif isinstance(node, ScalarNode):
            kind = _KIND_OF_TAG.get(node.tag[len(_TAG) :]) if node.tag.startswith(_TAG) else None
            message = (
                f"key {node.value!r} is read as {kind}; keys must be text, so quote it: '{node.value}'"
                if kind
                else f"key {node.value!r} is tagged {_tag(node)!r}; keys must be plain text"
            )
            self.problem(path + (node.value,), _mark(node), message)
        else:
            self.problem(path, _mark(node), "keys must be plain text, not a list or mapping")
        return None

    def merged(self, key_node: Node, value_node: Node, path: Path) -> list[tuple[str, Node, Node]]:
        """The entries a `<<` brings in; earlier sources win over later ones."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        out: list[tuple[str, Node, Node]] = []
        for source in sources:
            if not isinstance(source, MappingNode):
                self.problem(path, _mark(key_node), "a merge key (<<) takes a mapping or a list of mappings")
                continue
            if id(source.value) in self._active:
                self.problem(path, _mark(key_node), "a merge key (<<) refers to the mapping that contains it")
                continue
            self._active.add(id(source.value))
            try:
                out.extend(self.entries(source, path))
            finally:
                self._active.discard(id(source.value))
        return out


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse one YAML document whose top level must be a mapping.

    Returns the plain data (None when the text is not YAML or empty), the
    positions of every node path, and the problems found, in document order.
    """
    walker = _Walker(file)
    try:
        too_deep = _too_deep(text)
        if too_deep is not None:
            walker.problem((), too_deep, f"nested more than {MAX_DEPTH} levels deep; a plan needs a handful")
            return None, walker.source, walker.problems
        root = yaml.compose(text, Loader=_LocatingLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = err.problem or err.context or "cannot be parsed"
        if err.context and err.problem and err.problem.startswith("but "):
            reason = f"{err.context}, {err.problem}"
        walker.problem((), at, f"not valid YAML: {reason}")
        return None, walker.source, walker.problems
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        col = err.position - text.rfind("\n", 0, err.position)
        walker.problem((), (line, col), f"not valid YAML: unacceptable character #x{err.character:04x}: {err.reason}")
        return None, walker.source, walker.problems
    except yaml.YAMLError as err:
        walker.problem((), (1, 1), f"not valid YAML: {err}")
        return None, walker.source, walker.problems
    if root is None:
        walker.problem((), (1, 1), "the file is empty; expected a mapping of `key: value` lines")
        return None, walker.source, walker.problems
    data = walker.value(root, ())
    if not isinstance(data, dict) and data is not None:
        walker.problem((), _mark(root), f"the top level must be a mapping of `key: value` lines, not {_kind(data)}")
    elif data is None and not walker.problems:
        walker.problem((), _mark(root), "the document is empty; expected a mapping of `key: value` lines")
    return data, walker.source, _unique(walker.problems)


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where the document first nests deeper than `MAX_DEPTH`, from the parser's events
    (PyYAML parses iteratively; only composing recurses), or None."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                return mark.line + 1, mark.column + 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _unique(problems: list[Problem]) -> list[Problem]:
    """One problem per spot: an anchor used twice would otherwise report its faults twice."""
    seen: set[tuple[int, int, str]] = set()
    out: list[Problem] = []
    for problem in problems:
        spot = (problem.line, problem.col, problem.message)
        if spot not in seen:
            seen.add(spot)
            out.append(problem)
    return out
