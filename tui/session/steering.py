"""Steering a rollout from any terminal: requests through the journal to its live driver.

Two halves, one module, because they are one protocol:
- `ask` (a requester: `interlock pause|approve|...` or a watching console's key)
  posts a `core.ports.Request` in the journal's mailbox (`adapters.journals.open_requests`)
  and waits for the driver's answer; a request nobody takes within `REQUEST_TTL`
  expires and can never be applied afterwards.
- `steered(session)` (a driver: the console or `run --headless`) takes its run's
  requests as they come (LISTEN/NOTIFY on PostgreSQL, a cheap poll on SQLite), asks
  `core.actions.refused` exactly as a key on its own console does, submits the
  `OperatorAction` (journaled with the requester's identity and reason), waits until
  the engine has journaled and reduced it, and answers in one line.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import NamedTuple

from adapters.journal_codec import JournalError
from adapters.journals import SharedJournal, open_requests
from core import ALL_VERBS, Answer, Event, OperatorAction, Request, RequestBox, RolloutState, RunInfo
from core import abort_order, awaiting_approval, refused, rollback_cascade, steps, why_not
from tui.printer import words
from tui.session.assembly import Session

REQUEST_TTL = 10.0
"""Seconds a request waits for a driver to take it before it expires (the database's clock)."""
TAKE_WAIT = 0.25
"""Seconds a driver's wait for requests lasts before it looks whether it should stop."""
APPLY_WAIT = 10.0
"""Seconds a driver waits for its engine to journal a request it submitted."""


class Asked(NamedTuple):
    """A request's fate as the requester sees it: the answer, and the driver that had the run."""

    answer: Answer
    driver: str


NO_DRIVER = "no_driver"
"""`Answer.status` when no live driver holds the run: nothing was sent."""


def new_request_id() -> str:
    return secrets.token_hex(8)


def ask(
    journal: SharedJournal, info: RunInfo, action: str, service: str | None, *, operator: str,
    reason: str = "", request_id: str | None = None, ttl: float = REQUEST_TTL,
) -> Asked:
    """Send one request to the run's live driver and wait for its answer (at most `ttl`
    seconds). Without a live driver nothing is sent (`NO_DRIVER`); an answer that does not
    come in time leaves the request expired (`expired`), never to be applied."""
    holder = journal.driver(info.run_id)
    if not holder:
        return Asked(Answer(NO_DRIVER, f"no live driver for run {info.run_id}; "
                                       f"`interlock resume --run {info.run_id}` drives it again"), "")
    request = Request(id=request_id or new_request_id(), run_id=info.run_id, action=action,
                      service=service, operator=operator, reason=reason)
    box = open_requests(journal)
    try:
        box.send(request, ttl)
        answer = box.answer_of(request.id, wait=ttl)
        if answer is None:
            answer = box.expire(request.id)
    finally:
        box.close()
    if answer.status == "expired":
        answer = Answer("expired", f"the driver ({holder}) did not take the request within {ttl:g} s; "
                                   "it expired and will never be applied")
    return Asked(answer, holder)


# -- the driver's side ---------------------------------------------------------------


def applied_text(before: RolloutState, after: RolloutState, event: OperatorAction, run_id: str) -> str:
    """One line saying what an applied request did, for its requester."""
    action, service = event.action, event.service or ""
    who = f" (by {event.operator}{': ' + event.reason if event.reason else ''})"
    if action == "pause":
        return f"paused run {run_id}: no exposure rises until it is resumed{who}"
    if action == "resume":
        return f"resumed run {run_id}: {words(after.effective_phase)}{who}"
    if action == "step":
        return f"stepping run {run_id}: exactly one transition, then paused again{who}"
    if action == "approve":
        if service in awaiting_approval(after):  # counted, but short of quorum or separation
            return f"approval of {service} recorded, not yet enough: {after.reason.partition(': ')[2]}{who}"
        return f"approved {service}{who}"
    if action in ("promote", "promote_full"):
        index = after.ctx.graph.group_of[service]
        members = " + ".join(after.ctx.groups[index].services)
        group = after.groups[index]
        if group.phase == "promoted":
            return f"promoted {members}: its bake ended, it is promoted{who}"
        percent = after.ctx.groups[index].stages[group.stage].percent
        return f"promoted {members}: its bake ended, now going to {percent:g}%{who}"
    cascade = rollback_cascade(before, service) if action == "rollback" else abort_order(before)
    order = "; ".join(" + ".join(group) for group in cascade) or "nothing had moved"
    if action == "rollback":
        return f"rolling back {service}: back to 0% in this order: {order}{who}"
    return f"aborting run {run_id}: back to 0% in this order: {order}{who}"


class Steering:
    """A live driver's ear for requests: applies each as if pressed on its own console."""

    def __init__(self, session: Session, box: RequestBox) -> None:
        self.session = session
        self.box = box
        self._waiting: list[tuple[OperatorAction, asyncio.Future[tuple[RolloutState, RolloutState, str | None]]]] = []
        self._last = session.engine.state
        """The engine's state after the last batch it published (the next batch starts here)."""
        session.engine.subscribe(self._seen)

    def _seen(self, state: RolloutState, events: Sequence[Event]) -> None:
        """The engine journaled and reduced a batch: release the requests it carried, each
        with the state just before it, just after the batch, and whether the reducer took it
        (an event earlier in the same batch may have changed what applies)."""
        start, self._last = self._last, state
        if not self._waiting:
            return
        for event, before, _ in steps(start, events):  # the one fold (`core.replay`)
            if not isinstance(event, OperatorAction):
                continue
            key = replace(event, at=0.0)
            for pair in list(self._waiting):
                if pair[0] == key and not pair[1].done():
                    pair[1].set_result((before, state, why_not(before, event.action, event.service, who=event.operator)))
                    self._waiting.remove(pair)
                    break

    async def apply(self, request: Request) -> Answer:
        """Decide and apply one request on the engine's loop; the answer for its requester."""
        if request.action not in ALL_VERBS:
            return Answer("refused", f"{request.action!r} is not an operator action")
        event = OperatorAction(at=0.0, action=request.action, service=request.service or None,  # type: ignore[arg-type]
                               operator=request.operator, reason=request.reason)
        engine = self.session.engine
        why = refused(engine.state, event)
        if why is not None:
            return Answer("refused", why)
        done: asyncio.Future[tuple[RolloutState, RolloutState, str | None]] = (
            asyncio.get_running_loop().create_future())
        self._waiting.append((event, done))
        engine.submit(event)
        try:
            before, after, late = await asyncio.wait_for(done, APPLY_WAIT)
        except asyncio.TimeoutError:
            return Answer("refused", "the driver is stopping; it did not apply the request")
        if late is not None:  # journaled, and the reducer ignored it: it no longer applied
            return Answer("refused", late)
        return Answer("applied", applied_text(before, after, event, self.session.info.run_id))

    async def serve(self, stop: threading.Event) -> None:
        """Take and answer requests until `stop` is set."""
        run_id = self.session.info.run_id
        while not stop.is_set():
            try:
                taken = await asyncio.to_thread(self.box.take, run_id, TAKE_WAIT)
                for request in taken:
                    answer = await self.apply(request)
                    await asyncio.to_thread(self.box.reply, request.id, answer)
            except JournalError:  # the database hiccuped: requests wait (or expire), driving goes on
                await asyncio.sleep(1.0)


@asynccontextmanager
async def steered(session: Session) -> AsyncIterator[Steering | None]:
    """Serve the run's requests while the block drives it. A journal that cannot hold
    requests (read-only storage) drives on unsteered: the driver's own keys still work."""
    try:
        box = open_requests(session.journal)
    except JournalError:
        yield None
        return
    steering = Steering(session, box)
    stop = threading.Event()
    task = asyncio.get_running_loop().create_task(steering.serve(stop))
    try:
        yield steering
    finally:
        stop.set()
        try:
            await task
        finally:
            box.close()
