"""`interlock runs` and `interlock journal backup`: what a journal holds, and a safe copy of it.

`runs` shows each run's chain head (last record and its hash) so a team can
anchor it somewhere the journal's writers cannot reach (a ticket, a chat
message, another machine) and later check the journal still leads to it.
`journal backup` copies a live SQLite journal consistently (SQLite's online
backup API: one committed moment, while runs keep writing), which copying the
file and its `-wal` sidecar by hand does not guarantee.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters.journals import SharedJournal, is_url, journal_label
from core import InputError
from tui import printer
from tui.json_block import json_block
from tui.session import runtime
from tui.session.runs import run_rows


def add_parsers(sub: Any) -> None:
    """The `runs` and `journal` subcommands."""
    rn = sub.add_parser("runs", help="every run in the journal: phase, driver, start, operator, chain head")
    rn.add_argument("--json", action="store_true", help="one JSON array, an object per run")
    rn.add_argument("--journal", default=None, metavar="PATH|URL",
                    help="a SQLite file (default: $INTERLOCK_JOURNAL or .interlock/journal.db) or a postgresql:// URL")
    ev = sub.add_parser("events", help="a run's events, one a line, for other tools; --follow until it ends")
    ev.add_argument("--run", default=None, help="run id (default: the latest unfinished run, else the latest)")
    ev.add_argument("--follow", action="store_true",
                    help="keep printing new events until the run ends, then exit with its code")
    ev.add_argument("--json", action="store_true", help="one JSON object per line (as `log --json`)")
    ev.add_argument("--journal", default=None, metavar="PATH|URL",
                    help="a SQLite file (default: $INTERLOCK_JOURNAL or .interlock/journal.db) or a postgresql:// URL")
    jn = sub.add_parser("journal", help="journal maintenance")
    jsub = jn.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    bk = jsub.add_parser("backup", help="copy a live SQLite journal consistently into a new file")
    bk.add_argument("dest", type=Path, help="the new file (must not exist)")
    bk.add_argument("--journal", default=None, metavar="PATH",
                    help="the SQLite journal (default: $INTERLOCK_JOURNAL or .interlock/journal.db)")


def _open(spec: str) -> SharedJournal:
    journal, _ = open_existing(spec)
    return journal


def runs_main(args: argparse.Namespace) -> int:
    journal = _open(args.journal or runtime.default_journal())
    try:
        rows = run_rows(journal)
    finally:
        journal.close()
    if args.json:
        print(json_block(rows))
        return 0
    if not rows:
        print("no runs in this journal")
    for row in rows:
        driver = row["driver"] or "no live driver"
        print(f"{row['run']}  {row['rollout']}  {printer.words(row['phase']):<12} started {row['started']} by {row['operator']}"
              f"  driver: {driver}")
        print(f"    head {row['head']}")
    return 0


def events_main(args: argparse.Namespace) -> int:
    """Print a run's records as `log` does (`--json`: one object a line, no summary); with
    `--follow`, go on as they are journaled until the run ends and return its exit code."""
    from core import folding, initial_state
    from tui.cli.exits import exit_code_for

    journal, label = open_existing(args.journal or runtime.default_journal())
    try:
        info = runtime.choose_run(journal, args.run)
        if info is None:
            what = f"no run {args.run}" if args.run else "no run"
            raise InputError.plain(f"{what} in {label}")
        plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
        state = before = initial_state(plan, graph)
        records = runtime.followed(journal, info, state) if args.follow else folding(state, journal.records(info.run_id))
        for record, state in records:
            for line in printer.record_lines(record, state, before, as_json=args.json):
                print(line, flush=args.follow)
            before = state
    finally:
        journal.close()
    return exit_code_for(state) if args.follow else 0


def backup_main(args: argparse.Namespace) -> int:
    spec = args.journal or runtime.default_journal()
    if is_url(spec):
        raise InputError.plain(f"{journal_label(spec)}: a PostgreSQL journal is backed up with the database's own tools (pg_dump)")
    journal = _open(spec)
    try:
        pages = journal.backup(args.dest)  # type: ignore[attr-defined]
    finally:
        journal.close()
    print(f"{spec}: copied to {args.dest} ({pages} pages); `interlock audit verify --journal {args.dest}` checks it")
    return 0


def open_existing(spec: str) -> tuple[SharedJournal, str]:
    from adapters.journals import is_url, journal_label, open_journal

    if not is_url(spec) and not Path(spec).exists():
        raise InputError.plain(f"{spec}: no journal here")
    return open_journal(spec, readonly=True), journal_label(spec)
