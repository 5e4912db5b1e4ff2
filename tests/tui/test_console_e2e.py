"""`interlock demo` in a real terminal (tmux): keys in, screen out, journal checked.

Runs the installed command line in a pseudo-terminal on a private tmux server
(`-L`), so nothing here touches the user's own tmux sessions.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

from adapters.journal_sqlite import SqliteJournal
from core.events import OperatorAction

ROOT = Path(__file__).resolve().parents[2]
_ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
"""COLUMNS/LINES (set under pytest) would make the console ignore the terminal's real size."""


class Terminal:
    """One tmux session on a private server."""

    def __init__(self, command: str, *, width: int = 160, height: int = 50) -> None:
        self.server = f"interlock-e2e-{uuid.uuid4().hex[:8]}"
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "demo", command)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.server, *args], capture_output=True, text=True, timeout=10, check=True,
            env=_ENV,
        )
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "demo")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "demo", *keys)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], check=False, capture_output=True, timeout=10)


def test_demo_pauses_and_quits_in_a_real_terminal(tmp_path) -> None:
    journal = tmp_path / "journal.db"
    exit_file = tmp_path / "exit"
    command = (
        f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && INTERLOCK_OPERATOR=e2e "
        f"{shlex.quote(sys.executable)} -m tui.cli.main demo --journal {shlex.quote(str(journal))}; "
        f"echo $? > {shlex.quote(str(exit_file))}; sleep 30"
    )
    terminal = Terminal(f"bash -c {shlex.quote(command)}")
    try:
        screen = terminal.wait_for("features: 1% of traffic on the new version")
        assert "recsys-embeddings-v3" in screen and "▶ running" in screen
        assert "◉ driving" in screen and "×60" in screen
        terminal.keys("Space")
        screen = terminal.wait_for("‖ paused")
        assert "pause requested by e2e@" in screen
        terminal.keys("q")
        terminal.wait_for("Quit the console?")
        terminal.keys("y")
        deadline = time.monotonic() + 20
        while not exit_file.exists() or not exit_file.read_text().strip():
            assert time.monotonic() < deadline, terminal.screen()
            time.sleep(0.1)
    finally:
        terminal.close()
    assert exit_file.read_text().strip() == "3"  # stopped while paused: `interlock resume` continues it
    with SqliteJournal(journal, readonly=True) as store:
        (run,) = store.runs()
        actions = [r.event for r in store.records(run.run_id) if isinstance(r.event, OperatorAction)]
    assert [(a.action, a.operator.split("@")[0]) for a in actions] == [("pause", "e2e")]


def test_demo_at_80x24_keeps_every_name_and_the_keys_in_a_real_terminal(tmp_path) -> None:
    """An SSH session's 80×24: every service's name, status word, versions and percent on
    screen, the footer's help and quit keys too (issue 16)."""
    journal = tmp_path / "journal.db"
    command = (
        f"unset COLUMNS LINES; cd {shlex.quote(str(ROOT))} && INTERLOCK_OPERATOR=e2e "
        f"{shlex.quote(sys.executable)} -m tui.cli.main demo --journal {shlex.quote(str(journal))}; sleep 30"
    )
    terminal = Terminal(f"bash -c {shlex.quote(command)}", width=80, height=24)
    try:
        terminal.wait_for("features: 1% of traffic on the new version")
        terminal.keys("Space")
        terminal.wait_for("‖ paused")
        screen = terminal.wait_for("space Resume")
        lines = screen.splitlines()
        assert len(lines) <= 24 and max(len(line) for line in lines) <= 80
        rows = {name: next((line for line in lines if f" {name} " in line), "") for name in
                ("features", "embedder", "ranker", "api")}
        for name, line in rows.items():
            assert line, f"{name} is not on the screen:\n{screen}"
            assert "→" in line and "%" in line, line
        assert "? Help" in lines[-1] and "q Quit" in lines[-1], lines[-1]
        assert "recsys-embeddings-v3" in lines[0] and "‖ paused" in lines[0] and "◉ driving" in lines[0]
        terminal.keys("q")
        terminal.wait_for("Quit the console?")
        terminal.keys("y")
        terminal.wait_for("is in the journal", timeout=20)  # the console closed, the run kept
    finally:
        terminal.close()
