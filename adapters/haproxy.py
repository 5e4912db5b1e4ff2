"""HAProxy (runtime API) as a `Router`: the stable/canary server weights of a backend.

Each route is one backend with two servers, ``stable`` and ``canary`` unless
the plan says otherwise. Configure both with ``weight 100`` (canary ``weight 0``
to start at 0%) and a dynamic algorithm (HAProxy's static ones accept only 0%
and 100%): ``balance roundrobin`` for a service that moves alone, and for the
routes of a lockstep group ``balance hdr(X-User)`` with ``hash-type
consistent`` and the same server ids (``id 1``, ``id 2``) in every backend, so
a user lands on the same side of every route (`cohort_problems` checks that
over the runtime API before a run; `core.cohorts` says why). Then a canary percentage is an absolute
pair of weights out of 100: ``set weight be/canary P`` and ``set weight
be/stable 100-P``. The two weights always move in opposite directions, so
between the two commands traffic sits between the old and the new split,
never beyond it. Percentages are whole numbers here (HAProxy weights are
integers); a fractional stage is rounded, and its read-back then differs.

The runtime API is HAProxy's line protocol on its stats socket (``stats socket
ipv4@127.0.0.1:9999 level admin`` or a Unix socket path), not HTTP: one
connection per command, a line in, text back, the connection closed by
HAProxy. An empty answer means done; anything else is HAProxy's error.

Runtime weights live in memory: a reload or restart of HAProxy puts the
configured weights back. interlock does not fight that silently; the
reconcile after a restart (and every read-back) calls `get_weight`, sees the
difference from the journal, and holds the rollout for the operator.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Mapping

from adapters.http_retry import RetryPolicy, Retryable, retrying
from adapters.weights import percent_of, split
from core import COHORT_HEADER
from core import AdapterError, TargetReading

TOTAL = 100
HASHED = ("hdr",)
"""`show stat` algorithms that pick a server from a hash of the request's user header."""
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_GET_WEIGHT = re.compile(r"^\s*(\d+)\s*\(initial\s+\d+\)\s*$")


@dataclass(frozen=True)
class Backend:
    backend: str
    stable: str = "stable"
    canary: str = "canary"


class HAProxyRouter:
    """Routes as HAProxy backends, driven over the runtime API."""

    def __init__(
        self,
        admin: str,
        *,
        routes: Mapping[str, Backend] | None = None,
        timeout: float = 5.0,
        policy: RetryPolicy | None = None,
    ):
        self.admin = admin
        self.routes = dict(routes or {})
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        for backend in self.routes.values():
            for name in (backend.backend, backend.stable, backend.canary):
                _check_name(name)

    def __repr__(self) -> str:
        return f"HAProxyRouter({self.admin!r})"

    def backend(self, route: str) -> Backend:
        found = self.routes.get(route)
        if found is None:
            _check_name(route)
            found = Backend(route)
        return found

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.admin.startswith("/") or self.admin.startswith("unix:"):
            return await asyncio.open_unix_connection(self.admin.removeprefix("unix:"))
        host, _, port = self.admin.rpartition(":")
        host = host.removeprefix("ipv4@").strip("[]") or "127.0.0.1"
        return await asyncio.open_connection(host, int(port))

    async def command(self, line: str) -> str:
        """Send one runtime API command and return HAProxy's answer (retried on network trouble)."""

        async def attempt() -> str:
            writer: asyncio.StreamWriter | None = None
            try:
                async with asyncio.timeout(self.timeout):
                    reader, writer = await self._open()
                    writer.write(line.encode("ascii") + b"\n")
                    await writer.drain()
                    data = await reader.read()
            except TimeoutError:
                raise Retryable(f"timed out after {self.timeout:g}s") from None
            except (OSError, ValueError) as exc:
                raise Retryable(f"cannot reach the runtime API at {self.admin} ({type(exc).__name__})") from None
            finally:
                if writer is not None:
                    writer.close()
            return data.decode("utf-8", "replace")

        return await retrying(attempt, what=f"haproxy {line.split(' ')[0]} {line.split(' ')[1]}", policy=self.policy)

    async def _set(self, backend: str, server: str, weight: int) -> None:
        answer = (await self.command(f"set weight {backend}/{server} {weight}")).strip()
        if answer:
            raise AdapterError(f"haproxy: set weight {backend}/{server} {weight}: {answer[:200]}")

    async def _get(self, backend: str, server: str) -> int:
        answer = (await self.command(f"get weight {backend}/{server}")).strip()
        match = _GET_WEIGHT.match(answer)
        if match is None:
            raise AdapterError(f"haproxy: get weight {backend}/{server}: {answer[:200] or 'no answer'}")
        return int(match.group(1))

    async def set_weight(self, route: str, percent: float) -> None:
        if not 0.0 <= percent <= 100.0:
            raise AdapterError(f"haproxy: weight for {route!r} must be within 0..100, got {percent:g}")
        b = self.backend(route)
        canary, stable = split(percent, TOTAL)
        await self._set(b.backend, b.canary, canary)
        await self._set(b.backend, b.stable, stable)

    async def get_weight(self, route: str) -> float:
        b = self.backend(route)
        return percent_of(await self._get(b.backend, b.canary), await self._get(b.backend, b.stable))

    async def inspect_route(self, route: str) -> TargetReading:
        """HAProxy's runtime weights record no owner: the reading is the canary's share."""
        return TargetReading(await self.get_weight(route))

    async def _algorithms(self) -> dict[str, str]:
        """Backend → its balance algorithm, from `show stat` (the BACKEND rows' ``algo``)."""
        lines = (await self.command("show stat")).splitlines()
        if not lines or not lines[0].startswith("# "):
            raise AdapterError(f"haproxy: show stat: unexpected answer {lines[:1]!r}")
        header = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("svname") == "BACKEND":
                out[row.get("pxname", "")] = row.get("algo", "")
        return out

    async def _servers(self, backend: str) -> dict[str, tuple[str, str, str]]:
        """Server → (id, current weight, configured weight), from `show servers state`."""
        lines = [ln for ln in (await self.command(f"show servers state {backend}")).splitlines() if ln.strip()]
        header = next((ln[2:].split() for ln in lines if ln.startswith("# ")), None)
        if header is None:
            raise AdapterError(f"haproxy: show servers state {backend}: {' '.join(lines)[:200] or 'no answer'}")
        out = {}
        for line in lines:
            if line.startswith("#") or " " not in line:
                continue
            row = dict(zip(header, line.split()))
            out[row["srv_name"]] = (row["srv_id"], row["srv_uweight"], row["srv_iweight"])
        return out

    async def cohort_problems(self, routes: list[str]) -> list[str]:
        """Why these routes (one lockstep group) cannot keep each user on one side; [] if they can.

        They can when every backend balances on a hash of the user header with consistent
        hashing (a map-based hash refuses `set weight`, so the first stage would hold) and
        all have the same stable and canary server ids and weights: a consistent-hash
        ring is built from those alone, so a user's header lands on the same side in each."""
        problems = []
        algorithms = await self._algorithms()
        backends = [self.backend(route) for route in routes]
        fix = (f"configure `balance hdr({COHORT_HEADER})` and `hash-type consistent` in every backend of "
               "the group, with the same `id` and `weight` for its stable and canary servers")
        seen: dict[str, tuple[str, str, str]] = {}
        for route, b in zip(routes, backends):
            algo = algorithms.get(b.backend)
            if algo is None:
                problems.append(f"route {route!r}: HAProxy has no backend {b.backend!r}")
                continue
            if algo not in HASHED:
                problems.append(f"route {route!r}: backend {b.backend!r} balances by {algo or 'an unknown algorithm'}, "
                                f"not a hash of the user header, so each request picks a side on its own; {fix}")
            servers = await self._servers(b.backend)
            for role, server in (("stable", b.stable), ("canary", b.canary)):
                found = servers.get(server)
                if found is None:
                    problems.append(f"route {route!r}: backend {b.backend!r} has no server {server!r}")
                    continue
                first = seen.setdefault(role, found)
                if found != first:
                    problems.append(
                        f"route {route!r}: {role} server {b.backend}/{server} has id {found[0]}, weight {found[1]} "
                        f"(configured {found[2]}) but the group's first route has id {first[0]}, weight {first[1]} "
                        f"(configured {first[2]}), so the same user can land on different sides; {fix}")
        return problems

    async def aclose(self) -> None:
        """Nothing to close: the runtime API takes one connection per command."""


def _check_name(name: str) -> None:
    # A name goes into a command line; a space, `;` or newline would start another command.
    if not _NAME.match(name):
        raise AdapterError(f"haproxy: {name!r} is not a valid backend or server name")
