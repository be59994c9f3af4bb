"""The backtest tests' real PostgreSQL server (tests/pg.py): one per session, a fresh database per test."""

from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures)
