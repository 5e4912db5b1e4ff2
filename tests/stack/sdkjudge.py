"""The official Unleash Python SDK (`UnleashClient`) as the judge of who gets a flag.

Reading back what interlock wrote proves the Admin API agrees with itself; what
counts is what an application's SDK decides for its users. Each judgement
starts a fresh client (one synchronous fetch of the client API, no metrics, no
registration), evaluates every user, and destroys the client, so no scheduler
thread outlives it and no answer comes from a stale cache.
"""

from __future__ import annotations

import math
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx
from UnleashClient import UnleashClient
from UnleashClient.utils import InstanceAllowType

USERS = [f"user-{i}" for i in range(10_000)]


def client_token(url: str, admin_token: str) -> str:
    """A client (backend SDK) token for the `development` environment, made through the Admin API."""
    response = httpx.post(
        f"{url}/api/admin/api-tokens",
        headers={"Authorization": admin_token},
        json={"tokenName": f"sdk-{uuid.uuid4().hex[:6]}", "type": "client", "environment": "development", "projects": ["*"]},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["secret"]


@contextmanager
def sdk(url: str, token: str, flags: Iterable[str]) -> Iterator[UnleashClient]:
    """An initialised SDK client that has fetched every one of `flags` (else the SDK would
    quietly answer False for all of them, and "nobody gets it" would prove nothing)."""
    with tempfile.TemporaryDirectory(prefix="unleash-sdk-") as cache:
        client = UnleashClient(
            url=f"{url}/api", app_name="interlock-tests", instance_id=uuid.uuid4().hex,
            custom_headers={"Authorization": token}, disable_metrics=True, disable_registration=True,
            refresh_interval=3600, request_retries=1, cache_directory=cache,
            multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
        )
        try:
            client.initialize_client()
            known = set(client.feature_definitions())
            missing = set(flags) - known
            assert not missing, f"the SDK did not load {sorted(missing)}"
            yield client
        finally:
            client.destroy()


def enabled(url: str, token: str, flag: str, users: Iterable[str] = USERS, **context: str) -> set[str]:
    """The users the SDK enables `flag` for (context `userId`, plus any extra fields)."""
    with sdk(url, token, [flag]) as client:
        return {u for u in users if client.is_enabled(flag, {"userId": u, **context})}


def variants(url: str, token: str, flag: str, users: Iterable[str]) -> dict[str, str]:
    """The variant name the SDK gives each user ("disabled" when the flag is off for them)."""
    with sdk(url, token, [flag]) as client:
        return {u: client.get_variant(flag, {"userId": u})["name"] for u in users}


def within_sampling_error(count: int, n: int, percent: float, sigmas: float = 4.0) -> bool:
    """Whether `count` of `n` users is a plausible draw at `percent`% (binomial, 4 sigma)."""
    p = percent / 100.0
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1e-9
