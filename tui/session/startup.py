"""What a run settles before it may drive anything: one driver per rollout and per target,
and the pre-flight read of the world.

- A rollout with an unfinished run in the journal is not started again: the refusal
  names that run, its driver (or "no live driver") and the commands that continue it;
  `--abandon RUN` gives it up, journaled in that run (`Abandoned`).
- Every flag and route the plan moves is leased to the run that moves it (on SQLite
  a lock file, on PostgreSQL an advisory lock, like a run's lease), so two different
  rollouts sharing a journal never move one target. `resume` takes them too.
- The pre-flight read (`core.preflight`) runs on adapters of its own, in a loop of its
  own, before the run exists in the journal: a refusal leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import TYPE_CHECKING, Any, Callable, Container, Iterable

from core import MIRROR, Abandoned, MirrorApplied, safe_message
from core import RolloutGraph
from core import Plan
from core import Lease, LeaseHeld, RunInfo
from core import Refused, Report, judge, read_targets
from core import InputError
from tui.printer import words

Replay = Callable[..., Any]
"""`tui.session.runtime.replay`, handed in by the runtime (which imports this module)."""

if TYPE_CHECKING:
    from adapters.journals import SharedJournal
    from core import Context, RolloutState


def targets_of(plan: Plan, graph: RolloutGraph) -> list[str]:
    """Every flag and route the plan's moving services go through, as leases name them."""
    out: list[str] = []
    for name in sorted(graph.moving):
        handle = plan.exposure_of(name)
        if handle.flag is not None:
            out.append(f"flag:{handle.flag}")
        if handle.route is not None:
            out.append(f"route:{handle.route}")
    return sorted(set(out))


def unfinished_runs(journal: SharedJournal, rollout: str, replay: Replay) -> list[tuple[RunInfo, RolloutState]]:
    """The rollout's runs that have not ended, each verified as it is replayed with `replay`
    (`tui.session.runtime.replay`: `JournalDamaged` for a tampered or cut run: refused, never taken
    for unfinished and abandoned)."""
    out = []
    for info in journal.runs():
        if info.rollout == rollout:
            replayed = replay(journal, info, verified=True)  # a tampered run is refused, never abandoned
            if not replayed.state.finished:
                if replayed.check is not None and not journal.driver(info.run_id):
                    journal.end_check(replayed.check)  # cut short, it only looks unfinished
                out.append((info, replayed.state))
    return out


def _driver(journal: SharedJournal, run_id: str) -> str:
    return journal.driver(run_id) or "no live driver"


def check_unfinished(
    journal: SharedJournal, plan: Plan, abandon: str | None, replay: Replay
) -> list[tuple[RunInfo, RolloutState]]:
    """The unfinished runs of this rollout that `--abandon` gives up (at most the one it
    names); refuses (`Refused`, kind `driver`) when any other is left."""
    open_runs = unfinished_runs(journal, plan.rollout, replay)
    if abandon is not None and abandon not in {info.run_id for info, _ in open_runs}:
        raise InputError.plain(f"--abandon {abandon}: no unfinished run of rollout {plan.rollout} has that id")
    lines = []
    for info, state in open_runs:
        if info.run_id == abandon:
            continue
        lines.append(
            f"interlock: rollout {plan.rollout} has an unfinished run {info.run_id} ({words(state.effective_phase)}, "
            f"driver: {_driver(journal, info.run_id)}); continue it with `interlock resume --run {info.run_id}`, "
            f"follow it with `interlock watch --run {info.run_id}`, or give it up with "
            f"`interlock run PLAN --abandon {info.run_id} --reason TEXT`"
        )
    if lines:
        raise Refused(lines, "driver")
    return [(info, state) for info, state in open_runs if info.run_id == abandon]


def lease_targets(journal: SharedJournal, targets: Iterable[str], holder: str, run_id: str) -> list[Lease]:
    """Lease every target to `run_id`, or release what was taken and refuse naming each
    target another run holds."""
    taken: list[Lease] = []
    lines: list[str] = []
    for target in targets:
        try:
            taken.append(journal.acquire_target_lease(target, f"run {run_id}, {holder}"))
        except LeaseHeld as held:
            who = held.holder or "another run (its identity could not be read)"
            lines.append(
                f"interlock: {target.replace(':', ' ', 1)} is moved by {who}; "
                "two rollouts must not move one flag or route (wait for that run to end, or take "
                "this target out of the plan)"
            )
    if lines:
        for lease in taken:
            lease.release()
        raise Refused(lines, "driver")
    return taken


def mirrors_left_on(runs: list[tuple[RunInfo, RolloutState]]) -> list[str]:
    """The services whose mirror the journal of these runs says is on (`mirror:SERVICE`)."""
    return sorted({MIRROR + name for _, state in runs for name, s in state.services.items() if s.mirror > 0})


def abandon_runs(journal: SharedJournal, runs: list[tuple[RunInfo, RolloutState]], operator: str, reason: str,
                 by_run: str, holder: str, turn_off: Callable[[list[str]], None] | None = None) -> None:
    """Journal `Abandoned` in each run, at its own last time; a run whose driver is still
    alive is not abandoned. A mirror the run left on (it was shadowing) is its own doing:
    with `turn_off` (real services; a simulated world is private to its run) it is turned
    off first and journaled in that run as a `MirrorApplied` at 0% without a command; if it
    cannot be, nothing is abandoned (exit 7)."""
    for info, state in runs:
        at = state.at
        try:
            lease = journal.acquire_lease(info.run_id, holder)
        except LeaseHeld as held:
            raise Refused([
                f"interlock: run {info.run_id} still has a live driver ({held.holder or 'unknown'}); "
                "stop that driver first (quit its console or end its process), then --abandon it"
            ], "driver") from None
        try:
            on = [key.removeprefix(MIRROR) for key in mirrors_left_on([(info, state)])] if turn_off else []
            if on and turn_off is not None:
                try:
                    turn_off(on)
                except Exception as exc:  # noqa: BLE001 - a mirror that will not go off refuses
                    raise Refused([f"interlock: refused: run {info.run_id} left the mirror of {', '.join(on)} on "
                                   f"and it could not be turned off: {safe_message(exc)}; nothing was abandoned"
                                   ]) from None
                print(f"interlock: run {info.run_id} had left the mirror of {', '.join(on)} on: turned off "
                      "(journaled in that run)", file=sys.stderr, flush=True)
            offs = [MirrorApplied(at=at, service=name, percent=0.0) for name in on]
            journal.append(info.run_id, [Abandoned(at=at, operator=operator, reason=reason, by_run=by_run), *offs],
                           operator=operator)
        finally:
            lease.release()


def turn_off_mirrors(plan: Plan, adapters: Callable[[], Any]) -> Callable[[list[str]], None]:
    """A `turn_off` for `abandon_runs`: each service's mirror set to 0% through adapters made
    for it alone (`adapters()` as for `preflight`)."""

    def turn_off(services: list[str]) -> None:
        async def off() -> None:
            *_, close, mirror = adapters()
            try:
                if mirror is None:
                    raise RuntimeError("this environment has no mirror to turn off")
                for name in services:
                    await mirror.set_mirror(name, plan.exposure_of(name).route, 0.0)
            finally:
                if close is not None:
                    await close()

        run_apart(off)

    return turn_off


def run_apart(make: Callable[[], Any]) -> Any:
    """`asyncio.run(make())`, in a thread of its own when the caller already runs a loop
    (a console test or a console starting a run): the read needs a loop of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def preflight(plan: Plan, graph: RolloutGraph, adapters: Callable[[], Any], *, run_id: str,
              finished: Callable[[str], bool], adopt: bool, strict: bool, ours: Container[str] = (),
              ctx: Context | None = None) -> Report:
    """Read every target (each shadowed service's mirror too), and run every gate's query
    once, through adapters made for this read alone, and judge them. `adapters()` gives
    (flags, router, metrics, close, mirror) built in the read's own loop; `ours` are the
    mirrors an abandoned run left on (`mirrors_left_on`), which its abandon turns off;
    `ctx` is the run's context, if built already (`check_queries`)."""
    from core import Found, shadowed

    async def read() -> tuple[list[Found], list[str]]:
        flags, router, metrics, close, mirror = adapters()
        try:
            exposure = {name: plan.exposure_of(name) for name in graph.moving}
            shadows = {name for name in graph.moving if shadowed(plan, name)}
            return (await read_targets(exposure, flags, router, mirror, shadows),
                    await check_queries(plan, graph, metrics, ctx))
        finally:
            if close is not None:
                await close()

    try:
        found, query_problems = run_apart(read)
    except Exception as exc:  # noqa: BLE001 - an unreadable world is a refusal, not a traceback
        from core import safe_message

        raise Refused([f"interlock: cannot read the flags, routes and mirrors before starting: {safe_message(exc)}"]
                      ) from None

    class Finished:
        def __contains__(self, owner: object) -> bool:
            return isinstance(owner, str) and finished(owner)

    report = judge(found, run_id=run_id, finished_runs=Finished(), adopt=adopt, strict=strict, ours=ours)
    return dataclasses.replace(report, refusals=report.refusals + tuple(query_problems))


async def check_queries(plan: Plan, graph: RolloutGraph, metrics: Any, ctx: Context | None = None) -> list[str]:
    """Every gate's query run once per version over the window it will use: an error,
    several series or a window too short for the scrape interval is one line each, naming
    the gate and the fix. The run's `ctx` is built here when not given (building it costs
    about a seventh of a 1,000-service run's start-up)."""
    if ctx is None:
        from core import build_context

        ctx = build_context(plan, graph)
    asked: dict[tuple[str, str, str, float], str] = {}
    for (service, gate), fields in sorted(ctx.measures.items()):
        window = fields["window"] / fields["points"] if fields["shape"] == "series" else fields["window"]
        names = [fields["metric"]] + (["requests"] if fields["shape"] == "counts" else [])
        if fields["shape"] == "histogram":
            continue  # histograms come from the simulated world only
        for metric in names:
            for version in (fields["canary_version"], fields["baseline_version"]):
                asked.setdefault((metric, service, version, window), gate)
    lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for (metric, service, version, window), gate in asked.items():
        problem = await metrics.check(metric, service, version, window)
        if problem is not None and (gate, problem) not in seen:
            seen.add((gate, problem))
            lines.append(f"gate {gate} ({service} {version}, metric {metric}): {problem}")
    return lines


def show_warnings(report: Report) -> None:
    for line in report.warnings:
        print(f"interlock: warning: {line}", file=sys.stderr, flush=True)


def refuse(report: Report) -> None:
    if report.refusals:
        raise Refused([f"interlock: refused: {line}" for line in report.refusals], "world")
