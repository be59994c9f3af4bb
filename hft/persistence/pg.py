"""PostgreSQL store: the same tables, rows and exactly-once guarantee as the SQLite store, for pipelines on
several hosts writing into one database.

The schema is SQLite's (``hft.persistence.store.SCHEMA``) translated to PostgreSQL's types, except ``runs``: here a
run is one pipeline run of one host and one instance, ``(host, instance, generation)`` (the generation is the
shared memory's), and its ``run_id`` is allocated by the database, so the run ids of many pipelines never collide
and every other table stays keyed by ``(run_id, id)`` as in SQLite. A persistence process that restarts (even after
SIGKILL) finds its run again by ``(host, instance, generation)`` and resumes from the ring cursors committed with
the rows (``StoreBase.write_batch``: one transaction).

Two pipelines may create the schema at the same moment: the DDL runs under a transaction-scoped advisory lock.
"""

from __future__ import annotations

import contextlib
import re

import psycopg

from hft.persistence.store import SCHEMA, SCHEMA_VERSION, StoreBase, StoreError, summarize_run

SCHEMA_LOCK = 0x6866745F736368  # pg_advisory_xact_lock key: "hft_sch"
UTC_NOW = "(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
PG_RUNS = """CREATE TABLE IF NOT EXISTS runs (
    run_id BIGSERIAL PRIMARY KEY,
    host TEXT NOT NULL,
    instance TEXT NOT NULL,
    generation BIGINT NOT NULL,
    started_at TEXT NOT NULL DEFAULT """ + UTC_NOW + """,
    config TEXT NOT NULL DEFAULT '{}',
    UNIQUE (host, instance, generation)
)"""


PG_BINARY_TYPES = {"bigint": "int8", "double precision": "float8", "text": "text", "integer": "int4"}
# per-connection staging tables for COPY (emptied at every commit)
UPDATE_COLUMNS = "status, reason, filled, filled_fp, avg_price, last_exec_id, run_id, order_id, newer_than"
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_orders (LIKE orders) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS stage_executions (LIKE executions) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS stage_updates (status TEXT, reason TEXT, filled DOUBLE PRECISION, "
    "filled_fp BIGINT, avg_price DOUBLE PRECISION, last_exec_id BIGINT, run_id BIGINT, order_id BIGINT, "
    "newer_than BIGINT) ON COMMIT DELETE ROWS",
)


def pg_schema() -> list[str]:
    """The SQLite schema in PostgreSQL's words (one definition of the tables, two dialects)."""
    out = []
    for statement in SCHEMA:
        if statement.startswith("CREATE INDEX"):
            # no secondary index: every query of the project filters by run_id and walks the primary keys, and
            # the three indexes cost the server 3 of its 12 us per report (bench/persistence.py
            # --pg-no-secondary-indexes: 52-55 k -> 61-69 k reports/s on this machine)
            continue
        if re.match(r"CREATE TABLE IF NOT EXISTS runs\b", statement):
            out.append(PG_RUNS)
            continue
        text = re.sub(r"\(strftime\([^)]*\)\)", UTC_NOW, statement)
        text = re.sub(r"\bINTEGER\b", "BIGINT", text)
        text = re.sub(r"\bREAL\b", "DOUBLE PRECISION", text)
        text = re.sub(r"\bBLOB\b", "BYTEA", text)
        text = text.replace(" WITHOUT ROWID", "").replace("CREATE VIEW IF NOT EXISTS", "CREATE OR REPLACE VIEW")
        out.append(text)
    return out


class PgTradeStore(StoreBase):
    """One PostgreSQL connection owned by the persistence process (or a backtest)."""

    _error = psycopg.Error

    def __init__(self, url: str, symbols: list[tuple[str, int, int]], host: str, instance: str, generation: int,
                 config_json: str = "{}", connect_timeout_s: float = 10.0) -> None:
        """Connect, create the schema if needed, find or register the run ``(host, instance, generation)``."""
        self.url = url
        self.where = redacted(url)
        self.host, self.instance, self.generation = host, instance, generation
        self._set_symbols(symbols)
        try:
            self.db = psycopg.connect(url, connect_timeout=max(1, int(connect_timeout_s)), autocommit=False)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.where}: {_first_line(exc)}") from None
        try:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                self.db.execute(pg_schema()[0])  # schema_version first: refuse another version before any DDL
                versions = {row[0] for row in self.db.execute("SELECT version FROM schema_version")}
                if versions and SCHEMA_VERSION not in versions:
                    raise StoreError(f"{self.where} has schema version {max(versions)}, this build writes "
                                     f"{SCHEMA_VERSION}: use another database")
                for statement in pg_schema()[1:]:
                    self.db.execute(statement)
                self.db.execute("INSERT INTO schema_version (version) VALUES (%s) ON CONFLICT DO NOTHING",
                                (SCHEMA_VERSION,))
                self.db.execute("INSERT INTO runs (host, instance, generation, config) VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT (host, instance, generation) DO NOTHING",
                                (host, instance, generation, config_json))
                self.run_id = int(self.db.execute(
                    "SELECT run_id FROM runs WHERE host = %s AND instance = %s AND generation = %s",
                    (host, instance, generation)).fetchone()[0])
            with self.db.transaction():
                for statement in STAGING:
                    self.db.execute(statement)
            # binary COPY needs each column's type: the server parses no text numbers then (measured faster)
            self.column_types = {
                (table, column): PG_BINARY_TYPES[data_type]
                for table, column, data_type in self.db.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_name IN ('orders', 'executions', 'stage_orders', 'stage_executions', "
                    "'stage_updates')").fetchall()
                if data_type in PG_BINARY_TYPES
            }
            self.db.commit()
        except psycopg.Error as exc:
            self.db.close()
            raise StoreError(f"cannot open the schema in {self.where}: {_first_line(exc)}") from None
        except StoreError:
            self.db.close()
            raise

    def _insert_new(self, table: str, columns: str, rows: list[tuple]) -> None:
        """COPY straight into the table (row-by-row INSERTs ran ~22 k reports/s); should a key already be there
        (a batch written twice: the cursors make that impossible, this is the safety net), the COPY's savepoint
        is rolled back and the rows go through the staging table and an INSERT that skips existing keys."""
        if not rows:
            return
        try:
            with self.db.transaction(), self.db.cursor() as cursor:  # a savepoint inside the batch's transaction
                self._copy(cursor, table, columns, rows)
        except psycopg.errors.UniqueViolation:
            with self.db.cursor() as cursor:
                self._copy(cursor, f"stage_{table}", columns, rows)
                cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stage_{table} "
                               "ON CONFLICT DO NOTHING")

    def _copy(self, cursor: psycopg.Cursor, table: str, columns: str, rows: list[tuple]) -> None:
        names = [name.strip() for name in columns.split(",")]
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([self.column_types[(table, name)] for name in names])
            for row in rows:
                copy.write_row(row)

    def _update_orders(self, updates: list[tuple]) -> None:
        if updates:
            with self.db.cursor() as cursor:
                self._copy(cursor, "stage_updates", UPDATE_COLUMNS, updates)
                cursor.execute(
                    "UPDATE orders o SET status = u.status, reason = u.reason, filled = u.filled, "
                    "filled_fp = u.filled_fp, avg_price = u.avg_price, last_exec_id = u.last_exec_id "
                    "FROM stage_updates u WHERE o.run_id = u.run_id AND o.order_id = u.order_id "
                    "AND o.last_exec_id < u.newer_than")

    def _execute(self, sql: str, params: tuple = ()) -> None:
        self.db.execute(sql.replace("?", "%s"), params)

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            with self.db.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)

    def _fetch_rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        rows = self.db.execute(sql.replace("?", "%s"), params).fetchall()
        self.db.commit()  # a read ends its implicit transaction: the next write starts a fresh one
        return rows

    def _begin(self) -> None:
        """psycopg opens the transaction with the first statement."""

    def _commit(self) -> None:
        self.db.commit()

    def _rollback(self) -> None:
        if not self.db.closed:
            with contextlib.suppress(psycopg.Error):
                self.db.rollback()

    def _hint(self, exc: Exception) -> str:
        return ""

    def close(self) -> None:
        self.db.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def summarize_pg(url: str, host: str, instance: str, generation: int) -> dict[str, object] | None:
    """The totals of the run ``(host, instance, generation)`` (None when the server has no such run)."""
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as db:
        row = db.execute("SELECT run_id FROM runs WHERE host = %s AND instance = %s AND generation = %s",
                         (host, instance, generation)).fetchone()
        if row is None:
            return None
        return summarize_run(lambda sql, params: db.execute(sql.replace("?", "%s"), params).fetchall(), int(row[0]))
