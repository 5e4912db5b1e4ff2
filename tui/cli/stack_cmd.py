"""`interlock stack up|down|status|exec`, `interlock sim serve` and `interlock demo --stack`.

`tui.cli.main` owns the parser; `add_parsers(sub)` adds these commands to it and
`stack_main`, `sim_serve_main` and `demo_stack_main` run them. The same
parser also runs standalone as ``python -m tui.cli.stack_cmd ...`` (the stack
tests use it that way).

Exit codes: 0 done (for `status`: every server up); 1 the stack cannot start
(a server program is missing: the message names it and how to install it, and
nothing was started) or, for `status`, something is down; 2 bad input.

The Unleash token is never printed: `stack up` says which file holds it and
which variable carries it; `stack exec -- CMD` runs CMD with that variable set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from adapters.stack import stack as stk


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `stack` and `sim` to interlock's subcommands."""
    st = sub.add_parser("stack", help="start, stop or inspect the real stack on 127.0.0.1")
    actions = st.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("up", "start PostgreSQL, Unleash, HAProxy, the sim services and Prometheus"),
                         ("down", "stop everything `up` started"),
                         ("status", "what runs, where, and whether it answers"),
                         ("exec", "run a command with the stack's token in its environment: exec -- CMD ARGS")):
        a = actions.add_parser(action, help=text)
        a.add_argument("--dir", type=Path, default=None, help=f"state folder (default {stk.DEFAULT_DIR})")
        if action == "up":
            a.add_argument("--node-dir", type=Path, default=None,
                           help="where unleash-server is installed (default .stack/node)")
            a.add_argument("--template", type=Path, default=None, help=f"plan template (default {stk.TEMPLATE.name})")
        if action == "exec":
            a.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                           help="the command to run with the stack's addresses in its environment")

    sim = sub.add_parser("sim", help="the simulated world as real processes")
    simsub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    sv = simsub.add_parser("serve", help="run a plan's services as HTTP servers with Prometheus metrics")
    sv.add_argument("plan", type=Path, nargs="?", help="a plan (its services and sim: blocks)")
    sv.add_argument("--config", type=Path, default=None, help="a serve config JSON (what `stack up` writes)")
    sv.add_argument("--admin-port", type=int, default=0, help="metrics/faults/state port (default: a free one)")
    sv.add_argument("--seed", type=int, default=0, help="seed of the simulated world (default 0)")
    sv.add_argument("--latency-scale", type=float, default=0.01,
                    help="sleep this share of the simulated latency (default 0.01); metrics keep the full value")
    sv.add_argument("--rps-scale", type=float, default=1.0, help="load: the plan's sim.rps times this")
    sv.add_argument("--no-load", action="store_true", help="no built-in load generator")
    sv.add_argument("--ready-file", type=Path, default=None, help="write the ports here (JSON) once bound")


def _folder(args: argparse.Namespace) -> Path:
    return (args.dir or stk.DEFAULT_DIR).resolve()


def _print_stack(stack: stk.Stack) -> None:
    rows = stk.status(stack.dir)
    for row in rows:
        pid = f"pid {row['pid']}" if row["pid"] else ""
        print(f"  {row['name']:<11} {row['address']:<22} {pid:<11} {'up' if row['up'] else 'DOWN'}")
    if stack.frontends:
        print("  frontends   " + ", ".join(f"{r} {a}" for r, a in sorted(stack.frontends.items())))
    print(f"  sim admin   {stack.sim_admin}  (GET /metrics /state, POST|DELETE /faults)")
    print(f"  plan        {stack.plan}")
    print(f"  token       in {stack.dir / stk.STATE_FILE} (mode 0600), passed as ${stack.token_env}")


def stack_main(args: argparse.Namespace) -> int:
    folder = _folder(args)
    if args.action == "up":
        was = stk.load_state(folder)
        started = time.monotonic()
        print(f"stack: starting PostgreSQL, Unleash, HAProxy, the sim services and Prometheus in {folder} ...",
              flush=True)
        try:
            running = stk.up(folder, template=args.template or stk.TEMPLATE, node_dir=args.node_dir)
        except stk.StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 1
        already = was is not None and was.processes == running.processes
        print("stack: already up" if already else f"stack: up in {time.monotonic() - started:.1f} s")
        _print_stack(running)
        print(f"run it:  interlock demo --stack   or   interlock stack exec -- interlock run {running.plan} "
              "--headless --speed 1")
        return 0
    if args.action == "down":
        stopped = stk.down(folder)
        print(f"stack: stopped {', '.join(stopped)}" if stopped else "stack: already down")
        return 0
    stack = stk.load_state(folder)
    if stack is None:
        print(f"stack: down (no state in {folder}); start it with `interlock stack up`",
              file=sys.stderr if args.action == "exec" else sys.stdout)
        return 1
    if args.action == "status":
        print(f"stack in {folder}")
        _print_stack(stack)
        return 0 if all(row["up"] for row in stk.status(folder)) else 1
    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        print("stack exec: give a command after --", file=sys.stderr)
        return 2
    try:
        os.execvpe(command[0], command, stack.env())
    except OSError as exc:
        print(f"stack exec: {command[0]}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0  # not reached


def demo_stack_main(args: argparse.Namespace) -> int:
    """`interlock demo --stack`: `stack up` unless it is up, then the console (or --headless) on its plan,
    on the real clock at speed 1 unless --speed says otherwise."""
    from tui.cli import rollout_cmd

    folder = stk.DEFAULT_DIR.resolve()
    stack = stk.load_state(folder)
    if stack is None or not all(row["up"] for row in stk.status(folder)):
        print("stack: starting the real stack first (a minute at most) ...", flush=True)
        try:
            stack = stk.up(folder)
        except stk.StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 1
    os.environ[stack.token_env] = stack.token
    if args.speed is None:
        args.speed = 1.0
    return rollout_cmd.run(stack.plan, args)


def sim_serve_main(args: argparse.Namespace) -> int:
    from adapters.sim.serve import LoadConfig, ServeConfig, SimServer, run

    if args.config is not None:
        try:
            config = ServeConfig.from_json(args.config.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            print(f"{args.config}: {exc}", file=sys.stderr)
            return 2
    elif args.plan is None:
        print("sim serve: give a PLAN or --config", file=sys.stderr)
        return 2
    else:
        config = ServeConfig(
            plan=str(args.plan), seed=args.seed, latency_scale=args.latency_scale, admin_port=args.admin_port,
            ready_file=str(args.ready_file) if args.ready_file else None,
            load=None if args.no_load else LoadConfig(rps_scale=args.rps_scale),
        )

    def started(server: SimServer) -> None:
        print(f"sim serve: admin http://127.0.0.1:{server.admin_port} (GET /metrics /state, POST|DELETE /faults, "
              "PUT /exposure)")
        for service, roles in server.listeners.items():
            print(f"  {service:<16} " + "  ".join(f"{role} 127.0.0.1:{port}" for role, port in roles.items()))
        print("Ctrl-C stops it", flush=True)

    return run(config, started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.cli.stack_cmd")
    add_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    if args.command == "stack":
        return stack_main(args)
    return sim_serve_main(args)


if __name__ == "__main__":
    sys.exit(main())
