"""Helpers the stack tests share (a module, not the conftest, so its name is unique)."""

from __future__ import annotations

import httpx

ROUTE = "embedder"


def count_answers(url: str, requests: int) -> dict[str, int]:
    """Send `requests` GETs through a proxy on one keep-alive connection; count who answered."""
    counts: dict[str, int] = {}
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        for _ in range(requests):
            name = client.get(url).text
            counts[name] = counts.get(name, 0) + 1
    return counts
