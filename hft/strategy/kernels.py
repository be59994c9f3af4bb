"""The strategy's microstructure features: one jitted update per market-data kind, O(1) amortized, allocation-free.

Two entry points update *every* feature of one symbol and write them into ``features[sym, F_*]`` (float64):

* ``on_book(sym, book, ...)`` for a ``BOOK_SNAPSHOT`` record (the caller passes synced books only, as
  ``hft.strategy.loop`` does),
* ``on_trade(sym, ts_ns, price, size, side, ...)`` for an ``EV_TRADE`` event (``ts_exch``, ``price``, ``size``,
  ``side`` = aggressor, +1 buy / -1 sell).

Both return a status (``KERNEL_OK`` 0; ``KERNEL_NO_MID`` / ``KERNEL_NO_VOLUME`` 1: the book had no two sides or
the trade no size, nothing was sampled but the features were rewritten for the new time; ``KERNEL_NOT_CONFIGURED``
-1: the symbol has no parameters, nothing was touched). Nothing is allocated, logged or raised in them; the
Python helpers ``make_kernel_params``/``configure_symbol``/``make_kernel_state``/``make_features`` allocate and
validate once, at start-up.

Clock. Each symbol has its own clock ``now`` = the largest timestamp it has been given (``ts_exch``, ns). An
older timestamp (Binance's REST snapshot carries none: ``ts_exch = 0``; streams interleave) is taken as ``now``:
time never runs backwards. The window is the half-open interval ``(now - W, now]`` with ``W = window_ns``
(config ``strategy.feature_window_ms * 1_000_000``). Every call first advances the clock, then evicts what left
the window, then adds its sample, then rewrites all features at ``now``.

Samples. A *book sample* ``j`` is taken for every two-sided book (``bid > 0`` and ``ask >= bid``):
``(t_j, r_j, q_j, M_j)`` with ``t_j`` its (clamped) time, ``r_j = ln(mid_j / mid_{j-1}) = log1p((x_j -
x_{j-1}) / x_{j-1})`` over ``x = mid_x2`` (exact integers; ``r_0 = 0``), ``q_j`` its touch imbalance and ``M_j``
the momentum sum just after it. The ring keeps the samples inside the window plus the one *in force* at the
window start: sample ``o`` is the latest with ``t_o <= now - W`` (or the first one if none is that old). If more
than ``book_capacity`` samples are kept the oldest go anyway (counted in ``ints[sym, I_BOOK_DROPS]``): the window
then effectively starts at ``t_o``. Trades are kept while ``t > now - W`` (at most ``trade_capacity``, overflow
counted in ``I_TRADE_DROPS``). ``start = max(now - W, t_o)`` is where the book window begins.

Formulas (``ln2 = log(2)``, ``p_k, s_k`` level prices and sizes, best first, top ``N = min(n_levels, 10)``):

* ``volatility``    = 100 * sqrt( sum_{j=o+1..last} r_j**2 / (last - o) )   (per-tick RMS log return in the
  window, percent; 0 with fewer than two samples)
* ``momentum``      = 100 * M(now),  M(t) = sum_{j: t_j <= t} r_j * 2**(-(t - t_j) / W)   (every log return of
  the mid ever seen, weighted by an exponential of half-life W: a jump halves in weight after one window)
* ``imbalance``     = (bid_size - ask_size) / (bid_size + ask_size) at the touch of the latest book (0 if empty)
* ``weighted_imbalance`` = (1 / (now - start)) * integral_{start..now} q(t) dt with q(t) the touch imbalance
  of the latest sample at or before t (piecewise constant; the latest sample's q if ``now == start``)
* ``spread_bps``    = 10_000 * (ask - bid) / mid = 20_000 * (ask - bid) / mid_x2 of the latest two-sided book
* ``depth_ratio``   = clip(ln(B / A), -10, 10) with B = sum_{k<N} bid s_k, A = sum_{k<N} ask s_k;
  +10 when only bids, -10 when only asks, 0 when both are empty (log ratio: symmetric and bounded)
* ``bid_pressure``  = P_b / (P_b + P_a), ``ask_pressure`` = P_a / (P_b + P_a), with
  P_side = sum_{k<N} s_k / (1 + d_k), d_k = |p_k - best price of that side| / tick_size (distance from the
  own touch in ticks, so 1, 1/2, 1/3 ... on a dense book); both 0 on an empty book; they sum to 1 otherwise
* ``vwap``          = sum(price_i * size_i) / sum(size_i) over the window's trades, fixed-point price units
  (the scale of ``BOOK_SNAPSHOT.bid_price``) as a float; 0 without trades
* ``vwap_dev_bps``  = 10_000 * (mid - vwap) / vwap with mid = mid_x2 / 2 of the latest two-sided book; 0 without
  trades or without a mid
* ``trade_flow``    = sum(side_i * size_i) / sum(size_i) over the window's trades, in [-1, 1]; 0 without trades
* ``toxicity``      = VPIN: the trade tape is cut into consecutive buckets of exactly ``V = bucket_volume`` size
  units (a trade is split across bucket boundaries); per completed bucket b, |buy_b - sell_b| / V; toxicity is
  the mean over the last ``K = n_buckets`` completed buckets (over all of them while fewer than K; 0 before the
  first). Volume-clocked: the time window does not apply
* ``price_acceleration`` = 100 * (M(now) - M(start)) / (W / 1e9)   (change of momentum over the book window,
  percent per second; M(start) = M_o * 2**(-(start - t_o) / W), the momentum as it stood after sample o)
* ``volume_surge``  = sum(size_i in window) / baseline, baseline = (W * ln2 / H) * sum_{all trades}
  size_i * 2**(-(now - t_i) / H) with H = surge_half_life_ns (default 60 W): the exponentially weighted
  long-run traded volume scaled to one window, which approximates the mean window volume under a steady flow
  (ratio ~ 1, to within ln2 * (trade spacing) / (2 H)). It warms up over a few H (the first trade gives
  H / (W ln2)); 0 when the baseline is 0

Exactness. Volume, signed volume, VPIN buckets and the VWAP notional are exact int64 sums (the notional is kept
as two int64 sums of the high and low 32 bits of ``price * size``, which must fit in int64: the project's money
convention); the float sums that have to subtract evicted terms (sum of r**2, the imbalance area) are
compensated (TwoSum, error ~ n * eps**2) and reset to exactly 0 when their window is empty; the exponential sums
only decay and add. Cost per call: a constant plus one step per evicted sample (each sample is evicted once),
and for a trade larger than V at most K bucket pushes.

State (rows are symbols; one writer: the strategy process): ``ints[sym, I_*]`` int64 cursors and exact sums,
``accs[sym, A_*]`` float64 sums and the latest book-shape values, ``book_ts[sym, k]`` / ``book_f[sym, k,
B_*]`` the book-sample ring and ``trades[sym, k, T_*]`` the trade ring (slot ``k = seq & (capacity - 1)``,
``I_*_TAIL`` = oldest kept seq, ``I_*_HEAD`` = next seq, ``0 <= head - tail <= capacity``, the book ring holds
at least one sample once it had one), ``buckets[sym, b]`` the last K bucket values |buy - sell|.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from hft.validation import require
from shm_layout.records import TOP_LEVELS

# --- feature indices: features[sym, F_*]; names are read by the rule engine and the ONNX model: keep them ---
F_VOLATILITY = 0
F_MOMENTUM = 1
F_IMBALANCE = 2
F_WEIGHTED_IMBALANCE = 3
F_SPREAD_BPS = 4
F_DEPTH_RATIO = 5
F_BID_PRESSURE = 6
F_ASK_PRESSURE = 7
F_VWAP = 8
F_VWAP_DEV_BPS = 9
F_TRADE_FLOW = 10
F_TOXICITY = 11
F_PRICE_ACCELERATION = 12
F_VOLUME_SURGE = 13
N_FEATURES = 14
FEATURE_NAMES = (
    "volatility",
    "momentum",
    "imbalance",
    "weighted_imbalance",
    "spread_bps",
    "depth_ratio",
    "bid_pressure",
    "ask_pressure",
    "vwap",
    "vwap_dev_bps",
    "trade_flow",
    "toxicity",
    "price_acceleration",
    "volume_surge",
)
assert len(FEATURE_NAMES) == N_FEATURES

# --- per-symbol int64 parameters: params[sym, P_*] (configure_symbol) ---
P_WINDOW_NS = 0  # W; 0 means "not configured"
P_TICK_SIZE = 1  # fixed-point price units per tick (pressure distances)
P_BUCKET_VOLUME = 2  # V, size units per VPIN bucket
P_N_BUCKETS = 3  # K, buckets averaged (<= MAX_BUCKETS)
P_SURGE_HALF_LIFE_NS = 4  # H, half-life of the long-run volume baseline
N_PARAMS = 8

# --- status codes ---
KERNEL_OK = 0
KERNEL_NO_MID = 1  # on_book: the book has no two sides; no sample taken
KERNEL_NO_VOLUME = 1  # on_trade: size <= 0; nothing recorded
KERNEL_NOT_CONFIGURED = -1  # params[sym] is empty: nothing touched

# --- ints[sym, I_*] ---
I_NOW = 0  # the symbol's clock (ns)
I_BOOK_TAIL = 1
I_BOOK_HEAD = 2
I_TRADE_TAIL = 3
I_TRADE_HEAD = 4
I_VOLUME = 5  # sum of sizes in the window
I_SIGNED_VOLUME = 6  # sum of side * size in the window
I_NOTIONAL_HI = 7  # sum of (price * size) >> 32 in the window
I_NOTIONAL_LO = 8  # sum of (price * size) & 0xFFFFFFFF in the window
I_MID_X2 = 9  # mid_x2 of the latest two-sided book (0: none yet)
I_BUCKET_FILL = 10  # volume in the open bucket
I_BUCKET_SIGNED = 11  # buy - sell volume in the open bucket
I_BUCKET_POS = 12  # next slot of the bucket ring
I_BUCKETS_FULL = 13  # completed buckets held (<= K)
I_BUCKET_SUM = 14  # sum of |buy - sell| over the held buckets
I_BOOK_DROPS = 15  # samples dropped inside the window: book ring full
I_TRADE_DROPS = 16  # trades dropped inside the window: trade ring full
N_INTS = 24  # three cache lines per symbol

# --- accs[sym, A_*] ---
A_SUM_R2 = 0  # compensated: value = accs[A_SUM_R2] + accs[A_SUM_R2 + 1]
A_IMB_AREA = 2  # compensated: sum over complete kept segments of q_j * (t_{j+1} - t_j)
A_MOMENTUM = 4  # M(now)
A_DECAYED_VOLUME = 5  # sum of size_i * 2**(-(now - t_i) / H)
A_IMBALANCE = 6  # latest book's values
A_DEPTH_RATIO = 7
A_BID_PRESSURE = 8
A_ASK_PRESSURE = 9
A_SPREAD_BPS = 10  # latest two-sided book's
N_ACCS = 16

# --- ring columns ---
B_RETURN = 0  # book_f[sym, k, B_*]
B_IMBALANCE = 1
B_MOMENTUM = 2
N_BOOK_F = 3
T_TS = 0  # trades[sym, k, T_*]
T_PRICE = 1
T_SIZE = 2
T_SIDE = 3
N_TRADE_COLUMNS = 4

DEFAULT_BOOK_CAPACITY = 4096  # book samples kept per symbol (power of two)
DEFAULT_TRADE_CAPACITY = 8192  # trades kept per symbol (power of two)
MAX_BUCKETS = 256  # largest K
DEFAULT_N_BUCKETS = 50
DEFAULT_SURGE_WINDOWS = 60  # default H = 60 * W
DEPTH_RATIO_CAP = 10.0  # |depth_ratio| <= 10 (e**10 ~ 22,026 : 1)
PERCENT = 100.0
BPS = 10_000.0
LN2 = math.log(2.0)
TWO_POW_32 = 4294967296.0
LOW_32 = 0xFFFFFFFF


class KernelState(NamedTuple):
    """The per-symbol kernel state, in the order the kernels take it: ``on_book(sym, book, params, *state, f)``."""

    ints: np.ndarray
    accs: np.ndarray
    book_ts: np.ndarray
    book_f: np.ndarray
    trades: np.ndarray
    buckets: np.ndarray


def make_kernel_params(n_symbols: int) -> np.ndarray:
    """Allocate the parameter table (every symbol unconfigured: its kernels return ``KERNEL_NOT_CONFIGURED``)."""
    require(n_symbols >= 1, "kernels: at least one symbol")
    return np.zeros((n_symbols, N_PARAMS), np.int64)


def configure_symbol(
    params: np.ndarray,
    symbol: int,
    *,
    window_ns: int,
    bucket_volume: int,
    n_buckets: int = DEFAULT_N_BUCKETS,
    tick_size: int = 1,
    surge_half_life_ns: int | None = None,
) -> None:
    """Validate and set one symbol's parameters (start-up only: the kernels trust them).

    Parameters
    ----------
    window_ns
        W, the feature window: ``strategy.feature_window_ms * 1_000_000``.
    bucket_volume
        V, size units per VPIN bucket (fixed-point, like ``MD_EVENT.size``): pick a few seconds of volume.
    n_buckets
        K, completed buckets averaged by ``toxicity``, 1..``MAX_BUCKETS``.
    tick_size
        Price units per tick, the unit of the pressure distances (BTCUSDT at 2 decimals: 1).
    surge_half_life_ns
        H, half-life of the ``volume_surge`` baseline; default ``DEFAULT_SURGE_WINDOWS`` windows.
    """
    require(0 <= symbol < params.shape[0], f"kernels: symbol {symbol} not in 0..{params.shape[0] - 1}")
    require(window_ns > 0, f"kernels: window_ns must be positive, got {window_ns}")
    require(bucket_volume > 0, f"kernels: bucket_volume must be positive, got {bucket_volume}")
    require(1 <= n_buckets <= MAX_BUCKETS, f"kernels: n_buckets must be in 1..{MAX_BUCKETS}, got {n_buckets}")
    require(tick_size > 0, f"kernels: tick_size must be positive, got {tick_size}")
    half_life = DEFAULT_SURGE_WINDOWS * window_ns if surge_half_life_ns is None else surge_half_life_ns
    require(half_life > 0, f"kernels: surge_half_life_ns must be positive, got {half_life}")
    row = params[symbol]
    row[:] = 0
    row[P_WINDOW_NS] = window_ns
    row[P_TICK_SIZE] = tick_size
    row[P_BUCKET_VOLUME] = bucket_volume
    row[P_N_BUCKETS] = n_buckets
    row[P_SURGE_HALF_LIFE_NS] = half_life


def make_kernel_state(
    n_symbols: int, book_capacity: int = DEFAULT_BOOK_CAPACITY, trade_capacity: int = DEFAULT_TRADE_CAPACITY
) -> KernelState:
    """Allocate the state once; its size depends on the capacities only, never on the history."""
    require(n_symbols >= 1, "kernels: at least one symbol")
    for name, capacity in (("book_capacity", book_capacity), ("trade_capacity", trade_capacity)):
        require(capacity >= 2 and capacity & (capacity - 1) == 0, f"kernels: {name} {capacity} is not a power of 2")
    return KernelState(
        np.zeros((n_symbols, N_INTS), np.int64),
        np.zeros((n_symbols, N_ACCS), np.float64),
        np.zeros((n_symbols, book_capacity), np.int64),
        np.zeros((n_symbols, book_capacity, N_BOOK_F), np.float64),
        np.zeros((n_symbols, trade_capacity, N_TRADE_COLUMNS), np.int64),
        np.zeros((n_symbols, MAX_BUCKETS), np.int64),
    )


def make_features(n_symbols: int) -> np.ndarray:
    """Allocate the output table ``features[sym, F_*]`` (zeros: the value of every feature before any data)."""
    require(n_symbols >= 1, "kernels: at least one symbol")
    return np.zeros((n_symbols, N_FEATURES), np.float64)


@njit(cache=True)
def _add_compensated(accs: np.ndarray, sym: int, index: int, x: float) -> None:
    """Add ``x`` to the compensated sum at ``accs[sym, index]`` (+ error term at ``index + 1``): Knuth's TwoSum."""
    s = accs[sym, index]
    t = s + x
    virtual = t - s
    accs[sym, index + 1] += (s - (t - virtual)) + (x - virtual)
    accs[sym, index] = t


@njit(cache=True)
def _evict_sample(sym: int, ints: np.ndarray, accs: np.ndarray, book_ts: np.ndarray, book_f: np.ndarray) -> None:
    """Drop the oldest book sample o (the ring holds >= 2): remove r_{o+1}**2 and o's segment from the sums."""
    mask = book_ts.shape[1] - 1
    tail = ints[sym, I_BOOK_TAIL]
    o = tail & mask
    nxt = (tail + 1) & mask
    r = book_f[sym, nxt, B_RETURN]
    _add_compensated(accs, sym, A_SUM_R2, -(r * r))
    _add_compensated(accs, sym, A_IMB_AREA, -(book_f[sym, o, B_IMBALANCE] * float(book_ts[sym, nxt] - book_ts[sym, o])))
    tail += 1
    ints[sym, I_BOOK_TAIL] = tail
    if ints[sym, I_BOOK_HEAD] - tail == 1:  # one sample left: no return, no complete segment, exactly
        accs[sym, A_SUM_R2] = 0.0
        accs[sym, A_SUM_R2 + 1] = 0.0
        accs[sym, A_IMB_AREA] = 0.0
        accs[sym, A_IMB_AREA + 1] = 0.0


@njit(cache=True)
def _evict_trade(sym: int, ints: np.ndarray, trades: np.ndarray) -> None:
    """Drop the oldest trade of the ring from the exact window sums."""
    tail = ints[sym, I_TRADE_TAIL]
    k = tail & (trades.shape[1] - 1)
    size = trades[sym, k, T_SIZE]
    notional = trades[sym, k, T_PRICE] * size
    ints[sym, I_VOLUME] -= size
    ints[sym, I_SIGNED_VOLUME] -= trades[sym, k, T_SIDE] * size
    ints[sym, I_NOTIONAL_HI] -= notional >> 32
    ints[sym, I_NOTIONAL_LO] -= notional & LOW_32
    ints[sym, I_TRADE_TAIL] = tail + 1


# inline: a call passes every array argument as ~7 machine words (shape, strides, data); inlining the two
# helpers that take 6-8 arrays saves ~50 ns per on_book / on_trade (measured on the recorded BTCUSDT session)
@njit(cache=True, inline="always")
def _advance(
    sym: int,
    ts_ns: int,
    params: np.ndarray,
    ints: np.ndarray,
    accs: np.ndarray,
    book_ts: np.ndarray,
    book_f: np.ndarray,
    trades: np.ndarray,
) -> int:
    """Move the symbol's clock to ``max(now, ts_ns)``, decay the exponential sums, evict what left the window.

    Returns the new ``now``. Book samples go while the next one is also at or before ``now - W`` (the one in
    force at the window start stays); trades go once at or before ``now - W``.
    """
    window = params[sym, P_WINDOW_NS]
    now = ints[sym, I_NOW]
    if ts_ns > now:
        dt = float(ts_ns - now)
        accs[sym, A_MOMENTUM] *= math.exp(-LN2 * dt / float(window))
        accs[sym, A_DECAYED_VOLUME] *= math.exp(-LN2 * dt / float(params[sym, P_SURGE_HALF_LIFE_NS]))
        now = ts_ns
        ints[sym, I_NOW] = now
    horizon = now - window
    trade_mask = trades.shape[1] - 1
    while ints[sym, I_TRADE_HEAD] > ints[sym, I_TRADE_TAIL] and (
        trades[sym, ints[sym, I_TRADE_TAIL] & trade_mask, T_TS] <= horizon
    ):
        _evict_trade(sym, ints, trades)
    book_mask = book_ts.shape[1] - 1
    while ints[sym, I_BOOK_HEAD] - ints[sym, I_BOOK_TAIL] > 1 and (
        book_ts[sym, (ints[sym, I_BOOK_TAIL] + 1) & book_mask] <= horizon
    ):
        _evict_sample(sym, ints, accs, book_ts, book_f)
    return now


@njit(cache=True)
def _push_bucket(sym: int, value: int, n_buckets: int, ints: np.ndarray, buckets: np.ndarray) -> None:
    """Record one completed VPIN bucket's |buy - sell|, replacing the oldest of the last K."""
    pos = ints[sym, I_BUCKET_POS]
    if ints[sym, I_BUCKETS_FULL] >= n_buckets:
        ints[sym, I_BUCKET_SUM] -= buckets[sym, pos]
    else:
        ints[sym, I_BUCKETS_FULL] += 1
    buckets[sym, pos] = value
    ints[sym, I_BUCKET_SUM] += value
    pos += 1
    ints[sym, I_BUCKET_POS] = 0 if pos >= n_buckets else pos


@njit(cache=True)
def _fill_buckets(sym: int, size: int, sign: int, params: np.ndarray, ints: np.ndarray, buckets: np.ndarray) -> None:
    """Pour one trade into the VPIN buckets: top up the open bucket, then whole buckets, then open a new one.

    Whole buckets of one trade all hold |buy - sell| = V (|sign| V); more than K of them push only K (the
    older ones would be replaced at once), so the work is bounded by K.
    """
    volume = params[sym, P_BUCKET_VOLUME]
    n_buckets = params[sym, P_N_BUCKETS]
    fill = ints[sym, I_BUCKET_FILL]
    signed = ints[sym, I_BUCKET_SIGNED]
    take = min(size, volume - fill)
    fill += take
    signed += sign * take
    rest = size - take
    if fill == volume:
        _push_bucket(sym, abs(signed), n_buckets, ints, buckets)
        fill = 0
        signed = 0
    if rest > 0:
        whole = rest // volume
        for _ in range(min(whole, n_buckets)):
            _push_bucket(sym, abs(sign) * volume, n_buckets, ints, buckets)
        rest -= whole * volume
        fill = rest
        signed = sign * rest
    ints[sym, I_BUCKET_FILL] = fill
    ints[sym, I_BUCKET_SIGNED] = signed


@njit(cache=True, inline="always")
def _write_features(
    sym: int,
    now: int,
    params: np.ndarray,
    ints: np.ndarray,
    accs: np.ndarray,
    book_ts: np.ndarray,
    book_f: np.ndarray,
    features: np.ndarray,
) -> None:
    """Write every feature of ``sym`` at ``now`` from the state (formulas: module docstring).

    volatility = 100 sqrt(sum r**2 / n); momentum = 100 M(now); weighted_imbalance = area / (now - start);
    price_acceleration = 100 (M(now) - M(start)) / (W / 1e9); vwap = notional / volume; vwap_dev_bps =
    1e4 (mid - vwap) / vwap; trade_flow = signed / volume; toxicity = sum |buy - sell| / (held buckets * V);
    volume_surge = volume / ((W ln2 / H) * decayed volume); book-shape features as the latest book left them.
    """
    window = params[sym, P_WINDOW_NS]
    momentum_sum = accs[sym, A_MOMENTUM]
    volatility = 0.0
    weighted_imbalance = 0.0
    acceleration = 0.0
    head = ints[sym, I_BOOK_HEAD]
    tail = ints[sym, I_BOOK_TAIL]
    if head > tail:
        mask = book_ts.shape[1] - 1
        o = tail & mask
        last = (head - 1) & mask
        n_returns = head - tail - 1
        if n_returns > 0:
            sum_r2 = accs[sym, A_SUM_R2] + accs[sym, A_SUM_R2 + 1]
            volatility = PERCENT * math.sqrt(max(0.0, sum_r2) / n_returns)
        t_o = book_ts[sym, o]
        start = max(now - window, t_o)
        q_last = book_f[sym, last, B_IMBALANCE]
        span = now - start
        if span > 0:
            area = (
                accs[sym, A_IMB_AREA]
                + accs[sym, A_IMB_AREA + 1]
                - book_f[sym, o, B_IMBALANCE] * float(start - t_o)
                + q_last * float(now - book_ts[sym, last])
            )
            weighted_imbalance = area / float(span)
        else:
            weighted_imbalance = q_last
        momentum_start = book_f[sym, o, B_MOMENTUM] * math.exp(-LN2 * float(start - t_o) / float(window))
        acceleration = PERCENT * (momentum_sum - momentum_start) / (float(window) * 1e-9)

    volume = ints[sym, I_VOLUME]
    vwap = 0.0
    vwap_dev = 0.0
    flow = 0.0
    if volume > 0:
        notional = float(ints[sym, I_NOTIONAL_HI]) * TWO_POW_32 + float(ints[sym, I_NOTIONAL_LO])
        vwap = notional / float(volume)
        flow = float(ints[sym, I_SIGNED_VOLUME]) / float(volume)
        mid_x2 = ints[sym, I_MID_X2]
        if mid_x2 > 0 and vwap > 0.0:
            vwap_dev = BPS * (0.5 * float(mid_x2) - vwap) / vwap
    toxicity = 0.0
    held = ints[sym, I_BUCKETS_FULL]
    if held > 0:
        toxicity = float(ints[sym, I_BUCKET_SUM]) / (float(held) * float(params[sym, P_BUCKET_VOLUME]))
    surge = 0.0
    baseline = accs[sym, A_DECAYED_VOLUME] * LN2 * float(window) / float(params[sym, P_SURGE_HALF_LIFE_NS])
    if baseline > 0.0:
        surge = float(volume) / baseline

    features[sym, F_VOLATILITY] = volatility
    features[sym, F_MOMENTUM] = PERCENT * momentum_sum
    features[sym, F_IMBALANCE] = accs[sym, A_IMBALANCE]
    features[sym, F_WEIGHTED_IMBALANCE] = weighted_imbalance
    features[sym, F_SPREAD_BPS] = accs[sym, A_SPREAD_BPS]
    features[sym, F_DEPTH_RATIO] = accs[sym, A_DEPTH_RATIO]
    features[sym, F_BID_PRESSURE] = accs[sym, A_BID_PRESSURE]
    features[sym, F_ASK_PRESSURE] = accs[sym, A_ASK_PRESSURE]
    features[sym, F_VWAP] = vwap
    features[sym, F_VWAP_DEV_BPS] = vwap_dev
    features[sym, F_TRADE_FLOW] = flow
    features[sym, F_TOXICITY] = toxicity
    features[sym, F_PRICE_ACCELERATION] = acceleration
    features[sym, F_VOLUME_SURGE] = surge


@njit(cache=True)
def on_book(
    sym: int,
    book: np.void,  # one BOOK_SNAPSHOT record, e.g. ``snapshot[0]`` after a seqlock read
    params: np.ndarray,
    ints: np.ndarray,
    accs: np.ndarray,
    book_ts: np.ndarray,
    book_f: np.ndarray,
    trades: np.ndarray,
    buckets: np.ndarray,
    features: np.ndarray,
) -> int:
    """Take one book snapshot of ``sym`` at ``book.ts_exch`` and rewrite all its features.

    From this book: imbalance = (bs - as) / (bs + as); depth_ratio = clip(ln(B / A), -10, 10) over the top 10
    levels; bid/ask_pressure = P_side / (P_b + P_a), P_side = sum s_k / (1 + |p_k - touch| / tick). If both
    sides exist (``bid > 0``, ``ask >= bid``): spread_bps = 2e4 (ask - bid) / mid_x2 and a sample with
    r = log1p((mid_x2 - prev) / prev), momentum sum M += r after decaying by 2**(-dt / W). Then every feature
    is rewritten at ``now`` (``_write_features``; formulas in the module docstring).

    Returns ``KERNEL_OK``, ``KERNEL_NO_MID`` (one-sided or crossed book: no sample; spread and mid keep the
    latest two-sided book's values) or ``KERNEL_NOT_CONFIGURED``. One writer per symbol row; allocation-free.
    """
    if params[sym, P_WINDOW_NS] <= 0:
        return KERNEL_NOT_CONFIGURED
    now = _advance(sym, book.ts_exch, params, ints, accs, book_ts, book_f, trades)

    bid = book.bid_price
    ask = book.ask_price
    touch_total = book.bid_size + book.ask_size
    imbalance = float(book.bid_size - book.ask_size) / float(touch_total) if touch_total > 0 else 0.0
    tick = float(params[sym, P_TICK_SIZE])
    depth_bid = 0
    pressure_bid = 0.0
    for k in range(min(book.n_bid_levels, TOP_LEVELS)):
        size = book.bid_sizes[k]
        depth_bid += size
        pressure_bid += float(size) / (1.0 + abs(float(bid - book.bid_prices[k])) / tick)
    depth_ask = 0
    pressure_ask = 0.0
    for k in range(min(book.n_ask_levels, TOP_LEVELS)):
        size = book.ask_sizes[k]
        depth_ask += size
        pressure_ask += float(size) / (1.0 + abs(float(book.ask_prices[k] - ask)) / tick)
    if depth_bid > 0 and depth_ask > 0:
        depth_ratio = min(DEPTH_RATIO_CAP, max(-DEPTH_RATIO_CAP, math.log(float(depth_bid) / float(depth_ask))))
    elif depth_bid > 0:
        depth_ratio = DEPTH_RATIO_CAP
    elif depth_ask > 0:
        depth_ratio = -DEPTH_RATIO_CAP
    else:
        depth_ratio = 0.0
    pressure_total = pressure_bid + pressure_ask
    accs[sym, A_IMBALANCE] = imbalance
    accs[sym, A_DEPTH_RATIO] = depth_ratio
    accs[sym, A_BID_PRESSURE] = pressure_bid / pressure_total if pressure_total > 0.0 else 0.0
    accs[sym, A_ASK_PRESSURE] = pressure_ask / pressure_total if pressure_total > 0.0 else 0.0

    status = KERNEL_NO_MID
    if bid > 0 and ask >= bid:
        status = KERNEL_OK
        mid_x2 = bid + ask
        accs[sym, A_SPREAD_BPS] = 2.0 * BPS * float(ask - bid) / float(mid_x2)
        previous = ints[sym, I_MID_X2]
        r = math.log1p(float(mid_x2 - previous) / float(previous)) if previous > 0 else 0.0
        ints[sym, I_MID_X2] = mid_x2
        momentum_sum = accs[sym, A_MOMENTUM] + r
        accs[sym, A_MOMENTUM] = momentum_sum
        mask = book_ts.shape[1] - 1
        head = ints[sym, I_BOOK_HEAD]
        if head > ints[sym, I_BOOK_TAIL]:
            last = (head - 1) & mask
            _add_compensated(accs, sym, A_SUM_R2, r * r)
            _add_compensated(accs, sym, A_IMB_AREA, book_f[sym, last, B_IMBALANCE] * float(now - book_ts[sym, last]))
        if head - ints[sym, I_BOOK_TAIL] >= book_ts.shape[1]:
            _evict_sample(sym, ints, accs, book_ts, book_f)
            ints[sym, I_BOOK_DROPS] += 1
        k = head & mask
        book_ts[sym, k] = now
        book_f[sym, k, B_RETURN] = r
        book_f[sym, k, B_IMBALANCE] = imbalance
        book_f[sym, k, B_MOMENTUM] = momentum_sum
        ints[sym, I_BOOK_HEAD] = head + 1
    _write_features(sym, now, params, ints, accs, book_ts, book_f, features)
    return status


@njit(cache=True)
def on_trade(
    sym: int,
    ts_ns: int,
    price: int,
    size: int,
    side: int,
    params: np.ndarray,
    ints: np.ndarray,
    accs: np.ndarray,
    book_ts: np.ndarray,
    book_f: np.ndarray,
    trades: np.ndarray,
    buckets: np.ndarray,
    features: np.ndarray,
) -> int:
    """Record one trade of ``sym`` (an ``EV_TRADE``: ts_exch, price, size, aggressor side) and rewrite all features.

    The trade enters the window sums (volume += size, signed += sign(side) size, notional += price size, exactly),
    the long-run baseline (decayed volume = decayed volume * 2**(-dt / H) + size) and the VPIN buckets of V
    (split across boundaries; |buy - sell| / V per bucket, mean of the last K). Then every feature is rewritten at
    ``now``: vwap = notional / volume, vwap_dev_bps = 1e4 (mid - vwap) / vwap, trade_flow = signed / volume,
    toxicity, volume_surge = volume / ((W ln2 / H) * decayed volume), and the book features decayed and evicted
    to ``now`` (formulas in the module docstring). ``price * size`` must fit in int64.

    Returns ``KERNEL_OK``, ``KERNEL_NO_VOLUME`` (size <= 0: not recorded, the clock still advances) or
    ``KERNEL_NOT_CONFIGURED``. A side other than +1/-1 counts as volume without direction. One writer per symbol
    row; allocation-free; at most K bucket pushes for a trade larger than K * V.
    """
    if params[sym, P_WINDOW_NS] <= 0:
        return KERNEL_NOT_CONFIGURED
    now = _advance(sym, ts_ns, params, ints, accs, book_ts, book_f, trades)
    status = KERNEL_NO_VOLUME
    if size > 0:
        status = KERNEL_OK
        sign = 1 if side > 0 else (-1 if side < 0 else 0)
        mask = trades.shape[1] - 1
        head = ints[sym, I_TRADE_HEAD]
        if head - ints[sym, I_TRADE_TAIL] >= trades.shape[1]:
            _evict_trade(sym, ints, trades)
            ints[sym, I_TRADE_DROPS] += 1
        k = head & mask
        trades[sym, k, T_TS] = now
        trades[sym, k, T_PRICE] = price
        trades[sym, k, T_SIZE] = size
        trades[sym, k, T_SIDE] = sign
        ints[sym, I_TRADE_HEAD] = head + 1
        notional = price * size
        ints[sym, I_VOLUME] += size
        ints[sym, I_SIGNED_VOLUME] += sign * size
        ints[sym, I_NOTIONAL_HI] += notional >> 32
        ints[sym, I_NOTIONAL_LO] += notional & LOW_32
        accs[sym, A_DECAYED_VOLUME] += float(size)
        _fill_buckets(sym, size, sign, params, ints, buckets)
    _write_features(sym, now, params, ints, accs, book_ts, book_f, features)
    return status
