"""The sorted-array L2 book against a plain dict model, plus its snapshot record."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hft.feed.book import (
    ASK_ROW,
    BID_ROW,
    BOOK_ERR_ORDER,
    BOOK_ERR_PRICE,
    BOOK_ERR_SIDE,
    BOOK_ERR_SIZE,
    BOOK_NOOP,
    BOOK_OK,
    BOOK_TRUNCATED,
    book_best_ask,
    book_best_bid,
    book_check,
    book_clear,
    book_fill_snapshot,
    book_is_crossed,
    book_levels_best_first,
    book_load,
    book_set_level,
    new_book,
)
from shm_layout.records import BOOK_SNAPSHOT, BOOK_SYNCED, MD_EVENT, SIDE_BUY, SIDE_SELL, TOP_LEVELS


class DictBook:
    """The obvious model: a dict per side; a full side keeps its best ``capacity`` levels, like the real one."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sides: dict[int, dict[int, int]] = {SIDE_BUY: {}, SIDE_SELL: {}}

    def better(self, side: int, a: int, b: int) -> bool:
        return a > b if side == SIDE_BUY else a < b

    def set(self, side: int, price: int, size: int) -> int:
        levels = self.sides[side]
        if price in levels:
            if size == 0:
                del levels[price]
            else:
                levels[price] = size
            return BOOK_OK
        if size == 0:
            return BOOK_NOOP
        if len(levels) >= self.capacity:
            worst = min(levels) if side == SIDE_BUY else max(levels)
            if not self.better(side, price, worst):
                return BOOK_TRUNCATED
            del levels[worst]
            levels[price] = size
            return BOOK_TRUNCATED
        levels[price] = size
        return BOOK_OK

    def sorted(self, side: int) -> list[tuple[int, int]]:
        return sorted(self.sides[side].items(), reverse=(side == SIDE_BUY))


def book_levels(prices: np.ndarray, sizes: np.ndarray, counts: np.ndarray, row: int) -> list[tuple[int, int]]:
    """The levels of ``row``, best first (the book holds them best last)."""
    px, sz = book_levels_best_first(prices, sizes, counts, SIDE_BUY if row == BID_ROW else SIDE_SELL)
    return list(zip(px.tolist(), sz.tolist(), strict=True))


updates = st.lists(
    st.tuples(st.sampled_from([SIDE_BUY, SIDE_SELL]), st.integers(1, 40), st.integers(0, 3)),
    max_size=300,
)


@settings(max_examples=150, deadline=None, database=None)
@given(ops=updates, capacity=st.sampled_from([1, 2, 5, 16, 64]))
def test_random_updates_then_book_matches_dict_model(ops: list[tuple[int, int, int]], capacity: int) -> None:
    prices, sizes, counts = new_book(capacity)
    model = DictBook(capacity)
    for side, price, size in ops:
        assert book_set_level(prices, sizes, counts, side, price, size) == model.set(side, price, size)
        assert book_check(prices, sizes, counts) == BOOK_OK
    assert book_levels(prices, sizes, counts, BID_ROW) == model.sorted(SIDE_BUY)
    assert book_levels(prices, sizes, counts, ASK_ROW) == model.sorted(SIDE_SELL)
    for side, best in ((SIDE_BUY, book_best_bid), (SIDE_SELL, book_best_ask)):
        expected = model.sorted(side)
        status, price, size = best(prices, sizes, counts)
        if expected:
            assert (status, price, size) == (BOOK_OK, *expected[0])
        else:
            assert (status, price, size) == (BOOK_NOOP, 0, 0)


@settings(max_examples=60, deadline=None, database=None)
@given(ops=updates)
def test_updates_on_a_strided_view_then_same_book_as_contiguous(ops: list[tuple[int, int, int]]) -> None:
    contiguous = new_book(8)
    wide_px = np.zeros((2, 16), dtype=np.int64)
    wide_sz = np.zeros((2, 16), dtype=np.int64)
    strided = (wide_px[:, ::2], wide_sz[:, ::2], np.zeros(2, dtype=np.int64))
    for side, price, size in ops:
        assert book_set_level(*contiguous, side, price, size) == book_set_level(*strided, side, price, size)
    for row in (BID_ROW, ASK_ROW):
        assert book_levels(*contiguous, row) == book_levels(*strided, row)


def test_invalid_level_then_error_status_and_book_unchanged() -> None:
    prices, sizes, counts = new_book(4)
    assert book_set_level(prices, sizes, counts, SIDE_BUY, 100, 1) == BOOK_OK
    assert book_set_level(prices, sizes, counts, 0, 100, 1) == BOOK_ERR_SIDE
    assert book_set_level(prices, sizes, counts, SIDE_BUY, 0, 1) == BOOK_ERR_PRICE
    assert book_set_level(prices, sizes, counts, SIDE_BUY, -5, 1) == BOOK_ERR_PRICE
    assert book_set_level(prices, sizes, counts, SIDE_SELL, 100, -1) == BOOK_ERR_SIZE
    assert book_levels(prices, sizes, counts, BID_ROW) == [(100, 1)]
    assert counts[ASK_ROW] == 0


def test_bid_at_or_above_ask_then_crossed() -> None:
    prices, sizes, counts = new_book(4)
    assert not book_is_crossed(prices, counts)
    book_set_level(prices, sizes, counts, SIDE_BUY, 100, 1)
    assert not book_is_crossed(prices, counts)  # one side only
    book_set_level(prices, sizes, counts, SIDE_SELL, 101, 1)
    assert not book_is_crossed(prices, counts)
    book_set_level(prices, sizes, counts, SIDE_BUY, 101, 1)
    assert book_is_crossed(prices, counts)  # locked counts as crossed
    book_set_level(prices, sizes, counts, SIDE_BUY, 101, 0)
    book_set_level(prices, sizes, counts, SIDE_SELL, 99, 2)
    assert book_is_crossed(prices, counts)
    assert book_clear(prices, sizes, counts) == BOOK_OK
    assert counts.tolist() == [0, 0]
    assert not book_is_crossed(prices, counts)


def test_fill_snapshot_then_top_levels_and_derived_fields() -> None:
    prices, sizes, counts = new_book(32)
    for k in range(12):
        book_set_level(prices, sizes, counts, SIDE_BUY, 1000 - k, 10 + k)
        book_set_level(prices, sizes, counts, SIDE_SELL, 1002 + 2 * k, 30 + k)
    snaps = np.zeros(3, dtype=BOOK_SNAPSHOT)
    snaps["seq"] = 77  # owned by the publisher: must survive
    snaps["ts_init"] = 55
    status = book_fill_snapshot(prices, sizes, counts, snaps, 1, 7, 123, 456, 789, BOOK_SYNCED)
    assert status == BOOK_OK
    s = snaps[1]
    assert s["seq"] == 77 and s["ts_init"] == 55
    assert (s["symbol_id"], s["update_id"], s["ts_exch"], s["ts_recv"], s["status"]) == (7, 123, 456, 789, BOOK_SYNCED)
    assert (s["bid_price"], s["bid_size"], s["ask_price"], s["ask_size"]) == (1000, 10, 1002, 30)
    assert s["mid_x2"] == 2002 and s["spread"] == 2
    assert s["imbalance"] == pytest.approx((10 - 30) / 40)
    assert (s["n_bid_levels"], s["n_ask_levels"]) == (12, 12)
    assert s["bid_prices"].tolist() == [1000 - k for k in range(TOP_LEVELS)]
    assert s["bid_sizes"].tolist() == [10 + k for k in range(TOP_LEVELS)]
    assert s["ask_prices"].tolist() == [1002 + 2 * k for k in range(TOP_LEVELS)]
    assert s["ask_sizes"].tolist() == [30 + k for k in range(TOP_LEVELS)]
    assert snaps[0]["update_id"] == 0 and snaps[2]["update_id"] == 0  # neighbours untouched


def test_fill_snapshot_with_one_side_empty_then_zeros_not_garbage() -> None:
    prices, sizes, counts = new_book(8)
    book_set_level(prices, sizes, counts, SIDE_BUY, 500, 4)
    book_set_level(prices, sizes, counts, SIDE_BUY, 499, 2)
    snaps = np.zeros(1, dtype=BOOK_SNAPSHOT)
    snaps["ask_prices"] = 9  # stale content from an earlier fill
    book_fill_snapshot(prices, sizes, counts, snaps, 0, 0, 1, 0, 0, BOOK_SYNCED)
    s = snaps[0]
    assert (s["bid_price"], s["ask_price"], s["ask_size"], s["mid_x2"], s["spread"]) == (500, 0, 0, 0, 0)
    assert s["imbalance"] == 1.0
    assert s["bid_prices"].tolist()[:3] == [500, 499, 0]
    assert s["ask_prices"].tolist() == [0] * TOP_LEVELS
    book_clear(prices, sizes, counts)
    book_fill_snapshot(prices, sizes, counts, snaps, 0, 0, 2, 0, 0, BOOK_SYNCED)
    assert snaps[0]["imbalance"] == 0.0 and snaps[0]["n_bid_levels"] == 0


def test_full_side_then_keeps_best_levels_and_reports_truncation() -> None:
    prices, sizes, counts = new_book(3)
    for p in (100, 99, 98):
        assert book_set_level(prices, sizes, counts, SIDE_BUY, p, 1) == BOOK_OK
    assert book_set_level(prices, sizes, counts, SIDE_BUY, 97, 1) == BOOK_TRUNCATED  # worse: dropped
    assert book_set_level(prices, sizes, counts, SIDE_BUY, 101, 5) == BOOK_TRUNCATED  # better: evicts 98
    assert book_levels(prices, sizes, counts, BID_ROW) == [(101, 5), (100, 1), (99, 1)]
    assert book_set_level(prices, sizes, counts, SIDE_BUY, 100, 0) == BOOK_OK
    assert book_set_level(prices, sizes, counts, SIDE_BUY, 97, 2) == BOOK_OK  # room again
    assert book_levels(prices, sizes, counts, BID_ROW) == [(101, 5), (99, 1), (97, 2)]


def test_book_then_held_best_last_and_copied_out_best_first() -> None:
    prices, sizes, counts = new_book(8)
    for p in (100, 102, 101):
        book_set_level(prices, sizes, counts, SIDE_BUY, p, p - 90)
        book_set_level(prices, sizes, counts, SIDE_SELL, p + 10, p - 80)
    assert prices[BID_ROW, :3].tolist() == [100, 101, 102]  # internal: best (highest bid) last
    assert prices[ASK_ROW, :3].tolist() == [112, 111, 110]  # internal: best (lowest ask) last
    bid_px, bid_sz = book_levels_best_first(prices, sizes, counts, SIDE_BUY)
    ask_px, ask_sz = book_levels_best_first(prices, sizes, counts, SIDE_SELL)
    assert (bid_px.tolist(), bid_sz.tolist()) == ([102, 101, 100], [12, 11, 10])
    assert (ask_px.tolist(), ask_sz.tolist()) == ([110, 111, 112], [20, 21, 22])
    assert book_best_bid(prices, sizes, counts) == (BOOK_OK, 102, 12)
    assert book_best_ask(prices, sizes, counts) == (BOOK_OK, 110, 20)
    prices[BID_ROW, :3] = [102, 101, 100]  # best first is now a broken invariant
    assert book_check(prices, sizes, counts) == BOOK_ERR_ORDER


def _levels(pairs: list[tuple[int, int]]) -> np.ndarray:
    out = np.zeros(len(pairs), dtype=MD_EVENT)
    out["price"] = [p for p, _ in pairs]
    out["size"] = [s for _, s in pairs]
    return out


snapshot_levels = st.lists(st.tuples(st.integers(-1, 60), st.integers(-1, 3)), max_size=80)


@settings(max_examples=200, deadline=None, database=None)
@given(
    pairs=snapshot_levels,
    side=st.sampled_from([SIDE_BUY, SIDE_SELL]),
    capacity=st.sampled_from([1, 3, 8, 64]),
    order=st.sampled_from(["as drawn", "best first", "best first then drawn"]),
    start_empty=st.booleans(),
)
def test_load_levels_then_same_book_and_truncations_as_one_set_level_each(
    pairs: list[tuple[int, int]], side: int, capacity: int, order: str, start_empty: bool
) -> None:
    if order != "as drawn":
        best_first = sorted({p: s for p, s in pairs}.items(), reverse=(side == SIDE_BUY))
        pairs = best_first + (pairs if order == "best first then drawn" else [])
    loaded = new_book(capacity)
    stepped = new_book(capacity)
    if not start_empty:
        for book in (loaded, stepped):
            book_set_level(*book, side, 30, 1)
    levels = _levels([(0, 0), *pairs, (0, 0)])  # the slice must leave the neighbours alone
    truncated = book_load(*loaded, side, levels, 1, len(levels) - 1)
    expected = sum(book_set_level(*stepped, side, p, s) == BOOK_TRUNCATED for p, s in pairs)
    assert truncated == expected
    assert book_check(*loaded) == BOOK_OK
    for row in (BID_ROW, ASK_ROW):
        assert book_levels(*loaded, row) == book_levels(*stepped, row)


def test_load_more_best_first_levels_than_capacity_then_best_kept_and_rest_counted() -> None:
    prices, sizes, counts = new_book(5000)
    bids = _levels([(100_000 - k, 1 + k) for k in range(6000)])
    assert book_load(prices, sizes, counts, SIDE_BUY, bids, 0, 6000) == 1000  # the 1000 worst do not fit
    assert counts[BID_ROW] == 5000 and book_check(prices, sizes, counts) == BOOK_OK
    assert book_best_bid(prices, sizes, counts) == (BOOK_OK, 100_000, 1)
    assert prices[BID_ROW, 0] == 100_000 - 4999  # worst kept level first: reversed once, not shifted per level
    assert book_load(prices, sizes, counts, 0, bids, 0, 1) == BOOK_ERR_SIDE
