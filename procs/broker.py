"""The broker process: wires ``hft.broker.loop`` to strategy.orders, md.events, md.snapshot and
broker.executions, with the fill simulator's parameters from ``[broker]``."""

from __future__ import annotations

import numpy as np

from hft.broker.accounting import N_ACCOUNT
from hft.broker.loop import broker_loop
from hft.broker.matching import (
    FILL_MODELS,
    N_P,
    P_ADVERSE_X100,
    P_CANCEL_SHARE_PPM,
    P_CLOCK_FALLBACK,
    P_FILL_MODEL,
    P_LATENCY_NS,
    P_MAKER_FEE,
    P_SEED,
    P_TAKER_FEE,
    P_TOUCH_PROB_PPM,
    new_state,
    seed_random,
)
from hft.config import Config
from hft.feed.book import DEFAULT_DEPTH_CAPACITY
from hft.runtime import LOOP_ABORTED, LOOP_STOPPED
from procs.common import LOOP_SLICE_NS, WorkerContext, worker_main
from shm_layout.counters import C_BOOK_REBUILDS, W_COUNTERS
from shm_layout.layout import EXECUTIONS, MD_EVENTS, ORDERS, PROC_BROKER
from shm_layout.records import BOOK_SNAPSHOT, MD_EVENT

MD_BATCH = 4096


def broker_params(config: Config) -> np.ndarray:
    """The simulator's int64 parameter vector (fees and shares as integers: the kernels stay in fixed point)."""
    cfg = config.broker
    params = np.zeros(N_P, np.int64)
    params[P_LATENCY_NS] = cfg.entry_latency_us * 1_000
    params[P_TAKER_FEE] = round(cfg.taker_fee_bps * 100)
    params[P_MAKER_FEE] = round(cfg.maker_fee_bps * 100)
    params[P_ADVERSE_X100] = round(cfg.adverse_selection_bps * 100)
    params[P_CANCEL_SHARE_PPM] = round(cfg.queue_cancel_share * 1_000_000)
    params[P_FILL_MODEL] = FILL_MODELS[cfg.fill_model]
    params[P_TOUCH_PROB_PPM] = round(cfg.touch_fill_probability * 1_000_000)
    # a lock-step replay must not depend on this machine's clock: orders arrive by market data alone
    lockstep = config.source.kind == "replay" and config.source.lockstep
    params[P_CLOCK_FALLBACK] = 0 if lockstep else 1
    params[P_SEED] = cfg.random_seed
    return params


def run(ctx: WorkerContext) -> int:
    pipeline = ctx.pipeline
    orders, executions, md = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS], pipeline.rings[MD_EVENTS]
    order_consumer = orders.consumer_index("broker")
    md_consumer = md.consumer_index("broker")
    strategy_md_consumer = md.consumer_index("strategy")
    symbols = pipeline.control.symbols
    n_symbols = len(symbols)
    grid = np.stack([symbols["tick_size"], symbols["lot_size"]], axis=1).astype(np.int64)
    account = np.zeros((n_symbols, N_ACCOUNT), np.int64)
    prices = np.zeros((n_symbols, 2, DEFAULT_DEPTH_CAPACITY), np.int64)
    sizes = np.zeros((n_symbols, 2, DEFAULT_DEPTH_CAPACITY), np.int64)
    counts = np.zeros((n_symbols, 2), np.int64)
    table, state, out = new_state(ctx.config.broker.max_open_orders)
    params = broker_params(ctx.config)
    seed_random(int(params[P_SEED]))
    md_batch = np.zeros(MD_BATCH, MD_EVENT)
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    cfg = ctx.config.broker
    ctx.log.info(
        "broker running: %s fills, entry latency %d us, taker %.2f bps, maker %.2f bps, adverse %.2f bps%s",
        cfg.fill_model, cfg.entry_latency_us, cfg.taker_fee_bps, cfg.maker_fee_bps, cfg.adverse_selection_bps,
        "" if params[P_CLOCK_FALLBACK] else " (lock step: market data alone decides arrivals)",
    )
    rebuilds = 0
    first_pass = True
    while not ctx.should_exit():
        if not first_pass:
            ctx.mark_running()
        status = broker_loop(
            orders.ctrl, orders.slots, order_consumer, md.ctrl, md.slots, md_consumer, strategy_md_consumer,
            md_batch, pipeline.snapshots.words, snapshot, snapshot.view(np.int64), executions.ctrl,
            executions.slots, ctx.control_words, ctx.stop_index, ctx.stage, ctx.abort_index, ctx.proc_words,
            table, state, params, grid, out, account, prices, sizes, counts, ctx.wait_strategy,
            0 if first_pass else LOOP_SLICE_NS,  # the first pass only compiles
        )
        first_pass = False
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
