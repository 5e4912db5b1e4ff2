"""Fixtures for the console tests: an asyncio backend for Pilot tests, journals closed after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tui.session import runtime


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sessions() -> Iterator[list[runtime.Session]]:
    """Sessions a test opens; their journals are closed when it ends."""
    made: list[runtime.Session] = []
    yield made
    for session in made:
        if session.engine.lease is not None:
            session.engine.lease.release()
        session.journal.close()
