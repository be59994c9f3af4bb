"""The paper broker's fill simulator: order types, time in force, queue position, fees, entry latency.

The broker keeps its own L2 book per symbol, built from md.events exactly as the feed built its own, with the
venue's bookTicker laid over its top level (the touch, below), and advances it only as far as the strategy has
consumed md.events (the strategy's cursor). Every order carries the cursor and venue time at which the
strategy decided (``ORDER.md_cursor``, ``ORDER.ts_exch``); it *arrives* at ``ts_exch + entry latency`` and
meets the book at the first event at or after its cursor whose venue time is later than its arrival (an
``EV_BBO`` counts: the feed stamps tickers on the venue clock). The fills are therefore a function of the
market-data sequence and the orders alone: a replay gives the same fills on every run.

Live (not lock-step) runs add a clock fallback: an order whose arrival time has passed on this machine's clock
(``ORDER.ts_init + latency``, monotonic) meets the book as it is once every event the strategy consumed is
applied, so a quiet market does not hold orders back.

The touch: **a bookTicker is a newer view of the top level only, superseded by the diff that covers its id.**
Depth diffs come every 100 ms, bookTickers in real time: judged against the diffs alone, post-only quotes
priced at the real best bid/ask were mostly rejected as crossing a touch that had already moved. So each symbol
keeps an overlay (``bk.touch[symbol, T_*]``) beside its book:

* ``EV_BOOK_LEVEL`` with update id ``u`` (a diff's final id, or a snapshot's lastUpdateId) changes the book as
  before and raises the book's id (``T_BOOK_U``) to ``u``; once ``u`` reaches the overlay's id, the diff covers
  the ticker and the overlay ends. ``EV_BOOK_RESET`` and a rebuild from the snapshots end it too.
* ``EV_BBO`` is two records, bid then ask, of one ticker id ``u``. On the ask: a ticker with ``u`` at or below
  the book's id is stale (a diff already applied covers it) and is ignored; one with a price or size <= 0, or
  crossed or locked (bid >= ask), is ignored and counted (``errors``, with a lone or mismatched record); any
  other becomes the overlay (counted in ``bbo_updates``).
* While the overlay is active the symbol's *effective* book is its bid level followed by the book's bids
  strictly below it, and its ask level followed by the book's asks strictly above it. Everything reads that
  book: the crossing test of an arriving order (a POST_ONLY bid at the ticker's bid rests, one at its ask is
  rejected whatever the stale book says), walks (marketable orders, FOK), MARKET's NO_LIQUIDITY check, the mid
  of every report, and the queue ahead of a new resting order (at the ticker's own price its size, strictly
  inside the spread 0, elsewhere the book's level).
* Resting orders react to a ticker as to a level: its other side at or through their price fills them in full
  (it traded through us first), and a smaller size at their own price counts toward their queue position.
  Each order remembers the level size it last saw (``O_LEVEL_SEEN``, set on arrival) and every decrease, from
  a ticker or a diff, is measured against it: a decrease seen first in a ticker is not counted again when the
  diff covering it arrives. While the overlay hides a book level (at or better than the ticker's price), a
  diff's change there neither moves queues nor fills orders: the ticker is the newer news. A book reset moves
  no queue; the snapshot levels after it are measured against what each order last saw, like any level.

How orders fill (all prices and sizes fixed-point int64, money = price * size units):

* Marketable orders (MARKET, the crossing part of LIMIT/IOC/FOK) walk the effective opposite side level by
  level up to their limit; one report carries the filled size and average price (exact ``cum_notional``),
  taker fee. What is left is cancelled (MARKET, IOC), rests (GTC, GTD), or the order is rejected beforehand
  (FOK that the visible book cannot fill in full, POST_ONLY that would cross). There is no market impact: a
  walk does not consume the simulated book (nor the overlay), the venue's next update does.
* A resting order joins the back of its level: ``queue_ahead`` starts at the level's visible size. Trades at
  its price reduce ``queue_ahead`` and fill the order once they print through it; size decreases of the level
  (against the size the order last saw) not explained by those trades are cancellations, of which
  ``queue_cancel_share`` is assumed to be ahead of us. A trade at a better price for the aggressor (through
  our price), or the opposite side reaching our price, fills the order in full. Fills are at the limit price,
  maker fee, worsened by ``adverse_selection_bps``.
* The touch model (``fill_model = "touch"``) instead fills a resting order in full, with probability
  ``touch_fill_probability * (1 - queue_ahead / queue at arrival)``, at each trade at its price (numba's
  generator, seeded from the config: deterministic too).

Commands (CANCEL, CANCEL_ALL) arrive like orders, after the entry latency, and cancel only what was sent
before them. Every command ends with one report of its own (``EXEC_FIRST``, ``order_id`` the command's, no
fill, no side, order type or time in force, the symbol's account when the symbol is known), after the
CANCELLED reports of its targets, so no command is left pending in the database:

* DONE: carried out (``target_order_id`` the order a CANCEL named; 0 for CANCEL_ALL, even with no target).
* CANCEL_REJECTED: a CANCEL that found nothing; TOO_LATE_TO_CANCEL when its target was sent before it (it
  filled, expired or was cancelled meanwhile: a race, not a mistake), UNKNOWN_ORDER otherwise. A REJECTED
  report would feed the strategy's reject-storm breaker and freeze a market maker that merely lost a race.
* a command the broker drops without carrying it out (the strategy died, the broker stopped or restarted)
  ends DONE with the reason its targets were cancelled with (STRATEGY_DOWN, SHUTDOWN, BROKER_RESTART).
* REJECTED stays for commands that are wrong (an unknown symbol) or find the table full.

State: one ``BrokerState`` bundle (``hft.broker.state``), owned by the broker process (single writer, no shared
memory), passed to every kernel as ``bk``:

* ``bk.table[MAX, O_*]`` int64: one row per order the broker holds, pending arrival or resting.
* ``bk.state[ST_*]`` int64 scalars; ``bk.params[P_*]`` int64 parameters.
* books: ``bk.prices[S, 2, depth]``, ``bk.sizes[S, 2, depth]``, ``bk.counts[S, 2]`` (``hft.feed.book`` layout);
  ``bk.grid[S, 2]`` tick and lot; ``bk.account[S, K_*]`` positions and PnL (``hft.broker.accounting``).
* ``bk.touch[S, T_*]``: the bookTicker overlay and the book's update id (above).
* ``bk.out``: EXEC_REPORT records waiting to be published (``state[ST_N_OUT]`` of them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hft.broker.accounting import (
    K_ENTRY_NOTIONAL,
    K_FEES,
    K_POSITION,
    K_REALIZED,
    apply_trade,
    charge_fee,
    fee_for,
)
from hft.feed.book import ASK_ROW, BID_ROW, book_clear, book_set_level, book_size_at
from shm_layout.records import (
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
    EV_TRADE,
    EXEC_FIRST,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    ORDER_FOK,
    ORDER_IOC,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_BAD_ORDER,
    REASON_BAD_PRICE,
    REASON_BAD_SIZE,
    REASON_CANCEL_REQUESTED,
    REASON_EXPIRED,
    REASON_FOK_UNFILLABLE,
    REASON_GTD_EXPIRED,
    REASON_IOC_REMAINDER,
    REASON_NO_LIQUIDITY,
    REASON_NO_MARKET,
    REASON_NONE,
    REASON_OFF_LOT,
    REASON_OFF_TICK,
    REASON_POST_ONLY_WOULD_CROSS,
    REASON_SHUTDOWN,
    REASON_TOO_LATE_TO_CANCEL,
    REASON_TOO_MANY_ORDERS,
    REASON_UNKNOWN_ORDER,
    REASON_UNKNOWN_SYMBOL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    TIF_FOK,
    TIF_GTC,
    TIF_GTD,
    TIF_IOC,
)

# --- table columns ---
O_STATE = 0
O_ORDER_ID = 1
O_SEQ = 2  # position on strategy.orders: ties between orders are broken by it
O_COMMAND = 3
O_SYMBOL = 4
O_SIDE = 5
O_TYPE = 6
O_TIF = 7  # the effective time in force (MARKET -> IOC or FOK, IOC/FOK types -> their TIF)
O_PRICE = 8
O_SIZE = 9
O_LEAVES = 10
O_CUM_FILLED = 11
O_CUM_NOTIONAL = 12
O_ARRIVAL_TS = 13  # venue time of arrival: decision + entry latency
O_ARRIVAL_MONO = 14  # the same on this machine's monotonic clock (the live fallback)
O_MD_CURSOR = 15
O_EXPIRE_TS = 16
O_TARGET = 17  # CMD_CANCEL's order id
O_QUEUE_AHEAD = 18  # visible size ahead of us at our level
O_TRADED_PENDING = 19  # traded at our level since its last size update (not a cancellation)
O_QUEUE_AT_ARRIVAL = 20
O_TS_TICK_RECV = 21
O_TS_ORDER_INIT = 22
O_STRATEGY_ID = 23
O_REPORTED = 24  # 1 once the order had a report (the next ones are not EXEC_FIRST)
O_LEVEL_SEEN = 25  # size of its own level in the effective book when the order last looked (arrival, updates)
N_O = 26

ROW_FREE = 0
ROW_PENDING = 1  # read from the ring, not yet arrived at the venue
ROW_RESTING = 2

# --- state scalars ---
ST_N_OUT = 0
ST_N_PENDING = 1
ST_N_RESTING = 2
ST_MD_POS = 3  # md.events sequence of the next event to apply
ST_VENUE_NOW = 4  # venue time of the last event applied
ST_VENUE_MONO = 5  # monotonic time it was applied (the live fallback's venue-clock estimate)
ST_HIGH = 6  # rows below this index may be in use: scans stop here
# counts not yet added to the process counters (the loop moves them to ``bbo_updates`` and ``errors``)
ST_BBO_TAKEN = 7  # bookTickers that became the overlay
ST_BBO_REFUSED = 8  # bookTickers ignored as malformed: price or size <= 0, crossed or locked, a lone record
N_ST = 10

# --- parameters ---
P_LATENCY_NS = 0
P_TAKER_FEE = 1  # hundredths of a bp
P_MAKER_FEE = 2  # hundredths of a bp, negative = rebate
P_ADVERSE_X100 = 3  # adverse selection, hundredths of a bp
P_CANCEL_SHARE_PPM = 4  # share of unexplained level decreases taken from ahead of us, parts per million
P_FILL_MODEL = 5
P_TOUCH_PROB_PPM = 6
P_CLOCK_FALLBACK = 7  # 1: live run, orders also arrive by the machine's clock
P_SEED = 8
N_P = 10

# --- touch columns (bk.touch[S, T_*]): each symbol's bookTicker overlay (module docstring) ---
T_BID = 0  # the overlay's bid price and size
T_BID_SIZE = 1
T_ASK = 2  # the overlay's ask price and size
T_ASK_SIZE = 3
T_U = 4  # the overlay's ticker update id (bookTicker ``u``)
T_ACTIVE = 5  # 1: the overlay is newer than every diff applied: it is the symbol's touch
T_BOOK_U = 6  # the book's update id: the largest update_id of the depth events applied (levels, resets)
T_NEXT_BID = 7  # a ticker's bid record, held until its ask record comes
T_NEXT_BID_SIZE = 8
T_NEXT_U = 9
T_NEXT_HELD = 10  # 1: T_NEXT_* hold a bid record
N_TOUCH = 12

FILL_MODEL_QUEUE = 0
FILL_MODEL_TOUCH = 1
FILL_MODELS = {"queue": FILL_MODEL_QUEUE, "touch": FILL_MODEL_TOUCH}

PPM = 1_000_000


@njit(cache=True)
def seed_random(seed: int) -> None:
    """Seed numba's generator (per process) for the touch model."""
    np.random.seed(seed)


# ------------------------------------------------------------------------------------------------ reports


# ------------------------------------------------------------------------------------------------ the touch


@njit(cache=True)
def effective_best(bk, symbol: int, side: int) -> tuple[int, int]:
    """``(price, size)`` of the best level of ``side`` in the symbol's effective book (the overlay's while it is
    active, else the book's); ``(0, 0)`` for an empty side."""
    touch = bk.touch
    if touch[symbol, T_ACTIVE] != 0:
        if side == SIDE_BUY:
            return touch[symbol, T_BID], touch[symbol, T_BID_SIZE]
        return touch[symbol, T_ASK], touch[symbol, T_ASK_SIZE]
    row = BID_ROW if side == SIDE_BUY else ASK_ROW
    n = bk.counts[symbol, row]
    if n == 0:
        return 0, 0
    return bk.prices[symbol, row, n - 1], bk.sizes[symbol, row, n - 1]


@njit(cache=True)
def effective_size_at(bk, symbol: int, side: int, price: int) -> int:
    """Size at ``price`` on ``side`` of the effective book: the overlay's size at its own price, 0 better than
    it (the ticker says those levels are gone), the book's level elsewhere."""
    touch = bk.touch
    if touch[symbol, T_ACTIVE] != 0:
        if side == SIDE_BUY:
            if price == touch[symbol, T_BID]:
                return touch[symbol, T_BID_SIZE]
            if price > touch[symbol, T_BID]:
                return 0
        else:
            if price == touch[symbol, T_ASK]:
                return touch[symbol, T_ASK_SIZE]
            if price < touch[symbol, T_ASK]:
                return 0
    return book_size_at(bk.prices[symbol], bk.sizes[symbol], bk.counts[symbol], side, price)


@njit(cache=True)
def _hidden(bk, symbol: int, side: int, price: int) -> bool:
    """True while the overlay hides the book's level at ``price`` (at or better than the ticker's price)."""
    touch = bk.touch
    if touch[symbol, T_ACTIVE] == 0:
        return False
    return price >= touch[symbol, T_BID] if side == SIDE_BUY else price <= touch[symbol, T_ASK]


@njit(cache=True)
def _walk_top(bk, symbol: int, row: int) -> tuple[int, int]:
    """Where a walk down ``row`` starts: ``(first, top)``. ``first`` is the index of the best book level the
    overlay leaves visible (-1: none); ``top`` is ``first + 1`` when the overlay's level comes before it (an
    index ``_walk_level`` maps to the overlay), else ``first``. Walk ``k`` from ``top`` down to 0."""
    i = bk.counts[symbol, row] - 1
    touch = bk.touch
    if touch[symbol, T_ACTIVE] == 0:
        return i, i
    prices = bk.prices
    if row == BID_ROW:
        edge = touch[symbol, T_BID]
        while i >= 0 and prices[symbol, row, i] >= edge:
            i -= 1
    else:
        edge = touch[symbol, T_ASK]
        while i >= 0 and prices[symbol, row, i] <= edge:
            i -= 1
    return i, i + 1


@njit(cache=True)
def _walk_level(bk, symbol: int, row: int, k: int, first: int) -> tuple[int, int]:
    """``(price, size)`` of step ``k`` of a walk (``_walk_top``): the overlay's level above ``first``, else the
    book's level ``k``."""
    if k > first:
        touch = bk.touch
        if row == BID_ROW:
            return touch[symbol, T_BID], touch[symbol, T_BID_SIZE]
        return touch[symbol, T_ASK], touch[symbol, T_ASK_SIZE]
    return bk.prices[symbol, row, k], bk.sizes[symbol, row, k]


@njit(cache=True)
def _mid_x2(bk, symbol: int) -> int:
    """Best bid + best ask of the effective book (0 unless both sides exist): the mark of every report."""
    bid, _ = effective_best(bk, symbol, SIDE_BUY)
    ask, _ = effective_best(bk, symbol, SIDE_SELL)
    if bid == 0 or ask == 0:
        return 0
    return bid + ask


@njit(cache=True)
def _symbol_fields(bk, report, symbol: int) -> None:
    """Set the symbol's account and mark on ``report``; zeros for a symbol outside the table (an unknown
    symbol, or -1: a cancel-all of every symbol). Every report carries them: the newest report of a symbol is
    what a restarted broker restores its position from (``hft.broker.recovery``)."""
    account = bk.account
    report.symbol_id = symbol
    if 0 <= symbol < account.shape[0]:
        report.position = account[symbol, K_POSITION]
        report.entry_notional = account[symbol, K_ENTRY_NOTIONAL]
        report.realized_pnl = account[symbol, K_REALIZED]
        report.total_fees = account[symbol, K_FEES]
        report.mid_x2 = _mid_x2(bk, symbol)
    else:
        report.position = 0
        report.entry_notional = 0
        report.realized_pnl = 0
        report.total_fees = 0
        report.mid_x2 = 0


@njit(cache=True)
def _next_report(bk):
    state = bk.state
    report = bk.out[state[ST_N_OUT]]
    state[ST_N_OUT] += 1
    report.exec_id = 0  # set when published
    report.ts_init = 0
    return report


@njit(cache=True)
def _emit(bk, row: int, status: int, reason: int, price: int, size: int, fee: int, fill_pnl: int, closed: int,
          liquidity: int, ts_exch: int) -> None:
    """Append the report of the order in ``table[row]`` after an event; ``price``/``size`` describe its fill
    (0: none)."""
    table = bk.table
    report = _next_report(bk)
    report.order_id = table[row, O_ORDER_ID]
    report.ts_tick_recv = table[row, O_TS_TICK_RECV]
    report.ts_order_init = table[row, O_TS_ORDER_INIT]
    report.ts_exch = ts_exch
    report.price = price
    report.size = size
    report.leaves = table[row, O_LEAVES]
    report.cum_filled = table[row, O_CUM_FILLED]
    report.cum_notional = table[row, O_CUM_NOTIONAL]
    _symbol_fields(bk, report, table[row, O_SYMBOL])
    report.fill_pnl = fill_pnl
    report.closed = closed
    report.fee = fee
    report.strategy_id = table[row, O_STRATEGY_ID]
    report.side = table[row, O_SIDE]
    report.status = status
    report.reason = reason
    report.order_type = table[row, O_TYPE]
    report.tif = table[row, O_TIF]
    report.liquidity = liquidity
    report.flags = EXEC_FIRST if table[row, O_REPORTED] == 0 else 0
    report.target_order_id = 0
    table[row, O_REPORTED] = 1


@njit(cache=True)
def _command_report(bk, row: int, status: int, reason: int, target: int, ts_exch: int) -> None:
    """Append the one report of the CANCEL or CANCEL_ALL command in ``table[row]`` (``target``: the order a
    CANCEL named, 0 for a CANCEL_ALL). No fill fields, and no side, order type or time in force: a command has
    none, and a zero ``order_type`` is how ``publish_reports`` tells a command's report from an order's."""
    table = bk.table
    report = _next_report(bk)
    report.order_id = table[row, O_ORDER_ID]
    report.ts_tick_recv = table[row, O_TS_TICK_RECV]
    report.ts_order_init = table[row, O_TS_ORDER_INIT]
    report.ts_exch = ts_exch
    report.price = 0
    report.size = 0
    report.leaves = 0
    report.cum_filled = 0
    report.cum_notional = 0
    _symbol_fields(bk, report, table[row, O_SYMBOL])
    report.fill_pnl = 0
    report.closed = 0
    report.fee = 0
    report.strategy_id = table[row, O_STRATEGY_ID]
    report.side = 0
    report.status = status
    report.reason = reason
    report.order_type = 0
    report.tif = 0
    report.liquidity = 0
    report.flags = EXEC_FIRST
    report.target_order_id = target
    table[row, O_REPORTED] = 1


@njit(cache=True)
def _free(bk, row: int) -> None:
    table = bk.table
    state = bk.state
    if table[row, O_STATE] == ROW_PENDING:
        state[ST_N_PENDING] -= 1
    elif table[row, O_STATE] == ROW_RESTING:
        state[ST_N_RESTING] -= 1
    table[row, O_STATE] = ROW_FREE
    high = state[ST_HIGH]
    while high > 0 and table[high - 1, O_STATE] == ROW_FREE:
        high -= 1
    state[ST_HIGH] = high


@njit(cache=True)
def _close(bk, row: int, status: int, reason: int, ts_exch: int) -> None:
    """End the order in ``row`` without a fill (cancel, expiry, rejection): report it and free the row."""
    bk.table[row, O_LEAVES] = 0
    _emit(bk, row, status, reason, 0, 0, 0, 0, 0, 0, ts_exch)
    _free(bk, row)


# ------------------------------------------------------------------------------------------------ intake


@njit(cache=True)
def validate(order, n_symbols: int, grid) -> int:
    """Return the static rejection reason of an order (one that needs no market), or REASON_NONE."""
    command = order.command
    if command == CMD_CANCEL:
        return REASON_NONE
    if command == CMD_CANCEL_ALL:
        return REASON_NONE if -1 <= order.symbol_id < n_symbols else REASON_UNKNOWN_SYMBOL
    if command != CMD_NEW:
        return REASON_BAD_ORDER
    symbol = order.symbol_id
    if symbol < 0 or symbol >= n_symbols:
        return REASON_UNKNOWN_SYMBOL
    if order.side != SIDE_BUY and order.side != SIDE_SELL:
        return REASON_BAD_ORDER
    kind = order.order_type
    if kind < ORDER_MARKET or kind > ORDER_FOK:
        return REASON_BAD_ORDER
    tif = order.tif
    if tif < TIF_GTC or tif > TIF_GTD:
        return REASON_BAD_ORDER
    if kind == ORDER_POST_ONLY and tif != TIF_GTC and tif != TIF_GTD:
        return REASON_BAD_ORDER  # a post-only order exists to rest
    if order.size <= 0:
        return REASON_BAD_SIZE
    lot = grid[symbol, 1]
    if lot > 0 and order.size % lot != 0:
        return REASON_OFF_LOT
    if kind != ORDER_MARKET:
        if order.price <= 0:
            return REASON_BAD_PRICE
        tick = grid[symbol, 0]
        if tick > 0 and order.price % tick != 0:
            return REASON_OFF_TICK
    if effective_tif(kind, tif) == TIF_GTD and order.expire_ts <= 0:
        return REASON_BAD_ORDER
    return REASON_NONE


@njit(cache=True)
def effective_tif(kind: int, tif: int) -> int:
    if kind == ORDER_IOC:
        return TIF_IOC
    if kind == ORDER_FOK:
        return TIF_FOK
    if kind == ORDER_MARKET:
        return TIF_FOK if tif == TIF_FOK else TIF_IOC
    return tif


@njit(cache=True)
def accept(bk, order, seq: int) -> int:
    """Take one order off strategy.orders (``seq``: its position on the ring): reject it now if it is invalid,
    else hold it until it arrives.

    Return the reason it was rejected (REASON_NONE if held)."""
    table = bk.table
    state = bk.state
    reason = validate(order, bk.account.shape[0], bk.grid)
    target = -1
    if reason == REASON_NONE:
        for row in range(table.shape[0]):
            if table[row, O_STATE] == ROW_FREE:
                target = row
                break
        if target < 0:
            reason = REASON_TOO_MANY_ORDERS
    if reason != REASON_NONE:
        return _reject_unheld(bk, order, reason)
    table[target, O_STATE] = ROW_PENDING
    table[target, O_ORDER_ID] = order.order_id
    table[target, O_SEQ] = seq
    table[target, O_COMMAND] = order.command
    table[target, O_SYMBOL] = order.symbol_id
    table[target, O_SIDE] = order.side
    table[target, O_TYPE] = order.order_type
    table[target, O_TIF] = effective_tif(order.order_type, order.tif)
    table[target, O_PRICE] = order.price
    table[target, O_SIZE] = order.size
    table[target, O_LEAVES] = order.size if order.command == CMD_NEW else 0
    table[target, O_CUM_FILLED] = 0
    table[target, O_CUM_NOTIONAL] = 0
    latency = bk.params[P_LATENCY_NS]
    table[target, O_ARRIVAL_TS] = order.ts_exch + latency
    table[target, O_ARRIVAL_MONO] = order.ts_init + latency
    table[target, O_MD_CURSOR] = order.md_cursor
    table[target, O_EXPIRE_TS] = order.expire_ts
    table[target, O_TARGET] = order.target_order_id
    table[target, O_QUEUE_AHEAD] = 0
    table[target, O_TRADED_PENDING] = 0
    table[target, O_QUEUE_AT_ARRIVAL] = 0
    table[target, O_TS_TICK_RECV] = order.ts_tick_recv
    table[target, O_TS_ORDER_INIT] = order.ts_init
    table[target, O_STRATEGY_ID] = order.strategy_id
    table[target, O_REPORTED] = 0
    table[target, O_LEVEL_SEEN] = 0
    state[ST_N_PENDING] += 1
    if target + 1 > state[ST_HIGH]:
        state[ST_HIGH] = target + 1
    return REASON_NONE


@njit(cache=True)
def _reject_unheld(bk, order, reason: int) -> int:
    """Report the rejection of an order or command that never got a row (a command's report has no side, type
    or time in force, as ``_command_report`` explains)."""
    report = _next_report(bk)
    report.order_id = order.order_id
    report.ts_tick_recv = order.ts_tick_recv
    report.ts_order_init = order.ts_init
    report.ts_exch = order.ts_exch
    report.price = 0
    report.size = 0
    report.leaves = 0
    report.cum_filled = 0
    report.cum_notional = 0
    _symbol_fields(bk, report, order.symbol_id)
    report.fill_pnl = 0
    report.closed = 0
    report.fee = 0
    report.strategy_id = order.strategy_id
    command = order.command == CMD_CANCEL or order.command == CMD_CANCEL_ALL
    report.side = 0 if command else order.side
    report.status = STATUS_REJECTED
    report.reason = reason
    report.order_type = 0 if command else order.order_type
    report.tif = 0 if command else order.tif
    report.liquidity = 0
    report.flags = EXEC_FIRST
    report.target_order_id = order.target_order_id if order.command == CMD_CANCEL else 0
    return reason


# ------------------------------------------------------------------------------------------------ arrival


@njit(cache=True)
def _fill(bk, row: int, quantity: int, price: int, fee_x100: int) -> tuple[int, int, int]:
    """Book ``quantity`` (unsigned) of ``table[row]`` at ``price``; return (fee, pnl after fee, closed)."""
    table = bk.table
    account = bk.account
    symbol = table[row, O_SYMBOL]
    signed = quantity if table[row, O_SIDE] == SIDE_BUY else -quantity
    pnl, closed = apply_trade(account, symbol, signed, price)
    fee = fee_for(quantity * price, fee_x100)
    charge_fee(account, symbol, fee)
    table[row, O_LEAVES] -= quantity
    table[row, O_CUM_FILLED] += quantity
    table[row, O_CUM_NOTIONAL] += quantity * price
    return fee, pnl - fee, closed


@njit(cache=True)
def _walkable(bk, symbol: int, side: int, limit: int, wanted: int) -> int:
    """Size the effective opposite side offers within ``limit`` (<= 0 for a market order), up to ``wanted``."""
    row = ASK_ROW if side == SIDE_BUY else BID_ROW
    first, top = _walk_top(bk, symbol, row)
    total = 0
    for k in range(top, -1, -1):
        level, size = _walk_level(bk, symbol, row, k, first)
        if limit > 0 and (level > limit if side == SIDE_BUY else level < limit):
            break
        total += size
        if total >= wanted:
            return wanted
    return total


@njit(cache=True)
def _take(bk, row: int, ts_exch: int) -> None:
    """Walk the effective opposite side for ``table[row]`` up to its limit; report the aggregate fill (if any)."""
    table = bk.table
    account = bk.account
    symbol = table[row, O_SYMBOL]
    side = table[row, O_SIDE]
    limit = 0 if table[row, O_TYPE] == ORDER_MARKET else table[row, O_PRICE]
    book_row = ASK_ROW if side == SIDE_BUY else BID_ROW
    # What the book offers within the limit, cut to whole lots: a partial fill leaves a closable position even
    # when the recording's level sizes are not multiples of the configured lot.
    goal = _walkable(bk, symbol, side, limit, table[row, O_LEAVES])
    lot = bk.grid[symbol, 1]
    if lot > 1:
        goal -= goal % lot
    first, top = _walk_top(bk, symbol, book_row)
    filled = 0
    notional = 0
    pnl = 0
    closed = 0
    for k in range(top, -1, -1):
        wanted = goal - filled
        if wanted <= 0:
            break
        leaves = table[row, O_LEAVES]
        level, quantity = _walk_level(bk, symbol, book_row, k, first)
        if limit > 0 and (level > limit if side == SIDE_BUY else level < limit):
            break
        if quantity > wanted:
            quantity = wanted
        signed = quantity if side == SIDE_BUY else -quantity
        level_pnl, level_closed = apply_trade(account, symbol, signed, level)
        pnl += level_pnl
        closed += level_closed
        filled += quantity
        notional += quantity * level
        table[row, O_LEAVES] = leaves - quantity
    if filled == 0:
        return
    fee = fee_for(notional, bk.params[P_TAKER_FEE])
    charge_fee(account, symbol, fee)
    table[row, O_CUM_FILLED] += filled
    table[row, O_CUM_NOTIONAL] += notional
    average = (2 * notional + filled) // (2 * filled)  # rounded half up; cum_notional stays exact
    status = STATUS_FILLED if table[row, O_LEAVES] == 0 else STATUS_PARTIALLY_FILLED
    _emit(bk, row, status, REASON_NONE, average, filled, fee, pnl - fee, closed, LIQUIDITY_TAKER, ts_exch)


@njit(cache=True)
def _arrive_new(bk, row: int, ts_exch: int) -> None:
    """The order in ``table[row]`` meets the symbol's effective book (book and bookTicker overlay)."""
    table = bk.table
    state = bk.state
    symbol = table[row, O_SYMBOL]
    side = table[row, O_SIDE]
    kind = table[row, O_TYPE]
    tif = table[row, O_TIF]
    best_bid, _ = effective_best(bk, symbol, SIDE_BUY)
    best_ask, _ = effective_best(bk, symbol, SIDE_SELL)
    if best_bid == 0 and best_ask == 0:
        _close(bk, row, STATUS_REJECTED, REASON_NO_MARKET, ts_exch)
        return
    opposite_empty = best_ask == 0 if side == SIDE_BUY else best_bid == 0
    if kind == ORDER_MARKET and opposite_empty:
        _close(bk, row, STATUS_REJECTED, REASON_NO_LIQUIDITY, ts_exch)
        return
    if tif == TIF_GTD and table[row, O_EXPIRE_TS] <= ts_exch:
        _close(bk, row, STATUS_REJECTED, REASON_GTD_EXPIRED, ts_exch)
        return
    limit = table[row, O_PRICE]
    crosses = False
    if not opposite_empty:
        if kind == ORDER_MARKET:
            crosses = True
        elif side == SIDE_BUY:
            crosses = best_ask <= limit
        else:
            crosses = best_bid >= limit
    if kind == ORDER_POST_ONLY and crosses:
        _close(bk, row, STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS, ts_exch)
        return
    if tif == TIF_FOK:
        wanted = table[row, O_LEAVES]
        market_limit = 0 if kind == ORDER_MARKET else limit
        if not crosses or _walkable(bk, symbol, side, market_limit, wanted) < wanted:
            _close(bk, row, STATUS_REJECTED, REASON_FOK_UNFILLABLE, ts_exch)
            return
    if crosses:
        _take(bk, row, ts_exch)
    if table[row, O_LEAVES] == 0:
        _free(bk, row)
        return
    if tif in (TIF_IOC, TIF_FOK):
        _close(bk, row, STATUS_CANCELLED, REASON_IOC_REMAINDER, ts_exch)
        return
    # rest at the back of our level (the ticker's size at its price, nobody strictly inside the spread)
    ahead = effective_size_at(bk, symbol, side, limit)
    table[row, O_QUEUE_AHEAD] = ahead
    table[row, O_QUEUE_AT_ARRIVAL] = ahead
    table[row, O_LEVEL_SEEN] = ahead
    table[row, O_TRADED_PENDING] = 0
    table[row, O_STATE] = ROW_RESTING
    state[ST_N_PENDING] -= 1
    state[ST_N_RESTING] += 1
    if table[row, O_REPORTED] == 0:
        _emit(bk, row, STATUS_NEW, REASON_NONE, 0, 0, 0, 0, 0, 0, ts_exch)


@njit(cache=True)
def _arrive_cancel(bk, row: int, ts_exch: int) -> int:
    """Cancel what ``table[row]`` (a CANCEL or CANCEL_ALL) names, then report the command itself; return how
    many orders it cancelled.

    The targets' CANCELLED reports come first, then the command's: DONE, or for a CANCEL that found nothing,
    CANCEL_REJECTED with TOO_LATE_TO_CANCEL when its target was sent before it (``0 < target < its own id``:
    the target filled, expired or was cancelled while the cancel travelled, the race every market maker
    loses sometimes) and UNKNOWN_ORDER otherwise. Neither is a rejection: a cancel race must not feed the
    strategy's reject-storm breaker."""
    table = bk.table
    command = table[row, O_COMMAND]
    cancelled = 0
    for other in range(bk.state[ST_HIGH]):
        if other == row or table[other, O_STATE] == ROW_FREE or table[other, O_COMMAND] != CMD_NEW:
            continue
        if table[other, O_SEQ] > table[row, O_SEQ]:
            continue  # sent after the cancel
        if command == CMD_CANCEL:
            hit = table[other, O_ORDER_ID] == table[row, O_TARGET]
        else:
            hit = (table[row, O_STRATEGY_ID] <= 0 or table[other, O_STRATEGY_ID] == table[row, O_STRATEGY_ID]) and (
                table[row, O_SYMBOL] < 0 or table[other, O_SYMBOL] == table[row, O_SYMBOL])
        if hit:
            _close(bk, other, STATUS_CANCELLED, REASON_CANCEL_REQUESTED, ts_exch)
            cancelled += 1
    target = table[row, O_TARGET] if command == CMD_CANCEL else 0
    if command == CMD_CANCEL and cancelled == 0:
        late = 0 < target < table[row, O_ORDER_ID]
        reason = REASON_TOO_LATE_TO_CANCEL if late else REASON_UNKNOWN_ORDER
        _command_report(bk, row, STATUS_CANCEL_REJECTED, reason, target, ts_exch)
    else:
        _command_report(bk, row, STATUS_DONE, REASON_NONE, target, ts_exch)
    _free(bk, row)
    return cancelled


@njit(cache=True)
def _arrive(bk, row: int, ts_exch: int) -> None:
    if bk.table[row, O_COMMAND] == CMD_NEW:
        _arrive_new(bk, row, ts_exch)
    else:
        _arrive_cancel(bk, row, ts_exch)


@njit(cache=True)
def arrive_due(bk, md_pos: int, before_ts: int, mono_now: int, at_ts: int) -> int:
    """Let pending orders arrive, oldest first: those whose cursor is <= ``md_pos`` and whose venue arrival is
    before ``before_ts`` (the next event's venue time), or, if ``mono_now`` > 0, whose arrival on the machine's
    clock has passed. They meet the book as it is now, at venue time ``at_ts`` (or their arrival); resting GTD
    orders whose expiry is at or before that time expire first. Return how many arrived.

    The next arrival, with the expiries before it, adds at most one report per held order plus one: this stops
    early only when ``out`` might not hold that many (the caller flushes and calls again). A caller that leaves
    two reports per held order free (``on_event``) is never cut short, so an order is never deferred past the
    event it was due before by how many reports happened to be waiting."""
    table = bk.table
    state = bk.state
    capacity = bk.out.shape[0]
    arrived = 0
    while state[ST_N_PENDING] > 0:
        if state[ST_N_OUT] + state[ST_N_PENDING] + state[ST_N_RESTING] + 1 > capacity:
            break
        best = -1
        for row in range(state[ST_HIGH]):
            if table[row, O_STATE] != ROW_PENDING or table[row, O_MD_CURSOR] > md_pos:
                continue
            due = table[row, O_ARRIVAL_TS] < before_ts or (mono_now > 0 and table[row, O_ARRIVAL_MONO] <= mono_now)
            if due and (best < 0 or table[row, O_SEQ] < table[best, O_SEQ]):
                best = row
        if best < 0:
            break
        ts = table[best, O_ARRIVAL_TS]
        if at_ts > ts:
            ts = at_ts
        if state[ST_N_RESTING] > 0:
            expire_due(bk, ts)  # GTD orders that ended before it came
        _arrive(bk, best, ts)
        arrived += 1
    return arrived


# ------------------------------------------------------------------------------------------------ market events


@njit(cache=True)
def _maker_fill(bk, row: int, quantity: int, ts_exch: int) -> None:
    """Fill a resting order at its limit price, worsened by the adverse selection, as maker."""
    table = bk.table
    params = bk.params
    price = table[row, O_PRICE]
    adverse = (price * params[P_ADVERSE_X100] + PPM - 1) // PPM if params[P_ADVERSE_X100] > 0 else 0
    price = price + adverse if table[row, O_SIDE] == SIDE_BUY else price - adverse
    fee, pnl, closed = _fill(bk, row, quantity, price, params[P_MAKER_FEE])
    status = STATUS_FILLED if table[row, O_LEAVES] == 0 else STATUS_PARTIALLY_FILLED
    _emit(bk, row, status, REASON_NONE, price, quantity, fee, pnl, closed, LIQUIDITY_MAKER, ts_exch)
    if table[row, O_LEAVES] == 0:
        _free(bk, row)


@njit(cache=True)
def _queue_update(bk, row: int, level_size: int) -> None:
    """The resting order in ``table[row]`` sees its level at ``level_size`` (effective book): a decrease since it
    last looked, less what traded at the level meanwhile, is cancellations, a share of them ahead of it."""
    table = bk.table
    decrease = table[row, O_LEVEL_SEEN] - level_size
    if decrease > 0:
        traded = table[row, O_TRADED_PENDING]
        cancels = decrease - traded if decrease > traded else 0
        table[row, O_TRADED_PENDING] = traded - decrease if traded > decrease else 0
        ahead = table[row, O_QUEUE_AHEAD] - cancels * bk.params[P_CANCEL_SHARE_PPM] // PPM
        table[row, O_QUEUE_AHEAD] = ahead if ahead > 0 else 0
    if table[row, O_QUEUE_AHEAD] > level_size:
        table[row, O_QUEUE_AHEAD] = level_size  # what is ahead of us is part of the visible level
    table[row, O_LEVEL_SEEN] = level_size


@njit(cache=True)
def _on_level(bk, symbol: int, side: int, price: int, new_size: int, update_id: int, ts_exch: int) -> None:
    """A level of the book changed to ``new_size`` by a diff (or snapshot) up to ``update_id``: end the overlay
    it covers, move queue positions at the level, fill orders the other side now crosses."""
    table = bk.table
    state = bk.state
    touch = bk.touch
    if book_set_level(bk.prices[symbol], bk.sizes[symbol], bk.counts[symbol], side, price, new_size) < 0:
        return  # malformed (side, price or size): the book refused it, so it cannot fill anything either
    if update_id > touch[symbol, T_BOOK_U]:
        touch[symbol, T_BOOK_U] = update_id
    if touch[symbol, T_ACTIVE] != 0 and update_id >= touch[symbol, T_U]:
        touch[symbol, T_ACTIVE] = 0  # the diff covers the ticker: the book is the newer view again
    if state[ST_N_RESTING] == 0:
        return
    visible = not _hidden(bk, symbol, side, price)  # a level under the overlay is older news than the ticker
    for row in range(state[ST_HIGH]):
        if table[row, O_STATE] != ROW_RESTING or table[row, O_SYMBOL] != symbol:
            continue
        mine = table[row, O_PRICE]
        if table[row, O_SIDE] == side:
            if mine == price:
                _queue_update(bk, row, effective_size_at(bk, symbol, side, price))
        elif visible and new_size > 0 and (price <= mine if side == SIDE_SELL else price >= mine):
            # liquidity rests on the other side at or through our price: it traded through us first
            _maker_fill(bk, row, table[row, O_LEAVES], ts_exch)


@njit(cache=True)
def _on_bbo(bk, symbol: int, side: int, price: int, size: int, update_id: int, ts_exch: int) -> None:
    """One record of a bookTicker: hold the bid, then on the ask make the pair the overlay unless it is stale
    or malformed (module docstring), and let resting orders react to it as to levels."""
    touch = bk.touch
    state = bk.state
    if side == SIDE_BUY:
        if touch[symbol, T_NEXT_HELD] != 0:
            state[ST_BBO_REFUSED] += 1  # the previous bid record never got its ask
        touch[symbol, T_NEXT_BID] = price
        touch[symbol, T_NEXT_BID_SIZE] = size
        touch[symbol, T_NEXT_U] = update_id
        touch[symbol, T_NEXT_HELD] = 1
        return
    held = touch[symbol, T_NEXT_HELD] != 0 and touch[symbol, T_NEXT_U] == update_id
    touch[symbol, T_NEXT_HELD] = 0
    if side != SIDE_SELL or not held:
        state[ST_BBO_REFUSED] += 1  # not the ask after the bid of the same ticker
        return
    if update_id <= touch[symbol, T_BOOK_U] or (touch[symbol, T_ACTIVE] != 0 and update_id <= touch[symbol, T_U]):
        return  # stale: a diff already applied (or a newer ticker) covers it
    bid = touch[symbol, T_NEXT_BID]
    bid_size = touch[symbol, T_NEXT_BID_SIZE]
    if bid <= 0 or price <= 0 or bid_size <= 0 or size <= 0 or bid >= price:
        state[ST_BBO_REFUSED] += 1  # an empty side, or crossed/locked: not a touch we can trade against
        return
    touch[symbol, T_BID] = bid
    touch[symbol, T_BID_SIZE] = bid_size
    touch[symbol, T_ASK] = price
    touch[symbol, T_ASK_SIZE] = size
    touch[symbol, T_U] = update_id
    touch[symbol, T_ACTIVE] = 1
    state[ST_BBO_TAKEN] += 1
    if state[ST_N_RESTING] == 0:
        return
    table = bk.table
    for row in range(state[ST_HIGH]):
        if table[row, O_STATE] != ROW_RESTING or table[row, O_SYMBOL] != symbol:
            continue
        mine = table[row, O_PRICE]
        own = table[row, O_SIDE]
        if price <= mine if own == SIDE_BUY else bid >= mine:
            _maker_fill(bk, row, table[row, O_LEAVES], ts_exch)  # the other side reached us: traded through us
        else:
            _queue_update(bk, row, effective_size_at(bk, symbol, own, mine))


@njit(cache=True)
def _on_trade(bk, symbol: int, aggressor: int, price: int, size: int, ts_exch: int) -> None:
    """A print: it fills resting orders on the passive side that it reaches (through them, or past the queue)."""
    table = bk.table
    state = bk.state
    params = bk.params
    if state[ST_N_RESTING] == 0 or price <= 0 or size <= 0:
        return  # (a malformed print fills nothing)
    passive = -aggressor
    touch_model = params[P_FILL_MODEL] == FILL_MODEL_TOUCH
    for row in range(state[ST_HIGH]):
        if table[row, O_STATE] != ROW_RESTING or table[row, O_SYMBOL] != symbol or table[row, O_SIDE] != passive:
            continue
        mine = table[row, O_PRICE]
        through = price < mine if passive == SIDE_BUY else price > mine
        if through:
            _maker_fill(bk, row, table[row, O_LEAVES], ts_exch)
            continue
        if price != mine:
            continue
        ahead = table[row, O_QUEUE_AHEAD]
        table[row, O_TRADED_PENDING] += size
        if ahead >= size:
            table[row, O_QUEUE_AHEAD] = ahead - size
            reached = 0
        else:
            table[row, O_QUEUE_AHEAD] = 0
            reached = size - ahead
        if touch_model:
            at_arrival = table[row, O_QUEUE_AT_ARRIVAL]
            probability = params[P_TOUCH_PROB_PPM] / PPM
            if at_arrival > 0:
                probability *= 1.0 - table[row, O_QUEUE_AHEAD] / at_arrival
            if np.random.random() < probability:
                _maker_fill(bk, row, table[row, O_LEAVES], ts_exch)
        elif reached > 0:
            # A partial fill is a whole number of lots (what prints past us beyond that is lost to us), so the
            # position it leaves can always be closed: a recording's trades need not be on the configured lot.
            leaves = table[row, O_LEAVES]
            quantity = reached if reached < leaves else leaves
            lot = bk.grid[table[row, O_SYMBOL], 1]
            if lot > 1:
                quantity -= quantity % lot
            if quantity > 0:
                _maker_fill(bk, row, quantity, ts_exch)


@njit(cache=True)
def expire_due(bk, venue_ts: int) -> int:
    """Expire resting GTD orders whose expiry is at or before ``venue_ts``; return how many."""
    table = bk.table
    state = bk.state
    expired = 0
    if state[ST_N_RESTING] == 0:
        return 0
    for row in range(state[ST_HIGH]):
        if table[row, O_STATE] == ROW_RESTING and table[row, O_TIF] == TIF_GTD and table[row, O_EXPIRE_TS] <= venue_ts:
            _close(bk, row, STATUS_EXPIRED, REASON_EXPIRED, venue_ts)
            expired += 1
    return expired


@njit(cache=True)
def on_event(bk, event) -> None:
    """Apply one md.events record at ``state[ST_MD_POS]``: arrivals due before it, expiries, then the event (a
    level, a trade, a bookTicker record or a book reset; the module docstring says what each does).

    Call it with fewer than ``out.shape[0] - 2 * table.shape[0] - 8`` reports in ``out``: one event, with the
    arrivals due before it, adds at most two per held order, and those arrivals must never be cut short."""
    state = bk.state
    ts = event.ts_exch
    if state[ST_N_PENDING] > 0:
        arrive_due(bk, state[ST_MD_POS], ts, 0, 0)
    if state[ST_N_RESTING] > 0:
        expire_due(bk, ts)
    symbol = event.symbol_id
    if 0 <= symbol < bk.account.shape[0]:
        kind = event.kind
        if kind == EV_BOOK_LEVEL:
            _on_level(bk, symbol, event.side, event.price, event.size, event.update_id, ts)
        elif kind == EV_TRADE:
            _on_trade(bk, symbol, event.side, event.price, event.size, ts)
        elif kind == EV_BBO:
            _on_bbo(bk, symbol, event.side, event.price, event.size, event.update_id, ts)
        elif kind == EV_BOOK_RESET:
            book_clear(bk.prices[symbol], bk.sizes[symbol], bk.counts[symbol])
            touch = bk.touch
            touch[symbol, T_ACTIVE] = 0  # the book starts again: the ticker was an overlay on the old one
            if event.update_id > touch[symbol, T_BOOK_U]:
                touch[symbol, T_BOOK_U] = event.update_id  # a snapshot's reset: its lastUpdateId
    state[ST_MD_POS] += 1
    if ts > state[ST_VENUE_NOW]:
        state[ST_VENUE_NOW] = ts


@njit(cache=True)
def cancel_held(bk, reason: int, venue_ts: int, strategy_id: int) -> int:
    """Cancel every order held for ``strategy_id`` (<= 0: everyone's), resting or still to arrive, with
    ``reason``; then end its pending cancel commands. Return how many orders were cancelled.

    A pending CANCEL or CANCEL_ALL is not carried out but needs a final report too: it gets DONE with the same
    ``reason`` (SHUTDOWN, STRATEGY_DOWN), after its targets' reports, since whatever it named was just
    cancelled with that reason anyway. ``out`` must have room for one report per held row (the caller
    publishes first)."""
    table = bk.table
    state = bk.state
    cancelled = 0
    for row in range(state[ST_HIGH]):
        if table[row, O_STATE] == ROW_FREE or table[row, O_COMMAND] != CMD_NEW:
            continue
        if strategy_id > 0 and table[row, O_STRATEGY_ID] != strategy_id:
            continue
        ts = venue_ts if venue_ts > table[row, O_ARRIVAL_TS] else table[row, O_ARRIVAL_TS]  # never before its ack
        _close(bk, row, STATUS_CANCELLED, reason, ts)
        cancelled += 1
    for row in range(state[ST_HIGH]):
        if table[row, O_STATE] == ROW_FREE or table[row, O_COMMAND] == CMD_NEW:
            continue
        if strategy_id > 0 and table[row, O_STRATEGY_ID] != strategy_id:
            continue
        ts = venue_ts if venue_ts > table[row, O_ARRIVAL_TS] else table[row, O_ARRIVAL_TS]
        target = table[row, O_TARGET] if table[row, O_COMMAND] == CMD_CANCEL else 0
        _command_report(bk, row, STATUS_DONE, reason, target, ts)
        _free(bk, row)
    return cancelled


@njit(cache=True)
def shutdown(bk) -> int:
    """At stop: every pending order arrives against the final book, then every resting order is cancelled.

    Return how many orders are still pending because ``out`` filled up: publish it and call again."""
    state = bk.state
    venue = state[ST_VENUE_NOW]
    arrive_due(bk, 1 << 62, 1 << 62, 0, venue)
    if state[ST_N_PENDING] > 0:
        return state[ST_N_PENDING]
    cancel_held(bk, REASON_SHUTDOWN, venue, 0)
    return 0


@njit(cache=True)
def load_levels_from_snapshot(bk, snapshot, symbol: int) -> None:
    """Rebuild one symbol's book from a seqlock snapshot (top levels only): the recovery after being lapped or
    restarted. The overlay ends (the snapshot is the feed's newest view) and the book's id becomes the
    snapshot's, so tickers it covers are stale."""
    prices = bk.prices
    sizes = bk.sizes
    counts = bk.counts
    touch = bk.touch
    touch[symbol, T_ACTIVE] = 0
    touch[symbol, T_NEXT_HELD] = 0
    if snapshot.update_id > touch[symbol, T_BOOK_U]:
        touch[symbol, T_BOOK_U] = snapshot.update_id
    book_clear(prices[symbol], sizes[symbol], counts[symbol])
    for i in range(snapshot.n_bid_levels):
        book_set_level(prices[symbol], sizes[symbol], counts[symbol], SIDE_BUY, snapshot.bid_prices[i],
                       snapshot.bid_sizes[i])
    for i in range(snapshot.n_ask_levels):
        book_set_level(prices[symbol], sizes[symbol], counts[symbol], SIDE_SELL, snapshot.ask_prices[i],
                       snapshot.ask_sizes[i])


__all__ = [
    "FILL_MODELS",
    "N_O",
    "N_P",
    "N_ST",
    "N_TOUCH",
    "P_ADVERSE_X100",
    "P_CANCEL_SHARE_PPM",
    "P_CLOCK_FALLBACK",
    "P_FILL_MODEL",
    "P_LATENCY_NS",
    "P_MAKER_FEE",
    "P_SEED",
    "P_TAKER_FEE",
    "P_TOUCH_PROB_PPM",
    "accept",
    "arrive_due",
    "cancel_held",
    "effective_best",
    "effective_size_at",
    "expire_due",
    "load_levels_from_snapshot",
    "on_event",
    "seed_random",
    "shutdown",
]
