"""Windowed microstructure features, updated in O(1) amortized time per tick, allocation-free.

Per symbol the kernel keeps the last samples ``(ts_ns, log mid)`` inside ``window_ns`` in a small ring:

* momentum   = log(mid_now) - log(mid_oldest_in_window)          (the window's log return)
* volatility = sqrt( sum(r_i**2) / n )  over the consecutive log returns r_i inside the window
               (realized volatility per tick; the sum is maintained by adding the newest and removing the
               evicted return, clamped at 0 against rounding)

State layout (rows are symbols): ``sample_ts[sym, k]``, ``sample_logmid[sym, k]`` with ``k = seq & (W - 1)``;
``cursor[sym, 0]`` = oldest sample seq, ``cursor[sym, 1]`` = next sample seq; ``accum[sym, 0]`` = sum of r**2,
``accum[sym, 1]`` = number of returns.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

SAMPLE_CAPACITY = 4096  # samples kept per symbol (power of two); older ones drop even if inside the window
A_SUM_R2 = 0
A_N_RETURNS = 1


def make_feature_state(n_symbols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Allocate the per-symbol feature state once (never on the hot path)."""
    return (
        np.zeros((n_symbols, SAMPLE_CAPACITY), np.int64),
        np.zeros((n_symbols, SAMPLE_CAPACITY), np.float64),
        np.zeros((n_symbols, 2), np.int64),
        np.zeros((n_symbols, 2), np.float64),
    )


@njit(cache=True)
def _evict_oldest(symbol: int, sample_logmid: np.ndarray, cursor: np.ndarray, accum: np.ndarray) -> None:
    mask = sample_logmid.shape[1] - 1
    first = cursor[symbol, 0]
    if cursor[symbol, 1] - first >= 2:
        r = sample_logmid[symbol, (first + 1) & mask] - sample_logmid[symbol, first & mask]
        accum[symbol, A_SUM_R2] = max(0.0, accum[symbol, A_SUM_R2] - r * r)
        accum[symbol, A_N_RETURNS] -= 1.0
    cursor[symbol, 0] = first + 1


@njit(cache=True)
def update_window_features(
    symbol: int,
    ts_ns: int,
    log_mid: float,
    window_ns: int,
    sample_ts: np.ndarray,
    sample_logmid: np.ndarray,
    cursor: np.ndarray,
    accum: np.ndarray,
) -> tuple[float, float]:
    """Add one mid sample and return ``(momentum, volatility)`` over the trailing window."""
    mask = sample_ts.shape[1] - 1
    end = cursor[symbol, 1]
    if end > cursor[symbol, 0]:
        r = log_mid - sample_logmid[symbol, (end - 1) & mask]
        accum[symbol, A_SUM_R2] += r * r
        accum[symbol, A_N_RETURNS] += 1.0
    if end - cursor[symbol, 0] >= sample_ts.shape[1]:
        _evict_oldest(symbol, sample_logmid, cursor, accum)
    sample_ts[symbol, end & mask] = ts_ns
    sample_logmid[symbol, end & mask] = log_mid
    cursor[symbol, 1] = end + 1
    while cursor[symbol, 1] - cursor[symbol, 0] > 1 and ts_ns - sample_ts[symbol, cursor[symbol, 0] & mask] > window_ns:
        _evict_oldest(symbol, sample_logmid, cursor, accum)
    momentum = log_mid - sample_logmid[symbol, cursor[symbol, 0] & mask]
    n = accum[symbol, A_N_RETURNS]
    volatility = math.sqrt(accum[symbol, A_SUM_R2] / n) if n > 0.0 else 0.0
    return momentum, volatility
