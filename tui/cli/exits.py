"""Exit codes of the `interlock` command, the one for a rollout's end, and a quiet end on a closed pipe.

A leaf module: the command line (`tui.cli.main`) and its subcommands (`tui.cli.rollout_cmd`,
`tui.cli.journal_cmd`, ...) all use these, so none of them imports the others for a number.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core import RolloutState

EXIT_OK, EXIT_ROLLED_BACK, EXIT_BAD_INPUT, EXIT_WAITING, EXIT_LEASE = 0, 1, 2, 3, 4
EXIT_DAMAGED, EXIT_IO = 5, 6
EXIT_REFUSED, EXIT_TAKEN = 7, 8

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})
"""Write failures of the storage itself (a full disk, a failing device): exit 6, one line."""


def output_lost(exc: OSError) -> str | None:
    """Why the output stopped: "" when its reader left (a closed pipe), the system's words for
    a storage failure (a full disk), None for any other error (not about the output)."""
    if isinstance(exc, BrokenPipeError):
        return ""
    if exc.errno in STORAGE_ERRNOS:
        return exc.strerror or str(exc)
    return None


def exit_code_for(state: RolloutState) -> int:
    """0 completed, 1 rolled back or aborted, 3 stopped before its end (resumable)."""
    if state.phase == "completed":
        return EXIT_OK
    if state.phase in ("rolled_back", "aborted"):
        return EXIT_ROLLED_BACK
    return EXIT_WAITING


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone (`| head`): what is still
    buffered, and the interpreter's flush at exit, then write nowhere instead of raising."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
