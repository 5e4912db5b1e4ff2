"""Hiding secrets in URLs before they are shown or journaled: one rule for every place
that prints a URL (a journal's database address, a pre-flight check's or hook's url)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SECRET_QUERY_KEYS = ("password", "token", "secret", "key", "sig", "auth", "credential")
"""A query parameter whose name contains one of these carries a secret (`access_token`,
`api_key`, `X-Amz-Signature`, ...): `mask_url` hides its value."""


def mask_url(url: str) -> str:
    """`url` with any password replaced by `***` (in the authority, or a query parameter
    named like a secret: `SECRET_QUERY_KEYS`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    query = "&".join(
        (item.split("=", 1)[0] + "=***" if "=" in item and _secret_key(item.split("=", 1)[0]) else item)
        for item in parts.query.split("&")
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_QUERY_KEYS)
