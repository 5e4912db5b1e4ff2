"""A journal that survives losing its `-wal` file, copies consistently while a run writes,
and fails on a full or read-only disk with its own exit code, never as bad input.

Each test drives a real `interlock` process on a real file: SIGKILL, a file-size
limit (what a full disk looks like to SQLite), and a process stripped of root's
file-permission override (a read-only file and directory, as for any user).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from adapters.journal_sqlite import SqliteJournal
from core.events import Tick
from core.ports import RunInfo
from tui.cli.main import EXIT_IO, main

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "examples" / "recsys.yaml"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui.cli.main", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def rows(path: Path, sql: str) -> list[tuple]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)) as db:
            return db.execute(sql).fetchall()
    except sqlite3.Error:
        return []


@contextmanager
def running(journal: Path, speed: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real `interlock run` of the example on a real clock, SIGKILLed on leaving."""
    proc = subprocess.Popen(
        cli("run", str(PLAN), "--headless", "--speed", speed, "--journal", str(journal)),
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def poll_until(proc: subprocess.Popen[bytes], done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not done() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)


def test_sigkill_after_a_stage_then_the_wal_lost_keeps_the_run_up_to_that_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.db"
    stages: list[tuple] = []

    def two_stages() -> bool:
        stages[:] = rows(journal, "SELECT seq FROM records WHERE kind = 'exposure_applied' ORDER BY seq")
        return len(stages) >= 2

    with running(journal, "300") as proc:
        poll_until(proc, two_stages)
        time.sleep(0.3)  # the second stage's checkpoint lands right after its batch commits
    assert proc.returncode == -signal.SIGKILL and len(stages) >= 2
    second_stage = stages[1][0]
    assert Path(f"{journal}-wal").exists()
    Path(f"{journal}-wal").unlink()
    Path(f"{journal}-shm").unlink(missing_ok=True)

    [(run_id, last)] = rows(journal, "SELECT run_id, max(seq) FROM records GROUP BY run_id")
    assert last >= second_stage
    assert main(["audit", "verify", "--journal", str(journal)]) == 0
    assert "1 run checked, all intact" in capsys.readouterr().out
    assert main(["runs", "--journal", str(journal), "--json"]) == 0
    assert run_id in capsys.readouterr().out


def test_a_backup_taken_while_a_run_writes_is_a_consistent_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.db"
    copies: list[Path] = []

    def five_copies() -> bool:
        if rows(journal, "SELECT 1 FROM records WHERE seq > 3"):
            dest = tmp_path / f"copy{len(copies)}.db"
            assert main(["journal", "backup", str(dest), "--journal", str(journal)]) == 0
            copies.append(dest)
            time.sleep(0.2)
        return len(copies) >= 5

    with running(journal, "600") as proc:
        poll_until(proc, five_copies)
    assert len(copies) == 5
    counts = []
    for copy in copies:
        assert main(["audit", "verify", "--journal", str(copy)]) == 0, capsys.readouterr()
        counts.append(rows(copy, "SELECT count(*) FROM records")[0][0])
    assert counts == sorted(counts) and counts[-1] > counts[0]  # taken while it grew
    assert "copied to" in capsys.readouterr().out
    assert main(["journal", "backup", str(copies[0]), "--journal", str(journal)]) == 2  # never overwrites


def limit_file_size(limit: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write(), as on a full disk

    return apply


def test_a_full_disk_mid_run_is_its_own_exit_code(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    done = subprocess.run(
        cli("run", str(PLAN), "--headless", "--journal", str(journal)),
        env=env(), capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size(96 * 1024),
    )
    assert done.returncode == EXIT_IO, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"interlock: {journal}: ") and ("disk is full" in line or "I/O error" in line)
    assert "Traceback" not in done.stderr


def readonly_process() -> list[str]:
    """Run as root without its permission override: file modes apply as for any user."""
    if not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to drop root's permission override")
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def test_a_read_only_journal_refuses_to_drive_but_log_and_audit_read_it(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    journal = folder / "journal.db"
    with SqliteJournal(journal) as j:  # an unfinished run: resume would want to drive it
        info = RunInfo("r1", "recsys-embeddings-v3", str(PLAN), PLAN.read_text(), 0, "virtual", 1.0, "")
        j.create_run(info)
        j.append("r1", [Tick(at=0.0)])
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    try:
        prefix = readonly_process()
        for command, code in ((["resume", "--headless"], EXIT_IO), (["run", str(PLAN), "--headless"], EXIT_IO),
                              (["log"], 0), (["audit", "verify"], 0), (["runs"], 0)):
            done = subprocess.run(
                [*prefix, *cli(*command, "--journal", str(journal))],
                env=env(), capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == code, (command, done.stderr)
            assert "Traceback" not in done.stderr
            if code == EXIT_IO:
                [line] = done.stderr.splitlines()
                assert "read-only" in line or "cannot open" in line, line
        assert sorted(p.name for p in folder.iterdir()) == ["journal.db"]
    finally:
        folder.chmod(0o755)


def test_consoles_opening_a_new_journal_at_once_never_see_a_lock(tmp_path: Path) -> None:
    """Many processes on one new file: schema creation waits its turn, never fails."""
    for attempt in range(3):
        journal = tmp_path / f"j{attempt}" / "journal.db"
        code = (
            "import sys, time\n"
            "from adapters.journal_sqlite import SqliteJournal\n"
            "from core.events import Tick\nfrom core.ports import RunInfo\n"
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
            "with SqliteJournal(sys.argv[1]) as j:\n"
            "    rid = f'run-{sys.argv[3]}'\n"
            "    j.create_run(RunInfo(rid, 'r', 'p', 'rollout: r\\n', 1, 'virtual', 1.0, ''))\n"
            "    j.append(rid, [Tick(at=0.0)])\n"
        )
        start = str(time.time() + 1.5)
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(journal), start, str(n)], env=env(),
                             stderr=subprocess.PIPE, text=True)
            for n in range(6)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, errors
        with SqliteJournal(journal, readonly=True) as j:
            assert sorted(r.run_id for r in j.runs()) == [f"run-{n}" for n in range(6)]
            assert all(j.verify(f"run-{n}")[0] for n in range(6))
