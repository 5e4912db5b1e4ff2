"""Output while the console runs: Textual captures stdout and stderr, and a flush of either
calls `App._flush(stderr=...)`. The console must not shadow that private method (it once
did, so the first logging handler anyone added crashed the console)."""

from __future__ import annotations

import logging
import sys

import pytest
from console_harness import SIZE, at_minute, console, prerun, settle, wait_for
from console_plans import RECSYS

from core.events import OperatorAction

pytestmark = pytest.mark.anyio


async def test_stderr_flushes_and_log_records_while_the_console_runs(tmp_path, sessions) -> None:
    session = prerun(RECSYS, tmp_path, at_minute(5))
    sessions.append(session)
    app = console(session)
    logger = logging.getLogger("interlock.test.console_stderr")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        handler = logging.StreamHandler(sys.stderr)  # bound to the console's captured stderr
        logger.addHandler(handler)
        try:
            print("written to stderr while the console runs", file=sys.stderr, flush=True)
            sys.stderr.flush()
            sys.stdout.flush()
            logger.warning("a log record while the console runs")  # StreamHandler flushes
        finally:
            logger.removeHandler(handler)
        await pilot.press("space")  # the console still serves keys afterwards
        await wait_for(pilot, lambda: session.engine.state.phase == "paused")
    actions = [r.event for r in session.journal.records(session.info.run_id) if isinstance(r.event, OperatorAction)]
    assert [a.action for a in actions] == ["pause"]
