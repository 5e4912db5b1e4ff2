"""`interlock pause | resume | step | approve S | promote S [--full] | rollback S | abort`:
steer a rollout another process drives, from any terminal.

The commands are built from the action table (`core.actions.ACTIONS`, each verb's
`cli` spelling), so a verb has one home. Each sends one request through the
journal to the run's live driver (`tui.session.steering.ask`) and prints its answer:
exit 0 applied, 1 refused (the driver says why), 4 no live driver answered. A
rollback asks for no confirmation here: the answer lists the cascade it applied.
`resume` is also how a rollout nobody drives is driven again, so it asks only when
a driver is live, and otherwise continues the run itself (`rollout_cmd.resume`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapters.journals import SharedJournal, is_url, journal_label, open_journal
from core import ACTIONS, BY_NAME, Action, InputError, Problem, RunInfo
from tui import printer
from tui.cli.exits import EXIT_BAD_INPUT, EXIT_LEASE, EXIT_OK, EXIT_ROLLED_BACK
from tui.session import runtime

COMMANDS: dict[str, list[Action]] = {}
"""Each command of the action table (`pause`, `promote`, ...) and the actions it selects."""
for _action in ACTIONS:
    if _action.cli:
        COMMANDS.setdefault(_action.cli.split()[0], []).append(_action)

_HELP = {
    "pause": "ask the live driver to pause the rollout",
    "step": "ask the live driver to step one transition (while paused)",
    "approve": "ask the live driver to approve SERVICE's stage or wave",
    "promote": "break-glass: end SERVICE's bake and take its next stage now (--full: 100%% now)",
    "rollback": "ask the live driver to roll SERVICE back (and what the cascade takes); no confirmation",
    "abort": "ask the live driver to abort the whole rollout (every moved service back to 0%%)",
}


def add_request_arguments(parser: argparse.ArgumentParser, *, journal: bool = True) -> None:
    """What every request takes (`resume` has its own `--run` and `--journal`)."""
    if journal:
        parser.add_argument("--run", default=None, help="run id (default: the latest unfinished run)")
        parser.add_argument("--journal", default=None, metavar="PATH|URL",
                            help="a SQLite file (default: $INTERLOCK_JOURNAL or .interlock/journal.db) "
                                 "or a postgresql:// URL")
    parser.add_argument("--reason", default="", help="why (journaled with your identity; required by promote)")
    parser.add_argument("--request", default=None, metavar="ID",
                        help="a request id of your own: the same id sent again is answered, never applied twice")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The request commands, from the action table (`resume` is `interlock resume`'s)."""
    for command, actions in COMMANDS.items():
        if command == "resume":
            continue
        p = sub.add_parser(command, help=_HELP.get(command, actions[0].summary))
        if actions[0].needs_service:
            p.add_argument("service", metavar="SERVICE", help="the service, as the plan names it")
        for action in actions:
            for flag in action.cli.split()[1:]:
                p.add_argument(flag, action="store_true", help=action.summary)
        add_request_arguments(p)


def action_of(args: argparse.Namespace) -> Action:
    """The table's action a parsed request command selects (`promote --full`: promote_full)."""
    candidates = COMMANDS[args.command]
    for action in sorted(candidates, key=lambda a: -len(a.cli.split())):
        flags = action.cli.split()[1:]
        if all(getattr(args, flag.lstrip("-").replace("-", "_"), False) for flag in flags):
            return action
    raise AssertionError(args.command)


def _open(spec: str) -> SharedJournal:
    if not is_url(spec) and not Path(spec).exists():
        raise InputError([Problem(path=(), message="no journal here; start a rollout with `interlock run`",
                                  file=journal_label(spec))])
    return open_journal(spec, readonly=True, create=False)


def _run_of(journal: SharedJournal, run_id: str | None) -> RunInfo:
    info = runtime.choose_run(journal, run_id)
    if info is None:
        what = f"no run {run_id!r}" if run_id else "no run"
        raise InputError([Problem(path=(), message=f"{what} in this journal", file=journal.label)])
    return info


class _Bad(Exception):
    """Bad input that is not about a file: one line `interlock: ...`, exit 2."""


def _check_service(info: RunInfo, service: str) -> None:
    plan, graph = runtime.compile_text(info.plan_text, info.plan_path)
    if service not in graph.moving:
        moving = ", ".join(sorted(graph.moving))
        raise _Bad(f"{service!r} is not a service that moves in rollout {plan.rollout} (its services: {moving})")


def request(args: argparse.Namespace, action: Action, journal: SharedJournal, info: RunInfo) -> int:
    """Send one request for `info`'s run and print its answer; the exit code."""
    try:
        return _request(args, action, journal, info)
    except _Bad as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _request(args: argparse.Namespace, action: Action, journal: SharedJournal, info: RunInfo) -> int:
    from tui.session.steering import NO_DRIVER, ask

    service = getattr(args, "service", None)
    if service is not None:
        _check_service(info, service)
    if action.needs_reason and not args.reason.strip():
        raise _Bad(f"{action.cli} needs --reason TEXT: break-glass is journaled with who and why")
    asked = ask(journal, info, action.name, service, operator=runtime.operator_identity(journal),
                reason=args.reason, request_id=args.request)
    status, text = asked.answer.status, asked.answer.text
    if status == "applied":
        print(text)
        return EXIT_OK
    if status == "refused":
        print(f"interlock: refused: {text}", file=sys.stderr)
        return EXIT_ROLLED_BACK
    if status == NO_DRIVER:
        state = runtime.replay(journal, info).state
        if state.finished:
            text = f"no live driver: run {info.run_id} ended ({printer.words(state.phase)}); nothing drives it any more"
        else:
            text = (f"no live driver for run {info.run_id} ({printer.words(state.effective_phase)}); "
                    f"`interlock resume --run {info.run_id}` drives it again, then ask again")
    print(f"interlock: {text}", file=sys.stderr)
    return EXIT_LEASE


def steer_main(args: argparse.Namespace) -> int:
    """`interlock pause|step|approve|promote|rollback|abort ...`."""
    journal = _open(args.journal or runtime.default_journal())
    try:
        return request(args, action_of(args), journal, _run_of(journal, args.run))
    finally:
        journal.close()


def resume_main(args: argparse.Namespace) -> int:
    """`interlock resume`: a request to the live driver when there is one (a paused rollout
    carries on), else drive the unfinished run here (`--take-over`: wait for the driver
    to go, then drive)."""
    from tui.cli import rollout_cmd

    spec = args.journal or runtime.default_journal()
    if not args.take_over and (is_url(spec) or Path(spec).exists()):
        try:
            journal = open_journal(spec, readonly=True, create=False)
        except Exception:  # noqa: BLE001 - resume itself reports a journal it cannot open
            return rollout_cmd.resume(args)
        try:
            runs = journal.runs()
            info = next((r for r in runs if r.run_id == args.run), None) if args.run else (runs[-1] if runs else None)
            live = info is not None and bool(journal.driver(info.run_id))
        except Exception:  # noqa: BLE001 - resume itself reports a journal it cannot read
            live = False
        try:
            if live and info is not None:
                return request(args, BY_NAME["resume"], journal, info)
        finally:
            journal.close()
    return rollout_cmd.resume(args)
