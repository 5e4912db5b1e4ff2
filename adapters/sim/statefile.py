"""The simulated world's flag and route state on disk, so a killed process resumes with the
flags it had set: a line appended to a log per change, the whole state written only when the
log has grown past the number of targets (compaction). A mixin of `SimWorld`, which owns the
tables these read and write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core import AdapterError

_LINE = json.JSONEncoder(sort_keys=True)
"""A log line's JSON: `json.dumps(change, sort_keys=True)` (ASCII), without a new encoder
per line."""
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT


class StateFile:
    """Persistence for `SimWorld` (see the module's docstring)."""

    _state_path: Path | None
    _log_lines: int
    _flags: dict[str, float]
    _routes: dict[str, float]
    _cohorts: dict[str, str]
    _mirrors: dict[str, float]
    plan: Any

    def _users_of_mirrors(self) -> set[str]:
        """Services a mirror may copy requests to (those that move)."""
        return {name for name, service in self.plan.services.items() if service.moves}

    def _log_path(self) -> Path:
        assert self._state_path is not None
        return self._state_path.with_name(self._state_path.name + ".log")

    def _log(self, change: dict[str, Any]) -> None:
        """Record one flag or route change: a line appended to the log (one write, no
        whole-state serialisation); past as many lines as there are targets, the state
        is written whole and the log starts again, so a change costs O(1) amortised."""
        if self._state_path is None:
            return
        if self._log_lines >= max(64, len(self._flags) + len(self._routes)):
            self.save()
            return
        # One system call each to open, write and close (a 1,000-service rollout sets
        # flags thousands of times); the directory is made only when it is missing.
        line = (_LINE.encode(change) + "\n").encode("ascii")
        path = self._log_path()
        try:
            fd = os.open(path, _APPEND, 0o666)
        except FileNotFoundError:
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, _APPEND, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        self._log_lines += 1

    def save(self) -> None:
        """Write the whole flag/route state to the state file and empty the log."""
        if self._state_path is None:
            return
        state = {
            "flags": {f: {"percent": p, "cohort": self._cohorts[f]} for f, p in self._flags.items()},
            "routes": dict(self._routes),
            "mirrors": dict(self._mirrors),
        }
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_name(f".{self._state_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self._state_path)
        self._log_path().unlink(missing_ok=True)  # after the state holds every change it had
        self._log_lines = 0

    def _load(self) -> None:
        assert self._state_path is not None
        try:
            if self._state_path.exists():
                state = json.loads(self._state_path.read_text(encoding="utf-8"))
                for flag, entry in state.get("flags", {}).items():
                    self._apply({"flag": flag, **entry})
                for route, percent in state.get("routes", {}).items():
                    self._apply({"route": route, "percent": percent})
                for service, percent in state.get("mirrors", {}).items():
                    self._apply({"mirror": service, "percent": percent})
            log = self._log_path()
            lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
            for i, line in enumerate(lines):
                try:
                    change = json.loads(line)
                except ValueError:
                    if i == len(lines) - 1:
                        break  # a last line torn by a crash: the change it held never returned
                    raise
                self._apply(change)
            self._log_lines = len(lines)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, AdapterError) as exc:
            raise AdapterError(f"sim: cannot read state file {self._state_path}: {exc}") from None

    def _apply(self, change: dict[str, Any]) -> None:
        """One saved change (or snapshot entry); targets the plan no longer has are ignored."""
        if "flag" in change:
            if change["flag"] in self._flags:
                self._flags[change["flag"]] = percent_of(change["percent"])
                self._cohorts[change["flag"]] = str(change["cohort"])
        elif "mirror" in change:
            if change["mirror"] in self._users_of_mirrors():
                percent = percent_of(change["percent"])
                if percent > 0:
                    self._mirrors[change["mirror"]] = percent
                else:
                    self._mirrors.pop(change["mirror"], None)
        elif change["route"] in self._routes:
            self._routes[change["route"]] = percent_of(change["percent"])


def percent_of(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise AdapterError(f"sim: a percentage must be a number from 0 to 100, got {value!r}")
    return float(value)
