"""The broker process: wires ``hft.broker.loop`` to strategy.orders, md.snapshot and broker.executions."""

from __future__ import annotations

import numpy as np

from hft.broker.accounting import N_ACCOUNT
from hft.broker.loop import broker_loop
from hft.runtime import LOOP_ABORTED, LOOP_STOPPED
from procs.common import LOOP_SLICE_NS, WorkerContext, worker_main
from shm_layout.layout import EXECUTIONS, ORDERS, PROC_BROKER
from shm_layout.records import BOOK_SNAPSHOT


def run(ctx: WorkerContext) -> int:
    pipeline = ctx.pipeline
    orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
    order_consumer = orders.consumer_index("broker")
    n_symbols = len(ctx.config.symbols)
    account = np.zeros((n_symbols, N_ACCOUNT), np.int64)
    fee_bps_x100 = round(ctx.config.broker.taker_fee_bps * 100)
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    ctx.log.info("broker running: taker fee %.2f bps", ctx.config.broker.taker_fee_bps)
    first_pass = True
    while not ctx.should_exit():
        if not first_pass:
            ctx.mark_running()
        status = broker_loop(
            orders.ctrl, orders.slots, order_consumer, pipeline.snapshots.words, n_symbols, snapshot,
            snapshot.view(np.int64), executions.ctrl, executions.slots, ctx.control_words, ctx.stop_index,
            ctx.stage, ctx.abort_index, ctx.proc_words, account, fee_bps_x100, ctx.wait_strategy,
            0 if first_pass else LOOP_SLICE_NS,  # the first pass only compiles
        )
        first_pass = False
        if status == LOOP_STOPPED:
            break
        if status == LOOP_ABORTED:
            ctx.log.error("aborted while broker.executions was full")
            return 2
    ctx.log.info("broker stopped")
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_BROKER, config_raw, parent_pid, run)
