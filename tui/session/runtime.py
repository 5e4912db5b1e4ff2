"""Wiring: plan + journal + adapters + clock → a ready `Engine`.

The composition root shared by the headless runner, the console, `resume`,
`watch` and drills: where the journal lives, what a new or resumed run needs
(plan, lease, pre-flight read) and how a run is found again after a crash. The
engine itself is put together in one place, `tui.session.assembly`.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterator, NamedTuple

from adapters.clock import RealClock
from adapters.journal_chain import ChainCheck
from adapters.journals import SharedJournal, is_url, open_journal
from core import Clock, VirtualClock
from core import initial_state
from core import Adopted, Event
from core import RolloutGraph
from core import read_input
from core import compile_plan
from core import Plan
from core import parse_plan
from core import LeaseHeld, Record, RunInfo
from core import InputError
from tui.printer import words
from core import folding
from core import RolloutState
from tui.session.assembly import Adapters, Session, assemble, connect, relaxed_commits  # noqa: F401 - the runtime's surface
from tui.session.backlog import Backlog

DEFAULT_JOURNAL = Path(".interlock") / "journal.db"


def default_journal() -> str:
    """`$INTERLOCK_JOURNAL`, else `.interlock/journal.db`: a SQLite path or a postgresql:// URL."""
    return os.environ.get("INTERLOCK_JOURNAL", str(DEFAULT_JOURNAL))


def operator_identity(journal: SharedJournal | None = None) -> str:
    """`name@host`: who is acting, shown in the header, kept on operator events and read by
    the plan's governance (which compares `name`). The one place identity is decided:
    the journal's database role on PostgreSQL (the server authenticated it; no variable
    claims it), else `$INTERLOCK_OPERATOR`, else the OS user (both only say who the
    process claims to be). The host is what this machine calls itself."""
    user = journal.role() if journal is not None else None
    if not user:
        try:
            user = os.environ.get("INTERLOCK_OPERATOR") or getpass.getuser()
        except Exception:  # noqa: BLE001 - no user database in some containers
            user = "operator"
    return f"{user}@{socket.gethostname()}"


def lease_holder() -> str:
    return f"{operator_identity()} pid {os.getpid()}"


def compile_text(text: str, file: str) -> tuple[Plan, RolloutGraph]:
    plan, source = parse_plan(text, file)
    return plan, compile_plan(plan, source)


def _clock(kind: str, speed: float, origin: float | None) -> Clock:
    if kind == "virtual":
        return VirtualClock(start=origin or 0.0)
    return RealClock(speed=speed, origin=origin if speed != 1.0 else None)


def _sim_state_path(journal: str | Path, run_id: str) -> Path:
    """The simulated world's flag/route state; local to this machine even for a shared journal."""
    if is_url(journal):
        return DEFAULT_JOURNAL.parent / f"{run_id}.sim.json"
    return Path(journal).parent / f"{run_id}.sim.json"


def _refuse_unkept_cohorts(plan: Plan, graph: RolloutGraph, text: str, file: str, router: object,
                           close: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
    """Before anything is journaled or set: refuse a lockstep group whose router does not keep
    each user on one side across its routes (`adapters.environment.cohort_refusals`), as bad input."""
    from adapters.environment import cohort_refusals
    from tui.session.startup import run_apart

    _, source = parse_plan(text, file)
    problems = run_apart(lambda: cohort_refusals(plan, graph, router, source))  # type: ignore[arg-type]
    if problems:
        if close is not None:
            run_apart(close)
        raise InputError(problems)


def start_run(
    plan_path: str | Path,
    *,
    journal_path: str | Path,
    seed: int = 0,
    clock: str = "virtual",
    speed: float = 1.0,
    interactive: bool = False,
    adopt: bool = False,
    strict: bool = False,
    reason: str = "",
    abandon: str | None = None,
) -> Session:
    """Validate the plan, settle who drives what and read the world (`tui.session.startup`), then
    record a new run in the journal and wire its engine. A refusal (`core.preflight.Refused`)
    leaves the journal and the world as they were."""
    path = Path(plan_path)
    text = read_input(path, "the plan")
    plan, graph = compile_text(text, str(path))
    if (adopt or abandon) and not reason.strip():
        flag = "--adopt" if adopt else "--abandon"
        raise InputError.plain(f"{flag} needs --reason TEXT (it is journaled)")
    journal = open_journal(journal_path, relaxed=relaxed_commits(simulated=plan.simulated, virtual=clock == "virtual"))
    try:
        journal.check_integrity()  # a damaged file is refused before anything is added to it
        return _start(journal, journal_path, path, text, plan, graph, seed, clock, speed, interactive,
                      adopt, strict, reason, abandon)
    except BaseException:
        journal.close()
        raise


def _start(
    journal: SharedJournal, journal_path: str | Path, path: Path, text: str, plan: Plan, graph: RolloutGraph,
    seed: int, clock: str, speed: float, interactive: bool, adopt: bool, strict: bool, reason: str,
    abandon: str | None,
) -> Session:
    from tui.session import startup

    # A simulated world is private to its run (its own state file): only real flags and
    # routes can be driven by two runs at once.
    shared = not plan.simulated
    abandoned = startup.check_unfinished(journal, plan, abandon, replay) if shared or abandon is not None else []
    stamp = datetime.now(timezone.utc)
    info = RunInfo(
        run_id=f"{plan.rollout}-{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
        rollout=plan.rollout,
        plan_path=str(path),
        plan_text=text,
        seed=seed,
        clock=clock,
        speed=speed,
        created=stamp.isoformat(),
        operator=operator_identity(journal),
    )
    the_clock = _clock(clock, speed, None)
    if shared:
        startup.lease_targets(journal, startup.targets_of(plan, graph), lease_holder(), info.run_id)
    adapters = connect(plan, graph, seed=seed, clock=the_clock, owner=info.run_id,
                       state_path=_sim_state_path(journal_path, info.run_id))
    world, router, close = adapters.world, adapters.router, adapters.close
    if not plan.simulated:  # the routers' half of the plan's lockstep check (core.cohorts)
        _refuse_unkept_cohorts(plan, graph, text, str(path), router, close)

    def read_adapters():  # type: ignore[no-untyped-def]
        if world is not None:
            return world.flags, world.router, world.metrics, None, world.mirror
        fresh = connect(plan, graph, seed=seed, clock=the_clock, owner=info.run_id)
        return fresh.flags, fresh.router, fresh.metrics, fresh.close, fresh.mirror

    # An abandoned run's mirrors are its own doing: its abandon turns them off (real services;
    # a simulated world is private to its run), so the read does not count them against this run.
    ours = startup.mirrors_left_on(abandoned) if shared else []
    state = initial_state(plan, graph)
    report = startup.preflight(
        plan, graph, read_adapters, run_id=info.run_id, adopt=adopt, strict=strict,
        finished=lambda owner: _finished_run(journal, owner), ours=ours, ctx=state.ctx,
    )
    startup.show_warnings(report)
    startup.refuse(report)
    opening: list[Event] = []
    if adopt:  # journaled even when all was at 0%: taking over a target another run marked is a decision
        opening.append(Adopted(at=the_clock.now(), exposures=dict(report.adopted), targets=report.targets,
                               operator=info.operator, reason=reason))
    startup.abandon_runs(journal, abandoned, info.operator, reason, info.run_id, lease_holder(),
                         turn_off=startup.turn_off_mirrors(plan, read_adapters) if shared else None)
    journal.create_run(info)
    lease = journal.acquire_lease(info.run_id, lease_holder())
    return assemble(state, plan=plan, graph=graph, info=info, journal=journal,
                    clock=the_clock, lease=lease, adapters=adapters, interactive=interactive,
                    resuming=False, opening=opening)


def _finished_run(journal: SharedJournal, run_id: str) -> bool:
    """A run of this journal that has ended (a target it marked is free to take)."""
    info = next((r for r in journal.runs() if r.run_id == run_id), None)
    return info is not None and replay(journal, info).state.finished


class Replayed(NamedTuple):
    """A run rebuilt from its journal, up to and including record `seq`; `check` is the
    chain check that verified every record folded (a verified replay)."""

    plan: Plan
    graph: RolloutGraph
    state: RolloutState
    seq: int
    backlog: Backlog | None = None
    check: ChainCheck | None = None


PROGRESS_EVERY = 100_000
"""Records between two `on_progress` calls of a replay."""


def replay(
    journal: SharedJournal,
    info: RunInfo,
    since: Replayed | None = None,
    on_progress: Callable[[int], None] | None = None,
    backlog: bool = False,
    verified: bool = False,
) -> Replayed:
    """The run's state, rebuilt from its journaled plan and events; continuing `since` (an
    earlier replay of the same run) reads only the records appended after it.
    `on_progress(records so far)` is called every `PROGRESS_EVERY` records. With
    `backlog`, the records are also kept as a console shows them first (`tui.session.backlog`).
    `verified` checks the run's facts and each record's place in the chain before it is
    folded (`JournalDamaged` at the first bad one), in the same pass."""
    if since is None:
        check = journal.open_check(info.run_id) if verified else None  # the facts, before the plan is used
        plan, graph = compile_text(info.plan_text, info.plan_path)
        state, seq, kept = initial_state(plan, graph), 0, None
    else:
        plan, graph, state, seq, kept, check = since
    if verified and check is None:
        raise ValueError("a verified replay must be verified from the first record")
    if backlog and kept is None:
        if seq:
            raise ValueError("a backlog must be kept from the first record")
        kept = Backlog(expected=journal.last_seq(info.run_id))
    count = 0
    stream = journal.checked_records(check) if check is not None else journal.records(info.run_id, after=seq)
    start = state
    for record, state in folding(start, stream):
        seq = record.seq
        if kept is not None:
            kept.add(state, record.event)
        count += 1
        if on_progress is not None and count % PROGRESS_EVERY == 0:
            on_progress(count)
    return Replayed(plan, graph, state, seq, kept, check)


def find_run(journal: SharedJournal, run_id: str | None, *, unfinished: bool) -> RunInfo | None:
    found = find_replayed(journal, run_id, unfinished=unfinished)
    return found[0] if found is not None else None


def choose_run(journal: SharedJournal, run_id: str | None) -> RunInfo | None:
    """The one rule for which run a reader opens: `run_id` when given, else the latest
    unfinished run, else the latest run (watch, and the read-only commands)."""
    if run_id is not None:
        return find_run(journal, run_id, unfinished=False)
    return find_run(journal, None, unfinished=True) or find_run(journal, None, unfinished=False)


def find_replayed(
    journal: SharedJournal, run_id: str | None, *, unfinished: bool,
    on_progress: Callable[[int], None] | None = None, backlog: bool = False, verified: bool = False,
) -> tuple[RunInfo, Replayed | None] | None:
    """The run named `run_id`, else the newest run (unfinished, when asked), with its
    replay when finding it took one (a caller continues it rather than start again).
    `verified`: every run replayed on the way is verified (a cut tail cannot make a
    finished run look unfinished)."""
    runs = journal.runs()
    if run_id is not None:
        info = next((r for r in runs if r.run_id == run_id), None)
        return (info, None) if info is not None else None
    for info in reversed(runs):
        if not unfinished:
            return info, None
        replayed = replay(journal, info, on_progress=on_progress, backlog=backlog, verified=verified)
        if verified and replayed.check is not None and replayed.state.finished:
            journal.end_check(replayed.check)  # its head too: records cut off, not a finished run
        if not replayed.state.finished:
            return info, replayed
    return None


def resume_run(
    *,
    journal_path: str | Path,
    run_id: str | None = None,
    interactive: bool = False,
    speed: float | None = None,
    take_over: bool = False,
    on_wait: Callable[[str], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Session:
    """Rebuild an unfinished run from its journal and wire an engine that continues it.

    The lease comes first and the replay after it: the previous driver may have
    appended more before it let go. A replay made to find the run is continued from
    where it stopped, so no record is folded twice. `on_progress(records)` reports a
    long replay.

    Nothing is driven that is not verified first: the database's own integrity check,
    then the run's facts, every record's place in its chain and its sealed head, all
    before the engine's first command (`JournalDamaged` otherwise). Resume never
    creates a journal or its tables."""
    if not is_url(journal_path) and not Path(journal_path).exists():
        raise InputError.plain(f"{journal_path}: no journal here; start a rollout with `interlock run`")
    journal = open_journal(journal_path, create=False)
    try:
        return _resume(journal, journal_path, run_id, interactive, speed, take_over, on_wait, on_progress)
    except BaseException:
        journal.close()
        raise


def _resume(
    journal: SharedJournal, journal_path: str | Path, run_id: str | None, interactive: bool,
    speed: float | None, take_over: bool, on_wait: Callable[[str], None] | None,
    on_progress: Callable[[int], None] | None,
) -> Session:
    journal.check_integrity()
    found = find_replayed(journal, run_id, unfinished=True, on_progress=on_progress, backlog=interactive, verified=True)
    if found is None:
        journal.close()
        what = f"no run {run_id!r}" if run_id else "no unfinished rollout"
        raise InputError.plain(f"{what} in {journal.label}")
    info, found_replay = found
    try:
        lease = journal.acquire_lease(info.run_id, lease_holder())
    except LeaseHeld as held:
        if not take_over:
            journal.close()
            raise
        if on_wait is not None:
            on_wait(held.holder)
        lease = journal.acquire_lease(info.run_id, lease_holder(), wait=True)
    try:
        plan, graph, state, _, backlog, check = replay(
            journal, info, since=found_replay, on_progress=on_progress, backlog=interactive, verified=True
        )
        assert check is not None
        journal.end_check(check)  # the head, now that nobody else can move it
    except BaseException:
        lease.release()
        raise
    if state.finished:
        lease.release()
        journal.close()
        raise InputError.plain(f"run {info.run_id} already ended ({words(state.phase)}) in {journal.label}")
    if not plan.simulated:
        from tui.session import startup

        startup.lease_targets(journal, startup.targets_of(plan, graph), lease_holder(), info.run_id)
    the_clock = _clock(info.clock, speed or info.speed, state.at)
    adapters = connect(plan, graph, seed=info.seed, clock=the_clock, owner=info.run_id,
                       state_path=_sim_state_path(journal_path, info.run_id))
    return assemble(state, plan=plan, graph=graph, info=info, journal=journal, clock=the_clock, lease=lease,
                    adapters=adapters, interactive=interactive, resuming=True, backlog=backlog)


def followed(
    journal: SharedJournal, info: RunInfo, start: RolloutState, *, after: int = 0, stop: threading.Event | None = None
) -> Iterator[tuple[Record, RolloutState]]:
    """Each record of the run past `after` as it is journaled, with the state after it
    (folded from `start`, the state at `after`), until the run ends or `stop` is set:
    `journal.follow` waits on LISTEN/NOTIFY on PostgreSQL and polls SQLite."""
    from core import folding

    stop = stop or threading.Event()
    try:
        for record, state in folding(start, journal.follow(info.run_id, after, stop=stop)):
            yield record, state
            if state.finished:
                break
    finally:
        stop.set()
