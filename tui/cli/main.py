"""The `interlock` command line: the parser, exit codes and the one place errors become lines.

The exit codes' meanings live in the README's table (one home); `interlock --help` shows
them from there (`tui.cli.helptext`). A closed pipe (`interlock log | head`) ends a command
quietly: a run it drives stops as after Ctrl-C, resumable, and nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from core import InputError
from tui.cli import plan_cmd
from tui.cli.exits import (  # noqa: F401 - the exit codes are part of the command line's surface
    EXIT_BAD_INPUT,
    EXIT_DAMAGED,
    EXIT_IO,
    EXIT_LEASE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_ROLLED_BACK,
    EXIT_TAKEN,
    EXIT_WAITING,
    exit_code_for,
    output_lost,
    silence_stdout,
)


def bundled_example(name: str = "recsys.yaml") -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / name


def _journal_arg(parser: argparse.ArgumentParser) -> None:
    # Not type=Path: a Path would turn postgresql://host into postgresql:/host.
    parser.add_argument(
        "--journal", default=None, metavar="PATH|URL",
        help="a SQLite file (default: $INTERLOCK_JOURNAL or .interlock/journal.db) or a postgresql:// URL",
    )


def add_run_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `run` and `demo` subcommands, as `interlock --help` lists them and as `_parse_run`
    parses them."""
    for name, help_text in (("run", "run a plan"), ("demo", "the console on the bundled example")):
        r = sub.add_parser(name, help=help_text)
        if name == "run":
            r.add_argument("plan", type=Path, help="the plan (YAML)")
            r.add_argument("--adopt", action="store_true",
                           help="start from the flags and routes as found instead of refusing (needs --reason)")
            r.add_argument("--strict", action="store_true",
                           help="refuse when something else on a flag exposes users (a warning otherwise)")
            r.add_argument("--abandon", default=None, metavar="RUN",
                           help="give up this rollout's unfinished run RUN (journaled; needs --reason)")
            r.add_argument("--reason", default="", help="why --adopt or --abandon (journaled with your identity)")
        r.add_argument("--headless", action="store_true", help="no console: one line per event")
        r.add_argument("--json", action="store_true", help="with --headless: JSON lines and a summary")
        r.add_argument("--speed", type=float, default=None,
                       help="real clock, N simulated seconds per second (default: virtual clock when headless)")
        r.add_argument("--seed", type=int, default=0, help="seed of the simulated world (default 0)")
        _journal_arg(r)
        if name == "demo":
            r.add_argument("--stack", action="store_true",
                           help="the real stack (`interlock stack up` unless it is up) and its plan, in real time")


def _parse_run(argv: Sequence[str]) -> argparse.Namespace | None:
    """The arguments of `run` or `demo`, or None for any other command line: a rollout does
    not import every other subcommand to build the whole parser (80 ms of its start-up).
    Anything this parser would not accept as it stands gives None, so the whole parser
    reports it in its own words (`plan_cmd.parse` does the same for validate and plan)."""
    if not argv or argv[0] not in ("run", "demo"):
        return None
    parser = argparse.ArgumentParser(prog="interlock", add_help=False)
    add_run_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args, extra = parser.parse_known_args(argv)  # `--help` and missing arguments: as the whole parser
    return None if extra else args


def _parser() -> argparse.ArgumentParser:
    from tui.cli.helptext import DESCRIPTION, epilog, version

    p = argparse.ArgumentParser(prog="interlock", description=DESCRIPTION, epilog=epilog(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"interlock {version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plan_cmd.add_parsers(sub)

    add_run_parsers(sub)

    rs = sub.add_parser("resume", help="continue an unfinished rollout from its journal")
    rs.add_argument("--run", default=None, help="run id (default: the latest unfinished run)")
    rs.add_argument("--headless", action="store_true", help="no console: one line per event")
    rs.add_argument("--json", action="store_true", help="with --headless: JSON lines and a summary")
    rs.add_argument("--speed", type=float, default=None,
                    help="simulated seconds per second (default: the run's own clock)")
    rs.add_argument("--take-over", action="store_true",
                    help="if another console drives this rollout, wait until it is gone, then drive it")
    _journal_arg(rs)
    from tui.cli import steer_cmd

    steer_cmd.add_request_arguments(rs, journal=False)  # with a live driver, resume is a request to it

    wt = sub.add_parser("watch", help="the console, read-only, following a rollout's journal")
    wt.add_argument("--run", default=None, help="run id (default: the latest unfinished run, else the latest)")
    wt.add_argument("--headless", action="store_true", help="no console: one line per event as it is journaled")
    wt.add_argument("--json", action="store_true", help="with --headless: JSON lines and a summary at the end")
    _journal_arg(wt)

    an = sub.add_parser("analyze", help="replay recorded measurements through one of a plan's gates")
    an.add_argument("plan", type=Path, help="the plan (YAML) that defines the gate")
    an.add_argument("gate", help="the gate's name in the plan")
    an.add_argument("measurements", type=Path, help="a JSON list of measurements, in time order")
    an.add_argument("--json", action="store_true", help="the replay as JSON: phase, decided_at, measurements")

    d = sub.add_parser("drill", help="rehearse a rollback: run a drill and print its scorecard")
    d.add_argument("drill", type=Path, help="the drill (YAML): a plan, faults and expectations")
    d.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    d.add_argument("--report", type=Path, default=None, metavar="FILE.md", help="also write the scorecard as Markdown")
    d.add_argument("--junit", type=Path, default=None, metavar="FILE.xml",
                   help="also write JUnit XML, one test case per expectation")
    d.add_argument("--live", action="store_true", help="allow a plan whose environment is marked staging: true")
    d.add_argument("--console", action="store_true", help="run it in the console: a person responds, on a real clock")
    d.add_argument("--speed", type=float, default=None, help="with --console: simulated seconds per second (default 60)")
    d.add_argument("--seed", type=int, default=None, help="use this seed instead of the drill's")
    d.add_argument("--journal", default=None, help="journal file (default: drills.db beside the rollout journal)")

    au = sub.add_parser("audit", help="prove the journal untouched")
    ausub = au.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    av = ausub.add_parser("verify", help="exit 0 if every run's hash chain is intact, 1 naming the first bad record")
    av.add_argument("--run", default=None, help="only this run (default: every run)")
    av.add_argument("--anchor", default=None, metavar="SEQ:HASH",
                    help="with --run: a head of that run noted elsewhere (`interlock runs`); it must still be there")
    _journal_arg(av)

    lg = sub.add_parser("log", help="a rollout's history from the journal")
    lg.add_argument("--run", default=None, help="run id (default: the latest run)")
    lg.add_argument("--json", action="store_true", help="JSON lines (one per record) and a summary")
    _journal_arg(lg)
    from tui.cli import journal_cmd
    from tui.cli.stack_cmd import add_parsers

    journal_cmd.add_parsers(sub)
    add_parsers(sub)
    steer_cmd.add_parsers(sub)
    from tui.cli import report_cmd

    report_cmd.add_parsers(sub)
    return p


def _fail(problems: Sequence[object]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return EXIT_BAD_INPUT


def _argument_problems(args: argparse.Namespace) -> list[str]:
    """Values argparse accepts but no run can use (`--speed nan`, `--seed 2**64`)."""
    from core import seed_problem, speed_problem

    problems = []
    speed = getattr(args, "speed", None)
    if speed is not None and (why := speed_problem(speed)) is not None:
        problems.append(f"interlock: --speed: {why}")
    seed = getattr(args, "seed", None)
    if seed is not None and (why := seed_problem(seed)) is not None:
        problems.append(f"interlock: --seed: {why}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    light = plan_cmd.parse(argv)  # validate and plan: without importing every other command
    if light is not None:
        return _guarded(lambda: plan_cmd.run(light))
    args = _parse_run(argv)
    if args is None:
        args = _parser().parse_args(argv)
    problems = _argument_problems(args)
    if problems:
        return _fail(problems)
    return _guarded(lambda: _dispatch(args))


def _guarded(command: Callable[[], int]) -> int:
    """Runs a command, its known failures turned into their lines and exit codes."""
    try:
        return command()
    except InputError as exc:
        return _fail([p.format() for p in exc.problems])
    except BrokenPipeError:  # the reader left (`| head`): what it read is all it wanted
        silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted: the rollout stays in the journal; `interlock resume` continues it", file=sys.stderr)
        return EXIT_WAITING
    except Exception as exc:
        code = _refusal(exc)
        if code is None:
            raise
        return code


def _refusal(exc: Exception) -> int | None:
    """The exit code of a journal, lease or preflight failure, after its lines; None for
    any other exception. (Imported here, when one is raised: `validate` never needs them.)"""
    from adapters.journal_chain import JournalDamaged
    from adapters.journal_codec import JournalError, JournalIOError
    from core import LeaseHeld, LeaseLost, Refused

    if isinstance(exc, JournalDamaged):
        print(f"interlock: {exc}; refused, nothing was driven (`interlock audit verify` checks every run)",
              file=sys.stderr)
        return EXIT_DAMAGED
    if isinstance(exc, JournalIOError):
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_IO
    if isinstance(exc, JournalError):
        return _fail([f"interlock: {exc}"])  # the message names the journal, any password masked
    if isinstance(exc, (LeaseHeld, LeaseLost)):
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_LEASE
    if isinstance(exc, Refused):
        for line in exc.lines:
            print(line, file=sys.stderr)
        print("interlock: nothing was changed and nothing was journaled", file=sys.stderr)
        return EXIT_REFUSED if exc.kind == "world" else EXIT_TAKEN
    if isinstance(exc, OSError) and output_lost(exc):  # a storage failure (a closed pipe is handled above)
        # Mostly the output itself (`> file` on a full disk): what was buffered is dropped,
        # or the interpreter's flush at exit would fail again with a traceback.
        silence_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"interlock: cannot write{where}: {exc.strerror}", file=sys.stderr)
        return EXIT_IO
    return None


def _dispatch(args: argparse.Namespace) -> int:
    from tui.cli import rollout_cmd

    if args.command in ("stack", "sim") or (args.command == "demo" and args.stack):
        from tui.cli import stack_cmd

        if args.command == "stack":
            return stack_cmd.stack_main(args)
        if args.command == "sim":
            return stack_cmd.sim_serve_main(args)
        return stack_cmd.demo_stack_main(args)
    if args.command == "drill":
        from tui.cli.drill_cmd import drill_main

        return drill_main(args)
    if args.command == "analyze":
        from tui.cli.analyze_cmd import analyze_main

        return analyze_main(args.plan, args.gate, args.measurements, as_json=args.json)
    if args.command == "audit":
        return rollout_cmd.audit(args)
    if args.command in plan_cmd.COMMANDS:
        return plan_cmd.run(args)
    if args.command in ("run", "demo"):
        plan = args.plan if args.command == "run" else bundled_example()
        return rollout_cmd.run(plan, args)
    if args.command == "resume":
        from tui.cli.steer_cmd import resume_main

        return resume_main(args)
    from tui.cli import steer_cmd

    if args.command in steer_cmd.COMMANDS:
        return steer_cmd.steer_main(args)
    if args.command == "watch":
        return rollout_cmd.watch(args)
    if args.command == "log":
        return rollout_cmd.log(args)
    if args.command in ("report", "status"):
        from tui.cli import report_cmd

        return report_cmd.report_main(args) if args.command == "report" else report_cmd.status_main(args)
    if args.command in ("runs", "journal", "events"):
        from tui.cli import journal_cmd

        if args.command == "events":
            return journal_cmd.events_main(args)
        return journal_cmd.runs_main(args) if args.command == "runs" else journal_cmd.backup_main(args)
    raise AssertionError(args.command)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
