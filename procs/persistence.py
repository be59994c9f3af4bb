"""The persistence process: copies orders and execution reports out of their block rings, commits them with
the ring cursors in one SQLite transaction, then releases the slots (see ``hft.persistence.store``).

Restart: the rings keep every unreleased record and the database holds the committed cursors. A restarted
process first releases the rings up to the committed cursors (it may have died between COMMIT and release),
then continues: nothing is lost and nothing is written twice.

Besides the batches it writes, every ``metrics_interval_ms``, a performance sample (PnL marked to the
seqlock mids, Sharpe, drawdown, win rate) and, when the strategy published a new one, the strategy's state.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import msgspec
import numpy as np

from hft.persistence.metrics import performance
from hft.persistence.spool import (
    DRAIN_BUDGET_S,
    FailoverStore,
    Spool,
    leftover_spools,
    replay,
    spool_path,
)
from hft.persistence.store import StoreBase, StoreError, TradeStore
from procs.common import WorkerContext, worker_main
from shm_layout.atomics import load_acquire, monotonic_ns
from shm_layout.counters import (
    C_COMMITS,
    C_ERRORS,
    C_METRICS_SKIPPED,
    C_MSGS_IN,
    C_ROWS_ORDERS,
    C_ROWS_TRADES,
    C_SPOOL_AGE_MS,
    C_SPOOL_PENDING,
    C_SPOOL_REPLAYED,
    C_SPOOLED,
    C_STORE_FAILOVERS,
    W_COUNTERS,
    counter_add,
    heartbeat,
    hist_record,
)
from shm_layout.layout import EXECUTIONS, ORDERS, PROC_PERSISTENCE, W_STRATEGIES_READY, W_STRATEGY_STATE
from shm_layout.records import BOOK_SNAPSHOT, STRATEGY_STATE_BYTES
from shm_layout.ring import ring_available, ring_peek, ring_release, ring_tail
from shm_layout.seqlock import blob_read, seqlock_read

H_EXEC_TO_COMMIT = 0  # execution report published -> its row committed
H_COMMIT = 1  # duration of one transaction
FINAL_DRAIN_S = 5.0


def reports_ready(reports: np.ndarray, n: int, order_cursor: int) -> int:
    """How many leading reports can be written now: those whose order (id = ring sequence + 1) is below
    ``order_cursor``, i.e. already committed or in this batch. The rest wait for their order's row."""
    if n == 0:
        return 0
    late = np.flatnonzero(reports["order_id"][:n] > order_cursor)
    return int(late[0]) if len(late) else n


def pause_after_batch(n_orders: int, n_execs: int, backlog: int, batch: int) -> bool:
    """Sleep ``flush_ms`` after this batch? Only when it was small and little is waiting: the pause batches up
    a slow flow into fewer transactions, but under load it would let the rings fill and stall the broker."""
    return n_orders < batch and n_execs < batch and backlog < batch // 4


class BatchWriter:
    """One pass of the exactly-once loop: peek reports then orders (without releasing them), commit the rows
    and the new cursors in one transaction, then release. ``bench/persistence.py`` measures this same code."""

    def __init__(self, store: StoreBase, orders: object, executions: object, batch: int) -> None:
        self.store = store
        self.orders, self.executions = orders, executions
        self.order_consumer = orders.consumer_index("persistence")
        self.exec_consumer = executions.consumer_index("persistence")
        self.batch = batch
        self.order_buffer = np.zeros(batch, orders.record_dtype)
        self.exec_buffer = np.zeros(batch, executions.record_dtype)
        ring_peek(orders.ctrl, orders.slots, self.order_consumer, self.order_buffer, 0)  # compile now
        ring_peek(executions.ctrl, executions.slots, self.exec_consumer, self.exec_buffer, 0)

    def peek(self) -> tuple[int, int, int]:
        """``(orders, reports, order cursor after them)`` ready to write; reports wait for their order."""
        orders, executions = self.orders, self.executions
        # reports first: their orders were published before them, so the order peek below sees those
        n_execs = ring_peek(executions.ctrl, executions.slots, self.exec_consumer, self.exec_buffer, self.batch)
        n_orders = ring_peek(orders.ctrl, orders.slots, self.order_consumer, self.order_buffer, self.batch)
        order_cursor = ring_tail(orders.ctrl, self.order_consumer) + n_orders
        return n_orders, reports_ready(self.exec_buffer, n_execs, order_cursor), order_cursor

    def commit(self, n_orders: int, n_execs: int, order_cursor: int) -> tuple[int, int]:
        """Write what ``peek`` returned with the cursors, then release it; return (order rows, fill rows)."""
        exec_cursor = ring_tail(self.executions.ctrl, self.exec_consumer) + n_execs
        rows = self.store.write_batch(self.order_buffer[:n_orders], self.exec_buffer[:n_execs],
                                      {ORDERS: order_cursor, EXECUTIONS: exec_cursor})
        # durable: only now may the producers reuse these slots
        ring_release(self.orders.ctrl, self.order_consumer, order_cursor)
        ring_release(self.executions.ctrl, self.exec_consumer, exec_cursor)
        return rows

    def should_pause(self, n_orders: int, n_execs: int) -> bool:
        backlog = max(ring_available(self.orders.ctrl, self.order_consumer),
                      ring_available(self.executions.ctrl, self.exec_consumer))
        return pause_after_batch(n_orders, n_execs, backlog, self.batch)


class Marks:
    """Mids from the seqlock snapshots, for unrealized PnL (persistence reads them, never the hot path)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.words = ctx.pipeline.snapshots.words
        self.snapshot = np.zeros(1, BOOK_SNAPSHOT)
        self.view = self.snapshot.view(np.int64)
        self.n = len(ctx.config.symbols)

    def read(self) -> tuple[list[int], int]:
        """``(mid_x2 per symbol (0: unknown), latest venue time)``."""
        mids, latest = [], 0
        for symbol in range(self.n):
            if seqlock_read(self.words, symbol, self.view, 1000) < 0:
                mids.append(0)
                continue
            book = self.snapshot[0]
            mids.append(int(book["mid_x2"]) if book["bid_price"] > 0 and book["ask_price"] > 0 else 0)
            latest = max(latest, int(book["ts_exch"]))
        return mids, latest


class Periodic:
    """Performance samples and strategy snapshots, each at most every interval."""

    def __init__(self, ctx: WorkerContext, store: StoreBase) -> None:
        self.ctx = ctx
        self.store = store
        self.marks = Marks(ctx)
        self.symbols = ctx.config.symbols
        self.interval_ns = ctx.config.persistence.metrics_interval_ms * 1_000_000
        self.snapshot_interval_ns = ctx.config.strategy.snapshot_interval_ms * 1_000_000
        self.next_metrics = monotonic_ns() + self.interval_ns
        self.next_snapshot = 0
        self.sample_id = store.next_id("performance_metrics", "sample_id")
        self.snapshot_id = store.next_id("strategy_snapshots", "snapshot_id")
        rows = store.metric_history()
        self.ts = [int(r[0]) for r in rows]
        self.equity = [float(r[1]) for r in rows]
        self.blob = np.zeros(STRATEGY_STATE_BYTES // 8, np.int64)
        self.header = np.zeros(3, np.int64)
        self.last_seq = 0

    def due(self, now: int, final: bool = False) -> None:
        if final or now >= self.next_metrics:
            self.next_metrics = now + self.interval_ns
            self.sample()
        if final or now >= self.next_snapshot:
            self.next_snapshot = now + self.snapshot_interval_ns
            self.snapshot()

    def sample(self) -> None:
        mids, venue_ts = self.marks.read()
        closing, realized, fees = self.store.closing_pnls()
        unrealized = 0.0
        for symbol, position_fp, entry_price in self.store.positions():
            spec = self.symbols[symbol]
            if position_fp == 0 or mids[symbol] <= 0 or entry_price is None:
                continue
            size = position_fp * 10.0 ** -spec.size_decimals
            mid = mids[symbol] / 2 * 10.0 ** -spec.price_decimals
            unrealized += size * (mid - entry_price)
        if venue_ts <= 0:
            if not self.ts:
                return  # no market yet: a sample would put the curve's start at the epoch
            venue_ts = self.ts[-1]
        self.ts.append(venue_ts)
        self.equity.append(realized + unrealized)
        result = performance(np.array(self.equity), np.array(self.ts, np.int64), closing, realized, unrealized, fees)
        self.store.write_metrics(self.sample_id, venue_ts, msgspec.structs.asdict(result))
        self.sample_id += 1

    def snapshot(self) -> None:
        if blob_read(self.ctx.control_words, W_STRATEGY_STATE, self.blob, self.header, 1000) < 0:
            return
        seq, length, ts = (int(v) for v in self.header)
        if seq == 0 or seq == self.last_seq:
            return
        self.last_seq = seq
        self.store.write_snapshot(self.snapshot_id, ts, self.blob.view(np.uint8)[:length].tobytes())
        self.snapshot_id += 1


def resume_cursors(ctx: WorkerContext, store: StoreBase, rings: dict[str, tuple[object, int]]) -> None:
    """Release every ring up to its committed cursor: this process may have died between COMMIT and release."""
    for name, (ring, consumer) in rings.items():
        committed = store.cursor(name)
        tail = ring_tail(ring.ctrl, consumer)
        if committed > tail:
            ctx.log.warning("%s: resuming at committed cursor %d (released only up to %d before a crash)",
                            name, committed, tail)
            ring_release(ring.ctrl, consumer, committed)
        elif committed < tail and isinstance(store, FailoverStore) and store.server_away:
            # only committed records are released, so the server holds them; its cursor cannot be read now
            ctx.log.warning("%s: resuming at the ring's cursor %d (the server holding the committed cursor is "
                            "away; the spool goes on from here)", name, tail)
        elif committed < tail:
            ctx.log.error("%s: ring cursor %d is ahead of the committed %d: records %d..%d were released "
                          "uncommitted", name, tail, committed, committed, tail - 1)
        elif committed:
            ctx.log.info("%s: resuming at committed cursor %d", name, committed)


def open_server_store(ctx: WorkerContext, symbols: list[tuple[str, int, int]], config_json: str) -> FailoverStore:
    """The PostgreSQL store behind its spool; first, spools earlier runs left are replayed into their own runs.

    A first start that cannot reach the server is one clear error (a wrong URL or credentials); a restart of
    this process (the supervisor's) while the server is away goes on into the spool."""
    from hft.persistence.pg import PgTradeStore

    cfg = ctx.config.persistence
    host, instance = cfg.host or socket.gethostname(), ctx.config.instance
    generation = ctx.pipeline.control.generation
    directory = Path(cfg.db_path).parent
    for old_generation, path in leftover_spools(directory, instance, generation):
        old = Spool(path)
        try:
            target = PgTradeStore(cfg.url, symbols, host, instance, old_generation)
        except StoreError as exc:
            ctx.log.warning("spool %s of an earlier run waits for the database (%s)", path, exc)
            old.close(delete_if_empty=False)
            continue
        try:
            batches = replay(old, target)[0]
            ctx.log.info("spool %s of an earlier run replayed: %d batches", path, batches)
        finally:
            target.close()
            old.close()
    spool = Spool(spool_path(directory, instance, generation), cfg.spool_max_mib * 2**20)
    restarted = int(ctx.pipeline.control.process_record(ctx.process)["restarts"]) > 0
    return FailoverStore(lambda: PgTradeStore(cfg.url, symbols, host, instance, generation, config_json),
                         spool, ctx.log, fail_if_unreachable=not restarted)


class SpoolCounters:
    """Drain the spool on every pass and publish its counters and levels (this process's block)."""

    def __init__(self, block: np.ndarray, store: FailoverStore) -> None:
        self.block = block
        self.store = store
        self.seen = (0, 0, 0, 0)

    def drain(self, final: bool) -> None:
        store = self.store
        # at the end of the run, give a server that is back a few seconds to take the whole spool
        rows = store.drain(FINAL_DRAIN_S if final else DRAIN_BUDGET_S)
        counter_add(self.block, C_ROWS_ORDERS, rows[0])
        counter_add(self.block, C_ROWS_TRADES, rows[1])
        now = (store.failovers, store.spooled, store.replayed, store.skipped)
        for counter, before, after in zip(
                (C_STORE_FAILOVERS, C_SPOOLED, C_SPOOL_REPLAYED, C_METRICS_SKIPPED), self.seen, now, strict=True):
            counter_add(self.block, counter, after - before)
        self.seen = now
        spool = store.spool
        self.block[W_COUNTERS + C_SPOOL_PENDING] = spool.pending
        age_ms = (time.time_ns() - spool.oldest_ns) // 1_000_000 if spool.pending else 0
        self.block[W_COUNTERS + C_SPOOL_AGE_MS] = age_ms


def run(ctx: WorkerContext) -> int:
    cfg = ctx.config.persistence
    pipeline = ctx.pipeline
    orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
    symbols = [(s.name, s.price_decimals, s.size_decimals) for s in ctx.config.symbols]
    # started early, like the others; the database is touched only once the strategies compiled (a strategy
    # that does not stops the run before anything is written)
    while load_acquire(ctx.control_words, W_STRATEGIES_READY) == 0:
        if ctx.should_exit():
            return 0
        time.sleep(0.005)
    try:
        config_json = json.dumps(msgspec.to_builtins(ctx.config))
        if cfg.url:
            store = open_server_store(ctx, symbols, config_json)
        else:
            store = TradeStore(cfg.db_path, symbols, run_id=pipeline.control.generation,
                               max_db_bytes=cfg.max_db_mib * 2**20, config_json=config_json)
        periodic = Periodic(ctx, store)
    except StoreError as exc:
        ctx.log.error("%s", exc)
        return 2
    resume_cursors(ctx, store, {ORDERS: (orders, orders.consumer_index("persistence")),
                                EXECUTIONS: (executions, executions.consumer_index("persistence"))})
    writer = BatchWriter(store, orders, executions, cfg.batch_size)
    block = ctx.proc_words
    flush_s = cfg.flush_ms / 1000.0
    ctx.mark_running()
    ctx.log.info("persistence running: %s", store.where)
    spool_counts = SpoolCounters(block, store) if isinstance(store, FailoverStore) else None
    try:
        while True:
            stopping = ctx.stop_reached() or ctx.should_exit()
            if spool_counts is not None:
                spool_counts.drain(final=stopping)
            n_orders, n_execs, order_cursor = writer.peek()
            now = monotonic_ns()
            heartbeat(block, now)
            if n_orders == 0 and n_execs == 0:
                if stopping:
                    periodic.due(now, final=True)
                    break
                periodic.due(now)
                time.sleep(flush_s)
                continue
            started = monotonic_ns()
            rows_orders, rows_trades = writer.commit(n_orders, n_execs, order_cursor)
            committed = monotonic_ns()
            counter_add(block, C_MSGS_IN, n_orders + n_execs)
            counter_add(block, C_ROWS_ORDERS, rows_orders)
            counter_add(block, C_ROWS_TRADES, rows_trades)
            counter_add(block, C_COMMITS, 1)
            hist_record(block, H_COMMIT, committed - started)
            for k in range(n_execs):
                hist_record(block, H_EXEC_TO_COMMIT, committed - int(writer.exec_buffer[k]["ts_init"]))
            periodic.due(committed)
            if not stopping and writer.should_pause(n_orders, n_execs):
                time.sleep(flush_s)  # batch up: at most flush_ms between commits
    except StoreError as exc:
        counter_add(block, C_ERRORS, 1)
        ctx.log.error("%s: stopping; unwritten records stay in the rings", exc)
        return 2
    finally:
        store.close()
    ctx.log.info("persistence stopped: %s", store.where)
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_PERSISTENCE, config_raw, parent_pid, run)
