"""PostgreSQL store against a real server: the SQLite store's rows, cursors and replay guarantee, runs keyed by
host, instance and generation, clear errors for a bad URL or another schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from hft.persistence.pg import PgTradeStore, pg_schema, summarize_pg
from hft.persistence.store import SCHEMA_VERSION, StoreError, TradeStore, summarize
from tests.pg import PgServer, free_port
from tests.unit.persistence.test_store import SYMBOLS, batch

CURSORS = {"strategy.orders": 6, "broker.executions": 6}


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(sql, params).fetchall()


def test_write_batch_when_new_database_then_the_same_rows_as_sqlite(pg_server: PgServer, pg_database: str,
                                                                     tmp_path: Path) -> None:
    url = pg_database
    pg = PgTradeStore(url, SYMBOLS, "host-a", "main", 7)
    lite = TradeStore(tmp_path / "a.db", SYMBOLS, run_id=pg.run_id)
    orders, reports = batch(6)
    assert pg.write_batch(orders, reports, CURSORS) == lite.write_batch(orders, reports, CURSORS) == (6, 4)
    assert pg.cursor("broker.executions") == 6 and pg.next_id("performance_metrics", "sample_id") == 1
    pg.write_metrics(1, 10, {"total_pnl": 1.5, "realized_pnl": 1.0, "unrealized_pnl": 0.5, "fees": 0.1,
                             "sharpe": None, "max_drawdown": 0.0, "win_rate": None, "avg_trade_pnl": None,
                             "trade_count": 0})
    assert pg.metric_history() == [(10, 1.5)]
    for table, key in (("orders", "order_id"), ("executions", "exec_id"), ("positions", "symbol")):
        sqlite_rows = sqlite3.connect(tmp_path / "a.db").execute(
            f"SELECT * FROM {table} ORDER BY {key}").fetchall()
        assert rows(url, f"SELECT * FROM {table} ORDER BY {key}") == sqlite_rows, table
    assert summarize_pg(url, "host-a", "main", 7) == summarize(tmp_path / "a.db", pg.run_id)
    pg.close()
    lite.close()


def test_batch_when_replayed_after_a_crash_then_no_duplicates(pg_server: PgServer, pg_database: str) -> None:
    url = pg_database
    store = PgTradeStore(url, SYMBOLS, "host-a", "main", 1)
    orders, reports = batch(6)
    store.write_batch(orders, reports, CURSORS)
    store.close()
    again = PgTradeStore(url, SYMBOLS, "host-a", "main", 1)  # the same run found again (a restarted process)
    assert again.run_id == store.run_id and again.cursor("strategy.orders") == 6
    again.write_batch(orders, reports, CURSORS)
    assert rows(url, "SELECT COUNT(*) FROM executions") == [(6,)]
    again.close()


def test_runs_of_several_hosts_and_instances_when_written_then_keyed_apart(pg_server: PgServer,
                                                                          pg_database: str) -> None:
    url = pg_database
    stores = [PgTradeStore(url, SYMBOLS, host, instance, 1)
              for host, instance in (("host-a", "main"), ("host-b", "main"), ("host-a", "eth"))]
    assert len({store.run_id for store in stores}) == 3
    orders, reports = batch(6)
    for store in stores:
        store.write_batch(orders, reports, CURSORS)  # the same order ids, generation and cursors: no clash
        store.close()
    assert rows(url, "SELECT host, instance, COUNT(*) FROM executions JOIN runs USING (run_id) "
                     "GROUP BY host, instance ORDER BY 1, 2") == [("host-a", "eth", 6), ("host-a", "main", 6),
                                                                 ("host-b", "main", 6)]


def test_open_when_the_database_has_another_schema_version_then_clear_error(pg_server: PgServer,
                                                                           pg_database: str) -> None:
    url = pg_database
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(pg_schema()[0])
        db.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION - 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION - 1}"):
        PgTradeStore(url, SYMBOLS, "h", "main", 1)


def test_open_when_nothing_listens_then_one_clear_error_without_the_password() -> None:
    url = f"postgresql://hft:secret@127.0.0.1:{free_port()}/hft"
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://hft:\*\*\*@127\.0\.0\.1") as caught:
        PgTradeStore(url, SYMBOLS, "h", "main", 1, connect_timeout_s=2)
    assert "secret" not in str(caught.value)


def test_write_when_the_server_stops_then_store_error_and_nothing_half_written(pg_server: PgServer,
                                                                              pg_database: str) -> None:
    url = pg_database
    store = PgTradeStore(url, SYMBOLS, "h", "main", 1)
    pg_server.stop()
    try:
        orders, reports = batch(6)
        with pytest.raises(StoreError, match="write failed"):
            store.write_batch(orders, reports, CURSORS)
    finally:
        pg_server.start()
    assert rows(url, "SELECT COUNT(*) FROM orders") == [(0,)]
    store.close()
