"""Position and PnL accounting against a brute-force ledger of every fill (exact integers)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_FEES, K_POSITION, K_REALIZED, N_ACCOUNT, apply_fill


def ledger(fills: list[tuple[int, int]], fee_bps_x100: int) -> tuple[int, Fraction, Fraction, int]:
    """FIFO-free average-cost ledger in exact fractions: (position, realized before fees, entry, fees)."""
    position = 0
    entry = Fraction(0)  # |position| * average entry
    realized = Fraction(0)
    fees = 0
    for quantity, price in fills:
        fees += abs(quantity) * price * fee_bps_x100 // 1_000_000
        if position == 0 or (position > 0) == (quantity > 0):
            position += quantity
            entry += abs(quantity) * price
            continue
        closed = min(abs(quantity), abs(position))
        average = entry / abs(position)
        realized += (1 if position > 0 else -1) * closed * (price - average)
        entry -= average * closed
        remainder = abs(quantity) - closed
        position += (1 if quantity > 0 else -1) * closed
        if remainder:
            position = remainder if quantity > 0 else -remainder
            entry = Fraction(remainder * price)
    return position, realized, entry, fees


def test_long_then_close_at_higher_price_then_profit_minus_fees() -> None:
    account = np.zeros((1, N_ACCOUNT), np.int64)
    apply_fill(account, 0, 50_000, 6_000_000, 100)  # buy 0.5 @ 60000.00, 1 bp
    apply_fill(account, 0, -50_000, 6_010_000, 100)  # sell 0.5 @ 60100.00
    assert account[0, K_POSITION] == 0
    assert account[0, K_ENTRY_NOTIONAL] == 0
    fees = 50_000 * 6_000_000 // 10_000 + 50_000 * 6_010_000 // 10_000
    assert account[0, K_FEES] == fees
    assert account[0, K_REALIZED] == 50_000 * 10_000 - fees


def test_short_then_flip_long_then_realized_on_the_short_and_new_entry_at_fill() -> None:
    account = np.zeros((1, N_ACCOUNT), np.int64)
    apply_fill(account, 0, -5, 100, 0)
    apply_fill(account, 0, 8, 90, 0)  # closes 5 short at 90 (profit 50), opens 3 long at 90
    assert account[0, K_REALIZED] == 50
    assert account[0, K_POSITION] == 3
    assert account[0, K_ENTRY_NOTIONAL] == 270


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-1000, 1000).filter(lambda q: q != 0), st.integers(1, 100_000)), min_size=1,
        max_size=40,
    ),
    st.sampled_from([0, 100, 250]),
)
def test_fills_when_random_then_match_brute_force_ledger(fills: list[tuple[int, int]], fee: int) -> None:
    account = np.zeros((1, N_ACCOUNT), np.int64)
    for quantity, price in fills:
        apply_fill(account, 0, quantity, price, fee)
    position, realized, entry, fees = ledger(fills, fee)
    assert account[0, K_POSITION] == position
    assert account[0, K_FEES] == fees
    # integer division of entry cost leaves at most one money unit of rounding per reducing fill
    tolerance = len(fills)
    assert abs(account[0, K_REALIZED] - (realized - fees)) <= tolerance
    assert abs(account[0, K_ENTRY_NOTIONAL] - entry) <= tolerance
    if position == 0:
        # a flat book has no rounding left anywhere: realized is exact to the unit sum of roundings
        assert account[0, K_ENTRY_NOTIONAL] == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-10**9, 10**9).filter(lambda q: q != 0), st.integers(5_000_000, 7_000_000)),
        min_size=1, max_size=30,
    ),
)
def test_fills_when_real_magnitudes_then_no_overflow_and_match_ledger(fills: list[tuple[int, int]]) -> None:
    # BTCUSDT at 2 price / 8 size decimals: up to 10 BTC per fill at 50,000-70,000
    account = np.zeros((1, N_ACCOUNT), np.int64)
    for quantity, price in fills:
        apply_fill(account, 0, quantity, price, 100)
    position, realized, entry, fees = ledger(fills, 100)
    assert account[0, K_POSITION] == position
    assert account[0, K_FEES] == fees
    assert abs(account[0, K_REALIZED] - (realized - fees)) <= len(fills)
    assert abs(account[0, K_ENTRY_NOTIONAL] - entry) <= len(fills)


def test_close_short_when_half_btc_at_60k_then_realized_is_the_price_difference() -> None:
    account = np.zeros((1, N_ACCOUNT), np.int64)
    apply_fill(account, 0, -50_000_000, 6_183_000, 0)  # sell 0.5 BTC at 61,830.00
    apply_fill(account, 0, 50_000_000, 6_182_401, 0)  # buy it back at 61,824.01
    assert account[0, K_REALIZED] == 50_000_000 * 599  # +2.995 USDT
    assert account[0, K_POSITION] == 0 and account[0, K_ENTRY_NOTIONAL] == 0
