"""Which journal backs a `--journal` value, and what every backend offers the CLI.

`--journal` takes a file path (SQLite, the embedded default) or a
`postgresql://` URL (the shared store). Callers open journals only through
`open_journal`, name them only through `journal_label` (a URL's password is
never shown), and get the same `audit_verify` and `afollow` on either backend.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

from adapters.journal_chain import ChainCheck, JournalDamaged, Verdict, audit_key_from_env
from adapters.journal_codec import JournalError
from adapters.journal_common import mask_url
from adapters.journal_sqlite import SqliteJournal
from core import Journal, Lease, Record, RequestBox

__all__ = [
    "AUDIT_BAD_INPUT",
    "AUDIT_OK",
    "AUDIT_TAMPERED",
    "SharedJournal",
    "afollow",
    "audit_verify",
    "parse_anchor",
    "is_url",
    "journal_label",
    "mask_url",
    "open_journal",
    "open_requests",
]

_PG_SCHEMES = ("postgresql://", "postgres://")
AUDIT_OK, AUDIT_TAMPERED, AUDIT_BAD_INPUT = 0, 1, 2


class SharedJournal(Journal, Protocol):
    """What both backends offer beyond `core.ports.Journal`."""

    @property
    def label(self) -> str: ...

    def verify(self, run_id: str) -> Verdict: ...

    def open_check(self, run_id: str) -> ChainCheck: ...

    def checked_records(self, check: ChainCheck) -> Iterator[Record]: ...

    def end_check(self, check: ChainCheck) -> str: ...

    def check_integrity(self) -> None: ...

    def relax_sync(self) -> None: ...

    def head(self, run_id: str) -> tuple[int, str]: ...

    def anchored_hash(self, run_id: str, seq: int) -> str | None: ...

    def driver(self, run_id: str) -> str: ...

    def role(self) -> str | None:
        """The database role this journal is connected as (PostgreSQL's `session_user`): an
        identity the server authenticated; None where there is none (SQLite)."""
        ...

    def last_seq(self, run_id: str) -> int: ...

    def acquire_lease(
        self, run_id: str, holder: str, *, wait: bool = False, timeout: float | None = None
    ) -> Lease: ...

    def acquire_target_lease(self, target: str, holder: str) -> Lease: ...

    def follow(self, run_id: str, after: int = 0, *, stop: threading.Event | None = None) -> Iterator[Record]: ...


def is_url(spec: str | Path) -> bool:
    return isinstance(spec, str) and spec.lower().startswith(_PG_SCHEMES)


def journal_label(spec: str | Path) -> str:
    """How to name a `--journal` value in a message: a URL's password masked."""
    text = str(spec)
    return mask_url(text) if "://" in text else text


def open_journal(
    spec: str | Path, *, readonly: bool = False, create: bool = True, relaxed: bool = False
) -> SharedJournal:
    """A SQLite journal for a path, a PostgreSQL journal for a `postgresql://` URL.
    Raises `JournalError` for anything else, and for a journal that cannot be opened.
    `create=False` opens only an existing journal. `relaxed` opens a SQLite journal already
    `relax_sync`ed (a virtual-clock run of the simulated world; PostgreSQL ignores it).
    New runs are sealed with `$INTERLOCK_AUDIT_KEY` when it is set (`adapters.journal_chain`)."""
    key = audit_key_from_env()
    text = str(spec).strip()
    if not text:
        raise JournalError("no journal given: pass a file path or a postgresql:// URL")
    if is_url(text):
        try:
            from adapters.journal_pg import PgJournal
        except ImportError:
            raise JournalError(
                f"{journal_label(text)}: a PostgreSQL journal needs the psycopg package "
                "(pip install 'psycopg[binary]')"
            ) from None
        return PgJournal(text, readonly=readonly, create=create, audit_key=key)
    head = text.split(":", 1)[0].lower()
    if "://" in text or (isinstance(spec, Path) and head in ("postgresql", "postgres")):
        raise JournalError(
            f"{journal_label(text)}: unsupported journal "
            "address; use a file path (SQLite) or a postgresql:// URL"
        )
    return SqliteJournal(Path(text), readonly=readonly, create=create, audit_key=key, relaxed=relaxed)


def open_requests(journal: SharedJournal) -> RequestBox:
    """The operator requests' mailbox of `journal` (`core.ports.RequestBox`), on connections
    of its own: a requester, or a driver that serves requests beside its appends."""
    if isinstance(journal, SqliteJournal):
        from adapters.requests_sqlite import SqliteRequests

        return SqliteRequests(journal.path)
    from adapters.journal_pg import PgJournal
    from adapters.requests_pg import PgRequests

    assert isinstance(journal, PgJournal)
    return PgRequests(journal.url)


def parse_anchor(text: str) -> tuple[int, str] | None:
    """`SEQ:HASH` as `interlock runs` prints a head; None if it is not one."""
    seq, _, digest = text.strip().partition(":")
    if not (seq.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        return None
    return int(seq), digest


def audit_verify(
    journal: SharedJournal, run_id: str | None = None, anchor: tuple[int, str] | None = None
) -> tuple[int, list[str]]:
    """`interlock audit verify`: the database's own integrity check, then each run's hash
    chain (or only `run_id`'s). Returns (exit code, lines): 0 all intact, 1 tampered or
    damaged (each bad run's line names its first bad record), 2 no such run. With an
    `anchor` (a head of `run_id` noted elsewhere), the run must still hold that record
    with that hash: this catches a recomputed chain, a cut tail and a deleted run, key or not."""
    try:
        journal.check_integrity()
        runs = [info.run_id for info in journal.runs()]
    except JournalDamaged as exc:
        return AUDIT_TAMPERED, [f"DAMAGED   {exc}", f"{journal.label}: not verified"]
    if run_id is not None:
        if run_id not in runs:
            if anchor is not None:
                return AUDIT_TAMPERED, [f"TAMPERED  run {run_id} was anchored at record {anchor[0]} but is "
                                        "not in this journal: it was deleted", f"{journal.label}: not verified"]
            return AUDIT_BAD_INPUT, [f"{journal.label}: no run {run_id!r} in this journal"]
        runs = [run_id]
    if not runs:
        return AUDIT_OK, [f"{journal.label}: no runs in this journal"]
    code, lines = AUDIT_OK, []
    for rid in runs:
        ok, bad, message = journal.verify(rid)
        if ok and anchor is not None:
            found = journal.anchored_hash(rid, anchor[0])
            if found != anchor[1]:
                ok, bad = False, anchor[0] or None
                message = (f"run {rid}: record {anchor[0]} " + ("is gone" if found is None else "no longer has its anchored hash")
                           + ": the chain was cut or rebuilt since the anchor was taken")
            else:
                message += f"; anchored at record {anchor[0]}"
        if ok:
            lines.append(f"ok        {message}")
        else:
            code = AUDIT_TAMPERED
            where = f" (first bad record: {bad})" if bad else ""
            lines.append(f"TAMPERED  {message}{where}")
    total = len(runs)
    bad_runs = sum(1 for line in lines if line.startswith("TAMPERED"))
    lines.append(
        f"{journal.label}: {total} run{'s' if total != 1 else ''} checked, "
        + (f"{bad_runs} tampered" if bad_runs else "all intact")
    )
    return code, lines


class _End:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def afollow(journal: SharedJournal, run_id: str, after: int = 0) -> AsyncIterator[Record]:
    """`journal.follow` for asyncio code (the console, `watch --headless`): a thread
    follows and hands records to the loop. Leaving the `async for` stops the thread
    within a fraction of a second. The journal must not be closed meanwhile."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Record | _End] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Record | _End) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            stop.set()

    def pump() -> None:
        try:
            for record in journal.follow(run_id, after, stop=stop):
                put(record)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_End(exc))
            return
        put(_End())

    thread = threading.Thread(target=pump, name=f"follow-{run_id}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
