"""A private Unleash server on 127.0.0.1, on a PostgreSQL database given to it.

unleash-server 7 is ESM-only and has no CLI of its own, so the launcher writes
a one-line ``start.mjs`` that imports the package (from the project-local
``.stack/node`` that `.ci/install-servers` fills, or `node_dir`) and calls
``start()``; everything else is environment variables:

- ``INIT_ADMIN_API_TOKENS`` seeds the admin token the adapters use (the caller
  passes it in; it is never written to a file or the log);
- ``CLIENT_FEATURE_CACHING_ENABLED=false``, so a changed rollout is what the
  very next read sees;
- ``CHECK_VERSION=false`` and ``SEND_TELEMETRY=false``: no calls home;
- ``DATABASE_URL`` points at the database, ``DATABASE_SSL=false`` for loopback.

Readiness is ``/health`` answering GOOD *and* an admin API call accepted with
the token (migrations and the seeded token are both done by then); a first
start on an empty database takes about 5 s here.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from adapters.stack.process import PROJECT_ROOT, INSTALL_HINT, Proc, ServerUnavailable, free_port, http_get, spawn

DEFAULT_NODE_DIR = PROJECT_ROOT / ".stack" / "node"

_START = """\
// written by interlock: start unleash-server with the settings in the environment
const unleash = await import({entry});
await unleash.start({{}});
"""


@dataclass
class UnleashServer:
    proc: Proc
    port: int
    token: str = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stop()

    def __enter__(self) -> UnleashServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unleash_entry(node_dir: Path) -> Path:
    """The module file of the installed unleash-server package (its `exports` entry)."""
    package = node_dir / "node_modules" / "unleash-server"
    try:
        meta = json.loads((package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ServerUnavailable(f"unleash-server is not installed in {node_dir}; {INSTALL_HINT}") from None
    exports = meta.get("exports")
    entry = exports if isinstance(exports, str) else (exports or {}).get(".", meta.get("main", "index.js"))
    if isinstance(entry, dict):
        entry = entry.get("import") or entry.get("default")
    return (package / str(entry)).resolve()


def start_unleash(
    base_dir: Path,
    database_url: str,
    *,
    token: str,
    port: int | None = None,
    node_dir: Path | None = None,
    timeout: float = 60.0,
) -> UnleashServer:
    """Start Unleash in `base_dir/unleash` on `database_url`, with `token` as a seeded admin token.

    `token` must look like Unleash's admin tokens: ``*:*.<secret>``."""
    node = shutil.which("node")
    if node is None:
        raise ServerUnavailable(f"Node.js (20 or newer) is not installed; {INSTALL_HINT}")
    entry = unleash_entry(Path(node_dir) if node_dir else DEFAULT_NODE_DIR)
    folder = Path(base_dir).resolve() / "unleash"
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "start.mjs"
    script.write_text(_START.format(entry=json.dumps(entry.as_uri())), encoding="utf-8")
    port = port or free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "NODE_ENV": "production",
        "DATABASE_URL": database_url,
        "DATABASE_SSL": "false",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "INIT_ADMIN_API_TOKENS": token,
        "CLIENT_FEATURE_CACHING_ENABLED": "false",
        "CHECK_VERSION": "false",
        "SEND_TELEMETRY": "false",
        "LOG_LEVEL": "warn",
        "UNLEASH_URL": f"http://127.0.0.1:{port}",
    }
    proc = spawn("unleash", [node, str(script)], folder, env=env)
    server = UnleashServer(proc, port, token)

    def ready() -> bool:
        status, body = http_get(f"{server.url}/health")
        if status != 200 or b"GOOD" not in body:
            return False
        status, _ = http_get(f"{server.url}/api/admin/projects", headers={"Authorization": token})
        return status == 200

    try:
        proc.wait_until(ready, timeout, "/health GOOD and the admin token accepted")
    except ServerUnavailable as exc:
        proc.stop()
        raise ServerUnavailable(str(exc).replace(token, "***")) from None
    return server
