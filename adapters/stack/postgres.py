"""A throwaway PostgreSQL server on 127.0.0.1, for tests, CI and `interlock stack up`.

Why this shape:
- It runs the distribution's own binaries (`initdb`, `pg_ctl`), found on PATH
  or under /usr/lib/postgresql/*/bin (Debian keeps them off PATH), so nothing
  is downloaded and the server is the one the team deploys.
- `initdb` refuses to run as root, so as root every server program runs as the
  `postgres` user and the cluster folder is handed to it; as anyone else the
  server runs as that user.
- It listens on loopback TCP only (no Unix socket, whose default folder may
  belong to a system cluster) and trusts loopback connections: the server is
  a private scratch store, and this keeps passwords out of URLs and logs.
- `durable=False` (the default) turns fsync off: a throwaway cluster is
  rebuilt, not recovered, and tests run several times faster.
- A folder that already holds a cluster is started again, not re-initialised,
  so `stack up` after `stack down` keeps its data.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PgServer", "PostgresUnavailable", "find_pg_bin", "free_port", "start_postgres"]

USER = "interlock"
DATABASE = "interlock"
_APT_HINT = "install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql-15`, or `postgresql`)"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why and what to install."""


def find_pg_bin() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres`."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
    candidates.extend(Path(p) for p in versions)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailable(f"PostgreSQL server programs (initdb, pg_ctl) not found; {_APT_HINT}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running server. `url` is the database `start_postgres` created; `stop()` is idempotent."""

    bin_dir: Path
    cluster_dir: Path
    port: int
    run_as: str | None
    user: str = USER
    database: str = DATABASE
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / "server.log"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database (quoted as given) and return its URL."""
        import psycopg  # the server helpers work without the driver until a database is needed
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def running(self) -> bool:
        if self._stopped:
            return False
        result = _run(self, [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False)
        return result.returncode == 0

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            _run(
                self,
                [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"],
                check=False,
            )

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(server: PgServer, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, object] = {}
    if server.run_as is not None:
        kwargs.update(user=server.run_as, group=pwd.getpwnam(server.run_as).pw_gid, extra_groups=[])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]  # noqa: S603 - fixed argv, no shell
        argv, capture_output=True, text=True, env=env, cwd="/", check=False, timeout=120, **kwargs
    )
    if check and result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-6:])
        raise PostgresUnavailable(f"{Path(argv[0]).name} {argv[1]} failed:\n{tail}")
    return result


def _server_user() -> str | None:
    """The account the server runs as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, but there is no `postgres` user to run the server as; {_APT_HINT}"
        ) from None
    return "postgres"


def _reachable_by(account: str, folder: Path) -> bool:
    """Can `account` enter `folder` (search permission on it and every folder above)?"""
    entry = pwd.getpwnam(account)
    groups = {entry.pw_gid} | {g for g in os.getgrouplist(account, entry.pw_gid)}
    for part in [folder, *folder.parents]:
        st = part.stat()
        if st.st_uid == entry.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


_CONF = """
# written by interlock: a private loopback-only server
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 200
fsync = {fsync}
synchronous_commit = {fsync}
full_page_writes = {fsync}
log_min_messages = warning
"""

_HBA = """
# written by interlock: loopback TCP only, trusted
host all all 127.0.0.1/32 trust
"""


def _initdb(server: PgServer) -> None:
    _run(
        server,
        [
            str(server.bin_dir / "initdb"), "-D", str(server.data_dir), "-U", server.user,
            "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions",
        ],
    )
    (server.data_dir / "pg_hba.conf").write_text(_HBA.lstrip(), encoding="utf-8")


def _configure(server: PgServer, durable: bool) -> None:
    text = _CONF.format(port=server.port, fsync="on" if durable else "off")
    (server.data_dir / "postgresql.auto.conf").write_text(text.lstrip(), encoding="utf-8")


def _prepare_folder(cluster_dir: Path, run_as: str | None) -> None:
    cluster_dir.mkdir(parents=True, exist_ok=True)
    if run_as is None:
        return
    entry = pwd.getpwnam(run_as)
    os.chown(cluster_dir, entry.pw_uid, entry.pw_gid)
    os.chmod(cluster_dir, 0o700)
    if not _reachable_by(run_as, cluster_dir):
        raise PostgresUnavailable(
            f"{cluster_dir}: the `{run_as}` user cannot reach this folder (a folder above it is "
            f"private); put the cluster under a folder every user can enter, e.g. /tmp"
        )
    for path in cluster_dir.iterdir():  # an existing cluster made by an earlier run
        if path.owner() != run_as:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def start_postgres(
    base_dir: Path,
    port: int | None = None,
    *,
    durable: bool = False,
    database: str = DATABASE,
) -> PgServer:
    """Start a server whose cluster lives in `base_dir/pg` and create `database` in it.

    `port=None` picks a free one (and tries another if it was taken meanwhile).
    Raises `PostgresUnavailable` naming the cause: binaries missing, the folder
    unusable, or the server's own error (from its log)."""
    bin_dir = find_pg_bin()
    run_as = _server_user()
    cluster_dir = Path(base_dir).resolve() / "pg"
    _prepare_folder(cluster_dir, run_as)
    attempts = 1 if port is not None else 3
    last: PostgresUnavailable | None = None
    for _ in range(attempts):
        server = PgServer(bin_dir, cluster_dir, port or free_port(), run_as, database=database)
        if not (server.data_dir / "PG_VERSION").exists():
            _initdb(server)
        _configure(server, durable)
        try:
            _start(server)
        except PostgresUnavailable as exc:
            last = exc
            if "could not bind" in str(exc) or "already in use" in str(exc):
                continue
            raise
        try:
            _ensure_database(server)
        except BaseException:
            server.stop()
            raise
        return server
    assert last is not None
    raise last


def _start(server: PgServer) -> None:
    if server.log_file.exists():
        server.log_file.unlink()
    started = time.monotonic()
    result = _run(
        server,
        [
            str(server.bin_dir / "pg_ctl"), "start", "-D", str(server.data_dir),
            "-l", str(server.log_file), "-w", "-t", "60",
        ],
        check=False,
    )
    if result.returncode != 0:
        log = server.log_file.read_text(encoding="utf-8", errors="replace") if server.log_file.exists() else ""
        tail = "\n".join(log.strip().splitlines()[-6:]) or result.stderr.strip()
        raise PostgresUnavailable(
            f"PostgreSQL did not start on 127.0.0.1:{server.port} "
            f"(after {time.monotonic() - started:.1f} s):\n{tail}"
        )


def _ensure_database(server: PgServer) -> None:
    import psycopg

    with psycopg.connect(server.url_for("postgres"), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (server.database,)).fetchone()
    if not exists:
        server.create_database(server.database)
