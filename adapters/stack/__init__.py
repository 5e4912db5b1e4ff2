"""Services interlock starts for itself: tests, CI and `interlock stack up` share them."""

from adapters.stack.postgres import PgServer, PostgresUnavailable, start_postgres

__all__ = ["PgServer", "PostgresUnavailable", "start_postgres"]
