"""SQLite store: WAL, schema, one transaction per batch with the cursors, idempotent replays, clear errors."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from hft.persistence.store import SCHEMA_VERSION, StoreError, TradeStore, summarize
from shm_layout.records import EXEC_REPORT, ORDER, SIDE_BUY, SIDE_SELL, STATUS_FILLED, STATUS_REJECTED

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
        reports[k]["exec_id"] = start + k
        reports[k]["order_id"] = start + k
        reports[k]["symbol_id"] = k % 2
        reports[k]["side"] = orders[k]["side"]
        reports[k]["status"] = STATUS_FILLED if k % 3 else STATUS_REJECTED
        reports[k]["price"] = 6_000_001
        reports[k]["size"] = 50_000
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
    assert db.execute("SELECT COUNT(*) FROM rejections").fetchone()[0] == 2
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"idx_trades_symbol_ts", "idx_orders_symbol_ts"} <= indexes


def test_write_batch_when_same_batch_replayed_after_crash_then_no_duplicates(tmp_path: Path) -> None:
    store = TradeStore(tmp_path / "b.db", SYMBOLS)
    orders, reports = batch(10)
    store.write_batch(orders[:6], reports[:6], {"strategy.orders": 6})
    store.write_batch(orders, reports, {"strategy.orders": 10})  # records 1..6 read again after a restart
    summary = summarize(tmp_path / "b.db")
    assert summary["orders"] == 10
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
