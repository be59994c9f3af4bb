"""Pre-trade risk: one jitted check per order, and three jitted updates that keep its state.

``risk_check`` returns ``RISK_OK`` (0) or the positive reason code of the first rule that denies the order;
``RISK_REASON_NAMES[code]`` names it, so a caller counts every decision by reason (shared-memory counters are the
caller's business). The engine knows arrays and scalars, not processes or clocks: every function takes
``now_ns``, and tests drive time by hand. Call every function of one state from one thread of one process (the
strategy's): nothing here is atomic.

All times passed to one state must come from one clock. The strategy decides on the venue's clock
(``ts_exch``) so that a replay decides as the live run did; pass that same clock to ``risk_on_market``,
``risk_on_execution`` and ``risk_on_order_sent``. A clock that steps back never refills tokens or ages data.

Rules, in the order ``risk_check`` applies them (the first that fails is the reason returned)::

    INVALID_ORDER   symbol out of range, side not +1/-1, size <= 0 or price <= 0        denies every order
    KILL_SWITCH     the kill-switch word is non-zero                                     reduce-only orders pass
    REJECT_STORM    more than N broker rejections within a window: cool-down running     denies every order
    STALE_DATA      no market data for the symbol for more than stale_after (or never)   denies every order
    MAX_DRAWDOWN    the drawdown latch is set                                            reduce-only orders pass
    MAX_ORDER_SIZE  size > the symbol's max order size                                   denies every order
    MAX_POSITION    |position + signed size| > the symbol's max position                 reduce-only orders pass
    MAX_NOTIONAL    gross exposure after the order > max notional (USD)                  reduce-only orders pass
    ORDER_RATE      the token bucket holds less than one order                           denies every order

Cancels pass their own check (``risk_check_cancel``): a second token bucket, ``CANCEL_RATE``. A cancel never
adds exposure, so the kill switch, breakers and limits never deny one; a strategy that floods cancels is
stopped by that bucket alone.

An order is *reduce-only* when it trades against the position and is no larger than it (a long of 0.5 selling
at most 0.5). A reversal (long 0.5 selling 1.0) is not: it opens new exposure. Stale data and a reject storm
deny reductions too: a market order at a price nobody has seen, or into a venue that is refusing orders, is not
a safe way out; the stale breaker clears itself when data flows, the storm after its cool-down.

Breakers:

* Stale data is derived, not latched: ``now_ns - last market data > stale_after_ns`` for the order's symbol.
  It resets the moment ``risk_on_market`` records data for the symbol again.
* Reject storm: ``risk_on_execution`` keeps the times of the last ``N + 1`` rejections in a ring; when all of
  them lie within the window (newest - oldest <= window) the breaker trips until ``now + cooldown`` and the
  ring is emptied (rejections before a trip never count toward the next one). A rejection of any order counts,
  even one for an unknown symbol, except a post-only order that would have crossed: that is how a market maker
  learns the touch moved, not a sign of a broken venue. Cancel rejects (a cancel race) are reports of their own
  status and never count either.
* Drawdown latches: equity is the sum over symbols of realized PnL (the broker's, from execution reports) and
  unrealized PnL (``position * mark - sign(position) * entry_notional``), in USD. It is revalued on every fill
  and on every mark of a symbol holding a position; its running peak starts at 0 (flat, nothing realized).
  When ``peak - equity > max_drawdown`` the latch is set and stays set, however equity recovers, until an
  operator calls ``risk_reset_drawdown``, which also restarts the peak at the current equity (the operator
  accepts the loss taken so far; drawdown is measured afresh from there).

Money and overflow. Money units are ``price units * size units`` (``shm_layout.records``): BTCUSDT at 2 price
and 8 size decimals puts 1 BTC at 60,000 in 6e14 units, so ``|position| * price`` overflows int64 (9.2e18)
from about 15,000 BTC, and summing symbols of different decimals in raw units is meaningless anyway. Every
notional and equity figure is therefore computed in float64 USD: ``float(size) * float(price) /
10**(price_decimals + size_decimals)``. float64 holds integers exactly to 2**53 (9e15) and otherwise carries a
relative error of 1.1e-16: at a 200,000 USD limit that is 2e-11 USD, far below any tick. The int64 inputs
(positions, sizes, prices, the broker's cumulative realized PnL and entry notional) are never multiplied as
ints. The token bucket is pure int64 (pico-tokens, exact: see ``_refill``).

State layout (one ``int64`` word array ``state`` and one ``float64`` array ``fstate``, from
``make_risk_state``; ``n`` symbols, ``R = reject_storm_count + 1``)::

    state   [0, 16)               G_* global words: token buckets, reject storm, drawdown latch
            [16 + 8s, 24 + 8s)    S_* words of symbol s: position, entry notional, realized, mark, market data time
            [16 + 8n, 16 + 8n + R)  ring of the last R rejection times (G_REJECTS is the write cursor)
    fstate  [0, 8)              F_* global: equity, peak, drawdown (USD)
            [8 + 4s, 12 + 4s)   FS_* of symbol s: money units per USD, the symbol's equity (USD)

Invariants: ``G_TOKENS <= L_BURST * TOKEN`` and ``G_CANCEL_TOKENS <= L_CANCEL_BURST * TOKEN`` (they go below
zero only when messages were sent that the check did not allow); ``G_REJECTS_FLOOR <= G_REJECTS``;
``F_PEAK >= F_EQUITY``; ``F_EQUITY`` is the sum of the ``FS_EQUITY``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shm_layout.records import (
    REASON_POST_ONLY_WOULD_CROSS,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
)

# --- decisions: 0 passes, a positive code names the rule that denied the order ---
RISK_OK = 0
RISK_KILL_SWITCH = 1
RISK_MAX_POSITION = 2
RISK_MAX_ORDER_SIZE = 3
RISK_MAX_NOTIONAL = 4
RISK_ORDER_RATE = 5
RISK_STALE_DATA = 6
RISK_MAX_DRAWDOWN = 7
RISK_REJECT_STORM = 8
RISK_INVALID_ORDER = 9
RISK_CANCEL_RATE = 10  # risk_check_cancel: the cancel bucket holds less than one cancel
RISK_REASON_NAMES = (
    "ok",
    "kill_switch",
    "max_position",
    "max_order_size",
    "max_notional",
    "order_rate",
    "stale_data",
    "max_drawdown",
    "reject_storm",
    "invalid_order",
    "cancel_rate",
)
N_RISK_REASONS = len(RISK_REASON_NAMES)
RISK_BAD_SYMBOL = -1  # risk_on_market / risk_on_execution: a symbol outside the limits (nothing was recorded)

# --- limits[symbol, L_*] (int64, built by hft.risk.config.build_limits; rows repeat the global limits) ---
L_MAX_POSITION = 0  # size units of the symbol
L_MAX_ORDER_SIZE = 1  # size units of the symbol
L_MONEY_DECIMALS = 2  # price_decimals + size_decimals: money units per USD = 10**this
L_MAX_NOTIONAL_MICRO_USD = 3  # global
L_MAX_DRAWDOWN_MICRO_USD = 4  # global
L_RATE_PICO_PER_NS = 5  # global: refill in pico-tokens per ns = orders per second * 1000
L_BURST = 6  # global: bucket capacity in orders
L_STALE_AFTER_NS = 7
L_REJECT_STORM_COUNT = 8  # global: N; the breaker trips on N + 1 rejections
L_REJECT_WINDOW_NS = 9  # global
L_COOLDOWN_NS = 10  # global
L_CANCEL_RATE_PICO_PER_NS = 11  # global: cancels per second * 1000
L_CANCEL_BURST = 12  # global: cancel bucket capacity
N_LIMITS = 16  # 13 used, 3 spare

TOKEN = 1_000_000_000_000  # pico-tokens per order: rate * 1000 pico-tokens arrive per ns, exactly
MICRO_USD = 1_000_000.0
MAX_BURST = 1_000_000  # keeps the capacity (burst * TOKEN) inside int64
MAX_REJECT_STORM_COUNT = 10_000

# --- state: global words ---
G_TOKENS = 0  # pico-tokens in the bucket
G_REFILL_NS = 1  # time the bucket was last refilled to
G_REJECTS = 2  # broker rejections recorded since start: the ring's write cursor
G_REJECTS_FLOOR = 3  # G_REJECTS at the last storm trip: rejections before it no longer count
G_STORM_UNTIL_NS = 4  # reject-storm cool-down ends here (exclusive)
G_STORM_TRIPS = 5
G_DRAWDOWN_LATCHED = 6  # 1 from a drawdown breach until risk_reset_drawdown
G_DRAWDOWN_LATCHED_NS = 7
G_CANCEL_TOKENS = 8  # pico-tokens in the cancel bucket
G_CANCEL_REFILL_NS = 9
STATE_SYMBOL_BASE = 16
# --- state: per-symbol words at STATE_SYMBOL_BASE + symbol * SYMBOL_WORDS ---
S_POSITION = 0  # size units, from the last fill's execution report
S_ENTRY_NOTIONAL = 1  # money units, |position| * average entry price (broker's)
S_REALIZED = 2  # money units, cumulative realized PnL net of fees (broker's)
S_MARK = 3  # price units: last mark from market data (or the first fill's price until data arrives)
S_LAST_MD_NS = 4
S_MD_SEEN = 5  # 1 once any market data was recorded
SYMBOL_WORDS = 8

# --- fstate: global ---
F_EQUITY = 0  # USD
F_PEAK = 1  # USD, highest equity since start or since the last drawdown reset
F_DRAWDOWN = 2  # USD, F_PEAK - F_EQUITY at the last revaluation
FSTATE_SYMBOL_BASE = 8
# --- fstate: per-symbol at FSTATE_SYMBOL_BASE + symbol * FSYMBOL_WORDS ---
FS_MONEY_PER_USD = 0  # 10.0 ** (price_decimals + size_decimals)
FS_EQUITY = 1  # USD: realized + unrealized of the symbol
FSYMBOL_WORDS = 4


@njit(inline="always", cache=True)
def symbol_word(symbol: int, field: int) -> int:
    """Return the index of a symbol's ``S_*`` word in ``state``."""
    return STATE_SYMBOL_BASE + symbol * SYMBOL_WORDS + field


@njit(inline="always", cache=True)
def fsymbol_word(symbol: int, field: int) -> int:
    """Return the index of a symbol's ``FS_*`` word in ``fstate``."""
    return FSTATE_SYMBOL_BASE + symbol * FSYMBOL_WORDS + field


def state_words(limits: np.ndarray) -> int:
    """Return the length of ``state`` for these limits (globals, symbols, the rejection ring)."""
    return STATE_SYMBOL_BASE + limits.shape[0] * SYMBOL_WORDS + int(limits[0, L_REJECT_STORM_COUNT]) + 1


def make_risk_state(limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allocate the engine's state once, before the hot loop: a full token bucket, no data, no PnL.

    Returns ``(state, fstate)``: ``int64`` and ``float64`` arrays laid out as in the module docstring.
    """
    if not isinstance(limits, np.ndarray) or limits.dtype != np.int64 or limits.ndim != 2 \
            or limits.shape[1] != N_LIMITS or limits.shape[0] < 1:
        raise ValueError(f"limits must be int64 of shape (n_symbols, {N_LIMITS}) from build_limits")
    n_symbols = limits.shape[0]
    state = np.zeros(state_words(limits), np.int64)
    state[G_TOKENS] = limits[0, L_BURST] * TOKEN
    state[G_CANCEL_TOKENS] = limits[0, L_CANCEL_BURST] * TOKEN
    fstate = np.zeros(FSTATE_SYMBOL_BASE + n_symbols * FSYMBOL_WORDS, np.float64)
    for symbol in range(n_symbols):
        fstate[FSTATE_SYMBOL_BASE + symbol * FSYMBOL_WORDS + FS_MONEY_PER_USD] = 10.0 ** int(
            limits[symbol, L_MONEY_DECIMALS]
        )
    return state, fstate


@njit(inline="always", cache=True)
def _reduce_only(position: int, side: int, size: int) -> bool:
    """Return whether the order trades against the position and is no larger than it (no int overflow)."""
    if position > 0:
        return side == SIDE_SELL and size <= position
    if position < 0:
        return side == SIDE_BUY and size <= -position
    return False


@njit(inline="always", cache=True)
def _refill_bucket(state: np.ndarray, tokens_word: int, refill_word: int, burst: int, rate: int, now_ns: int) -> None:
    """Bring a bucket up to ``now_ns``: ``rate`` (messages per second * 1000) pico-tokens per ns, capped at
    ``burst`` messages.

    Exact in int64: no fractional token is ever lost or invented, so at most ``burst + rate * elapsed`` messages
    pass in any interval. ``elapsed * rate`` is only formed when it is at most the missing amount.
    """
    last = state[refill_word]
    if now_ns <= last:
        return  # the same instant, or a clock that stepped back: nothing to add, keep the later time
    capacity = burst * TOKEN
    tokens = state[tokens_word]
    if tokens < capacity:
        missing = capacity - tokens
        elapsed = now_ns - last
        if elapsed > missing // rate:  # then elapsed * rate > missing: full
            state[tokens_word] = capacity
        else:
            state[tokens_word] = tokens + elapsed * rate
    state[refill_word] = now_ns


@njit(inline="always", cache=True)
def _refill(limits: np.ndarray, state: np.ndarray, now_ns: int) -> None:
    """Bring the order bucket up to ``now_ns``."""
    _refill_bucket(state, G_TOKENS, G_REFILL_NS, limits[0, L_BURST], limits[0, L_RATE_PICO_PER_NS], now_ns)


@njit(cache=True)
def risk_check(
    limits: np.ndarray,
    state: np.ndarray,
    fstate: np.ndarray,
    symbol: int,
    side: int,
    size: int,
    price: int,
    now_ns: int,
    kill_switch_word_value: int,
    position: int,
) -> int:
    """Decide one order: return ``RISK_OK`` or the reason code of the first rule that denies it.

    Parameters
    ----------
    symbol, side, size, price
        The order: symbol id, ``SIDE_BUY``/``SIDE_SELL``, size in size units (> 0), price in price units (the
        limit price, or for a market order the touch it expects to take).
    now_ns
        The decision time, on the clock of every other call on this state.
    kill_switch_word_value
        The kill-switch word as the caller loaded it from shared memory (non-zero: on).
    position
        The caller's signed position in ``symbol`` (size units) that the order adds to; other symbols' positions
        come from the execution reports in ``state``.

    Refills the token bucket to ``now_ns`` but consumes nothing: call ``risk_on_order_sent`` once the order is
    published. Allocation-free.
    """
    n_symbols = limits.shape[0]
    if symbol < 0 or symbol >= n_symbols or (side != SIDE_BUY and side != SIDE_SELL) or size <= 0 or price <= 0:
        return RISK_INVALID_ORDER
    reduce_only = _reduce_only(position, side, size)
    if kill_switch_word_value != 0 and not reduce_only:
        return RISK_KILL_SWITCH
    if now_ns < state[G_STORM_UNTIL_NS]:
        return RISK_REJECT_STORM
    if (state[symbol_word(symbol, S_MD_SEEN)] == 0
            or now_ns - state[symbol_word(symbol, S_LAST_MD_NS)] > limits[symbol, L_STALE_AFTER_NS]):
        return RISK_STALE_DATA
    if state[G_DRAWDOWN_LATCHED] != 0 and not reduce_only:
        return RISK_MAX_DRAWDOWN
    if size > limits[symbol, L_MAX_ORDER_SIZE]:
        return RISK_MAX_ORDER_SIZE
    if not reduce_only:
        after = abs(position + side * size)  # size <= max order size <= 2**53 here: no overflow
        if after > limits[symbol, L_MAX_POSITION]:
            return RISK_MAX_POSITION
        gross = float(after) * float(price) / fstate[fsymbol_word(symbol, FS_MONEY_PER_USD)]
        for other in range(n_symbols):
            if other != symbol:
                held = state[symbol_word(other, S_POSITION)]
                if held != 0:
                    gross += (float(abs(held)) * float(state[symbol_word(other, S_MARK)])
                              / fstate[fsymbol_word(other, FS_MONEY_PER_USD)])
        if gross > limits[symbol, L_MAX_NOTIONAL_MICRO_USD] / MICRO_USD:
            return RISK_MAX_NOTIONAL
    _refill(limits, state, now_ns)
    if state[G_TOKENS] < TOKEN:
        return RISK_ORDER_RATE
    return RISK_OK


@njit(cache=True)
def risk_on_order_sent(limits: np.ndarray, state: np.ndarray, now_ns: int) -> int:
    """Take one token for an order just published; return ``RISK_ORDER_RATE`` if the bucket had none.

    The token is taken either way (the bucket goes into debt and later orders wait longer): the count of orders
    on the wire is what the rate limit is about.
    """
    _refill(limits, state, now_ns)
    tokens = state[G_TOKENS]
    state[G_TOKENS] = tokens - TOKEN
    return RISK_OK if tokens >= TOKEN else RISK_ORDER_RATE


@njit(cache=True)
def risk_check_cancel(limits: np.ndarray, state: np.ndarray, now_ns: int) -> int:
    """Decide one cancel: ``RISK_OK`` while the cancel bucket holds a token, else ``RISK_CANCEL_RATE``.

    Nothing else applies: a cancel only removes exposure, so it passes the kill switch and every breaker.
    Refills the bucket but consumes nothing: call ``risk_on_cancel_sent`` once the cancel is published."""
    _refill_bucket(state, G_CANCEL_TOKENS, G_CANCEL_REFILL_NS, limits[0, L_CANCEL_BURST],
                   limits[0, L_CANCEL_RATE_PICO_PER_NS], now_ns)
    return RISK_OK if state[G_CANCEL_TOKENS] >= TOKEN else RISK_CANCEL_RATE


@njit(cache=True)
def risk_on_cancel_sent(limits: np.ndarray, state: np.ndarray, now_ns: int) -> int:
    """Take one cancel token (into debt if there was none, like ``risk_on_order_sent``)."""
    _refill_bucket(state, G_CANCEL_TOKENS, G_CANCEL_REFILL_NS, limits[0, L_CANCEL_BURST],
                   limits[0, L_CANCEL_RATE_PICO_PER_NS], now_ns)
    tokens = state[G_CANCEL_TOKENS]
    state[G_CANCEL_TOKENS] = tokens - TOKEN
    return RISK_OK if tokens >= TOKEN else RISK_CANCEL_RATE


@njit(cache=True)
def _revalue(limits: np.ndarray, state: np.ndarray, fstate: np.ndarray, symbol: int, now_ns: int) -> int:
    """Recompute the symbol's equity, the total, the peak and the drawdown; latch on a breach.

    Return ``RISK_MAX_DRAWDOWN`` when this call set the latch, else ``RISK_OK``.
    """
    position = state[symbol_word(symbol, S_POSITION)]
    mark = state[symbol_word(symbol, S_MARK)]
    money = float(state[symbol_word(symbol, S_REALIZED)])
    if position != 0 and mark > 0:  # without any mark the position is worth its entry: no unrealized PnL
        entry = float(state[symbol_word(symbol, S_ENTRY_NOTIONAL)])
        money += float(position) * float(mark) - (entry if position > 0 else -entry)
    fstate[fsymbol_word(symbol, FS_EQUITY)] = money / fstate[fsymbol_word(symbol, FS_MONEY_PER_USD)]
    equity = 0.0
    for other in range(limits.shape[0]):  # summed afresh (at most 16 terms): no drift from running deltas
        equity += fstate[fsymbol_word(other, FS_EQUITY)]
    fstate[F_EQUITY] = equity
    if equity > fstate[F_PEAK]:
        fstate[F_PEAK] = equity
    drawdown = fstate[F_PEAK] - equity
    fstate[F_DRAWDOWN] = drawdown
    if state[G_DRAWDOWN_LATCHED] == 0 and drawdown > limits[0, L_MAX_DRAWDOWN_MICRO_USD] / MICRO_USD:
        state[G_DRAWDOWN_LATCHED] = 1
        state[G_DRAWDOWN_LATCHED_NS] = now_ns
        return RISK_MAX_DRAWDOWN
    return RISK_OK


@njit(cache=True)
def risk_on_market(
    limits: np.ndarray, state: np.ndarray, fstate: np.ndarray, symbol: int, mark_price: int, now_ns: int
) -> int:
    """Record market data for ``symbol`` at ``now_ns`` and its mark (price units; <= 0: time only).

    Clears the symbol's stale-data breaker and revalues a held position. Return ``RISK_MAX_DRAWDOWN`` when the
    new mark latched the drawdown breaker, ``RISK_BAD_SYMBOL`` for a symbol outside the limits, else ``RISK_OK``.
    """
    if symbol < 0 or symbol >= limits.shape[0]:
        return RISK_BAD_SYMBOL
    if now_ns > state[symbol_word(symbol, S_LAST_MD_NS)] or state[symbol_word(symbol, S_MD_SEEN)] == 0:
        state[symbol_word(symbol, S_LAST_MD_NS)] = now_ns  # keep the latest time if the clock steps back
    state[symbol_word(symbol, S_MD_SEEN)] = 1
    if mark_price > 0:
        state[symbol_word(symbol, S_MARK)] = mark_price
        if state[symbol_word(symbol, S_POSITION)] != 0:
            return _revalue(limits, state, fstate, symbol, now_ns)
    return RISK_OK


@njit(cache=True)
def _record_reject(limits: np.ndarray, state: np.ndarray, now_ns: int) -> int:
    ring_length = limits[0, L_REJECT_STORM_COUNT] + 1
    ring_base = STATE_SYMBOL_BASE + limits.shape[0] * SYMBOL_WORDS
    written = state[G_REJECTS]
    state[ring_base + written % ring_length] = now_ns
    written += 1
    state[G_REJECTS] = written
    if written - state[G_REJECTS_FLOOR] >= ring_length:
        oldest = state[ring_base + written % ring_length]  # the oldest of the last ring_length rejections
        if now_ns - oldest <= limits[0, L_REJECT_WINDOW_NS]:
            state[G_STORM_UNTIL_NS] = now_ns + limits[0, L_COOLDOWN_NS]
            state[G_REJECTS_FLOOR] = written
            state[G_STORM_TRIPS] += 1
            return RISK_REJECT_STORM
    return RISK_OK


@njit(cache=True)
def risk_on_execution(
    limits: np.ndarray,
    state: np.ndarray,
    fstate: np.ndarray,
    symbol: int,
    status: int,
    reason: int,
    price: int,
    position: int,
    entry_notional: int,
    realized_pnl: int,
    now_ns: int,
) -> int:
    """Apply one execution report (its ``status`` and ``reason``, fill ``price`` and the broker's cumulative
    ``position``, ``entry_notional`` and ``realized_pnl`` for the symbol).

    A fill sets the symbol's position and PnL and revalues equity (a symbol with no mark yet is marked at the
    fill price); a rejection feeds the reject-storm window, whatever its symbol, unless it is a post-only order
    that would have crossed. Return the reason of a breaker this report tripped (``RISK_MAX_DRAWDOWN``,
    ``RISK_REJECT_STORM``: count these as trips), ``RISK_BAD_SYMBOL`` for a fill outside the limits, else
    ``RISK_OK``.
    """
    if status == STATUS_REJECTED:
        if reason == REASON_POST_ONLY_WOULD_CROSS:
            return RISK_OK  # the market maker's ordinary news that the touch moved
        return _record_reject(limits, state, now_ns)
    if status != STATUS_FILLED and status != STATUS_PARTIALLY_FILLED:
        return RISK_OK
    if symbol < 0 or symbol >= limits.shape[0]:
        return RISK_BAD_SYMBOL
    state[symbol_word(symbol, S_POSITION)] = position
    state[symbol_word(symbol, S_ENTRY_NOTIONAL)] = entry_notional
    state[symbol_word(symbol, S_REALIZED)] = realized_pnl
    if state[symbol_word(symbol, S_MARK)] <= 0 and price > 0:
        state[symbol_word(symbol, S_MARK)] = price
    return _revalue(limits, state, fstate, symbol, now_ns)


@njit(cache=True)
def risk_reset_drawdown(state: np.ndarray, fstate: np.ndarray) -> int:
    """Clear the drawdown latch (an operator's decision) and restart the peak at the current equity."""
    state[G_DRAWDOWN_LATCHED] = 0
    state[G_DRAWDOWN_LATCHED_NS] = 0
    fstate[F_PEAK] = fstate[F_EQUITY]
    fstate[F_DRAWDOWN] = 0.0
    return RISK_OK


def risk_mark_stale(limits: np.ndarray, state: np.ndarray) -> None:
    """Trip the stale-data breaker of every symbol now (the feed died: no data is coming). It clears itself,
    per symbol, at that symbol's next market update (``risk_on_market``). Python side, between loop slices."""
    for symbol in range(limits.shape[0]):
        state[symbol_word(symbol, S_MD_SEEN)] = 0
