"""Composing YAML text into a node tree, fast and located.

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
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from core.problems import Path

C_LOADER: type | None = getattr(yaml, "CSafeLoader", None)


if C_LOADER is not None:

    class _CachingLoader(C_LOADER):  # type: ignore[valid-type, misc]
        """libyaml's loader, but a plain scalar's tag is resolved once per distinct text.

        libyaml composes in C yet asks Python's `Resolver.resolve` for the tag of every node,
        which tries a list of regular expressions per plain scalar: a tenth of composing a
        large plan, whose texts repeat (`version`, `"1"`, names). A plain scalar's tag
        depends on its text alone (SafeLoader has no path resolvers: checked below), any
        other node's tag on its kind alone, so answers are kept per text for one document.
        """

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._plain: dict[str, str] = {}

        def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
            if kind is ScalarNode:
                if not implicit[0]:
                    return self.DEFAULT_SCALAR_TAG
                tag = self._plain.get(value)
                if tag is None:
                    tag = self._plain[value] = super().resolve(kind, value, implicit)
                return tag
            return super().resolve(kind, value, implicit)

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass  # only path resolvers use it

        def ascend_resolver(self) -> None:
            pass

    assert not _CachingLoader.yaml_path_resolvers, "the cached tags assume SafeLoader's resolvers"

MAX_DEPTH = 64
"""Upper bound on nested lists and mappings; a plan needs about six. PyYAML composes
recursively, so a document ~500 deep would otherwise end in a RecursionError."""


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


class Inexact(Exception):
    """libyaml's tree holds a node it places differently from PyYAML: compose again in Python."""


def too_deep(text: str) -> tuple[int, int] | None:
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

    libyaml when available and `fast`, raising `Inexact` for any document it
    refuses (the pure-Python path words the problem, so errors read the same
    either way); the pure-Python loader otherwise.
    (libyaml also takes some tabs PyYAML refuses: `load_yaml` sends text with
    tabs the slow way.)
    """
    if fast and C_LOADER is not None:
        try:
            root = yaml.compose(text, Loader=_CachingLoader)
        except (yaml.YAMLError, UnicodeError, ValueError):
            raise Inexact from None  # the pure-Python path words the problem
        if root is not None and "*" in text:
            aliases = (e.start_mark for e in yaml.parse(text, Loader=C_LOADER) if isinstance(e, yaml.AliasEvent))
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


def yaml_error(err: yaml.YAMLError, text: str) -> tuple[Path, tuple[int, int], str]:
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
