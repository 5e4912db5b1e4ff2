"""Servers a test session started die with it, even when the session is SIGKILLed.

The PostgreSQL and real-stack fixtures start servers in their own sessions
(PostgreSQL daemonizes), and stop them at teardown. A pytest that is killed
(a CI timeout, an impatient Ctrl-\\, the OOM killer) runs no teardown, and its
servers went on holding ports and memory until someone found them by hand.

As a pytest plugin (loaded by the root conftest), this module gives the
session a scratch root of its own: `TMPDIR` points into it, so every folder a
fixture makes with `tempfile` or `tmp_path` is inside. A watchdog process in
its own session holds the read end of a pipe from pytest. When pytest ends
normally it says "done" and the watchdog leaves; when pytest dies the pipe
closes without it, and the watchdog stops (SIGTERM, then SIGKILL after a grace
period) every process whose working folder or command line lies in that root:
the servers, and any `interlock` the tests started there. The root itself is
removed after a session that passed.

    python tests/reaper.py ROOT      # the watchdog; stdin is the pipe
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL."""

_state: dict[str, object] = {}


def _in_root(pid: int, root: str) -> bool:
    try:
        if os.readlink(f"/proc/{pid}/cwd").startswith(root):
            return True
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return root.encode() in handle.read()
    except OSError:
        return False


def strays(root: str) -> list[int]:
    """Processes, other than this one, that work in `root` or name it on their command line."""
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and _in_root(int(p), root)]


def reap(root: str, grace: float = GRACE) -> list[int]:
    """Stop every stray of `root`: SIGTERM, then SIGKILL what is left after `grace` seconds."""
    victims = strays(root)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in victims):
        time.sleep(0.1)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return victims


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return False


def watchdog(root: str) -> int:
    said = sys.stdin.buffer.read()  # until pytest closes the pipe, or dies
    if said.endswith(b"done\n"):
        return 0
    reap(root)
    return 0


# -- the pytest plugin ------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if sys.platform != "linux" or hasattr(config, "workerinput"):
        return
    root = tempfile.mkdtemp(prefix="interlock-tests-")
    os.chmod(root, 0o711)  # other users may pass through (PostgreSQL runs as `postgres`), not list
    os.environ["TMPDIR"] = root
    tempfile.tempdir = root
    dog = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, __file__, root],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        start_new_session=True,
    )
    _state.update(root=root, dog=dog, failed=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _state["failed"] = exitstatus != 0


def pytest_unconfigure(config: pytest.Config) -> None:
    dog = _state.pop("dog", None)
    root = _state.pop("root", None)
    if not isinstance(dog, subprocess.Popen) or not isinstance(root, str):
        return
    assert dog.stdin is not None
    try:
        dog.stdin.write(b"done\n")
        dog.stdin.close()
        dog.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        dog.kill()
    if not _state.get("failed") and not strays(root):
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(watchdog(sys.argv[1]))
