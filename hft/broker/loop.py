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

Counters of the published reports: ``fills`` / ``maker_fills`` (a fill), ``resting`` (NEW), ``cancels``
(CANCELLED), ``expired``, ``rejects`` (REJECTED, except post-only orders that would have crossed: those are
``post_only_rejects``, a market maker's routine news that the touch moved, so ``rejects`` keeps meaning orders
that were wrong), ``cancel_rejects`` (CANCEL_REJECTED: a cancel race); DONE, the report of a carried-out cancel
command, counts nowhere new. The latency histograms measure orders only: a command's report (order type 0,
``hft.broker.matching._command_report``) is not a sample of order-to-execution latency.

The broker's md.events cursor is its own (a lossy ring): if the feed laps it (only when the strategy is lapped
too), the books are rebuilt from the seqlock snapshots (top levels only), counted as ``book_rebuilds``.

The loop carries two bundles (``hft.broker.state``): ``bk``, the fill simulator's state, and ``io``, the rings,
control words and counters it works with.
"""

from __future__ import annotations

from numba import njit

from hft.broker.matching import (
    P_CLOCK_FALLBACK,
    ST_BBO_REFUSED,
    ST_BBO_TAKEN,
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
    C_BBO_UPDATES,
    C_BOOK_REBUILDS,
    C_CANCEL_REJECTS,
    C_CANCELS,
    C_ERRORS,
    C_EXPIRED,
    C_FILLS,
    C_MAKER_FILLS,
    C_MSGS_IN,
    C_MSGS_OUT,
    C_ORDERS,
    C_POST_ONLY_REJECTS,
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
    REASON_POST_ONLY_WOULD_CROSS,
    STATUS_CANCEL_REJECTED,
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
def publish_reports(bk, io) -> bool:
    """Publish ``bk.out[:state[ST_N_OUT]]`` on broker.executions; False if a forced shutdown interrupted a wait."""
    state = bk.state
    out = bk.out
    exec_ctrl = io.exec_ctrl
    exec_slots = io.exec_slots
    proc = io.proc
    n = state[ST_N_OUT]
    mask = exec_slots.shape[0] - 1
    done = 0
    while done < n:
        count = n - done
        if count > exec_slots.shape[0]:
            count = exec_slots.shape[0]
        first = claim_waiting(exec_ctrl, count, io.control_words, io.abort_index, proc, io.wait_strategy)
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
                if report.reason == REASON_POST_ONLY_WOULD_CROSS:
                    counter_add(proc, C_POST_ONLY_REJECTS, 1)
                else:
                    counter_add(proc, C_REJECTS, 1)
            elif status == STATUS_CANCELLED:
                counter_add(proc, C_CANCELS, 1)
            elif status == STATUS_EXPIRED:
                counter_add(proc, C_EXPIRED, 1)
            elif status == STATUS_NEW:
                counter_add(proc, C_RESTING, 1)
            elif status == STATUS_CANCEL_REJECTED:
                counter_add(proc, C_CANCEL_REJECTS, 1)
            if report.flags & EXEC_FIRST and report.order_type != 0:  # orders only, not commands
                hist_record(proc, H_ORDER_TO_EXEC, now - report.ts_order_init)
                hist_record(proc, H_TICK_TO_EXEC, now - report.ts_tick_recv)
        ring_commit(exec_ctrl, first + count)
        counter_add(proc, C_MSGS_OUT, count)
        done += count
    state[ST_N_OUT] = 0
    return True


@njit(cache=True)
def count_tickers(bk, io) -> None:
    """Move the simulator's bookTicker counts to this process's counters: tickers that became a symbol's touch
    to ``bbo_updates``, malformed ones (an empty side, crossed or locked, a lone record) to ``errors``."""
    state = bk.state
    if state[ST_BBO_TAKEN] > 0:
        counter_add(io.proc, C_BBO_UPDATES, state[ST_BBO_TAKEN])
        state[ST_BBO_TAKEN] = 0
    if state[ST_BBO_REFUSED] > 0:
        counter_add(io.proc, C_ERRORS, state[ST_BBO_REFUSED])
        state[ST_BBO_REFUSED] = 0


@njit(cache=True)
def rebuild_books(bk, io) -> None:
    """Reload every symbol's book from the md.snapshot seqlock (top levels only): after a lap, or a restart."""
    proc = io.proc
    snapshot = io.snapshot
    for symbol in range(bk.counts.shape[0]):
        retries = seqlock_read(io.snap_words, symbol, io.snapshot_words, 1000)
        counter_add(proc, C_SEQLOCK_READS, 1)
        if retries < 0:
            counter_add(proc, C_ERRORS, 1)
            continue
        counter_add(proc, C_SEQLOCK_RETRIES, retries)
        load_levels_from_snapshot(bk, snapshot[0], symbol)
    counter_add(proc, C_BOOK_REBUILDS, 1)


@njit(cache=True)
def broker_loop(bk, io, max_run_ns: int) -> int:
    """Run until ``max_run_ns`` passed, or the stop stage came and both inputs are drained (then cancel
    what rests: every order ends with a final report)."""
    state = bk.state
    proc = io.proc
    order_ctrl = io.order_ctrl
    order_slots = io.order_slots
    order_consumer = io.order_consumer
    md_ctrl = io.md_ctrl
    md_consumer = io.md_consumer
    md_batch = io.md_batch
    deadline = monotonic_ns() + max_run_ns
    order_mask = order_slots.shape[0] - 1
    strategy_tail_word = W_CONSUMERS + io.strategy_md_consumer * CONSUMER_WORDS + W_TAIL
    room = bk.out.shape[0] - 2 * bk.table.shape[0] - 8  # one more event adds at most two reports per held order
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
                if state[ST_N_OUT] >= room and not publish_reports(bk, io):
                    return LOOP_ABORTED
                accept(bk, order_slots[(tail + taken) & order_mask], tail + taken)
                counter_add(proc, C_ORDERS, 1)
                taken += 1
            if not publish_reports(bk, io):
                return LOOP_ABORTED
            ring_release(order_ctrl, order_consumer, tail + available)
        # 2. market data, as far as the strategy had processed it before the orders were drained
        mine = ring_tail(md_ctrl, md_consumer)
        if bound > mine:
            n = ring_read_hold(md_ctrl, io.md_slots, md_consumer, md_batch, bound - mine)
            start = ring_tail(md_ctrl, md_consumer)
            if start != mine:
                # lapped: events between were overwritten before we read them
                rebuild_books(bk, io)
                if n > bound - start:
                    n = bound - start if bound > start else 0  # still never past the strategy
            state[ST_MD_POS] = start
            if n > 0:
                worked = True
                for k in range(n):
                    on_event(bk, md_batch[k])
                    if state[ST_N_OUT] >= room and not publish_reports(bk, io):
                        return LOOP_ABORTED
                state[ST_VENUE_MONO] = monotonic_ns()
                count_tickers(bk, io)
                if not publish_reports(bk, io):
                    return LOOP_ABORTED
                ring_release(md_ctrl, md_consumer, start + n)
        # 3. live runs: the machine's clock lets orders arrive and GTD orders expire in a quiet market
        if bk.params[P_CLOCK_FALLBACK] != 0 and (state[ST_N_PENDING] > 0 or state[ST_N_RESTING] > 0):
            now = monotonic_ns()
            venue_now = state[ST_VENUE_NOW] + (now - state[ST_VENUE_MONO] if state[ST_VENUE_MONO] > 0 else 0)
            caught_up = ring_tail(md_ctrl, md_consumer) >= load_acquire(md_ctrl, strategy_tail_word)
            if state[ST_N_PENDING] > 0 and caught_up and arrive_due(bk, state[ST_MD_POS], 0, now, venue_now):
                worked = True
            if state[ST_N_RESTING] > 0 and expire_due(bk, venue_now) > 0:
                worked = True
            if state[ST_N_OUT] > 0 and not publish_reports(bk, io):
                return LOOP_ABORTED
        if worked:
            idle_rounds = 0
            continue
        status = idle_pass(proc, io.control_words, io.stop_index, io.stage, deadline, io.wait_strategy, idle_rounds)
        if status == LOOP_STOPPED:
            # inputs drained (the strategy stopped before us): every order gets its final report
            while True:
                left = shutdown(bk)
                if not publish_reports(bk, io):
                    return LOOP_ABORTED
                if left == 0:
                    return LOOP_STOPPED
        if status != LOOP_CONTINUE:
            return status
        idle_rounds += 1
