"""The console: a Textual app that drives a rollout's engine, or watches its journal.

Why it is built this way:
- The engine runs as a worker on the app's own asyncio loop. It never blocks
  on adapters (commands run as tasks) and a journal append is one short
  SQLite write, so the UI and the engine share the loop without stalling
  each other, and no state crosses a thread.
- The engine publishes immutable snapshots. The app queues them and draws the
  newest at most once a frame (`FLUSH_SECONDS`), so a burst of events costs one
  repaint, and the log still gets every event's line, in order.
- Widgets render snapshots and post intents; this class alone turns intents
  into `engine.submit(OperatorAction(...))`. Whether an action applies is
  asked of `core.actions.available`, the same rule the reducer enforces, so
  a key is greyed out exactly when the engine would ignore it.
- Every key is acknowledged in the log at once, before the engine applies it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.content import Content

from core import ACTIONS, ALL_VERBS, BY_NAME, SPEEDS, available, next_speed, refused, why_not
from adapters.journals import SharedJournal
from core import initial_state
from core import Event, OperatorAction
from core import RolloutState
from tui import printer
from tui.session import runtime
from tui.session.backlog import Batch
from tui.session.steering import ask, steered
from tui.console.screens.confirm import CascadeScreen, QuitScreen
from tui.console.screens.console import ConsoleScreen
from tui.console.screens.palette import ConsoleCommands
from tui.session.watch import CATCH_UP_CHUNK, JournalFollower, history_batches
from tui.console.widgets.eventlog import EventLog, batch_lines
from tui.console.widgets.header import speed_label
from tui.console.widgets.history import MetricHistory
from tui.console.widgets.intents import OperatorIntent, RefusedIntent, SpeedIntent

VERBS: frozenset[str] = frozenset(ALL_VERBS)
ALL_ACTIONS: tuple[str, ...] = tuple(a.name for a in ACTIONS if a.changes_rollout)
"""What can be greyed out, from the action table."""
MIN_SPEED, MAX_SPEED = SPEEDS[0], SPEEDS[-1]

class InterlockApp(App[RolloutState]):
    """The rollout console. Give it a `Session` to drive, or a `JournalFollower` to watch."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    """Absolute, so subclasses elsewhere (tests, benchmarks) find it too."""
    TITLE = "interlock"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    CLOCK_SECONDS: ClassVar[float] = 0.5
    """How often the header's clock is redrawn while a real clock runs."""
    FLUSH_SECONDS: ClassVar[float] = 1 / 60
    """At most one repaint per this long: a burst of events (a resumed or virtual-clock
    run catching up) costs a few frames, not one per event. A lone event is drawn at once."""

    def __init__(
        self,
        session: runtime.Session | None = None,
        *,
        follower: JournalFollower | None = None,
        operator: str | None = None,
    ) -> None:
        super().__init__()
        if (session is None) == (follower is None):
            raise ValueError("give the console a session to drive or a follower to watch, not both")
        self.session = session
        self.follower = follower
        if session is not None:
            # The journal so far is replayed onto the screen first (see `console_ready`).
            self.state: RolloutState = initial_state(session.plan, session.graph)
        else:
            assert follower is not None
            self.state = follower.state
        """The snapshot on screen."""
        self.history = MetricHistory(self.state.ctx)
        self.operator = operator or runtime.operator_identity(session.journal if session else follower.journal)  # type: ignore[union-attr]
        self.driving = session is not None
        self.engine_running = False
        self.quitting = False
        self.final_state: RolloutState | None = None
        self.engine_error: BaseException | None = None
        self.console_screen = ConsoleScreen(
            self.state, self.history, operator=self.operator, mode="driving" if self.driving else "watching"
        )
        self._pending: list[Batch] = []
        self._flush_scheduled = False
        self._last_flush = 0.0
        self._availability_key: tuple[object, ...] | None = None
        self._verbs_cache: tuple[tuple[RolloutState, str | None], set[str]] | None = None
        self.on_flush: Callable[[int], None] | None = None
        """Called with the number of batches drawn after each flush (the benchmark's probe)."""

    def get_default_screen(self) -> ConsoleScreen:
        return self.console_screen

    def console_ready(self) -> None:
        """The console screen is composed: show the journal so far, then drive (or follow)."""
        if self.session is not None:
            session = self.session
            older, batches = (
                session.backlog.drain() if session.backlog is not None
                else history_batches(session.journal, session.info, session.plan, session.graph)
            )
            self.history.record(older)
            self.deliver(batches)
            # A console keeps serving keys after the rollout ends (a completed rollout can
            # still be rolled back); the engine stops when the operator quits.
            session.engine.linger = True
            session.engine.subscribe(self._on_engine)
            self.engine_running = True
            self.run_worker(self._drive(), name="engine", group="engine", exit_on_error=False)
            if not self.session.clock.virtual:
                self.set_interval(self.CLOCK_SECONDS, self._update_header)
        else:
            assert self.follower is not None
            self.run_worker(self._watch(self.follower), name="follower", group="follower")
        self._update_header()

    def console_closed(self) -> None:
        """The app is going away, whatever the reason: leave the engine no work to do."""
        if self.session is not None and self.engine_running:
            self.session.engine.stop()

    # -- snapshots in ----------------------------------------------------------

    async def _watch(self, follower: JournalFollower) -> None:
        """Catch up on the journal a chunk at a time (a repaint between chunks, only the
        last records of each as batches), then follow it as it grows."""
        while True:
            older, batches = follower.catch_up(limit=CATCH_UP_CHUNK)
            if not batches:
                break
            self.history.record(older)
            self.deliver(batches)
            await asyncio.sleep(0)
        await follower.follow(self.deliver)

    async def _drive(self) -> None:
        assert self.session is not None
        try:
            async with steered(self.session):  # requests from other terminals and watchers
                state = await self.session.engine.run(resuming=self.session.resuming)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, re-raised by run_console
            self.engine_error = exc
            self.note(f"engine stopped with an error: {type(exc).__name__}: {exc}", style="$text-error")
            state = self.session.engine.state
        finally:
            self.engine_running = False
        self.final_state = state
        self.deliver([(state, ())])
        if not self.quitting and self.engine_error is None and not state.finished:
            self.note("the engine stopped; `interlock resume` continues the rollout", style="$text-warning")
        if self.quitting:
            self.exit(state)

    def _on_engine(self, state: RolloutState, events: Sequence[Event]) -> None:
        self.deliver([(state, tuple(events))])

    def deliver(self, batches: Sequence[Batch]) -> None:
        """Queue snapshots for the next repaint (engine subscriber and journal follower)."""
        self._pending.extend(batches)
        if self._flush_scheduled:
            return
        wait = self._last_flush + self.FLUSH_SECONDS - time.monotonic()
        if wait > 0:
            self._flush_scheduled = True
            self.set_timer(wait, self._draw_pending)
        else:
            self._draw_pending()  # same loop, same thread: draw now, before the adapters' tasks run

    def _draw_pending(self) -> None:
        """Draw the queued snapshots. Not named `_flush`: that is Textual's own `App._flush`,
        which the captured stdout/stderr call with `stderr=` while the console runs."""
        self._flush_scheduled = False
        self._last_flush = time.monotonic()
        batches, self._pending = self._pending, []
        if not batches:
            return
        before = self.state
        lines: list[Content] = []
        touched: set[str] = set()
        worded = len(batches) - EventLog.MAX_LINES  # older batches' lines would fall off the log
        for index, (state, events) in enumerate(batches):
            touched |= self.history.record(events)
            if index >= worded:
                lines.extend(batch_lines(before, state, events))
            before = state
        ended = before.finished and not self.state.finished
        self.state = before
        self.console_screen.show_state(self.state, lines[-EventLog.MAX_LINES :], touched)
        if ended and self.driving:
            self.note(f"rollout {printer.words(before.phase)}; q leaves the console", style="bold")
        for screen in self.screen_stack:
            if isinstance(screen, CascadeScreen):
                screen.show_state(self.state)
        self._update_header()
        self.selection_changed()
        if self.on_flush is not None:
            self.on_flush(len(batches))

    def _update_header(self) -> None:
        state = self.state
        start = state.started_at
        if self.session is not None:
            clock = self.session.clock
            # An ended rollout's clock stops at its last event, though the engine lingers to
            # serve a late rollback (which makes the rollout run again, and the clock with it).
            now = clock.now() if self.engine_running and not state.finished else state.at
            speed = speed_label(clock.speed, clock.virtual)
            mode = "ended" if state.finished else (
                "driving" if self.engine_running and not self.quitting else "stopped"
            )
        else:
            assert self.follower is not None
            now = state.at
            info = self.follower.info
            speed = speed_label(info.speed, info.clock == "virtual")
            mode = "watching"
        elapsed = 0.0 if start is None else now - start
        self.console_screen.show_clock(state, elapsed=elapsed, speed=speed, mode=mode)

    def journal_and_run(self) -> tuple[SharedJournal, str]:
        """The journal this console reads and the run it shows (the runs screen lists them all)."""
        if self.session is not None:
            return self.session.journal, self.session.info.run_id
        assert self.follower is not None
        return self.follower.journal, self.follower.info.run_id

    # -- what applies now --------------------------------------------------------

    @property
    def selected(self) -> str | None:
        return self.console_screen.selected

    def _can_drive(self) -> bool:
        return self.driving and self.engine_running and not self.quitting

    def _can_act(self) -> bool:
        """The rollout's verbs apply from here: a driving console's engine runs, or a watcher
        sends them to the live driver as requests (`tui.session.steering`)."""
        return self._can_drive() or (self.follower is not None and not self.quitting)

    def availability(self, action: str) -> bool | None:
        """True: applies now. None: shown greyed out. False: hidden (the other half of space)."""
        if action in BY_NAME and BY_NAME[action].kind == "clock":
            clock = self.session.clock if self.session is not None else None
            if not self._can_drive() or clock is None or clock.virtual:
                return None
            if action == "faster":
                return True if clock.speed < MAX_SPEED else None
            return True if clock.speed > MIN_SPEED else None
        if action not in VERBS:
            return True
        if not self._can_act():
            return False if action == "resume" else None
        verbs = self._verbs()
        if action == "pause":
            return True if "pause" in verbs else (False if "resume" in verbs else None)
        if action == "resume":
            return "resume" in verbs
        return True if action in verbs else None

    def _verbs(self) -> set[str]:
        """`core.actions.available` for the shown state and selection, computed once per pair."""
        key = (self.state, self.selected)
        if self._verbs_cache is None or self._verbs_cache[0][0] is not key[0] or self._verbs_cache[0][1] != key[1]:
            self._verbs_cache = (key, set(available(self.state, self.selected, self.operator)))
        return self._verbs_cache[1]

    def refusal(self, action: str) -> str:
        """Why `action` does not apply now, in words for the log and the palette: this
        console's own reasons first, then the rollout's (`core.actions.why_not`)."""
        role = "driver" if self.driving else "watcher"
        if role not in BY_NAME[action].may:
            return "this console is watching the journal; it cannot act"
        if self.quitting:
            return "the console is quitting"
        if self.driving and not self.engine_running:
            return f"the engine has stopped (rollout {printer.words(self.state.effective_phase)})"
        if BY_NAME[action].kind == "clock":
            assert self.session is not None
            if self.session.clock.virtual:
                return "the clock is virtual: time jumps to the next deadline"
            return f"the clock is already at ×{self.session.clock.speed:g}"
        verb = BY_NAME[action].verb
        why = why_not(self.state, verb, self.selected, self.operator) if verb is not None else None
        return why or "not available now"

    def selection_changed(self) -> None:
        """Re-grey the footer when what applies changed (state or selection)."""
        key = tuple(self.availability(a) for a in ALL_ACTIONS) + (self.selected,)
        if key != self._availability_key:
            self._availability_key = key
            self.console_screen.refresh_bindings()

    # -- intents out ---------------------------------------------------------------

    def _now(self) -> float:
        if self.session is not None and self.engine_running:
            return self.session.clock.now()
        return self.state.at

    def note(self, text: str, style: str = "$text-accent") -> None:
        """A line of the console's own in the event log."""
        line = Content.assemble(
            (printer.clock_text(self.state, self._now()), "$text-muted"), "  ", (text, style)
        )
        self.console_screen.log_line(line)

    def on_operator_intent(self, message: OperatorIntent) -> None:
        verb = message.verb
        if self.availability(verb) is not True:
            self.note(f"{verb} does not apply now: {self.refusal(verb)}", style="$text-warning")
            return
        event = OperatorAction(at=0.0, action=verb, service=message.service, operator=self.operator,
                               reason=message.reason)
        why = refused(self.state, event)  # the question every request is asked (core.actions)
        if why is not None:
            self.note(f"{verb} does not apply now: {why}", style="$text-warning")
            return
        target = f" {message.service}" if message.service else ""
        if self.session is None:  # watching: the live driver decides and answers
            self.note(f"{BY_NAME[verb].ack or '▸'} {verb}{target} sent to the driver by {self.operator}")
            self.run_worker(self._request(event), group="requests")
            return
        self.note(f"{BY_NAME[verb].ack or '▸'} {verb}{target} requested by {self.operator}")
        self.session.engine.submit(event)

    async def _request(self, event: OperatorAction) -> None:
        """A watcher's key, as a request to the run's live driver; its answer goes in the log."""
        assert self.follower is not None
        follower = self.follower
        try:
            asked = await asyncio.to_thread(
                ask, follower.journal, follower.info, event.action, event.service,
                operator=event.operator, reason=event.reason,
            )
        except Exception as exc:  # noqa: BLE001 - a journal that cannot carry it: said, not raised
            self.note(f"{event.action}: the request could not be sent: {exc}", style="$text-error")
            return
        answer = asked.answer
        if answer.status == "applied":
            self.note(f"driver: {answer.text}")
        elif answer.status == "refused":
            self.note(f"driver refused {event.action}: {answer.text}", style="$text-warning")
        else:
            self.note(f"{event.action} not applied: {answer.text}", style="$text-warning")

    def on_refused_intent(self, message: RefusedIntent) -> None:
        key = {"space": "space", "plus": "+", "minus": "-", "equals_sign": "="}.get(message.key, message.key)
        self.note(f"{key}: {message.action} does not apply now: {self.refusal(message.action)}",
                  style="$text-warning")

    def on_speed_intent(self, message: SpeedIntent) -> None:
        action = "faster" if message.factor > 1 else "slower"
        if self.availability(action) is not True or self.session is None:
            self.note(f"{action}: {self.refusal(action)}", style="$text-warning")
            return
        clock = self.session.clock
        speed = next_speed(clock.speed, faster=message.factor > 1)
        clock.set_speed(speed)
        self.session.engine.wake()
        self.note(f"clock speed ×{speed:g}, set by {self.operator}")
        self._update_header()
        self.selection_changed()

    async def action_quit(self) -> None:
        """Ask first while the engine drives; the rollout stays in the journal either way."""
        if not self._can_drive():
            self.exit(self.final_state or self.state)
            return
        if self.state.finished:  # nothing left to hold: stop without asking
            self.stop_engine()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.stop_engine()

        self.push_screen(QuitScreen(self.state.effective_phase), answer)

    def stop_engine(self) -> None:
        """Stop driving and leave once the engine has finished its current step."""
        if self.session is None or self.quitting:
            return
        self.note("quit: stopping the engine; the rollout stays in the journal, `interlock resume` continues it")
        self.quitting = True
        self.session.engine.stop()
        self.set_timer(15.0, lambda: self.exit(self.final_state or self.state))
        self._update_header()
        self.selection_changed()


def run_console(session: runtime.Session) -> RolloutState:
    """Open the console on a wired session; returns the state when it closes."""
    app = InterlockApp(session)
    result = app.run()
    if app.engine_error is not None:
        raise app.engine_error
    return result or app.final_state or session.engine.state


def watch_console(spec: str | Path, run_id: str | None) -> int:
    """Open the read-only console on a journal; returns the exit code."""
    follower = JournalFollower.open(spec, run_id)
    try:
        InterlockApp(follower=follower).run()
    finally:
        follower.close()
    return 0
