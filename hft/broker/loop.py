"""The paper broker's main loop in numba: take orders in batches, fill marketable ones at the touch of the
latest book snapshot, keep positions and PnL, publish one execution report per order.

This walking-skeleton broker fills market orders, and limit orders that cross the touch, in full at the
touch price; anything else is rejected with a reason (resting orders, book walking and queue position come
with the full fill simulator).

Orders are read in place from ``strategy.orders`` (a block ring: the strategy cannot overwrite them) and the
ring is released only after their execution reports are published, so a broker killed mid-batch re-reads
the unreported orders on restart.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_POSITION, K_REALIZED, apply_fill
from hft.runtime import LOOP_ABORTED, LOOP_CONTINUE, claim_waiting, idle_pass
from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_ERRORS,
    C_FILLS,
    C_MSGS_IN,
    C_MSGS_OUT,
    C_ORDERS,
    C_REJECTS,
    C_SEQLOCK_READS,
    C_SEQLOCK_RETRIES,
    counter_add,
    hist_record,
)
from shm_layout.records import (
    BOOK_SYNCED,
    CMD_NEW,
    LIQUIDITY_TAKER,
    ORDER_LIMIT,
    ORDER_MARKET,
    REASON_BAD_ORDER,
    REASON_NO_MARKET,
    REASON_NONE,
    REASON_NOT_MARKETABLE,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_REJECTED,
)
from shm_layout.ring import ring_available, ring_commit, ring_release, ring_tail
from shm_layout.seqlock import seqlock_read

H_ORDER_TO_EXEC = 0  # order on the ring -> execution report on the ring
H_TICK_TO_EXEC = 1  # frame received by the feed -> execution report on the ring



@njit(cache=True)
def _decide(order: np.void, book: np.void, n_symbols: int) -> tuple[int, int]:
    """Return ``(fill_price, reason)``: a price > 0 fills the whole order, else ``reason`` rejects it."""
    if order.command != CMD_NEW or order.size <= 0 or order.symbol_id < 0 or order.symbol_id >= n_symbols:
        return 0, REASON_BAD_ORDER
    if order.side != SIDE_BUY and order.side != SIDE_SELL:
        return 0, REASON_BAD_ORDER
    if book.status != BOOK_SYNCED or book.bid_price <= 0 or book.ask_price <= book.bid_price:
        return 0, REASON_NO_MARKET
    touch = book.ask_price if order.side == SIDE_BUY else book.bid_price
    if order.order_type == ORDER_MARKET:
        return touch, REASON_NONE
    if order.order_type == ORDER_LIMIT:
        crosses = order.price >= touch if order.side == SIDE_BUY else order.price <= touch
        if crosses:
            return touch, REASON_NONE
        return 0, REASON_NOT_MARKETABLE
    return 0, REASON_BAD_ORDER


@njit(cache=True)
def broker_loop(
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    order_consumer: int,
    snap_words: np.ndarray,
    n_symbols: int,
    snapshot: np.ndarray,
    snapshot_words: np.ndarray,
    exec_ctrl: np.ndarray,
    exec_slots: np.ndarray,
    control_words: np.ndarray,
    stop_index: int,
    my_stage: int,
    abort_index: int,
    proc: np.ndarray,
    account: np.ndarray,
    fee_bps_x100: int,
    wait_strategy: int,
    max_run_ns: int,
) -> int:
    """Run until ``max_run_ns`` passed, or the stop stage came and the order ring is drained."""
    deadline = monotonic_ns() + max_run_ns
    order_mask = order_slots.shape[0] - 1
    exec_mask = exec_slots.shape[0] - 1
    idle_rounds = 0
    while True:
        available = ring_available(order_ctrl, order_consumer)
        if available == 0:
            status = idle_pass(proc, control_words, stop_index, my_stage, deadline, wait_strategy, idle_rounds)
            if status != LOOP_CONTINUE:
                return status
            idle_rounds += 1
            continue
        idle_rounds = 0
        tail = ring_tail(order_ctrl, order_consumer)
        counter_add(proc, C_MSGS_IN, available)
        # one execution report per order: claim them all at once, or at most what the ring can ever hold
        if available > exec_slots.shape[0]:
            available = exec_slots.shape[0]
        claimed = claim_waiting(exec_ctrl, available, control_words, abort_index, proc, wait_strategy)
        if claimed < 0:
            return LOOP_ABORTED
        for k in range(available):
            order = order_slots[(tail + k) & order_mask]
            counter_add(proc, C_ORDERS, 1)
            symbol = order.symbol_id
            price = 0
            reason = REASON_BAD_ORDER
            if 0 <= symbol < n_symbols:
                retries = seqlock_read(snap_words, symbol, snapshot_words, 1000)
                counter_add(proc, C_SEQLOCK_READS, 1)
                if retries < 0:
                    counter_add(proc, C_ERRORS, 1)
                    reason = REASON_NO_MARKET
                else:
                    counter_add(proc, C_SEQLOCK_RETRIES, retries)
                    price, reason = _decide(order, snapshot[0], n_symbols)
            seq = claimed + k
            report = exec_slots[seq & exec_mask]
            report.exec_id = seq + 1  # the ring head only grows: unique across broker restarts
            report.order_id = order.order_id
            report.ts_tick_recv = order.ts_tick_recv
            report.ts_order_init = order.ts_init
            report.symbol_id = symbol
            report.side = order.side
            report.order_type = order.order_type
            report.reason = reason
            if price > 0:
                quantity = order.size if order.side == SIDE_BUY else -order.size
                report.fee = apply_fill(account, symbol, quantity, price, fee_bps_x100)
                report.price = price
                report.size = order.size
                report.leaves = 0
                report.status = STATUS_FILLED
                report.liquidity = LIQUIDITY_TAKER
                counter_add(proc, C_FILLS, 1)
            else:
                report.fee = 0
                report.price = 0
                report.size = 0
                report.leaves = 0
                report.status = STATUS_REJECTED
                report.liquidity = 0
                counter_add(proc, C_REJECTS, 1)
            if 0 <= symbol < n_symbols:
                report.position = account[symbol, K_POSITION]
                report.entry_notional = account[symbol, K_ENTRY_NOTIONAL]
                report.realized_pnl = account[symbol, K_REALIZED]
            else:
                report.position = 0
                report.entry_notional = 0
                report.realized_pnl = 0
            ts_init = monotonic_ns()
            report.ts_init = ts_init
            hist_record(proc, H_ORDER_TO_EXEC, ts_init - order.ts_init)
            hist_record(proc, H_TICK_TO_EXEC, ts_init - order.ts_tick_recv)
        ring_commit(exec_ctrl, claimed + available)
        ring_release(order_ctrl, order_consumer, tail + available)
        counter_add(proc, C_MSGS_OUT, available)
