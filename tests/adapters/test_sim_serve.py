"""`interlock sim serve` in-process, with no other server: listeners answer as the simulated
world says, metrics count what was served, faults change behaviour (and cascade through
contracts), and the load generator splits flag-only traffic the way Unleash's SDKs would."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from adapters.sim.httpmini import Connection
from adapters.sim.loadgen import flag_on, murmur3_32
from adapters.sim.serve import LoadConfig, ServeConfig, SimServer, serve

REPO = Path(__file__).resolve().parents[2]
PLAN = str(REPO / "examples" / "recsys-stack.yaml")


def with_server(body: Callable[[SimServer, Connection], Awaitable[Any]], load: LoadConfig | None = None) -> Any:
    async def go() -> Any:
        stop = asyncio.Event()
        ready: list[SimServer] = []
        task = asyncio.create_task(serve(ServeConfig(plan=PLAN, seed=3, latency_scale=0.0, load=load), stop,
                                         ready.append))
        while not ready:
            await asyncio.sleep(0.01)
            if task.done():
                task.result()
        admin = Connection(f"127.0.0.1:{ready[0].admin_port}")
        try:
            return await body(ready[0], admin)
        finally:
            admin.close()
            stop.set()
            await task

    return asyncio.run(go())


async def call(conn: Connection, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, data = await conn.request(method, path, body=b"" if body is None else json.dumps(body).encode())
    return status, (json.loads(data) if data.startswith(b"{") else data.decode())


async def hit(server: SimServer, service: str, role: str, n: int) -> list[int]:
    conn = Connection(f"127.0.0.1:{server.listeners[service][role]}")
    try:
        return [(await conn.request("GET", f"/{service}"))[0] for _ in range(n)]
    finally:
        conn.close()


def counter(text: str, service: str, version: str, code: str) -> int:
    match = re.search(rf'interlock_requests_total\{{service="{service}",version="{version}",code="{code}"\}} (\d+)', text)
    assert match, (service, version, code)
    return int(match.group(1))


def test_murmur3_matches_the_reference_vectors() -> None:
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"", 1) == 0x514E28B7
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723


def test_flag_evaluation_is_sticky_nested_and_proportional() -> None:
    users = [f"user-{i}" for i in range(4000)]
    at = {p: {u for u in users if flag_on(u, "embedder+ranker", p)} for p in (0, 20, 50, 100)}
    assert at[0] == set() and at[100] == set(users)
    assert at[20] < at[50]  # a bigger stage keeps everyone who already had the new version
    assert abs(len(at[50]) / len(users) - 0.5) < 0.03
    assert {u for u in users if flag_on(u, "other", 50)} != at[50]  # the group id picks the users


def test_every_service_version_has_a_listener_and_zeroed_series_from_the_start() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        assert set(server.listeners) == {"features", "embedder", "ranker", "api"}
        assert all(set(roles) == {"stable", "canary"} for roles in server.listeners.values())
        status, text = await call(admin, "GET", "/metrics")
        assert status == 200
        assert counter(text, "ranker", "6.0", "200") == 0 and counter(text, "ranker", "6.0", "500") == 0
        assert 'interlock_prediction_reference{service="ranker",bin="4"}' in text
        assert await hit(server, "api", "canary", 30) == [200] * 30
        assert await hit(server, "api", "stable", 10) == [200] * 10
        _, text = await call(admin, "GET", "/metrics")
        assert counter(text, "api", "2.0", "200") == 30 and counter(text, "api", "1.9", "200") == 10
        count = re.search(r'interlock_request_duration_seconds_count\{service="api",version="2.0"\} (\d+)', text)
        assert count and int(count.group(1)) == 30

    with_server(body)


def test_faults_change_a_version_and_adapter_faults_are_refused() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        status, answer = await call(admin, "POST", "/faults", {"kind": "error_rate", "service": "api", "value": 1.0})
        assert status == 200 and answer["faults"] == [{"kind": "error_rate", "service": "api", "value": 1.0}]
        assert await hit(server, "api", "canary", 20) == [500] * 20
        assert await hit(server, "api", "stable", 20) == [200] * 20  # `version` defaults to the new one
        status, answer = await call(admin, "POST", "/faults", {"kind": "router_timeout"})
        assert status == 400 and "adapter fault" in answer["error"] and "SIGSTOP" in answer["error"]
        status, answer = await call(admin, "POST", "/faults", {"kind": "error_rate", "service": "nope", "value": 0.5})
        assert status == 400 and "unknown service 'nope'" in answer["error"]
        status, answer = await call(admin, "POST", "/faults", {"kind": "metrics_outage"})
        assert status == 200
        assert (await call(admin, "GET", "/metrics"))[0] == 503
        status, answer = await call(admin, "DELETE", "/faults")
        assert status == 200 and answer["faults"] == []
        assert (await call(admin, "GET", "/metrics"))[0] == 200
        assert await hit(server, "api", "canary", 20) == [200] * 20

    with_server(body)


def test_a_schema_break_upstream_cascades_into_the_consumer_canary() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        exposure = {"flags": {"features-v32": {"percent": 100}, "embedder-v3": {"percent": 50},
                              "ranker-v6": {"percent": 50}},
                    "routes": {"embedder": 50, "ranker": 50}}
        status, answer = await call(admin, "PUT", "/exposure", exposure)
        assert status == 200 and answer["services"]["ranker"] == 50.0
        assert answer["flags"]["ranker-v6"]["cohort"] == "embedder+ranker"  # the lockstep group's cohort
        assert (await hit(server, "ranker", "canary", 200)).count(500) < 5
        await call(admin, "POST", "/faults", {"kind": "schema_break", "service": "embedder",
                                              "contract": "embeddings", "produces": 9})
        failed = (await hit(server, "ranker", "canary", 400)).count(500)
        assert 0.2 * 400 < failed < 0.45 * 400  # the new ranker cannot read embeddings 9: +0.3 errors

    with_server(body)


def test_the_load_generator_splits_a_flag_only_service_by_the_flag() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        await call(admin, "PUT", "/exposure", {"flags": {"features-v32": {"percent": 30, "cohort": "features"}}})
        _, before = await call(admin, "GET", "/metrics")
        await asyncio.sleep(2.0)
        _, after = await call(admin, "GET", "/metrics")
        new = counter(after, "features", "3.2", "200") - counter(before, "features", "3.2", "200")
        old = counter(after, "features", "3.1", "200") - counter(before, "features", "3.1", "200")
        assert new + old > 100
        assert 0.15 < new / (new + old) < 0.45
        _, state = await call(admin, "GET", "/state")
        assert state["exposure_source"] == "admin" and state["load"]["features"]["failed"] == 0

    with_server(body, load=LoadConfig(rps_scale=2.0))


def test_bad_admin_requests_are_answered_not_crashed() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        assert (await call(admin, "GET", "/nowhere"))[0] == 404
        assert (await call(admin, "POST", "/metrics"))[0] == 405
        status, answer = await call(admin, "PUT", "/exposure", {"flags": {"ghost": {"percent": 5}}})
        assert status == 400 and "unknown flag 'ghost'" in answer["error"]
        status, _ = await admin.request("POST", "/faults", body=b"not json")
        assert status == 400
        assert (await call(admin, "GET", "/healthz"))[0] == 200

    with_server(body)


def test_the_config_round_trips_through_json() -> None:
    config = ServeConfig(plan=PLAN, seed=4, listeners={"api": {"stable": 1234}},
                         load=LoadConfig(routes={"api": "127.0.0.1:9"}, token_env="TOKEN_VAR"))
    assert ServeConfig.from_json(config.to_json()) == config
    assert "TOKEN_VAR" in config.to_json()


def test_a_missing_token_variable_is_named_and_stops_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.sim.serve import run

    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    config = ServeConfig(plan=PLAN, load=LoadConfig(unleash_url="http://127.0.0.1:9", token_env="NO_SUCH_TOKEN_VAR"))
    assert run(config) == 2


def test_sim_serve_runs_as_a_process_until_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    ready = tmp_path / "ready.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli.stack_cmd", "sim", "serve", PLAN, "--no-load",
                             "--ready-file", str(ready)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        ports = json.loads(ready.read_text())
        assert ports["pid"] == proc.pid
        answer = httpx.get(f"http://127.0.0.1:{ports['listeners']['ranker']['canary']}/ranker", timeout=5)
        assert answer.json()["version"] == "6.0"
        assert httpx.get(f"http://127.0.0.1:{ports['admin_port']}/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"admin http://127.0.0.1:{ports['admin_port']}" in out and "ranker" in out
