"""Who may do what to a rollout: the plan's `governance:` and the rules that read it.

A rollout is shared production work, so the plan says who may approve, promote,
resume, step or roll back (named people in named groups, and each service's
`owners`), how many distinct people an approval needs (`quorum`) and whether the
person who started the run may approve it alone (`separation`). `pause` is never
restricted: anyone who sees a problem may stop exposure from rising.

Pure rules over names. Who a name belongs to is decided outside `core` (the
journal's database role, `$INTERLOCK_OPERATOR`, the OS user: `tui.session.runtime`);
an operator is recorded as `name@host`, and only `name` counts here. Every refusal
names the rule that refused ("approve needs group release: carol is in oncall"),
and `core.actions.why_not` is the one place that asks, for the console, the
reducer and requests from other terminals alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from core.problems import Path, Problem, SourceMap, located
from core.spec import Strict

GOVERNED = ("resume", "step", "approve", "promote", "rollback")
"""The verbs `may` can restrict. `rollback` covers `abort` too; `pause` is never restricted."""
OWNED = frozenset({"approve", "promote", "promote_full"})
"""Verbs a service's `owners` may always do to that service."""
QUORUM_VERBS = ("approve",)


class Governance(Strict):
    """`governance:` in a plan: groups of people, who may do what, approvals' quorum."""

    groups: dict[str, list[str]] = Field(default_factory=dict)
    """Group name → the people in it (identities as `interlock` records them, without `@host`)."""
    may: dict[str, list[str]] = Field(default_factory=dict)
    """Verb → the groups that may do it. A verb not listed: anyone."""
    quorum: dict[str, int] = Field(default_factory=dict)
    """`approve` → distinct people an approval needs (default 1)."""
    separation: bool = False
    """Whoever started the run cannot approve it alone: someone else must approve too."""


def person(operator: str) -> str:
    """The name governance reads from a recorded operator (`alice@host` → `alice`)."""
    return operator.split("@", 1)[0]


def rule_of(verb: str) -> str:
    """The `may` entry that governs `verb` (`abort` by `rollback`, `promote --full` by `promote`)."""
    return {"abort": "rollback", "promote_full": "promote"}.get(verb, verb)


def groups_of(gov: Governance, who: str) -> list[str]:
    """The groups `who` is in, sorted."""
    return sorted(name for name, people in gov.groups.items() if who in people)


def _is_owner(gov: Governance, who: str, owners: Iterable[str]) -> bool:
    """An owner entry is a group of `governance.groups` or a person's name."""
    return any(who == owner or who in gov.groups.get(owner, ()) for owner in owners)


def refusal(gov: Governance | None, verb: str, operator: str, owners: Iterable[str] = ()) -> str | None:
    """Why `operator` may not `verb` under `gov`, naming the rule; None when they may.
    `owners` are the owners of the service the verb is about (approve and promote)."""
    if gov is None or verb == "pause":
        return None
    allowed = gov.may.get(rule_of(verb))
    if allowed is None:
        return None
    who = person(operator)
    mine = groups_of(gov, who)
    if set(mine) & set(allowed):
        return None
    owners = tuple(owners)
    if verb in OWNED and _is_owner(gov, who, owners):
        return None
    needs = "group " + " or ".join(allowed) if allowed else "no one (may lists no group)"
    if verb in OWNED and owners:
        needs += f" or the service's owners {', '.join(owners)}"
    where = f"is in {', '.join(mine)}" if mine else "is in no group"
    named = "promote --full" if verb == "promote_full" else verb
    return f"{named} needs {needs}: {who or 'an unnamed operator'} {where}"


def quorum(gov: Governance | None) -> int:
    """Distinct people one approval needs."""
    return 1 if gov is None else gov.quorum.get("approve", 1)


def approval_complete(gov: Governance | None, votes: Iterable[str], starter: str) -> bool:
    """Do these approvers (names) make an approval? `quorum` distinct people, and with
    `separation` at least one who did not start the run."""
    people = set(votes)
    if len(people) < quorum(gov):
        return False
    return not (gov is not None and gov.separation and not people - {person(starter)})


def approval_progress(gov: Governance | None, votes: Iterable[str], starter: str) -> str:
    """What an incomplete approval still needs, in words."""
    people = sorted(set(votes))
    need = quorum(gov)
    so_far = f"{len(people)} of {need} ({', '.join(people)})" if people else f"0 of {need}"
    if len(people) >= need:  # separation is what is missing
        return (f"approvals {so_far}; separation: {person(starter)} started the run and cannot approve it "
                "alone, someone else must approve too")
    return f"approvals {so_far}: approve needs {need} distinct people (quorum)"


def governance_problems(gov: Governance | None, owned: bool, source: SourceMap) -> list[Problem]:
    """What the model cannot see alone: verbs `may` cannot restrict, groups it names that do
    not exist, a quorum nobody can reach (`owned`: some service names owners, who may approve
    it too, so the count is not known here)."""
    if gov is None:
        return []
    at: Path = ("governance",)
    problems: list[Problem] = []
    for verb, groups in gov.may.items():
        where = at + ("may", verb)
        if verb == "pause":
            problems.append(located(source, where, "pause is never restricted: anyone may stop exposure rising",
                                    key=True))
        elif verb == "abort":
            problems.append(located(source, where, "abort is governed by may.rollback (rollback and abort)",
                                    key=True))
        elif verb not in GOVERNED:
            problems.append(located(source, where, f"unknown action '{verb}'; may restricts {', '.join(GOVERNED)}",
                                    key=True))
        for i, group in enumerate(groups):
            if group not in gov.groups:
                known = ", ".join(sorted(gov.groups)) or "none defined under governance.groups"
                problems.append(located(source, where + (i,), f"unknown group '{group}'; known groups: {known}"))
    for verb, count in gov.quorum.items():
        where = at + ("quorum", verb)
        if verb not in QUORUM_VERBS:
            problems.append(located(source, where, f"quorum applies to {', '.join(QUORUM_VERBS)} only", key=True))
        elif count < 1:
            problems.append(located(source, where, f"must be at least 1, got {count}"))
        elif "approve" in gov.may and not owned:
            people = {p for g in gov.may["approve"] for p in gov.groups.get(g, ())}
            if len(people) < count:
                problems.append(located(source, where, (
                    f"an approval needs {count} distinct people but only {len(people)} may approve "
                    f"(groups {', '.join(gov.may['approve'])})")))
    return problems
