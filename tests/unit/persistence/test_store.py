"""SQLite store: WAL, schema, one transaction per batch with the cursors, idempotent replays, clear errors."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from hft.persistence.store import SCHEMA_VERSION, StoreError, TradeStore, summarize
from shm_layout.records import (
    CMD_NEW,
    EXEC_REPORT,
    LIQUIDITY_TAKER,
    ORDER,
    ORDER_LIMIT,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    TIF_GTC,
)

SYMBOLS = [("BTCUSDT", 2, 5), ("ETHUSDT", 2, 4)]


def batch(n: int, start: int = 1) -> tuple[np.ndarray, np.ndarray]:
    orders = np.zeros(n, ORDER)
    reports = np.zeros(n, EXEC_REPORT)
    for k in range(n):
        orders[k]["order_id"] = start + k
        orders[k]["side"] = SIDE_BUY if k % 2 == 0 else SIDE_SELL
        orders[k]["symbol_id"] = k % 2
        orders[k]["price"] = 6_000_001
        orders[k]["size"] = 50_000
        orders[k]["command"] = CMD_NEW
        reports[k]["exec_id"] = start + k
        reports[k]["order_id"] = start + k
        reports[k]["symbol_id"] = k % 2
        reports[k]["side"] = orders[k]["side"]
        filled = k % 3 != 0
        reports[k]["status"] = STATUS_FILLED if filled else STATUS_REJECTED
        reports[k]["price"] = 6_000_001 if filled else 0
        reports[k]["size"] = 50_000 if filled else 0
        reports[k]["cum_filled"] = reports[k]["size"]
        reports[k]["cum_notional"] = reports[k]["size"] * reports[k]["price"]
        reports[k]["liquidity"] = LIQUIDITY_TAKER if filled else 0
        reports[k]["realized_pnl"] = 12_345_000 * k
    return orders, reports


def test_write_batch_when_new_db_then_wal_schema_rows_and_cursor(tmp_path: Path) -> None:
    store = TradeStore(tmp_path / "a.db", SYMBOLS)
    orders, reports = batch(6)
    rows = store.write_batch(orders, reports, {"strategy.orders": 6, "broker.executions": 6})
    assert rows == (6, 4)  # two of six reports are rejections
    assert store.cursor("strategy.orders") == 6
    store.close()
    db = sqlite3.connect(tmp_path / "a.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    price, size, price_fp = db.execute("SELECT price, size, price_fp FROM orders WHERE order_id = 1").fetchone()
    assert (price, size, price_fp) == (60000.01, 0.5, 6_000_001)
    eth_size = db.execute("SELECT size FROM trades WHERE exec_id = 2").fetchone()[0]
    assert eth_size == 5.0  # ETHUSDT has 4 size decimals: 50_000 -> 5.0
    assert db.execute("SELECT COUNT(*) FROM executions WHERE status = 'REJECTED'").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM executions").fetchone()[0] == 6
    assert db.execute("SELECT status, filled, avg_price FROM orders WHERE order_id = 2").fetchone() == (
        "FILLED", 5.0, 60000.01)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"idx_executions_symbol_ts", "idx_orders_symbol_ts"} <= indexes


def test_write_batch_when_same_batch_replayed_after_crash_then_no_duplicates(tmp_path: Path) -> None:
    store = TradeStore(tmp_path / "b.db", SYMBOLS)
    orders, reports = batch(10)
    store.write_batch(orders[:6], reports[:6], {"strategy.orders": 6})
    store.write_batch(orders, reports, {"strategy.orders": 10})  # records 1..6 read again after a restart
    summary = summarize(tmp_path / "b.db")
    assert summary["orders"] == 10
    assert summary["executions"] == 10
    assert summary["trades"] + summary["rejections"] == 10
    assert store.cursor("strategy.orders") == 10


def test_open_when_directory_read_only_then_store_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreError, match="cannot open database"):
        TradeStore(locked / "x.db", SYMBOLS)


def test_open_when_path_is_a_directory_then_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        TradeStore(tmp_path, SYMBOLS)


def test_write_when_database_becomes_read_only_then_store_error_and_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    TradeStore(path, SYMBOLS).close()
    store = TradeStore(path, SYMBOLS)
    store.db.execute("PRAGMA query_only = ON")  # what a read-only mount looks like to SQLite
    orders, reports = batch(3)
    with pytest.raises(StoreError, match="write failed"):
        store.write_batch(orders, reports, {"strategy.orders": 3})
    store.db.execute("PRAGMA query_only = OFF")
    assert summarize(path)["orders"] == 0
    assert store.cursor("strategy.orders") == 0


def test_second_run_when_written_into_same_database_then_both_runs_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "two_runs.db"
    orders, reports = batch(4)  # ids restart at 1 in every run: they are ring sequence numbers
    first = TradeStore(path, SYMBOLS, run_id=111)
    first.write_batch(orders, reports, {"strategy.orders": 4})
    first.close()
    second = TradeStore(path, SYMBOLS, run_id=222)
    second.write_batch(orders, reports, {"strategy.orders": 4})
    assert second.cursor("strategy.orders") == 4
    second.close()
    assert summarize(path, run_id=111)["orders"] == 4
    assert summarize(path, run_id=222)["orders"] == 4
    assert summarize(path)["run_id"] == 222  # the latest run by default
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 8


def test_open_when_database_has_an_older_schema_then_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at TEXT)")
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
    with pytest.raises(StoreError, match="schema version 1"):
        TradeStore(path, SYMBOLS)


def test_write_when_database_full_then_store_error_names_it_and_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    store = TradeStore(path, SYMBOLS, max_db_bytes=256 * 1024)
    orders, reports = batch(8)
    store.write_batch(orders, reports, {"strategy.orders": 8})
    big_orders, big_reports = batch(5000, start=9)
    with pytest.raises(StoreError, match="full"):
        store.write_batch(big_orders, big_reports, {"strategy.orders": 5008})
    assert store.cursor("strategy.orders") == 8  # the failed batch left no rows and no cursor behind
    assert summarize(path)["orders"] == 8


def test_reports_when_order_rests_then_fills_in_parts_then_order_row_follows_latest_report(tmp_path: Path) -> None:
    store = TradeStore(tmp_path / "state.db", SYMBOLS)
    orders = np.zeros(1, ORDER)
    orders[0] = (1, 0, 0, 0, 6_000_000, 100_000, 0, 0, 0, 0, 1, SIDE_BUY, ORDER_LIMIT, TIF_GTC, CMD_NEW, 0)
    reports = np.zeros(3, EXEC_REPORT)
    for k, (status, size, cum) in enumerate([(STATUS_NEW, 0, 0), (STATUS_PARTIALLY_FILLED, 40_000, 40_000),
                                              (STATUS_FILLED, 60_000, 100_000)]):
        reports[k]["exec_id"] = k + 1
        reports[k]["order_id"] = 1
        reports[k]["side"] = SIDE_BUY
        reports[k]["status"] = status
        reports[k]["price"] = 6_000_000 if size else 0
        reports[k]["size"] = size
        reports[k]["cum_filled"] = cum
        reports[k]["cum_notional"] = cum * 6_000_000
        reports[k]["position"] = cum
        reports[k]["entry_notional"] = cum * 6_000_000
        reports[k]["mid_x2"] = 12_000_100
    store.write_batch(orders, reports[:2], {})
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT status, filled FROM orders").fetchone() == ("PARTIALLY_FILLED", 0.4)
    store.write_batch(orders[:0], reports[2:], {})
    store.write_batch(orders[:0], reports[1:2], {})  # a stale report replayed: never moves the state back
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT status, filled, avg_price, last_exec_id FROM orders").fetchone() == (
            "FILLED", 1.0, 60000.0, 3)
        position, entry, mark, unrealized = db.execute(
            "SELECT position, entry_price, mark_price, unrealized_pnl FROM positions").fetchone()
        assert (position, entry, mark) == (1.0, 60000.0, 60000.5)
        assert unrealized == pytest.approx(0.5)
