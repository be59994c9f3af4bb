"""The backtest's one jitted loop: the pipeline's lock-step replay, in one process, on the same engine code.

What the four processes do for every frame of a lock-step replay, this loop does in the same order, calling the
same functions (``hft.strategy.engine`` for the strategy, ``hft.broker.matching`` for the broker):

1. the feed publishes the frame: the book snapshots it changed (seqlock words, which the strategy reads on a
   depth frame), then its events;
2. the strategy applies the execution reports the broker published since the last frame (the strategy loop
   takes executions before market data, and the lock-step feed published this frame only once the broker had
   published everything the last frame caused), then the frame's events, calling the user's callbacks; its
   orders go to an order ring in this process's memory (``LocalRing``), through the same risk checks;
3. the broker takes every order on that ring (``accept``), then applies the frame's events (``on_event``): orders
   arrive between events at their venue arrival time (decision time + entry latency), never before the event
   after the one they were decided on (``ORDER.md_cursor``); its reports are numbered like the executions
   ring's (``exec_id`` = sequence + 1) and queued for the strategy and for the database.

Why this equals the pipeline: the broker's fills are a function of the market-data sequence and the orders
alone (``hft.broker.matching``), the strategy's decisions of the events and of the reports delivered before
each frame, and the lock-step feed fixes both orders. Tests hold the backtest to the four-process replay.

Resumable, like the strategy loop: where it is (frame, phase, index) lives in ``bt.words``, so the loop can
return to Python mid-frame and continue with the next record: when a callback asks for its model
(``BT_NEED_MODEL``), when a sink is full (``BT_FLUSH``: Python writes the orders, reports and equity samples,
then calls again), or when a callback raised (the exception propagates; the record counts as consumed, Python
halts that instance and calls again). ``BT_DONE``: the chunk is finished.

Equity samples are taken on the venue clock: at every multiple of ``W_SAMPLE_NS`` crossed by a frame's venue
time, the state just before that frame (position, entry notional, realized PnL and fees from the broker's
accounts, the mid from the feed's snapshot), so a replayed day gives the same samples every time.
"""

from __future__ import annotations

from numba import njit, types
from numba.experimental import structref

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_FEES, K_POSITION, K_REALIZED
from hft.broker.matching import ST_BBO_REFUSED, ST_BBO_TAKEN, ST_MD_POS, ST_N_OUT, accept, on_event, shutdown
from hft.broker.state import broker_state_t
from hft.bundle import check_fields, field_names
from hft.strategy.context import strategy_set_t
from hft.strategy.engine import engine_on_event, engine_on_report, engine_t
from shm_layout.atomics import monotonic_ns
from shm_layout.records import BOOK_SNAPSHOT, exec_report_t, md_event_t, order_t
from shm_layout.ring import ring_available, ring_release, ring_tail
from shm_layout.seqlock import SLOT_WORDS, seqlock_write

BT_DONE = 0
BT_NEED_MODEL = 1
BT_FLUSH = 2

# --- bt.words[W_*] ---
W_FRAME = 0  # the chunk's frame being handled
W_PHASE = 1  # PH_* within it
W_K = 2  # the next event of the chunk (phases PH_STRATEGY_EVENTS and PH_BROKER_EVENTS)
W_SNAP_K = 3  # the chunk's next snapshot row to publish
W_MD_BASE = 4  # global md position of the chunk's first event (events before it: earlier chunks)
W_N_ORDERS = 5  # orders in the orders sink
W_N_REPORTS = 6  # reports in the reports sink
W_STRATEGY_REPORT = 7  # the next report of the sink the strategy has to apply
W_REPORTS_WRITTEN = 8  # reports of the sink already handed to the database (Python)
W_EXEC_SEQ = 9  # reports numbered so far: exec_id = sequence + 1, as on the executions ring
W_N_SAMPLES = 10  # equity samples in the samples sink
W_NEXT_SAMPLE = 11  # venue time of the next sample (0: not started)
W_SAMPLE_NS = 12  # sampling interval, venue ns
W_CLOCK = 13  # the latest venue time of any event
W_ORDER_CONSUMER = 14  # the broker's consumer index on the order ring
W_FRAMES = 15  # frames handled, all chunks
W_BBO_TAKEN = 16  # bookTickers the broker took as the touch
W_BBO_REFUSED = 17  # bookTickers the broker refused (crossed, empty, lone)
N_W = 24

# --- phases of a frame ---
PH_PUBLISH = 0
PH_STRATEGY_REPORTS = 1
PH_STRATEGY_EVENTS = 2
PH_BROKER_ORDERS = 3
PH_BROKER_EVENTS = 4
PH_FRAME_END = 5

# --- chunk.words[CW_*] ---
CW_N_FRAMES = 0
CW_N_SNAPS = 1
CW_N_EVENTS = 2
N_CW = 4

# --- samples[n, :]: the venue time, then per symbol SAMPLE_FIELDS words ---
S_POSITION = 0
S_ENTRY_NOTIONAL = 1
S_REALIZED = 2
S_FEES = 3
S_MID_X2 = 4
SAMPLE_FIELDS = 5

SNAP_MID_X2 = BOOK_SNAPSHOT.fields["mid_x2"][1] // 8  # words of a seqlock slot (word 0 is the sequence)
SNAP_BID = BOOK_SNAPSHOT.fields["bid_price"][1] // 8
SNAP_ASK = BOOK_SNAPSHOT.fields["ask_price"][1] // 8
assert BOOK_SNAPSHOT.itemsize == SLOT_WORDS * 8


@structref.register
class BacktestType(types.StructRef):
    """The numba type of the backtest's own state (``BT_FIELDS``)."""


class BacktestRef(structref.StructRefProxy):
    """The loop's state besides the engine and the broker: the order ring, the snapshots, the sinks."""


BT_FIELDS = (
    ("words", types.int64[::1]),
    ("snap_words", types.int64[::1]),  # the feed's book snapshots, seqlock slots (what the strategy reads)
    ("order_ctrl", types.int64[::1]),  # the order ring (a LocalRing): strategy -> broker
    ("order_slots", types.Array(order_t, 1, "C")),
    ("orders", types.Array(order_t, 1, "C")),  # sink: every command the broker took, for the database
    ("reports", types.Array(exec_report_t, 1, "C")),  # sink: every report, for the strategy and the database
    ("samples", types.int64[:, ::1]),  # sink: equity samples
)
structref.define_proxy(BacktestRef, BacktestType, field_names(BT_FIELDS))
backtest_t = BacktestType(BT_FIELDS)


@structref.register
class ChunkType(types.StructRef):
    """The numba type of a chunk of frames (``CHUNK_FIELDS``)."""


class ChunkRef(structref.StructRefProxy):
    """Frames of market data as the feed published them: events, frame ends, and the snapshots before them."""


CHUNK_FIELDS = (
    ("words", types.int64[::1]),  # CW_*
    ("events", types.Array(md_event_t, 1, "C")),
    ("frame_end", types.int64[::1]),  # frame f's events are events[frame_end[f - 1]:frame_end[f]]
    ("snap_rows", types.int64[:, ::1]),  # BOOK_SNAPSHOT records as seqlock words, in publication order
    ("snap_frame", types.int64[::1]),  # the frame each row is published with (before its events)
    ("snap_symbol", types.int64[::1]),  # the symbol (seqlock slot) of each row
)
structref.define_proxy(ChunkRef, ChunkType, field_names(CHUNK_FIELDS))
chunk_t = ChunkType(CHUNK_FIELDS)


@njit(cache=True)
def _new_backtest(words, snap_words, order_ctrl, order_slots, orders, reports, samples):
    return BacktestRef(words, snap_words, order_ctrl, order_slots, orders, reports, samples)


@njit(cache=True)
def _new_chunk(words, events, frame_end, snap_rows, snap_frame, snap_symbol):
    return ChunkRef(words, events, frame_end, snap_rows, snap_frame, snap_symbol)


def new_backtest(values: tuple) -> BacktestRef:
    check_fields("Backtest", BT_FIELDS, values)
    return _new_backtest(*values)


def new_chunk(values: tuple) -> ChunkRef:
    check_fields("Chunk", CHUNK_FIELDS, values)
    return _new_chunk(*values)


# ------------------------------------------------------------------------------------------------ the loop


@njit(cache=True)
def _deliver(bt, bk) -> bool:
    """Move the broker's reports to the sink, numbered as the executions ring numbers them. False (nothing
    moved) if the sink lacks room: the caller returns BT_FLUSH and calls again after Python emptied it."""
    w = bt.words
    n = bk.state[ST_N_OUT]
    if n == 0:
        return True
    if w[W_N_REPORTS] + n > bt.reports.shape[0]:
        return False
    now = monotonic_ns()
    for k in range(n):
        report = bk.out[k]
        w[W_EXEC_SEQ] += 1
        report.exec_id = w[W_EXEC_SEQ]
        report.ts_init = now
        bt.reports[w[W_N_REPORTS]] = report
        w[W_N_REPORTS] += 1
    bk.state[ST_N_OUT] = 0
    return True


@njit(cache=True)
def _sample(bt, bk, ts: int) -> None:
    """One equity sample at venue time ``ts``: the accounts and the feed's mids as they are now."""
    w = bt.words
    row = bt.samples[w[W_N_SAMPLES]]
    row[0] = ts
    account = bk.account
    for symbol in range(account.shape[0]):
        base = 1 + symbol * SAMPLE_FIELDS
        row[base + S_POSITION] = account[symbol, K_POSITION]
        row[base + S_ENTRY_NOTIONAL] = account[symbol, K_ENTRY_NOTIONAL]
        row[base + S_REALIZED] = account[symbol, K_REALIZED]
        row[base + S_FEES] = account[symbol, K_FEES]
        slot = symbol * SLOT_WORDS
        known = bt.snap_words[slot + SNAP_BID] > 0 and bt.snap_words[slot + SNAP_ASK] > 0
        row[base + S_MID_X2] = bt.snap_words[slot + SNAP_MID_X2] if known else 0
    w[W_N_SAMPLES] += 1


@njit(cache=True)
def _samples_due(bt, bk, ts: int) -> bool:
    """Take the samples of every grid point up to venue time ``ts`` (the state before the frame at ``ts``).
    False if the sink filled first (the rest are taken after the flush)."""
    w = bt.words
    interval = w[W_SAMPLE_NS]
    if interval <= 0 or ts <= 0:
        return True
    if w[W_NEXT_SAMPLE] == 0:
        w[W_NEXT_SAMPLE] = (ts // interval + 1) * interval  # the first grid point after the data starts
        return True
    while w[W_NEXT_SAMPLE] <= ts:
        if w[W_N_SAMPLES] >= bt.samples.shape[0]:
            return False
        _sample(bt, bk, w[W_NEXT_SAMPLE])
        w[W_NEXT_SAMPLE] += interval
    return True


@njit(cache=True)
def _frame_ts(chunk, first: int, end: int) -> int:
    """The venue time of a frame: its latest event's (0: none carries one yet)."""
    ts = 0
    for k in range(first, end):
        if chunk.events[k].ts_exch > ts:
            ts = chunk.events[k].ts_exch
    return ts


@njit(cache=True)
def _flush_wanted(bt) -> bool:
    """Between frames: hand the sinks to Python once half full, so a flush never waits for a full sink."""
    w = bt.words
    return (w[W_N_ORDERS] * 2 > bt.orders.shape[0] or w[W_N_REPORTS] * 2 > bt.reports.shape[0]
            or w[W_N_SAMPLES] * 2 > bt.samples.shape[0])


@njit(cache=True)
def backtest_chunk(bt, chunk, eng, team, bk) -> int:
    """Run the chunk's frames from where ``bt.words`` says (the module docstring); return a ``BT_*`` status."""
    w = bt.words
    ctxs = team.ctxs
    callbacks = team.callbacks
    events = chunk.events
    room = bk.out.shape[0] - 2 * bk.table.shape[0] - 8  # as the broker loop: one event adds <= 2 per held order
    order_mask = bt.order_slots.shape[0] - 1
    n_frames = chunk.words[CW_N_FRAMES]
    while w[W_FRAME] < n_frames:
        f = w[W_FRAME]
        first = chunk.frame_end[f - 1] if f > 0 else 0
        end = chunk.frame_end[f]
        phase = w[W_PHASE]
        if phase == PH_PUBLISH:
            if _flush_wanted(bt):
                return BT_FLUSH
            if not _samples_due(bt, bk, _frame_ts(chunk, first, end)):
                return BT_FLUSH
            k = w[W_SNAP_K]
            while k < chunk.words[CW_N_SNAPS] and chunk.snap_frame[k] <= f:
                seqlock_write(bt.snap_words, chunk.snap_symbol[k], chunk.snap_rows[k])
                k += 1
            w[W_SNAP_K] = k
            w[W_PHASE] = PH_STRATEGY_REPORTS
        elif phase == PH_STRATEGY_REPORTS:
            if w[W_STRATEGY_REPORT] < w[W_N_REPORTS]:
                k = w[W_STRATEGY_REPORT]
                w[W_STRATEGY_REPORT] = k + 1
                if engine_on_report(eng, ctxs, callbacks, bt.reports[k]) != 0:
                    return BT_NEED_MODEL
                continue
            w[W_PHASE] = PH_STRATEGY_EVENTS
            w[W_K] = first
        elif phase == PH_STRATEGY_EVENTS:
            k = w[W_K]
            if k < end:
                w[W_K] = k + 1
                if engine_on_event(eng, ctxs, callbacks, events[k], w[W_MD_BASE] + k + 1) != 0:
                    return BT_NEED_MODEL
                continue
            w[W_PHASE] = PH_BROKER_ORDERS
        elif phase == PH_BROKER_ORDERS:
            consumer = w[W_ORDER_CONSUMER]
            available = ring_available(bt.order_ctrl, consumer)
            if available > 0:
                if w[W_N_ORDERS] + available > bt.orders.shape[0]:
                    return BT_FLUSH
                tail = ring_tail(bt.order_ctrl, consumer)
                for j in range(available):
                    if bk.state[ST_N_OUT] >= room and not _deliver(bt, bk):
                        ring_release(bt.order_ctrl, consumer, tail + j)
                        return BT_FLUSH
                    order = bt.order_slots[(tail + j) & order_mask]
                    bt.orders[w[W_N_ORDERS]] = order
                    w[W_N_ORDERS] += 1
                    accept(bk, order, tail + j)
                ring_release(bt.order_ctrl, consumer, tail + available)
            w[W_PHASE] = PH_BROKER_EVENTS
            w[W_K] = first
            bk.state[ST_MD_POS] = w[W_MD_BASE] + first
        elif phase == PH_BROKER_EVENTS:
            k = w[W_K]
            if k < end:
                if bk.state[ST_N_OUT] >= room and not _deliver(bt, bk):
                    return BT_FLUSH
                w[W_K] = k + 1
                on_event(bk, events[k])
                if events[k].ts_exch > w[W_CLOCK]:
                    w[W_CLOCK] = events[k].ts_exch
                continue
            w[W_PHASE] = PH_FRAME_END
        else:  # PH_FRAME_END
            if not _deliver(bt, bk):
                return BT_FLUSH
            w[W_BBO_TAKEN] += bk.state[ST_BBO_TAKEN]
            w[W_BBO_REFUSED] += bk.state[ST_BBO_REFUSED]
            bk.state[ST_BBO_TAKEN] = 0
            bk.state[ST_BBO_REFUSED] = 0
            w[W_FRAMES] += 1
            w[W_FRAME] = f + 1
            w[W_PHASE] = PH_PUBLISH
    return BT_DONE


@njit(cache=True)
def backtest_finish(bt, bk) -> int:
    """The end of the data, as the pipeline stops: every pending order arrives against the final book, then
    every resting order is cancelled (SHUTDOWN); then the final equity sample at the last venue time. Return
    BT_FLUSH while the sinks need emptying first (call again), BT_DONE when finished."""
    w = bt.words
    while True:
        if not _deliver(bt, bk):
            return BT_FLUSH
        left = shutdown(bk)
        if not _deliver(bt, bk):
            return BT_FLUSH
        if left == 0:
            break
    if w[W_N_SAMPLES] >= bt.samples.shape[0]:
        return BT_FLUSH
    if w[W_CLOCK] > 0:
        _sample(bt, bk, w[W_CLOCK])
    return BT_DONE


CHUNK_SIGNATURE = (backtest_t, chunk_t, engine_t, strategy_set_t, broker_state_t)
FINISH_SIGNATURE = (backtest_t, broker_state_t)
