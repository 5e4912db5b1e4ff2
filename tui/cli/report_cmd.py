"""`interlock report` and `interlock status`: a run read back from its journal, for people
after the fact and for scripts while it goes.

`report` writes the post-rollout review (`tui.report`): Markdown to stdout by default,
`--md FILE` and `--html FILE` to files. `status` answers "is it done?" the way `kubectl
argo rollouts status` does: one line now, or with `--watch` a line each time the run's
state changes; exit 0 completed, 1 rolled back or aborted, 3 still going (at `--timeout`,
or at once without `--watch`/`--timeout`). Both only read the journal.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from core import InputError, RolloutState, initial_state, load_drill, parse_duration, score, shown_path
from tui import printer
from tui.cli.exits import EXIT_IO, exit_code_for
from tui.cli.journal_cmd import open_existing
from tui.session import runtime


def add_parsers(sub: Any) -> None:
    """The `report` and `status` subcommands."""
    rp = sub.add_parser("report", help="the post-rollout review of a run: timeline, stages and gates charted, "
                                       "decisions, cascade, durations (Markdown on stdout by default)")
    rp.add_argument("--run", default=None, help="run id (default: the latest run)")
    rp.add_argument("--md", type=Path, default=None, metavar="FILE", help="write the report as Markdown to FILE")
    rp.add_argument("--html", type=Path, default=None, metavar="FILE",
                    help="write the report as one self-contained HTML file with inline SVG charts")
    rp.add_argument("--drill", type=Path, default=None, metavar="DRILL",
                    help="the drill file of a drill run: adds its scorecard, recomputed from the journal")
    _journal(rp)
    st = sub.add_parser("status", help="where a run stands, for scripts: exit 0 completed, 1 rolled back or "
                                       "aborted, 3 still going")
    st.add_argument("--run", default=None, help="run id (default: the latest unfinished run, else the latest)")
    st.add_argument("--watch", action="store_true", help="print a line each time the run changes, until it ends")
    st.add_argument("--timeout", default=None, metavar="D",
                    help="wait at most this long (30s, 5m, 1h) for the run to end, then exit 3 if it has not")
    _journal(st)


def _journal(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--journal", default=None, metavar="PATH|URL",
                        help="a SQLite file (default: $INTERLOCK_JOURNAL or .interlock/journal.db) or a postgresql:// URL")


def _missing(label: str, run_id: str | None) -> InputError:
    return InputError.plain(f"no run {run_id} in {label}" if run_id else f"no run in {label}")


def _replayed(journal: Any, label: str, run_id: str | None) -> tuple[Any, Any]:
    """The run `status` reads (`runtime.choose_run`'s rule: `run_id`, else the latest
    unfinished run, else the latest) with its replay, folded once."""
    found = runtime.find_replayed(journal, run_id, unfinished=run_id is None)
    if found is None and run_id is None:
        found = runtime.find_replayed(journal, None, unfinished=False)
    if found is None:
        raise _missing(label, run_id)
    info, replayed = found
    return info, replayed if replayed is not None else runtime.replay(journal, info)


# -- report ----------------------------------------------------------------------


def report_main(args: argparse.Namespace) -> int:
    from tui.report import html, markdown
    from tui.report.model import build
    from tui.session.drills import RUN_PREFIX

    loaded = load_drill(args.drill) if args.drill is not None else None
    journal, label = open_existing(args.journal or runtime.default_journal())
    try:
        info = runtime.find_run(journal, args.run, unfinished=False)  # a review: the latest run by default
        if info is None:
            raise _missing(label, args.run)
        plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
        report = build(info, initial_state(plan, graph), journal.records(info.run_id))
        if loaded is not None:
            if loaded.plan_text != info.plan_text:
                raise InputError.plain(f"--drill {shown_path(args.drill)}: run {info.run_id} did not run this "
                                       "drill's plan")
            intact, _, _ = journal.verify(info.run_id)
            events = [record.event for record in journal.records(info.run_id)]
            report.scorecard = score(loaded, events, bad_requests=None, journal_intact=intact)
            report.drill_context = f"plan {loaded.drill.plan}, seed {info.seed}, {info.clock} clock"
        elif info.run_id.startswith(RUN_PREFIX):
            report.notes.append("This is a drill run: `interlock report --drill DRILL` adds its scorecard.")
    finally:
        journal.close()
    outputs = [(args.md, markdown.render), (args.html, html.render)]
    for target, render in outputs:
        if target is None:
            continue
        try:
            Path(target).write_text(render(report), encoding="utf-8")
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            why = getattr(exc, "strerror", None) or str(exc)
            print(f"interlock: cannot write {shown_path(target)}: {why}", file=sys.stderr)
            return EXIT_IO
    if args.md is None and args.html is None:
        sys.stdout.write(markdown.render(report))
    return 0


# -- status ----------------------------------------------------------------------


def status_line(state: RolloutState) -> str:
    """`running · features promoted 100% · embedder baking 25% · …`: the rollout's phase,
    then each service in rollout order with its phase and exposure."""
    parts = [printer.words(state.effective_phase)]
    for name in printer.rollout_order(state):
        svc = state.services[name]
        parts.append(f"{name} {printer.words(svc.phase)} {svc.exposure:g}%")
    text = " · ".join(parts)
    return text + (f" ({state.reason})" if state.reason and not state.phase == "completed" else "")


def status_main(args: argparse.Namespace) -> int:
    timeout = None
    if args.timeout is not None:
        try:
            timeout = parse_duration(args.timeout)
        except ValueError as exc:
            raise InputError.plain(f"--timeout: {exc}") from None
    journal, label = open_existing(args.journal or runtime.default_journal())
    try:
        info, replayed = _replayed(journal, label, args.run)
        print(f"run {info.run_id}  rollout {info.rollout}")
        state = replayed.state
        shown = _print_status(state)
        if state.finished or (not args.watch and timeout is None):
            return exit_code_for(state)
        stop = threading.Event()
        timer = threading.Timer(timeout, stop.set) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for _, after in runtime.followed(journal, info, state, after=replayed.seq, stop=stop):
                state = after
                if args.watch and status_line(state) != shown:
                    shown = _print_status(state)
        except KeyboardInterrupt:
            pass
        finally:
            if timer is not None:
                timer.cancel()
        if not args.watch:
            _print_status(state)
        if not state.finished:
            print(f"interlock: run {info.run_id} still going after {args.timeout}", file=sys.stderr)
        return exit_code_for(state)
    finally:
        journal.close()


def _print_status(state: RolloutState) -> str:
    """Print the state's line with its moment; returns the line (to tell the next change)."""
    line = status_line(state)
    print(f"{printer.clock_text(state, state.at)}  {line}", flush=True)
    return line
