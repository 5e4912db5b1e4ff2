"""YAML text → plain data plus a `SourceMap`, with every problem located.

PyYAML's loaders forget where things stood and silently keep the last of two
duplicate keys; a plan with two `ranker:` entries would quietly lose one. So we
only *compose* the document (SafeLoader: no arbitrary objects are ever built)
and walk the node tree ourselves, reporting instead of guessing. The 1-based
(line, col) of every value and every mapping key is recorded by the same walk,
but only when first asked for (a problem to locate): a valid 50,000-service
plan has a million of them and never needs one.

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

Shared by plans and drills: nothing here knows either format.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

import core.yamlcompose as yamlcompose
from core.yamlcompose import MAX_DEPTH, Inexact
from core.problems import Path, Problem, SourceMap

MAX_NODES = 100_000
"""Nodes that alias expansions may always add (a "billion laughs" guard)..."""
ALIAS_RATIO = 10
"""...plus this many per node written out, so large plans may use anchors freely."""

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_MERGE = _TAG + "merge"
_INT = _TAG + "int"
_SEQ = _TAG + "seq"
_MAP = _TAG + "map"
_CONSTRUCTOR = SafeConstructor()
_SCALARS = {
    _TAG + "null": SafeConstructor.construct_yaml_null,
    _TAG + "bool": SafeConstructor.construct_yaml_bool,
    _TAG + "int": SafeConstructor.construct_yaml_int,
    _TAG + "float": SafeConstructor.construct_yaml_float,
    _TAG + "str": SafeConstructor.construct_yaml_str,
}
TEXT_KEYS = frozenset({"on"})
"""YAML 1.1 booleans a format uses as a key (`notify[].on`, like Argo's and GitHub's `on:`):
read as the text written, as YAML 1.2 reads them. Other such keys (`yes:`) stay errors."""
_KIND_OF_TAG = {"null": "null", "bool": "a boolean", "int": "a number", "float": "a number"}


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


def _decimal(text: str) -> bool:
    """Plain decimal digits, which construct_yaml_int reads as `int(text)` (after its detours)."""
    return text.isdigit() and text.isascii() and (text[0] != "0" or text == "0")


def _empty(node: Node) -> bool:
    return node.value == "" and not node.style  # plain style is '' in libyaml, None in PyYAML


class _Walker:
    def __init__(self, file: str, fast: bool = False, record: bool = True, aliases: bool = True) -> None:
        self.fast = fast
        """The tree came from libyaml (see `_Inexact`)."""
        self.record = record
        """Record every node's position in `source` (else `load_yaml` records them on first use)."""
        self.walk = self.value if record or aliases else self.plain
        """What reads a child node: `plain` when no node can be met twice and nothing is recorded."""
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
            raise Inexact
        return _tag(node)

    def problem(self, path: Path, at: tuple[int, int], message: str) -> None:
        self.problems.append(Problem(path, message, self.source.file, at[0], at[1]))

    def value(self, node: Node, path: Path) -> Any:
        if self._expanding:
            self._expanded += 1
            if self._expanded > MAX_NODES + ALIAS_RATIO * self._written:
                if self.fast:
                    raise Inexact  # the pure-Python path checks the text's depth first
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
        if self.record:
            marks = self.source.marks
            if path not in marks:
                mark = node.start_mark
                marks[path] = (mark.line + 1, mark.column + 1)
        if len(path) >= MAX_DEPTH:
            if self.fast:
                raise Inexact  # libyaml nests up to 1,000 deep: the pure-Python path judges depth
            if len(path) > MAX_DEPTH:  # aliases nest without nesting the text
                if not self._too_big:
                    self._too_big = True
                    self.problem(path[:MAX_DEPTH], _mark(node), f"nested more than {MAX_DEPTH} levels deep through aliases")
                return None
        if type(node) is ScalarNode:
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
                if node.tag != _SEQ:
                    self.problem(path, _mark(node), f"unsupported YAML tag {self.tag(node)!r}; use a plain list")
                walk = self.walk
                return [walk(item, path + (i,)) for i, item in enumerate(node.value)]
            if node.tag != _MAP:
                self.problem(path, _mark(node), f"unsupported YAML tag {self.tag(node)!r}; use a plain mapping")
            return self.mapping(node, path)
        finally:
            self._active.discard(key)
            self._expanding -= again

    def plain(self, node: Node, path: Path) -> Any:
        """`value` for a document without aliases whose positions are recorded later: no node
        is met twice, so there is nothing to count, guard or record. Anything unusual (a tag,
        the depth limit) goes to `value`."""
        if len(path) >= MAX_DEPTH:
            return self.value(node, path)
        kind = type(node)
        if kind is ScalarNode:
            return node.value if node.tag == _STR else self.scalar(node, path)
        if kind is MappingNode and node.tag == _MAP:
            return self.mapping(node, path)
        if kind is SequenceNode and node.tag == _SEQ:
            walk = self.plain
            return [walk(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.value(node, path)

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag == _INT and _decimal(node.value):
            return int(node.value)
        if tag == _TAG + "timestamp":
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
        if self.fast and node.flow_style:
            for k, v in node.value:
                if _empty(k) or _empty(v):
                    raise Inexact  # libyaml places `{a: }`'s empty value at the next token, PyYAML after the colon
        if not self.record:
            walk = self.walk
            return {key: walk(value_node, path + (key,)) for key, _, value_node in self.entries(node, path)}
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
        first: dict[str, Node] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _STR and type(key_node) is ScalarNode:
                key: str = key_node.value  # `key`'s first case, inline: nearly every key
            elif key_node.tag == _MERGE:
                merges.append((key_node, value_node))
                continue
            else:
                found = self.key(key_node, path)
                if found is None:
                    continue
                key = found
            if key in first:
                self.problem(
                    path + (key,),
                    _mark(key_node),
                    f"duplicate key {key!r} (first defined on line {first[key].start_mark.line + 1}); "
                    "YAML would silently keep only the last one",
                )
                continue
            first[key] = key_node
            explicit.append((key, key_node, value_node))
        if not merges:
            return explicit
        seen = set(first)
        for key_node, value_node in merges:
            for entry in self.merged(key_node, value_node, path):
                if entry[0] not in seen:
                    seen.add(entry[0])
                    explicit.append(entry)
        return explicit

    def key(self, node: Node, path: Path) -> str | None:
        if node.tag == _STR and type(node) is ScalarNode:
            return node.value
        if type(node) is ScalarNode and node.value in TEXT_KEYS and not node.style:  # plain, not quoted
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
            raise Inexact  # the pure-Python path checks the depth of a key's text too
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
    The positions are recorded when first asked for, by walking the text again
    the same way: most documents are valid and never need them.
    """
    with yamlcompose.collector_paused():
        fast = yamlcompose.C_LOADER is not None and "\t" not in text
        try:
            return _load(text, file, fast=fast, record=False)
        except Inexact:
            return _load(text, file, fast=False, record=False)


def _positions(text: str, file: str, fast: bool) -> tuple[dict[Path, tuple[int, int]], dict[Path, tuple[int, int]]]:
    """`load_yaml`'s positions, recorded by the walk that read the data."""
    with yamlcompose.collector_paused():
        source = _load(text, file, fast=fast, record=True)[1]
    return source.marks, source.key_marks


def _load(text: str, file: str, *, fast: bool, record: bool = True) -> tuple[Any, SourceMap, list[Problem]]:
    walker = _Walker(file, fast, record, aliases="*" in text)
    try:
        if not fast:
            too_deep = yamlcompose.too_deep(text)
            if too_deep is not None:
                walker.problem((), too_deep, f"nested more than {MAX_DEPTH} levels deep; a plan needs a handful")
                return None, walker.source, walker.problems
        root = yamlcompose.compose(text, fast=fast)
    except yaml.YAMLError as err:
        walker.problem(*yamlcompose.yaml_error(err, text))
        return None, walker.source, walker.problems
    if root is None:
        walker.problem((), (1, 1), "the file is empty; expected a mapping of `key: value` lines")
        return None, walker.source, walker.problems
    data = walker.walk(root, ())
    if not record:
        walker.source = SourceMap(file, fill=lambda: _positions(text, file, fast))
    if not isinstance(data, dict) and data is not None:
        walker.problem((), _mark(root), f"the top level must be a mapping of `key: value` lines, not {_kind(data)}")
    elif data is None and not walker.problems:
        walker.problem((), _mark(root), "the document is empty; expected a mapping of `key: value` lines")
    return data, walker.source, _unique(walker.problems)


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
