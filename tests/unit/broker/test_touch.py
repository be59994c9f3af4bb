"""Matching at the bookTicker touch: a ticker is a newer view of the top level only, superseded by the diff that
covers its id (``hft.broker.matching``).

The book below is the stale depth book (diffs up to update id 5); the tickers are newer (ids 10 and up) and
show the touch where it really is. Every number is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from hft.broker.matching import (
    O_LEVEL_SEEN,
    ST_BBO_REFUSED,
    ST_BBO_TAKEN,
    ST_N_RESTING,
    T_ACTIVE,
    T_ASK,
    T_BID,
    T_BOOK_U,
    effective_best,
    load_levels_from_snapshot,
)
from shm_layout.records import (
    BOOK_SNAPSHOT,
    EV_BBO,
    EV_BOOK_RESET,
    EXEC_FIRST,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    ORDER_FOK,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_FOK_UNFILLABLE,
    REASON_NONE,
    REASON_POST_ONLY_WOULD_CROSS,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
)
from tests.unit.broker.test_matching import Sim, check

STALE_BIDS = [(10_000, 3), (9_998, 4), (9_995, 10)]
STALE_ASKS = [(10_005, 3), (10_006, 4), (10_008, 10)]
BOOK_U = 5
# the ticker: the touch moved inside the stale spread
BID, BID_SIZE, ASK, ASK_SIZE, U = 10_002, 7, 10_004, 5, 10


def _sim(**kw: float) -> Sim:
    sim = Sim(n_symbols=1, **kw)
    sim.book(STALE_BIDS, STALE_ASKS)
    sim.touch[0, T_BOOK_U] = BOOK_U  # the diffs the stale book was built from
    return sim


@pytest.fixture
def sim() -> Sim:
    s = _sim()
    assert s.ticker(BID, BID_SIZE, ASK, ASK_SIZE, U).size == 0
    assert s.touch[0, T_ACTIVE] == 1 and s.state[ST_BBO_TAKEN] == 1
    return s


# ------------------------------------------------------------------------------------------------ arriving orders


@pytest.mark.parametrize(
    ("side", "price", "ahead"),
    [
        (SIDE_BUY, BID, BID_SIZE),  # at the ticker's bid, above the stale book's best bid: behind its size
        (SIDE_BUY, BID + 1, 0),  # strictly inside the ticker's spread: first in a new level
        (SIDE_BUY, 10_001, 0),  # the stale book has nobody there either, and the ticker says so
        (SIDE_BUY, 10_000, 3),  # below the ticker's bid: the book's level
        (SIDE_SELL, ASK, ASK_SIZE),
        (SIDE_SELL, 10_006, 4),
    ],
)
def test_post_only_when_priced_at_or_inside_the_ticker_touch_then_rests_behind_the_ticker_queue(
    sim: Sim, side: int, price: int, ahead: int
) -> None:
    order_id = sim.send(side, 2, ORDER_POST_ONLY, price)
    (ack,) = sim.arrive()
    check(ack, order_id=order_id, status=STATUS_NEW, reason=REASON_NONE, flags=EXEC_FIRST, mid_x2=BID + ASK)
    assert sim.queue_ahead(order_id) == ahead
    assert sim.table[sim.row(order_id), O_LEVEL_SEEN] == ahead


@pytest.mark.parametrize(("side", "price"), [(SIDE_BUY, ASK), (SIDE_SELL, BID), (SIDE_SELL, BID - 1)])
@pytest.mark.parametrize("with_ticker", [True, False])
def test_post_only_when_at_the_ticker_opposite_touch_then_rejected_although_the_stale_book_would_let_it_rest(
    side: int, price: int, with_ticker: bool
) -> None:
    sim = _sim()
    if with_ticker:
        sim.ticker(BID, BID_SIZE, ASK, ASK_SIZE, U)
    sim.send(side, 1, ORDER_POST_ONLY, price)
    (report,) = sim.arrive()
    if with_ticker:
        check(report, status=STATUS_REJECTED, reason=REASON_POST_ONLY_WOULD_CROSS)
    else:  # the stale book: best bid 10,000 and best ask 10,005, so these prices rest
        check(report, status=STATUS_NEW, reason=REASON_NONE)


@pytest.mark.parametrize(
    ("side", "size", "fills", "average"),
    [
        # the ticker's ask first, then the book's asks strictly above it (10,005 10,006 10,008)
        (SIDE_BUY, 10, [(ASK, 5), (10_005, 3), (10_006, 2)], 10_005),  # 100,047 / 10 = 10,004.7
        (SIDE_BUY, 4, [(ASK, 4)], ASK),
        # the ticker's bid first, then the book's bids strictly below it (10,000 9,998 9,995)
        (SIDE_SELL, 12, [(BID, 7), (10_000, 3), (9_998, 2)], 10_001),  # 120,010 / 12 = 10,000.83
    ],
)
def test_market_when_ticker_active_then_walks_its_level_first_then_the_book_beyond_it(
    sim: Sim, side: int, size: int, fills: list[tuple[int, int]], average: int
) -> None:
    order_id = sim.send(side, size, ORDER_MARKET)
    (report,) = sim.arrive()
    notional = sum(price * quantity for price, quantity in fills)
    check(report, order_id=order_id, status=STATUS_FILLED, size=size, price=average, cum_filled=size,
          cum_notional=notional, leaves=0, liquidity=LIQUIDITY_TAKER, position=side * size, entry_notional=notional,
          mid_x2=BID + ASK)
    # no market impact: neither the overlay nor the book was consumed
    assert effective_best(sim.bk.ref, 0, -side) == ((ASK, ASK_SIZE) if side == SIDE_BUY else (BID, BID_SIZE))


def test_market_when_stale_book_has_a_better_level_than_the_ticker_then_the_walk_skips_it() -> None:
    sim = _sim()
    sim.book(STALE_BIDS, [(10_003, 2), *STALE_ASKS])  # 10,003: gone, says the newer ticker
    sim.ticker(BID, BID_SIZE, ASK, ASK_SIZE, U)
    sim.send(SIDE_BUY, 7, ORDER_MARKET)
    (report,) = sim.arrive()
    check(report, status=STATUS_FILLED, cum_notional=5 * ASK + 2 * 10_005)


@pytest.mark.parametrize(("size", "status", "reason"), [(8, STATUS_FILLED, REASON_NONE),
                                                        (9, STATUS_REJECTED, REASON_FOK_UNFILLABLE)])
def test_fok_when_ticker_active_then_the_effective_book_decides(sim: Sim, size: int, status: int,
                                                                reason: int) -> None:
    sim.send(SIDE_BUY, size, ORDER_FOK, 10_005)  # 5 at the ticker's ask + 3 at 10,005
    (report,) = sim.arrive()
    check(report, status=status, reason=reason, cum_filled=size if status == STATUS_FILLED else 0)


def test_market_when_book_side_empty_but_ticker_active_then_fills_at_the_ticker() -> None:
    sim = Sim(n_symbols=1)
    sim.book(STALE_BIDS, [])
    sim.ticker(BID, BID_SIZE, ASK, ASK_SIZE, U)
    sim.send(SIDE_BUY, 6, ORDER_MARKET)
    fill, remainder = sim.arrive()  # 5 offered: not NO_LIQUIDITY, an IOC remainder
    check(fill, status=STATUS_PARTIALLY_FILLED, size=5, price=ASK)
    check(remainder, leaves=0, cum_filled=5)


# ------------------------------------------------------------------------------------------------ resting orders


@pytest.mark.parametrize(("ask", "fills"), [(BID, True), (BID - 1, True), (BID + 1, False)])
def test_resting_bid_when_a_ticker_ask_reaches_it_then_filled_in_full_as_maker(sim: Sim, ask: int,
                                                                               fills: bool) -> None:
    order_id = sim.send(SIDE_BUY, 4, ORDER_POST_ONLY, BID)
    sim.arrive()
    reports = sim.ticker(ask - 2, 3, ask, 9, U + 1)
    if not fills:
        assert reports.size == 0 and sim.state[ST_BBO_TAKEN] == 2
        return
    (report,) = reports
    check(report, order_id=order_id, status=STATUS_FILLED, size=4, price=BID, leaves=0,
          liquidity=LIQUIDITY_MAKER, position=4, mid_x2=2 * ask - 2)


def test_resting_ask_when_a_ticker_bid_reaches_it_then_filled_in_full_as_maker(sim: Sim) -> None:
    order_id = sim.send(SIDE_SELL, 2, ORDER_LIMIT, ASK)
    sim.arrive()
    (report,) = sim.ticker(ASK, 1, ASK + 2, 1, U + 1)
    check(report, order_id=order_id, status=STATUS_FILLED, size=2, price=ASK, liquidity=LIQUIDITY_MAKER)


def test_resting_bid_when_a_hidden_stale_diff_offers_at_its_price_then_not_filled(sim: Sim) -> None:
    order_id = sim.send(SIDE_BUY, 4, ORDER_POST_ONLY, BID)
    sim.arrive()
    # an older diff (id 8 < the ticker's 10) still shows an ask at our price: the ticker is the newer news
    assert sim.level(SIDE_SELL, BID, 2, u=8).size == 0
    assert sim.touch[0, T_ACTIVE] == 1 and sim.state[ST_N_RESTING] == 1
    assert sim.queue_ahead(order_id) == BID_SIZE


@pytest.mark.parametrize("cancel_share", [1.0, 0.5])
@pytest.mark.parametrize("traded", [0, 3])
def test_queue_when_a_decrease_is_seen_in_a_ticker_then_in_the_covering_diff_then_it_moves_the_queue_once(
    cancel_share: float, traded: int
) -> None:
    sim = _sim(cancel_share=cancel_share)
    sim.book([(10_000, 10), (9_998, 4)], STALE_ASKS)
    order_id = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 10_000)
    sim.arrive()
    assert sim.queue_ahead(order_id) == 10
    if traded:
        assert sim.trade(SIDE_SELL, 10_000, traded).size == 0  # 3 of the 10 ahead of us traded
    ahead = 10 - traded
    # the ticker: 10,000 went from 10 to 4, of which the trades explain 3
    sim.ticker(10_000, 4, ASK, ASK_SIZE, U)
    cancelled = 6 - traded
    ahead -= int(cancelled * cancel_share)
    assert sim.queue_ahead(order_id) == min(ahead, 4)
    # an older diff (id 8) still says 7 there: hidden under the ticker, it moves nothing
    sim.level(SIDE_BUY, 10_000, 7, u=8)
    assert sim.queue_ahead(order_id) == min(ahead, 4)
    # the diff covering the ticker (id 12) says 4: the same decrease, already counted
    sim.level(SIDE_BUY, 10_000, 4, u=12)
    assert sim.touch[0, T_ACTIVE] == 0
    assert sim.queue_ahead(order_id) == min(ahead, 4)
    # a new decrease, seen first in a diff, still counts
    sim.level(SIDE_BUY, 10_000, 2, u=13)
    assert sim.queue_ahead(order_id) == min(ahead - int(2 * cancel_share), 2)


def test_queue_when_the_ticker_bid_drops_below_our_bid_then_nobody_is_ahead_of_us() -> None:
    sim = _sim(cancel_share=0.0)
    order_id = sim.send(SIDE_BUY, 2, ORDER_LIMIT, 10_000)
    sim.arrive()
    assert sim.queue_ahead(order_id) == 3
    sim.ticker(9_999, 5, ASK, ASK_SIZE, U)  # the level at 10,000 is gone: what was ahead of us left
    assert sim.queue_ahead(order_id) == 0
    (report,) = sim.trade(SIDE_SELL, 10_000, 1)
    check(report, order_id=order_id, status=STATUS_PARTIALLY_FILLED, size=1, price=10_000)


def test_queue_when_book_resets_and_the_snapshot_shows_a_smaller_level_then_the_difference_counts() -> None:
    sim = _sim(cancel_share=1.0)
    order_id = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_998)
    sim.arrive()
    assert sim.queue_ahead(order_id) == 4
    sim.event(EV_BOOK_RESET, u=30)
    assert sim.queue_ahead(order_id) == 4  # a reset is lost track, not an empty level
    sim.level(SIDE_BUY, 10_000, 3, u=30)
    sim.level(SIDE_BUY, 9_998, 1, u=30)  # the snapshot: 3 of the 4 left while we were resyncing
    assert sim.queue_ahead(order_id) == 1


# ------------------------------------------------------------------------------------------------ the overlay's life


@pytest.mark.parametrize(("u", "active"), [(U - 1, True), (U, False), (U + 7, False)])
def test_diff_when_its_id_covers_the_ticker_then_the_book_touch_is_used_again(sim: Sim, u: int,
                                                                               active: bool) -> None:
    sim.level(SIDE_BUY, 9_990, 1, u=u)  # any level of the diff: its final id is what covers
    assert sim.touch[0, T_ACTIVE] == (1 if active else 0)
    sim.send(SIDE_BUY, 1, ORDER_POST_ONLY, ASK)
    (report,) = sim.arrive()
    if active:
        check(report, status=STATUS_REJECTED, reason=REASON_POST_ONLY_WOULD_CROSS, mid_x2=BID + ASK)
    else:  # the stale book's ask 10,005 again
        check(report, status=STATUS_NEW, mid_x2=10_000 + 10_005)


@pytest.mark.parametrize("u", [BOOK_U - 1, BOOK_U])
def test_ticker_when_its_id_is_covered_by_the_book_then_ignored_and_not_counted(u: int) -> None:
    sim = _sim()
    assert sim.ticker(BID, BID_SIZE, ASK, ASK_SIZE, u).size == 0
    assert sim.touch[0, T_ACTIVE] == 0
    assert sim.state[ST_BBO_TAKEN] == 0 and sim.state[ST_BBO_REFUSED] == 0
    assert effective_best(sim.bk.ref, 0, SIDE_SELL) == (10_005, 3)


@pytest.mark.parametrize(
    ("bid", "bid_size", "ask", "ask_size"),
    [
        (10_004, 1, 10_004, 1),  # locked
        (10_005, 1, 10_004, 1),  # crossed
        (0, 0, 10_004, 1),  # an empty side
        (10_002, 0, 10_004, 1),
        (10_002, 1, -1, 1),
    ],
)
def test_ticker_when_crossed_locked_or_empty_then_ignored_and_counted(sim: Sim, bid: int, bid_size: int,
                                                                      ask: int, ask_size: int) -> None:
    sim.ticker(bid, bid_size, ask, ask_size, U + 1)
    assert sim.state[ST_BBO_REFUSED] == 1 and sim.state[ST_BBO_TAKEN] == 1
    # the previous ticker is still the touch
    assert (sim.touch[0, T_BID], sim.touch[0, T_ASK], sim.touch[0, T_ACTIVE]) == (BID, ASK, 1)


def test_ticker_when_a_record_comes_without_its_pair_then_ignored_and_counted() -> None:
    sim = _sim()
    sim.event(EV_BBO, SIDE_BUY, BID, BID_SIZE, u=U)
    sim.event(EV_BBO, SIDE_SELL, ASK, ASK_SIZE, u=U + 1)  # another ticker's ask
    sim.event(EV_BBO, SIDE_SELL, ASK, ASK_SIZE, u=U + 1)  # no bid at all
    sim.event(EV_BBO, SIDE_BUY, BID, BID_SIZE, u=U + 2)  # a bid whose ask never comes ...
    sim.event(EV_BBO, SIDE_BUY, BID, BID_SIZE, u=U + 3)  # ... is counted when the next bid replaces it
    sim.event(EV_BBO, 0, BID, BID_SIZE, u=U + 3)  # neither side: it and the bid it follows, counted once
    assert sim.state[ST_BBO_REFUSED] == 4 and sim.touch[0, T_ACTIVE] == 0 and sim.state[ST_BBO_TAKEN] == 0


def test_book_reset_when_overlay_active_then_it_ends_with_the_book(sim: Sim) -> None:
    sim.event(EV_BOOK_RESET, u=U + 5)
    assert sim.touch[0, T_ACTIVE] == 0 and sim.touch[0, T_BOOK_U] == U + 5
    assert effective_best(sim.bk.ref, 0, SIDE_BUY) == (0, 0)
    sim.ticker(BID, BID_SIZE, ASK, ASK_SIZE, U + 3)  # older than the snapshot the reset starts
    assert sim.touch[0, T_ACTIVE] == 0


def test_rebuild_from_snapshot_when_overlay_active_then_it_ends_and_the_snapshot_id_is_the_book_id(sim: Sim) -> None:
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    snapshot["update_id"], snapshot["n_bid_levels"], snapshot["n_ask_levels"] = 40, 1, 1
    snapshot["bid_prices"][0, 0], snapshot["bid_sizes"][0, 0] = 10_001, 2
    snapshot["ask_prices"][0, 0], snapshot["ask_sizes"][0, 0] = 10_003, 2
    load_levels_from_snapshot(sim.bk.ref, snapshot[0], 0)
    assert sim.touch[0, T_ACTIVE] == 0 and sim.touch[0, T_BOOK_U] == 40
    assert effective_best(sim.bk.ref, 0, SIDE_BUY) == (10_001, 2)
    sim.ticker(BID, BID_SIZE, ASK, ASK_SIZE, 40)  # covered by the snapshot
    assert sim.touch[0, T_ACTIVE] == 0
