"""Data contracts: what the data behind a contract name must look like, and how fresh,
complete and plentiful it must be before (and while) a service that reads it moves.

A plan's `produces`/`consumes` say which *versions* of a contract two services
exchange; that decides the order. They say nothing about the data itself: a new
embedder that reads `features: [7]` goes out just as happily on features that
stopped arriving an hour ago, on rows with half their fields null, or on payloads
whose `vector` became a string. The top-level `contracts:` section declares, per
contract name, the fields (a JSON Schema) and the checks on the data a consumer
reads (`core.datagates` turns them into gates):

- `freshness: {max_age: 15m}`: the newest input is at most this old;
- `completeness: {max_missing: 1%}`: records with a declared field missing or null;
- `volume: {max_decrease: 50%}`: rows per interval the new version reads, against
  the rows its baseline (the old version) reads;
- `schema: {max_invalid: 0%}`: sampled payloads that do not conform to `schema`.

`jsonschema` is not a dependency of interlock, and `core` is pure standard library
plus pydantic: `validate` here implements the subset of JSON Schema (draft 2020-12
keywords) a contract declares fields with, and `schema_problems` refuses any other
keyword at load time, by name and position, rather than ignoring it silently.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Callable

from pydantic import Field, model_validator

from core.spec import Duration as _Duration
from core.spec import Fraction as _Fraction
from core.spec import Strict as _Strict

_Share = Annotated[_Fraction, Field(ge=0, le=1)]


class Freshness(_Strict):
    max_age: _Duration
    """The newest input a consumer reads is at most this old (`data_freshness`, seconds)."""


class Completeness(_Strict):
    max_missing: _Share
    """Share of sampled records with a declared field missing or null (`data_missing`)."""


class Volume(_Strict):
    max_decrease: _Share | None = None
    """Rows per interval the new version reads may fall at most this far below the rows its
    baseline reads (`data_volume`)."""
    max_increase: Annotated[_Fraction, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> "Volume":
        if self.max_decrease is None and self.max_increase is None:
            raise ValueError("a volume check needs max_decrease or max_increase (e.g. 50%)")
        return self


class SchemaCheck(_Strict):
    max_invalid: _Share = 0.0
    """Share of sampled payloads that may fail the contract's `schema` (`data_invalid`)."""


class DataChecks(_Strict):
    freshness: Freshness | None = None
    completeness: Completeness | None = None
    volume: Volume | None = None
    schema_: SchemaCheck | None = Field(default=None, alias="schema")
    interval: _Duration = 60.0
    """How often each check measures during a stage (and the window it measures over)."""


class DataContract(_Strict):
    """One contract name's data: its declared fields and the checks on what consumers read."""

    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """A JSON Schema (the subset `validate` implements) for one payload of this contract."""
    checks: DataChecks = Field(default_factory=DataChecks)

    def declared_fields(self) -> list[str]:
        """The top-level properties the schema declares (what completeness counts)."""
        props = (self.schema_ or {}).get("properties")
        return sorted(props) if isinstance(props, dict) else []


# --- the JSON Schema subset ----------------------------------------------------

TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default", "examples"})
KEYWORDS = (
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "minItems", "maxItems",
)
"""The validation keywords `validate` implements; any other (but annotations) is refused."""

Problems = list[tuple[tuple[str | int, ...], str]]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def schema_problems(schema: object, at: tuple[str | int, ...] = ()) -> Problems:
    """(path below the schema, what is wrong) for every keyword `validate` would not apply
    as written: an unknown keyword, a type that is not a JSON type, a malformed value."""
    if not isinstance(schema, dict):
        return [(at, "a schema is a mapping, e.g. {type: object, properties: {...}}")]
    out: Problems = []
    for key, value in schema.items():
        where = at + (str(key),)
        if key in ANNOTATIONS:
            continue
        if key not in KEYWORDS:
            out.append((where, f"JSON Schema keyword {key!r} is not checked by interlock; "
                               f"use: {', '.join(KEYWORDS)}"))
        elif key == "type":
            names = value if isinstance(value, list) else [value]
            bad = [n for n in names if n not in TYPES]
            if bad or not names:
                out.append((where, f"expected one of {', '.join(TYPES)} (or a list of them), got {bad or value!r}"))
        elif key == "properties":
            if not isinstance(value, dict):
                out.append((where, "expected a mapping of field name to schema"))
            else:
                for name, sub in value.items():
                    out += schema_problems(sub, where + (str(name),))
        elif key in ("items",) or (key == "additionalProperties" and not isinstance(value, bool)):
            out += schema_problems(value, where)
        elif key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                out.append((where, "expected a list of field names"))
            elif isinstance(props := schema.get("properties", {}), dict):
                out += [(where, f"required field {v!r} is not declared under properties")
                        for v in value if v not in props]
        elif key == "enum":
            if not isinstance(value, list) or not value:
                out.append((where, "expected a non-empty list of allowed values"))
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if not _is_number(value):
                out.append((where, f"expected a number, got {value!r}"))
        elif key in ("minLength", "maxLength", "minItems", "maxItems"):
            if not _is_count(value):
                out.append((where, f"expected a whole number >= 0, got {value!r}"))
    return out


def _type_ok(value: object, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return _is_number(value) and float(value).is_integer()  # type: ignore[arg-type]
    if name == "number":
        return _is_number(value) and math.isfinite(value)  # type: ignore[arg-type]
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


_CHECKS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda v, b: v >= b, "maximum": lambda v, b: v <= b,
    "exclusiveMinimum": lambda v, b: v > b, "exclusiveMaximum": lambda v, b: v < b,
}


def validate(instance: object, schema: dict[str, Any], at: str = "$") -> str | None:
    """The first way `instance` fails `schema` (`$.vector[2]: expected number, got 'x'`), or
    None when it conforms. `schema` must have passed `schema_problems`."""
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_type_ok(instance, n) for n in names):
            return f"{at}: expected {' or '.join(names)}, got {_kind(instance)}"
    if "const" in schema and instance != schema["const"]:
        return f"{at}: expected {schema['const']!r}"
    if "enum" in schema and instance not in schema["enum"]:
        return f"{at}: {instance!r} is not one of {schema['enum']!r}"
    if _is_number(instance):
        for key, rule in _CHECKS.items():
            if key in schema and not rule(instance, schema[key]):
                return f"{at}: {instance!r} breaks {key} {schema[key]!r}"
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0) or len(instance) > schema.get("maxLength", math.inf):
            return f"{at}: length {len(instance)} is outside minLength/maxLength"
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0) or len(instance) > schema.get("maxItems", math.inf):
            return f"{at}: {len(instance)} items is outside minItems/maxItems"
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(instance):
                why = validate(item, items, f"{at}[{i}]")
                if why is not None:
                    return why
    if isinstance(instance, dict):
        for name in schema.get("required", ()):
            if name not in instance:
                return f"{at}: missing required field {name!r}"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, value in instance.items():
            if name in props:
                why = validate(value, props[name], f"{at}.{name}")
            elif extra is False:
                why = f"{at}: field {name!r} is not declared"
            elif isinstance(extra, dict):
                why = validate(value, extra, f"{at}.{name}")
            else:
                why = None
            if why is not None:
                return why
    return None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def incomplete(record: object, fields: list[str]) -> bool:
    """A record with a declared field missing or null (what `completeness` counts)."""
    return not isinstance(record, dict) or any(record.get(name) is None for name in fields)
