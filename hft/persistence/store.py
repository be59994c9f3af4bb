"""SQLite store for orders and trades: WAL mode, one transaction per batch, ring cursors in the same commit.

Exactly-once groundwork: the persistence process copies records out of the rings *without* releasing them,
commits the rows together with the new ring cursors (table ``ring_cursors``), and only then releases the
slots. After a crash, records above the committed cursor are still in the ring and are written again; rows
are keyed by ``(run_id, id)`` with ``INSERT OR IGNORE`` so a replay of the last batch can never duplicate a row.

Order and execution ids restart at 1 with every pipeline run (they are ring sequence numbers), so every row
carries the run's id (the shared memory's generation): a second run into the same database adds its rows next
to the first run's instead of colliding with them.

Prices and sizes are stored both as the exact fixed-point integers of the hot path (``*_fp``) and as REAL
for people and tools (converted here, at the edge).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import numpy as np

from shm_layout.records import SIDE_BUY, STATUS_FILLED, STATUS_PARTIALLY_FILLED

SCHEMA_VERSION = 2  # 2: rows keyed by (run_id, id)

PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer; one fsync per checkpoint, not per commit
    "PRAGMA synchronous=NORMAL",  # durable at checkpoints; a power cut may lose the last commits, a crash won't
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",  # 64 MiB page cache
    "PRAGMA mmap_size=268435456",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER NOT NULL PRIMARY KEY,
        applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )""",
    """CREATE TABLE IF NOT EXISTS orders (
        run_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
        order_type INTEGER NOT NULL,
        tif INTEGER NOT NULL,
        price REAL NOT NULL,
        size REAL NOT NULL,
        price_fp INTEGER NOT NULL,
        size_fp INTEGER NOT NULL,
        strategy_id INTEGER NOT NULL,
        ts_tick_recv INTEGER NOT NULL,
        ts_init INTEGER NOT NULL,
        md_cursor INTEGER NOT NULL,
        PRIMARY KEY (run_id, order_id)
    )""",
    """CREATE TABLE IF NOT EXISTS trades (
        run_id INTEGER NOT NULL,
        exec_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
        price REAL NOT NULL,
        size REAL NOT NULL,
        fee REAL NOT NULL,
        realized_pnl REAL NOT NULL,
        position REAL NOT NULL,
        price_fp INTEGER NOT NULL,
        size_fp INTEGER NOT NULL,
        fee_fp INTEGER NOT NULL,
        realized_pnl_fp INTEGER NOT NULL,
        position_fp INTEGER NOT NULL,
        liquidity INTEGER NOT NULL,
        ts_tick_recv INTEGER NOT NULL,
        ts_order_init INTEGER NOT NULL,
        ts_init INTEGER NOT NULL,
        PRIMARY KEY (run_id, exec_id)
    )""",
    """CREATE TABLE IF NOT EXISTS rejections (
        run_id INTEGER NOT NULL,
        exec_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        reason INTEGER NOT NULL,
        ts_init INTEGER NOT NULL,
        PRIMARY KEY (run_id, exec_id)
    )""",
    """CREATE TABLE IF NOT EXISTS ring_cursors (
        run_id INTEGER NOT NULL,
        ring TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (run_id, ring)
    )""",
    "CREATE INDEX IF NOT EXISTS idx_trades_symbol_ts ON trades (symbol, ts_init)",
    "CREATE INDEX IF NOT EXISTS idx_trades_order ON trades (order_id)",
    "CREATE INDEX IF NOT EXISTS idx_orders_symbol_ts ON orders (symbol, ts_init)",
)


class StoreError(RuntimeError):
    """The database cannot be opened or written (read-only, full, corrupt): the process stops cleanly."""


class TradeStore:
    """One SQLite connection owned by the persistence process."""

    def __init__(
        self, path: str | os.PathLike[str], symbols: list[tuple[str, int, int]], run_id: int = 0
    ) -> None:
        """Open (creating) the database; ``symbols[i] = (name, price_decimals, size_decimals)``; rows of this
        run carry ``run_id``."""
        self.path = Path(path)
        self.run_id = run_id
        self.names = [name for name, _, _ in symbols]
        self.price_scale = np.array([10.0**-pd for _, pd, _ in symbols])
        self.size_scale = np.array([10.0**-sd for _, _, sd in symbols])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in PRAGMAS:
                self.db.execute(pragma)
            mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode})")
            self.db.execute("BEGIN")
            self.db.execute(SCHEMA[0])
            versions = {row[0] for row in self.db.execute("SELECT version FROM schema_version")}
            if versions and SCHEMA_VERSION not in versions:
                self.db.execute("ROLLBACK")
                raise StoreError(f"{self.path} has schema version {max(versions)}, this build writes "
                                 f"{SCHEMA_VERSION}: use another persistence.db_path")
            for statement in SCHEMA:
                self.db.execute(statement)
            self.db.execute("INSERT OR IGNORE INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            self.db.execute("INSERT OR IGNORE INTO runs (run_id) VALUES (?)", (run_id,))
            self.db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc

    def cursor(self, ring: str) -> int:
        """Return the committed cursor of a ring (0 if never committed)."""
        row = self.db.execute(
            "SELECT cursor FROM ring_cursors WHERE run_id = ? AND ring = ?", (self.run_id, ring)
        ).fetchone()
        return int(row[0]) if row else 0

    def _order_rows(self, orders: np.ndarray) -> list[tuple]:
        symbols = orders["symbol_id"]
        prices = orders["price"] * self.price_scale[symbols]
        sizes = orders["size"] * self.size_scale[symbols]
        return [
            (self.run_id, int(o["order_id"]), self.names[s], "BUY" if o["side"] == SIDE_BUY else "SELL",
             int(o["order_type"]), int(o["tif"]), float(p), float(q), int(o["price"]), int(o["size"]),
             int(o["strategy_id"]), int(o["ts_tick_recv"]), int(o["ts_init"]), int(o["md_cursor"]))
            for o, s, p, q in zip(orders, symbols.tolist(), prices.tolist(), sizes.tolist(), strict=True)
        ]

    def _trade_rows(self, reports: np.ndarray) -> tuple[list[tuple], list[tuple]]:
        filled = (reports["status"] == STATUS_FILLED) | (reports["status"] == STATUS_PARTIALLY_FILLED)
        fills = reports[filled]
        symbols = fills["symbol_id"]
        price_scale = self.price_scale[symbols]
        size_scale = self.size_scale[symbols]
        money_scale = price_scale * size_scale
        trades = [
            (self.run_id, int(r["exec_id"]), int(r["order_id"]), self.names[s],
             "BUY" if r["side"] == SIDE_BUY else "SELL",
             float(r["price"] * ps), float(r["size"] * ss), float(r["fee"] * ms), float(r["realized_pnl"] * ms),
             float(r["position"] * ss), int(r["price"]), int(r["size"]), int(r["fee"]), int(r["realized_pnl"]),
             int(r["position"]), int(r["liquidity"]), int(r["ts_tick_recv"]), int(r["ts_order_init"]),
             int(r["ts_init"]))
            for r, s, ps, ss, ms in zip(fills, symbols.tolist(), price_scale.tolist(), size_scale.tolist(),
                                        money_scale.tolist(), strict=True)
        ]
        rejected = reports[~filled]
        rejections = [
            (self.run_id, int(r["exec_id"]), int(r["order_id"]),
             self.names[r["symbol_id"]] if 0 <= r["symbol_id"] < len(self.names) else "?",
             int(r["reason"]), int(r["ts_init"]))
            for r in rejected
        ]
        return trades, rejections

    def write_batch(self, orders: np.ndarray, reports: np.ndarray, cursors: dict[str, int]) -> tuple[int, int]:
        """Insert a batch and the new ring cursors in ONE transaction; return (order rows, trade rows)."""
        order_rows = self._order_rows(orders)
        trade_rows, rejection_rows = self._trade_rows(reports)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", order_rows)
            self.db.executemany(
                "INSERT OR IGNORE INTO trades VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", trade_rows
            )
            self.db.executemany("INSERT OR IGNORE INTO rejections VALUES (?,?,?,?,?,?)", rejection_rows)
            self.db.executemany(
                "INSERT INTO ring_cursors (run_id, ring, cursor) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, ring) DO UPDATE SET cursor = excluded.cursor",
                [(self.run_id, ring, cursor) for ring, cursor in cursors.items()],
            )
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: write failed: {exc}") from exc
        return len(order_rows), len(trade_rows)

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


def summarize(path: str | os.PathLike[str], run_id: int | None = None) -> dict[str, object]:
    """Read one run's totals from the database (read-only; default: the latest run)."""
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        if run_id is None:
            latest = db.execute("SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()
            run_id = latest[0] if latest else -1
        orders = db.execute("SELECT COUNT(*) FROM orders WHERE run_id = ?", (run_id,)).fetchone()[0]
        trades = db.execute("SELECT COUNT(*) FROM trades WHERE run_id = ?", (run_id,)).fetchone()[0]
        rejections = db.execute("SELECT COUNT(*) FROM rejections WHERE run_id = ?", (run_id,)).fetchone()[0]
        per_symbol = {
            symbol: {"realized_pnl": pnl, "position": position, "fees": fees}
            for symbol, pnl, position, fees in db.execute(
                "SELECT t.symbol, t.realized_pnl, t.position, "
                "(SELECT SUM(fee) FROM trades f WHERE f.run_id = t.run_id AND f.symbol = t.symbol) FROM trades t "
                "WHERE t.run_id = ? AND t.exec_id = "
                "(SELECT MAX(exec_id) FROM trades u WHERE u.run_id = t.run_id AND u.symbol = t.symbol)",
                (run_id,),
            )
        }
    finally:
        db.close()
    return {"run_id": run_id, "orders": orders, "trades": trades, "rejections": rejections, "symbols": per_symbol}
