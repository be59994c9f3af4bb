"""The broker process: wires ``hft.broker.loop`` to strategy.orders, md.events, md.snapshot and
broker.executions, with the fill simulator's parameters from ``[broker]``."""

from __future__ import annotations

import numpy as np

from hft.broker.loop import broker_loop, publish_reports, rebuild_books
from hft.broker.matching import (
    P_CLOCK_FALLBACK,
    P_SEED,
    ST_MD_POS,
    ST_N_OUT,
    ST_VENUE_NOW,
    cancel_held,
    seed_random,
)
from hft.broker.params import broker_params
from hft.broker.recovery import cancellation_reports, orphaned_orders, restore_account
from hft.broker.state import BrokerBook, BrokerWiring, new_broker_io, new_broker_state
from hft.runtime import LOOP_ABORTED, LOOP_STOPPED
from procs.common import LOOP_SLICE_NS, WorkerContext, worker_main
from shm_layout.counters import (
    C_BOOK_REBUILDS,
    PSTATES_DOWN,
    W_COUNTERS,
    W_RESTARTS,
    W_STATE,
)
from shm_layout.layout import EXECUTIONS, MD_EVENTS, ORDERS, PROC_BROKER, PROC_STRATEGY
from shm_layout.records import CMD_NEW, REASON_BROKER_RESTART, REASON_STRATEGY_DOWN
from shm_layout.ring import ring_release, ring_tail

MD_BATCH = 4096


def recover(ctx: WorkerContext, book: BrokerBook, io: BrokerWiring) -> None:
    """A restarted broker: positions from the newest reports, a final report for every order and cancel command
    the dead broker held, books rebuilt from the snapshots and md.events resumed at the strategy's cursor. A
    first start finds empty rings and does nothing (``hft.broker.recovery``)."""
    pipeline = ctx.pipeline
    orders, executions, md = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS], pipeline.rings[MD_EVENTS]
    reports = executions.history("exec_id")
    taken_until = ring_tail(orders.ctrl, orders.consumer_index("broker"))
    md_consumer, strategy_md = md.consumer_index("broker"), md.consumer_index("strategy")
    if len(reports) == 0 and taken_until == 0 and ring_tail(md.ctrl, md_consumer) == 0:
        return
    symbols = restore_account(book.account, reports)
    lost, previous = orphaned_orders(orders.history("order_id"), taken_until, reports)
    venue_ts = int(reports["ts_exch"].max()) if len(reports) else 0
    out = book.out
    finals = cancellation_reports(lost, previous, book.account, REASON_BROKER_RESTART, venue_ts, out.dtype)
    for start in range(0, len(finals), len(out)):
        chunk = finals[start:start + len(out)]
        out[: len(chunk)] = chunk
        book.state[ST_N_OUT] = len(chunk)
        publish_reports(book.ref, io.ref)
    # the dead broker's book is gone: start again from the feed's latest top levels, at the strategy's cursor
    resume_at = ring_tail(md.ctrl, strategy_md)
    ring_release(md.ctrl, md_consumer, resume_at)
    book.state[ST_MD_POS] = resume_at
    rebuild_books(book.ref, io.ref)
    commands = int(np.count_nonzero(lost["command"] != CMD_NEW)) if len(lost) else 0
    ctx.log.warning("restarted: positions of %d symbols restored from the reports, %d orders the dead broker "
                    "held ended CANCELLED and %d cancel commands DONE (BROKER_RESTART), books rebuilt from the "
                    "snapshots' top levels, md.events resumed at %d", len(symbols), len(finals) - commands,
                    commands, resume_at)


def cancel_for_dead_strategy(book: BrokerBook, io: BrokerWiring) -> int:
    """The strategy died: end every order it had here (``REASON_STRATEGY_DOWN``) and publish the reports."""
    if not publish_reports(book.ref, io.ref):
        return 0
    cancelled = cancel_held(book.ref, REASON_STRATEGY_DOWN, int(book.state[ST_VENUE_NOW]), 0)
    publish_reports(book.ref, io.ref)
    return cancelled


def run(ctx: WorkerContext) -> int:
    pipeline = ctx.pipeline
    orders, executions, md = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS], pipeline.rings[MD_EVENTS]
    symbols = pipeline.control.symbols
    grid = np.stack([symbols["tick_size"], symbols["lot_size"]], axis=1).astype(np.int64)
    params = broker_params(ctx.config)
    book = new_broker_state(len(symbols), grid, params, ctx.config.broker.max_open_orders)
    io = new_broker_io(
        order_ctrl=orders.ctrl, order_slots=orders.slots, order_consumer=orders.consumer_index("broker"),
        md_ctrl=md.ctrl, md_slots=md.slots, md_consumer=md.consumer_index("broker"),
        strategy_md_consumer=md.consumer_index("strategy"), snap_words=pipeline.snapshots.words,
        exec_ctrl=executions.ctrl, exec_slots=executions.slots, control_words=ctx.control_words,
        stop_index=ctx.stop_index, stage=ctx.stage, abort_index=ctx.abort_index, proc=ctx.proc_words,
        wait_strategy=ctx.wait_strategy, md_batch_size=MD_BATCH,
    )
    seed_random(int(params[P_SEED]))
    cfg = ctx.config.broker
    ctx.log.info(
        "broker running: %s fills, entry latency %d us, taker %.2f bps, maker %.2f bps, adverse %.2f bps%s",
        cfg.fill_model, cfg.entry_latency_us, cfg.taker_fee_bps, cfg.maker_fee_bps, cfg.adverse_selection_bps,
        "" if params[P_CLOCK_FALLBACK] else " (lock step: market data alone decides arrivals)",
    )
    recover(ctx, book, io)
    strategy_block = pipeline.control.process_words(PROC_STRATEGY)
    handled_death = -1  # the strategy's restart count whose death we already answered
    rebuilds = 0
    with ctx.warming("broker loop and fill simulator"):
        status = broker_loop(book.ref, io.ref, 0)  # the first pass only compiles: nothing flows before we run
    if ctx.warm_only:
        return 0
    while not ctx.should_exit():
        ctx.mark_running()
        status = broker_loop(book.ref, io.ref, LOOP_SLICE_NS)
        strategy_state = int(strategy_block[W_STATE])
        if strategy_state in PSTATES_DOWN and handled_death != int(strategy_block[W_RESTARTS]):
            handled_death = int(strategy_block[W_RESTARTS])
            cancelled = cancel_for_dead_strategy(book, io)
            ctx.log.warning("the strategy died: %d of its orders cancelled (STRATEGY_DOWN)", cancelled)
        now_rebuilds = int(ctx.proc_words[W_COUNTERS + C_BOOK_REBUILDS])
        if now_rebuilds != rebuilds:
            ctx.log.warning("lapped on md.events: books rebuilt from the snapshots' top levels (%d times so far)",
                            now_rebuilds)
            rebuilds = now_rebuilds
        if status == LOOP_STOPPED:
            break
        if status == LOOP_ABORTED:
            ctx.log.error("aborted while broker.executions was full")
            return 2
    ctx.log.info("broker stopped")
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_BROKER, config_raw, parent_pid, run)
