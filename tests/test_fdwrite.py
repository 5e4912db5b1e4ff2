"""`tui.fdwrite.write_chunks`: every chunk in order, whatever the kernel takes per call, and
a closed pipe raised in the caller's thread (as a plain write would)."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator

import pytest

import tui.fdwrite
from tui.fdwrite import write_chunks


def _chunks(seed: int, count: int) -> list[bytes | memoryview]:
    rng = random.Random(seed)
    base = memoryview(bytes(rng.randrange(256) for _ in range(70_000)))
    out: list[bytes | memoryview] = []
    for _ in range(count):
        a = rng.randrange(len(base))
        piece = base[a : a + rng.choice([0, 1, 5, 300, 9_000, 65_000])]
        out.append(piece if rng.random() < 0.5 else bytes(piece))
    return out


def _through_pipe(chunks: list[bytes | memoryview]) -> bytes:
    read, write = os.pipe()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(os.fdopen(read, "rb").read()))
    reader.start()
    try:
        write_chunks(write, iter(chunks))
    finally:
        os.close(write)
        reader.join()
    return got[0]


@pytest.mark.parametrize("seed", range(4))
def test_every_chunk_arrives_in_order(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui.fdwrite, "_BYTES", [1, 1000, 1 << 20, 1 << 30][seed])
    monkeypatch.setattr(tui.fdwrite, "_BATCH", [1, 3, 1024, 1024][seed])
    chunks = _chunks(seed, 3000)
    assert _through_pipe(chunks) == b"".join(chunks)


def test_short_writes_go_on_where_they_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    real = os.writev

    def short(fd: int, buffers: list[bytes | memoryview]) -> int:  # as a signal or a full pipe may
        want = rng.randrange(1, 20_000)
        taken: list[bytes | memoryview] = []
        for buf in buffers:
            taken.append(memoryview(buf)[:want])
            want -= len(taken[-1])
            if want <= 0:
                break
        return real(fd, taken)

    monkeypatch.setattr(tui.fdwrite.os, "writev", short)
    chunks = _chunks(6, 2000)
    assert _through_pipe(chunks) == b"".join(chunks)


def test_a_closed_pipe_raises_in_the_caller_and_stops_the_chunks() -> None:
    read, write = os.pipe()
    os.close(read)
    made = 0

    def endless() -> Iterator[bytes]:
        nonlocal made
        while True:
            made += 1
            yield b"x" * 10_000

    try:
        with pytest.raises(BrokenPipeError):
            write_chunks(write, endless())
    finally:
        os.close(write)
    assert made < 10_000  # it stopped asking for chunks soon after the write failed


def test_the_callers_own_error_comes_out_and_the_writer_ends() -> None:
    def failing() -> Iterator[bytes]:
        yield b"before "
        raise ValueError("encoding failed")

    threads = threading.active_count()
    read, write = os.pipe()
    try:
        with pytest.raises(ValueError, match="encoding failed"):
            write_chunks(write, failing())
    finally:
        os.close(write)
        os.close(read)
    assert threading.active_count() == threads
