"""`interlock validate` and `interlock plan`: their arguments, what they print, and a short way in.

These two run before every rollout, in CI on every change to a plan, so their start-up
is part of what a user waits for. `parse` recognises them without building the whole
command line (which imports every subcommand), and nothing here imports the journal,
the engine or the console: `tests/test_cli_imports.py` holds that. The arguments are
defined once (`add_parsers`), for both this parser and `interlock --help`.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from core import InputError, collector_paused, compile_plan, load_plan

COMMANDS = ("validate", "plan")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `validate` and `plan` subcommands, as `interlock --help` lists them."""
    v = sub.add_parser("validate", help="check a plan and its order; exit 2 on problems")
    v.add_argument("plan", type=Path, help="the plan (YAML)")

    pl = sub.add_parser("plan", help="waves, lockstep groups, precedence and blast radius")
    pl.add_argument("plan", type=Path, help="the plan (YAML)")
    pl.add_argument("--json", action="store_true",
                    help="print the plan as JSON (waves, lockstep, precedence, blast_radius)")
    pl.add_argument("--compact", action="store_true",
                    help="with --json: each service's direct dependents (`downstream`) instead of "
                         "`blast_radius`, which grows with the square of the plan")


def parse(argv: Sequence[str]) -> argparse.Namespace | None:
    """The arguments of `validate` or `plan`, or None for any other command line. Anything
    this parser would not accept as it stands also gives None, so the whole parser reports
    it in its own words (its usage line, not this one's)."""
    if not argv or argv[0] not in COMMANDS:
        return None
    parser = argparse.ArgumentParser(prog="interlock", add_help=False)
    add_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args, extra = parser.parse_known_args(argv)  # `--help` and missing arguments: as the whole parser
    return None if extra else args


def run(args: argparse.Namespace) -> int:
    if args.command == "validate":
        return validate(args.plan)
    return show_plan(args.plan, as_json=args.json, compact=args.compact)


def validate(path: Path) -> int:
    with collector_paused():
        plan, source = load_plan(path)
        graph = compile_plan(plan, source)
        line = (
            f"{path}: ok — {len(plan.services)} services, {len(graph.moving)} moving, "
            f"{len(graph.waves)} waves, {len(graph.lockstep)} lockstep groups"
        )
        del plan, source, graph  # see `show_plan`
    print(line)
    return 0


def show_plan(path: Path, *, as_json: bool, compact: bool = False) -> int:
    if compact and not as_json:
        raise InputError.plain("--compact needs --json")
    text = ""
    with collector_paused():
        plan, source = load_plan(path)
        graph = compile_plan(plan, source)
        if as_json:
            from tui.json_block import json_block_bytes, plan_json_chunks

            if compact:
                _write_json([json_block_bytes(graph.to_json(compact=True))])
            else:
                _write_json(plan_json_chunks(graph))  # encoded as it goes out
        else:
            from tui.cli.plan_text import render_plan

            text = render_plan(plan, graph)
        # Freed by reference counting while the collector is still off: switched back on
        # with millions of young objects alive, its first passes walked them all (a sixth
        # of `plan --json` at 10,000 services).
        del plan, source, graph
    if not as_json:
        print(text)
    return 0


def _write_json(chunks: Iterable[bytes | memoryview]) -> None:
    """ASCII bytes straight to stdout, chunk by chunk, and a newline: `plan --json` is
    hundreds of MB at 10,000 services, never copied into a str or held whole. To a real
    file descriptor they go through `tui.fdwrite.write_chunks` (written while the rest is
    still being encoded)."""
    buffer = getattr(sys.stdout, "buffer", None)  # none when stdout is a StringIO
    if buffer is None:
        print(b"".join(chunks).decode("ascii"))
        return
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # a buffer without a descriptor (pytest's capture)
        for chunk in chunks:
            buffer.write(chunk)
        buffer.write(b"\n")
        buffer.flush()
        return
    from tui.fdwrite import write_chunks

    write_chunks(fd, itertools.chain(chunks, (b"\n",)))
