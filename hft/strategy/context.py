"""The strategy context: the one typed bundle a user's callbacks receive, and the engine's own state.

A strategy is a set of numba callbacks ``callback(ctx, symbol)`` (``hft.strategy.api``). ``ctx`` is a structref
(``hft.bundle``): one pointer, whatever it holds. Every strategy instance has its own context; the market view
and the account are the same arrays in every context (one writer: the engine), the instance's parameters,
state, open orders and timers are its own.

What a callback reads (fixed-point ``int64`` prices and sizes, as on the wire; ``hft.strategy.api`` has helpers
to floats and back):

* ``ctx.now``: the venue time (ns) of the event being handled; ``ctx.strategy_id``: this instance (1-based).
* ``ctx.book[symbol]``: the feed's last ``BOOK_SNAPSHOT`` of the symbol (top 10 levels each side, best first,
  ``update_id``, ``ts_exch``), copied at every depth diff applied.
* ``ctx.bbo[symbol, Q_*]``: the last bookTicker (bid, bid size, ask, ask size, its update id, venue time,
  receive time). ``api.best_bid``/``best_ask`` pick whichever of the book's touch and the ticker is newer.
* ``ctx.last_trade[symbol, LT_*]``: the last print (price, size, aggressor side, venue time, trade id).
* ``ctx.features[symbol, F_*]``: the 14 microstructure features of ``hft.strategy.kernels``.
* ``ctx.account[symbol, ACC_*]``: position, entry notional, realized PnL and fees, from the broker's reports.
* ``ctx.orders[row, OO_*]``: this instance's open orders (a row is free when ``OO_ID == 0``).
* ``ctx.report[0]``: in ``on_execution``, the execution report being handled.
* ``ctx.params[k]``: this instance's numeric parameters; ``ctx.ints[symbol, k]``, ``ctx.floats[symbol, k]``:
  its own persistent state (``api.declare_params`` / ``api.declare_state`` name the indices); ``ctx.data_i``,
  ``ctx.data_f``: read-only data its Python ``prepare`` hook built (compiled rules, tables).
* ``ctx.model_in`` / ``ctx.model_out``: buffers of the optional Python model hook (``api.request_model``).

Everything else in the bundle is the engine's (the order ring, risk state, counters) and reached through
``hft.strategy.api``, never directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.experimental import structref

from hft.bundle import check_fields, field_names
from shm_layout.records import book_snapshot_t, exec_report_t, order_t

MAX_INSTANCES = 8  # strategy instances in one process (callback tables are sized for this many)
MAX_OPEN_ORDERS = 256  # open orders one instance can track at once

# --- callbacks, in the order of the engine's callback table ---
CB_START = 0  # once per traded symbol, before any market data
CB_BOOK = 1  # a depth diff (or snapshot) was applied to the symbol's book
CB_BBO = 2  # a bookTicker: new best bid/ask
CB_TRADE = 3  # a print
CB_EXECUTION = 4  # an execution report of one of this instance's orders (ack, fill, cancel, reject, expiry)
CB_TIMER = 5  # a timer the strategy set came due (venue clock)
CB_MODEL = 6  # the Python model hook answered a request_model
N_CALLBACKS = 7
CALLBACK_NAMES = ("on_start", "on_book", "on_bbo", "on_trade", "on_execution", "on_timer", "on_model")

# --- ctx.bbo[symbol, Q_*]: the last bookTicker ---
Q_BID = 0
Q_BID_SIZE = 1
Q_ASK = 2
Q_ASK_SIZE = 3
Q_UPDATE_ID = 4  # the ticker's u: newer than the book when > book.update_id
Q_TS_EXCH = 5  # its venue time (estimated by the feed: spot tickers carry none)
Q_TS_RECV = 6
N_Q = 8

# --- ctx.last_trade[symbol, LT_*] ---
LT_PRICE = 0
LT_SIZE = 1
LT_SIDE = 2  # the aggressor: SIDE_BUY (+1) or SIDE_SELL (-1)
LT_TS_EXCH = 3
LT_TRADE_ID = 4
N_LT = 8

# --- ctx.grid[symbol, G_*]: the symbol's fixed-point scales ---
G_TICK = 0  # price units per tick
G_LOT = 1  # size units per lot
G_PRICE_DECIMALS = 2
G_SIZE_DECIMALS = 3
N_G = 4

# --- ctx.account[symbol, ACC_*]: the broker's truth, from the newest report of the symbol ---
ACC_POSITION = 0  # size units, signed
ACC_ENTRY_NOTIONAL = 1  # |position| * average entry price, money units (price units * size units)
ACC_REALIZED = 2  # cumulative realized PnL after fees, money units
ACC_FEES = 3  # cumulative fees, money units (negative: rebates)
ACC_MARK_X2 = 4  # bid + ask of the broker's book at the last report
N_ACC = 8

# --- ctx.orders[row, OO_*]: one open order of this instance ---
OO_ID = 0  # 0: the row is free
OO_SYMBOL = 1
OO_SIDE = 2
OO_TYPE = 3
OO_TIF = 4
OO_PRICE = 5
OO_SIZE = 6
OO_LEAVES = 7  # still open
OO_FILLED = 8
OO_STATE = 9  # ORDER_SENT, ORDER_OPEN or ORDER_PARTIAL
OO_CANCEL_ID = 10  # the cancel command sent for it (0: none): a cancel is pending
OO_SENT_TS = 11  # venue time it was sent
OO_EXPIRE_TS = 12  # GTD expiry (venue ns), else 0
N_OO = 16
ORDER_SENT = 1  # on the ring, no report yet
ORDER_OPEN = 2  # acknowledged, resting
ORDER_PARTIAL = 3  # resting, partly filled

# --- ctx.timers[symbol, TM_*] ---
TM_INTERVAL = 0  # ns; 0: no timer
TM_DUE = 1  # venue time it fires next
N_TM = 2

# --- ctx.ctl[CTL_*]: the engine's words for this instance (Python reads them between loop slices) ---
CTL_HALTED = 0  # 1: a callback raised; no more callbacks, its orders were cancelled
CTL_MODEL_SYMBOL = 1  # request_model's symbol until the hook answered, else -1
CTL_ORDERS_HIGH = 2  # rows below this may be in use: scans stop here
CTL_EVENT_TS_RECV = 3  # ts_recv of the frame being handled: orders carry it (tick-to-trade)
CTL_EVENT_MD_CURSOR = 4  # md.events consumed when deciding: orders carry it (the broker's arrival point)
CTL_KILL_INDEX = 5  # control-region word of the kill switch
CTL_ABORT_INDEX = 6  # control-region word of a forced shutdown (stops waiting on a full order ring)
CTL_WAIT = 7  # the process's wait strategy while the order ring is full
CTL_NO_WAIT = 8  # 1: a full order ring denies the order (single-process backtest) instead of waiting
CTL_TIMERS_SET = 9  # 1: set_timer ran in this callback: the engine recomputes its next timer
N_CTL = 16

# --- ctx.denials[code]: this instance's actions refused, by reason (see hft.strategy.api) ---
N_DENIALS = 32

# --- the strategy process's histograms (PROCESS_BLOCK.histograms) ---
H_TICK_TO_ORDER = 0  # frame received by the feed -> order on the ring
H_MD_HOP = 1  # event published by the feed -> read by the strategy


@structref.register
class StrategyContextType(types.StructRef):
    """The numba type of a strategy context (fields: ``CONTEXT_FIELDS``)."""


class StrategyContextRef(structref.StructRefProxy):
    """The Python handle of a context: passed to jitted code, never read field by field from Python."""


CONTEXT_FIELDS = (
    ("now", types.int64),
    ("strategy_id", types.int64),
    # the market and the account: the same arrays in every instance's context
    ("book", types.Array(book_snapshot_t, 1, "C")),
    ("bbo", types.int64[:, ::1]),
    ("last_trade", types.int64[:, ::1]),
    ("features", types.float64[:, ::1]),
    ("grid", types.int64[:, ::1]),
    ("account", types.int64[:, ::1]),
    # this instance's own
    ("mine", types.int64[::1]),  # 1 for the symbols this instance trades
    ("params", types.float64[::1]),
    ("ints", types.int64[:, ::1]),
    ("floats", types.float64[:, ::1]),
    ("data_i", types.int64[::1]),
    ("data_f", types.float64[::1]),
    ("orders", types.int64[:, ::1]),
    ("timers", types.int64[:, ::1]),
    ("report", types.Array(exec_report_t, 1, "C")),
    ("model_in", types.float64[::1]),
    ("model_out", types.float64[::1]),
    ("denials", types.int64[::1]),
    ("ctl", types.int64[::1]),
    # the engine's: where orders go, what limits them, what counts them
    ("order_ctrl", types.int64[::1]),
    ("order_slots", types.Array(order_t, 1, "C")),
    ("control_words", types.int64[::1]),
    ("proc", types.int64[::1]),
    ("risk_limits", types.int64[:, ::1]),
    ("risk_state", types.int64[::1]),
    ("risk_fstate", types.float64[::1]),
    ("risk_counters", types.int64[::1]),
)
structref.define_proxy(StrategyContextRef, StrategyContextType, field_names(CONTEXT_FIELDS))
context_t = StrategyContextType(CONTEXT_FIELDS)
callback_sig = types.none(context_t, types.int64)
callback_t = types.FunctionType(callback_sig)
callbacks_t = types.UniTuple(callback_t, MAX_INSTANCES * N_CALLBACKS)
contexts_t = types.UniTuple(context_t, MAX_INSTANCES)


@structref.register
class StrategySetType(types.StructRef):
    """The numba type of the instances' contexts and callback table, travelling as one pointer."""


class StrategySetRef(structref.StructRefProxy):
    """The Python handle of a strategy set: what every engine entry point called from Python takes.

    Why a bundle: unboxing the callback table (a tuple of first-class functions) costs ~45 µs per function,
    2.5 ms for the table, on every call from Python; the strategy process calls its loop between housekeeping
    slices and a backtest calls ``feed`` per batch, and market data would wait that long each time. A structref
    unboxes in a few hundred nanoseconds; the table is unboxed once, when the set is built."""


SET_FIELDS = (("ctxs", contexts_t), ("callbacks", callbacks_t))
structref.define_proxy(StrategySetRef, StrategySetType, field_names(SET_FIELDS))
strategy_set_t = StrategySetType(SET_FIELDS)


def _new_strategy_set(ctxs, callbacks):
    return StrategySetRef(ctxs, callbacks)


def new_strategy_set(ctxs: tuple, callbacks: tuple) -> StrategySetRef:
    """Bundle the padded context and callback tuples (compiled for exactly their types, cached)."""
    import warnings

    constructor = njit(cache=True)(_new_strategy_set)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba: "first-class function type feature is experimental"
        constructor.compile((contexts_t, callbacks_t))
    return constructor.overloads[(contexts_t, callbacks_t)].entry_point(ctxs, callbacks)


@njit(cache=True)
def _new_context(now, strategy_id, book, bbo, last_trade, features, grid, account, mine, params, ints, floats,
                 data_i, data_f, orders, timers, report, model_in, model_out, denials, ctl, order_ctrl, order_slots,
                 control_words, proc, risk_limits, risk_state, risk_fstate, risk_counters):
    return StrategyContextRef(now, strategy_id, book, bbo, last_trade, features, grid, account, mine, params, ints,
                              floats, data_i, data_f, orders, timers, report, model_in, model_out, denials, ctl,
                              order_ctrl, order_slots, control_words, proc, risk_limits, risk_state, risk_fstate,
                              risk_counters)


@dataclass
class Market:
    """The arrays every instance's context shares: allocated once per strategy process (or backtest)."""

    book: np.ndarray
    bbo: np.ndarray
    last_trade: np.ndarray
    features: np.ndarray
    grid: np.ndarray
    account: np.ndarray

    @classmethod
    def allocate(cls, grid: np.ndarray, n_features: int) -> Market:
        """Empty market arrays for ``grid`` (``int64[n_symbols, N_G]``)."""
        from shm_layout.records import BOOK_SNAPSHOT

        n = grid.shape[0]
        book = np.zeros(n, BOOK_SNAPSHOT)
        book["symbol_id"] = np.arange(n)
        return cls(book, np.zeros((n, N_Q), np.int64), np.zeros((n, N_LT), np.int64),
                   np.zeros((n, n_features), np.float64), np.ascontiguousarray(grid, np.int64),
                   np.zeros((n, N_ACC), np.int64))


@dataclass
class Outlet:
    """Where a context's actions go and what limits them: the order ring, control words, counters, risk."""

    order_ctrl: np.ndarray
    order_slots: np.ndarray
    control_words: np.ndarray
    proc: np.ndarray
    risk_limits: np.ndarray
    risk_state: np.ndarray
    risk_fstate: np.ndarray
    risk_counters: np.ndarray
    kill_index: int
    abort_index: int
    wait_strategy: int
    no_wait: bool = False


@dataclass
class StrategyContext:
    """One instance's context: the numpy arrays (Python reads these) and ``ref``, the structref for jitted code."""

    strategy_id: int
    market: Market
    mine: np.ndarray
    params: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    data_i: np.ndarray
    data_f: np.ndarray
    orders: np.ndarray
    timers: np.ndarray
    report: np.ndarray
    model_in: np.ndarray
    model_out: np.ndarray
    denials: np.ndarray
    ctl: np.ndarray
    ref: StrategyContextRef

    @property
    def halted(self) -> bool:
        return bool(self.ctl[CTL_HALTED])

    def open_orders(self) -> np.ndarray:
        """The rows of ``orders`` in use (a copy)."""
        return self.orders[self.orders[:, OO_ID] != 0].copy()


def new_context(strategy_id: int, market: Market, outlet: Outlet, mine: np.ndarray, params: np.ndarray,
                n_ints: int, n_floats: int, data_i: np.ndarray | None = None, data_f: np.ndarray | None = None,
                model_inputs: int = 0, model_outputs: int = 0) -> StrategyContext:
    """Allocate one instance's context around the shared ``market`` and ``outlet`` arrays."""
    from shm_layout.records import EXEC_REPORT

    n = market.grid.shape[0]
    own = {
        "mine": np.ascontiguousarray(mine, np.int64),
        "params": np.ascontiguousarray(params, np.float64),
        "ints": np.zeros((n, max(n_ints, 1)), np.int64),
        "floats": np.zeros((n, max(n_floats, 1)), np.float64),
        "data_i": np.ascontiguousarray(data_i if data_i is not None else np.zeros(1), np.int64),
        "data_f": np.ascontiguousarray(data_f if data_f is not None else np.zeros(1), np.float64),
        "orders": np.zeros((MAX_OPEN_ORDERS, N_OO), np.int64),
        "timers": np.zeros((n, N_TM), np.int64),
        "report": np.zeros(1, EXEC_REPORT),
        "model_in": np.zeros(max(model_inputs, 1), np.float64),
        "model_out": np.zeros(max(model_outputs, 1), np.float64),
        "denials": np.zeros(N_DENIALS, np.int64),
        "ctl": np.zeros(N_CTL, np.int64),
    }
    ctl = own["ctl"]
    ctl[CTL_MODEL_SYMBOL] = -1
    ctl[CTL_KILL_INDEX] = outlet.kill_index
    ctl[CTL_ABORT_INDEX] = outlet.abort_index
    ctl[CTL_WAIT] = outlet.wait_strategy
    ctl[CTL_NO_WAIT] = 1 if outlet.no_wait else 0
    values = (
        0, strategy_id, market.book, market.bbo, market.last_trade, market.features, market.grid, market.account,
        own["mine"], own["params"], own["ints"], own["floats"], own["data_i"], own["data_f"], own["orders"],
        own["timers"], own["report"], own["model_in"], own["model_out"], own["denials"], ctl, outlet.order_ctrl,
        outlet.order_slots, outlet.control_words, outlet.proc, outlet.risk_limits, outlet.risk_state,
        outlet.risk_fstate, outlet.risk_counters,
    )
    check_fields("StrategyContext", CONTEXT_FIELDS, values)
    ref = _new_context(*values)
    return StrategyContext(strategy_id=strategy_id, market=market, ref=ref, **own)

