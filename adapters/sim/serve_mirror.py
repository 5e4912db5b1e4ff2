"""Request mirroring in `interlock sim serve`: a stable listener copies its requests to the
canary listener over real HTTP, as a mesh's request mirror does, and nobody sees the copies'
answers.

HAProxy's runtime API and Caddy cannot copy requests, so on the real stack the simulated
services mirror themselves when interlock tells them to (``PUT /mirror`` on the admin port,
`adapters.sim_mirror`). While a service's mirror is on:

- every request its *stable* listener answers gets an ``X-Request-Id`` (kept if the caller
  sent one) and, with the mirror's probability, a copy is sent over HTTP to the service's
  *canary* listener with the same id and user (``X-Interlock-Shadow: 1`` marks it); the
  canary answers and records it in its own metrics (its errors and latency are what the
  shadow's gates read from Prometheus), and the stable listener throws the answer away;
- the two predictions for the same request id are compared: both listeners score a request
  from the same latent value of its id, the new version correlated with the old as in the
  in-process world (`adapters.sim.shadow`), so two equal versions agree on about 98% of
  requests and the fault `shadow_disagreement` lowers that; the stable listener counts
  compared and agreeing pairs (``interlock_shadow_compared_total``,
  ``interlock_shadow_agreed_total``), from which Prometheus computes
  `prediction_agreement`;
- the world is told too, so the copies of a lockstep group flow through both new versions
  (a copy to the new ranker carries what the new embedder would produce).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import uuid
from typing import Any

import adapters.sim.model as model
from adapters.sim.httpmini import Connection, Request
from adapters.sim.shadow import AGREEMENT_TOLERANCE, PAIRED_CORRELATION
from core import AdapterError

SHADOW_HEADER = "X-Interlock-Shadow"
REQUEST_ID = "X-Request-Id"
COPY_TIMEOUT = 5.0


class ServeMirrors:
    """The mirrors of one `SimServer` (its `world`, `listeners`, `registry` and `rng`)."""

    def __init__(self, server: Any):
        self.server = server
        self.percent: dict[str, float] = {}
        self._idle: dict[str, list[Connection]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random(server.config.seed + 2)

    # -- answering ----------------------------------------------------------------

    def request_id(self, service: str, role: str, request: Request) -> str | None:
        """The id a request is scored by: the caller's, or a new one for a stable listener
        whose requests are mirrored (its copy must carry the same)."""
        given = request.headers.get(REQUEST_ID.lower())
        if given is None and role == "stable" and self.percent.get(service):
            return uuid.UUID(int=self._rng.getrandbits(128)).hex
        return given

    def prediction(self, service: str, side: str, comp: model.Component, request_id: str | None) -> float:
        """A prediction for one request: from its id's latent value when it has one (so the
        two versions answer the same request alike), else drawn as before."""
        rng = self.server.rng
        if request_id is None:
            value = rng.gauss(comp.prediction_mean, comp.prediction_std)
        else:
            z = model.rng_for(self.server.config.seed, "request", request_id).gauss(0.0, 1.0)
            if side == "new":
                if rng.random() < self.server.world._disagreement(service):
                    z = rng.gauss(0.0, 1.0)  # answers as if it had not read the request
                else:
                    rho = PAIRED_CORRELATION
                    z = rho * z + math.sqrt(1.0 - rho * rho) * rng.gauss(0.0, 1.0)
            value = comp.prediction_mean + comp.prediction_std * z
        return min(1.0, max(0.0, value))

    def copy(self, service: str, request: Request, request_id: str | None, prediction: float | None) -> None:
        """Send a copy of a stable listener's request to the canary, if mirrored."""
        percent = self.percent.get(service, 0.0)
        if request_id is None or not percent or self._rng.random() * 100.0 >= percent:
            return
        task = asyncio.get_running_loop().create_task(self._send(service, request, request_id, prediction))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, service: str, request: Request, request_id: str, prediction: float | None) -> None:
        address = f"127.0.0.1:{self.server.listeners[service]['canary']}"
        idle = self._idle.setdefault(address, [])
        conn = idle.pop() if idle else Connection(address, timeout=COPY_TIMEOUT)
        headers = {k: v for k, v in request.headers.items() if k in ("x-user",)}
        headers.update({REQUEST_ID: request_id, SHADOW_HEADER: "1"})
        try:
            status, body = await conn.request(request.method, request.path, headers=headers, body=request.body)
        except (OSError, TimeoutError, ConnectionError):
            self.server.registry.shadow_failed[service] = self.server.registry.shadow_failed.get(service, 0) + 1
            return
        idle.append(conn)
        if status != 200 or prediction is None:
            return  # the canary's errors are counted by its own metrics
        try:
            theirs = json.loads(body).get("prediction")
        except (ValueError, AttributeError):
            return
        if isinstance(theirs, (int, float)):
            self.server.registry.observe_shadow(service, abs(float(theirs) - prediction) <= AGREEMENT_TOLERANCE)

    # -- the admin API --------------------------------------------------------------

    async def set(self, service: str, percent: float) -> None:
        """Mirror `percent` of `service`'s stable requests (0: stop); AdapterError if it cannot."""
        plan = self.server.plan
        if service not in plan.services or not plan.services[service].moves:
            raise AdapterError(f"sim: no moving service {service!r} to mirror")
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
            raise AdapterError(f"sim: a mirror's percent must be a number from 0 to 100, got {percent!r}")
        await self.server.world.mirror.set_mirror(service, None, float(percent))
        if percent:
            self.percent[service] = float(percent)
        else:
            self.percent.pop(service, None)
        self.server.registry.mirrors = dict(self.percent)

    async def admin(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """``GET /mirror`` and ``PUT /mirror {"service", "percent"}``: (status, JSON body)."""
        if method == "PUT":
            try:
                data = json.loads(body)
                await self.set(str(data["service"]), data["percent"])
            except (ValueError, TypeError, KeyError):
                return 400, {"error": "expected {service: name, percent: 0..100}"}
            except AdapterError as exc:
                return 400, {"error": str(exc).removeprefix("sim: ")}
        elif method != "GET":
            return 405, {"error": f"{method} is not allowed on /mirror"}
        return 200, {"mirrors": dict(sorted(self.percent.items()))}

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
