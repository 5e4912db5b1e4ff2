"""A SIGKILLed test session leaves no server behind (`tests/reaper.py`).

A nested pytest starts a "server" the way the fixtures do (its own session,
working in a folder from `tempfile`) and is then SIGKILLed, so no teardown
runs. With the reaper loaded the server is gone within seconds; without it
(the control) the server outlives the session, as it used to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.reaper import _alive

REPO = Path(__file__).resolve().parents[1]

SERVER_TEST = '''
import os, subprocess, sys, tempfile, time

def test_starts_a_server_and_hangs():
    folder = tempfile.mkdtemp(prefix="server-")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                              cwd=folder, start_new_session=True)
    with open(os.environ["SERVER_PID_FILE"], "w") as out:
        out.write(str(server.pid))
    time.sleep(600)
'''


def _killed_session(tmp_path: Path, *plugin_args: str) -> int:
    """Run SERVER_TEST in a nested pytest, SIGKILL it once the server is up; the server's pid."""
    test_file = tmp_path / "test_hang.py"
    test_file.write_text(SERVER_TEST, encoding="utf-8")
    pid_file = tmp_path / "server.pid"
    env = {**os.environ, "SERVER_PID_FILE": str(pid_file)}
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "--confcutdir", str(tmp_path), *plugin_args, str(test_file)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert session.poll() is None, "the nested session ended before starting its server"
        assert time.monotonic() < deadline, "the nested session never started its server"
        time.sleep(0.05)
    session.send_signal(signal.SIGKILL)
    session.wait(10)
    return int(pid_file.read_text())


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def test_a_killed_session_takes_its_servers_with_it(tmp_path: Path) -> None:
    server = _killed_session(tmp_path, "-p", "tests.reaper")
    assert _gone_within(server, 15)


def test_control_without_the_reaper_the_server_outlives_the_session(tmp_path: Path) -> None:
    server = _killed_session(tmp_path)
    try:
        assert not _gone_within(server, 2)
    finally:
        os.kill(server, signal.SIGKILL)
