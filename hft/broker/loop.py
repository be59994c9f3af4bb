"""The paper broker's main loop in numba: orders in, market data up to the strategy's cursor, reports out.

One pass of the loop:

1. takes every order on strategy.orders into the fill simulator (``hft.broker.matching.accept``): invalid
   orders are rejected at once, the rest wait for their arrival;
2. applies md.events up to the strategy's cursor on that ring, never further (``load_acquire`` of the
   strategy's consumer tail, loaded at the start of the pass, before step 1: events below it were processed
   by the strategy, which publishes its orders before releasing the events that caused them, so every order
   it sent on them was on strategy.orders and step 1 took it). Orders arrive between events as their arrival
   times fall due;
3. in live runs, lets orders arrive by the machine's clock when the strategy has consumed nothing newer;
4. publishes the reports on broker.executions (a block ring: waits, counted, while persistence is behind),
   then releases the orders and events it used. Reports are published before the cursors move, so a
   lock-step replay feed that waits on both cursors knows every consequence of a frame is visible.

The broker's md.events cursor is its own (a lossy ring): if the feed laps it (only when the strategy is lapped
too), the books are rebuilt from the seqlock snapshots (top levels only), counted as ``book_rebuilds``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hft.broker.matching import (
    P_CLOCK_FALLBACK,
    ST_MD_POS,
    ST_N_OUT,
    ST_N_PENDING,
    ST_N_RESTING,
    ST_VENUE_MONO,
    ST_VENUE_NOW,
    accept,
    arrive_due,
    expire_due,
    load_levels_from_snapshot,
    on_event,
    shutdown,
)
from hft.runtime import LOOP_ABORTED, LOOP_CONTINUE, LOOP_STOPPED, claim_waiting, idle_pass
from shm_layout.atomics import load_acquire, monotonic_ns
from shm_layout.counters import (
    C_BOOK_REBUILDS,
    C_CANCELS,
    C_ERRORS,
    C_EXPIRED,
    C_FILLS,
    C_MAKER_FILLS,
    C_MSGS_IN,
    C_MSGS_OUT,
    C_ORDERS,
    C_REJECTS,
    C_RESTING,
    C_SEQLOCK_READS,
    C_SEQLOCK_RETRIES,
    counter_add,
    hist_record,
)
from shm_layout.records import (
    EXEC_FIRST,
    LIQUIDITY_MAKER,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_NEW,
    STATUS_REJECTED,
)
from shm_layout.ring import (
    CONSUMER_WORDS,
    W_CONSUMERS,
    W_TAIL,
    ring_available,
    ring_commit,
    ring_read_hold,
    ring_release,
    ring_tail,
)
from shm_layout.seqlock import seqlock_read

H_ORDER_TO_EXEC = 0  # order on the ring -> its first report on the ring (includes the simulated entry latency)
H_TICK_TO_EXEC = 1  # frame received by the feed -> the order's first report on the ring


@njit(cache=True)
def publish_reports(
    out: np.ndarray, state: np.ndarray, exec_ctrl: np.ndarray, exec_slots: np.ndarray, control_words: np.ndarray,
    abort_index: int, proc: np.ndarray, wait_strategy: int,
) -> bool:
    """Publish ``out[:state[ST_N_OUT]]`` on broker.executions; False if a forced shutdown interrupted a wait."""
    n = state[ST_N_OUT]
    mask = exec_slots.shape[0] - 1
    done = 0
    while done < n:
        count = n - done
        if count > exec_slots.shape[0]:
            count = exec_slots.shape[0]
        first = claim_waiting(exec_ctrl, count, control_words, abort_index, proc, wait_strategy)
        if first < 0:
            return False
        for k in range(count):
            report = out[done + k]
            seq = first + k
            report.exec_id = seq + 1  # the ring head only grows: unique in the run, across broker restarts
            now = monotonic_ns()
            report.ts_init = now
            exec_slots[seq & mask] = report
            if report.size > 0:
                counter_add(proc, C_FILLS, 1)
                if report.liquidity == LIQUIDITY_MAKER:
                    counter_add(proc, C_MAKER_FILLS, 1)
            status = report.status
            if status == STATUS_REJECTED:
                counter_add(proc, C_REJECTS, 1)
            elif status == STATUS_CANCELLED:
                counter_add(proc, C_CANCELS, 1)
            elif status == STATUS_EXPIRED:
                counter_add(proc, C_EXPIRED, 1)
            elif status == STATUS_NEW:
                counter_add(proc, C_RESTING, 1)
            if report.flags & EXEC_FIRST:
                hist_record(proc, H_ORDER_TO_EXEC, now - report.ts_order_init)
                hist_record(proc, H_TICK_TO_EXEC, now - report.ts_tick_recv)
        ring_commit(exec_ctrl, first + count)
        counter_add(proc, C_MSGS_OUT, count)
        done += count
    state[ST_N_OUT] = 0
    return True


@njit(cache=True)
def rebuild_books(snap_words, snapshot, snapshot_words, prices, sizes, counts, proc) -> None:
    for symbol in range(counts.shape[0]):
        retries = seqlock_read(snap_words, symbol, snapshot_words, 1000)
        counter_add(proc, C_SEQLOCK_READS, 1)
        if retries < 0:
            counter_add(proc, C_ERRORS, 1)
            continue
        counter_add(proc, C_SEQLOCK_RETRIES, retries)
        load_levels_from_snapshot(snapshot[0], symbol, prices, sizes, counts)
    counter_add(proc, C_BOOK_REBUILDS, 1)


@njit(cache=True)
def broker_loop(
    order_ctrl: np.ndarray,
    order_slots: np.ndarray,
    order_consumer: int,
    md_ctrl: np.ndarray,
    md_slots: np.ndarray,
    md_consumer: int,
    strategy_md_consumer: int,
    md_batch: np.ndarray,
    snap_words: np.ndarray,
    snapshot: np.ndarray,
    snapshot_words: np.ndarray,
    exec_ctrl: np.ndarray,
    exec_slots: np.ndarray,
    control_words: np.ndarray,
    stop_index: int,
    my_stage: int,
    abort_index: int,
    proc: np.ndarray,
    table: np.ndarray,
    state: np.ndarray,
    params: np.ndarray,
    grid: np.ndarray,
    out: np.ndarray,
    account: np.ndarray,
    prices: np.ndarray,
    sizes: np.ndarray,
    counts: np.ndarray,
    wait_strategy: int,
    max_run_ns: int,
) -> int:
    """Run until ``max_run_ns`` passed, or the stop stage came and both inputs are drained (then cancel
    what rests: every order ends with a final report)."""
    deadline = monotonic_ns() + max_run_ns
    order_mask = order_slots.shape[0] - 1
    strategy_tail_word = W_CONSUMERS + strategy_md_consumer * CONSUMER_WORDS + W_TAIL
    room = out.shape[0] - 2 * table.shape[0] - 8  # one more event adds at most two reports per held order
    idle_rounds = 0
    while True:
        worked = False
        # the strategy publishes its orders before it releases the events behind them: read its cursor first,
        # then drain the orders, and every order decided on an event below the cursor is in the table before
        # that event is applied (read after the orders, an order published in between would miss its events)
        bound = load_acquire(md_ctrl, strategy_tail_word)
        # 1. orders: held in the simulator (or rejected), their slots released after the reports are out
        available = ring_available(order_ctrl, order_consumer)
        if available > 0:
            worked = True
            tail = ring_tail(order_ctrl, order_consumer)
            counter_add(proc, C_MSGS_IN, available)
            taken = 0
            while taken < available:
                if state[ST_N_OUT] >= room and not publish_reports(
                        out, state, exec_ctrl, exec_slots, control_words, abort_index, proc, wait_strategy):
                    return LOOP_ABORTED
                accept(order_slots[(tail + taken) & order_mask], tail + taken, table, state, params, grid, out,
                       account, prices, counts)
                counter_add(proc, C_ORDERS, 1)
                taken += 1
            if not publish_reports(out, state, exec_ctrl, exec_slots, control_words, abort_index, proc,
                                   wait_strategy):
                return LOOP_ABORTED
            ring_release(order_ctrl, order_consumer, tail + available)
        # 2. market data, as far as the strategy had processed it before the orders were drained
        mine = ring_tail(md_ctrl, md_consumer)
        if bound > mine:
            n = ring_read_hold(md_ctrl, md_slots, md_consumer, md_batch, bound - mine)
            start = ring_tail(md_ctrl, md_consumer)
            if start != mine:
                # lapped: events between were overwritten before we read them
                rebuild_books(snap_words, snapshot, snapshot_words, prices, sizes, counts, proc)
                if n > bound - start:
                    n = bound - start if bound > start else 0  # still never past the strategy
            state[ST_MD_POS] = start
            if n > 0:
                worked = True
                for k in range(n):
                    on_event(md_batch[k], out, state, table, params, account, prices, sizes, counts)
                    if state[ST_N_OUT] >= room and not publish_reports(
                            out, state, exec_ctrl, exec_slots, control_words, abort_index, proc, wait_strategy):
                        return LOOP_ABORTED
                state[ST_VENUE_MONO] = monotonic_ns()
                if not publish_reports(out, state, exec_ctrl, exec_slots, control_words, abort_index, proc,
                                       wait_strategy):
                    return LOOP_ABORTED
                ring_release(md_ctrl, md_consumer, start + n)
        # 3. live runs: the machine's clock lets orders arrive and GTD orders expire in a quiet market
        if params[P_CLOCK_FALLBACK] != 0 and (state[ST_N_PENDING] > 0 or state[ST_N_RESTING] > 0):
            now = monotonic_ns()
            venue_now = state[ST_VENUE_NOW] + (now - state[ST_VENUE_MONO] if state[ST_VENUE_MONO] > 0 else 0)
            caught_up = ring_tail(md_ctrl, md_consumer) >= load_acquire(md_ctrl, strategy_tail_word)
            if state[ST_N_PENDING] > 0 and caught_up and arrive_due(
                    out, state, table, params, account, prices, sizes, counts, state[ST_MD_POS], 0, now, venue_now):
                worked = True
            if state[ST_N_RESTING] > 0 and expire_due(out, state, table, account, prices, counts, venue_now) > 0:
                worked = True
            if state[ST_N_OUT] > 0 and not publish_reports(out, state, exec_ctrl, exec_slots, control_words,
                                                           abort_index, proc, wait_strategy):
                return LOOP_ABORTED
        if worked:
            idle_rounds = 0
            continue
        status = idle_pass(proc, control_words, stop_index, my_stage, deadline, wait_strategy, idle_rounds)
        if status == LOOP_STOPPED:
            # inputs drained (the strategy stopped before us): every order gets its final report
            while True:
                left = shutdown(out, state, table, params, account, prices, sizes, counts)
                if not publish_reports(out, state, exec_ctrl, exec_slots, control_words, abort_index, proc,
                                       wait_strategy):
                    return LOOP_ABORTED
                if left == 0:
                    return LOOP_STOPPED
        if status != LOOP_CONTINUE:
            return status
        idle_rounds += 1
