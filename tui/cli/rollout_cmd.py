"""What the rollout subcommands (run, resume, watch, log, audit) do once their
arguments are parsed. (Named apart from `core/commands.py`, the reducer's commands to adapters.)"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import sys
from pathlib import Path
from typing import Callable, Sequence

from core import Event
from core import InputError
from core import RolloutState
from tui import printer
from tui.cli.exits import EXIT_IO, output_lost, silence_stdout
from tui.cli import journal_cmd
from tui.session import runtime


class HeadlessPrinter:
    """Prints each event as it is applied: words, or JSON lines.

    When the reader closes the pipe, `on_closed` is called (a run stops its engine,
    which leaves the journal resumable) and nothing more is printed; without it the
    BrokenPipeError goes on to `tui.cli.main.main`, which ends the command quietly."""

    def __init__(self, as_json: bool, initial: RolloutState, on_closed: Callable[[], None] | None = None):
        self.as_json = as_json
        self.last = initial
        self.on_closed = on_closed
        self.closed = False
        self.failed = ""
        """Why stdout could not be written (empty when it was written, or its reader left)."""

    def __call__(self, state: RolloutState, events: Sequence[Event]) -> None:
        if self.closed:
            self.last = state
            return
        try:
            self._print(state, events)
        except OSError as exc:
            lost = output_lost(exc)
            if lost is None:
                raise
            # The reader left, or the output cannot be written (a full disk): nobody sees
            # what the run does, so it stops where it is, resumable, instead of driving blind.
            self.closed, self.failed = True, lost
            silence_stdout()
            if self.on_closed is None:
                raise
            self.on_closed()
        self.last = state

    def _print(self, state: RolloutState, events: Sequence[Event]) -> None:
        out = sys.stdout
        if self.as_json:
            for event in events:
                out.write(printer.json_line(printer.event_json(event, self.last)) + "\n")
        else:
            for event in events:
                line = printer.describe(event, state, self.last)
                if line is not None:
                    out.write(f"{printer.clock_text(state, event.at)}  {line}\n")
            change = printer.phase_line(self.last, state)
            if change is not None:
                out.write(f"{printer.clock_text(state, state.at)}  ▸ {change}\n")
        out.flush()


def _finish(session: runtime.Session, state: RolloutState, as_json: bool, closed: bool = False,
            failed: str = "") -> int:
    """The end summary, with the run's chain head to anchor elsewhere (on stderr with
    `--json`, whose stdout stays the same for the same seed, byte for byte). When the
    reader closed stdout, one line on stderr says where the run stands instead."""
    from tui.cli.exits import exit_code_for
    from tui.session.runs import head_text

    head = f"journal head of run {session.info.run_id}: {head_text(session.journal.head(session.info.run_id))}"
    if not closed:
        try:
            if as_json:
                print(printer.json_line(printer.summary(state)))
                print(head, file=sys.stderr)
            else:
                print(printer.end_line(state))
                print(printer.service_table(state))
                if not state.finished:
                    print(f"run {session.info.run_id} is in the journal; `interlock resume` continues it")
                print(head)
            sys.stdout.flush()
        except OSError as exc:
            lost = output_lost(exc)
            if lost is None:
                raise
            closed, failed = True, lost
            silence_stdout()
    if closed:
        phase = printer.words(state.effective_phase)
        where = phase if state.finished else f"stopped while {phase}; `interlock resume` continues it"
        what = f"cannot write the output ({failed})" if failed else "output closed"
        print(f"interlock: {what}; run {session.info.run_id} {where}", file=sys.stderr)
    session.journal.close()
    return EXIT_IO if failed else exit_code_for(state)


def _headless(session: runtime.Session, as_json: bool) -> int:
    from tui.session.steering import steered

    show = HeadlessPrinter(as_json, session.engine.state, on_closed=session.engine.stop)
    session.engine.subscribe(show)
    real = not session.clock.virtual
    if real:
        # Anyone may steer it from another terminal (`interlock resume`, `approve`, ...):
        # paused or awaiting approval, it waits for them instead of exiting 3. A virtual
        # clock runs to its end at once, the same for the same seed: nobody steers it.
        session.engine.interactive = True

    async def drive() -> RolloutState:
        try:
            async with steered(session) if real else contextlib.nullcontext():
                return await session.engine.run(resuming=session.resuming)
        finally:
            await session.aclose()

    state = asyncio.run(drive())
    return _finish(session, state, as_json, closed=show.closed, failed=show.failed)


def _console(session: runtime.Session) -> int:
    try:
        from tui.console.app import run_console
    except ImportError:
        print("the console is not available in this build; running headless", file=sys.stderr)
        return _headless(session, as_json=False)
    state = run_console(session)
    return _finish(session, state, as_json=False)


def run(plan_path: Path, args: argparse.Namespace) -> int:
    if args.json and not args.headless:
        raise InputError.plain("--json needs --headless")
    journal = args.journal or runtime.default_journal()
    if args.headless:
        clock, speed = ("virtual", 1.0) if args.speed is None else ("real", args.speed)
    else:
        clock, speed = "real", args.speed or 60.0
    session = runtime.start_run(
        plan_path, journal_path=journal, seed=args.seed, clock=clock, speed=speed,
        interactive=not args.headless, adopt=getattr(args, "adopt", False), strict=getattr(args, "strict", False),
        reason=getattr(args, "reason", ""), abandon=getattr(args, "abandon", None),
    )
    return _headless(session, args.json) if args.headless else _console(session)


def resume(args: argparse.Namespace) -> int:
    journal = args.journal or runtime.default_journal()

    def waiting(holder: str) -> None:
        print(f"waiting for {holder or 'the driver'} to let go of the rollout…", file=sys.stderr, flush=True)

    def replaying(records: int) -> None:
        print(f"resume: replayed {records:,} records…", file=sys.stderr, flush=True)

    session = runtime.resume_run(
        journal_path=journal, run_id=args.run, interactive=not args.headless, speed=args.speed,
        take_over=args.take_over, on_wait=waiting, on_progress=replaying,
    )
    return _headless(session, args.json) if args.headless else _console(session)


def watch(args: argparse.Namespace) -> int:
    spec = args.journal or runtime.default_journal()
    if not args.headless:
        from tui.console.app import watch_console

        return watch_console(spec, args.run)
    journal, label = journal_cmd.open_existing(spec)
    info = runtime.choose_run(journal, args.run)
    if info is None:
        journal.close()
        raise InputError.plain(f"no run {args.run} in {label}" if args.run else f"no rollout in {label}")
    plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
    from core import initial_state

    state = start = initial_state(plan, graph)
    show = HeadlessPrinter(args.json, state)
    try:
        for record, state in runtime.followed(journal, info, start):
            show(state, [record.event])
    except KeyboardInterrupt:
        pass
    finally:
        journal.close()
    if args.json:
        print(printer.json_line(printer.summary(state)))
    else:
        print(printer.end_line(state))
    from tui.cli.exits import exit_code_for

    return exit_code_for(state)


def audit(args: argparse.Namespace) -> int:
    from adapters.journals import audit_verify, parse_anchor

    anchor = None
    if args.anchor is not None:
        anchor = parse_anchor(args.anchor)
        if anchor is None or args.run is None:
            why = "needs --run ID" if anchor is not None else "is not SEQ:HASH as `interlock runs` prints a head"
            raise InputError.plain(f"--anchor {why}")
    journal, _label = journal_cmd.open_existing(args.journal or runtime.default_journal())
    try:
        code, lines = audit_verify(journal, args.run, anchor)
    finally:
        journal.close()
    print("\n".join(lines))
    return code


def log(args: argparse.Namespace) -> int:
    from core import initial_state
    from core import folding

    journal, label = journal_cmd.open_existing(args.journal or runtime.default_journal())
    info = runtime.find_run(journal, args.run, unfinished=False)
    if info is None:
        what = f"no run {args.run}" if args.run else "no run"
        raise InputError.plain(f"{what} in {label}")
    plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
    state = before = initial_state(plan, graph)
    if not args.json:
        print(f"run {info.run_id}  rollout {info.rollout}  plan {info.plan_path}  started {info.created} by {info.operator}")
    for record, state in folding(before, journal.records(info.run_id)):
        for line in printer.record_lines(record, state, before, as_json=args.json):
            print(line)
        before = state
    if args.json:
        print(printer.json_line(printer.summary(state)))
    else:
        print(printer.end_line(state))
    journal.close()
    return 0
