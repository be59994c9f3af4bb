"""The strategy's main loop, entirely in numba: drain executions and market data in batches, evaluate the
signal per complete frame, check the position limit and the kill switch, publish orders.

It knows arrays, not processes: ``procs/strategy.py`` maps the shared memory and hands the arrays in. The
loop returns to Python every ``max_run_ns`` (housekeeping: parent liveness) or when its stop stage is reached
and its input ring is drained.

Per-symbol integer state (``state[sym, S_*]``): the position confirmed by the broker's execution reports, the
signed size of the order in flight (one at a time per symbol), its id, when the holding period ends, and the
last snapshot sequence evaluated.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hft.risk.engine import RISK_OK, risk_check, risk_on_execution, risk_on_market, risk_on_order_sent
from hft.runtime import LOOP_CONTINUE, LOOP_NEED_MODEL, claim_waiting, idle_pass
from hft.strategy.features import update_window_features
from hft.strategy.kernels import on_book, on_trade
from hft.strategy.rules import ACTION_FLAT, evaluate_rules, rule_signal
from hft.strategy.signal import decayed_direction, imbalance_signal
from shm_layout.atomics import load_relaxed, monotonic_ns
from shm_layout.counters import (
    C_ERRORS,
    C_MSGS_IN,
    C_MSGS_OUT,
    C_ORDERS,
    C_RISK_REJECTS,
    C_SEQLOCK_READS,
    C_SEQLOCK_RETRIES,
    C_SIGNALS,
    C_TICKS,
    counter_add,
    hist_record,
)
from shm_layout.records import (
    BOOK_SYNCED,
    CMD_NEW,
    EV_TRADE,
    FLAG_LAST_IN_FRAME,
    ORDER_IOC,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    TIF_GTD,
    TIF_IOC,
)
from shm_layout.ring import ring_commit, ring_read, ring_read_hold, ring_release, ring_tail
from shm_layout.seqlock import seqlock_read

PERCENT = 100.0
GENERATOR_IMBALANCE = 0  # the seed's order-book-imbalance rules (hft.strategy.signal)
GENERATOR_RULES = 1  # rules from the config over the feature kernels' outputs (hft.strategy.rules)
GENERATOR_ONNX = 2  # an ONNX model run by the process in Python (hft.strategy.model): the loop hands the tick over
GENERATORS = {"imbalance": GENERATOR_IMBALANCE, "rules": GENERATOR_RULES, "onnx": GENERATOR_ONNX}
EVAL_DONE = 0
EVAL_NEED_MODEL = 1  # the tick is ready (features updated) and waits for the model's decision
P_SYMBOL = 0  # pending[]: the tick handed to the model
P_TS_RECV = 1
P_MD_CURSOR = 2
S_POSITION = 0
S_PENDING = 1
S_OPEN_ORDER_ID = 2
S_HOLD_UNTIL_NS = 3
S_LAST_SNAPSHOT_SEQ = 4
S_ORDER_SIZE = 5  # lots per order (config: order_fraction * max_position)
S_MAX_POSITION = 6  # lots
S_STRATEGY_ID = 7  # the strategy instance that trades the symbol (1-based; orders carry it)
S_SIGNAL_DIRECTION = 8  # direction of the persisting imbalance signal (for its decay)
S_SIGNAL_SINCE_NS = 9  # venue time it first fired in that direction
S_ORDER_KIND = 10  # ORDER_KIND_*: how the strategy's orders meet the market (config: strategy.order_type)
S_ORDER_TTL_NS = 11  # limit/post-only orders are GTD: they expire this long after the decision
N_STATE = 12

ORDER_KIND_MARKET = 0  # MARKET (IOC): walks the book
ORDER_KIND_IOC = 1  # IOC limit at the far touch: takes what the touch offers, never worse
ORDER_KIND_LIMIT = 2  # GTD limit joining our own touch: rests and fills by queue position
ORDER_KIND_POST_ONLY = 3  # the same, but rejected rather than taking liquidity
ORDER_KINDS = {"market": ORDER_KIND_MARKET, "ioc": ORDER_KIND_IOC, "limit": ORDER_KIND_LIMIT,
               "post_only": ORDER_KIND_POST_ONLY}

H_TICK_TO_ORDER = 0  # frame received by the feed -> order on the ring
H_MD_HOP = 1  # event published by the feed -> read here


SNAPSHOT_MAX_RETRIES = 1000


@njit(cache=True)
def _apply_executions(
    executions: np.ndarray, n: int, state: np.ndarray, risk_limits: np.ndarray, risk_state: np.ndarray,
    risk_fstate: np.ndarray, clock: np.ndarray, proc: np.ndarray, reason_counters: np.ndarray,
) -> None:
    for k in range(n):
        report = executions[k]
        symbol = report.symbol_id
        # a breaker tripped here shows as denials of that reason on the next orders
        risk_on_execution(
            risk_limits, risk_state, risk_fstate, symbol, report.status, report.reason, report.price, report.position,
            report.entry_notional, report.realized_pnl, clock[0],
        )
        if symbol < 0 or symbol >= state.shape[0]:
            continue
        if report.order_id != state[symbol, S_OPEN_ORDER_ID]:
            # a report for an order of an earlier strategy life: the position is still the broker's truth
            if report.status == STATUS_FILLED or report.status == STATUS_PARTIALLY_FILLED:
                state[symbol, S_POSITION] = report.position
            continue
        if report.status == STATUS_FILLED or report.status == STATUS_PARTIALLY_FILLED:
            state[symbol, S_POSITION] = report.position
            state[symbol, S_PENDING] -= report.size * report.side
        if report.status != STATUS_NEW and report.leaves == 0:
            # filled, cancelled, rejected or expired: the symbol is free for the next decision
            state[symbol, S_PENDING] = 0
            state[symbol, S_OPEN_ORDER_ID] = 0


@njit(cache=True)
def _publish_order(
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    symbol: int,
    side: int,
    size: int,
    book: np.void,
    state: np.ndarray,
    ts_tick_recv: int,
    md_cursor: int,
    control_words: np.ndarray,
    abort_index: int,
    proc: np.ndarray,
    wait_strategy: int,
) -> int:
    """Claim one slot (waiting on a full ring until aborted), fill it, publish; return the order id or 0.

    The order carries the venue time and md.events cursor of the decision: the broker makes it arrive
    ``entry_latency`` later in the same market-data sequence (``hft.broker.matching``)."""
    seq = claim_waiting(order_ctrl, 1, control_words, abort_index, proc, wait_strategy)
    if seq < 0:
        return 0
    slot = order_slots[seq & (order_slots.shape[0] - 1)]
    order_id = seq + 1  # the ring's head only grows, across strategy restarts too: ids are unique
    kind = state[symbol, S_ORDER_KIND]
    far_touch = book.ask_price if side == SIDE_BUY else book.bid_price
    near_touch = book.bid_price if side == SIDE_BUY else book.ask_price
    slot.order_id = order_id
    slot.ts_tick_recv = ts_tick_recv
    slot.ts_exch = book.ts_exch
    slot.size = size
    slot.md_cursor = md_cursor
    slot.target_order_id = 0
    slot.symbol_id = symbol
    slot.side = side
    slot.command = CMD_NEW
    slot.strategy_id = state[symbol, S_STRATEGY_ID]
    if kind in (ORDER_KIND_LIMIT, ORDER_KIND_POST_ONLY):
        slot.order_type = ORDER_LIMIT if kind == ORDER_KIND_LIMIT else ORDER_POST_ONLY
        slot.tif = TIF_GTD
        slot.price = near_touch
        slot.expire_ts = book.ts_exch + state[symbol, S_ORDER_TTL_NS]
    else:
        slot.order_type = ORDER_IOC if kind == ORDER_KIND_IOC else ORDER_MARKET
        slot.tif = TIF_IOC
        slot.price = far_touch  # a market order's price is the touch the strategy saw (for the record)
        slot.expire_ts = 0
    ts_init = monotonic_ns()
    slot.ts_init = ts_init
    ring_commit(order_ctrl, seq + 1)
    hist_record(proc, H_TICK_TO_ORDER, ts_init - ts_tick_recv)
    counter_add(proc, C_ORDERS, 1)
    counter_add(proc, C_MSGS_OUT, 1)
    return order_id


@njit(cache=True)
def _evaluate(
    symbol: int,
    ts_recv: int,
    snap_words: np.ndarray,
    snapshot: np.ndarray,
    snapshot_words: np.ndarray,
    state: np.ndarray,
    params: np.ndarray,
    window_ns: int,
    sample_ts: np.ndarray,
    sample_logmid: np.ndarray,
    cursor: np.ndarray,
    accum: np.ndarray,
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    md_cursor: int,
    control_words: np.ndarray,
    kill_index: int,
    abort_index: int,
    proc: np.ndarray,
    wait_strategy: int,
    risk_limits: np.ndarray,
    risk_state: np.ndarray,
    risk_fstate: np.ndarray,
    clock: np.ndarray,
    reason_counters: np.ndarray,
    generators: np.ndarray,
    kparams: np.ndarray,
    kints: np.ndarray,
    kaccs: np.ndarray,
    kbook_ts: np.ndarray,
    kbook_f: np.ndarray,
    ktrades: np.ndarray,
    kbuckets: np.ndarray,
    features: np.ndarray,
    rule_program: np.ndarray,
    rule_consts: np.ndarray,
    rule_starts: np.ndarray,
    rule_actions: np.ndarray,
    rule_stack: np.ndarray,
    rule_holding: np.ndarray,
    rule_ranges: np.ndarray,
) -> int:
    retries = seqlock_read(snap_words, symbol, snapshot_words, SNAPSHOT_MAX_RETRIES)
    counter_add(proc, C_SEQLOCK_READS, 1)
    if retries < 0:
        counter_add(proc, C_SEQLOCK_RETRIES, SNAPSHOT_MAX_RETRIES)
        counter_add(proc, C_ERRORS, 1)
        return EVAL_DONE
    if retries > 0:
        counter_add(proc, C_SEQLOCK_RETRIES, retries)
    book = snapshot[0]
    if book.status != BOOK_SYNCED or book.bid_price <= 0 or book.ask_price <= book.bid_price:
        return EVAL_DONE
    if book.seq == state[symbol, S_LAST_SNAPSHOT_SEQ]:
        return EVAL_DONE  # a trade-only frame: the book did not change
    state[symbol, S_LAST_SNAPSHOT_SEQ] = book.seq
    counter_add(proc, C_TICKS, 1)
    log_return, realized_vol = update_window_features(
        symbol, book.ts_exch, math.log(float(book.mid_x2)), window_ns, sample_ts, sample_logmid, cursor, accum
    )
    momentum = PERCENT * log_return  # the signal takes returns in percent (see hft.strategy.signal)
    volatility = PERCENT * realized_vol
    on_book(symbol, book, kparams, kints, kaccs, kbook_ts, kbook_f, ktrades, kbuckets, features)
    if book.ts_exch > clock[0]:
        clock[0] = book.ts_exch  # the decision clock: the latest venue time seen on any symbol
    risk_on_market(risk_limits, risk_state, risk_fstate, symbol, book.mid_x2 // 2, clock[0])
    if state[symbol, S_OPEN_ORDER_ID] != 0:
        return EVAL_DONE  # one order in flight per symbol: wait for its execution report
    generator = generators[symbol]  # the generator of the instance that trades this symbol (-1: none)
    if generator < 0:
        return EVAL_DONE
    if generator == GENERATOR_ONNX:
        return EVAL_NEED_MODEL
    flatten = False
    if generator == GENERATOR_RULES:
        first, last = rule_ranges[symbol, 0], rule_ranges[symbol, 1]  # this instance's rules
        action = evaluate_rules(rule_program, rule_consts, rule_starts[first : last + 1], rule_actions[first:last],
                                features[symbol], rule_stack)
        flatten = action == ACTION_FLAT
        direction, _strength, _confidence, holding_ms = rule_signal(action, rule_holding[symbol])
    else:
        direction, strength, _confidence, holding_ms = imbalance_signal(book.imbalance, momentum, volatility, params)
        if direction != state[symbol, S_SIGNAL_DIRECTION]:
            state[symbol, S_SIGNAL_DIRECTION] = direction
            state[symbol, S_SIGNAL_SINCE_NS] = book.ts_exch
        position = state[symbol, S_POSITION]
        if position == 0 or (position > 0) == (direction > 0):  # a reversal is never decayed away
            age_ms = (book.ts_exch - state[symbol, S_SIGNAL_SINCE_NS]) / 1e6
            direction = decayed_direction(direction, strength, age_ms, params)
    _act(symbol, direction, holding_ms, flatten, snapshot, ts_recv, md_cursor, state, order_ctrl, order_slots,
         control_words, kill_index, abort_index, proc, wait_strategy, risk_limits, risk_state, risk_fstate, clock,
         reason_counters)
    return EVAL_DONE


@njit(cache=True)
def _act(
    symbol: int,
    direction: int,
    holding_ms: float,
    flatten: bool,
    snapshot: np.ndarray,
    ts_recv: int,
    md_cursor: int,
    state: np.ndarray,
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    control_words: np.ndarray,
    kill_index: int,
    abort_index: int,
    proc: np.ndarray,
    wait_strategy: int,
    risk_limits: np.ndarray,
    risk_state: np.ndarray,
    risk_fstate: np.ndarray,
    clock: np.ndarray,
    reason_counters: np.ndarray,
) -> None:
    """Turn a generator's decision on the tick in ``snapshot`` into an order: sizing, holding, risk, publish."""
    book = snapshot[0]
    position = state[symbol, S_POSITION]
    now = book.ts_exch  # decisions run on the venue's clock: a replay decides exactly as the live run did
    quantity = 0
    if direction != 0:
        counter_add(proc, C_SIGNALS, 1)
        target = direction * state[symbol, S_ORDER_SIZE]
        if position == 0 or (position > 0) != (direction > 0):
            quantity = target - position  # open, or close and reverse
        state[symbol, S_HOLD_UNTIL_NS] = now + int(holding_ms * 1e6)
    elif position != 0 and (flatten or now >= state[symbol, S_HOLD_UNTIL_NS]):
        quantity = -position  # a "flat" rule fired, or the holding period is over: flatten
    if quantity == 0:
        return
    kill = load_relaxed(control_words, kill_index)
    if kill != 0 and position != 0 and (position > 0) != (quantity > 0) and abs(quantity) > abs(position):
        quantity = -position  # kill switch is reduce-only: a reversal becomes a flattening order
    side = SIDE_BUY if quantity > 0 else SIDE_SELL
    touch = book.ask_price if side == SIDE_BUY else book.bid_price
    reason = risk_check(risk_limits, risk_state, risk_fstate, symbol, side, abs(quantity), touch, clock[0], kill,
                        position)
    if reason != RISK_OK:
        counter_add(proc, C_RISK_REJECTS, 1)
        counter_add(proc, reason_counters[reason], 1)
        return
    order_id = _publish_order(
        order_ctrl, order_slots, symbol, side, abs(quantity), book, state, ts_recv, md_cursor, control_words,
        abort_index, proc, wait_strategy,
    )
    if order_id != 0:
        risk_on_order_sent(risk_limits, risk_state, clock[0])
        state[symbol, S_PENDING] = quantity
        state[symbol, S_OPEN_ORDER_ID] = order_id




@njit(cache=True)
def act_on_model(
    symbol: int,
    direction: int,
    holding_ms: float,
    snapshot: np.ndarray,
    pending: np.ndarray,
    state: np.ndarray,
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    control_words: np.ndarray,
    kill_index: int,
    abort_index: int,
    proc: np.ndarray,
    wait_strategy: int,
    risk_limits: np.ndarray,
    risk_state: np.ndarray,
    risk_fstate: np.ndarray,
    clock: np.ndarray,
    reason_counters: np.ndarray,
) -> None:
    """Act on the model's decision for the tick ``strategy_loop`` handed over (``LOOP_NEED_MODEL``)."""
    _act(symbol, direction, holding_ms, False, snapshot, pending[P_TS_RECV], pending[P_MD_CURSOR], state,
         order_ctrl, order_slots, control_words, kill_index, abort_index, proc, wait_strategy, risk_limits,
         risk_state, risk_fstate, clock, reason_counters)


@njit(cache=True)
def strategy_loop(
    md_ctrl: np.ndarray,
    md_slots: np.ndarray,
    md_consumer: int,
    md_batch: np.ndarray,
    snap_words: np.ndarray,
    snapshot: np.ndarray,
    snapshot_words: np.ndarray,
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    exec_ctrl: np.ndarray,
    exec_slots: np.ndarray,
    exec_consumer: int,
    exec_batch: np.ndarray,
    control_words: np.ndarray,
    stop_index: int,
    my_stage: int,
    kill_index: int,
    abort_index: int,
    proc: np.ndarray,
    state: np.ndarray,
    params: np.ndarray,
    window_ns: int,
    sample_ts: np.ndarray,
    sample_logmid: np.ndarray,
    cursor: np.ndarray,
    accum: np.ndarray,
    wait_strategy: int,
    max_run_ns: int,
    risk_limits: np.ndarray,
    risk_state: np.ndarray,
    risk_fstate: np.ndarray,
    clock: np.ndarray,
    reason_counters: np.ndarray,
    generators: np.ndarray,
    kparams: np.ndarray,
    kints: np.ndarray,
    kaccs: np.ndarray,
    kbook_ts: np.ndarray,
    kbook_f: np.ndarray,
    ktrades: np.ndarray,
    kbuckets: np.ndarray,
    features: np.ndarray,
    rule_program: np.ndarray,
    rule_consts: np.ndarray,
    rule_starts: np.ndarray,
    rule_actions: np.ndarray,
    rule_stack: np.ndarray,
    rule_holding: np.ndarray,
    rule_ranges: np.ndarray,
    pending: np.ndarray,
) -> int:
    """Run until ``max_run_ns`` passed (LOOP_TIMEOUT) or the stop stage came and md.events is drained."""
    deadline = monotonic_ns() + max_run_ns
    idle_rounds = 0
    while True:
        # Market data first, executions second: an execution published before a frame (a lock-step replay
        # guarantees that) is then always applied before that frame is evaluated.
        n_md = ring_read_hold(md_ctrl, md_slots, md_consumer, md_batch, md_batch.shape[0])
        n_exec = ring_read(exec_ctrl, exec_slots, exec_consumer, exec_batch, exec_batch.shape[0])
        if n_exec > 0:
            _apply_executions(exec_batch, n_exec, state, risk_limits, risk_state, risk_fstate, clock, proc,
                              reason_counters)
        if n_md > 0:
            counter_add(proc, C_MSGS_IN, n_md)
            now = monotonic_ns()
            md_start = ring_tail(md_ctrl, md_consumer)
            for k in range(n_md):
                event = md_batch[k]
                if event.kind == EV_TRADE and 0 <= event.symbol_id < state.shape[0]:
                    on_trade(event.symbol_id, event.ts_exch, event.price, event.size, event.side, kparams, kints,
                             kaccs, kbook_ts, kbook_f, ktrades, kbuckets, features)
                if event.flags & FLAG_LAST_IN_FRAME:
                    md_cursor = md_start + k + 1  # the market state a decision on this frame saw
                    hist_record(proc, H_MD_HOP, now - event.ts_init)
                    verdict = _evaluate(
                        event.symbol_id, event.ts_recv, snap_words, snapshot, snapshot_words, state, params,
                        window_ns, sample_ts, sample_logmid, cursor, accum, order_ctrl, order_slots, md_cursor,
                        control_words, kill_index, abort_index, proc, wait_strategy, risk_limits, risk_state,
                        risk_fstate, clock, reason_counters, generators, kparams, kints, kaccs, kbook_ts, kbook_f,
                        ktrades, kbuckets, features, rule_program, rule_consts, rule_starts, rule_actions,
                        rule_stack, rule_holding, rule_ranges,
                    )
                    if verdict == EVAL_NEED_MODEL:
                        # hand the tick to the model in Python; events after it stay unreleased for the next call
                        pending[P_SYMBOL] = event.symbol_id
                        pending[P_TS_RECV] = event.ts_recv
                        pending[P_MD_CURSOR] = md_cursor
                        ring_release(md_ctrl, md_consumer, pending[P_MD_CURSOR])
                        return LOOP_NEED_MODEL
            # processed, not just copied: the cursor a lock-step replay feed waits on
            ring_release(md_ctrl, md_consumer, md_start + n_md)
        if n_md == 0 and n_exec == 0:
            status = idle_pass(proc, control_words, stop_index, my_stage, deadline, wait_strategy, idle_rounds)
            if status != LOOP_CONTINUE:
                return status
            idle_rounds += 1
        else:
            idle_rounds = 0
