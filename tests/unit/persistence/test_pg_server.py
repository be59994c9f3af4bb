"""The test PostgreSQL server (tests/pg.py) is real: rows go in and come back, a stopped server refuses
connections, and a restarted one still has every committed row on the same URL."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from tests.pg import PgServer

FILLS = [(1, 6_000_001, "BTCUSDT"), (2, 310_025, "ETHUSDT")]


def test_insert_then_select_on_fresh_database_returns_the_rows(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        conn.execute("CREATE TABLE fills (id bigint PRIMARY KEY, price bigint NOT NULL, symbol text NOT NULL)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO fills VALUES (%s, %s, %s)", FILLS)
        conn.commit()
    with psycopg.connect(pg_database) as conn:
        rows = conn.execute("SELECT id, price, symbol FROM fills ORDER BY id").fetchall()
    assert rows == FILLS


def test_copy_into_table_then_rows_are_readable(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        conn.execute("CREATE TABLE reports (id bigint PRIMARY KEY, qty bigint NOT NULL)")
        with conn.cursor() as cur, cur.copy("COPY reports (id, qty) FROM STDIN") as copy:
            for k in range(1000):
                copy.write_row((k, k * 10))
        conn.commit()
        assert conn.execute("SELECT count(*), sum(qty) FROM reports").fetchone() == (1000, 10 * 999 * 1000 // 2)


def test_each_test_gets_an_empty_database_of_its_own(pg_server: PgServer, pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert pg_database == pg_server.url_for(name)
    assert name.startswith("test_")
    assert tables == 0


def test_server_when_running_as_root_then_runs_as_an_unprivileged_user(pg_server: PgServer) -> None:
    if os.geteuid() != 0:
        pytest.skip("not root: the server runs as the current user")
    owner = Path(pg_server.datadir).stat().st_uid
    pid = int((pg_server.datadir / "postmaster.pid").read_text().split()[0])
    assert owner != 0
    assert os.stat(f"/proc/{pid}").st_uid == owner


def test_server_stopped_then_connect_fails_and_after_start_committed_row_is_still_there(
    pg_server: PgServer, pg_database: str
) -> None:
    with psycopg.connect(pg_database) as conn:
        conn.execute("CREATE TABLE cursors (ring text PRIMARY KEY, position bigint NOT NULL)")
        conn.execute("INSERT INTO cursors VALUES ('broker.executions', 4242)")
        conn.commit()
    port = pg_server.port

    pg_server.stop()
    assert not pg_server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_database, connect_timeout=2)

    pg_server.start()
    assert pg_server.running
    assert pg_server.port == port
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT position FROM cursors WHERE ring = 'broker.executions'").fetchone() == (4242,)


def test_connection_open_across_a_restart_then_fails_and_a_new_one_works(
    pg_server: PgServer, pg_database: str
) -> None:
    conn = psycopg.connect(pg_database, autocommit=True)
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        pg_server.stop()
        pg_server.start()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()
    with psycopg.connect(pg_database) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)
