"""pydantic's errors → `FILE:LINE:COL: path: message` problems that say what would be valid.

pydantic knows *what* is wrong but not *where* (it never saw the YAML) and it speaks in its
own terms ("Extra inputs are not permitted", one error per union member). This joins its
errors to the `SourceMap` of :mod:`core.yamlsrc`. It knows no plan: plans
(:mod:`core.planload`) and drills (:mod:`core.drill`) both use it."""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel, ValidationError

from core.problems import Path, Problem, SourceMap, located


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """By position in the file, each distinct problem once."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line, p.col))


@dataclass(frozen=True)
class _Fork:
    """A union the error's `loc` passed through (pydantic tags each member)."""

    path: Path
    union: Any
    via_model: bool


@dataclass(frozen=True)
class _Walked:
    error: dict[str, Any]
    path: Path
    forks: tuple[_Fork, ...]


def validation_problems(
    err: ValidationError, model: type[BaseModel], data: Any, source: SourceMap
) -> list[Problem]:
    """Every error of `model.model_validate(data)` as a located, readable problem."""
    walked = []
    for error in err.errors(include_url=False):
        path, _, forks = _walk(model, error["loc"])
        walked.append(_Walked(cast(dict[str, Any], error), path, tuple(forks)))
    return _translate(walked, model, data, source)


def _translate(walked: list[_Walked], model: type[BaseModel], data: Any, source: SourceMap) -> list[Problem]:
    problems: list[Problem] = []
    by_fork: dict[Path, list[_Walked]] = {}
    for item in walked:
        if item.forks:
            by_fork.setdefault(item.forks[0].path, []).append(item)
        else:
            problems.append(_problem(item, model, data, source))
    for path, group in by_fork.items():
        value = _lookup(data, path)
        via_model = [w for w in group if w.forks[0].via_model]
        if isinstance(value, dict) and via_model:
            # A mapping was clearly meant as the model member: only its errors matter.
            rest = [_Walked(w.error, w.path, w.forks[1:]) for w in via_model]
            problems += _translate(rest, model, data, source)
        else:
            options = " or ".join(_describe(m) for m in _members(group[0].forks[0].union))
            problems.append(located(source, path, f"expected {options}, got {_got(value)}"))
    return problems


def _problem(item: _Walked, model: type[BaseModel], data: Any, source: SourceMap) -> Problem:
    error, path = item.error, item.path
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        name = path[-1] if path else "?"
        return located(source, path[:-1], f"missing required field '{name}'", key=True)
    if kind == "extra_forbidden":
        _, parent, _ = _walk(model, error["loc"][:-1])
        allowed = _field_names(parent)
        name = str(path[-1])
        message = f"unknown field '{name}'"
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        elif allowed:
            message += f"; allowed fields: {', '.join(allowed)}"
        return located(source, path, message, key=True)
    _, target, _ = _walk(model, error["loc"])
    return located(source, path, _message(kind, ctx, value, target, error["msg"]))


def _message(kind: str, ctx: dict[str, Any], value: Any, target: Any, fallback: str) -> str:
    got = _got(value)
    if kind == "literal_error":
        allowed = [str(v) for v in get_args(target)] if get_origin(target) is Literal else []
        if not allowed:
            return f"expected {ctx.get('expected', 'another value')}, got {got}"
        options = ", ".join(repr(v) for v in allowed)
        message = f"expected {'one of ' if len(allowed) > 1 else ''}{options}; got {got}"
        close = difflib.get_close_matches(str(value), allowed, n=1)
        return message + (f"; did you mean '{close[0]}'?" if close else "")
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        message = str(ctx["error"])
        return f"{message}, got {got}" if message.startswith("expected") and "got" not in message else message
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {got}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"expected a number, got {got}"
    if kind in ("string_type", "string_sub_type"):
        return f"expected text, got {got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {got}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return f"expected {_describe(target) if _is_model(target) else 'a mapping'}, got {got}"
    if kind in ("list_type", "tuple_type", "set_type"):
        single = isinstance(value, (int, float)) or (isinstance(value, str) and value.isidentifier())
        hint = f"; for one item write [{value}]" if single and not isinstance(value, bool) else ""
        return f"expected a list, got {got}{hint}"
    bounds = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "at least"),
              "less_than": ("lt", "less than"), "less_than_equal": ("le", "at most")}
    if kind in bounds:
        key, words = bounds[kind]
        return f"must be {words} {number_text(ctx.get(key))}, got {got}"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"must be at least {ctx.get('min_length')} characters long"
    return f"{fallback}, got {got}"


# --- walking the model type along an error's loc ---------------------------


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Path, Any, list[_Fork]]:
    """The document path of `loc`, the type expected there, and the unions on the way."""
    tp: Any = model
    path: list[str | int] = []
    forks: list[_Fork] = []
    for part in loc:
        tp = _normal(tp)
        members = _members(tp)
        if len(members) > 1:
            chosen = next((m for m in members if _is_model(m) and m.__name__ == part), None)
            forks.append(_Fork(tuple(path), tp, chosen is not None))
            if chosen is None:
                others = [m for m in members if not _is_model(m)]
                chosen = others[0] if len(others) == 1 else None
            tp = chosen
            continue
        if part == "[key]":
            continue
        if _is_model(tp):
            name, tp = _field(tp, str(part))
            path.append(name)
        elif get_origin(tp) is dict:
            path.append(part)
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            path.append(part)
            tp = get_args(tp)[0]
        else:
            path.append(part)
            tp = None
    return tuple(path), _normal(tp), forks


def _normal(tp: Any) -> Any:
    """Strip `Annotated` and `Optional`; a real union stays a union."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        members = _members(tp)
        if len(members) == 1:
            tp = members[0]
            continue
        return tp


def _members(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType):
        return [_unannotated(m) if _is_model(_unannotated(m)) else m for m in get_args(tp) if m is not type(None)]
    return []


def _unannotated(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field(model: type[BaseModel], part: str) -> tuple[str, Any]:
    """The field `part` names (by alias or by name): its document name and type."""
    for name, info in model.model_fields.items():
        if part in (name, info.alias):
            return info.alias or name, info.annotation
    return part, None


def _field_names(tp: Any) -> list[str]:
    if not _is_model(tp):
        return []
    return [info.alias or name for name, info in tp.model_fields.items()]


_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _describe(tp: Any) -> str:
    """What a value of this type looks like, for "expected ..." messages."""
    base = _unannotated(tp)
    if _is_model(base):
        return "a mapping {" + ", ".join(_field_names(base)) + "}"
    if get_origin(base) is Literal:
        return " or ".join(repr(v) for v in get_args(base))
    if base in (int, float):
        bounds: dict[str, Any] = {}
        for meta in get_args(tp)[1:] if get_origin(tp) is Annotated else ():
            for item in getattr(meta, "metadata", [meta]):
                bounds |= {k: getattr(item, k) for k in _SYMBOLS if getattr(item, k, None) is not None}
        noun = "a whole number" if base is int else "a number"
        low, high = [k for k in bounds if k[0] == "g"], [k for k in bounds if k[0] == "l"]
        if low and high:
            opening, closing = "(" if low[0] == "gt" else "[", ")" if high[0] == "lt" else "]"
            return f"{noun} in {opening}{number_text(bounds[low[0]])}, {number_text(bounds[high[0]])}{closing}"
        return " ".join([noun] + [f"{_SYMBOLS[k]} {number_text(v)}" for k, v in bounds.items()])
    names = {str: "text", bool: "true or false", list: "a list", dict: "a mapping"}
    return names.get(get_origin(base) or base, "a valid value")


def number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _got(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return number_text(value)


def _lookup(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
