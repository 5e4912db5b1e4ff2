"""Hundreds of MB of chunks to a file descriptor, written while the caller is still making them.

`interlock plan --json` of a 10,000-service plan is 536 MiB, from ~45,000 chunks that
are mostly slices of one buffer (`core.radius_json`). Written one `write` each, the
process alternates: encode a chunk, then wait in the kernel while it copies the chunk
into the page cache or a pipe (~0.3-0.45 s of system time for the whole output, more
than the encoding). Here a second thread writes the chunks with `os.writev`, about
256 KiB at a time, while the caller encodes the next ones: the system call releases the
GIL, so on two cores the two costs overlap instead of adding up. Nothing is copied in
Python, and at most `_QUEUED` batches wait (the chunks are views of one buffer, so this
holds little memory).

Errors (a closed pipe: `BrokenPipeError`) are raised in the caller's thread, as a
plain `write` would have raised them: `tui.cli.main` ends such a command quietly.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable

_BATCH = 1024
"""Chunks per `os.writev` at most (IOV_MAX on Linux)."""
_BYTES = 1 << 18
"""Bytes per `os.writev`, about: into ext4, batches of ~10 MB took about twice the system
time of smaller ones (64 KiB to 3 MiB measured alike, within a loaded machine's noise)."""
_QUEUED = 4
"""Batches made but not yet written, at most."""

Chunk = bytes | memoryview


def write_chunks(fd: int, chunks: Iterable[Chunk]) -> None:
    """Every chunk, in order, to `fd`; returns once all are written, or raises what writing raised."""
    todo: queue.Queue[list[Chunk] | None] = queue.Queue(maxsize=_QUEUED)
    failed: list[BaseException] = []

    def writer() -> None:
        try:
            while (batch := todo.get()) is not None:
                _writev_all(fd, batch)
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)
            while todo.get() is not None:  # keep taking, so the caller never blocks on a full queue
                pass

    thread = threading.Thread(target=writer, name="interlock-write", daemon=True)
    thread.start()
    try:
        batch: list[Chunk] = []
        size = 0
        for chunk in chunks:
            batch.append(chunk)
            size += len(chunk)
            if size >= _BYTES or len(batch) == _BATCH:
                if failed:
                    break
                todo.put(batch)
                batch, size = [], 0
        else:
            if batch and not failed:
                todo.put(batch)
    finally:
        todo.put(None)
        thread.join()
    if failed:
        raise failed[0]


def _writev_all(fd: int, batch: list[Chunk]) -> None:
    """`os.writev` until the whole batch is out (a signal or a full disk may take part of it)."""
    while batch:
        written = os.writev(fd, batch)
        if written == sum(map(len, batch)):
            return
        for i, chunk in enumerate(batch):  # drop what went out, keep the rest of a split chunk
            if written < len(chunk):
                batch = [memoryview(chunk)[written:], *batch[i + 1 :]]
                break
            written -= len(chunk)
