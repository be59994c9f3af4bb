"""The strategy process: wires ``hft.strategy`` (the configured strategies' callbacks, the engine, risk) to
md.snapshot, md.events, strategy.orders and broker.executions. The jitted loop returns to Python only every
``LOOP_SLICE_NS`` for housekeeping, when a strategy's model hook must run, or when a callback raised (that
instance is halted, its orders cancelled, and the others carry on)."""

from __future__ import annotations

import time

import msgspec
import numpy as np

from hft.broker.recovery import latest_per_symbol
from hft.control import ReloadRisk
from hft.risk.config import build_limits
from hft.risk.engine import make_risk_state, risk_mark_stale, risk_on_execution
from hft.runtime import LOOP_NEED_MODEL, LOOP_STOPPED
from hft.strategy.context import Outlet
from hft.strategy.engine import E_CLOCK, new_io
from hft.strategy.loader import StrategyError
from hft.strategy.runtime import StrategyRuntime, plan_instances, risk_reason_counters
from hft.strategy.snapshot import publish_snapshot, take_snapshot
from procs.common import LOOP_SLICE_NS, WorkerContext, worker_main
from shm_layout.atomics import load_acquire
from shm_layout.counters import C_LOST, C_OVERRUNS, PSTATES_DOWN, W_COUNTERS, W_STATE
from shm_layout.layout import (
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_FEED,
    PROC_STRATEGY,
    W_STRATEGIES_READY,
    W_STRATEGY_STATE,
)
from shm_layout.records import STATUS_FILLED, STRATEGY_STATE_BYTES
from shm_layout.ring import CONSUMER_WORDS, W_CONSUMERS, W_LOST, W_OVERRUNS

MD_BATCH = 1024
EXEC_BATCH = 256


def apply_risk_reload(ctx: WorkerContext, message: ReloadRisk, risk_limits: np.ndarray) -> None:
    """New [risk] limits, in place: the jitted loop reads the same array on its next order."""
    fresh = build_limits(message.risk, [(s.price_decimals, s.size_decimals) for s in ctx.config.symbols])
    if fresh.shape != risk_limits.shape:
        ctx.log.error("reload: the new limits do not fit the running layout %s: ignored", risk_limits.shape)
        return
    risk_limits[:] = fresh
    ctx.log.info("risk limits reloaded: %s", msgspec.json.encode(message.risk).decode())
    ctx.send_event("risk-reloaded")


def restore_positions(ctx: WorkerContext, runtime: StrategyRuntime, risk: tuple) -> list[str]:
    """A restarted strategy takes each symbol's position from the broker's newest report still in
    broker.executions (its truth), for its own view and for risk. A first start finds none."""
    reports = ctx.pipeline.rings[EXECUTIONS].history("exec_id")
    latest = latest_per_symbol(reports, len(ctx.config.symbols))
    runtime.restore_account(latest)
    for symbol, report in latest.items():
        risk_on_execution(*risk, symbol, STATUS_FILLED, 0, int(report["price"]), int(report["position"]),
                          int(report["entry_notional"]), int(report["realized_pnl"]), runtime.clock)
    return [ctx.config.symbols[symbol].name for symbol in latest]


def wait_for_strategies(ctx: WorkerContext) -> bool:
    """Wait until the supervisor compiled the strategies (it starts this process meanwhile, so imports and
    the engine's own code load in parallel); False if told to leave first."""
    waited = False
    while load_acquire(ctx.control_words, W_STRATEGIES_READY) == 0:
        if ctx.should_exit():
            return False
        if not waited:
            ctx.log.info("waiting for the supervisor to compile the strategies")
            waited = True
        time.sleep(0.005)
    return True


def run(ctx: WorkerContext) -> int:
    pipeline = ctx.pipeline
    config = ctx.config
    md, orders, executions = (pipeline.rings[name] for name in (MD_EVENTS, ORDERS, EXECUTIONS))
    if not wait_for_strategies(ctx):
        return 0
    try:
        instances = plan_instances(config, ctx.log)  # compiled by the supervisor: loaded from numba's cache
    except StrategyError as exc:
        ctx.log.error("%s", exc)
        return 2
    risk_limits = build_limits(config.risk, [(s.price_decimals, s.size_decimals) for s in config.symbols])
    risk_state, risk_fstate = make_risk_state(risk_limits)
    risk = (risk_limits, risk_state, risk_fstate)
    outlet = Outlet(orders.ctrl, orders.slots, ctx.control_words, ctx.proc_words, risk_limits, risk_state,
                    risk_fstate, risk_reason_counters(), ctx.kill_index, ctx.abort_index, ctx.wait_strategy)
    clock_fallback = not (config.source.kind == "replay" and config.source.lockstep)
    with ctx.warming("strategy engine"):
        try:
            runtime = StrategyRuntime(config.symbols, instances, outlet, pipeline.snapshots.words, risk,
                                      ctx.proc_words, config.strategy, clock_fallback, ctx.log)
        except StrategyError as exc:
            ctx.log.error("%s", exc)
            return 2
        io = new_io(md, executions, md.consumer_index("strategy"), executions.consumer_index("strategy"),
                    ctx.control_words, ctx.proc_words, ctx.stop_index, ctx.stage, ctx.wait_strategy, MD_BATCH,
                    EXEC_BATCH)
        loop = runtime.loop_entry()  # compiled once for every strategy (function pointers), cached
        runtime.compile_entries(everything=ctx.warm_only)
    if ctx.warm_only:
        return 0
    restored = restore_positions(ctx, runtime, risk)
    if restored:
        ctx.log.warning("restarted: positions of %s restored from the broker's latest reports; the broker "
                        "cancelled the orders of the previous life", ", ".join(restored))
    runtime.start()
    feed_block = pipeline.control.process_words(PROC_FEED)
    feed_was_down = False
    ctx.log.info("strategy running: %d symbols, %d instance(s), md consumer %d", len(config.symbols),
                 len(instances), md.consumer_index("strategy"))
    snapshot_every_ns = config.strategy.snapshot_interval_ms * 1_000_000
    next_snapshot = 0.0
    first_pass = True
    proc_words = ctx.proc_words
    md_words = W_CONSUMERS + md.consumer_index("strategy") * CONSUMER_WORDS  # this consumer's words in md.ctrl
    while not ctx.should_exit():
        if not first_pass:
            ctx.mark_running()
        try:
            status = loop(runtime.engine.ref, io.ref, runtime.strategies,
                          0 if first_pass else LOOP_SLICE_NS)  # the first pass only warms (nothing flows yet)
        except Exception as exc:  # a strategy's callback raised: halt that instance; anything else is a bug
            if not runtime.fault(exc):
                raise
            continue
        if status == LOOP_NEED_MODEL:
            runtime.answer_models()
            continue
        first_pass = False
        for message in ctx.control_messages():
            if isinstance(message, ReloadRisk):
                apply_risk_reload(ctx, message, risk_limits)
        feed_down = int(feed_block[W_STATE]) in PSTATES_DOWN
        if feed_down and not feed_was_down:
            risk_mark_stale(risk_limits, risk_state)
            ctx.log.warning("the feed died: stale-data breaker tripped on every symbol until data flows again")
        feed_was_down = feed_down
        now = time.monotonic()
        if now >= next_snapshot or status == LOOP_STOPPED:
            next_snapshot = now + snapshot_every_ns / 1e9
            if publish_snapshot(ctx.control_words, W_STRATEGY_STATE, take_snapshot(runtime)) < 0:
                ctx.log.warning("strategy snapshot larger than %d bytes: not published", STRATEGY_STATE_BYTES)
        # mirror this consumer's overrun counts (kept by the ring) into the process counters for stats
        proc_words[W_COUNTERS + C_OVERRUNS] = md.ctrl[md_words + W_OVERRUNS]
        proc_words[W_COUNTERS + C_LOST] = md.ctrl[md_words + W_LOST]
        if status == LOOP_STOPPED:
            break
    ctx.log.info("strategy stopped at venue time %d", int(runtime.engine.words[E_CLOCK]))
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_STRATEGY, config_raw, parent_pid, run)
