"""`evolve(obj, **changes)` and `build(cls, values)`: `dataclasses.replace` and a
constructor for the reducer's hot path.

The reducer copies a few small frozen records for every event, and replaying a
long journal folds a million events. `dataclasses.replace` inspects every
field and goes through the frozen `__init__`, whose every assignment takes the
slow `object.__setattr__` path: that was half of all reduce time. The records
the reducer copies are therefore frozen dataclasses *without* slots, and a copy
is one dict copy in C: a new instance whose `__dict__` is a copy of the old one
updated with the changes (which is what a frozen `__init__` does in effect,
field by field). `dict.copy` clones the old table at once; filling the new
instance's own empty `__dict__` instead would insert and rehash field by field
(twice as slow). A change naming no field is refused, as `replace` would.

Only for dataclasses whose fields are all `__init__` parameters, that have no
`__post_init__` and no `__slots__` but `DICT_ONLY` (every record the reducer evolves).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

DICT_ONLY = ("__dict__",)
"""The one `__slots__` a record copied here may declare: `__slots__ = DICT_ONLY` keeps the
instance dict (the copy sets it) and makes a new instance cheaper. A class without
`__slots__` keeps its attributes inline until its `__dict__` is read or set, so creating
one prepares inline values that setting `__dict__` throws away (~0.25 µs of the ~0.6 µs
a copy costs on the development machine); with it, the new instance is bare."""

_NAMES: dict[type, tuple[str, ...]] = {}
_SIZES: dict[type, int] = {}
_new = object.__new__
_set = object.__setattr__


def _names(cls: type) -> tuple[str, ...]:
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields) or hasattr(cls, "__post_init__") or any(
        klass.__dict__.get("__slots__", DICT_ONLY) != DICT_ONLY for klass in cls.__mro__[:-1]
    ):
        raise TypeError(f"{cls.__name__} is not a plain dataclass without slots; use dataclasses.replace")
    names = _NAMES[cls] = tuple(f.name for f in fields)
    _SIZES[cls] = len(names)
    return names


def evolve(obj: T, **changes: Any) -> T:
    """A copy of the frozen dataclass `obj` with `changes` applied."""
    return evolved(obj, changes)


def evolved(obj: T, changes: dict[str, Any]) -> T:
    """`evolve(obj, **changes)` for changes already in a dict: a call with `**changes`
    would unpack it and build the callee's dict again, key by key (an answer's gate run
    changes eleven fields)."""
    cls = obj.__class__
    try:
        values = obj.__dict__ | changes
    except AttributeError:  # slots: say so
        _names(cls)
        raise
    if len(values) != _SIZES.get(cls, -1):
        _refuse_unknown(cls, changes)
    new = _new(cls)
    _set(new, "__dict__", values)
    return new


def _refuse_unknown(cls: type, changes: dict[str, Any]) -> None:
    unknown = sorted(set(changes) - set(_NAMES.get(cls) or _names(cls)))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")


def build(cls: type[T], values: tuple[Any, ...]) -> T:
    """An instance of the dataclass `cls` from all its field values, in field order."""
    new = _new(cls)
    _set(new, "__dict__", dict(zip(_NAMES.get(cls) or _names(cls), values, strict=True)))
    return new
