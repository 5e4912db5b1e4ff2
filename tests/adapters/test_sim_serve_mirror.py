"""Request mirroring in `interlock sim serve` over real sockets on 127.0.0.1: a stable
listener copies its requests to the canary listener while the mirror is on (`PUT /mirror`,
through the `SimServeMirror` adapter), the canary's metrics count the copies, the callers see
the stable answers only, and the two predictions of each request are compared."""

from __future__ import annotations

import asyncio
import re

from adapters.sim.httpmini import Connection
from adapters.sim.serve import SimServer
from adapters.sim_mirror import SimServeMirror
from core import AdapterError
from test_sim_serve import call, counter, hit, with_server


def shadow_counts(text: str, service: str) -> tuple[int, int]:
    compared = re.search(rf'interlock_shadow_compared_total\{{service="{service}"\}} (\d+)', text)
    agreed = re.search(rf'interlock_shadow_agreed_total\{{service="{service}"\}} (\d+)', text)
    assert compared and agreed, text[-2000:]
    return int(compared.group(1)), int(agreed.group(1))


async def settle(server: SimServer) -> None:
    for _ in range(200):
        if not server.mirrors._tasks:
            return
        await asyncio.sleep(0.01)


def test_a_mirrored_service_copies_every_request_to_its_canary_over_http() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        mirror = SimServeMirror(f"http://127.0.0.1:{server.admin_port}", timeout=2.0)
        try:
            assert await mirror.get_mirror("ranker", "ranker") == 0.0
            await hit(server, "ranker", "stable", 50)
            await settle(server)
            _, text = await call(admin, "GET", "/metrics")
            assert counter(text, "ranker", "6.0", "200") == 0  # no mirror, no copies
            # features goes first (the new embedder reads features 7 only), then the group shadows
            await call(admin, "PUT", "/exposure", {"flags": {"features-v32": {"percent": 100}}})
            await mirror.set_mirror("embedder", "embedder", 100.0)  # a lockstep group shadows together
            await mirror.set_mirror("ranker", "ranker", 100.0)
            assert await mirror.get_mirror("ranker", "ranker") == 100.0
            answers = await hit(server, "ranker", "stable", 400)
            await settle(server)
            _, text = await call(admin, "GET", "/metrics")
            copies = counter(text, "ranker", "6.0", "200") + counter(text, "ranker", "6.0", "500")
            assert copies == 400  # every request copied to the new version
            assert server.flags["ranker-v6"][0] == 0.0 and server.routes["ranker"] == 0.0  # no user on it
            compared, agreed = shadow_counts(text, "ranker")
            assert answers.count(500) < 10 and copies - compared < 20  # few errors on either side
            assert 0.9 < agreed / compared <= 1.0  # the same requests, scored alike
            assert 'interlock_mirror_percent{service="ranker"} 100' in text
            # The new ranker reads embeddings 3 only: its copies must not cross contracts.
            assert server.world.version_model("ranker", "new").incompatible == 0.0
            await mirror.set_mirror("ranker", "ranker", 0.0)
            await hit(server, "ranker", "stable", 50)
            await settle(server)
            _, after = await call(admin, "GET", "/metrics")
            assert counter(after, "ranker", "6.0", "200") + counter(after, "ranker", "6.0", "500") == copies
        finally:
            await mirror.aclose()

    with_server(body)


def test_shadow_disagreement_lowers_agreement_on_the_real_listeners() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        status, _ = await call(admin, "PUT", "/mirror", {"service": "api", "percent": 100})
        assert status == 200
        await call(admin, "POST", "/faults", {"kind": "shadow_disagreement", "service": "api", "value": 0.8})
        await hit(server, "api", "stable", 300)
        await settle(server)
        _, text = await call(admin, "GET", "/metrics")
        compared, agreed = shadow_counts(text, "api")
        assert compared > 250 and agreed / compared < 0.5

    with_server(body)


def test_the_mirror_api_refuses_what_it_cannot_do() -> None:
    async def body(server: SimServer, admin: Connection) -> None:
        status, answer = await call(admin, "PUT", "/mirror", {"service": "nope", "percent": 100})
        assert status == 400 and "no moving service 'nope'" in answer["error"]
        status, answer = await call(admin, "PUT", "/mirror", {"service": "api", "percent": 150})
        assert status == 400 and "0 to 100" in answer["error"]
        status, answer = await call(admin, "DELETE", "/mirror")
        assert status == 405
        mirror = SimServeMirror(f"127.0.0.1:{server.admin_port}", timeout=2.0)
        try:
            try:
                await mirror.set_mirror("nope", None, 100.0)
            except AdapterError as exc:
                assert "HTTP 400" in str(exc) and "nope" in str(exc)
            else:
                raise AssertionError("a refused mirror must raise")
        finally:
            await mirror.aclose()

    with_server(body)
