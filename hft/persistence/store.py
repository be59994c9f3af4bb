"""SQLite store: WAL mode, one transaction per batch, the ring cursors committed in the same transaction.

Exactly once: the persistence process copies records out of the rings *without* releasing them, commits the
rows together with the new ring cursors (table ``ring_cursors``), and only then releases the slots. After a
crash (even between the commit and the release) the restarted process releases up to its committed cursors
first, so records are never written twice; records above the cursors are still in the rings (block policy:
the producers cannot overwrite unreleased slots) and are written then. Rows are also keyed by
``(run_id, id)`` with ``INSERT OR IGNORE``, so even a replayed batch could not duplicate a row.

Order and execution ids restart at 1 with every pipeline run (they are ring sequence numbers), so every row
carries the run's id (the shared memory's generation).

What is written:

* ``orders``: every command; a NEW order's row also holds its latest state (status, filled size, average
  price, last reason), updated from the execution reports in the same transaction. A report is written only
  once its order's row is (``write_batch`` cuts the batch at the first report whose order is not yet read),
  so the update always finds its row.
* ``executions``: every report; ``trades``: a view of the fills; ``positions``: the latest position per symbol.
* ``performance_metrics`` and ``strategy_snapshots``: periodic rows (``write_metrics``, ``write_snapshot``).

Prices and sizes are stored both as the exact fixed-point integers of the hot path (``*_fp``) and as REAL
for people and tools (converted here, at the edge). The seed's own pragmas and schema text were not
available to this project; the pragmas below are chosen and documented instead.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from shm_layout.records import (
    COMMAND_NAMES,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    ORDER_TYPE_NAMES,
    REASON_NAMES,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_NAMES,
    TIF_NAMES,
)

SCHEMA_VERSION = 3  # 2: rows keyed by (run_id, id); 3: executions, positions, snapshots, metrics

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
    # one row per pipeline run; config is the run's configuration as JSON (msgspec)
    """CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        config TEXT NOT NULL DEFAULT '{}'
    )""",
    # No CHECK constraints on the tables written per report: they tripled the insert cost (measured), and
    # the values come from the enum name tables in shm_layout.records, never from input.
    # every command the strategy sent (NEW, CANCEL, CANCEL_ALL) and, for NEW, the order's latest state as the
    # broker's execution reports left it (updated in the same transaction as the reports)
    """CREATE TABLE IF NOT EXISTS orders (
        run_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        command TEXT NOT NULL,  -- NEW, CANCEL, CANCEL_ALL
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,  -- BUY, SELL ('' for a cancel)
        order_type TEXT NOT NULL,
        tif TEXT NOT NULL,
        price REAL NOT NULL,
        size REAL NOT NULL,
        price_fp INTEGER NOT NULL,
        size_fp INTEGER NOT NULL,
        expire_ts INTEGER NOT NULL,
        target_order_id INTEGER NOT NULL,
        strategy_id INTEGER NOT NULL,
        ts_exch INTEGER NOT NULL,
        ts_tick_recv INTEGER NOT NULL,
        ts_init INTEGER NOT NULL,
        md_cursor INTEGER NOT NULL,
        -- PENDING (no report yet), NEW (resting), PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED
        status TEXT NOT NULL DEFAULT 'PENDING',
        reason TEXT NOT NULL DEFAULT '',
        filled REAL NOT NULL DEFAULT 0,
        filled_fp INTEGER NOT NULL DEFAULT 0,
        avg_price REAL,
        last_exec_id INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, order_id)
    ) WITHOUT ROWID""",
    # every execution report, fills or not: the broker's complete audit log
    # every execution report, fills or not: the broker's complete audit log. For a fill, pnl is its change of
    # realized PnL (after its fee) and closed > 0 marks a fill that reduced, closed or flipped a position (the
    # "trades" of win rate and average trade PnL); position, entry_price and realized_pnl are the symbol's after it
    """CREATE TABLE IF NOT EXISTS executions (
        run_id INTEGER NOT NULL,
        exec_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,  -- BUY, SELL
        status TEXT NOT NULL,  -- the order's state after the report (orders.status values)
        reason TEXT NOT NULL,
        liquidity TEXT NOT NULL,  -- MAKER, TAKER ('' without a fill)
        price REAL NOT NULL,
        size REAL NOT NULL,
        leaves REAL NOT NULL,
        fee REAL NOT NULL,
        pnl REAL NOT NULL,
        closed REAL NOT NULL,
        position REAL NOT NULL,
        entry_price REAL,
        realized_pnl REAL NOT NULL,
        price_fp INTEGER NOT NULL,
        size_fp INTEGER NOT NULL,
        leaves_fp INTEGER NOT NULL,
        fee_fp INTEGER NOT NULL,
        pnl_fp INTEGER NOT NULL,
        position_fp INTEGER NOT NULL,
        realized_pnl_fp INTEGER NOT NULL,
        ts_exch INTEGER NOT NULL,
        ts_tick_recv INTEGER NOT NULL,
        ts_order_init INTEGER NOT NULL,
        ts_init INTEGER NOT NULL,
        PRIMARY KEY (run_id, exec_id)
    ) WITHOUT ROWID""",
    # the fills: a view, so a fill is written once (one row per report is what sustains 100k reports/s)
    """CREATE VIEW IF NOT EXISTS trades AS SELECT run_id, exec_id, order_id, symbol, side, liquidity, price, size,
        fee, pnl, closed, position, entry_price, realized_pnl, price_fp, size_fp, fee_fp, pnl_fp, position_fp,
        realized_pnl_fp, ts_exch, ts_tick_recv, ts_order_init, ts_init FROM executions WHERE size_fp > 0""",
    # latest position per symbol: absolute values, so rewriting it after a crash is idempotent
    """CREATE TABLE IF NOT EXISTS positions (
        run_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        position REAL NOT NULL,
        entry_price REAL,
        mark_price REAL,
        realized_pnl REAL NOT NULL,
        unrealized_pnl REAL NOT NULL,
        fees REAL NOT NULL,
        position_fp INTEGER NOT NULL,
        last_exec_id INTEGER NOT NULL,
        ts_exch INTEGER NOT NULL,
        PRIMARY KEY (run_id, symbol)
    )""",
    # strategy state, msgspec-encoded (msgpack) by the strategy process
    """CREATE TABLE IF NOT EXISTS strategy_snapshots (
        run_id INTEGER NOT NULL,
        snapshot_id INTEGER NOT NULL,
        ts_exch INTEGER NOT NULL,
        taken_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        state BLOB NOT NULL,
        PRIMARY KEY (run_id, snapshot_id)
    )""",
    # periodic performance of the whole run, money in the quote currency, marked to mid
    """CREATE TABLE IF NOT EXISTS performance_metrics (
        run_id INTEGER NOT NULL,
        sample_id INTEGER NOT NULL,
        ts_exch INTEGER NOT NULL,
        taken_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        total_pnl REAL NOT NULL,
        realized_pnl REAL NOT NULL,
        unrealized_pnl REAL NOT NULL,
        fees REAL NOT NULL,
        sharpe REAL,
        max_drawdown REAL NOT NULL,
        win_rate REAL,
        avg_trade_pnl REAL,
        trade_count INTEGER NOT NULL,
        PRIMARY KEY (run_id, sample_id)
    )""",
    """CREATE TABLE IF NOT EXISTS ring_cursors (
        run_id INTEGER NOT NULL,
        ring TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        PRIMARY KEY (run_id, ring)
    )""",
    "CREATE INDEX IF NOT EXISTS idx_orders_symbol_ts ON orders (run_id, symbol, ts_init)",
    "CREATE INDEX IF NOT EXISTS idx_executions_order ON executions (run_id, order_id)",
    "CREATE INDEX IF NOT EXISTS idx_executions_symbol_ts ON executions (run_id, symbol, ts_exch)",
    "CREATE INDEX IF NOT EXISTS idx_metrics_ts ON performance_metrics (run_id, ts_exch)",
)


# every table holding a run's rows, the runs row last (a run is removed in this order)
RUN_TABLES = ("orders", "executions", "positions", "performance_metrics", "strategy_snapshots", "ring_cursors", "runs")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(db: str | os.PathLike[str]) -> bool:
    """A ``postgresql://`` URL rather than a SQLite path (without importing the driver: it is an extra)."""
    return str(db).startswith(POSTGRES_SCHEMES)


def connect_postgres(url: str, read_only: bool = False, timeout_s: float = 10.0):  # -> psycopg.Connection
    """Open a connection to ``url`` for a reader (``read_only``: one REPEATABLE READ snapshot until it is closed,
    so every query sees the same rows while pipelines write) or an importer (autocommit). Raise ``StoreError`` in
    one line that never shows the password: the driver is missing, the URL is malformed, the server refuses."""
    try:
        import psycopg

        from hft.persistence.pg import redacted
    except ImportError:
        raise StoreError("a postgresql:// database needs the psycopg driver: pip install 'hft[postgres]'") from None
    try:
        db = psycopg.connect(url, connect_timeout=max(1, int(timeout_s)), autocommit=not read_only)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {redacted(url)}: {_scrubbed(exc, url)}") from None
    if read_only:
        db.read_only = True
        db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return db


def _scrubbed(exc: Exception, url: str) -> str:
    """The first line of a driver's error, with the URL's password (if it appears) masked."""
    from urllib.parse import unquote, urlsplit

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return text


class StoreError(RuntimeError):
    """The database cannot be opened or written (read-only, full, corrupt): the process stops cleanly."""


def _names(table: tuple[str, ...], values: np.ndarray) -> list[str]:
    """Map enum codes to their names (vectorized: this runs for every column of every batch)."""
    names = np.array([*table, "?"], dtype=object)
    codes = values.astype(np.int64)
    return names[np.where((codes >= 0) & (codes < len(table)), codes, len(table))].tolist()


SIDE_NAMES = np.array(["SELL", "", "BUY"], dtype=object)  # indexed by side + 1


def _sides(values: np.ndarray) -> list[str]:
    codes = values.astype(np.int64)
    return SIDE_NAMES[np.where((codes == SIDE_BUY) | (codes == SIDE_SELL), codes + 1, 1)].tolist()


LIQUIDITY_LABELS = {LIQUIDITY_TAKER: "TAKER", LIQUIDITY_MAKER: "MAKER"}


class StoreBase:
    """What every store writes and reads, in SQL both SQLite and PostgreSQL take (``?`` placeholders; a
    PostgreSQL store swaps them for ``%s``). A subclass opens the connection and provides ``_execute``,
    ``_executemany``, ``_fetch_rows``, ``_begin``, ``_commit``, ``_rollback`` and ``_error`` (its driver's error)."""

    run_id: int
    names: list[str]
    price_scale: np.ndarray
    size_scale: np.ndarray
    where: str  # the database, for messages

    def _set_symbols(self, symbols: list[tuple[str, int, int]]) -> None:
        self.names = [name for name, _, _ in symbols]
        self.price_scale = np.array([10.0**-pd for _, pd, _ in symbols])
        self.size_scale = np.array([10.0**-sd for _, _, sd in symbols])

    def _fetchall(self, sql: str, params: tuple = ()) -> list[tuple]:
        """A read; a driver error (a server that went away mid-run) is a ``StoreError`` like a failed write, so
        the failover store counts it and spools instead of the process dying."""
        try:
            return self._fetch_rows(sql, params)
        except self._error as exc:
            raise StoreError(f"{self.where}: read failed: {exc}") from exc

    def _one(self, sql: str, params: tuple) -> tuple | None:
        rows = self._fetchall(sql, params)
        return rows[0] if rows else None

    def cursor(self, ring: str) -> int:
        """Return the committed cursor of a ring (0 if never committed)."""
        row = self._one("SELECT cursor FROM ring_cursors WHERE run_id = ? AND ring = ?", (self.run_id, ring))
        return int(row[0]) if row else 0

    def next_id(self, table: str, column: str) -> int:
        """1 + the largest ``column`` of this run in ``table`` (periodic rows continue after a restart)."""
        row = self._one(f"SELECT MAX({column}) FROM {table} WHERE run_id = ?", (self.run_id,))
        return int(row[0] or 0) + 1 if row else 1

    # -------------------------------------------------------------------------------------------- row builders

    def _order_rows(self, orders: np.ndarray) -> list[tuple]:
        symbols = orders["symbol_id"]
        known = (symbols >= 0) & (symbols < len(self.names))
        safe = np.where(known, symbols, 0)
        prices = (orders["price"] * self.price_scale[safe]).tolist()
        sizes = (orders["size"] * self.size_scale[safe]).tolist()
        names = [self.names[s] if k else "*" for s, k in zip(safe.tolist(), known.tolist(), strict=True)]
        return list(zip(
            [self.run_id] * len(orders), orders["order_id"].tolist(), _names(COMMAND_NAMES, orders["command"]),
            names, _sides(orders["side"]), _names(ORDER_TYPE_NAMES, orders["order_type"]),
            _names(TIF_NAMES, orders["tif"]), prices, sizes, orders["price"].tolist(), orders["size"].tolist(),
            orders["expire_ts"].tolist(), orders["target_order_id"].tolist(), orders["strategy_id"].tolist(),
            orders["ts_exch"].tolist(), orders["ts_tick_recv"].tolist(), orders["ts_init"].tolist(),
            orders["md_cursor"].tolist(), strict=True,
        ))

    def _report_rows(self, reports: np.ndarray) -> tuple[list[tuple], int, list[tuple], list[tuple]]:
        """Return (executions rows, number of fills, order updates, positions) of a batch of reports."""
        n = len(reports)
        symbols = reports["symbol_id"]
        known = (symbols >= 0) & (symbols < len(self.names))
        safe = np.where(known, symbols, 0)
        ps = self.price_scale[safe]
        ss = self.size_scale[safe]
        ms = ps * ss
        names = [self.names[s] if k else "?" for s, k in zip(safe.tolist(), known.tolist(), strict=True)]
        run = [self.run_id] * n
        exec_ids = reports["exec_id"].tolist()
        order_ids = reports["order_id"].tolist()
        sides = _sides(reports["side"])
        statuses = _names(STATUS_NAMES, reports["status"])
        liquidity = [LIQUIDITY_LABELS.get(v, "") for v in reports["liquidity"].tolist()]
        price = (reports["price"] * ps).tolist()
        size = (reports["size"] * ss).tolist()
        fee = (reports["fee"] * ms).tolist()
        ts_exch = reports["ts_exch"].tolist()
        position = reports["position"]
        with np.errstate(divide="ignore", invalid="ignore"):
            entry = np.where(position != 0, reports["entry_notional"] / np.abs(position) * ps, np.nan)
        executions = list(zip(
            run, exec_ids, order_ids, names, sides, statuses, _names(REASON_NAMES, reports["reason"]), liquidity,
            price, size, (reports["leaves"] * ss).tolist(), fee, (reports["fill_pnl"] * ms).tolist(),
            (reports["closed"] * ss).tolist(), (position * ss).tolist(),
            [None if e != e else e for e in entry.tolist()],
            (reports["realized_pnl"] * ms).tolist(), reports["price"].tolist(), reports["size"].tolist(),
            reports["leaves"].tolist(), reports["fee"].tolist(), reports["fill_pnl"].tolist(), position.tolist(),
            reports["realized_pnl"].tolist(), ts_exch, reports["ts_tick_recv"].tolist(),
            reports["ts_order_init"].tolist(), reports["ts_init"].tolist(), strict=True,
        ))
        fills = int(np.count_nonzero((reports["size"] > 0) & known))
        # the latest report per order and per symbol decides its row (absolute values: idempotent)
        _, from_end = np.unique(reports["order_id"][::-1], return_index=True)
        last = n - 1 - from_end
        filled_fp = reports["cum_filled"][last]
        with np.errstate(divide="ignore", invalid="ignore"):
            average = np.where(filled_fp > 0, reports["cum_notional"][last] / filled_fp * ps[last], np.nan)
        last_list = last.tolist()
        updates = list(zip(
            [statuses[i] for i in last_list], _names(REASON_NAMES, reports["reason"][last]),
            (filled_fp * ss[last]).tolist(), filled_fp.tolist(), [None if a != a else a for a in average.tolist()],
            reports["exec_id"][last].tolist(), [self.run_id] * len(last), reports["order_id"][last].tolist(),
            reports["exec_id"][last].tolist(), strict=True,
        ))
        last_of_symbol: dict[int, int] = {}
        for i, (ok, symbol) in enumerate(zip(known.tolist(), symbols.tolist(), strict=True)):
            if ok:
                last_of_symbol[symbol] = i
        positions = []
        for symbol, i in last_of_symbol.items():
            r = reports[i]
            pos = int(r["position"])
            mark = float(r["mid_x2"]) / 2 * float(ps[i]) if r["mid_x2"] > 0 else None
            entry_price = float(r["entry_notional"]) / abs(pos) * float(ps[i]) if pos else None
            unreal = 0.0
            if pos and r["mid_x2"] > 0:
                unreal = (abs(pos) * float(r["mid_x2"]) / 2 - float(r["entry_notional"])) * float(ms[i])
                unreal = unreal if pos > 0 else -unreal
            positions.append((self.run_id, self.names[symbol], pos * float(ss[i]), entry_price, mark,
                              float(r["realized_pnl"]) * float(ms[i]), unreal, float(r["total_fees"]) * float(ms[i]),
                              pos, exec_ids[i], ts_exch[i]))
        return executions, fills, updates, positions

    # -------------------------------------------------------------------------------------------- writes

    def write_batch(self, orders: np.ndarray, reports: np.ndarray, cursors: dict[str, int]) -> tuple[int, int]:
        """Insert a batch and the new ring cursors in ONE transaction; return (order rows, fill rows).

        Every report's order must be in ``orders`` or already written (the caller cuts the batch)."""
        executions, fills, updates, positions = self._report_rows(reports)
        # an order whose report is in this batch is inserted with its state: no UPDATE for it
        pending = {update[7]: update for update in updates}
        order_rows = [
            row + (pending.pop(order_id)[:6] if order_id in pending else NO_REPORT_YET)
            for row, order_id in zip(self._order_rows(orders), orders["order_id"].tolist(), strict=True)
        ]
        updates = list(pending.values())
        try:
            self._begin()
            self._insert_new("orders", ORDER_COLUMNS, order_rows)
            self._insert_new("executions", EXECUTION_COLUMNS, executions)
            self._update_orders(updates)
            self._executemany(
                "INSERT INTO positions (run_id, symbol, position, entry_price, mark_price, realized_pnl, "
                "unrealized_pnl, fees, position_fp, last_exec_id, ts_exch) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (run_id, symbol) DO UPDATE SET position = excluded.position, "
                "entry_price = excluded.entry_price, mark_price = excluded.mark_price, "
                "realized_pnl = excluded.realized_pnl, unrealized_pnl = excluded.unrealized_pnl, "
                "fees = excluded.fees, position_fp = excluded.position_fp, last_exec_id = excluded.last_exec_id, "
                "ts_exch = excluded.ts_exch WHERE excluded.last_exec_id > positions.last_exec_id",
                positions,
            )
            self._write_cursors(cursors)
            self._commit()
        except self._error as exc:
            self._rollback()
            raise StoreError(f"{self.where}: write failed: {exc}{self._hint(exc)}") from exc
        return len(order_rows), fills

    def _insert_new(self, table: str, columns: str, rows: list[tuple]) -> None:
        """Insert ``rows``, skipping any whose key is already there (a replayed batch adds nothing)."""
        self._executemany(f"INSERT INTO {table} ({columns}) VALUES ({_marks(columns)}) ON CONFLICT DO NOTHING", rows)

    def _update_orders(self, updates: list[tuple]) -> None:
        """Set orders' latest state (``ORDER_UPDATE_COLUMNS`` then run_id, order_id, last_exec_id again), never
        back to an older report's."""
        self._executemany(
            "UPDATE orders SET status = ?, reason = ?, filled = ?, filled_fp = ?, avg_price = ?, "
            "last_exec_id = ? WHERE run_id = ? AND order_id = ? AND last_exec_id < ?", updates,
        )

    def _write_cursors(self, cursors: dict[str, int]) -> None:
        self._executemany(
            "INSERT INTO ring_cursors (run_id, ring, cursor) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, ring) DO UPDATE SET cursor = excluded.cursor",
            [(self.run_id, ring, cursor) for ring, cursor in cursors.items()],
        )

    def write_metrics(self, sample_id: int, ts_exch: int, values: dict[str, float | int | None]) -> None:
        """Insert one performance sample (``values``: the performance_metrics columns after ts_exch)."""
        self.write_metrics_many([(sample_id, ts_exch, values)])

    def write_metrics_many(self, samples: list[tuple[int, int, dict[str, float | int | None]]]) -> None:
        """Insert ``(sample_id, ts_exch, values)`` performance samples in one transaction (a backtest's batch)."""
        rows = [(self.run_id, sample_id, ts_exch, v["total_pnl"], v["realized_pnl"], v["unrealized_pnl"], v["fees"],
                 v["sharpe"], v["max_drawdown"], v["win_rate"], v["avg_trade_pnl"], v["trade_count"])
                for sample_id, ts_exch, v in samples]
        try:
            self._begin()
            self._executemany(
                "INSERT INTO performance_metrics (run_id, sample_id, ts_exch, total_pnl, realized_pnl, "
                "unrealized_pnl, fees, sharpe, max_drawdown, win_rate, avg_trade_pnl, trade_count) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows)
            self._commit()
        except self._error as exc:
            self._rollback()
            raise StoreError(f"{self.where}: write failed: {exc}") from exc

    def write_snapshot(self, snapshot_id: int, ts_exch: int, state: bytes) -> None:
        """Insert one strategy snapshot (msgspec-encoded by the strategy process)."""
        try:
            self._begin()
            self._execute("INSERT INTO strategy_snapshots (run_id, snapshot_id, ts_exch, state) VALUES (?,?,?,?) "
                          "ON CONFLICT DO NOTHING", (self.run_id, snapshot_id, ts_exch, state))
            self._commit()
        except self._error as exc:
            self._rollback()
            raise StoreError(f"{self.where}: write failed: {exc}") from exc

    def metric_history(self) -> list[tuple[int, float]]:
        """This run's ``(ts_exch, total_pnl)`` samples in order (a restarted persistence continues the curve)."""
        return [(int(ts), float(pnl)) for ts, pnl in self._fetchall(
            "SELECT ts_exch, total_pnl FROM performance_metrics WHERE run_id = ? ORDER BY sample_id", (self.run_id,))]

    def closing_pnls(self) -> tuple[np.ndarray, float, float]:
        """This run's closing fills' PnL (for win rate), total realized PnL and total fees."""
        pnls = np.array([row[0] for row in self._fetchall(
            "SELECT pnl FROM trades WHERE run_id = ? AND closed > 0 ORDER BY exec_id", (self.run_id,))], float)
        realized, fees = self._one(
            "SELECT COALESCE(SUM(realized_pnl), 0), COALESCE(SUM(fees), 0) FROM positions WHERE run_id = ?",
            (self.run_id,))
        return pnls, float(realized), float(fees)

    def positions(self) -> list[tuple[int, int, int]]:
        """``(symbol index, position_fp, entry notional in money units)`` for marking (from the latest rows)."""
        out = []
        for symbol, position_fp, entry_price in self._fetchall(
                "SELECT symbol, position_fp, entry_price FROM positions WHERE run_id = ?", (self.run_id,)):
            if symbol in self.names:
                out.append((self.names.index(symbol), int(position_fp), entry_price))
        return out

    # -------------------------------------------------------------------------------------------- whole runs
    # (a backtest and a sweep write runs that are not a pipeline's: these serve them on either store)

    def sample_totals(self, sample_id: int) -> tuple[float, float] | None:
        """``(realized_pnl, fees)`` of one of this run's performance samples (None: no such sample)."""
        row = self._one("SELECT realized_pnl, fees FROM performance_metrics WHERE run_id = ? AND sample_id = ?",
                        (self.run_id, sample_id))
        return (float(row[0]), float(row[1])) if row else None

    def update_sample(self, sample_id: int, values: dict[str, float | int | None]) -> None:
        """Overwrite a sample's run-wide figures (``sharpe``, ``max_drawdown``, ``win_rate``, ``avg_trade_pnl``,
        ``trade_count``): a backtest knows them for the whole curve only at its end."""
        try:
            self._begin()
            self._execute(
                "UPDATE performance_metrics SET sharpe = ?, max_drawdown = ?, win_rate = ?, avg_trade_pnl = ?, "
                "trade_count = ? WHERE run_id = ? AND sample_id = ?",
                (values["sharpe"], values["max_drawdown"], values["win_rate"], values["avg_trade_pnl"],
                 values["trade_count"], self.run_id, sample_id))
            self._commit()
        except self._error as exc:
            self._rollback()
            raise StoreError(f"{self.where}: write failed: {exc}") from exc

    def import_rows(self, tables: Iterable[tuple[str, list[tuple]]], started_at: str | None = None) -> int:
        """Insert whole rows of another database's run as this run's, in ONE transaction; return the row count.

        ``tables`` yields ``(table, rows)`` (a table may come several times, in chunks); each row holds every
        column in the schema's order, its first the run_id, which becomes this run's. ``started_at`` keeps the
        original run's start. A sweep merges its tasks' runs so; the runs row is this store's own."""
        count = 0
        try:
            self._begin()
            for table, rows in tables:
                if rows:
                    marks = ",".join("?" * len(rows[0]))
                    self._executemany(f"INSERT INTO {table} VALUES ({marks})",
                                      [(self.run_id, *row[1:]) for row in rows])
                    count += len(rows)
            if started_at is not None:
                self._execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (started_at, self.run_id))
            self._commit()
        except self._error as exc:
            self._rollback()
            raise StoreError(f"{self.where}: write failed: {exc}") from exc
        return count

    def discard_run(self) -> None:
        """Delete every row of this run, its runs row included, in one transaction: a failed backtest (or a
        merge that failed half-way) must not read as a result."""
        self._rollback()
        try:
            self._begin()
            for table in RUN_TABLES:
                self._execute(f"DELETE FROM {table} WHERE run_id = ?", (self.run_id,))
            self._commit()
        except self._error as exc:
            self._rollback()
            raise StoreError(f"{self.where}: could not remove run {self.run_id}: {exc}") from exc


class TradeStore(StoreBase):
    """One SQLite connection owned by the persistence process."""

    def __init__(
        self, path: str | os.PathLike[str], symbols: list[tuple[str, int, int]], run_id: int = 0,
        max_db_bytes: int = 0, config_json: str = "{}", register_run: bool = True,
    ) -> None:
        """Open (creating) the database; ``symbols[i] = (name, price_decimals, size_decimals)``; rows of this
        run carry ``run_id``. ``max_db_bytes`` > 0 caps the file (``max_page_count``): a full database then
        fails a write with a clear error instead of filling the disk."""
        self.path = Path(path)
        self.where = str(self.path)
        self.run_id = run_id
        self._set_symbols(symbols)
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in PRAGMAS:
                self.db.execute(pragma)
            mode = self.db.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: could not switch to WAL mode (got {mode})")
            if max_db_bytes > 0:
                page = self.db.execute("PRAGMA page_size").fetchone()[0]
                self.db.execute(f"PRAGMA max_page_count={max(1, max_db_bytes // page)}")
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(SCHEMA[0])
            versions = {row[0] for row in self.db.execute("SELECT version FROM schema_version")}
            if versions and SCHEMA_VERSION not in versions:
                self.db.execute("ROLLBACK")
                raise StoreError(f"{self.path} has schema version {max(versions)}, this build writes "
                                 f"{SCHEMA_VERSION}: use another persistence.db_path")
            for statement in SCHEMA:
                self.db.execute(statement)
            self.db.execute("INSERT OR IGNORE INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            if register_run:  # (not when only the schema is wanted: a sweep merging runs into the database)
                self.db.execute("INSERT OR IGNORE INTO runs (run_id, config) VALUES (?, ?)", (run_id, config_json))
            self.db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        self._checkpointer = Checkpointer(self.path)
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it, off the write path

    _error = sqlite3.Error

    def _execute(self, sql: str, params: tuple = ()) -> None:
        self.db.execute(sql, params)

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
        self.db.executemany(sql, rows)

    def _fetch_rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    def _begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self.db.execute("COMMIT")

    def _rollback(self) -> None:
        if self.db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")

    def _hint(self, exc: Exception) -> str:
        return _hint(exc)

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close."""
        self._checkpointer.stop()
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


class Checkpointer:
    """Copies the WAL into the database from a thread of its own, so the writer never stalls on it.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages: a pause of tens of
    milliseconds in which the rings into persistence fill and the broker waits (measured in
    ``bench/persistence.py``). A PASSIVE checkpoint on a second connection runs concurrently with the writer
    (sqlite3 releases the GIL while SQLite works) and never blocks it."""

    INTERVAL_S = 0.25

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=100")
        except sqlite3.Error:
            return  # the writer's own close() still checkpoints
        try:
            while not self.stopping.wait(self.INTERVAL_S):
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5.0)


def _hint(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "full" in text:
        return " (the disk, or the cap persistence.max_db_mib, is reached: free space or raise the cap)"
    if "readonly" in text or "read-only" in text:
        return " (the database or its directory is read-only)"
    return ""


def _marks(columns: str) -> str:
    return ",".join("?" * len(columns.split(",")))


ORDER_COLUMNS = ("run_id, order_id, command, symbol, side, order_type, tif, price, size, price_fp, size_fp, "
                 "expire_ts, target_order_id, strategy_id, ts_exch, ts_tick_recv, ts_init, md_cursor, "
                 "status, reason, filled, filled_fp, avg_price, last_exec_id")
NO_REPORT_YET = ("PENDING", "", 0.0, 0, None, 0)
EXECUTION_COLUMNS = ("run_id, exec_id, order_id, symbol, side, status, reason, liquidity, price, size, leaves, fee, "
                     "pnl, closed, position, entry_price, realized_pnl, price_fp, size_fp, leaves_fp, fee_fp, "
                     "pnl_fp, position_fp, realized_pnl_fp, ts_exch, ts_tick_recv, ts_order_init, ts_init")


def summarize(path: str | os.PathLike[str], run_id: int | None = None) -> dict[str, object]:
    """Read one run's totals from the database (read-only; default: the latest run)."""
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        if run_id is None:
            latest = db.execute("SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()
            run_id = latest[0] if latest else -1
        return summarize_run(lambda sql, params: db.execute(sql, params).fetchall(), run_id)
    finally:
        db.close()


def summarize_run(fetch: Callable[[str, tuple], list[tuple]], run_id: int) -> dict[str, object]:
    """One run's totals through ``fetch(sql, params)`` (``?`` placeholders): either store."""
    def count(sql: str) -> int:
        return int(fetch(sql, (run_id,))[0][0])

    per_symbol = {
        symbol: {"realized_pnl": pnl, "position": position, "fees": fees}
        for symbol, pnl, position, fees in fetch(
            "SELECT symbol, realized_pnl, position, fees FROM positions WHERE run_id = ?", (run_id,))
    }
    return {
        "run_id": run_id,
        "orders": count("SELECT COUNT(*) FROM orders WHERE run_id = ? AND command = 'NEW'"),
        "executions": count("SELECT COUNT(*) FROM executions WHERE run_id = ?"),
        "trades": count("SELECT COUNT(*) FROM trades WHERE run_id = ?"),
        "rejections": count("SELECT COUNT(*) FROM executions WHERE run_id = ? AND status = 'REJECTED'"),
        "symbols": per_symbol,
    }
