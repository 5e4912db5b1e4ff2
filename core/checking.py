"""What a `Probe` command does through the `CheckRunner` port: one pre-flight check or
hook call, retried as the check says, and the `CheckFinished` event that reports it.

Apart from the engine's loop for the same reason as `core.measuring`: the engine only
dispatches here. The engine bounds the whole call by `bound(cmd)`, so a runner that
hangs past its own timeouts still ends as a failed check.
"""

from __future__ import annotations

from core.commands import Probe
from core.events import CheckFinished
from core.ports import CheckResult, CheckRunner

OUTPUT_LIMIT = 4000
"""Characters of a check's output kept in the journal (its end, where the verdict is)."""

SLACK = 5.0
"""Seconds a try may take beyond its timeout (starting a program, killing it) before the
engine gives the check up."""


def bound(cmd: Probe) -> float:
    """The longest a `Probe` may take, every try included."""
    return (cmd.timeout + SLACK) * (cmd.retries + 1)


def tail(text: str) -> str:
    """The last `OUTPUT_LIMIT` characters of `text`, marked when cut."""
    return text if len(text) <= OUTPUT_LIMIT else "…" + text[-OUTPUT_LIMIT:]


async def _once(runner: CheckRunner, cmd: Probe, run_id: str) -> CheckResult:
    if cmd.kind == "run":
        return await runner.run(cmd.argv, timeout=cmd.timeout)
    if cmd.kind == "http":
        return await runner.http(cmd.url, timeout=cmd.timeout, status=cmd.status)
    return await runner.http(cmd.url, timeout=cmd.timeout, status=None, payload={**cmd.payload, "run": run_id})


async def probe(runner: CheckRunner, cmd: Probe, run_id: str) -> CheckFinished:
    """Try the check up to `1 + retries` times; the last try's result is the verdict."""
    attempts = 0
    result = CheckResult(False, "not run")
    for _ in range(cmd.retries + 1):
        attempts += 1
        result = await _once(runner, cmd, run_id)
        if result.passed:
            break
    return CheckFinished(
        at=0.0, cmd_id=cmd.cmd_id, service=cmd.service, check=cmd.name, passed=result.passed,
        detail=result.detail, output=tail(result.output), attempts=attempts,
    )
