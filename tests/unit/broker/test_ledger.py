"""Positions, PnL and fees, fill by fill, against a brute-force ledger in exact fractions.

The account keeps the entry notional in integers and rounds the entry cost of a partial reduction down; the
ledger below keeps it exact. The difference ``d = entry (account) - entry (ledger)`` is what the rounding left
in the open position, and everything else follows exactly from it:

* ``0 <= d < partial reductions since the position opened`` (and 0 when flat);
* realized (account) = realized (ledger) - fees + sign(position) * d: a round trip is exact to the unit;
* unrealized (account, marked to mid) = floor(unrealized (ledger) - sign(position) * d), so the total PnL,
  realized + unrealized, is the exact one rounded down once.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_FEES, K_POSITION, K_REALIZED, N_ACCOUNT, apply_fill, unrealized
from shm_layout.records import (
    EXEC_FIRST,
    LIQUIDITY_TAKER,
    ORDER_MARKET,
    REASON_FOK_UNFILLABLE,
    REASON_IOC_REMAINDER,
    REASON_NO_LIQUIDITY,
    REASON_NO_MARKET,
    REASON_NONE,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCELLED,
    STATUS_FILLED,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    TIF_FOK,
    TIF_GTC,
)
from tests.unit.broker.test_matching import Sim


def fee_of(notional: int, rate_x100: int) -> int:
    """The fee of a fill, from its definition: |rate| in hundredths of a bp, rounded toward zero, signed."""
    fee = notional * abs(rate_x100) // 1_000_000
    return fee if rate_x100 >= 0 else -fee


class Ledger:
    """Average-cost position keeping in exact fractions."""

    def __init__(self) -> None:
        self.position = 0
        self.entry = Fraction(0)  # |position| * average entry price
        self.realized = Fraction(0)  # before fees
        self.fees = 0
        self.partials = 0  # reductions that left a position open since it opened (each may round)

    def fill(self, quantity: int, price: int) -> tuple[Fraction, int]:
        """Book a fill (signed quantity) without its fee; return (realized change, size closed)."""
        if self.position == 0 or (self.position > 0) == (quantity > 0):
            if self.position == 0:
                self.partials = 0
            self.position += quantity
            self.entry += abs(quantity) * price
            return Fraction(0), 0
        held = abs(self.position)
        closed = min(abs(quantity), held)
        direction = 1 if self.position > 0 else -1
        average = self.entry / held
        pnl = direction * closed * (price - average)
        self.realized += pnl
        remainder = abs(quantity) - closed
        if remainder:  # flip: a new position at this price
            self.position = remainder if quantity > 0 else -remainder
            self.entry = Fraction(remainder * price)
            self.partials = 0
        else:
            self.position += quantity
            self.entry -= average * closed
            self.partials = self.partials + 1 if self.position else 0
        return pnl, closed

    def unrealized(self, mid_x2: int) -> Fraction:
        if self.position == 0:
            return Fraction(0)
        direction = 1 if self.position > 0 else -1
        return direction * (abs(self.position) * Fraction(mid_x2, 2) - self.entry)


def assert_matches(account: np.ndarray, ledger: Ledger, mid_x2: int) -> None:
    position = int(account[0, K_POSITION])
    assert position == ledger.position
    assert account[0, K_FEES] == ledger.fees
    rounding = int(account[0, K_ENTRY_NOTIONAL]) - ledger.entry
    assert rounding >= 0 and (rounding < ledger.partials or rounding == 0)
    direction = (position > 0) - (position < 0)
    assert account[0, K_REALIZED] == ledger.realized - ledger.fees + direction * rounding
    marked = unrealized(account, 0, mid_x2)
    assert marked == math.floor(ledger.unrealized(mid_x2) - direction * rounding)
    # total PnL: exact, rounded down once
    assert account[0, K_REALIZED] + marked == math.floor(ledger.realized - ledger.fees + ledger.unrealized(mid_x2))


def check_fills(fills: list[tuple[int, int]], fee: int, marks: list[int]) -> None:
    account = np.zeros((1, N_ACCOUNT), np.int64)
    ledger = Ledger()
    for (quantity, price), mid_x2 in zip(fills, marks, strict=False):
        realized_before = int(account[0, K_REALIZED])
        partials_before = ledger.partials
        got_fee, got_pnl, got_closed = apply_fill(account, 0, quantity, price, fee)
        want_pnl, want_closed = ledger.fill(quantity, price)
        ledger.fees += fee_of(abs(quantity) * price, fee)
        assert got_fee == fee_of(abs(quantity) * price, fee)
        assert got_closed == want_closed
        assert got_pnl == account[0, K_REALIZED] - realized_before
        # a reduction moves the rounding left in the position by less than one unit, a close realizes all of it
        assert abs(got_pnl + got_fee - want_pnl) < partials_before + 1
        assert_matches(account, ledger, mid_x2)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1000, 1000).filter(bool), st.integers(1, 100_000)), min_size=1, max_size=40),
    st.sampled_from([-250, 0, 100, 250, 1_000]),
    st.lists(st.integers(2, 200_000), min_size=40, max_size=40),
)
def test_fills_when_random_then_position_pnl_fees_and_marks_match_the_exact_ledger(
    fills: list[tuple[int, int]], fee: int, marks: list[int]
) -> None:
    check_fills(fills, fee, marks)


@settings(max_examples=200, deadline=None)
@given(
    # BTCUSDT at 2 price / 8 size decimals: up to 10 BTC per fill at 50,000-70,000
    st.lists(st.tuples(st.integers(-10**9, 10**9).filter(bool), st.integers(5_000_000, 7_000_000)), min_size=1,
             max_size=30),
    st.sampled_from([-100, 0, 100, 450]),
    st.lists(st.integers(10_000_000, 14_000_000), min_size=30, max_size=30),
)
def test_fills_when_real_magnitudes_then_no_overflow_and_ledger_matches(
    fills: list[tuple[int, int]], fee: int, marks: list[int]
) -> None:
    check_fills(fills, fee, marks)


# ------------------------------------------------------------------------------------------------ via the simulator

levels = st.dictionaries(st.integers(0, 30), st.integers(1, 400), max_size=5)
steps = st.lists(
    st.tuples(levels, levels, st.sampled_from([SIDE_BUY, SIDE_SELL]), st.integers(1, 1_500), st.booleans()),
    min_size=1, max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(steps, st.sampled_from([0, 100, 1_000]))
def test_market_orders_when_random_books_then_reports_and_account_match_the_exact_ledger(
    steps: list[tuple[dict[int, int], dict[int, int], int, int, bool]], taker: int
) -> None:
    sim = Sim(taker=taker, n_symbols=1)
    ledger = Ledger()
    for bid_offsets, ask_offsets, side, size, fok in steps:
        bids = sorted(((10_000 - k, s) for k, s in bid_offsets.items()), reverse=True)  # best first
        asks = sorted((10_001 + k, s) for k, s in ask_offsets.items())
        sim.book(bids, asks)
        mid_x2 = bids[0][0] + asks[0][0] if bids and asks else 0
        realized_before = int(sim.account[0, K_REALIZED])
        order_id = sim.send(side, size, ORDER_MARKET, tif=TIF_FOK if fok else TIF_GTC)
        reports = sim.arrive()
        opposite = asks if side == SIDE_BUY else bids
        visible = sum(s for _, s in opposite)
        assert all(int(r["order_id"]) == order_id for r in reports)
        assert reports[0]["flags"] == EXEC_FIRST and all(r["flags"] == 0 for r in reports[1:])
        if not bids and not asks:
            assert [(r["status"], r["reason"]) for r in reports] == [(STATUS_REJECTED, REASON_NO_MARKET)]
        elif not opposite:
            assert [(r["status"], r["reason"]) for r in reports] == [(STATUS_REJECTED, REASON_NO_LIQUIDITY)]
        elif fok and visible < size:
            assert [(r["status"], r["reason"]) for r in reports] == [(STATUS_REJECTED, REASON_FOK_UNFILLABLE)]
        else:
            left, notional, closed = size, 0, 0
            for price, available in opposite:  # the walk, level by level, best first
                quantity = min(left, available)
                if quantity == 0:
                    break
                closed += ledger.fill(side * quantity, price)[1]
                notional += quantity * price
                left -= quantity
            filled = size - left
            fee = fee_of(notional, taker)
            ledger.fees += fee
            fill = reports[0]
            assert fill["status"] == (STATUS_FILLED if left == 0 else STATUS_PARTIALLY_FILLED)
            assert fill["reason"] == REASON_NONE and fill["liquidity"] == LIQUIDITY_TAKER
            assert fill["size"] == filled and fill["cum_filled"] == filled and fill["leaves"] == left
            assert fill["cum_notional"] == notional
            assert fill["price"] == math.floor(Fraction(notional, filled) + Fraction(1, 2))  # half up
            assert fill["fee"] == fee and fill["closed"] == closed
            assert fill["fill_pnl"] == sim.account[0, K_REALIZED] - realized_before
            assert fill["position"] == ledger.position and fill["mid_x2"] == mid_x2
            assert fill["realized_pnl"] == sim.account[0, K_REALIZED]
            assert fill["entry_notional"] == sim.account[0, K_ENTRY_NOTIONAL]
            if left:
                (cancel,) = reports[1:]
                assert (cancel["status"], cancel["reason"]) == (STATUS_CANCELLED, REASON_IOC_REMAINDER)
                assert cancel["cum_filled"] == filled and cancel["leaves"] == 0 and cancel["size"] == 0
            else:
                assert len(reports) == 1
        assert_matches(sim.account, ledger, mid_x2 if mid_x2 else 20_001)
