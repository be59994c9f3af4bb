"""When the database server goes away: a bounded local spool (SQLite) that takes the ring batches, and their
replay into the server, in order and exactly once, when it is back.

Why: persistence releases ring slots only once their records are durable. With the server down and nothing
else to write to, the rings into persistence fill and the broker blocks (block policy). The spool is the
durable place while the server is away, so the broker never stalls on it.

Exactly once, end to end:

* ring -> spool: a batch (the raw ORDER and EXEC_REPORT records) and the ring cursors after it are committed in
  one SQLite transaction (``spool_cursors``), then the slots are released, as with a store.
* spool -> server: the oldest batch is written with ``StoreBase.write_batch`` (rows and the batch's ring
  cursors in one server transaction), then deleted from the spool. If the process dies between the two, the
  batch is found again and skipped: the server's committed cursors already reach the batch's.
* Order: once a batch is in the spool, every later batch goes there too until the spool is empty, so the
  server receives the batches in ring order (a report is always written after its order).

A spool belongs to one run (``spool-<instance>-<generation>.db``): a spool left by an earlier run (the server
never came back before it ended) is replayed into that run's rows when the next run starts.
The spool is capped (``max_bytes``): a full spool fails the write with ``StoreError`` and persistence stops
cleanly (the records stay in the rings), never silently drops a record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hft.persistence.store import StoreBase, StoreError
from shm_layout.records import EXEC_REPORT, ORDER

SPOOL_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS spool (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        orders BLOB NOT NULL,
        reports BLOB NOT NULL,
        cursors TEXT NOT NULL,
        spooled_ns INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS spool_cursors (
        ring TEXT NOT NULL PRIMARY KEY,
        cursor INTEGER NOT NULL
    )""",
)
RETRY_S = 1.0  # how often a lost server is tried again
DRAIN_BUDGET_S = 0.05  # replay at most this long per pass of the persistence loop (new batches keep flowing)


def spool_path(directory: Path, instance: str, generation: int) -> Path:
    return directory / f"spool-{instance}-{generation}.db"


def leftover_spools(directory: Path, instance: str, generation: int) -> list[tuple[int, Path]]:
    """``(generation, path)`` of spools that earlier runs of ``instance`` left behind, oldest first."""
    pattern = re.compile(rf"spool-{re.escape(instance)}-(\d+)\.db$")
    found = []
    for path in directory.glob(f"spool-{instance}-*.db") if directory.is_dir() else []:
        match = pattern.match(path.name)
        if match and int(match.group(1)) != generation:
            found.append((int(match.group(1)), path))
    return sorted(found)


class Spool:
    """The SQLite file of batches waiting for the server."""

    def __init__(self, path: Path, max_bytes: int = 0) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if max_bytes > 0:
                page = self.db.execute("PRAGMA page_size").fetchone()[0]
                self.db.execute(f"PRAGMA max_page_count={max(1, max_bytes // page)}")
            for statement in SPOOL_SCHEMA:
                self.db.execute(statement)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the spool {path}: {exc}") from None
        self._refresh()

    def _refresh(self) -> None:
        count, oldest = self.db.execute("SELECT COUNT(*), MIN(spooled_ns) FROM spool").fetchone()
        self.pending = int(count)
        self.oldest_ns = int(oldest) if oldest is not None else 0

    def append(self, orders: np.ndarray, reports: np.ndarray, cursors: dict[str, int]) -> None:
        """Make a batch durable in the spool with the ring cursors after it (one transaction)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO spool (orders, reports, cursors, spooled_ns) VALUES (?, ?, ?, ?)",
                            (orders.tobytes(), reports.tobytes(), json.dumps(cursors), time.time_ns()))
            self.db.executemany("INSERT INTO spool_cursors (ring, cursor) VALUES (?, ?) ON CONFLICT (ring) "
                                "DO UPDATE SET cursor = excluded.cursor", list(cursors.items()))
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            full = " (the spool is full: persistence.spool_max_mib)" if "full" in str(exc) else ""
            raise StoreError(f"spool {self.path}: write failed: {exc}{full}") from None
        if self.pending == 0:
            self.oldest_ns = time.time_ns()
        self.pending += 1

    def oldest(self) -> tuple[int, np.ndarray, np.ndarray, dict[str, int]] | None:
        row = self.db.execute("SELECT seq, orders, reports, cursors FROM spool ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        seq, orders, reports, cursors = row
        return int(seq), np.frombuffer(orders, ORDER), np.frombuffer(reports, EXEC_REPORT), json.loads(cursors)

    def remove(self, seq: int) -> None:
        self.db.execute("DELETE FROM spool WHERE seq = ?", (seq,))
        self._refresh()

    def cursor(self, ring: str) -> int:
        row = self.db.execute("SELECT cursor FROM spool_cursors WHERE ring = ?", (ring,)).fetchone()
        return int(row[0]) if row else 0

    def close(self, delete_if_empty: bool = True) -> None:
        self.db.close()
        if delete_if_empty and self.pending == 0:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


def replay(spool: Spool, store: StoreBase, deadline: float = float("inf")) -> tuple[int, int, int]:
    """Write the spool's batches into ``store`` in order until it is empty or ``deadline`` (monotonic) passes;
    return (batches, order rows, fill rows) written. Raises ``StoreError`` when the store fails (the batch stays)."""
    batches = order_rows = fill_rows = 0
    while spool.pending and time.monotonic() < deadline:
        head = spool.oldest()
        if head is None:
            break
        seq, orders, reports, cursors = head
        if not all(store.cursor(ring) >= cursor for ring, cursor in cursors.items()):
            rows = store.write_batch(orders, reports, cursors)
            order_rows += rows[0]
            fill_rows += rows[1]
        spool.remove(seq)  # written now, or already before a crash (the server's cursors reach it)
        batches += 1
    return batches, order_rows, fill_rows


class FailoverStore:
    """A server store that falls back to the spool while the server is unreachable; what the persistence loop
    writes through. Reads for the periodic metrics go to the server; while it is away they are skipped."""

    def __init__(self, connect: Callable[[], StoreBase], spool: Spool, log: logging.Logger,
                 fail_if_unreachable: bool = True) -> None:
        self.connect = connect
        self.spool = spool
        self.log = log
        self.primary: StoreBase | None = None
        self.next_retry = 0.0
        self.failovers = self.spooled = self.replayed = self.skipped = 0
        try:
            self.primary = connect()
        except StoreError as exc:
            if fail_if_unreachable and spool.pending == 0:
                spool.close()
                raise  # the first start of a run: a wrong URL or credentials is one clear error
            self._lost(exc)
        self.where = self.primary.where if self.primary is not None else f"spool {spool.path}"
        self.run_id = self.primary.run_id if self.primary is not None else 0

    def _lost(self, exc: Exception) -> None:
        self.failovers += 1
        self.log.warning("database unavailable (%s): spooling to %s until it is back", exc, self.spool.path)
        if self.primary is not None:
            with contextlib.suppress(Exception):
                self.primary.close()
        self.primary = None
        self.next_retry = time.monotonic() + RETRY_S

    # ---------------------------------------------------------------- the batch path

    def write_batch(self, orders: np.ndarray, reports: np.ndarray, cursors: dict[str, int]) -> tuple[int, int]:
        """Into the server when it is there and nothing waits in the spool; else into the spool (0 rows reached
        the database: ``drain`` reports them when they do)."""
        if self.primary is not None and self.spool.pending == 0:
            try:
                return self.primary.write_batch(orders, reports, cursors)
            except StoreError as exc:
                self._lost(exc)
        self.spool.append(orders, reports, cursors)
        self.spooled += 1
        return 0, 0

    def drain(self, budget_s: float = DRAIN_BUDGET_S) -> tuple[int, int]:
        """Reconnect when due and replay spooled batches for at most ``budget_s``; return the (order, fill) rows
        that reached the database."""
        if self.spool.pending == 0:
            return 0, 0
        if self.primary is None:
            if time.monotonic() < self.next_retry:
                return 0, 0
            try:
                self.primary = self.connect()
            except StoreError as exc:
                self.next_retry = time.monotonic() + RETRY_S
                self.log.debug("database still unavailable: %s", exc)
                return 0, 0
            self.run_id = self.primary.run_id
            self.log.info("database back: replaying %d spooled batches", self.spool.pending)
        try:
            batches, order_rows, fill_rows = replay(self.spool, self.primary, time.monotonic() + budget_s)
        except StoreError as exc:
            self._lost(exc)
            return 0, 0
        self.replayed += batches
        if self.spool.pending == 0:
            self.log.info("spool drained: every spooled batch is in the database")
        return order_rows, fill_rows

    def cursor(self, ring: str) -> int:
        return max(self.spool.cursor(ring), self._read("cursor", 0, ring))

    @property
    def server_away(self) -> bool:
        """Whether the server is unreachable now (its committed cursors are then unknown)."""
        return self.primary is None

    # ---------------------------------------------------------------- periodic rows (skipped while away)

    def _read(self, method: str, default: object, *args: object) -> object:
        if self.primary is None:
            return default
        try:
            return getattr(self.primary, method)(*args)
        except StoreError as exc:
            self._lost(exc)
            return default

    def next_id(self, table: str, column: str) -> int:
        return self._read("next_id", 1, table, column)

    def metric_history(self) -> list[tuple[int, float]]:
        return self._read("metric_history", [])

    def closing_pnls(self) -> tuple[np.ndarray, float, float]:
        return self._read("closing_pnls", (np.zeros(0), 0.0, 0.0))

    def positions(self) -> list[tuple[int, int, int]]:
        return self._read("positions", [])

    def write_metrics(self, sample_id: int, ts_exch: int, values: dict[str, float | int | None]) -> None:
        self._write("write_metrics", sample_id, ts_exch, values)

    def write_snapshot(self, snapshot_id: int, ts_exch: int, state: bytes) -> None:
        self._write("write_snapshot", snapshot_id, ts_exch, state)

    def _write(self, method: str, *args: object) -> None:
        # a sample computed while spooled batches wait would miss their fills: skipped, counted
        if self.primary is None or self.spool.pending:
            self.skipped += 1
            return
        try:
            getattr(self.primary, method)(*args)
        except StoreError as exc:
            self.skipped += 1
            self._lost(exc)

    def close(self) -> None:
        if self.primary is not None:
            self.primary.close()
        if self.spool.pending:
            self.log.warning("%d batches remain in the spool %s: the next run replays them",
                             self.spool.pending, self.spool.path)
        self.spool.close()
