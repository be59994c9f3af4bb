"""Performance metrics: drawdown, Sharpe and trade stats against brute-force references and their edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hft.persistence.metrics import (
    SECONDS_PER_YEAR,
    drawdown_series,
    max_drawdown,
    performance,
    sharpe,
    trade_stats,
)

money = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
SECOND = 1_000_000_000


def brute_max_drawdown(equity: list[float], start_at_zero: bool) -> float:
    """Try every (peak, trough) pair with the peak no later than the trough: O(n^2)."""
    worst = 0.0
    for j in range(len(equity)):
        if start_at_zero:
            worst = max(worst, 0.0 - equity[j])
        for i in range(j + 1):
            worst = max(worst, equity[i] - equity[j])
    return worst


@given(st.lists(money, max_size=60), st.booleans())
def test_max_drawdown_when_any_curve_then_equals_brute_force(equity: list[float], start_at_zero: bool) -> None:
    expected = brute_max_drawdown(equity, start_at_zero)
    assert max_drawdown(np.array(equity), start_at_zero) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@given(st.lists(money, min_size=1, max_size=60))
def test_drawdown_series_when_any_curve_then_non_negative_and_its_max_is_max_drawdown(equity: list[float]) -> None:
    series = drawdown_series(np.array(equity))
    assert series.shape == (len(equity),)
    assert (series >= 0).all()
    assert series.max() == max_drawdown(np.array(equity))


def test_max_drawdown_when_empty_or_monotone_up_then_zero() -> None:
    assert max_drawdown(np.array([])) == 0.0
    assert max_drawdown(np.array([0.0, 1.0, 1.0, 5.0])) == 0.0


def test_max_drawdown_when_losing_from_the_start_then_peak_is_the_flat_start() -> None:
    assert max_drawdown(np.array([-1.0, -3.0, -2.0])) == 3.0
    assert max_drawdown(np.array([-1.0, -3.0, -2.0]), start_at_zero=False) == 2.0


def test_max_drawdown_when_recovering_above_old_peak_then_worst_fall_kept() -> None:
    assert max_drawdown(np.array([2.0, -1.0, 4.0, 3.0])) == 3.0
    np.testing.assert_array_equal(drawdown_series(np.array([2.0, -1.0, 4.0, 3.0])), [0.0, 3.0, 0.0, 1.0])


def test_sharpe_when_known_increments_then_mean_over_sample_std_annualized_by_interval() -> None:
    equity = np.array([0.0, 1.0, 3.0, 4.0])  # increments 1, 2, 1: mean 4/3, sample std sqrt(1/3)
    ts = np.arange(4) * SECOND
    expected = (4 / 3) / math.sqrt(1 / 3) * math.sqrt(SECONDS_PER_YEAR)
    assert sharpe(equity, ts) == pytest.approx(expected)
    assert sharpe(equity, ts * 4) == pytest.approx(expected / 2)  # 4 s samples: a quarter as many per year
    assert sharpe(-equity, ts) == pytest.approx(-expected)


def test_sharpe_when_intervals_irregular_then_median_interval_scales() -> None:
    equity = np.array([0.0, 1.0, 3.0, 4.0, 4.5])
    ts = np.array([0, 1, 2, 3, 100]) * SECOND  # one long gap does not move the median (1 s)
    assert sharpe(equity, ts) == pytest.approx(sharpe(equity, np.arange(5) * SECOND))


def test_sharpe_when_fewer_than_three_samples_then_none() -> None:
    assert sharpe(np.array([]), np.array([], dtype=np.int64)) is None
    assert sharpe(np.array([1.0, 2.0]), np.array([0, SECOND])) is None


def test_sharpe_when_increments_equal_then_none_even_with_float_rounding() -> None:
    assert sharpe(np.zeros(10), np.arange(10) * SECOND) is None
    assert sharpe(np.cumsum(np.full(50, 0.1)), np.arange(50) * SECOND) is None


def test_sharpe_when_timestamps_do_not_advance_then_none() -> None:
    assert sharpe(np.array([0.0, 1.0, 3.0, 4.0]), np.zeros(4, dtype=np.int64)) is None


def test_sharpe_when_shapes_differ_then_value_error() -> None:
    with pytest.raises(ValueError, match="same shape"):
        sharpe(np.array([0.0, 1.0, 3.0]), np.array([0, 1]))


# money to the micro-unit: the increments of a curve like [4e-158, 0, 0] are subnormal, and scaling them loses
# digits the ratio then shows (hypothesis found it); no equity is sampled finer than a millionth of the quote
@given(st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False).map(lambda v: round(v, 6)), min_size=3,
                max_size=30),
       st.floats(min_value=0.01, max_value=100.0))
def test_sharpe_when_pnl_scaled_then_unchanged(equity: list[float], factor: float) -> None:
    ts = np.arange(len(equity)) * SECOND
    base = sharpe(np.array(equity), ts)
    scaled = sharpe(np.array(equity) * factor, ts)
    if base is not None and scaled is not None:
        assert scaled == pytest.approx(base, rel=1e-6, abs=1e-6)


def test_trade_stats_when_no_closing_fills_then_none_none_zero() -> None:
    assert trade_stats(np.array([])) == (None, None, 0)


def test_trade_stats_when_break_even_then_counted_as_loss() -> None:
    assert trade_stats(np.array([2.0, 0.0, -1.0, 3.0])) == (0.5, 1.0, 4)


@given(st.lists(money, min_size=1, max_size=50))
def test_trade_stats_when_any_pnls_then_equals_plain_python(pnls: list[float]) -> None:
    win_rate, average, count = trade_stats(np.array(pnls))
    assert count == len(pnls)
    assert win_rate == sum(1 for p in pnls if p > 0) / len(pnls)
    assert average == pytest.approx(math.fsum(pnls) / len(pnls), rel=1e-9, abs=1e-6)


def test_performance_when_combined_then_total_is_realized_plus_unrealized_and_fees_not_subtracted_again() -> None:
    equity = np.array([-1.0, -4.0, 2.0, 6.0])
    ts = np.arange(4) * SECOND
    result = performance(equity, ts, np.array([-3.0, 5.0]), realized=2.0, unrealized=4.0, fees=0.5)
    assert (result.total_pnl, result.realized_pnl, result.unrealized_pnl, result.fees) == (6.0, 2.0, 4.0, 0.5)
    assert result.max_drawdown == 4.0
    assert (result.win_rate, result.avg_trade_pnl, result.trade_count) == (0.5, 1.0, 2)
    assert result.sharpe == pytest.approx(sharpe(equity, ts))
