"""`evolve(obj, **changes)`: `dataclasses.replace` for the reducer's hot path.

`dataclasses.replace` inspects every field and goes through a frozen class's
`__init__`, whose every assignment takes the slow `object.__setattr__` path;
for the small records the reducer copies several times per event that was
half of all reduce time. `evolve` reads the slots with one `attrgetter` and
writes them through the slot descriptors, which is what a frozen `__init__`
does in effect. Only for slotted dataclasses whose fields are all `__init__`
parameters and that have no `__post_init__` (every record in `core`).
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, Callable, TypeVar

T = TypeVar("T")

Layout = tuple[dict[str, int], Callable[[Any], Any], tuple[Callable[[Any, Any], None], ...]]
_LAYOUTS: dict[type, Layout] = {}
_new = object.__new__


def _layout(cls: type) -> Layout:
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields) or hasattr(cls, "__post_init__") or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a plain slotted dataclass; use dataclasses.replace")
    names = [f.name for f in fields]
    getter = attrgetter(*names)
    read = (lambda o: (getter(o),)) if len(names) == 1 else getter
    setters = tuple(cls.__dict__[name].__set__ for name in names)
    layout = _LAYOUTS[cls] = ({name: i for i, name in enumerate(names)}, read, setters)
    return layout


def evolve(obj: T, **changes: Any) -> T:
    """A copy of the frozen dataclass `obj` with `changes` applied."""
    cls = type(obj)
    index, read, setters = _LAYOUTS.get(cls) or _layout(cls)
    values = list(read(obj))
    for name, value in changes.items():
        values[index[name]] = value
    new = _new(cls)
    for setter, value in zip(setters, values):
        setter(new, value)
    return new


def build(cls: type[T], values: tuple[Any, ...]) -> T:
    """An instance of the slotted dataclass `cls` from all its field values, in field order."""
    _, _, setters = _LAYOUTS.get(cls) or _layout(cls)
    new = _new(cls)
    for setter, value in zip(setters, values, strict=True):
        setter(new, value)
    return new
