"""Helpers for the shared-journal tests (a module of its own, so test files can import
them by a name no other conftest shadows)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from adapters.journals import SharedJournal, open_journal

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    """One journal backend, as a test sees it: where it lives and how to tamper with it."""

    name: str
    spec: str

    def person(self, claimed: str) -> str:
        """Who a request or an action is recorded as when its sender claims `claimed`: on
        PostgreSQL the role the server authenticated instead (issue 13: no variable claims it)."""
        if self.name == "sqlite":
            return claimed
        from urllib.parse import urlsplit

        return urlsplit(self.spec).username or claimed

    def open(self, *, readonly: bool = False) -> SharedJournal:
        return open_journal(self.spec, readonly=readonly)

    def raw(self, *statements: str) -> None:
        """Run SQL directly, the way someone editing the store by hand would."""
        if self.name == "sqlite":
            with sqlite3.connect(self.spec) as conn:
                for statement in statements:
                    conn.execute(statement)
            return
        import psycopg

        with psycopg.connect(self.spec) as conn:  # one transaction, committed on exit
            for statement in statements:
                conn.execute(statement)  # type: ignore[call-overload]

    def scalar(self, query: str) -> object:
        if self.name == "sqlite":
            with sqlite3.connect(self.spec) as conn:
                return conn.execute(query).fetchone()[0]
        import psycopg

        with psycopg.connect(self.spec) as conn:
            return conn.execute(query).fetchone()[0]  # type: ignore[call-overload, index]


def run_python(code: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    """Run `code` in a fresh interpreter that imports this checkout."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        text=True,
        **popen,
    )
