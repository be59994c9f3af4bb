"""The deploy tests' real PostgreSQL server (tests/pg.py): deploy/multihost/setup.sql runs against it."""

from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures)
