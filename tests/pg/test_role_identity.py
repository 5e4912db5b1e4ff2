"""Identity on a PostgreSQL journal is the database role the server authenticated (issue 13
point 4): `$INTERLOCK_OPERATOR` cannot claim another, nor can `SET ROLE`; a run started
there records the role, and governance judges the role's actions."""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from adapters.journals import open_journal
from core import why_not
from tui.session.runtime import operator_identity, start_run

_roles = itertools.count(1)

PLAN = """\
rollout: governed
governance:
  groups: {release: [alice], oncall: [carol]}
  may: {rollback: [oncall]}
defaults: {stages: [100], bake: 1m}
services:
  ranker: {from: {version: "1"}, to: {version: "2"}}
"""


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.split("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture
def role_url(pg_url: str) -> str:
    """A login role of its own (named like a person), allowed into the test's schema."""
    role = f"alice_{next(_roles)}"
    schema = pg_url.rsplit("%3D", 1)[-1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')  # type: ignore[call-overload]
        conn.execute(f'CREATE ROLE "{role}_other"')  # type: ignore[call-overload]
        conn.execute(f'GRANT "{role}_other" TO "{role}"')  # type: ignore[call-overload]
        conn.execute(f'GRANT ALL ON SCHEMA "{schema}" TO "{role}"')  # type: ignore[call-overload]
    return as_role(pg_url, role)


def test_the_database_role_wins_over_the_environment(role_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_OPERATOR", "bob")
    role = urlsplit(role_url).username
    journal = open_journal(role_url)
    try:
        assert operator_identity(journal).split("@")[0] == role
        journal._db.execute(f'SET ROLE "{role}_other"')  # current_user changes; session_user does not
        assert operator_identity(journal).split("@")[0] == role
    finally:
        journal.close()
    assert operator_identity(None).split("@")[0] == "bob"  # without a database: the claim


def test_a_run_on_postgres_records_the_role_as_its_starter(
    role_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLOCK_OPERATOR", "carol")  # would be allowed to roll back; the role is not
    monkeypatch.chdir(tmp_path)
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    role = urlsplit(role_url).username
    session = start_run(plan, journal_path=role_url)
    try:
        assert session.info.operator.split("@")[0] == role
        assert session.engine.operator == session.info.operator
        # Governance reads the role: carol (the claim) may roll back, this role may not.
        assert why_not(session.engine.state, "rollback", "ranker", who=session.info.operator) == (
            f"rollback needs group oncall: {role} is in no group"
        )
    finally:
        session.engine.lease.release()  # type: ignore[union-attr]
        session.journal.close()
