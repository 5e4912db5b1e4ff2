"""The HAProxy adapter's line protocol, against a fake runtime API on a loopback socket.

The real HAProxy is in tests/stack/test_stack_routers.py; the fake lets a test
see every command line and make the socket misbehave (errors, silence)."""

from __future__ import annotations

import asyncio
import re

import pytest

from adapters.haproxy import Backend, HAProxyRouter
from adapters.http_retry import RetryPolicy
from core.ports import AdapterError

FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01)


async def with_fake(body, *, weights=None, silent=False):
    """Run `body(router, lines)` against a fake runtime API."""
    weights = dict(weights or {"embedder/stable": 100, "embedder/canary": 0})
    lines: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        lines.append(line)
        if silent:
            await asyncio.sleep(5)
        if m := re.fullmatch(r"set weight (\S+) (\d+)", line):
            if m.group(1) in weights:
                weights[m.group(1)] = int(m.group(2))
                writer.write(b"\n")
            else:
                writer.write(b"No such server.\n\n")
        elif m := re.fullmatch(r"get weight (\S+)", line):
            writer.write(f"{weights[m.group(1)]} (initial 100)\n\n".encode() if m.group(1) in weights else b"No such server.\n\n")
        else:
            writer.write(b"Unknown command.\n\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await body(HAProxyRouter(f"127.0.0.1:{port}", timeout=0.2, policy=FAST), lines), weights
    finally:
        server.close()


def test_set_weight_sends_absolute_weights_out_of_100_and_reads_them_back() -> None:
    async def body(router, lines):
        await router.set_weight("embedder", 25)
        return await router.get_weight("embedder"), list(lines)

    (percent, lines), weights = asyncio.run(with_fake(body))
    assert percent == 25.0
    assert lines[:2] == ["set weight embedder/canary 25", "set weight embedder/stable 75"]
    assert weights == {"embedder/stable": 75, "embedder/canary": 25}


def test_an_error_answer_is_an_adapter_error_with_haproxys_words() -> None:
    async def body(router, lines):
        with pytest.raises(AdapterError, match=r"haproxy: set weight ranker/canary 5: No such server\."):
            await router.set_weight("ranker", 5)
        return len(lines)

    calls, _ = asyncio.run(with_fake(body))
    assert calls == 1  # HAProxy answered: no retry


def test_routes_map_to_named_backends_and_servers() -> None:
    async def body(router, lines):
        router.routes["embedder"] = Backend("be_emb", stable="v24", canary="v30")
        await router.set_weight("embedder", 100)
        return list(lines)

    lines, weights = asyncio.run(with_fake(body, weights={"be_emb/v24": 100, "be_emb/v30": 0}))
    assert lines == ["set weight be_emb/v30 100", "set weight be_emb/v24 0"]


@pytest.mark.parametrize("name", ["a b", "x;shutdown sessions server", "x\nset", ""])
def test_names_that_could_smuggle_a_second_command_are_refused(name: str) -> None:
    with pytest.raises(AdapterError, match="not a valid backend or server name"):
        HAProxyRouter("127.0.0.1:1", routes={"r": Backend(name)})
    with pytest.raises(AdapterError, match="not a valid backend or server name"):
        asyncio.run(HAProxyRouter("127.0.0.1:1").set_weight(name, 5))


def test_a_silent_socket_times_out_after_bounded_retries() -> None:
    async def body(router, lines):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AdapterError, match=r"timed out after 0\.2s \(gave up after 2 attempts\)"):
            await router.get_weight("embedder")
        return loop.time() - started, len(lines)

    (took, calls), _ = asyncio.run(with_fake(body, silent=True))
    assert calls == 2 and took < 1.5


def test_nothing_listening_is_reported() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    router = HAProxyRouter(f"127.0.0.1:{port}", timeout=0.2, policy=FAST)
    with pytest.raises(AdapterError, match=rf"cannot reach the runtime API at 127\.0\.0\.1:{port}"):
        asyncio.run(router.get_weight("embedder"))
