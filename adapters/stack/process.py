"""Starting, watching and stopping one server process: what every launcher shares.

A launcher starts a real server (HAProxy, Caddy, Prometheus, Unleash) on
127.0.0.1, in a folder of its own, and returns only when the server *really*
answers — a bound port is not enough (Prometheus is "ready" seconds before its
first scrape, Unleash listens before its migrations finish). Each server runs
in its own session (process group), logs to a file in its folder, and is
stopped with SIGTERM, then SIGKILL after a grace period. When it cannot start,
`ServerUnavailable` says why, with the tail of its log and what to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from adapters.stack.postgres import free_port

__all__ = ["ServerUnavailable", "Proc", "free_port", "find_program", "spawn", "http_get", "port_open", "ports"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run `bash .ci/install-servers` (apt-get: prometheus haproxy caddy postgresql; npm: unleash-server)"


class ServerUnavailable(RuntimeError):
    """A server cannot be started here; the message says why and what to install."""


def find_program(name: str, *extra_dirs: str) -> str:
    """The path of an executable, from PATH or the given folders (Debian keeps some in /usr/sbin)."""
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in (*extra_dirs, "/usr/sbin", "/usr/bin") if os.access(Path(d) / name, os.X_OK)),
        None,
    )
    if found is None:
        raise ServerUnavailable(f"{name} is not installed; {INSTALL_HINT}")
    return found


@dataclass
class Proc:
    """A running server process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(5)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (an outage for tests)."""
        os.killpg(self.popen.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.popen.pid, signal.SIGCONT)

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `check` until it holds; return the seconds it took. Raise if the process dies or time runs out."""
        started = time.monotonic()
        while True:
            if not self.alive():
                raise ServerUnavailable(
                    f"{self.name} exited with code {self.popen.returncode} before {what}; its log ({self.log}):\n"
                    f"{self.log_tail()}"
                )
            if check():
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                self.stop()
                raise ServerUnavailable(
                    f"{self.name} did not reach '{what}' within {timeout:g}s; its log ({self.log}):\n{self.log_tail()}"
                )
            time.sleep(0.05)


def spawn(
    name: str,
    argv: Sequence[str],
    folder: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start `argv` in its own session, logging stdout and stderr to `folder/name.log`."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(cwd or folder),
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return Proc(name, popen, log)


def http_get(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 1.0) -> tuple[int, bytes]:
    """(status, body) of a GET, or (0, b"") when nothing answered."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, ValueError):
        return 0, b""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ports(count: int) -> list[int]:
    """`count` distinct free ports."""
    out: list[int] = []
    while len(out) < count:
        port = free_port()
        if port not in out:
            out.append(port)
    return out
