"""`interlock stack up / status / exec / down` as a user runs them: every server really starts
(its own PostgreSQL and Unleash too), the plan it writes drives them, the token is never
printed, and `down` leaves no process behind, twice over."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.stack import stack as stk
from core.planload import load_plan
from stackrun import REPO


def stack_cli(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "tui.cli.stack_cmd", "stack", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_stack_up_status_exec_down_from_the_command_line(stack_dir: Path) -> None:
    folder = stack_dir / "cli"
    started = stack_cli("up", "--dir", str(folder))
    if started.returncode != 0 and not os.environ.get("CI"):
        pytest.skip(f"the stack cannot start here: {started.stderr.strip()}")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        state = stk.load_state(folder)
        assert state is not None
        for name in ("postgres", "unleash", "haproxy", "sim", "prometheus"):
            assert any(line.split()[:1] == [name] and line.rstrip().endswith(" up")
                       for line in started.stdout.splitlines()), (name, started.stdout)
        assert state.token not in started.stdout + started.stderr
        assert stat.S_IMODE((folder / stk.STATE_FILE).stat().st_mode) == 0o600
        plan, _ = load_plan(state.plan)
        assert plan.environment.flags.url == state.urls["unleash"]
        assert plan.environment.router.admin == state.urls["haproxy_admin"]
        assert plan.environment.metrics.url == state.urls["prometheus"]

        again = stack_cli("up", "--dir", str(folder))
        assert again.returncode == 0 and "stack: already up" in again.stdout
        assert stk.load_state(folder).processes == state.processes  # nothing restarted

        status = stack_cli("status", "--dir", str(folder))
        assert status.returncode == 0 and state.token not in status.stdout

        digest = stack_cli("exec", "--dir", str(folder), "--", sys.executable, "-c",
                           f"import hashlib, os; print(hashlib.sha256(os.environ['{stk.TOKEN_ENV}'].encode()).hexdigest())")
        assert digest.returncode == 0, digest.stderr
        assert digest.stdout.strip() == hashlib.sha256(state.token.encode()).hexdigest()
    finally:
        stopped = stack_cli("down", "--dir", str(folder))
    assert stopped.returncode == 0
    assert "stack: stopped prometheus, sim, haproxy, unleash, postgres" in stopped.stdout
    for entry in state.processes.values():
        assert not Path(f"/proc/{entry['pid']}").exists() or "Z" in Path(f"/proc/{entry['pid']}/stat").read_text()
    assert not (folder / stk.STATE_FILE).exists()
    assert "already down" in stack_cli("down", "--dir", str(folder)).stdout
    assert stack_cli("status", "--dir", str(folder)).returncode == 1
