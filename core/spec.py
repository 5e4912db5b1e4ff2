"""The building blocks every plan and drill model shares: strict models and the
duration and percent fields as people write them (``30s``, ``10%``).

They live apart from :mod:`core.plan` so the gate and environment models
(:mod:`core.gatespec`, :mod:`core.envspec`) can use them without importing the plan."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from core.durations import parse_duration, parse_percent


def _duration(value: object) -> float:
    return parse_duration(value)


def _percent_fraction(value: object) -> float:
    return parse_percent(value)


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds; written in plans as ``30s``, ``5m``, ``1h30m`` or a bare number of seconds."""

Fraction = Annotated[float, BeforeValidator(_percent_fraction)]
"""A relative change; written as ``10%`` or ``0.1``."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _version_text(value: object) -> object:
    # `version: 3.1` in YAML is a float; people mean the string "3.1" (`core.planload` refuses
    # the ones YAML changed, like 9.10, asking for quotes).
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


Version = Annotated[str, BeforeValidator(_version_text)]
"""A version as people write it: text, a bare YAML number read back as its text."""

