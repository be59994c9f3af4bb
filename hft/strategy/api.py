"""The strategy API: everything a strategy's callbacks call. A strategy imports from here and nowhere else.

A strategy is a Python module (anywhere: ``[strategy] module = "path/to/my_strategy.py"`` or a dotted name) of
callbacks ``on_<event>(ctx, symbol)``. The pipeline compiles them with numba (write them as plain functions, or
``@njit`` them yourself), and calls them from its jitted loop, never from Python:

=================  ==========================================================================================
``on_start``       once per symbol the instance trades, before any market data (set timers, size orders)
``on_book``        a depth diff was applied to the symbol's book: ``ctx.book[symbol]`` (top 10 levels)
``on_bbo``         a bookTicker: ``ctx.bbo[symbol, Q_*]``, the venue's fastest view of the touch
``on_trade``       a print: ``ctx.last_trade[symbol, LT_*]``
``on_execution``   one of this instance's orders has a report: ``ctx.report[0]`` (acked, filled, partially
                   filled, cancelled, cancel-rejected, rejected, expired)
``on_timer``       a timer set with ``set_timer`` came due, on the venue clock
``on_model``       the Python model hook answered ``request_model``: ``ctx.model_out``
=================  ==========================================================================================

Define any of them; at least one of ``on_book``, ``on_bbo``, ``on_trade``, ``on_timer`` (otherwise the strategy
never acts). ``hft.strategy.context`` describes what ``ctx`` holds.

Actions (from any callback) return a positive id, or a negative status code whose name is
``DENIAL_NAMES[-code]``; every refusal is counted by reason (``ctx.denials``, and ``hft stats``). Each passes
pre-trade risk (``hft.risk.engine``): orders the position, size, notional, rate, stale-data, drawdown and
reject-storm rules and the kill switch; cancels the cancel-rate bucket::

    submit(ctx, symbol, side, order_type, price, size, tif, expire_ts) -> order id | code
    market(ctx, symbol, side, size), limit(...), post_only(...), ioc(...), fok(ctx, symbol, side, price, size)
    cancel(ctx, order_id) -> cancel id | code       cancel_all(ctx, symbol) -> cancel id | 0 (nothing open) | code
    replace(ctx, order_id, price, size) -> new order id | code    (a cancel, then a new order of the same kind)
    set_timer(ctx, symbol, interval_ns) -> 0 | code  request_model(ctx, symbol) -> 0 | code

Prices and sizes are fixed-point ``int64`` (``price * 10**price_decimals``), as in every record; ``to_price``,
``to_size``, ``price_of`` and ``size_of`` convert. Many orders per symbol may be open at once (up to
``MAX_OPEN_ORDERS`` per instance); the position limit is checked against the worst case: the position plus
every open order on the same side, those being cancelled included (a cancel can lose the race to a fill).

Parameters and state are declared at module level and indexed by name in jitted code::

    P = declare_params(spread_ticks=2, order_size=0.001, mode="quote")   # numbers: ctx.params[P.spread_ticks]
    S = declare_state(bid_id=0, ask_id=0, fair=0.0)  # ints: ctx.ints[symbol, S.bid_id]; floats: ctx.floats

The config's ``[strategy.params]`` table overrides the defaults and is checked against the declaration:
unknown keys and wrong types are errors before anything starts. Non-numeric parameters (``mode`` above) reach
the optional Python hook ``prepare(setup)`` only (``hft.strategy.loader.Setup``), which may build data for
the callbacks (``ctx.data_i``, ``ctx.data_f``) and install a model (``request_model``).

Nothing here allocates, logs or returns to Python: every function is ``@njit(cache=True)``.
"""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

from numba import njit

from hft.risk.engine import (
    N_RISK_REASONS,
    RISK_CANCEL_RATE,
    RISK_INVALID_ORDER,
    RISK_KILL_SWITCH,
    RISK_MAX_DRAWDOWN,
    RISK_MAX_NOTIONAL,
    RISK_MAX_ORDER_SIZE,
    RISK_MAX_POSITION,
    RISK_OK,
    RISK_ORDER_RATE,
    RISK_REJECT_STORM,
    RISK_STALE_DATA,
    risk_check,
    risk_check_cancel,
    risk_on_cancel_sent,
    risk_on_order_sent,
)
from hft.runtime import claim_waiting
from hft.strategy.context import (
    ACC_ENTRY_NOTIONAL,
    ACC_FEES,
    ACC_POSITION,
    ACC_REALIZED,
    CTL_ABORT_INDEX,
    CTL_EVENT_MD_CURSOR,
    CTL_EVENT_TS_RECV,
    CTL_HALTED,
    CTL_KILL_INDEX,
    CTL_MODEL_SYMBOL,
    CTL_NO_WAIT,
    CTL_ORDERS_HIGH,
    CTL_TIMERS_SET,
    CTL_WAIT,
    G_LOT,
    G_PRICE_DECIMALS,
    G_SIZE_DECIMALS,
    G_TICK,
    H_TICK_TO_ORDER,
    LT_PRICE,
    LT_SIDE,
    LT_SIZE,
    LT_TS_EXCH,
    MAX_OPEN_ORDERS,
    OO_CANCEL_ID,
    OO_EXPIRE_TS,
    OO_FILLED,
    OO_ID,
    OO_LEAVES,
    OO_PRICE,
    OO_SENT_TS,
    OO_SIDE,
    OO_SIZE,
    OO_STATE,
    OO_SYMBOL,
    OO_TIF,
    OO_TYPE,
    ORDER_OPEN,
    ORDER_PARTIAL,
    ORDER_SENT,
    Q_ASK,
    Q_ASK_SIZE,
    Q_BID,
    Q_BID_SIZE,
    Q_TS_EXCH,
    Q_UPDATE_ID,
    TM_DUE,
    TM_INTERVAL,
)
from hft.strategy.kernels import (
    F_ASK_PRESSURE,
    F_BID_PRESSURE,
    F_DEPTH_RATIO,
    F_IMBALANCE,
    F_MOMENTUM,
    F_PRICE_ACCELERATION,
    F_SPREAD_BPS,
    F_TOXICITY,
    F_TRADE_FLOW,
    F_VOLATILITY,
    F_VOLUME_SURGE,
    F_VWAP,
    F_VWAP_DEV_BPS,
    F_WEIGHTED_IMBALANCE,
    FEATURE_NAMES,
)
from shm_layout.atomics import load_relaxed, monotonic_ns
from shm_layout.counters import (
    C_ACTION_ERRORS,
    C_CANCEL_REQUESTS,
    C_MSGS_OUT,
    C_ORDERS,
    C_RISK_REJECTS,
    C_SIGNALS,
    counter_add,
    hist_record,
)
from shm_layout.records import (
    BOOK_SYNCED,
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    ORDER_FOK,
    ORDER_IOC,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_POST_ONLY_WOULD_CROSS,
    REASON_TOO_LATE_TO_CANCEL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
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
from shm_layout.ring import ring_claim, ring_commit

# ------------------------------------------------------------------------------------------------ names

BUY = SIDE_BUY
SELL = SIDE_SELL
MARKET = ORDER_MARKET  # walks the book, never rests
LIMIT = ORDER_LIMIT  # takes what crosses, rests the rest (GTC / GTD)
POST_ONLY = ORDER_POST_ONLY  # rests only: rejected (POST_ONLY_WOULD_CROSS) if it would take
IOC = ORDER_IOC  # a limit order: takes what it can now, cancels the rest
FOK = ORDER_FOK  # a limit order: fills in full now, or is rejected
GTC = TIF_GTC
GTD = TIF_GTD  # good till expire_ts (venue clock)
# report statuses (ctx.report[0].status)
ACKED = STATUS_NEW  # accepted and resting
FILLED = STATUS_FILLED
PARTIALLY_FILLED = STATUS_PARTIALLY_FILLED
CANCELLED = STATUS_CANCELLED
REJECTED = STATUS_REJECTED
EXPIRED = STATUS_EXPIRED
CANCEL_REJECTED = STATUS_CANCEL_REJECTED  # a cancel found nothing open: report.target_order_id had ended
SYNCED = BOOK_SYNCED

# action results: a positive id, or one of these (DENIAL_NAMES[-code] names it)
OK = 0
DENIED_KILL_SWITCH = -RISK_KILL_SWITCH
DENIED_MAX_POSITION = -RISK_MAX_POSITION
DENIED_MAX_ORDER_SIZE = -RISK_MAX_ORDER_SIZE
DENIED_MAX_NOTIONAL = -RISK_MAX_NOTIONAL
DENIED_ORDER_RATE = -RISK_ORDER_RATE
DENIED_STALE_DATA = -RISK_STALE_DATA
DENIED_MAX_DRAWDOWN = -RISK_MAX_DRAWDOWN
DENIED_REJECT_STORM = -RISK_REJECT_STORM
DENIED_INVALID_ORDER = -RISK_INVALID_ORDER  # bad side, type, time in force, size off the lot, price off the tick
DENIED_CANCEL_RATE = -RISK_CANCEL_RATE
E_UNKNOWN_ORDER = -11  # cancel/replace of an id that is not open (it ended, or never was this instance's)
E_CANCEL_PENDING = -12  # a cancel for that order is already on its way
E_TOO_MANY_ORDERS = -13  # MAX_OPEN_ORDERS open already
E_NOT_MY_SYMBOL = -14  # the instance does not trade that symbol (or no such symbol)
E_NO_MARKET = -15  # a market order with no touch to price it
E_RING_FULL = -16  # the order ring is full and this run does not wait (backtest), or a forced shutdown
E_HALTED = -17  # the instance was halted after a callback raised
E_BAD_ARGUMENT = -18  # a timer interval < 0, a model request with no model
DENIAL_NAMES = (
    "ok", "kill_switch", "max_position", "max_order_size", "max_notional", "order_rate", "stale_data",
    "max_drawdown", "reject_storm", "invalid_order", "cancel_rate", "unknown_order", "cancel_pending",
    "too_many_orders", "not_my_symbol", "no_market", "ring_full", "halted", "bad_argument",
)
assert N_RISK_REASONS == -DENIED_CANCEL_RATE + 1 and len(DENIAL_NAMES) == -E_BAD_ARGUMENT + 1

__all__ = [  # what a strategy imports: names, columns of the context's arrays, helpers and actions
    "ACC_ENTRY_NOTIONAL",
    "ACC_FEES",
    "ACC_POSITION",
    "ACC_REALIZED",
    "ACKED",
    "BUY",
    "CANCELLED",
    "CANCEL_REJECTED",
    "DENIAL_NAMES",
    "EXPIRED",
    "FEATURE_NAMES",
    "FILLED",
    "FOK",
    "F_ASK_PRESSURE",
    "F_BID_PRESSURE",
    "F_DEPTH_RATIO",
    "F_IMBALANCE",
    "F_MOMENTUM",
    "F_PRICE_ACCELERATION",
    "F_SPREAD_BPS",
    "F_TOXICITY",
    "F_TRADE_FLOW",
    "F_VOLATILITY",
    "F_VOLUME_SURGE",
    "F_VWAP",
    "F_VWAP_DEV_BPS",
    "F_WEIGHTED_IMBALANCE",
    "GTC",
    "GTD",
    "IOC",
    "LIMIT",
    "LT_PRICE",
    "LT_SIDE",
    "LT_SIZE",
    "LT_TS_EXCH",
    "MARKET",
    "OK",
    "OO_CANCEL_ID",
    "OO_FILLED",
    "OO_ID",
    "OO_LEAVES",
    "OO_PRICE",
    "OO_SIDE",
    "OO_SIZE",
    "OO_STATE",
    "OO_SYMBOL",
    "PARTIALLY_FILLED",
    "POST_ONLY",
    "Q_ASK",
    "Q_ASK_SIZE",
    "Q_BID",
    "Q_BID_SIZE",
    "Q_TS_EXCH",
    "Q_UPDATE_ID",
    "REJECTED",
    "SELL",
    "SYNCED",
    "best_ask",
    "best_ask_size",
    "best_bid",
    "best_bid_size",
    "book_ok",
    "cancel",
    "cancel_all",
    "declare_params",
    "declare_state",
    "entry_notional",
    "fees_paid",
    "fok",
    "ioc",
    "kill_switch_on",
    "limit",
    "lot",
    "market",
    "mid_x2",
    "open_count",
    "open_leaves",
    "order_row",
    "position",
    "post_only",
    "price_of",
    "realized_pnl",
    "replace",
    "request_model",
    "set_timer",
    "size_of",
    "submit",
    "tick",
    "to_price",
    "to_size",
]
_FEATURES = (F_VOLATILITY, F_MOMENTUM, F_IMBALANCE, F_WEIGHTED_IMBALANCE, F_SPREAD_BPS, F_DEPTH_RATIO,
             F_BID_PRESSURE, F_ASK_PRESSURE, F_VWAP, F_VWAP_DEV_BPS, F_TRADE_FLOW, F_TOXICITY,
             F_PRICE_ACCELERATION, F_VOLUME_SURGE)
assert tuple(range(len(FEATURE_NAMES))) == _FEATURES  # ctx.features[symbol, F_*]: the kernels' own indices


# ------------------------------------------------------------------------------------------------ declarations


def declare_params(**defaults: Any) -> tuple:
    """Declare the strategy's parameters and their defaults; return their indices by name.

    Numbers (``int``, ``float``, ``bool``) live in ``ctx.params`` (float64) at the returned index, in
    declaration order; other values (``str``, lists of ``str``) reach only the Python ``prepare`` hook and
    index -1. The config's ``[strategy.params]`` may override each, with a value of the same kind."""
    for name, value in defaults.items():
        if not isinstance(value, bool | int | float | str | list):
            raise TypeError(f"declare_params: {name}={value!r}: a parameter is a number, a string or a list")
    cls = namedtuple("Params", list(defaults))  # a global namedtuple of ints: numba folds P.name to a constant
    indices, k = [], 0
    for value in defaults.values():
        if isinstance(value, bool | int | float):
            indices.append(k)
            k += 1
        else:
            indices.append(-1)
    spec = cls(*indices)
    cls.hft_declaration = ("params", dict(defaults))
    return spec


def declare_state(**defaults: int | float) -> tuple:
    """Declare per-symbol state: ``int`` defaults index ``ctx.ints[symbol, k]``, ``float`` ones
    ``ctx.floats[symbol, k]`` (each array counted from 0, in declaration order). The engine fills both with the
    defaults before ``on_start``; they persist across callbacks (not across a restart of the process)."""
    for name, value in defaults.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"declare_state: {name}={value!r}: state is an int or a float")
    cls = namedtuple("State", list(defaults))
    n_int = n_float = 0
    indices = []
    for value in defaults.values():
        if isinstance(value, int):
            indices.append(n_int)
            n_int += 1
        else:
            indices.append(n_float)
            n_float += 1
    spec = cls(*indices)
    cls.hft_declaration = ("state", dict(defaults))
    return spec


def jit(function):
    """Compile a helper function your callbacks call (callbacks themselves need nothing: the loader compiles
    them). ``@njit(cache=True, boundscheck=True)``: like the callbacks, a helper's bad index raises (and halts
    the instance) instead of reading or writing past an array; use numba's ``njit`` directly to opt out."""
    return njit(cache=True, boundscheck=True)(function)


def declaration_of(value: object) -> tuple[str, dict[str, Any]] | None:
    """``("params" | "state", defaults)`` if ``value`` came from ``declare_params``/``declare_state``."""
    return getattr(type(value), "hft_declaration", None)


# ------------------------------------------------------------------------------------------------ market view


@njit(cache=True)
def _ticker_is_newer(ctx, symbol: int) -> bool:
    """The rule the broker applies too: a bookTicker is a newer view of the top level only, superseded by the
    depth diff that covers its update id."""
    return ctx.bbo[symbol, Q_UPDATE_ID] > ctx.book[symbol].update_id and ctx.bbo[symbol, Q_BID] > 0


@njit(cache=True)
def best_bid(ctx, symbol: int) -> int:
    """The best bid price (fixed point) from the newer of the book and the bookTicker; 0 if none."""
    if _ticker_is_newer(ctx, symbol):
        return ctx.bbo[symbol, Q_BID]
    return ctx.book[symbol].bid_price


@njit(cache=True)
def best_ask(ctx, symbol: int) -> int:
    """The best ask price from the newer of the book and the bookTicker; 0 if none."""
    if _ticker_is_newer(ctx, symbol):
        return ctx.bbo[symbol, Q_ASK]
    return ctx.book[symbol].ask_price


@njit(cache=True)
def best_bid_size(ctx, symbol: int) -> int:
    """The size at the best bid (same source as ``best_bid``)."""
    if _ticker_is_newer(ctx, symbol):
        return ctx.bbo[symbol, Q_BID_SIZE]
    return ctx.book[symbol].bid_size


@njit(cache=True)
def best_ask_size(ctx, symbol: int) -> int:
    """The size at the best ask (same source as ``best_ask``)."""
    if _ticker_is_newer(ctx, symbol):
        return ctx.bbo[symbol, Q_ASK_SIZE]
    return ctx.book[symbol].ask_size


@njit(cache=True)
def mid_x2(ctx, symbol: int) -> int:
    """bid + ask (twice the mid, exact in fixed point); 0 without both sides."""
    bid = best_bid(ctx, symbol)
    ask = best_ask(ctx, symbol)
    return bid + ask if bid > 0 and ask > 0 else 0


@njit(cache=True)
def book_ok(ctx, symbol: int) -> bool:
    """The symbol's book is synced and two-sided, uncrossed: safe to price from."""
    book = ctx.book[symbol]
    return book.status == BOOK_SYNCED and 0 < book.bid_price < book.ask_price


@njit(cache=True)
def tick(ctx, symbol: int) -> int:
    """Price units per tick."""
    return ctx.grid[symbol, G_TICK]


@njit(cache=True)
def lot(ctx, symbol: int) -> int:
    """Size units per lot."""
    return ctx.grid[symbol, G_LOT]


@njit(cache=True)
def to_price(ctx, symbol: int, value: float) -> int:
    """A price in quote currency -> fixed point, rounded to the nearest tick."""
    step = ctx.grid[symbol, G_TICK]
    units = value * 10.0 ** ctx.grid[symbol, G_PRICE_DECIMALS]
    return math.floor(units / step + 0.5) * step


@njit(cache=True)
def to_size(ctx, symbol: int, value: float) -> int:
    """A size in base units -> fixed point, rounded down to the lot (never more than asked)."""
    step = ctx.grid[symbol, G_LOT]
    units = value * 10.0 ** ctx.grid[symbol, G_SIZE_DECIMALS]
    return math.floor(units / step + 1e-9) * step


@njit(cache=True)
def price_of(ctx, symbol: int, price: int) -> float:
    """Fixed-point price -> quote currency."""
    return price / 10.0 ** ctx.grid[symbol, G_PRICE_DECIMALS]


@njit(cache=True)
def size_of(ctx, symbol: int, size: int) -> float:
    """Fixed-point size -> base units."""
    return size / 10.0 ** ctx.grid[symbol, G_SIZE_DECIMALS]


# ------------------------------------------------------------------------------------------------ account


@njit(cache=True)
def position(ctx, symbol: int) -> int:
    """The signed position (size units) as of the last execution report."""
    return ctx.account[symbol, ACC_POSITION]


@njit(cache=True)
def realized_pnl(ctx, symbol: int) -> float:
    """Realized PnL after fees, quote currency."""
    decimals = ctx.grid[symbol, G_PRICE_DECIMALS] + ctx.grid[symbol, G_SIZE_DECIMALS]
    return ctx.account[symbol, ACC_REALIZED] / 10.0 ** decimals


@njit(cache=True)
def fees_paid(ctx, symbol: int) -> float:
    """Fees paid (negative: rebates earned), quote currency."""
    decimals = ctx.grid[symbol, G_PRICE_DECIMALS] + ctx.grid[symbol, G_SIZE_DECIMALS]
    return ctx.account[symbol, ACC_FEES] / 10.0 ** decimals


@njit(cache=True)
def entry_notional(ctx, symbol: int) -> int:
    """|position| * average entry price, money units."""
    return ctx.account[symbol, ACC_ENTRY_NOTIONAL]


@njit(cache=True)
def order_row(ctx, order_id: int) -> int:
    """The row of ``ctx.orders`` holding ``order_id``, or -1 if it is not open."""
    if order_id <= 0:
        return -1
    for row in range(ctx.ctl[CTL_ORDERS_HIGH]):
        if ctx.orders[row, OO_ID] == order_id:
            return row
    return -1


@njit(cache=True)
def open_count(ctx, symbol: int, side: int) -> int:
    """Open orders of the symbol on ``side`` (0: both sides), cancels pending included."""
    count = 0
    for row in range(ctx.ctl[CTL_ORDERS_HIGH]):
        if ctx.orders[row, OO_ID] != 0 and ctx.orders[row, OO_SYMBOL] == symbol and (
                side == 0 or ctx.orders[row, OO_SIDE] == side):
            count += 1
    return count


@njit(cache=True)
def open_leaves(ctx, symbol: int, side: int) -> int:
    """Size still open on ``side`` of the symbol, orders being cancelled included: a cancel can lose the race
    to a fill, so this is the worst case the position limit is checked against."""
    total = 0
    for row in range(ctx.ctl[CTL_ORDERS_HIGH]):
        if ctx.orders[row, OO_ID] != 0 and ctx.orders[row, OO_SYMBOL] == symbol and ctx.orders[row, OO_SIDE] == side:
            total += ctx.orders[row, OO_LEAVES]
    return total


@njit(cache=True)
def kill_switch_on(ctx) -> bool:
    """The operator's kill switch (``hft kill``): risk then passes only orders that reduce a position."""
    return load_relaxed(ctx.control_words, ctx.ctl[CTL_KILL_INDEX]) != 0


# ------------------------------------------------------------------------------------------------ actions


@njit(cache=True)
def _deny(ctx, code: int) -> int:
    """Count a refused action by reason (this instance's ``denials``, the process counters) and return it."""
    ctx.denials[-code] += 1
    if -code < N_RISK_REASONS:
        counter_add(ctx.proc, C_RISK_REJECTS, 1)
        counter_add(ctx.proc, ctx.risk_counters[-code], 1)
    else:
        counter_add(ctx.proc, C_ACTION_ERRORS, 1)
    return code


@njit(cache=True)
def _claim(ctx) -> int:
    """Claim one slot of the order ring: wait while it is full (pipeline) or give up at once (backtest)."""
    if ctx.ctl[CTL_NO_WAIT] != 0:
        return ring_claim(ctx.order_ctrl, 1)
    return claim_waiting(ctx.order_ctrl, 1, ctx.control_words, ctx.ctl[CTL_ABORT_INDEX], ctx.proc, ctx.ctl[CTL_WAIT])


@njit(cache=True)
def _publish(ctx, seq: int, command: int, symbol: int, side: int, order_type: int, tif: int, price: int,
             size: int, expire_ts: int, target: int) -> int:
    """Fill the claimed slot ``seq`` and publish it; return the command's id (the ring sequence + 1: unique in
    the run, across strategy restarts too)."""
    slot = ctx.order_slots[seq & (ctx.order_slots.shape[0] - 1)]
    order_id = seq + 1
    ts_tick_recv = ctx.ctl[CTL_EVENT_TS_RECV]
    slot.order_id = order_id
    slot.ts_tick_recv = ts_tick_recv
    slot.ts_exch = ctx.now  # the decision's venue time: the order arrives entry latency later (broker)
    slot.price = price
    slot.size = size
    slot.md_cursor = ctx.ctl[CTL_EVENT_MD_CURSOR]  # the market state it was decided on
    slot.expire_ts = expire_ts
    slot.target_order_id = target
    slot.symbol_id = symbol
    slot.strategy_id = ctx.strategy_id
    slot.side = side
    slot.order_type = order_type
    slot.tif = tif
    slot.command = command
    ts_init = monotonic_ns()
    slot.ts_init = ts_init
    ring_commit(ctx.order_ctrl, seq + 1)
    counter_add(ctx.proc, C_MSGS_OUT, 1)
    if command == CMD_NEW:
        counter_add(ctx.proc, C_ORDERS, 1)
        if ts_tick_recv > 0:
            hist_record(ctx.proc, H_TICK_TO_ORDER, ts_init - ts_tick_recv)
    else:
        counter_add(ctx.proc, C_CANCEL_REQUESTS, 1)
    return order_id


@njit(cache=True)
def _free_row(ctx) -> int:
    for row in range(ctx.orders.shape[0]):
        if ctx.orders[row, OO_ID] == 0:
            return row
    return -1


@njit(cache=True)
def _valid_order(ctx, symbol: int, side: int, order_type: int, price: int, size: int, tif: int,
                 expire_ts: int) -> bool:
    if side != SIDE_BUY and side != SIDE_SELL:
        return False
    if order_type < ORDER_MARKET or order_type > ORDER_FOK or tif < TIF_GTC or tif > TIF_GTD:
        return False
    step = ctx.grid[symbol, G_LOT]
    if size <= 0 or (step > 0 and size % step != 0):
        return False
    if order_type != ORDER_MARKET:
        step = ctx.grid[symbol, G_TICK]
        if price <= 0 or (step > 0 and price % step != 0):
            return False
    if order_type == ORDER_POST_ONLY and tif != TIF_GTC and tif != TIF_GTD:
        return False  # a post-only order exists to rest
    resting_tif = order_type in (ORDER_LIMIT, ORDER_POST_ONLY)
    return not (resting_tif and tif == TIF_GTD and expire_ts <= ctx.now)


@njit(cache=True)
def submit(ctx, symbol: int, side: int, order_type: int, price: int, size: int, tif: int, expire_ts: int) -> int:
    """Send a new order; return its id, or a negative code (``DENIAL_NAMES[-code]``).

    ``price`` is the limit (fixed point; ignored for MARKET, which is priced at the far touch for risk and the
    record); ``tif`` GTC, GTD (then ``expire_ts``, venue ns), IOC or FOK (IOC/FOK order types imply theirs)."""
    if symbol < 0 or symbol >= ctx.mine.shape[0] or ctx.mine[symbol] == 0:
        return _deny(ctx, E_NOT_MY_SYMBOL)
    if ctx.ctl[CTL_HALTED] != 0:
        return _deny(ctx, E_HALTED)
    if not _valid_order(ctx, symbol, side, order_type, price, size, tif, expire_ts):
        return _deny(ctx, DENIED_INVALID_ORDER)
    if order_type == ORDER_MARKET:
        price = best_ask(ctx, symbol) if side == SIDE_BUY else best_bid(ctx, symbol)
        if price <= 0:
            return _deny(ctx, E_NO_MARKET)
    row = _free_row(ctx)
    if row < 0:
        return _deny(ctx, E_TOO_MANY_ORDERS)
    worst = ctx.account[symbol, ACC_POSITION] + side * open_leaves(ctx, symbol, side)
    kill = load_relaxed(ctx.control_words, ctx.ctl[CTL_KILL_INDEX])
    reason = risk_check(ctx.risk_limits, ctx.risk_state, ctx.risk_fstate, symbol, side, size, price, ctx.now, kill,
                        worst)
    if reason != RISK_OK:
        return _deny(ctx, -reason)
    seq = _claim(ctx)
    if seq < 0:
        return _deny(ctx, E_RING_FULL)
    if (order_type == ORDER_MARKET and tif != TIF_FOK) or order_type == ORDER_IOC:
        tif = TIF_IOC
    elif order_type == ORDER_FOK:
        tif = TIF_FOK
    if tif != TIF_GTD:
        expire_ts = 0
    order_id = _publish(ctx, seq, CMD_NEW, symbol, side, order_type, tif, price, size, expire_ts, 0)
    risk_on_order_sent(ctx.risk_limits, ctx.risk_state, ctx.now)
    orders = ctx.orders
    orders[row, OO_ID] = order_id
    orders[row, OO_SYMBOL] = symbol
    orders[row, OO_SIDE] = side
    orders[row, OO_TYPE] = order_type
    orders[row, OO_TIF] = tif
    orders[row, OO_PRICE] = price
    orders[row, OO_SIZE] = size
    orders[row, OO_LEAVES] = size
    orders[row, OO_FILLED] = 0
    orders[row, OO_STATE] = ORDER_SENT
    orders[row, OO_CANCEL_ID] = 0
    orders[row, OO_SENT_TS] = ctx.now
    orders[row, OO_EXPIRE_TS] = expire_ts
    if row + 1 > ctx.ctl[CTL_ORDERS_HIGH]:
        ctx.ctl[CTL_ORDERS_HIGH] = row + 1
    return order_id


@njit(cache=True)
def market(ctx, symbol: int, side: int, size: int) -> int:
    """A market order: walks the book now, the rest is cancelled."""
    return submit(ctx, symbol, side, ORDER_MARKET, 0, size, TIF_IOC, 0)


@njit(cache=True)
def limit(ctx, symbol: int, side: int, price: int, size: int) -> int:
    """A GTC limit order: takes what crosses, rests the rest."""
    return submit(ctx, symbol, side, ORDER_LIMIT, price, size, TIF_GTC, 0)


@njit(cache=True)
def post_only(ctx, symbol: int, side: int, price: int, size: int) -> int:
    """A GTC post-only order: rests at ``price`` or is rejected (POST_ONLY_WOULD_CROSS) if it would take."""
    return submit(ctx, symbol, side, ORDER_POST_ONLY, price, size, TIF_GTC, 0)


@njit(cache=True)
def ioc(ctx, symbol: int, side: int, price: int, size: int) -> int:
    """Immediate or cancel at ``price`` or better."""
    return submit(ctx, symbol, side, ORDER_IOC, price, size, TIF_IOC, 0)


@njit(cache=True)
def fok(ctx, symbol: int, side: int, price: int, size: int) -> int:
    """Fill or kill at ``price`` or better."""
    return submit(ctx, symbol, side, ORDER_FOK, price, size, TIF_FOK, 0)


@njit(cache=True)
def cancel(ctx, order_id: int) -> int:
    """Ask the venue to cancel an open order; return the cancel's id, or a negative code.

    The order stays in ``ctx.orders`` (``OO_CANCEL_ID`` set) until its report: CANCELLED, or a fill that won the
    race, followed by a CANCEL_REJECTED report of the cancel (``reason`` TOO_LATE_TO_CANCEL)."""
    row = order_row(ctx, order_id)
    if row < 0:
        return _deny(ctx, E_UNKNOWN_ORDER)
    if ctx.orders[row, OO_CANCEL_ID] != 0:
        return _deny(ctx, E_CANCEL_PENDING)
    reason = risk_check_cancel(ctx.risk_limits, ctx.risk_state, ctx.now)
    if reason != RISK_OK:
        return _deny(ctx, -reason)
    seq = _claim(ctx)
    if seq < 0:
        return _deny(ctx, E_RING_FULL)
    cancel_id = _publish(ctx, seq, CMD_CANCEL, ctx.orders[row, OO_SYMBOL], ctx.orders[row, OO_SIDE],
                         ctx.orders[row, OO_TYPE], ctx.orders[row, OO_TIF], 0, 0, 0, order_id)
    risk_on_cancel_sent(ctx.risk_limits, ctx.risk_state, ctx.now)
    ctx.orders[row, OO_CANCEL_ID] = cancel_id
    return cancel_id


@njit(cache=True)
def cancel_all(ctx, symbol: int) -> int:
    """Cancel every open order of this instance in ``symbol`` with one command; return its id, 0 if nothing was
    open (nothing is sent), or a negative code."""
    if symbol < 0 or symbol >= ctx.mine.shape[0] or ctx.mine[symbol] == 0:
        return _deny(ctx, E_NOT_MY_SYMBOL)
    pending = 0
    for row in range(ctx.ctl[CTL_ORDERS_HIGH]):
        if ctx.orders[row, OO_ID] != 0 and ctx.orders[row, OO_SYMBOL] == symbol and ctx.orders[row, OO_CANCEL_ID] == 0:
            pending += 1
    if pending == 0:
        return OK
    reason = risk_check_cancel(ctx.risk_limits, ctx.risk_state, ctx.now)
    if reason != RISK_OK:
        return _deny(ctx, -reason)
    seq = _claim(ctx)
    if seq < 0:
        return _deny(ctx, E_RING_FULL)
    cancel_id = _publish(ctx, seq, CMD_CANCEL_ALL, symbol, 0, 0, 0, 0, 0, 0, 0)
    risk_on_cancel_sent(ctx.risk_limits, ctx.risk_state, ctx.now)
    for row in range(ctx.ctl[CTL_ORDERS_HIGH]):
        if ctx.orders[row, OO_ID] != 0 and ctx.orders[row, OO_SYMBOL] == symbol and ctx.orders[row, OO_CANCEL_ID] == 0:
            ctx.orders[row, OO_CANCEL_ID] = cancel_id
    return cancel_id


@njit(cache=True)
def cancel_everything(ctx) -> int:
    """Cancel every open order of this instance, past the cancel-rate bucket (the engine's way out when it
    halts an instance: an operator's action, not the strategy's). Return how many commands were sent."""
    sent = 0
    for symbol in range(ctx.mine.shape[0]):
        if ctx.mine[symbol] == 0 or open_count(ctx, symbol, 0) == 0:
            continue
        seq = _claim(ctx)
        if seq < 0:
            return sent
        cancel_id = _publish(ctx, seq, CMD_CANCEL_ALL, symbol, 0, 0, 0, 0, 0, 0, 0)
        for row in range(ctx.ctl[CTL_ORDERS_HIGH]):
            if ctx.orders[row, OO_ID] != 0 and ctx.orders[row, OO_SYMBOL] == symbol:
                ctx.orders[row, OO_CANCEL_ID] = cancel_id
        sent += 1
    return sent


@njit(cache=True)
def count_signal(ctx) -> None:
    """Count a trading signal in the process's ``signals`` counter (``hft stats``): for strategies that have
    signals, like the built-ins."""
    counter_add(ctx.proc, C_SIGNALS, 1)


@njit(cache=True)
def replace(ctx, order_id: int, price: int, size: int) -> int:
    """Cancel ``order_id`` and send a new order of the same symbol, side, type and time in force at ``price`` /
    ``size``; return the new id, or a negative code (of the cancel: nothing was sent; of the new order: the
    cancel went). Until the cancel is confirmed both count toward the position limit's worst case."""
    row = order_row(ctx, order_id)
    if row < 0:
        return _deny(ctx, E_UNKNOWN_ORDER)
    symbol = ctx.orders[row, OO_SYMBOL]
    side = ctx.orders[row, OO_SIDE]
    order_type = ctx.orders[row, OO_TYPE]
    tif = ctx.orders[row, OO_TIF]
    expire_ts = ctx.orders[row, OO_EXPIRE_TS]
    cancelled = cancel(ctx, order_id)
    if cancelled < 0:
        return cancelled
    return submit(ctx, symbol, side, order_type, price, size, tif, expire_ts)


@njit(cache=True)
def set_timer(ctx, symbol: int, interval_ns: int) -> int:
    """Call ``on_timer(ctx, symbol)`` every ``interval_ns`` of venue time from now (0: stop the timer)."""
    if symbol < 0 or symbol >= ctx.mine.shape[0] or ctx.mine[symbol] == 0:
        return _deny(ctx, E_NOT_MY_SYMBOL)
    if interval_ns < 0:
        return _deny(ctx, E_BAD_ARGUMENT)
    ctx.timers[symbol, TM_INTERVAL] = interval_ns
    ctx.timers[symbol, TM_DUE] = ctx.now + interval_ns if interval_ns > 0 else 0
    ctx.ctl[CTL_TIMERS_SET] = 1
    return OK


@njit(cache=True)
def request_model(ctx, symbol: int) -> int:
    """Ask the Python model hook (installed by ``prepare``) to run on ``ctx.model_in``: the loop hands over to
    Python when this callback returns, and ``on_model(ctx, symbol)`` gets ``ctx.model_out``. One request at a
    time: a second one before the answer replaces the first's symbol."""
    if symbol < 0 or symbol >= ctx.mine.shape[0] or ctx.mine[symbol] == 0:
        return _deny(ctx, E_NOT_MY_SYMBOL)
    ctx.ctl[CTL_MODEL_SYMBOL] = symbol
    return OK


# statuses an open-orders row passes through (ctx.orders[row, OO_STATE]), re-exported for strategies
SENT = ORDER_SENT
OPEN = ORDER_OPEN
PARTIAL = ORDER_PARTIAL
TOO_LATE_TO_CANCEL = REASON_TOO_LATE_TO_CANCEL
POST_ONLY_WOULD_CROSS = REASON_POST_ONLY_WOULD_CROSS
ORDER_COLUMNS = {"id": OO_ID, "symbol": OO_SYMBOL, "side": OO_SIDE, "price": OO_PRICE, "size": OO_SIZE,
                 "leaves": OO_LEAVES, "filled": OO_FILLED, "state": OO_STATE, "cancel_id": OO_CANCEL_ID}
MAX_ORDERS = MAX_OPEN_ORDERS
