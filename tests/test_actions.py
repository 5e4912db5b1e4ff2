"""The operator action table (`core.actions.ACTIONS`) is the one place an action is spelled:
every surface is built from it or checked against it here."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from helpers import Driver, design_plan, design_services, replay

from core.actions import ACTIONS, ALL_VERBS, BY_NAME, available, help_rows, readme_key_table, why_not
from core.events import OperatorAction, OperatorVerb
from core.reducer import reduce

ROOT = Path(__file__).resolve().parents[1]


def test_the_journaled_verbs_are_the_tables_verbs() -> None:
    assert ALL_VERBS == get_args(OperatorVerb)
    assert len(BY_NAME) == len(ACTIONS)
    for action in ACTIONS:
        assert action.verb == (action.name if action.kind == "verb" else None)
        if action.kind == "verb":
            assert action.ack and action.keys and action.title, action.name
        shares = action.key_text == ACTIONS[ACTIONS.index(action) - 1].key_text
        assert action.help or shares or action.name == "back", f"{action.name}: missing from the help"


def test_the_readme_key_table_is_the_tables() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_key_table() + "\n\n" in readme


def test_console_bindings_palette_and_help_come_from_the_table() -> None:
    from tui.console.screens.console import ConsoleScreen, action_name, binding_action
    from tui.console.screens.help import KEYS
    from tui.console.screens.palette import PALETTE

    bound = [(b.key, b.description, b.show) for b in ConsoleScreen.BINDINGS]  # type: ignore[union-attr]
    assert bound == [(a.keys, a.label, a.shown) for a in ACTIONS if a.keys]
    for action in ACTIONS:
        if not action.keys or action.on_app:
            continue
        text = binding_action(action)
        name, _, rest = text.partition("(")
        parameters = (action.name,) if rest else ()
        assert action_name(name, parameters) == action.name
        assert hasattr(ConsoleScreen, f"action_{name}"), text
    assert KEYS == tuple(help_rows())
    assert {a.name for a in PALETTE} == {a.name for a in ACTIONS if a.title}
    assert [a.changes_rollout for a in PALETTE] == sorted((a.changes_rollout for a in PALETTE), reverse=True)


def _states_of_a_failing_rollout() -> list:
    d = Driver(design_plan(services=design_services(["drift"])))
    d.start()
    d.run(metric=lambda cmd, state: 0.9 if cmd.gate == "drift" else 0.0)
    states, state = [d.initial], d.initial
    for event, _ in d.log:
        state = replay(state, [event])
        states.append(state)
    return states


def test_why_not_words_exactly_what_available_refuses() -> None:
    """One rulebook: `why_not` is None exactly when `available` offers the verb, in every
    state of a rollout that fails and rolls back (ended states included)."""
    states = _states_of_a_failing_rollout()
    assert {s.phase for s in states} >= {"planned", "running", "rolling_back", "rolled_back"}
    for state in states:
        for service in (None, *state.ctx.graph.moving):
            offered = available(state, service)
            for verb in ALL_VERBS:
                assert (why_not(state, verb, service) is None) == (verb in offered), (state.phase, verb, service)


def test_a_rollback_after_the_rollout_rolled_back_applies_to_what_still_moved() -> None:
    """The reducer and the console agree with `available`: once rolled back, a service that
    still serves traffic can be rolled back too; one that did not move says why not."""
    final = _states_of_a_failing_rollout()[-1]
    assert final.phase == "rolled_back"
    assert final.services["features"].exposure > 0
    assert "rollback" in available(final, "features")
    assert why_not(final, "rollback", "ranker") == "nothing to roll back: ranker and what follows it have not moved"
    after, commands = reduce(final, OperatorAction(at=final.at, action="rollback", service="features", operator="t"))
    assert after.phase == "rolling_back" and commands


def test_clock_speeds_come_from_a_fixed_ladder() -> None:
    from core import SPEEDS, next_speed

    assert next_speed(60, faster=False) == 30 and next_speed(30, faster=True) == 60
    assert next_speed(45, faster=True) == 60 and next_speed(45, faster=False) == 30
    assert next_speed(SPEEDS[-1], faster=True) == SPEEDS[-1] and next_speed(1, faster=False) == 1
    speed = 60.0
    for _ in range(len(SPEEDS)):
        speed = next_speed(speed, faster=False)
    for _ in range(SPEEDS.index(60)):
        speed = next_speed(speed, faster=True)
    assert speed == 60


def test_the_request_commands_are_the_tables_verbs() -> None:
    """`interlock pause|resume|step|approve|promote [--full]|rollback|abort` come from the
    table: every verb has a command, and each command line selects exactly its action."""
    from tui.cli.main import _parser
    from tui.cli.steer_cmd import COMMANDS, action_of

    assert {a.name for actions in COMMANDS.values() for a in actions} == set(ALL_VERBS)
    parser = _parser()
    for action in ACTIONS:
        if action.kind != "verb":
            continue
        command, *flags = action.cli.split()
        argv = [command, *(["svc"] if action.needs_service else []), *flags]
        args = parser.parse_args(argv)
        assert args.command == command
        if command != "resume":  # `interlock resume` is also how a run is driven again
            assert action_of(args) is action, action.cli
        assert hasattr(args, "reason") and hasattr(args, "request")
