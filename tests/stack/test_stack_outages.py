"""Outages on the real stack: Unleash or Prometheus stopped (SIGSTOP: they keep their sockets
and answer nothing, like a hung server), and a router whose admin socket answers slowly.

The rollout runs in-process so every commanded percentage is recorded; the
servers are read directly (never through the slow proxy) and no reading may
exceed what had been commanded by then."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from adapters.stack.stack import Stack
from adapters.stack.unleash import UnleashServer
from adapters.unleash import UnleashFlags
from stackrun import (
    FLAGS, Recorder, Sampler, events, fast_plan, group_stage, reset, run_engine, shared_stack, sim_state,
    stop_shared, wait_state,
)


@pytest.fixture(scope="session")
def real_stack(stack_dir: Path, unleash: UnleashServer) -> Iterator[Stack]:
    yield shared_stack(stack_dir, unleash.url, unleash.token)
    stop_shared()


class FlagSampler(threading.Thread):
    """Reads every flag from Unleash, again and again; a read that times out is no sample."""

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        async def go() -> None:
            flags = UnleashFlags(self.stack.urls["unleash"], token=self.stack.token, timeout=0.5)
            while not self.done.is_set():
                try:
                    read = {f: await flags.get_rollout(f) for f in FLAGS}
                    self.samples.append((time.time(), read))
                except Exception:  # noqa: BLE001 - Unleash is stopped: no sample
                    pass
                await asyncio.sleep(0.05)
            await flags.aclose()

        asyncio.run(go())

    def stop(self) -> list[tuple[float, dict[str, float]]]:
        self.done.set()
        self.join(10)
        return self.samples


SERVICE_OF = {"features-v32": "features", "embedder-v3": "embedder", "ranker-v6": "ranker",
              "route:embedder": "embedder", "route:ranker": "ranker", "route:api": "api"}


def assert_no_overshoot(samples: list[tuple[float, dict[str, float]]], recorder: Recorder) -> None:
    assert samples
    for at, read in samples:
        for name, value in read.items():
            service = SERVICE_OF[name]
            assert value <= recorder.max_target(service, at) + 0.5, (name, value, at)


def test_an_unleash_outage_holds_the_rollout_nothing_overshoots_and_it_goes_on(
    real_stack: Stack, unleash: UnleashServer, tmp_path: Path
) -> None:
    reset(real_stack)
    plan, journal = fast_plan(real_stack, tmp_path), tmp_path / "journal.db"
    seen: dict[str, Any] = {}
    sampler = FlagSampler(real_stack)
    sampler.start()

    async def outage(session: Any) -> None:
        await wait_state(session, lambda s: group_stage(s, "features") == ("baking", 0))
        while (await asyncio.to_thread(sim_state, real_stack))["exposure"]["services"]["features"] != 50.0:
            await asyncio.sleep(0.05)  # the load generator, like any SDK, keeps the flags it last read
        unleash.proc.pause()
        seen["start"] = time.time()
        try:
            await wait_state(session, lambda s: s.hold is not None, timeout=30)
            seen["reason"] = session.engine.state.hold.reason
            await asyncio.sleep(2.0)
            state = session.engine.state
            seen["phase"], seen["exposure"] = state.effective_phase, state.services["features"].exposure
        finally:
            unleash.proc.resume()
            seen["end"] = time.time()

    try:
        state, recorder = run_engine(plan, journal, real_stack, during=outage)
    finally:
        unleash.proc.resume()
        samples = sampler.stop()
    assert state.phase == "completed", state.reason
    assert "unleash" in seen["reason"] and "timed out" in seen["reason"]
    assert seen["phase"] == "held" and seen["exposure"] == 50.0  # the raise to 100% did not go through
    recorded = events(journal)
    during = [e for e in recorded if seen["start"] <= e["at"] <= seen["end"]]
    assert [e for e in during if e["kind"] == "command_failed"]
    assert not [e for e in during if e["kind"] == "exposure_applied"]
    assert [e for e in recorded if e["kind"] == "exposure_read" and e["at"] > seen["end"] and e["error"] is None]
    assert_no_overshoot(samples, recorder)


@pytest.mark.parametrize("limit", [10, 0])
def test_a_prometheus_outage_stops_the_rollout_as_the_gate_fields_say(
    real_stack: Stack, tmp_path: Path, limit: int
) -> None:
    """Limit 10 (the plan's): measurements error, the stage waits past its bake, and the rollout
    goes on once Prometheus answers. Limit 0: the first error ends the gate, which rolls back."""
    reset(real_stack)

    def error_limit(doc: dict) -> None:
        for gate in doc["gates"].values():
            gate["consecutive_error_limit"] = limit

    plan, journal = fast_plan(real_stack, tmp_path, edit=error_limit), tmp_path / "journal.db"
    seen: dict[str, Any] = {}

    async def outage(session: Any) -> None:
        await wait_state(session, lambda s: group_stage(s, "features") == ("baking", 0))
        real_stack.pause("prometheus")
        seen["start"] = time.time()
        try:
            await asyncio.sleep(6.0)  # three times the bake
            seen["stage"] = group_stage(session.engine.state, "features")
        finally:
            real_stack.resume("prometheus")
            seen["end"] = time.time()

    try:
        state, _ = run_engine(plan, journal, real_stack, during=outage)
    finally:
        real_stack.resume("prometheus")
    recorded = events(journal)
    during = [e for e in recorded if seen["start"] <= e["at"] <= seen["end"]]
    errors = [e for e in during if e["kind"] == "measured" and e["error"]]
    assert errors and all("prometheus" in e["error"] or "timed out" in e["error"] for e in errors)
    assert not [e for e in during if e["kind"] == "exposure_applied" and e["percent"] > 50]
    if limit:
        assert seen["stage"] == ("analyzing", 0)  # the bake is long over; no data, no advance
        assert state.phase == "completed", state.reason
    else:
        assert state.phase == "rolled_back"
        assert "gate" in state.reason and "errored" in state.reason
        assert state.services["features"].exposure == 0.0


class DelayProxy(threading.Thread):
    """A TCP proxy in front of HAProxy's admin socket that holds each connection `delay` seconds."""

    def __init__(self, target: str, delay: float):
        super().__init__(daemon=True)
        self.host, port = target.rsplit(":", 1)
        self.target_port, self.delay = int(port), delay
        self.port = 0
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.delay)
        up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
        writer.close()
        up_writer.close()

    def run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            self.stopped = asyncio.Event()
            await self.stopped.wait()
            server.close()

        asyncio.run(main())

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stopped.set)
        self.join(5)


def test_a_slow_router_makes_the_rollout_wait_and_nothing_overshoots(real_stack: Stack, tmp_path: Path) -> None:
    reset(real_stack)
    delay = 0.7
    proxy = DelayProxy(real_stack.urls["haproxy_admin"], delay)
    proxy.start()
    assert proxy.ready.wait(5)

    def slow_router(doc: dict) -> None:
        doc["environment"]["router"]["admin"] = f"127.0.0.1:{proxy.port}"
        doc["environment"]["router"]["timeout"] = "5s"

    plan, journal = fast_plan(real_stack, tmp_path, edit=slow_router), tmp_path / "journal.db"
    sampler = Sampler(real_stack)
    sampler.start()
    try:
        state, recorder = run_engine(plan, journal, real_stack)
    finally:
        samples = sampler.stop()
        proxy.stop()
    assert state.phase == "completed", state.reason
    assert_no_overshoot(samples, recorder)
    # each routed stage waited for both slow weight commands before its bake began
    for service in ("embedder", "api"):
        for stage in (0, 1):
            moved = [t for t, s in recorder.states if group_stage(s, service) == ("progressing", stage)]
            baking = [t for t, s in recorder.states if group_stage(s, service) == ("baking", stage)]
            assert moved and baking and baking[0] - moved[0] >= 2 * delay - 0.05, (service, stage)
    assert not [e for e in events(journal) if e["kind"] == "command_failed"]
