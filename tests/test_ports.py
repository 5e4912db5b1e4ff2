"""Ports are complete: every adapter offers every method of the port it implements
(lifecycle included), so core and the console never cross a port by duck typing."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from adapters.caddy import CaddyRouter
from adapters.clock import RealClock
from adapters.environment import Unconfigured
from adapters.flags_http import HttpFlags
from adapters.gateway_api import GatewayRouter
from adapters.haproxy import HAProxyRouter
from adapters.prometheus import PrometheusMetrics
from adapters.sim.ports import SimFaults, SimFlags, SimMetrics, SimRouter
from adapters.unleash import UnleashFlags
from core.clock import Clock, HeldClock, VirtualClock
from core.ports import FaultInjector, FlagService, MetricSource, Router

ROOT = Path(__file__).resolve().parents[1]

IMPLEMENTATIONS = [
    (FlagService, [UnleashFlags, HttpFlags, SimFlags, Unconfigured]),
    (Router, [HAProxyRouter, CaddyRouter, GatewayRouter, SimRouter, Unconfigured]),
    (MetricSource, [PrometheusMetrics, SimMetrics, Unconfigured]),
    (FaultInjector, [SimFaults]),
    (Clock, [RealClock, VirtualClock, HeldClock]),
]


def _methods(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")}


@pytest.mark.parametrize(("port", "classes"), IMPLEMENTATIONS, ids=lambda p: getattr(p, "__name__", ""))
def test_every_adapter_offers_the_whole_port(port: type, classes: list[type]) -> None:
    needed = _methods(port)
    assert needed, port
    for cls in classes:
        missing = sorted(name for name in needed if not callable(getattr(cls, name, None)))
        assert missing == [], f"{cls.__name__} lacks {missing} of {port.__name__}"
        for name in needed:
            if inspect.iscoroutinefunction(getattr(port, name)):
                assert inspect.iscoroutinefunction(getattr(cls, name)), f"{cls.__name__}.{name} must be async"


@pytest.mark.parametrize("module", ["core/engine.py", "tui/console/app.py"])
def test_nothing_crosses_a_port_by_duck_typing(module: str) -> None:
    calls = [
        node.lineno
        for node in ast.walk(ast.parse((ROOT / module).read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr")
    ]
    assert calls == []


def test_a_virtual_clock_has_no_speed_to_set() -> None:
    with pytest.raises(ValueError, match="virtual clock has no speed"):
        VirtualClock().set_speed(2.0)
    clock = RealClock(speed=2.0)
    clock.set_speed(4.0)
    assert clock.speed == 4.0
