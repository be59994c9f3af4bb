"""Jitted kernels of the Binance local-order-book procedure: one call per decoded frame or snapshot.

State: everything lives in one ``int64`` arena (``new_arena``), so that a call from Python unboxes one array
instead of six (each array argument costs ~0.1 us, a record array ~0.2 us). ``arena_views`` carves the typed
regions out of it inside a kernel (``hft.feed.arena``); ``numpy_views`` gives the same regions to Python::

    header     H_* words: sizes, limits and the word offset of each region (regions start on 64-byte lines)
    ctl        int64[n_rows + 1, CTL_WIDTH]          per-symbol control words ``C_*``; ctl[sid, 0:2] is the
                                                     book's ``counts``; the last row holds the ``STAT_*`` counters
    book       int64[n_rows, 2, 2, depth_capacity]   one ``hft.feed.book`` book per symbol: ``book[sid, 0]``
                                                     its prices, ``book[sid, 1]`` its sizes (best LAST)
    bufd       int64[n_rows, max_buffered_diffs, D_WIDTH]   buffered diffs (U, u, ts_exch, ts_recv, n_levels),
                                                     oldest first, contiguous in update ids
    bufl       int64[n_rows, max_buffered_levels, L_WIDTH]  their levels in order (side, price, size)
    events     MD_EVENT[max_events]                  output of the current call, overwritten by each call
    snapshots  BOOK_SNAPSHOT[n_rows]                 top of book per symbol, written after each update

Rows are indexed by ``symbol_id``.

Procedure per symbol (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams, "How to
manage a local order book correctly"):

1. Until synced, diffs are buffered (``needs snapshot``); consecutive buffered diffs must chain
   (``U == previous u + 1``), a break drops the older ones (counted as a gap).
2. A snapshot with ``lastUpdateId < U`` of the first buffered diff is stale: it is discarded and still needed.
3. Otherwise the book is set to the snapshot; buffered diffs with ``u <= lastUpdateId`` are dropped; the first
   applied diff must satisfy ``U <= lastUpdateId + 1 <= u``, every later one ``U == previous u + 1``.
4. A live diff with ``u <=`` the book's update id is a stale duplicate and is dropped (the book stays valid);
   any other break of the chain, an unparsable number, a bad level or a level off the symbol's tick/lot grid in
   a diff, or a crossed book after a diff throws the book away (``EV_BOOK_RESET``, status ``BOOK_RESYNCING``)
   and asks for a snapshot again. The diff that revealed a gap starts the new buffer; a diff with bad content
   does not.
5. A frame longer than ``H_MAX_FRAME`` bytes is counted (``STAT_HUGE_FRAME``) and dropped before anything in
   it is read, so nobody knows whether it was a diff. Nothing else is done: if it was a diff of a synced
   symbol, the next diff's ``U`` does not continue the book's ``u`` and rule 4 resyncs the book (counted as a
   gap); if it was a bookTicker or a trade, nothing was lost for the book. The book is briefly wrong until that
   next diff (at most one diff interval, 100 ms on ``@depth@100ms``), exactly as when a diff is lost in transit.

Kernels count everything by reason in the stats row and never raise; they return the number of events written
(``on_snapshot`` kernels: a negative ``SNAP_*`` status when the snapshot was rejected). Single writer.
"""

from __future__ import annotations

import numpy as np
from numba import int64, njit

from hft.feed.arena import arena_view
from hft.feed.book import (
    ASK_ROW,
    BID_ROW,
    BOOK_TRUNCATED,
    book_clear,
    book_fill_snapshot,
    book_is_crossed,
    book_load,
    book_set_level,
)
from hft.feed.wire import (
    WIRE_BAD_LEVEL,
    WIRE_BAD_NUMBER,
    WIRE_FULL,
    WIRE_MALFORMED,
    WIRE_OFF_GRID,
    WIRE_OK,
    off_grid,
    scan_levels,
    scan_quoted_number,
    skip_ws,
)
from shm_layout.records import (
    BOOK_EMPTY,
    BOOK_RESYNCING,
    BOOK_SNAPSHOT,
    BOOK_SYNCED,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
    EV_TRADE,
    FLAG_LAST_IN_FRAME,
    FLAG_SNAPSHOT,
    MD_EVENT,
    SIDE_BUY,
    SIDE_SELL,
    book_snapshot_t,
    md_event_t,
)

# --- per-symbol control words: ctl[symbol_id, C_*] ---
C_N_BIDS = 0  # ctl[sid, C_N_BIDS:C_N_ASKS + 1] is the book's counts array
C_N_ASKS = 1
C_STATUS = 2  # BOOK_EMPTY (never synced), BOOK_SYNCED, BOOK_RESYNCING
C_LAST_U = 3  # update id of the book: lastUpdateId, then u of the last applied diff
C_BRIDGED = 4  # 1 once a diff has been applied on top of the snapshot
C_NEED_SNAPSHOT = 5
C_BUF_DIFFS = 6
C_BUF_LEVELS = 7
C_PRICE_DECIMALS = 8
C_SIZE_DECIMALS = 9
C_SYMBOL_ID = 10
C_DIRTY = 11  # 1: snapshots[sid] changed since the caller last published it (the caller clears it)
C_LAST_TS_EXCH = 12  # ts_exch of the last applied diff
C_CONFIGURED = 13
C_RESYNCS = 14  # per-symbol count of books thrown away
C_NAME_LEN = 15  # the venue symbol in lower case, one byte per word from C_NAME (fast path stream routing)
C_TICK = 16  # price grid in price units (>= 1): prices must be multiples of it
C_LOT = 17  # size grid in size units (>= 1): sizes must be multiples of it (0 is)
C_CLOCK_EXCH = 18  # the latest venue time seen on the symbol (depth and trade E), ns: the bookTicker's base
C_CLOCK_LOCAL = 19  # the local receive time of the frame that advanced it (recorded time in a replay)
C_BBO_TS = 20  # venue time stamped on the last bookTicker: stamps never go back
C_STALE_STREAK = 21  # diffs dropped as already covered in a row while synced: a book that stopped advancing
# sanity bounds (``SymbolSpec``; 0 turns a bound off): outliers are counted (STAT_OUTLIERS) and dropped
C_BAND_PPM = 22  # bookTicker and trade prices within this many ppm of C_REF_MID; book levels within x/÷ DEPTH_BAND
C_MAX_SIZE = 23  # largest size of a trade, a bookTicker side or a book level, in size units
C_REF_MID = 24  # the last good mid: of the synced book after each applied snapshot or diff (never of a ticker)
C_MAX_DRIFT_NS = 25  # largest |venue time E - local receive time| of a diff or a trade (ts_local: wall clock)
C_NAME = 32  # words 26..31 spare
MAX_NAME = 32
CTL_WIDTH = C_NAME + MAX_NAME  # 64 words: every row is 8 whole cache lines

# --- arena header words ---
H_ROWS = 0
H_CAPACITY = 1
H_MAX_DIFFS = 2
H_MAX_LEVELS = 3
H_MAX_EVENTS = 4
H_CTL = 5  # word offsets of the regions
H_BOOK = 6
H_BUFD = 7
H_BUFL = 8
H_EVENTS = 9
H_SNAPSHOTS = 10
H_MAX_FRAME = 11  # frames longer than this many bytes are dropped undecoded (STAT_HUGE_FRAME)
HEADER_WORDS = 16
DEFAULT_MAX_FRAME_BYTES = 1 << 20  # a depth diff is a few KB, a 5000-level REST body ~200 KB
DEFAULT_MAX_SNAPSHOT_BYTES = 8 << 20
LINE_WORDS = 8  # 64-byte cache line
EVENT_WORDS = MD_EVENT.itemsize // 8
SNAPSHOT_WORDS = BOOK_SNAPSHOT.itemsize // 8

# --- engine counters: ctl[-1, STAT_*], exposed as FeedEngine.stats ---
STAT_FRAMES = 0  # combined-stream frames given to on_frame
STAT_MALFORMED = 1  # not JSON, missing or mistyped fields, a symbol/stream mismatch, a bad level array
STAT_UNKNOWN_SYMBOL = 2  # a stream of a symbol we were not configured with
STAT_UNKNOWN_STREAM = 3  # a known symbol on a channel we do not handle
STAT_BAD_NUMBER = 4  # a decimal string that is not exact at the symbol's precision, or overflows
STAT_BAD_LEVEL = 5  # a price <= 0 or a negative size (trades: size <= 0)
STAT_CROSSED = 6  # books found crossed (or locked) after an update or a snapshot; bookTickers with bid >= ask
STAT_GAPS = 7  # breaks in the U/u chain (live or while buffering)
STAT_RESYNCS = 8  # books thrown away
STAT_BUFFERED = 9  # diffs buffered while waiting for a snapshot
STAT_DROPPED_STALE = 10  # diffs dropped because their u was already covered
STAT_TRUNCATED = 11  # level updates dropped or evicting because a side was at capacity
STAT_BUFFER_OVERFLOW = 12  # buffered diffs dropped because the buffer was full
STAT_EVENTS_OVERFLOW = 13  # frames or snapshots larger than the events array
STAT_SNAPSHOTS = 14  # snapshots given to on_snapshot
STAT_SNAPSHOTS_APPLIED = 15
STAT_SNAPSHOTS_STALE = 16  # lastUpdateId < first buffered U: refetch
STAT_SNAPSHOTS_IGNORED = 17  # a snapshot for a book that did not need one
STAT_DEPTH = 18  # depthUpdate frames decoded
STAT_BBO = 19  # bookTicker frames decoded
STAT_TRADES = 20  # trade frames decoded
STAT_DIFFS_APPLIED = 21
STAT_DISCONNECTS = 22
STAT_FAST_FRAMES = 23  # frames decoded by the jitted frame scanner (hft.feed.fastpath) rather than msgspec
STAT_OFF_GRID = 24  # a price not a multiple of the tick or a size not a multiple of the lot
STAT_HUGE_FRAME = 25  # frames (or snapshot bodies) over their size limit, dropped without decoding
STAT_TOO_DEEP = 26  # frames (or snapshot bodies) nested deeper than MAX_JSON_DEPTH, refused before decoding
STAT_STUCK_BOOKS = 27  # synced books that stopped advancing (MAX_STALE_STREAK covered diffs in a row): resynced
STAT_OUTLIERS = 28  # frames outside the sanity bounds (price band, size cap, venue-time drift): dropped
N_STATS = 29
# A synced book whose update id ran far ahead of the stream (a diff with u = U + 10^12, or a snapshot's
# lastUpdateId far ahead) drops every later diff as already covered and looks synced forever: this many in a row
# (5 s of 100 ms diffs) and it is thrown away and resynced. Right after a snapshot a few covered diffs are normal.
MAX_STALE_STREAK = 50
# Book levels are not held to the price band: a venue accepts resting orders far from the touch (Binance spot:
# PERCENT_PRICE_BY_SIDE allows asks up to 5x and bids down to 0.2x the average price). A level with a size beyond
# this factor of the last good mid (either way) is an outlier.
DEPTH_BAND = 10
STAT_NAMES = (
    "frames",
    "malformed",
    "unknown_symbol",
    "unknown_stream",
    "bad_number",
    "bad_level",
    "crossed",
    "gaps",
    "resyncs",
    "buffered",
    "dropped_stale",
    "truncated",
    "buffer_overflow",
    "events_overflow",
    "snapshots",
    "snapshots_applied",
    "snapshots_stale",
    "snapshots_ignored",
    "depth",
    "bbo",
    "trades",
    "diffs_applied",
    "disconnects",
    "fast_frames",
    "off_grid",
    "huge_frame",
    "too_deep",
    "stuck_books",
    "outliers",
)
assert len(STAT_NAMES) == N_STATS <= CTL_WIDTH
assert CTL_WIDTH % 8 == 0

# The reasons an operator must see, by the name the feed process mirrors into shared-memory counters:
# every way input is rejected or a book is distrusted (not the throughput counters).
REASON_STATS: tuple[tuple[str, int], ...] = (
    ("malformed", STAT_MALFORMED),
    ("unknown_symbol", STAT_UNKNOWN_SYMBOL),
    ("unknown_stream", STAT_UNKNOWN_STREAM),
    ("bad_number", STAT_BAD_NUMBER),
    ("bad_level", STAT_BAD_LEVEL),
    ("off_grid", STAT_OFF_GRID),
    ("crossed", STAT_CROSSED),
    ("gaps", STAT_GAPS),
    ("resyncs", STAT_RESYNCS),
    ("huge_frame", STAT_HUGE_FRAME),
    ("too_deep", STAT_TOO_DEEP),
    ("stuck_books", STAT_STUCK_BOOKS),
    ("outliers", STAT_OUTLIERS),
    ("buffer_overflow", STAT_BUFFER_OVERFLOW),
    ("events_overflow", STAT_EVENTS_OVERFLOW),
    ("stale_snapshots", STAT_SNAPSHOTS_STALE),
    ("truncated", STAT_TRUNCATED),
)

# --- buffered diff header words: bufd[sid, k, D_*]; level words: bufl[sid, j, L_*] ---
D_FIRST_U = 0
D_LAST_U = 1
D_TS_EXCH = 2
D_TS_RECV = 3
D_N_LEVELS = 4
D_WIDTH = 5
L_SIDE = 0
L_PRICE = 1
L_SIZE = 2
L_WIDTH = 3

# --- on_snapshot results (>= 0: events written; 0 means ignored) ---
SNAP_IGNORED = 0
SNAP_STALE = -1  # lastUpdateId < U of the first buffered diff: fetch again
SNAP_MALFORMED = -2
SNAP_UNKNOWN_SYMBOL = -3
SNAP_BAD_NUMBER = -4  # also a bad level (price <= 0, negative size)
SNAP_CROSSED = -5  # the snapshot, or the book after the buffered diffs, is crossed
SNAP_GAP = -6  # the buffered diffs do not continue the snapshot
SNAP_OVERFLOW = -7  # more levels than the events array can carry
SNAP_OFF_GRID = -8  # a price off the tick grid or a size off the lot grid
SNAP_HUGE = -9  # the body is longer than max_snapshot_bytes: not decoded (checked by FeedEngine.on_snapshot)
SNAP_OUTLIER = -10  # a level beyond the size cap or DEPTH_BAND times from the snapshot's own mid

MS_TO_NS = 1_000_000
MAX_EVENT_MS = (2**63 - 1) // MS_TO_NS  # a larger event time would overflow int64 nanoseconds


def _round_up_line(words: int) -> int:
    return -(-words // LINE_WORDS) * LINE_WORDS


def new_arena(
    n_rows: int,
    depth_capacity: int,
    max_buffered_diffs: int,
    max_buffered_levels: int,
    max_events: int,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> np.ndarray:
    """Allocate a zeroed, cache-line aligned arena with its header filled in (see the module docstring)."""
    offsets = []
    words = HEADER_WORDS
    for size in (
        (n_rows + 1) * CTL_WIDTH,
        n_rows * 4 * depth_capacity,
        n_rows * max_buffered_diffs * D_WIDTH,
        n_rows * max_buffered_levels * L_WIDTH,
        max_events * EVENT_WORDS,
        n_rows * SNAPSHOT_WORDS,
    ):
        words = _round_up_line(words)
        offsets.append(words)
        words += size
    raw = np.zeros(words + LINE_WORDS, dtype=np.int64)
    skip = (-raw.ctypes.data % 64) // 8
    arena = raw[skip : skip + words]
    arena[H_ROWS] = n_rows
    arena[H_CAPACITY] = depth_capacity
    arena[H_MAX_DIFFS] = max_buffered_diffs
    arena[H_MAX_LEVELS] = max_buffered_levels
    arena[H_MAX_EVENTS] = max_events
    arena[H_CTL : H_SNAPSHOTS + 1] = offsets
    arena[H_MAX_FRAME] = max_frame_bytes
    return arena


@njit(cache=True, nogil=True)
def arena_views(arena):
    """Return ``(ctl, book, bufd, bufl, events, snapshots)`` views of the arena (no copy, no allocation)."""
    rows = arena[H_ROWS]
    ctl = arena_view(arena, arena[H_CTL], int64, (rows + 1, CTL_WIDTH))
    book = arena_view(arena, arena[H_BOOK], int64, (rows, 2, 2, arena[H_CAPACITY]))
    bufd = arena_view(arena, arena[H_BUFD], int64, (rows, arena[H_MAX_DIFFS], D_WIDTH))
    bufl = arena_view(arena, arena[H_BUFL], int64, (rows, arena[H_MAX_LEVELS], L_WIDTH))
    events = arena_view(arena, arena[H_EVENTS], md_event_t, (arena[H_MAX_EVENTS],))
    snapshots = arena_view(arena, arena[H_SNAPSHOTS], book_snapshot_t, (rows,))
    return ctl, book, bufd, bufl, events, snapshots


def numpy_views(arena: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the ``arena_views`` regions as numpy views, for the Python side."""
    rows = int(arena[H_ROWS])
    cap = int(arena[H_CAPACITY])
    max_d = int(arena[H_MAX_DIFFS])
    max_l = int(arena[H_MAX_LEVELS])
    max_e = int(arena[H_MAX_EVENTS])

    def region(header: int, words: int) -> np.ndarray:
        start = int(arena[header])
        return arena[start : start + words]

    return (
        region(H_CTL, (rows + 1) * CTL_WIDTH).reshape(rows + 1, CTL_WIDTH),
        region(H_BOOK, rows * 4 * cap).reshape(rows, 2, 2, cap),
        region(H_BUFD, rows * max_d * D_WIDTH).reshape(rows, max_d, D_WIDTH),
        region(H_BUFL, rows * max_l * L_WIDTH).reshape(rows, max_l, L_WIDTH),
        region(H_EVENTS, max_e * EVENT_WORDS).view(MD_EVENT),
        region(H_SNAPSHOTS, rows * SNAPSHOT_WORDS).view(BOOK_SNAPSHOT),
    )


@njit(cache=True, nogil=True)
def _count_wire_error(stats, ws: int) -> None:
    if ws == WIRE_BAD_NUMBER:
        stats[STAT_BAD_NUMBER] += 1
    elif ws == WIRE_BAD_LEVEL:
        stats[STAT_BAD_LEVEL] += 1
    elif ws == WIRE_OFF_GRID:
        stats[STAT_OFF_GRID] += 1
    elif ws == WIRE_FULL:
        stats[STAT_EVENTS_OVERFLOW] += 1
    else:
        stats[STAT_MALFORMED] += 1


@njit(cache=True, nogil=True)
def price_outlier(ctl, sid: int, price: int) -> bool:
    """A ticker or trade price further than the band from the last good mid (float: a price can be ~1e13)."""
    ppm = ctl[sid, C_BAND_PPM]
    ref = ctl[sid, C_REF_MID]
    if ppm <= 0 or ref <= 0 or price <= 0:
        return False
    return abs(float(price) - float(ref)) > float(ref) * (float(ppm) * 1e-6)


@njit(cache=True, nogil=True)
def size_outlier(ctl, sid: int, size: int) -> bool:
    cap = ctl[sid, C_MAX_SIZE]
    return cap > 0 and size > cap


@njit(cache=True, nogil=True)
def time_outlier(ctl, sid: int, ts_exch: int, ts_local: int) -> bool:
    """A venue time further than the drift bound from the local receive time (both ns since the epoch)."""
    drift = ctl[sid, C_MAX_DRIFT_NS]
    return drift > 0 and abs(float(ts_exch) - float(ts_local)) > float(drift)


@njit(cache=True, nogil=True)
def level_outlier(ctl, sid: int, price: int, size: int, mid: int) -> bool:
    """A book level (not a removal) over the size cap, or beyond ``DEPTH_BAND`` times ``mid`` either way."""
    if size <= 0:
        return False
    if size_outlier(ctl, sid, size):
        return True
    if ctl[sid, C_BAND_PPM] <= 0 or mid <= 0:
        return False
    return float(price) > float(mid) * DEPTH_BAND or float(price) * DEPTH_BAND < float(mid)


@njit(cache=True, nogil=True)
def _levels_outlier(ctl, sid: int, events, start: int, end: int, mid: int) -> bool:
    for k in range(start, end):  # noqa: SIM110 (numba compiles no generator in any())
        if level_outlier(ctl, sid, events[k].price, events[k].size, mid):
            return True
    return False


@njit(cache=True, nogil=True)
def _book_mid(px, counts) -> int:
    """The mid of a book with both sides, else 0."""
    nb = counts[BID_ROW]
    na = counts[ASK_ROW]
    if nb <= 0 or na <= 0:
        return 0
    return px[BID_ROW, nb - 1] // 2 + px[ASK_ROW, na - 1] // 2


@njit(cache=True, nogil=True)
def _write_event(
    events,
    k: int,
    kind: int,
    side: int,
    price: int,
    size: int,
    update_id: int,
    ts_exch: int,
    ts_recv: int,
    symbol_id: int,
    flags: int,
) -> None:
    ev = events[k]
    ev.ts_exch = ts_exch
    ev.ts_recv = ts_recv
    ev.ts_init = 0
    ev.price = price
    ev.size = size
    ev.update_id = update_id
    ev.symbol_id = symbol_id
    ev.kind = kind
    ev.side = side
    ev.flags = flags


@njit(cache=True, nogil=True)
def _discard_book(book, ctl, snapshots, sid: int, ts_exch: int, ts_recv: int) -> None:
    """Throw the book away: empty it, empty the buffer, publish an empty RESYNCING snapshot, ask for a snapshot."""
    stats = ctl[ctl.shape[0] - 1]
    stats[STAT_RESYNCS] += 1
    ctl[sid, C_RESYNCS] += 1
    counts = ctl[sid, C_N_BIDS : C_N_ASKS + 1]
    book_clear(book[sid, 0], book[sid, 1], counts)
    ctl[sid, C_STATUS] = BOOK_RESYNCING
    ctl[sid, C_BRIDGED] = 0
    ctl[sid, C_STALE_STREAK] = 0
    ctl[sid, C_NEED_SNAPSHOT] = 1
    ctl[sid, C_BUF_DIFFS] = 0
    ctl[sid, C_BUF_LEVELS] = 0
    book_fill_snapshot(
        book[sid, 0],
        book[sid, 1],
        counts,
        snapshots,
        sid,
        ctl[sid, C_SYMBOL_ID],
        ctl[sid, C_LAST_U],
        ts_exch,
        ts_recv,
        BOOK_RESYNCING,
    )
    ctl[sid, C_DIRTY] = 1


@njit(cache=True, nogil=True)
def _buffer_diff(
    ctl, bufd, bufl, sid: int, events, n: int, first_u: int, last_u: int, ts_exch: int, ts_recv: int
) -> None:
    """Append the diff whose levels are ``events[0:n]`` to the symbol's buffer, dropping the oldest if full."""
    stats = ctl[ctl.shape[0] - 1]
    max_d = bufd.shape[1]
    max_l = bufl.shape[1]
    if n > max_l:
        # cannot ever fit: the buffer cannot bridge this diff, start over after it
        stats[STAT_BUFFER_OVERFLOW] += ctl[sid, C_BUF_DIFFS] + 1
        ctl[sid, C_BUF_DIFFS] = 0
        ctl[sid, C_BUF_LEVELS] = 0
        return
    nd = ctl[sid, C_BUF_DIFFS]
    nl = ctl[sid, C_BUF_LEVELS]
    if nd + 1 > max_d or nl + n > max_l:
        drop_d = 0
        drop_l = 0
        while drop_d < nd and (nd - drop_d + 1 > max_d or nl - drop_l + n > max_l):
            drop_l += bufd[sid, drop_d, D_N_LEVELS]
            drop_d += 1
        for k in range(drop_d, nd):
            for w in range(D_WIDTH):
                bufd[sid, k - drop_d, w] = bufd[sid, k, w]
        for j in range(drop_l, nl):
            for w in range(L_WIDTH):
                bufl[sid, j - drop_l, w] = bufl[sid, j, w]
        nd -= drop_d
        nl -= drop_l
        stats[STAT_BUFFER_OVERFLOW] += drop_d
    bufd[sid, nd, D_FIRST_U] = first_u
    bufd[sid, nd, D_LAST_U] = last_u
    bufd[sid, nd, D_TS_EXCH] = ts_exch
    bufd[sid, nd, D_TS_RECV] = ts_recv
    bufd[sid, nd, D_N_LEVELS] = n
    for k in range(n):
        ev = events[k]
        bufl[sid, nl + k, L_SIDE] = ev.side
        bufl[sid, nl + k, L_PRICE] = ev.price
        bufl[sid, nl + k, L_SIZE] = ev.size
    ctl[sid, C_BUF_DIFFS] = nd + 1
    ctl[sid, C_BUF_LEVELS] = nl + n
    stats[STAT_BUFFERED] += 1


@njit(cache=True, nogil=True)
def _reset_frame(events, sid_symbol_id: int, update_id: int, ts_exch: int, ts_recv: int) -> int:
    _write_event(events, 0, EV_BOOK_RESET, 0, 0, 0, update_id, ts_exch, ts_recv, sid_symbol_id, FLAG_LAST_IN_FRAME)
    return 1


@njit(cache=True, nogil=True)
def depth_kernel(
    arena,
    buf,
    n_bid_bytes: int,
    sid: int,
    first_u: int,
    last_u: int,
    event_ms: int,
    ts_recv: int,
    ts_local: int,
) -> int:
    """Apply or buffer one depthUpdate whose ``b`` array is ``buf[:n_bid_bytes]`` and ``a`` array the rest.

    Returns the number of events written: the diff's ``EV_BOOK_LEVEL`` records when applied to a synced book,
    one ``EV_BOOK_RESET`` when the book was thrown away, 0 when buffered or dropped. Its E advances the
    symbol's venue clock either way (``ts_local``: see ``venue_clock``).
    """
    ctl, book, bufd, bufl, events, snapshots = arena_views(arena)
    return depth_core(
        ctl,
        book,
        bufd,
        bufl,
        events,
        snapshots,
        buf,
        0,
        n_bid_bytes,
        n_bid_bytes,
        len(buf),
        sid,
        first_u,
        last_u,
        event_ms,
        ts_recv,
        ts_local,
    )


@njit(cache=True, nogil=True)
def depth_core(
    ctl,
    book,
    bufd,
    bufl,
    events,
    snapshots,
    buf,
    b_start: int,
    b_end: int,
    a_start: int,
    a_end: int,
    sid: int,
    first_u: int,
    last_u: int,
    event_ms: int,
    ts_recv: int,
    ts_local: int,
) -> int:
    """``depth_kernel`` on array views, the ``b`` and ``a`` level arrays at ``buf[b_start:b_end]`` and
    ``buf[a_start:a_end]`` (shared by the msgspec path and the jitted frame scanner).

    Sanity bounds: a diff whose E is beyond the drift bound, or with a level over the size cap or beyond
    ``DEPTH_BAND`` times the last good mid, is an outlier: counted, and handled like a diff with bad content
    (a synced book is thrown away and resynced; dropping only the level would leave the book wrong)."""
    stats = ctl[ctl.shape[0] - 1]
    stats[STAT_FRAMES] += 1
    stats[STAT_DEPTH] += 1
    if first_u < 0 or last_u < first_u or event_ms < 0 or event_ms > MAX_EVENT_MS:
        stats[STAT_MALFORMED] += 1
        return 0
    time_bad = time_outlier(ctl, sid, event_ms * MS_TO_NS, ts_local)
    if not time_bad:  # an outlier's E does not move the venue clock bookTickers are stamped with
        advance_venue_clock(ctl, sid, event_ms * MS_TO_NS, ts_local)
    status = ctl[sid, C_STATUS]
    synced = status == BOOK_SYNCED
    book_u = ctl[sid, C_LAST_U]
    nd = ctl[sid, C_BUF_DIFFS]
    prev_u = -1
    if synced:
        if last_u <= book_u:
            stats[STAT_DROPPED_STALE] += 1
            ctl[sid, C_STALE_STREAK] += 1
            if ctl[sid, C_STALE_STREAK] >= MAX_STALE_STREAK:
                stats[STAT_STUCK_BOOKS] += 1
                ts_exch = event_ms * MS_TO_NS
                _discard_book(book, ctl, snapshots, sid, ts_exch, ts_recv)
                return _reset_frame(events, ctl[sid, C_SYMBOL_ID], book_u, ts_exch, ts_recv)
            return 0
        ctl[sid, C_STALE_STREAK] = 0
    elif nd > 0:
        prev_u = bufd[sid, nd - 1, D_LAST_U]
        if last_u <= prev_u:
            stats[STAT_DROPPED_STALE] += 1
            return 0
    symbol_id = ctl[sid, C_SYMBOL_ID]
    ts_exch = event_ms * MS_TO_NS
    pdec = ctl[sid, C_PRICE_DECIMALS]
    sdec = ctl[sid, C_SIZE_DECIMALS]
    tick = ctl[sid, C_TICK]
    lot = ctl[sid, C_LOT]
    ws, n = scan_levels(
        buf, b_start, b_end, pdec, sdec, tick, lot, SIDE_BUY, events, 0, last_u, ts_exch, ts_recv, symbol_id, 0
    )
    if ws == WIRE_OK:
        ws, n = scan_levels(
            buf, a_start, a_end, pdec, sdec, tick, lot, SIDE_SELL, events, n, last_u, ts_exch, ts_recv, symbol_id, 0
        )
    bad = ws != WIRE_OK
    if bad:
        _count_wire_error(stats, ws)
    elif time_bad or _levels_outlier(ctl, sid, events, 0, n, ctl[sid, C_REF_MID]):
        stats[STAT_OUTLIERS] += 1
        bad = True
    if bad:
        if synced:
            # the book missed updates it can never get back
            _discard_book(book, ctl, snapshots, sid, ts_exch, ts_recv)
            return _reset_frame(events, symbol_id, book_u, ts_exch, ts_recv)
        # the buffer cannot bridge this diff any more
        ctl[sid, C_BUF_DIFFS] = 0
        ctl[sid, C_BUF_LEVELS] = 0
        return 0
    if not synced:
        if nd > 0 and first_u != prev_u + 1:
            stats[STAT_GAPS] += 1
            ctl[sid, C_BUF_DIFFS] = 0
            ctl[sid, C_BUF_LEVELS] = 0
        _buffer_diff(ctl, bufd, bufl, sid, events, n, first_u, last_u, ts_exch, ts_recv)
        return 0
    # after the first applied diff the chain is strict; the first one only has to cover lastUpdateId + 1
    chained = first_u == book_u + 1 if ctl[sid, C_BRIDGED] != 0 else first_u <= book_u + 1
    if not chained:
        stats[STAT_GAPS] += 1
        _discard_book(book, ctl, snapshots, sid, ts_exch, ts_recv)
        _buffer_diff(ctl, bufd, bufl, sid, events, n, first_u, last_u, ts_exch, ts_recv)
        return _reset_frame(events, symbol_id, book_u, ts_exch, ts_recv)
    px = book[sid, 0]
    sz = book[sid, 1]
    counts = ctl[sid, C_N_BIDS : C_N_ASKS + 1]
    for k in range(n):
        ev = events[k]
        r = book_set_level(px, sz, counts, ev.side, ev.price, ev.size)
        if r == BOOK_TRUNCATED:
            stats[STAT_TRUNCATED] += 1
    ctl[sid, C_LAST_U] = last_u
    ctl[sid, C_BRIDGED] = 1
    ctl[sid, C_LAST_TS_EXCH] = ts_exch
    stats[STAT_DIFFS_APPLIED] += 1
    if book_is_crossed(px, counts):
        stats[STAT_CROSSED] += 1
        _discard_book(book, ctl, snapshots, sid, ts_exch, ts_recv)
        return _reset_frame(events, symbol_id, last_u, ts_exch, ts_recv)
    mid = _book_mid(px, counts)
    if mid > 0:
        ctl[sid, C_REF_MID] = mid
    book_fill_snapshot(px, sz, counts, snapshots, sid, symbol_id, last_u, ts_exch, ts_recv, BOOK_SYNCED)
    ctl[sid, C_DIRTY] = 1
    if n > 0:
        events[n - 1].flags |= FLAG_LAST_IN_FRAME
    return n


@njit(cache=True, nogil=True)
def snapshot_kernel(
    arena,
    buf,
    n_bid_bytes: int,
    sid: int,
    last_update_id: int,
    ts_recv: int,
) -> int:
    """Apply a REST snapshot (``bids`` array in ``buf[:n_bid_bytes]``, ``asks`` after) and the buffered diffs.

    Returns the number of events written (``EV_BOOK_RESET``, the book's levels with ``FLAG_SNAPSHOT``, then the
    levels of each buffered diff applied on top), ``SNAP_IGNORED`` (0) if the book did not need a snapshot, or
    a negative ``SNAP_*`` status (nothing written, the book still needs a snapshot). A level off the symbol's
    tick/lot grid rejects the whole snapshot (``SNAP_OFF_GRID``, counted as ``STAT_OFF_GRID``).
    """
    ctl, book, bufd, bufl, events, snapshots = arena_views(arena)
    stats = ctl[ctl.shape[0] - 1]
    stats[STAT_SNAPSHOTS] += 1
    if ctl[sid, C_NEED_SNAPSHOT] == 0:
        stats[STAT_SNAPSHOTS_IGNORED] += 1
        return SNAP_IGNORED
    nd = ctl[sid, C_BUF_DIFFS]
    if last_update_id < 0:
        stats[STAT_MALFORMED] += 1
        return SNAP_MALFORMED
    if nd > 0 and last_update_id < bufd[sid, 0, D_FIRST_U]:
        stats[STAT_SNAPSHOTS_STALE] += 1
        return SNAP_STALE
    symbol_id = ctl[sid, C_SYMBOL_ID]
    pdec = ctl[sid, C_PRICE_DECIMALS]
    sdec = ctl[sid, C_SIZE_DECIMALS]
    tick = ctl[sid, C_TICK]
    lot = ctl[sid, C_LOT]
    # stage and validate every level before touching the book
    ws, n = scan_levels(
        buf,
        0,
        n_bid_bytes,
        pdec,
        sdec,
        tick,
        lot,
        SIDE_BUY,
        events,
        1,
        last_update_id,
        0,
        ts_recv,
        symbol_id,
        FLAG_SNAPSHOT,
    )
    n_bid_end = n
    if ws == WIRE_OK:
        ws, n = scan_levels(
            buf,
            n_bid_bytes,
            len(buf),
            pdec,
            sdec,
            tick,
            lot,
            SIDE_SELL,
            events,
            n,
            last_update_id,
            0,
            ts_recv,
            symbol_id,
            FLAG_SNAPSHOT,
        )
    if ws != WIRE_OK:
        _count_wire_error(stats, ws)
        if ws == WIRE_FULL:
            return SNAP_OVERFLOW
        if ws == WIRE_MALFORMED:
            return SNAP_MALFORMED
        if ws == WIRE_OFF_GRID:
            return SNAP_OFF_GRID
        return SNAP_BAD_NUMBER
    px = book[sid, 0]
    sz = book[sid, 1]
    counts = ctl[sid, C_N_BIDS : C_N_ASKS + 1]
    book_clear(px, sz, counts)
    # the REST body lists each side best first: book_load takes that in linear time
    stats[STAT_TRUNCATED] += book_load(px, sz, counts, SIDE_BUY, events, 1, n_bid_end)
    stats[STAT_TRUNCATED] += book_load(px, sz, counts, SIDE_SELL, events, n_bid_end, n)
    if book_is_crossed(px, counts):
        stats[STAT_CROSSED] += 1
        book_clear(px, sz, counts)
        return SNAP_CROSSED
    if _levels_outlier(ctl, sid, events, 1, n, _book_mid(px, counts)):
        stats[STAT_OUTLIERS] += 1
        book_clear(px, sz, counts)
        return SNAP_OUTLIER
    # publish exactly the book we hold (sorted, merged, truncated to capacity)
    cap_events = events.shape[0]
    nb = counts[BID_ROW]
    na = counts[ASK_ROW]
    if 1 + nb + na + ctl[sid, C_BUF_LEVELS] > cap_events:
        stats[STAT_EVENTS_OVERFLOW] += 1
        book_clear(px, sz, counts)
        return SNAP_OVERFLOW
    _write_event(events, 0, EV_BOOK_RESET, 0, 0, 0, last_update_id, 0, ts_recv, symbol_id, 0)
    n = 1
    for i in range(nb - 1, -1, -1):  # best first
        _write_event(
            events,
            n,
            EV_BOOK_LEVEL,
            SIDE_BUY,
            px[BID_ROW, i],
            sz[BID_ROW, i],
            last_update_id,
            0,
            ts_recv,
            symbol_id,
            FLAG_SNAPSHOT,
        )
        n += 1
    for i in range(na - 1, -1, -1):
        _write_event(
            events,
            n,
            EV_BOOK_LEVEL,
            SIDE_SELL,
            px[ASK_ROW, i],
            sz[ASK_ROW, i],
            last_update_id,
            0,
            ts_recv,
            symbol_id,
            FLAG_SNAPSHOT,
        )
        n += 1
    book_u = last_update_id
    bridged = False
    ts_exch = 0
    j = 0  # level cursor in bufl
    for k in range(nd):
        d_first = bufd[sid, k, D_FIRST_U]
        d_last = bufd[sid, k, D_LAST_U]
        d_n = bufd[sid, k, D_N_LEVELS]
        if d_last <= book_u:
            stats[STAT_DROPPED_STALE] += 1
            j += d_n
            continue
        if (bridged and d_first != book_u + 1) or (not bridged and d_first > book_u + 1):
            stats[STAT_GAPS] += 1
            book_clear(px, sz, counts)
            ctl[sid, C_BUF_DIFFS] = 0
            ctl[sid, C_BUF_LEVELS] = 0
            return SNAP_GAP
        d_ts_exch = bufd[sid, k, D_TS_EXCH]
        d_ts_recv = bufd[sid, k, D_TS_RECV]
        for q in range(j, j + d_n):
            side = bufl[sid, q, L_SIDE]
            price = bufl[sid, q, L_PRICE]
            size = bufl[sid, q, L_SIZE]
            r = book_set_level(px, sz, counts, side, price, size)
            if r == BOOK_TRUNCATED:
                stats[STAT_TRUNCATED] += 1
            _write_event(events, n, EV_BOOK_LEVEL, side, price, size, d_last, d_ts_exch, d_ts_recv, symbol_id, 0)
            n += 1
        j += d_n
        book_u = d_last
        bridged = True
        ts_exch = d_ts_exch
        stats[STAT_DIFFS_APPLIED] += 1
    ctl[sid, C_BUF_DIFFS] = 0
    ctl[sid, C_BUF_LEVELS] = 0
    if book_is_crossed(px, counts):
        stats[STAT_CROSSED] += 1
        book_clear(px, sz, counts)
        return SNAP_CROSSED
    ctl[sid, C_STATUS] = BOOK_SYNCED
    ctl[sid, C_NEED_SNAPSHOT] = 0
    mid = _book_mid(px, counts)
    if mid > 0:
        ctl[sid, C_REF_MID] = mid
    ctl[sid, C_LAST_U] = book_u
    ctl[sid, C_BRIDGED] = 1 if bridged else 0
    ctl[sid, C_LAST_TS_EXCH] = ts_exch
    stats[STAT_SNAPSHOTS_APPLIED] += 1
    book_fill_snapshot(px, sz, counts, snapshots, sid, symbol_id, book_u, ts_exch, ts_recv, BOOK_SYNCED)
    ctl[sid, C_DIRTY] = 1
    events[n - 1].flags |= FLAG_LAST_IN_FRAME
    return n


@njit(cache=True, nogil=True)
def venue_clock(ctl, sid: int, events, n: int, ts_local: int) -> None:
    """Keep the symbol's venue clock and stamp a bookTicker's ``EV_BBO`` records with it (``events[:n]`` of one
    frame, written by any decoder path).

    Spot bookTicker carries no event time, yet it is the freshest view of the touch, and the broker lets orders
    arrive between events by venue time. A ticker is stamped with the venue time of the symbol's latest depth
    diff or trade (``C_CLOCK_EXCH``) plus the local time elapsed since that frame arrived: ``ts_local`` is the
    receive clock (live: ``ts_recv``; replay: the recording's own receive time, so a replay stamps every ticker
    exactly as the first run did). Stamps never go back; before any venue time is known they are 0.
    """
    if n <= 0:
        return
    if events[0].kind == EV_BBO:
        base = ctl[sid, C_CLOCK_EXCH]
        if base <= 0:
            return
        elapsed = ts_local - ctl[sid, C_CLOCK_LOCAL]
        stamp = base + (elapsed if elapsed > 0 else 0)
        if stamp < ctl[sid, C_BBO_TS]:
            stamp = ctl[sid, C_BBO_TS]
        ctl[sid, C_BBO_TS] = stamp
        for k in range(n):
            events[k].ts_exch = stamp
        return
    advance_venue_clock(ctl, sid, events[n - 1].ts_exch, ts_local)


@njit(cache=True, nogil=True)
def advance_venue_clock(ctl, sid: int, ts_exch: int, ts_local: int) -> None:
    """Move the symbol's venue clock to ``ts_exch`` (a depth diff's or a trade's E) if it is later."""
    if ts_exch > ctl[sid, C_CLOCK_EXCH]:
        ctl[sid, C_CLOCK_EXCH] = ts_exch
        ctl[sid, C_CLOCK_LOCAL] = ts_local


@njit(cache=True, nogil=True)
def combine_wire_status(s1: int, s2: int, s3: int, s4: int) -> int:
    """Reduce per-field scan statuses: malformed beats a bad number, which beats OK."""
    if s1 == WIRE_MALFORMED or s2 == WIRE_MALFORMED or s3 == WIRE_MALFORMED or s4 == WIRE_MALFORMED:
        return WIRE_MALFORMED
    if s1 != WIRE_OK or s2 != WIRE_OK or s3 != WIRE_OK or s4 != WIRE_OK:
        return WIRE_BAD_NUMBER
    return WIRE_OK


@njit(cache=True, nogil=True)
def bbo_kernel(arena, buf, sid: int, update_id: int, ts_recv: int, ts_local: int) -> int:
    """Emit a bookTicker as two ``EV_BBO`` records (bid: ``SIDE_BUY``, then ask: ``SIDE_SELL``, the ask flagged
    ``FLAG_LAST_IN_FRAME``), ``update_id = u``, ``ts_exch`` the symbol's venue clock (``venue_clock``).

    ``buf`` is the four quoted numbers ``b B a A`` back to back. A price or size of 0 is passed through (the
    venue's way of saying a side is empty); negatives are bad levels; a number off the tick/lot grid is counted
    (``STAT_OFF_GRID``) and the ticker dropped. Returns the events written (2 or 0).
    """
    ctl, _, _, _, events, _ = arena_views(arena)
    pdec = ctl[sid, C_PRICE_DECIMALS]
    sdec = ctl[sid, C_SIZE_DECIMALS]
    end = len(buf)
    s1, bid, i = scan_quoted_number(buf, 0, end, pdec)
    s2, bid_sz, i = scan_quoted_number(buf, i, end, sdec)
    s3, ask, i = scan_quoted_number(buf, i, end, pdec)
    s4, ask_sz, i = scan_quoted_number(buf, i, end, sdec)
    status = combine_wire_status(s1, s2, s3, s4)
    if skip_ws(buf, i, end) != end:
        status = WIRE_MALFORMED
    n = bbo_emit(ctl, events, sid, update_id, ts_recv, status, bid, bid_sz, ask, ask_sz)
    venue_clock(ctl, sid, events, n, ts_local)
    return n


@njit(cache=True, nogil=True)
def bbo_emit(
    ctl, events, sid: int, update_id: int, ts_recv: int, status: int, bid: int, bid_sz: int, ask: int, ask_sz: int
) -> int:
    """Count and emit a parsed bookTicker (see ``bbo_kernel``); ``status`` is the combined scan status. The
    records carry ``ts_exch = 0``: the caller stamps them (``venue_clock``)."""
    stats = ctl[ctl.shape[0] - 1]
    stats[STAT_FRAMES] += 1
    stats[STAT_BBO] += 1
    if update_id < 0 or status == WIRE_MALFORMED:
        stats[STAT_MALFORMED] += 1
        return 0
    if status != WIRE_OK:
        stats[STAT_BAD_NUMBER] += 1
        return 0
    if bid < 0 or bid_sz < 0 or ask < 0 or ask_sz < 0:
        stats[STAT_BAD_LEVEL] += 1
        return 0
    tick = ctl[sid, C_TICK]
    lot = ctl[sid, C_LOT]
    if off_grid(bid, bid_sz, tick, lot) or off_grid(ask, ask_sz, tick, lot):
        stats[STAT_OFF_GRID] += 1
        return 0
    if 0 < ask <= bid:  # crossed or locked: no venue quotes that; dropped before the strategy or the broker
        stats[STAT_CROSSED] += 1
        return 0
    if (price_outlier(ctl, sid, bid) or price_outlier(ctl, sid, ask) or size_outlier(ctl, sid, bid_sz)
            or size_outlier(ctl, sid, ask_sz)):
        stats[STAT_OUTLIERS] += 1
        return 0
    if events.shape[0] < 2:
        stats[STAT_EVENTS_OVERFLOW] += 1
        return 0
    symbol_id = ctl[sid, C_SYMBOL_ID]
    _write_event(events, 0, EV_BBO, SIDE_BUY, bid, bid_sz, update_id, 0, ts_recv, symbol_id, 0)
    _write_event(events, 1, EV_BBO, SIDE_SELL, ask, ask_sz, update_id, 0, ts_recv, symbol_id, FLAG_LAST_IN_FRAME)
    return 2


@njit(cache=True, nogil=True)
def trade_kernel(
    arena, buf, sid: int, trade_id: int, event_ms: int, buyer_is_maker: bool, ts_recv: int, ts_local: int
) -> int:
    """Emit a trade as one ``EV_TRADE`` record: side is the aggressor (``SIDE_SELL`` when the buyer was the maker),
    ``update_id`` the trade id, ``ts_exch`` the event time ``E``. ``buf`` is the quoted ``p`` and ``q``. A
    price or quantity off the tick/lot grid is counted (``STAT_OFF_GRID``) and the trade dropped."""
    ctl, _, _, _, events, _ = arena_views(arena)
    end = len(buf)
    s1, price, i = scan_quoted_number(buf, 0, end, ctl[sid, C_PRICE_DECIMALS])
    s2, size, i = scan_quoted_number(buf, i, end, ctl[sid, C_SIZE_DECIMALS])
    status = combine_wire_status(s1, s2, WIRE_OK, WIRE_OK)
    if skip_ws(buf, i, end) != end:
        status = WIRE_MALFORMED
    n = trade_emit(ctl, events, sid, trade_id, event_ms, buyer_is_maker, ts_recv, ts_local, status, price, size)
    venue_clock(ctl, sid, events, n, ts_local)
    return n


@njit(cache=True, nogil=True)
def trade_emit(
    ctl,
    events,
    sid: int,
    trade_id: int,
    event_ms: int,
    buyer_is_maker: bool,
    ts_recv: int,
    ts_local: int,
    status: int,
    price: int,
    size: int,
) -> int:
    """Count and emit a parsed trade (see ``trade_kernel``); ``status`` is the combined scan status. A trade
    outside the sanity bounds (price band, size cap, drift of E from ``ts_local``) is counted and dropped."""
    stats = ctl[ctl.shape[0] - 1]
    stats[STAT_FRAMES] += 1
    stats[STAT_TRADES] += 1
    if trade_id < 0 or event_ms < 0 or event_ms > MAX_EVENT_MS or status == WIRE_MALFORMED:
        stats[STAT_MALFORMED] += 1
        return 0
    if status != WIRE_OK:
        stats[STAT_BAD_NUMBER] += 1
        return 0
    if price <= 0 or size <= 0:
        stats[STAT_BAD_LEVEL] += 1
        return 0
    if off_grid(price, size, ctl[sid, C_TICK], ctl[sid, C_LOT]):
        stats[STAT_OFF_GRID] += 1
        return 0
    if (price_outlier(ctl, sid, price) or size_outlier(ctl, sid, size)
            or time_outlier(ctl, sid, event_ms * MS_TO_NS, ts_local)):
        stats[STAT_OUTLIERS] += 1
        return 0
    if events.shape[0] < 1:
        stats[STAT_EVENTS_OVERFLOW] += 1
        return 0
    side = SIDE_SELL if buyer_is_maker else SIDE_BUY
    symbol_id = ctl[sid, C_SYMBOL_ID]
    _write_event(
        events, 0, EV_TRADE, side, price, size, trade_id, event_ms * MS_TO_NS, ts_recv, symbol_id, FLAG_LAST_IN_FRAME
    )
    return 1


@njit(cache=True, nogil=True)
def disconnect_kernel(arena, ts_recv: int) -> int:
    """Throw away every book (the stream was interrupted: diffs were lost) and restart buffering.

    Writes one ``EV_BOOK_RESET`` per symbol that had a synced book; returns the number written.
    """
    ctl, book, _, _, events, snapshots = arena_views(arena)
    stats = ctl[ctl.shape[0] - 1]
    stats[STAT_DISCONNECTS] += 1
    n = 0
    for sid in range(ctl.shape[0] - 1):
        if ctl[sid, C_CONFIGURED] == 0:
            continue
        was_synced = ctl[sid, C_STATUS] == BOOK_SYNCED
        if was_synced:
            _discard_book(book, ctl, snapshots, sid, 0, ts_recv)
            if n < events.shape[0]:
                _write_event(
                    events, n, EV_BOOK_RESET, 0, 0, 0, ctl[sid, C_LAST_U], 0, ts_recv, ctl[sid, C_SYMBOL_ID], 0
                )
                n += 1
        else:
            ctl[sid, C_BUF_DIFFS] = 0
            ctl[sid, C_BUF_LEVELS] = 0
            if ctl[sid, C_STATUS] != BOOK_EMPTY:
                ctl[sid, C_STATUS] = BOOK_RESYNCING
            ctl[sid, C_NEED_SNAPSHOT] = 1
    if n > 0:
        events[n - 1].flags |= FLAG_LAST_IN_FRAME
    return n
