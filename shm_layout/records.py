"""Every record that lies in shared memory, declared once as an aligned numpy structured dtype.

Conventions (``../shared/STYLE.md``):

* Prices and sizes are fixed-point ``int64``: ``price = value * 10**price_decimals`` and
  ``size = value * 10**size_decimals`` with per-symbol decimals from the symbol table (``SYMBOL_INFO``).
  Money (PnL, notional, fees) is ``price * size``, i.e. in units of ``10**-(price_decimals + size_decimals)``.
* Timestamps are ``int64`` nanoseconds: ``ts_exch`` is the venue's clock (epoch), ``ts_recv`` and ``ts_init``
  are CLOCK_MONOTONIC on this machine (``shm_layout.atomics.monotonic_ns``), comparable across processes.
* Every dtype is ``align=True`` and padded to a multiple of 64 bytes so that a record never straddles a slot
  boundary; its size is asserted below and pinned with its field offsets in ``tests/unit/shm_layout``.
* Flags and enums are module-level ``int`` constants: numba folds them into the jitted code.

Byte maps (offset: field)::

    MD_EVENT (64)     0 ts_exch | 8 ts_recv | 16 ts_init | 24 price | 32 size | 40 update_id
                      48 symbol_id:i4 | 52 kind:i4 | 56 side:i4 | 60 flags:i4
    ORDER (128)       0 order_id | 8 ts_tick_recv | 16 ts_init | 24 ts_exch | 32 price | 40 size | 48 md_cursor
                      56 expire_ts | 64 target_order_id | 72 symbol_id:i4 | 76 strategy_id:i4 | 80 side:i2
                      82 order_type:i2 | 84 tif:i2 | 86 command:i2 | 88 spare[5]
    EXEC_REPORT (192) 0 exec_id | 8 order_id | 16 ts_tick_recv | 24 ts_order_init | 32 ts_init | 40 ts_exch
                      48 price | 56 size | 64 leaves | 72 cum_filled | 80 cum_notional | 88 position
                      96 entry_notional | 104 realized_pnl | 112 fill_pnl | 120 closed | 128 fee | 136 mid_x2
                      144 symbol_id:i4 | 148 strategy_id:i4 | 152 side:i2 | 154 status:i2 | 156 reason:i2
                      158 order_type:i2 | 160 tif:i2 | 162 liquidity:i2 | 164 flags:i4 | 168 total_fees
                      176 target_order_id | 184 spare
    BOOK_SNAPSHOT (448) 0 seq | 8 ts_exch | 16 ts_recv | 24 ts_init | 32 update_id | 40 bid_price | 48 bid_size
                      56 ask_price | 64 ask_size | 72 mid_x2 | 80 spread | 88 imbalance:f8 | 96 symbol_id:i4
                      100 status:i4 | 104 n_bid_levels:i4 | 108 n_ask_levels:i4 | 112 bid_prices[10] | 192 bid_sizes[10]
                      272 ask_prices[10] | 352 ask_sizes[10] | 432 spare[2]
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import from_dtype

CACHE_LINE = 64
TOP_LEVELS = 10  # depth published with every snapshot
MAX_SYMBOLS = 16
MAX_CONSUMERS = 8  # consumer slots per ring
MAX_PROCESSES = 8  # process blocks in the control region
HIST_BUCKETS = 512  # log-linear latency buckets (see shm_layout.counters)
HIST_HEADER_WORDS = 8  # count, sum, min, max, 4 spare
N_COUNTERS = 80
N_HISTOGRAMS = 2
BLOB_HEADER_WORDS = 8  # seq, length in bytes, ts_exch, 5 spare: one cache line
STRATEGY_STATE_BYTES = 65536

# --- market-data event kinds (MD_EVENT.kind) ---
EV_BOOK_LEVEL = 1  # absolute size at a price level; size 0 removes the level
EV_TRADE = 2  # a print; side is the aggressor's side
EV_BBO = 3  # a bookTicker update (best bid/ask as the venue reports it): two records, bid then ask
# Spot bookTicker carries no event time: the feed stamps EV_BBO.ts_exch with the symbol's latest venue time
# (depth E, trade E) plus the local time elapsed since that event arrived (hft.feed.sync.bbo_emit), so every
# consumer orders it on the venue clock and a replay, which uses the recorded receive times, stamps it the same.
EV_BOOK_RESET = 4  # the book was cleared (resync); levels of the new snapshot follow

# --- MD_EVENT.flags bits ---
FLAG_LAST_IN_FRAME = 1  # last event decoded from one wire frame: consumers act on complete frames
FLAG_SNAPSHOT = 2  # level comes from a REST snapshot, not a diff

# --- sides ---
SIDE_BUY = 1  # bid side of the book, or a buy order / buyer-initiated trade
SIDE_SELL = -1

# --- orders (ORDER.order_type / tif / command) ---
ORDER_MARKET = 1  # walks the visible book; never rests (a remainder is cancelled, or rejected under FOK)
ORDER_LIMIT = 2  # the marketable part walks the book up to the limit price; the rest rests (GTC/GTD)
ORDER_POST_ONLY = 3  # rests only: rejected if it would take liquidity on arrival
ORDER_IOC = 4  # a limit order with time in force IOC, whatever ``tif`` says
ORDER_FOK = 5  # a limit order with time in force FOK, whatever ``tif`` says
TIF_GTC = 1
TIF_IOC = 2  # fill what you can on arrival, cancel the rest
TIF_FOK = 3  # fill in full on arrival or reject
TIF_GTD = 4  # like GTC until ``expire_ts`` (venue clock), then EXPIRED
CMD_NEW = 1
CMD_CANCEL = 2  # cancel ``target_order_id``
CMD_CANCEL_ALL = 3  # cancel every resting order of ``strategy_id`` (in ``symbol_id``, or all symbols if -1)

# --- execution report: status is the order's state after the report ---
STATUS_FILLED = 1
STATUS_PARTIALLY_FILLED = 2
STATUS_REJECTED = 3
STATUS_CANCELLED = 4
STATUS_NEW = 5  # accepted and resting (the ack of an order that did not fill in full on arrival)
STATUS_EXPIRED = 6  # a GTD order reached its expiry
# The reports of CANCEL and CANCEL_ALL commands (``order_id`` is the command's, ``target_order_id`` its target):
STATUS_CANCEL_REJECTED = 7  # a CANCEL found no open order to cancel (a cancel race, or an unknown id)
STATUS_DONE = 8  # a CANCEL or CANCEL_ALL carried out: its targets' own reports say CANCELLED

REASON_NONE = 0
REASON_NO_MARKET = 1  # the symbol has no two-sided book at the order's arrival
REASON_NOT_MARKETABLE = 2  # unused since the fill simulator rests limit orders (kept: persisted value)
REASON_BAD_ORDER = 3  # unknown command, side, type or time in force, or an impossible combination
REASON_UNKNOWN_SYMBOL = 4
REASON_BAD_SIZE = 5  # size <= 0
REASON_OFF_LOT = 6  # size not a multiple of the symbol's lot
REASON_BAD_PRICE = 7  # limit price <= 0
REASON_OFF_TICK = 8  # limit price not a multiple of the symbol's tick
REASON_POST_ONLY_WOULD_CROSS = 9
REASON_FOK_UNFILLABLE = 10  # the visible book cannot fill the FOK order in full within its price
REASON_GTD_EXPIRED = 11  # a GTD order whose expiry is not after its arrival
REASON_UNKNOWN_ORDER = 12  # a cancel for an order that is not resting (filled, cancelled, never existed)
REASON_TOO_MANY_ORDERS = 13  # the broker's table of open orders is full
REASON_IOC_REMAINDER = 14  # cancelled: the part of an IOC or market order the book could not fill
REASON_CANCEL_REQUESTED = 15  # cancelled by a CANCEL or CANCEL_ALL command
REASON_SHUTDOWN = 16  # cancelled because the broker stopped
REASON_EXPIRED = 17  # the GTD order's expiry passed
REASON_NO_LIQUIDITY = 18  # a market order met an empty opposite side
REASON_BROKER_RESTART = 19  # cancelled: the broker died holding it and was restarted (its book was lost)
REASON_STRATEGY_DOWN = 20  # cancelled: the strategy that sent it died
REASON_TOO_LATE_TO_CANCEL = 21  # a CANCEL whose target had already ended (filled, cancelled, expired): a race
REASON_NAMES = (
    "", "NO_MARKET", "NOT_MARKETABLE", "BAD_ORDER", "UNKNOWN_SYMBOL", "BAD_SIZE", "OFF_LOT", "BAD_PRICE",
    "OFF_TICK", "POST_ONLY_WOULD_CROSS", "FOK_UNFILLABLE", "GTD_EXPIRED", "UNKNOWN_ORDER", "TOO_MANY_ORDERS",
    "IOC_REMAINDER", "CANCEL_REQUESTED", "SHUTDOWN", "EXPIRED", "NO_LIQUIDITY", "BROKER_RESTART", "STRATEGY_DOWN",
    "TOO_LATE_TO_CANCEL",
)
STATUS_NAMES = ("", "FILLED", "PARTIALLY_FILLED", "REJECTED", "CANCELLED", "NEW", "EXPIRED", "CANCEL_REJECTED",
                "DONE")
ORDER_TYPE_NAMES = ("", "MARKET", "LIMIT", "POST_ONLY", "IOC", "FOK")
TIF_NAMES = ("", "GTC", "IOC", "FOK", "GTD")
COMMAND_NAMES = ("", "NEW", "CANCEL", "CANCEL_ALL")
LIQUIDITY_TAKER = 1
LIQUIDITY_MAKER = 2
EXEC_FIRST = 1  # EXEC_REPORT.flags: the first report of its order (ack, first fill or rejection)

# --- book snapshot status ---
BOOK_EMPTY = 0
BOOK_SYNCED = 1
BOOK_RESYNCING = 2

SYMBOL_INFO = np.dtype(
    [
        ("name", "S16"),
        ("symbol_id", np.int64),
        ("price_decimals", np.int64),
        ("size_decimals", np.int64),
        ("tick_size", np.int64),  # in price units (10**-price_decimals)
        ("lot_size", np.int64),  # in size units
        ("spare", np.int64),
    ],
    align=True,
)

MD_EVENT = np.dtype(
    [
        ("ts_exch", np.int64),
        ("ts_recv", np.int64),
        ("ts_init", np.int64),
        ("price", np.int64),
        ("size", np.int64),
        ("update_id", np.int64),
        ("symbol_id", np.int32),
        ("kind", np.int32),
        ("side", np.int32),
        ("flags", np.int32),
    ],
    align=True,
)

ORDER = np.dtype(
    [
        ("order_id", np.int64),  # the ring sequence + 1: unique in a run, for every command
        ("ts_tick_recv", np.int64),  # ts_recv of the market-data frame that caused the order
        ("ts_init", np.int64),  # when the strategy created the order
        ("ts_exch", np.int64),  # venue time of the decision: the order arrives at ts_exch + entry latency
        ("price", np.int64),  # limit price; for market orders the touch the strategy saw
        ("size", np.int64),
        ("md_cursor", np.int64),  # md.events consumed when the strategy decided: the market state it saw
        ("expire_ts", np.int64),  # TIF_GTD: venue time (ns) the order expires; else 0
        ("target_order_id", np.int64),  # CMD_CANCEL: the order to cancel; else 0
        ("symbol_id", np.int32),
        ("strategy_id", np.int32),
        ("side", np.int16),
        ("order_type", np.int16),
        ("tif", np.int16),
        ("command", np.int16),
        ("spare", np.int64, 5),
    ],
    align=True,
)

EXEC_REPORT = np.dtype(
    [
        ("exec_id", np.int64),  # 1, 2, 3 ... per run (the ring sequence + 1): the persistence primary key
        ("order_id", np.int64),
        ("ts_tick_recv", np.int64),
        ("ts_order_init", np.int64),
        ("ts_init", np.int64),
        ("ts_exch", np.int64),  # venue time at which the broker's simulated market produced this report
        ("price", np.int64),  # fill price (0 without a fill)
        ("size", np.int64),  # filled size of this execution (0 without a fill)
        ("leaves", np.int64),  # size still open after it (0 once the order is done)
        ("cum_filled", np.int64),  # the order's filled size so far
        ("cum_notional", np.int64),  # sum of price * size of its fills: average price = cum_notional / cum_filled
        ("position", np.int64),  # signed position in the symbol after the report
        ("entry_notional", np.int64),  # |position| * average entry price, money units
        ("realized_pnl", np.int64),  # cumulative realized PnL of the symbol, money units, after fees
        ("fill_pnl", np.int64),  # this fill's change of realized PnL (after its fee)
        ("closed", np.int64),  # size of the position this fill reduced (0: it opened or added)
        ("fee", np.int64),  # fee of this execution, money units (negative: a maker rebate)
        ("mid_x2", np.int64),  # bid + ask of the broker's book at the report: the mark for unrealized PnL
        ("symbol_id", np.int32),
        ("strategy_id", np.int32),
        ("side", np.int16),
        ("status", np.int16),
        ("reason", np.int16),
        ("order_type", np.int16),
        ("tif", np.int16),
        ("liquidity", np.int16),
        ("flags", np.int32),  # EXEC_FIRST: the order's first report (latency histograms use it)
        ("total_fees", np.int64),  # cumulative fees of the symbol, money units
        ("target_order_id", np.int64),  # CANCEL reports (CANCEL_REJECTED, DONE): the order it named; else 0
        ("spare", np.int64),
    ],
    align=True,
)

BOOK_SNAPSHOT = np.dtype(
    [
        ("seq", np.int64),  # seqlock sequence: odd while the writer is inside
        ("ts_exch", np.int64),
        ("ts_recv", np.int64),
        ("ts_init", np.int64),
        ("update_id", np.int64),
        ("bid_price", np.int64),
        ("bid_size", np.int64),
        ("ask_price", np.int64),
        ("ask_size", np.int64),
        ("mid_x2", np.int64),  # bid + ask: the mid in half price units, exact
        ("spread", np.int64),
        ("imbalance", np.float64),  # (bid_size - ask_size) / (bid_size + ask_size) at the touch
        ("symbol_id", np.int32),
        ("status", np.int32),
        ("n_bid_levels", np.int32),
        ("n_ask_levels", np.int32),
        ("bid_prices", np.int64, TOP_LEVELS),
        ("bid_sizes", np.int64, TOP_LEVELS),
        ("ask_prices", np.int64, TOP_LEVELS),
        ("ask_sizes", np.int64, TOP_LEVELS),
        ("spare", np.int64, 2),
    ],
    align=True,
)

REGION_HEADER = np.dtype(
    [
        ("magic", np.int64),
        ("layout_version", np.int64),
        ("layout_hash", np.int64),
        ("record_size", np.int64),
        ("capacity", np.int64),
        ("creator_pid", np.int64),
        ("generation", np.int64),  # bumped at every create: a re-created segment is a new object
        ("created_ns", np.int64),  # CLOCK_REALTIME ns, for humans
        ("region_kind", np.int64),
        ("body_offset", np.int64),
        ("body_bytes", np.int64),
        ("spare", np.int64, 5),
    ],
    align=True,
)

# Written only by the consumer that owns the slot.
RING_CONSUMER = np.dtype(
    [
        ("tail", np.int64),  # records consumed: the consumer's cursor
        ("overruns", np.int64),  # times this consumer was lapped (lossy rings)
        ("lost", np.int64),  # records skipped because of overruns
        ("pid", np.int64),
        ("active", np.int64),  # 1: the producer gates on this cursor (block rings)
        ("spare", np.int64, 3),
    ],
    align=True,
)

RING_CONTROL = np.dtype(
    [
        # line 0: written by the producer only (policy/n_consumers/capacity: by the creator, once)
        ("head", np.int64),  # records published
        ("backpressure_waits", np.int64),  # times the producer found a block ring full
        ("claimed", np.int64),  # slots the producer may be writing: [head, claimed); stored before writing
        ("policy", np.int64),
        ("n_consumers", np.int64),
        ("capacity", np.int64),
        ("publishes", np.int64),  # batches published
        ("cached_min_tail", np.int64),  # producer-private cache of the slowest gating cursor
        # one line per consumer
        ("consumers", RING_CONSUMER, MAX_CONSUMERS),
    ],
    align=True,
)

PROCESS_BLOCK = np.dtype(
    [
        # line 0: identity and liveness, written by the process itself (restarts: by the supervisor)
        ("heartbeat_ns", np.int64),
        ("pid", np.int64),
        ("state", np.int64),
        ("started_ns", np.int64),
        ("core", np.int64),
        ("restarts", np.int64),
        ("spare", np.int64, 2),
        ("counters", np.int64, N_COUNTERS),
        ("histograms", np.int64, (N_HISTOGRAMS, HIST_HEADER_WORDS + HIST_BUCKETS)),
    ],
    align=True,
)

CONTROL = np.dtype(
    [
        # line 0: written by the supervisor
        ("supervisor_pid", np.int64),
        ("run_state", np.int64),
        ("stop_requested", np.int64),  # stop stage: a worker leaves once it is >= its stage and inputs drained
        ("started_ns", np.int64),
        ("n_symbols", np.int64),
        ("n_processes", np.int64),
        ("abort_requested", np.int64),  # 1: give up waiting on full block rings (forced shutdown only)
        ("strategies_ready", np.int64),  # 1 once the supervisor compiled every strategy: the strategy loads them
        # line 1: the kill switch, written by `hft kill` / `hft resume`
        ("kill_switch", np.int64),
        ("spare1", np.int64, 7),
        ("symbols", SYMBOL_INFO, MAX_SYMBOLS),
        ("processes", PROCESS_BLOCK, MAX_PROCESSES),
        # the strategy's latest state, msgspec-encoded, under a seqlock (shm_layout.seqlock.blob_*): written
        # by the strategy process between loop slices, copied into strategy_snapshots by persistence
        ("strategy_state", np.int64, BLOB_HEADER_WORDS + STRATEGY_STATE_BYTES // 8),
    ],
    align=True,
)

EXPECTED_SIZES = {
    "SYMBOL_INFO": (SYMBOL_INFO, 64),
    "MD_EVENT": (MD_EVENT, 64),
    "ORDER": (ORDER, 128),
    "EXEC_REPORT": (EXEC_REPORT, 192),
    "BOOK_SNAPSHOT": (BOOK_SNAPSHOT, 448),
    "REGION_HEADER": (REGION_HEADER, 128),
    "RING_CONSUMER": (RING_CONSUMER, 64),
    "RING_CONTROL": (RING_CONTROL, 64 + 64 * MAX_CONSUMERS),
    "PROCESS_BLOCK": (PROCESS_BLOCK, 64 + 8 * N_COUNTERS + 8 * N_HISTOGRAMS * (HIST_HEADER_WORDS + HIST_BUCKETS)),
}
for _name, (_dtype, _size) in EXPECTED_SIZES.items():
    assert _dtype.itemsize == _size, f"{_name} is {_dtype.itemsize} bytes, expected {_size}"
    assert _dtype.itemsize % CACHE_LINE == 0, f"{_name} is not a whole number of cache lines"
assert CONTROL.itemsize % CACHE_LINE == 0
assert CONTROL.fields["kill_switch"][1] == CACHE_LINE  # the kill switch has its own line

LAYOUT_VERSION = 3  # 2: ORDER 128 B (GTD, cancels), EXEC_REPORT 192 B (fill simulator); 3: cancel reports
MAGIC = int.from_bytes(b"HFTSHM01", "little")


def _layout_fingerprint() -> int:
    digest = hashlib.blake2b(digest_size=8)
    for name, dtype in sorted(
        [(n, d) for n, (d, _) in EXPECTED_SIZES.items()] + [("CONTROL", CONTROL)], key=lambda item: item[0]
    ):
        digest.update(name.encode())
        digest.update(repr(dtype.descr).encode())
        digest.update(str(dtype.itemsize).encode())
    return int.from_bytes(digest.digest(), "little", signed=True)


LAYOUT_HASH = _layout_fingerprint()


def word_index(dtype: np.dtype, field: str) -> int:
    """Return the int64-word index of ``field`` in ``dtype``: atomics address words, offsets come from here."""
    offset = dtype.fields[field][1]
    assert offset % 8 == 0, f"{field} is not 8-byte aligned"
    return offset // 8


# numba record types, for signatures and typed containers
md_event_t = from_dtype(MD_EVENT)
order_t = from_dtype(ORDER)
exec_report_t = from_dtype(EXEC_REPORT)
book_snapshot_t = from_dtype(BOOK_SNAPSHOT)
