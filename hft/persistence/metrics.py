"""Performance figures of a run, as pure numpy functions over arrays (no SQLite, no processes).

One implementation serves both the persistence process (its periodic ``performance_metrics`` rows) and
``hft report``, so the two can never disagree on a definition.

Conventions: equity is PnL in the quote currency, starting from 0 when the run starts flat (no capital is
assumed, so there are no returns in percent); timestamps are ``int64`` nanoseconds (``ts_exch``); arrays
are in time order (the caller sorts).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

SECONDS_PER_YEAR = 365.0 * 24 * 3600  # crypto venues trade every day of the year
# A standard deviation this small relative to the increments is float rounding of equal steps, not risk.
_FLAT_STD = 1e-12


class Performance(msgspec.Struct, frozen=True, kw_only=True):
    """One run's performance; money in the quote currency, ``realized_pnl`` already net of ``fees``."""

    total_pnl: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float
    sharpe: float | None
    max_drawdown: float
    win_rate: float | None
    avg_trade_pnl: float | None
    trade_count: int


def _as_curve(values: np.ndarray, name: str) -> np.ndarray:
    curve = np.asarray(values, dtype=np.float64)
    if curve.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {curve.shape}")
    return curve


def drawdown_series(equity: np.ndarray, start_at_zero: bool = True) -> np.ndarray:
    """Return how far each point lies below the running peak (>= 0).

    With ``start_at_zero`` the peak starts at 0, the equity of a flat run before its first sample: a run
    that only ever loses is in drawdown from its first sample on.
    """
    curve = _as_curve(equity, "equity")
    peak = np.maximum.accumulate(curve) if curve.size else curve
    if start_at_zero:
        peak = np.maximum(peak, 0.0)
    return peak - curve


def max_drawdown(equity: np.ndarray, start_at_zero: bool = True) -> float:
    """Return the largest peak-to-trough fall of the equity curve (0 when empty or never falling)."""
    drawdown = drawdown_series(equity, start_at_zero)
    return float(drawdown.max()) if drawdown.size else 0.0


def sharpe(equity: np.ndarray, ts_ns: np.ndarray) -> float | None:
    """Return the annualized Sharpe ratio of the equity curve's PnL increments, or None when undefined.

    Definition: ``d = diff(equity)`` are the PnL increments between consecutive samples; the ratio is
    ``mean(d) / std(d, ddof=1) * sqrt(SECONDS_PER_YEAR / median sample interval in s)``. It uses money, not
    returns (no capital is assumed), and no risk-free rate (paper money earns nothing). The scaling assumes
    roughly regular samples, as the periodic metrics rows are; over fill times it is only indicative.

    None with fewer than 3 samples (fewer than 2 increments), a zero spread of increments (a straight line
    has no risk to divide by) or a non-positive median interval.
    """
    curve = _as_curve(equity, "equity")
    times = np.asarray(ts_ns, dtype=np.int64)
    if times.shape != curve.shape:
        raise ValueError(f"equity {curve.shape} and ts_ns {times.shape} must have the same shape")
    if curve.size < 3:
        return None
    increments = np.diff(curve)
    spread = float(np.std(increments, ddof=1))
    if not math.isfinite(spread) or spread <= _FLAT_STD * float(np.abs(increments).max()):
        return None
    interval_s = float(np.median(np.diff(times))) / 1e9
    if interval_s <= 0.0:
        return None
    return float(np.mean(increments)) / spread * math.sqrt(SECONDS_PER_YEAR / interval_s)


def trade_stats(closing_pnls: np.ndarray) -> tuple[float | None, float | None, int]:
    """Return ``(win_rate, avg_trade_pnl, trade_count)`` over closing fills (None, None, 0 without any).

    A trade is a fill that reduced, closed or flipped a position (``trades.closed > 0``); its PnL is net of
    its fee, so a round trip closed at the entry price counts as a loss. Opening fills are left out by the
    caller: they realize nothing but their fee and would drag the win rate towards 0.
    """
    pnls = _as_curve(closing_pnls, "closing_pnls")
    if pnls.size == 0:
        return None, None, 0
    return float(np.mean(pnls > 0.0)), float(np.mean(pnls)), int(pnls.size)


def performance(
    equity: np.ndarray,
    ts_ns: np.ndarray,
    closing_pnls: np.ndarray,
    realized: float,
    unrealized: float,
    fees: float,
) -> Performance:
    """Combine a run's equity curve, closing fills and totals into one ``Performance``.

    ``total_pnl = realized + unrealized``: fees are reported but not subtracted again, the realized PnL of
    every fill is already net of its fee.
    """
    win_rate, avg_trade_pnl, trade_count = trade_stats(closing_pnls)
    return Performance(
        total_pnl=float(realized) + float(unrealized),
        realized_pnl=float(realized),
        unrealized_pnl=float(unrealized),
        fees=float(fees),
        sharpe=sharpe(equity, ts_ns),
        max_drawdown=max_drawdown(equity),
        win_rate=win_rate,
        avg_trade_pnl=avg_trade_pnl,
        trade_count=trade_count,
    )
