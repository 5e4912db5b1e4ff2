"""`interlock stack up | down | status`: the whole real stack on 127.0.0.1, for demos, tests and CI.

`up` starts, in this order, each on free loopback ports under one state
folder (default ``.stack/run``):

1. PostgreSQL and Unleash on it (skipped when an Unleash is given, as the
   test suite does with its session server), with a freshly generated admin
   token; the plan's flags are created (off, no strategy: 0%);
2. HAProxy, one frontend and one backend per routed service, its ``stable``
   and ``canary`` servers pointing at the simulated services' listeners;
3. `interlock sim serve` (`adapters.sim.serve`) with its load generator, which
   sends traffic through HAProxy and reads the flags back from Unleash;
4. Prometheus scraping the simulated services every second (it returns once
   the first scrape has landed);
5. the runnable plan: the template (``examples/recsys-stack.yaml``) with every
   ``${STACK_...}`` replaced by a real address, written next to the state.

Before anything starts it checks every server program and, if one is
missing, says which and how to install it, and starts nothing. If a step
fails, what already started is stopped again.

The state file (``state.json``, mode 0600) records pids, ports, addresses and
the token. The token never leaves that file except as the environment
variable the plan names (`TOKEN_ENV`, see `Stack.env`): it is never printed,
logged or written into the plan. `down` stops every process the state names
(continuing a stopped one first), stops PostgreSQL, and deletes the state
file; it is idempotent. `up` on a folder whose stack is still up returns it
as is; a stale folder is cleaned and started afresh.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from adapters.stack.haproxy import start_haproxy
from adapters.stack.postgres import PgServer, PostgresUnavailable, find_pg_bin, start_postgres
from adapters.stack.process import (
    INSTALL_HINT, PROJECT_ROOT, ServerUnavailable, find_program, http_get, port_open, ports, spawn,
)
from adapters.stack.prometheus import start_prometheus
from adapters.stack.unleash import DEFAULT_NODE_DIR, start_unleash, unleash_entry

DEFAULT_DIR = PROJECT_ROOT / ".stack" / "run"
TEMPLATE = PROJECT_ROOT / "examples" / "recsys-stack.yaml"
TOKEN_ENV = "INTERLOCK_STACK_UNLEASH_TOKEN"
STATE_FILE = "state.json"
MARKER = ".interlock-stack"
STOP_ORDER = ("prometheus", "sim", "haproxy", "unleash")
_PLACEHOLDER = re.compile(r"\$\{(STACK_[A-Z0-9_]+)\}")


class StackError(RuntimeError):
    """The stack cannot start (or stop); the message says why and what to do."""


@dataclass
class Stack:
    """A running stack as its state file describes it."""

    dir: Path
    token: str = field(repr=False)
    plan: Path
    urls: dict[str, str]
    frontends: dict[str, str]
    listeners: dict[str, dict[str, int]]
    processes: dict[str, dict[str, Any]]
    postgres: dict[str, Any] | None = None
    token_env: str = TOKEN_ENV

    @property
    def sim_admin(self) -> str:
        return self.urls["sim"]

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for `interlock run` on the stack plan: `base` plus the token variable."""
        env = dict(os.environ if base is None else base)
        env[self.token_env] = self.token
        return env

    def pid(self, name: str) -> int:
        return int(self.processes[name]["pid"])

    def pause(self, name: str) -> None:
        """SIGSTOP a server (an outage for tests): it keeps its sockets and answers nothing."""
        os.killpg(self.pid(name), signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.pid(name), signal.SIGCONT)

    def to_json(self) -> dict[str, Any]:
        return {"dir": str(self.dir), "token": self.token, "token_env": self.token_env, "plan": str(self.plan),
                "urls": self.urls, "frontends": self.frontends, "listeners": self.listeners,
                "processes": self.processes, "postgres": self.postgres}


# -- state file --------------------------------------------------------------


def _write_state(stack: Stack) -> None:
    path = stack.dir / STATE_FILE
    tmp = stack.dir / f".{STATE_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(stack.to_json(), out, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_state(folder: Path = DEFAULT_DIR) -> Stack | None:
    """The stack recorded in `folder`, or None when there is none."""
    try:
        data = json.loads((Path(folder) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Stack(dir=Path(data["dir"]), token=data["token"], plan=Path(data["plan"]), urls=data["urls"],
                 frontends=data["frontends"], listeners=data["listeners"], processes=data["processes"],
                 postgres=data.get("postgres"), token_env=data.get("token_env", TOKEN_ENV))


# -- checks and the plan -----------------------------------------------------


def missing_servers(*, node_dir: Path | None = None, unleash: bool = True) -> list[str]:
    """One line per server program that is not installed, each saying how to install it."""
    problems = []
    for program in ("haproxy", "prometheus"):
        try:
            find_program(program)
        except ServerUnavailable as exc:
            problems.append(str(exc))
    if unleash:
        try:
            find_pg_bin()
        except PostgresUnavailable as exc:
            problems.append(f"{exc}; or {INSTALL_HINT}")
        if shutil.which("node") is None:
            problems.append(f"Node.js (20 or newer, for Unleash) is not installed; {INSTALL_HINT}")
        try:
            unleash_entry(Path(node_dir) if node_dir else DEFAULT_NODE_DIR)
        except ServerUnavailable as exc:
            problems.append(str(exc))
    return problems


def render_plan(template: str, values: Mapping[str, str]) -> str:
    """The template with each ``${STACK_NAME}`` replaced; an unknown name is an error.
    Only ``${STACK_...}`` is touched: the queries' ``$service``/``$version`` stay."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise StackError(f"the plan template names ${{{name}}}; the stack provides {', '.join(sorted(values))}")
        return values[name]

    return _PLACEHOLDER.sub(value, template)


def _plan_shape(template: Path) -> tuple[Any, list[str], dict[str, str]]:
    """(plan, flags, route → service) of the template, which is a valid plan as it is."""
    from core import load_plan

    plan, _ = load_plan(template)
    flags, routes = [], {}
    for name, service in plan.services.items():
        if service.moves:
            exposure = plan.exposure_of(name)
            if exposure.flag:
                flags.append(exposure.flag)
            if exposure.route:
                routes[exposure.route] = name
    return plan, sorted(flags), routes


async def _prepare_flags(url: str, token: str, flags: list[str]) -> None:
    from adapters.unleash import UnleashFlags

    client = UnleashFlags(url, token=token)
    try:
        for flag in flags:
            await client.ensure_flag(flag, "rolled out by interlock on the demo stack")
            if await client.get_rollout(flag) != 0.0:
                await client.set_rollout(flag, 0.0, "@stack")
    finally:
        await client.aclose()


# -- up ----------------------------------------------------------------------


def _fresh_folder(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise StackError(f"{folder} is not empty and was not made by `interlock stack up`; choose another --dir")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    folder.chmod(0o711)  # as root, PostgreSQL runs as `postgres` and must enter this folder
    (folder / MARKER).write_text("made by `interlock stack up`; `interlock stack down` stops it\n", encoding="utf-8")


def _start_sim(stack: Stack, template: Path, listeners: dict[str, dict[str, int]], admin_port: int, *,
               seed: int, latency_scale: float, rps_scale: float) -> None:
    from adapters.sim.serve import LoadConfig, ServeConfig

    folder = stack.dir / "sim"
    folder.mkdir(parents=True, exist_ok=True)
    ready = folder / "ready.json"
    config = ServeConfig(
        plan=str(template), seed=seed, latency_scale=latency_scale, admin_port=admin_port,
        listeners=listeners, ready_file=str(ready),
        load=LoadConfig(rps_scale=rps_scale, routes=stack.frontends, unleash_url=stack.urls["unleash"],
                        token_env=stack.token_env, haproxy_admin=stack.urls["haproxy_admin"]),
    )
    (folder / "serve.json").write_text(config.to_json(), encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_ROOT),
           stack.token_env: stack.token}
    proc = spawn("sim", [sys.executable, "-m", "adapters.sim.serve", "--config", str(folder / "serve.json")],
                 folder, env=env, cwd=PROJECT_ROOT)
    stack.processes["sim"] = {"pid": proc.pid, "log": str(proc.log), "address": f"127.0.0.1:{admin_port}"}
    _write_state(stack)
    proc.wait_until(lambda: ready.exists() and http_get(f"http://127.0.0.1:{admin_port}/healthz")[0] == 200,
                    30.0, "its listeners and admin port answer")


def up(
    folder: Path = DEFAULT_DIR,
    *,
    template: Path = TEMPLATE,
    node_dir: Path | None = None,
    unleash: tuple[str, str] | None = None,
    seed: int = 0,
    scrape_interval: float = 1.0,
    latency_scale: float = 0.01,
    rps_scale: float = 1.0,
) -> Stack:
    """Start the stack in `folder` (see the module docstring); `unleash=(url, token)` reuses one."""
    folder = Path(folder).resolve()
    running = load_state(folder)
    if running is not None:
        if all(row["up"] for row in status(folder)):
            return running
        down(folder)
    problems = missing_servers(node_dir=node_dir, unleash=unleash is None)
    if problems:
        raise StackError("cannot start the stack; nothing was started:\n" + "\n".join(f"  {p}" for p in problems))
    plan, flags, routes = _plan_shape(Path(template))
    _fresh_folder(folder)
    stack = Stack(dir=folder, token=unleash[1] if unleash else f"*:*.{secrets.token_hex(24)}",
                  plan=folder / Path(template).name, urls={}, frontends={}, listeners={}, processes={})
    if unleash is not None:
        stack.urls["unleash"] = unleash[0]
    _write_state(stack)
    try:
        if unleash is None:
            pg = start_postgres(folder, database="unleash")
            stack.postgres = {"bin_dir": str(pg.bin_dir), "cluster_dir": str(pg.cluster_dir), "port": pg.port,
                              "run_as": pg.run_as, "database": pg.database}
            _write_state(stack)
            server = start_unleash(folder, pg.url, token=stack.token, node_dir=node_dir)
            stack.processes["unleash"] = {"pid": server.proc.pid, "log": str(server.proc.log),
                                          "address": f"127.0.0.1:{server.port}"}
            stack.urls["unleash"] = server.url
            _write_state(stack)
        asyncio.run(_prepare_flags(stack.urls["unleash"], stack.token, flags))

        listen = {name: ("stable", "canary") if s.moves else ("stable",) for name, s in plan.services.items()}
        free = iter(ports(1 + sum(len(roles) for roles in listen.values())))
        admin_port = next(free)
        stack.listeners = {name: {role: next(free) for role in roles} for name, roles in listen.items()}
        backends = {route: (f"127.0.0.1:{stack.listeners[svc]['stable']}", f"127.0.0.1:{stack.listeners[svc]['canary']}")
                    for route, svc in routes.items()}
        haproxy = start_haproxy(folder, backends)
        stack.processes["haproxy"] = {"pid": haproxy.proc.pid, "log": str(haproxy.proc.log), "address": haproxy.admin}
        stack.urls["haproxy_admin"] = haproxy.admin
        stack.frontends = {route: f"127.0.0.1:{port}" for route, port in haproxy.frontends.items()}
        _write_state(stack)

        sim_plan = folder / "sim-plan.yaml"
        sim_plan.write_text(Path(template).read_text(encoding="utf-8"), encoding="utf-8")
        stack.urls["sim"] = f"http://127.0.0.1:{admin_port}"
        _start_sim(stack, sim_plan, stack.listeners, admin_port,
                   seed=seed, latency_scale=latency_scale, rps_scale=rps_scale)

        prometheus = start_prometheus(folder, [f"127.0.0.1:{admin_port}"], scrape_interval=scrape_interval)
        stack.processes["prometheus"] = {"pid": prometheus.proc.pid, "log": str(prometheus.proc.log),
                                         "address": f"127.0.0.1:{prometheus.port}"}
        stack.urls["prometheus"] = prometheus.url
        stack.plan.write_text(render_plan(Path(template).read_text(encoding="utf-8"), {
            "STACK_UNLEASH_URL": stack.urls["unleash"],
            "STACK_HAPROXY_ADMIN": stack.urls["haproxy_admin"],
            "STACK_PROMETHEUS_URL": stack.urls["prometheus"],
        }), encoding="utf-8")
        _write_state(stack)
    except BaseException as exc:
        down(folder)
        if isinstance(exc, (ServerUnavailable, PostgresUnavailable)):
            raise StackError(str(exc).replace(stack.token, "***")) from None
        raise
    return stack


# -- status and down ---------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child (a test started the stack in-process)
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _answers(name: str, stack: Stack) -> bool:
    if name == "unleash":
        return b"GOOD" in http_get(f"{stack.urls['unleash']}/health")[1]
    if name == "prometheus":
        return http_get(f"{stack.urls['prometheus']}/-/ready")[0] == 200
    if name == "sim":
        return http_get(f"{stack.urls['sim']}/healthz")[0] == 200
    return port_open(int(stack.urls["haproxy_admin"].rsplit(":", 1)[1]))


def _pg(stack: Stack) -> PgServer | None:
    pg = stack.postgres
    if not pg:
        return None
    return PgServer(Path(pg["bin_dir"]), Path(pg["cluster_dir"]), int(pg["port"]), pg["run_as"], database=pg["database"])


def status(folder: Path = DEFAULT_DIR) -> list[dict[str, Any]]:
    """One row per server: name, pid, address, up (the process lives and answers). Empty when down."""
    stack = load_state(folder)
    if stack is None:
        return []
    rows: list[dict[str, Any]] = []
    pg = _pg(stack)
    if pg is not None:
        rows.append({"name": "postgres", "pid": None, "address": f"127.0.0.1:{pg.port}", "up": pg.running()})
    for name in reversed(STOP_ORDER):
        if name in stack.processes:
            entry = stack.processes[name]
            pid = int(entry["pid"])
            rows.append({"name": name, "pid": pid, "address": entry["address"],
                         "up": _alive(pid) and _answers(name, stack)})
    return rows


def _stop(pid: int, grace: float = 10.0) -> None:
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
    deadline = time.monotonic() + grace
    while _alive(pid):
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5.0
        time.sleep(0.05)


def down(folder: Path = DEFAULT_DIR) -> list[str]:
    """Stop everything the state file names and delete it; the names stopped (none if already down)."""
    stack = load_state(folder)
    if stack is None:
        return []
    stopped = []
    for name in STOP_ORDER:
        if name in stack.processes:
            _stop(int(stack.processes[name]["pid"]))
            stopped.append(name)
    pg = _pg(stack)
    if pg is not None:
        pg.stop()
        stopped.append("postgres")
    (Path(folder) / STATE_FILE).unlink(missing_ok=True)
    return stopped
