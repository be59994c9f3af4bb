"""The persistence process: copies orders and execution reports out of their block rings, commits them with
the ring cursors in one SQLite transaction, then releases the slots (see ``hft.persistence.store``)."""

from __future__ import annotations

import time

import numpy as np

from hft.persistence.store import StoreError, TradeStore
from procs.common import WorkerContext, worker_main
from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_COMMITS,
    C_ERRORS,
    C_MSGS_IN,
    C_ROWS_ORDERS,
    C_ROWS_TRADES,
    counter_add,
    heartbeat,
    hist_record,
)
from shm_layout.layout import EXECUTIONS, ORDERS, PROC_PERSISTENCE
from shm_layout.ring import ring_peek, ring_release, ring_tail

H_EXEC_TO_COMMIT = 0  # execution report published -> its row committed
H_COMMIT = 1  # duration of one transaction


def run(ctx: WorkerContext) -> int:
    cfg = ctx.config.persistence
    pipeline = ctx.pipeline
    orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
    order_consumer = orders.consumer_index("persistence")
    exec_consumer = executions.consumer_index("persistence")
    symbols = [(s.name, s.price_decimals, s.size_decimals) for s in ctx.config.symbols]
    try:
        store = TradeStore(cfg.db_path, symbols, run_id=pipeline.control.generation)
    except StoreError as exc:
        ctx.log.error("%s", exc)
        return 2
    order_buffer = np.zeros(cfg.batch_size, orders.record_dtype)
    exec_buffer = np.zeros(cfg.batch_size, executions.record_dtype)
    block = ctx.proc_words
    flush_s = cfg.flush_ms / 1000.0
    ring_peek(orders.ctrl, orders.slots, order_consumer, order_buffer, 0)  # compile before reporting ready
    ring_peek(executions.ctrl, executions.slots, exec_consumer, exec_buffer, 0)
    ctx.mark_running()
    ctx.log.info("persistence running: %s", cfg.db_path)
    try:
        while True:
            stopping = ctx.stop_reached() or ctx.should_exit()
            n_orders = ring_peek(orders.ctrl, orders.slots, order_consumer, order_buffer, cfg.batch_size)
            n_execs = ring_peek(executions.ctrl, executions.slots, exec_consumer, exec_buffer, cfg.batch_size)
            heartbeat(block, monotonic_ns())
            if n_orders == 0 and n_execs == 0:
                if stopping:
                    break
                time.sleep(flush_s)
                continue
            order_cursor = ring_tail(orders.ctrl, order_consumer) + n_orders
            exec_cursor = ring_tail(executions.ctrl, exec_consumer) + n_execs
            started = monotonic_ns()
            try:
                rows_orders, rows_trades = store.write_batch(
                    order_buffer[:n_orders], exec_buffer[:n_execs], {ORDERS: order_cursor, EXECUTIONS: exec_cursor}
                )
            except StoreError as exc:
                counter_add(block, C_ERRORS, 1)
                ctx.log.error("%s: stopping; unwritten records stay in the rings", exc)
                return 2
            committed = monotonic_ns()
            # durable: only now may the producers reuse these slots
            ring_release(orders.ctrl, order_consumer, order_cursor)
            ring_release(executions.ctrl, exec_consumer, exec_cursor)
            counter_add(block, C_MSGS_IN, n_orders + n_execs)
            counter_add(block, C_ROWS_ORDERS, rows_orders)
            counter_add(block, C_ROWS_TRADES, rows_trades)
            counter_add(block, C_COMMITS, 1)
            hist_record(block, H_COMMIT, committed - started)
            for k in range(n_execs):
                hist_record(block, H_EXEC_TO_COMMIT, committed - int(exec_buffer[k]["ts_init"]))
            if n_orders < cfg.batch_size and n_execs < cfg.batch_size and not stopping:
                time.sleep(flush_s)  # batch up: at most flush_ms between commits
    finally:
        store.close()
    ctx.log.info("persistence stopped: %s", cfg.db_path)
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_PERSISTENCE, config_raw, parent_pid, run)
