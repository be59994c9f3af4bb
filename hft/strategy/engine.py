"""The strategy engine: market-data events and execution reports in, the strategies' callbacks out.

It knows records and arrays, not processes: the pipeline's loop (``strategy_loop``, below) feeds it from the
md.events and broker.executions rings; a single-process backtest can feed it the same records directly. Per
market-data record (``engine_on_event``):

1. timers due at or before the record's venue time fire first (``on_timer``, each at its own due time);
2. the record updates the shared market view and the feature kernels (``hft.strategy.kernels``): a trade
   (``on_trade`` kernel, ``ctx.last_trade``), a bookTicker half (``ctx.bbo``), a book level;
3. at the last record of a frame (``FLAG_LAST_IN_FRAME``) the owner instance of the symbol is called back:
   ``on_trade``, ``on_bbo``, or, for a depth frame that changed the book, ``on_book`` after the feed's seqlock
   snapshot was copied into ``ctx.book`` and the book features were updated.

Per execution report (``engine_on_report``): pre-trade risk learns it (positions, PnL, the reject storm), the
account row of its symbol takes the broker's figures, the instance's open-orders table follows the order's
state, and ``on_execution`` is called (not for a cancel command's DONE report: its target's CANCELLED says it).

The clock is the venue's: ``E_CLOCK`` is the latest venue time of any record; callbacks see it as ``ctx.now``
and orders carry it (the broker makes them arrive ``entry_latency`` later). A replay therefore decides exactly
as the live run did. Live runs (``E_CLOCK_FALLBACK``) also let timers fire by the machine's clock while no data
arrives.

Callbacks are numba first-class functions of one signature (``hft.strategy.context.callback_t``), looked up in a
table ``callbacks[instance * N_CALLBACKS + kind]``: the engine is compiled and cached once, whatever the user's
strategy, and editing a strategy recompiles only its callbacks. A callback that raises propagates out of the
loop with ``E_CALL_INSTANCE``/``E_CALL_KIND`` naming it, after the record that caused it was consumed: the
caller halts that instance (``halt_instance``) and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.experimental import structref

from hft.bundle import check_fields, field_names
from hft.risk.engine import risk_on_execution, risk_on_market
from hft.runtime import LOOP_CONTINUE, LOOP_NEED_MODEL, LOOP_TIMEOUT, idle_pass
from hft.strategy.api import cancel_everything, order_row
from hft.strategy.context import (
    ACC_ENTRY_NOTIONAL,
    ACC_FEES,
    ACC_MARK_X2,
    ACC_POSITION,
    ACC_REALIZED,
    CB_BBO,
    CB_BOOK,
    CB_EXECUTION,
    CB_MODEL,
    CB_START,
    CB_TIMER,
    CB_TRADE,
    CTL_EVENT_MD_CURSOR,
    CTL_EVENT_TS_RECV,
    CTL_HALTED,
    CTL_MODEL_SYMBOL,
    CTL_ORDERS_HIGH,
    CTL_TIMERS_SET,
    H_MD_HOP,
    LT_PRICE,
    LT_SIDE,
    LT_SIZE,
    LT_TRADE_ID,
    LT_TS_EXCH,
    N_CALLBACKS,
    N_OO,
    OO_CANCEL_ID,
    OO_FILLED,
    OO_ID,
    OO_LEAVES,
    OO_STATE,
    ORDER_OPEN,
    ORDER_PARTIAL,
    Q_ASK,
    Q_ASK_SIZE,
    Q_BID,
    Q_BID_SIZE,
    Q_TS_EXCH,
    Q_TS_RECV,
    Q_UPDATE_ID,
    TM_DUE,
    TM_INTERVAL,
    strategy_set_t,
)
from hft.strategy.kernels import on_book, on_trade
from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_BBO_UPDATES,
    C_ERRORS,
    C_MSGS_IN,
    C_SEQLOCK_READS,
    C_SEQLOCK_RETRIES,
    C_TICKS,
    counter_add,
    hist_record,
)
from shm_layout.records import (
    BOOK_SYNCED,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
    EV_TRADE,
    FLAG_LAST_IN_FRAME,
    SIDE_BUY,
    STATUS_CANCEL_REJECTED,
    STATUS_DONE,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    book_snapshot_t,
    exec_report_t,
    md_event_t,
)
from shm_layout.ring import ring_read, ring_read_hold, ring_release, ring_tail
from shm_layout.seqlock import seqlock_read

SNAPSHOT_MAX_RETRIES = 1000
NO_TIMER = 1 << 62

# --- eng.words[E_*] ---
E_CLOCK = 0  # the latest venue time of any record (ns): ctx.now
E_N_INSTANCES = 1
E_CALL_INSTANCE = 2  # the instance being called back, -1 between calls (names a callback that raised)
E_CALL_KIND = 3  # CB_* being called
E_MODEL_INSTANCE = 4  # an instance waiting for its model hook's answer, -1: none
E_NEXT_TIMER = 5  # the earliest timer due (venue ns), NO_TIMER without one
E_CLOCK_FALLBACK = 6  # 1 (live): timers also fire by the machine's clock while no data arrives
E_VENUE_MONO = 7  # monotonic time at which E_CLOCK last advanced (the fallback's estimate of venue time)
E_MD_CURSOR = 8  # md.events consumed so far (orders decided outside a market event carry it)
E_NEXT = 9  # engine_feed / engine_reports: the index after the record being applied
N_E = 16


@structref.register
class StrategyEngineType(types.StructRef):
    """The numba type of the engine's state (fields: ``ENGINE_FIELDS``)."""


class StrategyEngineRef(structref.StructRefProxy):
    """The Python handle of the engine's state (passed to jitted code only)."""


ENGINE_FIELDS = (
    ("words", types.int64[::1]),
    ("owner", types.int64[::1]),  # symbol -> the instance that trades it (-1: none)
    ("last_seq", types.int64[::1]),  # per symbol: the seqlock sequence of the book snapshot last handled
    # the market view and the account, shared with every context
    ("book", types.Array(book_snapshot_t, 1, "C")),
    ("bbo", types.int64[:, ::1]),
    ("last_trade", types.int64[:, ::1]),
    ("features", types.float64[:, ::1]),
    ("account", types.int64[:, ::1]),
    # the feature kernels' parameters and state (hft.strategy.kernels)
    ("kparams", types.int64[:, ::1]),
    ("kints", types.int64[:, ::1]),
    ("kaccs", types.float64[:, ::1]),
    ("kbook_ts", types.int64[:, ::1]),
    ("kbook_f", types.float64[:, :, ::1]),
    ("ktrades", types.int64[:, :, ::1]),
    ("kbuckets", types.int64[:, ::1]),
    # the feed's book snapshots (seqlock words) and a scratch record to read one into
    ("snap_words", types.int64[::1]),
    ("snapshot", types.Array(book_snapshot_t, 1, "C")),
    ("snapshot_words", types.int64[::1]),
    # risk and counters
    ("risk_limits", types.int64[:, ::1]),
    ("risk_state", types.int64[::1]),
    ("risk_fstate", types.float64[::1]),
    ("proc", types.int64[::1]),
)
structref.define_proxy(StrategyEngineRef, StrategyEngineType, field_names(ENGINE_FIELDS))
engine_t = StrategyEngineType(ENGINE_FIELDS)


@njit(cache=True)
def _new_engine(words, owner, last_seq, book, bbo, last_trade, features, account, kparams, kints, kaccs, kbook_ts,
                kbook_f, ktrades, kbuckets, snap_words, snapshot, snapshot_words, risk_limits, risk_state,
                risk_fstate, proc):
    return StrategyEngineRef(words, owner, last_seq, book, bbo, last_trade, features, account, kparams, kints,
                             kaccs, kbook_ts, kbook_f, ktrades, kbuckets, snap_words, snapshot, snapshot_words,
                             risk_limits, risk_state, risk_fstate, proc)


@dataclass
class StrategyEngine:
    """The engine's arrays (Python reads ``words``) and ``ref``, its structref."""

    words: np.ndarray
    owner: np.ndarray
    ref: StrategyEngineRef


def new_engine(market, kernels: tuple, snap_words: np.ndarray, risk: tuple, proc: np.ndarray, owner: np.ndarray,
               n_instances: int, clock_fallback: bool) -> StrategyEngine:
    """Build the engine around ``market`` (``hft.strategy.context.Market``), the feature kernels' ``(params,
    *state)`` and the feed's seqlock words (``md.snapshot``; a backtest passes its feed engine's)."""
    from shm_layout.records import BOOK_SNAPSHOT

    words = np.zeros(N_E, np.int64)
    words[E_N_INSTANCES] = n_instances
    words[E_CALL_INSTANCE] = -1
    words[E_CALL_KIND] = -1
    words[E_MODEL_INSTANCE] = -1
    words[E_NEXT_TIMER] = NO_TIMER
    words[E_CLOCK_FALLBACK] = 1 if clock_fallback else 0
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    n = market.grid.shape[0]
    values = (words, np.ascontiguousarray(owner, np.int64), np.full(n, -1, np.int64), market.book, market.bbo,
              market.last_trade, market.features, market.account, *kernels, snap_words, snapshot,
              snapshot.view(np.int64), *risk, proc)
    check_fields("StrategyEngine", ENGINE_FIELDS, values)
    return StrategyEngine(words, values[1], _new_engine(*values))


# ------------------------------------------------------------------------------------------------ callbacks


@njit(cache=True)
def _refresh_next_timer(eng, ctxs) -> None:
    """Recompute the earliest timer due (after a callback may have set one)."""
    earliest = NO_TIMER
    for i in range(eng.words[E_N_INSTANCES]):
        ctx = ctxs[i]
        if ctx.ctl[CTL_HALTED] != 0:
            continue
        timers = ctx.timers
        for s in range(timers.shape[0]):
            if timers[s, TM_INTERVAL] > 0 and timers[s, TM_DUE] < earliest:
                earliest = timers[s, TM_DUE]
    eng.words[E_NEXT_TIMER] = earliest


@njit(cache=True, inline="always")
def _invoke(eng, ctxs, callbacks, instance: int, kind: int, symbol: int, ts_recv: int, md_cursor: int) -> None:
    """Call one callback of one instance at the engine's clock, with the event's receive time and md.events
    cursor for the orders it sends; note who is called (a raise names it), whether it asked for its model, and
    whether it set a timer."""
    ctx = ctxs[instance]
    ctl = ctx.ctl
    if ctl[CTL_HALTED] != 0:
        return
    ctl[CTL_EVENT_TS_RECV] = ts_recv
    ctl[CTL_EVENT_MD_CURSOR] = md_cursor
    ctx.now = eng.words[E_CLOCK]
    eng.words[E_CALL_INSTANCE] = instance
    eng.words[E_CALL_KIND] = kind
    callbacks[instance * N_CALLBACKS + kind](ctx, symbol)
    eng.words[E_CALL_INSTANCE] = -1
    if ctl[CTL_MODEL_SYMBOL] >= 0:
        eng.words[E_MODEL_INSTANCE] = instance
    if ctl[CTL_TIMERS_SET] != 0:
        ctl[CTL_TIMERS_SET] = 0
        _refresh_next_timer(eng, ctxs)


@njit(cache=True)
def engine_start(eng, ctxs, callbacks, instance: int) -> int:
    """Call ``on_start`` of ``instance`` for each of its symbols; return 1 if a model answer is wanted."""
    ctx = ctxs[instance]
    for symbol in range(ctx.mine.shape[0]):
        if ctx.mine[symbol] != 0:
            _invoke(eng, ctxs, callbacks, instance, CB_START, symbol, 0, eng.words[E_MD_CURSOR])
    return 1 if eng.words[E_MODEL_INSTANCE] >= 0 else 0


@njit(cache=True)
def engine_fire_timers(eng, ctxs, callbacks, until_ts: int) -> int:
    """Fire every timer due at or before ``until_ts``, earliest first, each at its own due time. A timer that
    fell behind (a quiet market) fires once, at the last point of its grid not after ``until_ts``, and resumes
    on its grid. Return 1 if a model answer is wanted.

    ``until_ts`` is the venue time now (an event's, or the machine clock's estimate of it): moving the clock to a
    timer's earlier due time keeps ``E_VENUE_MONO`` consistent with it, so the estimate does not run ahead."""
    mono = monotonic_ns()
    while eng.words[E_NEXT_TIMER] <= until_ts:
        best_instance = -1
        best_symbol = -1
        best_due = NO_TIMER
        for i in range(eng.words[E_N_INSTANCES]):
            ctx = ctxs[i]
            if ctx.ctl[CTL_HALTED] != 0:
                continue
            for s in range(ctx.timers.shape[0]):
                if ctx.timers[s, TM_INTERVAL] > 0 and ctx.timers[s, TM_DUE] < best_due:
                    best_due = ctx.timers[s, TM_DUE]
                    best_instance = i
                    best_symbol = s
        if best_instance < 0 or best_due > until_ts:
            eng.words[E_NEXT_TIMER] = best_due
            return 0
        ctx = ctxs[best_instance]
        interval = ctx.timers[best_symbol, TM_INTERVAL]
        fire_at = best_due + interval * ((until_ts - best_due) // interval)  # the latest point of its grid
        ctx.timers[best_symbol, TM_DUE] = fire_at + interval
        if fire_at > eng.words[E_CLOCK]:
            eng.words[E_CLOCK] = fire_at
            eng.words[E_VENUE_MONO] = mono - (until_ts - fire_at)  # venue time until_ts is now, still
        _invoke(eng, ctxs, callbacks, best_instance, CB_TIMER, best_symbol, 0, eng.words[E_MD_CURSOR])
        if eng.words[E_MODEL_INSTANCE] >= 0:
            return 1
    return 0


@njit(cache=True)
def engine_model_answer(eng, ctxs, callbacks) -> int:
    """The model hook has written ``model_out`` of the waiting instance: call its ``on_model``. Return 1 if it
    asked again."""
    instance = eng.words[E_MODEL_INSTANCE]
    if instance < 0:
        return 0
    eng.words[E_MODEL_INSTANCE] = -1
    ctx = ctxs[instance]
    symbol = ctx.ctl[CTL_MODEL_SYMBOL]
    ctx.ctl[CTL_MODEL_SYMBOL] = -1
    if symbol >= 0:
        # the answer is part of the decision that asked: its orders carry that event's cursor and receive time
        _invoke(eng, ctxs, callbacks, instance, CB_MODEL, symbol, ctx.ctl[CTL_EVENT_TS_RECV],
                ctx.ctl[CTL_EVENT_MD_CURSOR])
    return 1 if eng.words[E_MODEL_INSTANCE] >= 0 else 0


@njit(cache=True)
def halt_instance(eng, ctxs, instance: int) -> int:
    """Stop calling ``instance`` back (a callback raised): drop its model request and timers and cancel all its
    open orders. Reports of those orders still update its tables. Return the cancel commands sent."""
    ctx = ctxs[instance]
    ctx.ctl[CTL_HALTED] = 1
    ctx.ctl[CTL_MODEL_SYMBOL] = -1
    if eng.words[E_MODEL_INSTANCE] == instance:
        eng.words[E_MODEL_INSTANCE] = -1
    for s in range(ctx.timers.shape[0]):
        ctx.timers[s, TM_INTERVAL] = 0
    _refresh_next_timer(eng, ctxs)
    eng.words[E_CALL_INSTANCE] = -1
    eng.words[E_CALL_KIND] = -1
    return cancel_everything(ctx)


# ------------------------------------------------------------------------------------------------ market data


@njit(cache=True)
def _advance_clock(eng, ts: int) -> None:
    if ts > eng.words[E_CLOCK]:
        eng.words[E_CLOCK] = ts
        eng.words[E_VENUE_MONO] = monotonic_ns()


@njit(cache=True)
def _book_frame(eng, symbol: int) -> bool:
    """A depth frame of ``symbol`` ended: copy the feed's snapshot into the book view and update the book
    features. Return whether the book changed since the last call (the seqlock sequence moved)."""
    retries = seqlock_read(eng.snap_words, symbol, eng.snapshot_words, SNAPSHOT_MAX_RETRIES)
    counter_add(eng.proc, C_SEQLOCK_READS, 1)
    if retries < 0:
        counter_add(eng.proc, C_SEQLOCK_RETRIES, SNAPSHOT_MAX_RETRIES)
        counter_add(eng.proc, C_ERRORS, 1)
        return False
    if retries > 0:
        counter_add(eng.proc, C_SEQLOCK_RETRIES, retries)
    book = eng.snapshot[0]
    if book.seq == eng.last_seq[symbol]:
        return False  # a newer frame's snapshot was already handled: nothing new for this one
    eng.last_seq[symbol] = book.seq
    eng.book[symbol] = book
    if book.status == BOOK_SYNCED and 0 < book.bid_price < book.ask_price:
        counter_add(eng.proc, C_TICKS, 1)
        _advance_clock(eng, book.ts_exch)
        on_book(symbol, book, eng.kparams, eng.kints, eng.kaccs, eng.kbook_ts, eng.kbook_f, eng.ktrades,
                eng.kbuckets, eng.features)
        risk_on_market(eng.risk_limits, eng.risk_state, eng.risk_fstate, symbol, book.mid_x2 // 2,
                       eng.words[E_CLOCK])
    return True


@njit(cache=True)
def engine_on_event(eng, ctxs, callbacks, event, md_cursor: int) -> int:
    """Apply one md.events record; ``md_cursor`` counts the records consumed with it (orders decided on it
    carry it). Return 1 if a callback asked for its model's answer (hand over to Python), else 0."""
    eng.words[E_MD_CURSOR] = md_cursor
    symbol = event.symbol_id
    if symbol < 0 or symbol >= eng.owner.shape[0]:
        return 0
    ts = event.ts_exch
    if ts > 0:
        if ts >= eng.words[E_NEXT_TIMER] and engine_fire_timers(eng, ctxs, callbacks, ts) != 0:
            return 1  # (the record itself is applied: the model's answer comes before the next one)
        _advance_clock(eng, ts)
    kind = event.kind
    last = (event.flags & FLAG_LAST_IN_FRAME) != 0
    owner = eng.owner[symbol]
    callback = -1
    if kind == EV_TRADE:
        on_trade(symbol, ts, event.price, event.size, event.side, eng.kparams, eng.kints, eng.kaccs, eng.kbook_ts,
                 eng.kbook_f, eng.ktrades, eng.kbuckets, eng.features)
        row = eng.last_trade[symbol]
        row[LT_PRICE] = event.price
        row[LT_SIZE] = event.size
        row[LT_SIDE] = event.side
        row[LT_TS_EXCH] = ts
        row[LT_TRADE_ID] = event.update_id
        risk_on_market(eng.risk_limits, eng.risk_state, eng.risk_fstate, symbol, 0, eng.words[E_CLOCK])
        callback = CB_TRADE
    elif kind == EV_BBO:
        row = eng.bbo[symbol]
        if event.side == SIDE_BUY:
            row[Q_BID] = event.price
            row[Q_BID_SIZE] = event.size
        else:
            row[Q_ASK] = event.price
            row[Q_ASK_SIZE] = event.size
        if last:
            row[Q_UPDATE_ID] = event.update_id
            row[Q_TS_EXCH] = ts
            row[Q_TS_RECV] = event.ts_recv
            counter_add(eng.proc, C_BBO_UPDATES, 1)
            if 0 < row[Q_BID] < row[Q_ASK]:
                risk_on_market(eng.risk_limits, eng.risk_state, eng.risk_fstate, symbol,
                               (row[Q_BID] + row[Q_ASK]) // 2, eng.words[E_CLOCK])
            callback = CB_BBO
    elif kind in (EV_BOOK_LEVEL, EV_BOOK_RESET) and last and _book_frame(eng, symbol):
        callback = CB_BOOK
    if last:
        hist_record(eng.proc, H_MD_HOP, monotonic_ns() - event.ts_init)
    if callback >= 0 and last and owner >= 0:
        _invoke(eng, ctxs, callbacks, owner, callback, symbol, event.ts_recv, md_cursor)
        if eng.words[E_MODEL_INSTANCE] >= 0:
            return 1
    return 0


# ------------------------------------------------------------------------------------------------ reports


@njit(cache=True)
def _follow_order(ctx, report) -> None:
    """Move the instance's open-orders row of the report's order to its new state; free it when final."""
    status = report.status
    if status == STATUS_DONE:
        return  # a cancel command carried out: its targets' own CANCELLED reports free their rows
    if status == STATUS_CANCEL_REJECTED:
        row = order_row(ctx, report.target_order_id)
        if row >= 0:
            ctx.orders[row, OO_CANCEL_ID] = 0  # still open after all: it may be cancelled again
        return
    row = order_row(ctx, report.order_id)
    if row < 0:
        return  # an order of an earlier life of this process, or a command's report
    if status == STATUS_NEW:
        ctx.orders[row, OO_STATE] = ORDER_OPEN
    elif status == STATUS_PARTIALLY_FILLED:
        ctx.orders[row, OO_STATE] = ORDER_PARTIAL
        ctx.orders[row, OO_LEAVES] = report.leaves
        ctx.orders[row, OO_FILLED] = report.cum_filled
    else:  # FILLED, CANCELLED, REJECTED, EXPIRED: the order is over
        for column in range(N_OO):
            ctx.orders[row, column] = 0
        high = ctx.ctl[CTL_ORDERS_HIGH]
        while high > 0 and ctx.orders[high - 1, OO_ID] == 0:
            high -= 1
        ctx.ctl[CTL_ORDERS_HIGH] = high


@njit(cache=True)
def engine_on_report(eng, ctxs, callbacks, report) -> int:
    """Apply one execution report (risk, the account, the open-orders table) and call the instance's
    ``on_execution``. Return 1 if a callback asked for its model's answer."""
    symbol = report.symbol_id
    # a breaker tripped here shows as denials of that reason on the next orders
    risk_on_execution(eng.risk_limits, eng.risk_state, eng.risk_fstate, symbol, report.status, report.reason,
                      report.price, report.position, report.entry_notional, report.realized_pnl, eng.words[E_CLOCK])
    known = 0 <= symbol < eng.account.shape[0]
    if known:
        row = eng.account[symbol]
        row[ACC_POSITION] = report.position
        row[ACC_ENTRY_NOTIONAL] = report.entry_notional
        row[ACC_REALIZED] = report.realized_pnl
        row[ACC_FEES] = report.total_fees
        row[ACC_MARK_X2] = report.mid_x2
    instance = report.strategy_id - 1
    if instance < 0 or instance >= eng.words[E_N_INSTANCES]:
        return 0
    ctx = ctxs[instance]
    _follow_order(ctx, report)
    if report.status == STATUS_DONE:
        return 0
    ctx.report[0] = report
    _invoke(eng, ctxs, callbacks, instance, CB_EXECUTION, symbol if known else -1, 0, eng.words[E_MD_CURSOR])
    return 1 if eng.words[E_MODEL_INSTANCE] >= 0 else 0


# ------------------------------------------------------------------------------------------------ the pipeline loop


@structref.register
class StrategyIOType(types.StructRef):
    """The rings the pipeline's strategy loop reads, and where it is in its batches."""


class StrategyIORef(structref.StructRefProxy):
    """Python handle of the loop's I/O bundle."""


IO_MD_CONSUMER = 0
IO_EXEC_CONSUMER = 1
IO_STOP_INDEX = 2  # control word of the stop stage
IO_STAGE = 3  # this process's stop stage
IO_WAIT = 4  # wait strategy when idle
IO_MD_START = 5  # ring sequence of md_batch[0]
IO_MD_N = 6  # records in md_batch
IO_MD_K = 7  # the next one to apply
IO_EXEC_N = 8
IO_EXEC_K = 9
N_IO = 16

IO_FIELDS = (
    ("words", types.int64[::1]),
    ("md_ctrl", types.int64[::1]),
    ("md_slots", types.Array(md_event_t, 1, "C")),
    ("md_batch", types.Array(md_event_t, 1, "C")),
    ("exec_ctrl", types.int64[::1]),
    ("exec_slots", types.Array(exec_report_t, 1, "C")),
    ("exec_batch", types.Array(exec_report_t, 1, "C")),
    ("control_words", types.int64[::1]),
    ("proc", types.int64[::1]),
)
structref.define_proxy(StrategyIORef, StrategyIOType, field_names(IO_FIELDS))
io_t = StrategyIOType(IO_FIELDS)


@njit(cache=True)
def _new_io(words, md_ctrl, md_slots, md_batch, exec_ctrl, exec_slots, exec_batch, control_words, proc):
    return StrategyIORef(words, md_ctrl, md_slots, md_batch, exec_ctrl, exec_slots, exec_batch, control_words, proc)


@dataclass
class StrategyIO:
    words: np.ndarray
    ref: StrategyIORef


def new_io(md_ring, exec_ring, md_consumer: int, exec_consumer: int, control_words: np.ndarray, proc: np.ndarray,
           stop_index: int, stage: int, wait_strategy: int, md_batch: int = 1024, exec_batch: int = 256) -> StrategyIO:
    """The loop's I/O over two rings (``shm_layout.ring.Ring`` objects)."""
    from shm_layout.records import EXEC_REPORT, MD_EVENT

    words = np.zeros(N_IO, np.int64)
    words[IO_MD_CONSUMER] = md_consumer
    words[IO_EXEC_CONSUMER] = exec_consumer
    words[IO_STOP_INDEX] = stop_index
    words[IO_STAGE] = stage
    words[IO_WAIT] = wait_strategy
    values = (words, md_ring.ctrl, md_ring.slots, np.zeros(md_batch, MD_EVENT), exec_ring.ctrl, exec_ring.slots,
              np.zeros(exec_batch, EXEC_REPORT), control_words, proc)
    check_fields("StrategyIO", IO_FIELDS, values)
    return StrategyIO(words, _new_io(*values))


def _strategy_loop(eng, io, ctxs, callbacks, max_run_ns):
    """Run until ``max_run_ns`` passed (LOOP_TIMEOUT), a callback asked for its model (LOOP_NEED_MODEL), or the
    stop stage came with md.events drained (LOOP_STOPPED). Resumable: where it is in its batches lives in
    ``io.words``, so a return mid-batch (a model hand-off, a callback that raised) continues with the next
    record, the one that was being handled counting as consumed."""
    # Python's housekeeping between slices stalls every event behind it (~50 µs at best, a strategy snapshot
    # ~250 µs), so a slice ends at its deadline only on an idle pass (idle_pass), between two events, like the
    # broker's; under a load that never pauses it ends at ``hard_deadline``.
    deadline = monotonic_ns() + max_run_ns
    hard_deadline = deadline + 9 * max_run_ns
    w = io.words
    md_consumer = w[IO_MD_CONSUMER]
    idle_rounds = 0
    while True:
        # executions before market data: an execution published before a frame (a lock-step replay guarantees
        # that) is applied before the frame is evaluated
        if w[IO_EXEC_K] < w[IO_EXEC_N]:
            k = w[IO_EXEC_K]
            w[IO_EXEC_K] = k + 1
            if engine_on_report(eng, ctxs, callbacks, io.exec_batch[k]) != 0:
                return LOOP_NEED_MODEL
            continue
        if w[IO_MD_K] < w[IO_MD_N]:
            k = w[IO_MD_K]
            w[IO_MD_K] = k + 1
            wanted = engine_on_event(eng, ctxs, callbacks, io.md_batch[k], w[IO_MD_START] + k + 1)
            if w[IO_MD_K] == w[IO_MD_N] or wanted != 0:
                # processed, not just copied: the cursor a lock-step feed and the broker wait on. Orders the
                # callbacks sent on these records are on strategy.orders already.
                ring_release(io.md_ctrl, md_consumer, w[IO_MD_START] + w[IO_MD_K])
            if wanted != 0:
                return LOOP_NEED_MODEL
            continue
        now = monotonic_ns()
        if now >= hard_deadline and max_run_ns > 0:
            return LOOP_TIMEOUT  # data never stopped for a whole extra slice: housekeeping cannot wait longer
        n_md = ring_read_hold(io.md_ctrl, io.md_slots, md_consumer, io.md_batch, io.md_batch.shape[0])
        n_exec = ring_read(io.exec_ctrl, io.exec_slots, w[IO_EXEC_CONSUMER], io.exec_batch, io.exec_batch.shape[0])
        if n_md > 0:
            counter_add(io.proc, C_MSGS_IN, n_md)
            w[IO_MD_START] = ring_tail(io.md_ctrl, md_consumer)
            w[IO_MD_N] = n_md
            w[IO_MD_K] = 0
        if n_exec > 0:
            w[IO_EXEC_N] = n_exec
            w[IO_EXEC_K] = 0
        if n_md > 0 or n_exec > 0:
            idle_rounds = 0
            continue
        # idle: live runs let timers fire by the machine's clock (a quiet market still ticks)
        if eng.words[E_CLOCK_FALLBACK] != 0 and eng.words[E_NEXT_TIMER] < NO_TIMER and eng.words[E_VENUE_MONO] > 0:
            venue_now = eng.words[E_CLOCK] + (now - eng.words[E_VENUE_MONO])
            if venue_now >= eng.words[E_NEXT_TIMER]:
                if engine_fire_timers(eng, ctxs, callbacks, venue_now) != 0:
                    return LOOP_NEED_MODEL
                continue
        status = idle_pass(io.proc, io.control_words, w[IO_STOP_INDEX], w[IO_STAGE], deadline, w[IO_WAIT],
                           idle_rounds)
        if status != LOOP_CONTINUE:
            return status
        idle_rounds += 1


strategy_loop = njit(cache=True)(_strategy_loop)


@njit(cache=True)
def engine_feed(eng, ctxs, callbacks, events, first: int, end: int, md_start: int) -> int:
    """Apply ``events[first:end]``; stop early when a callback asks for its model. Return the next index
    (``E_NEXT`` holds it too, for a caller whose callback raised)."""
    for k in range(first, end):
        eng.words[E_NEXT] = k + 1
        if engine_on_event(eng, ctxs, callbacks, events[k], md_start + k + 1) != 0:
            return k + 1
    return end


@njit(cache=True)
def engine_reports(eng, ctxs, callbacks, reports, first: int, end: int) -> int:
    """Apply ``reports[first:end]``, as ``engine_feed`` does events."""
    for k in range(first, end):
        eng.words[E_NEXT] = k + 1
        if engine_on_report(eng, ctxs, callbacks, reports[k]) != 0:
            return k + 1
    return end


# --- entry points from Python: each takes the strategy set (one pointer), never the callback table itself,
# whose unboxing would cost milliseconds per call (hft.strategy.context.StrategySetRef) ---


@njit(cache=True)
def loop_entry(eng, io, team, max_run_ns: int) -> int:
    return strategy_loop(eng, io, team.ctxs, team.callbacks, max_run_ns)


@njit(cache=True)
def start_entry(eng, team, instance: int) -> int:
    return engine_start(eng, team.ctxs, team.callbacks, instance)


@njit(cache=True)
def answer_entry(eng, team) -> int:
    return engine_model_answer(eng, team.ctxs, team.callbacks)


@njit(cache=True)
def halt_entry(eng, team, instance: int) -> int:
    return halt_instance(eng, team.ctxs, instance)


@njit(cache=True)
def timers_entry(eng, team, until_ts: int) -> int:
    return engine_fire_timers(eng, team.ctxs, team.callbacks, until_ts)


@njit(cache=True)
def feed_entry(eng, team, events, k: int, n: int, md_start: int) -> int:
    return engine_feed(eng, team.ctxs, team.callbacks, events, k, n, md_start)


@njit(cache=True)
def reports_entry(eng, team, reports, k: int, n: int) -> int:
    return engine_reports(eng, team.ctxs, team.callbacks, reports, k, n)


# compiled for exactly these types, once (cached): the callbacks are function pointers, not a specialization
LOOP_SIGNATURE = (engine_t, io_t, strategy_set_t, types.int64)
