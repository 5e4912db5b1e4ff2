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
  located at the alias, its children at the anchor. A recursive alias is a
  problem, and so is a document whose aliases expand to more than `MAX_NODES`
  nodes plus `ALIAS_RATIO` per node written (a "billion laughs" bomb); nodes
  written out count once, however large the plan;
- merge keys (`<<: *base`, or a list of them) are supported with YAML's
  semantics: explicit keys win, then earlier merged mappings win over later ones;
- anything else (custom `!tags`, `!!set`, `!!binary`, non-text keys, duplicate
  keys, an empty document, a top level that is not a mapping) is a problem.

Composing uses libyaml (`yaml.CSafeLoader`) when PyYAML has it: a 50,000-service
plan composes in about a second instead of a minute. Its nodes carry the same
(line, column) marks as the pure-Python loader's; aliases are the one thing
it does not locate (it hands back the anchor's node), so a document with `*`
in it has its alias positions read from libyaml's event stream. Its error
messages differ from PyYAML's, so a document libyaml refuses is composed
again by the pure-Python loader, whose wording and positions are the ones
users see; so is one nested `MAX_DEPTH` deep (libyaml stops only at 1,000, and
the pure-Python path checks the text's depth before composing), an alias bomb
and a key that is a list or mapping: the path users see for those stays one. The collector is paused while the tree is built: a large document
is hundreds of thousands of young objects, none of them garbage.

Shared by plans and drills: nothing here knows either format.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.problems import Path, Problem, SourceMap

MAX_NODES = 100_000
"""Nodes that alias expansions may always add (a "billion laughs" guard)..."""
ALIAS_RATIO = 10
"""...plus this many per node written out, so large plans may use anchors freely."""

_C_LOADER: type | None = getattr(yaml, "CSafeLoader", None)

MAX_DEPTH = 64
"""Upper bound on nested lists and mappings; a plan needs about six. PyYAML composes
recursively, so a document ~500 deep would otherwise end in a RecursionError."""

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_MERGE = _TAG + "merge"
_INT = _TAG + "int"
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

    def compose_node(self, parent: Node | None, index: object) -> Node:
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


class _Inexact(Exception):
    """libyaml's tree holds a node it places differently from PyYAML: compose again in Python."""


def _empty(node: Node) -> bool:
    return node.value == "" and not node.style  # plain style is '' in libyaml, None in PyYAML


class _Walker:
    def __init__(self, file: str, fast: bool = False) -> None:
        self.fast = fast
        """The tree came from libyaml (see `_Inexact`)."""
        self.source = SourceMap(file=file)
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        self._visited: set[int] = set()
        """`id(node.value)` of every list or mapping walked: meeting one again is an alias."""
        self._written = 0
        self._expanded = 0
        self._expanding = 0
        self._too_big = False

    def tag(self, node: Node) -> str:
        """A tag to name in a problem; libyaml reads some odd tags PyYAML refuses, so let PyYAML judge."""
        if self.fast and not node.tag.startswith(_TAG):
            raise _Inexact
        return _tag(node)

    def problem(self, path: Path, at: tuple[int, int], message: str) -> None:
        self.problems.append(Problem(path, message, self.source.file, at[0], at[1]))

    def value(self, node: Node, path: Path) -> Any:
        if self._expanding:
            self._expanded += 1
            if self._expanded > MAX_NODES + ALIAS_RATIO * self._written:
                if self.fast:
                    raise _Inexact  # the pure-Python path checks the text's depth first
                if not self._too_big:
                    self._too_big = True
                    self.problem(
                        path,
                        _mark(node),
                        f"aliases expand to more than {MAX_NODES} nodes plus {ALIAS_RATIO} per node "
                        "written (alias bomb?); write the values out or use fewer aliases",
                    )
                return None
        else:
            self._written += 1
        marks = self.source.marks
        if path not in marks:
            mark = node.start_mark
            marks[path] = (mark.line + 1, mark.column + 1)
        if len(path) >= MAX_DEPTH:
            if self.fast:
                raise _Inexact  # libyaml nests up to 1,000 deep: the pure-Python path judges depth
            if len(path) > MAX_DEPTH:  # aliases nest without nesting the text
                if not self._too_big:
                    self._too_big = True
                    self.problem(path[:MAX_DEPTH], _mark(node), f"nested more than {MAX_DEPTH} levels deep through aliases")
                return None
        if type(node) is ScalarNode:
            tag, text = node.tag, node.value
            if tag == _STR:
                return text
            if tag == _INT and text.isdigit() and text.isascii() and (text[0] != "0" or text == "0"):
                return int(text)  # what construct_yaml_int makes of plain decimals, without its detours
            return self.scalar(node, path)
        key = id(node.value)
        if key in self._active:
            self.problem(path, _mark(node), "a recursive alias refers to itself; write the value out")
            return None
        again = key in self._visited
        self._visited.add(key)
        self._active.add(key)
        self._expanding += again
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _TAG + "seq":
                    self.problem(path, _mark(node), f"unsupported YAML tag {self.tag(node)!r}; use a plain list")
                return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
            if node.tag != _TAG + "map":
                self.problem(path, _mark(node), f"unsupported YAML tag {self.tag(node)!r}; use a plain mapping")
            return self.mapping(node, path)
        finally:
            self._active.discard(key)
            self._expanding -= again

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag == _TAG + "timestamp":
            return node.value
        construct = _SCALARS.get(node.tag)
        if construct is None:
            self.problem(path, _mark(node), f"unsupported YAML tag {self.tag(node)!r}; use plain text, numbers or booleans")
            return node.value
        try:
            return construct(_CONSTRUCTOR, node)
        except (ValueError, yaml.YAMLError):
            self.problem(path, _mark(node), f"{node.value!r} is not a valid {_tag(node)}")
            return node.value

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        if self.fast and node.flow_style and any(_empty(k) or _empty(v) for k, v in node.value):
            raise _Inexact  # libyaml places `{a: }`'s empty value at the next token, PyYAML after the colon
        out: dict[str, Any] = {}
        key_marks = self.source.key_marks
        for key, key_node, value_node in self.entries(node, path):
            at = path + (key,)
            if at not in key_marks:
                mark = key_node.start_mark
                key_marks[at] = (mark.line + 1, mark.column + 1)
            out[key] = self.value(value_node, at)
        return out

    def entries(self, node: MappingNode, path: Path) -> list[tuple[str, Node, Node]]:
        """Explicit entries in order, then merged ones not already present."""
        explicit: list[tuple[str, Node, Node]] = []
        first_line: dict[str, int] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
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
            first_line[key] = key_node.start_mark.line + 1
            explicit.append((key, key_node, value_node))
        seen = set(first_line)
        for key_node, value_node in merges:
            for entry in self.merged(key_node, value_node, path):
                if entry[0] not in seen:
                    seen.add(entry[0])
                    explicit.append(entry)
        return explicit

    def key(self, node: Node, path: Path) -> str | None:
        if node.tag == _STR and type(node) is ScalarNode:
            return node.value
        if isinstance(node, ScalarNode) and node.value == "":
            self.problem(path + ("",), _mark(node), "an entry has no key; write `name: value`")
        elif isinstance(node, ScalarNode):
            kind = _KIND_OF_TAG.get(node.tag[len(_TAG) :]) if node.tag.startswith(_TAG) else None
            message = (
                f"key {node.value!r} is read as {kind}; keys must be text, so quote it: '{node.value}'"
                if kind
                else f"key {node.value!r} is tagged {self.tag(node)!r}; keys must be plain text"
            )
            self.problem(path + (node.value,), _mark(node), message)
        elif self.fast:
            raise _Inexact  # the pure-Python path checks the depth of a key's text too
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
    with collector_paused():
        try:
            return _load(text, file, fast=_C_LOADER is not None and "\t" not in text)
        except _Inexact:
            return _load(text, file, fast=False)


def _load(text: str, file: str, *, fast: bool) -> tuple[Any, SourceMap, list[Problem]]:
    walker = _Walker(file, fast)
    try:
        if not fast:
            too_deep = _too_deep(text)
            if too_deep is not None:
                walker.problem((), too_deep, f"nested more than {MAX_DEPTH} levels deep; a plan needs a handful")
                return None, walker.source, walker.problems
        root = compose(text, fast=fast)
    except yaml.YAMLError as err:
        walker.problem(*_yaml_error(err, text))
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


def compose(text: str, *, fast: bool = True) -> Node | None:
    """The node tree of one document, every node (aliases too) at its own position.

    libyaml when available and `fast`, raising `_Inexact` for any document it
    refuses (the pure-Python path words the problem, so errors read the same
    either way); the pure-Python loader otherwise.
    (libyaml also takes some tabs PyYAML refuses: `load_yaml` sends text with
    tabs the slow way.)
    """
    if fast and _C_LOADER is not None:
        try:
            root = yaml.compose(text, Loader=_C_LOADER)
        except (yaml.YAMLError, UnicodeError, ValueError):
            raise _Inexact from None  # the pure-Python path words the problem
        if root is not None and "*" in text:
            aliases = (e.start_mark for e in yaml.parse(text, Loader=_C_LOADER) if isinstance(e, yaml.AliasEvent))
            _locate_aliases(root, aliases)
        return root
    return yaml.compose(text, Loader=_LocatingLoader)


def _locate_aliases(root: Node, marks: Iterator[Any]) -> None:
    """Give every alias of libyaml's tree its own node placed at the alias.

    libyaml returns the anchor's node itself for an alias. Walking the tree in
    document order without entering a node twice meets the nodes in the order
    of their events, so the n-th node met again is the n-th alias; it is
    replaced by a copy (sharing its children) carrying the alias's mark, just
    as `_LocatingLoader` builds it.
    """
    seen = {id(root)}
    slots: list[tuple[list[Any], int, int]] = []
    _push_slots(root, slots)
    while slots:
        items, index, side = slots.pop()
        item = items[index]
        node = item[side] if side >= 0 else item
        if id(node) not in seen:
            seen.add(id(node))
            _push_slots(node, slots)
            continue
        alias = object.__new__(type(node))
        alias.__dict__.update(node.__dict__)
        alias.start_mark = next(marks)
        items[index] = alias if side < 0 else ((alias, item[1]) if side == 0 else (item[0], alias))


def _push_slots(node: Node, slots: list[tuple[list[Any], int, int]]) -> None:
    """Where `node`'s children stand (list, index, side of the pair or -1), last child first."""
    if isinstance(node, MappingNode):
        for i in range(len(node.value) - 1, -1, -1):
            slots += ((node.value, i, 1), (node.value, i, 0))
    elif isinstance(node, SequenceNode):
        slots += ((node.value, i, -1) for i in range(len(node.value) - 1, -1, -1))


def _yaml_error(err: yaml.YAMLError, text: str) -> tuple[Path, tuple[int, int], str]:
    """PyYAML's complaint as (path, position, message): always the root, one line."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = err.problem or err.context or "cannot be parsed"
        if err.context and err.problem and err.problem.startswith("but "):
            reason = f"{err.context}, {err.problem}"
        return (), at, f"not valid YAML: {reason}"
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        col = err.position - text.rfind("\n", 0, err.position)
        return (), (line, col), f"not valid YAML: unacceptable character #x{err.character:04x}: {err.reason}"
    return (), (1, 1), f"not valid YAML: {err}"


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large value is built (it makes no cycles worth
    collecting; a 10,000-service plan otherwise spends a third of its load in the collector)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
