"""The Binance local-order-book procedure on crafted sequences of diffs and snapshots."""

from __future__ import annotations

import numpy as np

from hft.feed.engine import (
    SNAP_CROSSED,
    SNAP_IGNORED,
    SNAP_MALFORMED,
    SNAP_STALE,
    SNAP_UNKNOWN_SYMBOL,
    STAT_BAD_LEVEL,
    STAT_BAD_NUMBER,
    STAT_BUFFER_OVERFLOW,
    STAT_BUFFERED,
    STAT_CROSSED,
    STAT_DROPPED_STALE,
    STAT_GAPS,
    STAT_RESYNCS,
    STAT_SNAPSHOTS_APPLIED,
    STAT_SNAPSHOTS_IGNORED,
    STAT_SNAPSHOTS_STALE,
    STAT_TRUNCATED,
    FeedEngine,
)
from shm_layout.records import (
    BOOK_EMPTY,
    BOOK_RESYNCING,
    BOOK_SYNCED,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
    FLAG_LAST_IN_FRAME,
    FLAG_SNAPSHOT,
    SIDE_BUY,
    SIDE_SELL,
)

from ._frames import BASE_ASKS, BASE_BIDS, BTC, ETH, depth, levels_of, snapshot, synced_engine


def test_diffs_before_snapshot_then_buffered_and_snapshot_requested() -> None:
    engine = FeedEngine([BTC, ETH])
    assert engine.needs_snapshot() == []  # nothing heard yet: a snapshot now could predate the stream
    assert engine.on_frame(depth(100, 102, [("100.00", "1")]), 10) == 0
    assert engine.on_frame(depth(103, 104, asks=[("101.00", "1")]), 11) == 0
    assert engine.needs_snapshot() == ["BTCUSDT"]
    assert engine.stats[STAT_BUFFERED] == 2
    assert engine.status("BTCUSDT") == BOOK_EMPTY
    assert engine.dirty.tolist() == [0, 0, 0, 0]


def test_snapshot_older_than_first_buffered_diff_then_discarded_and_requested_again() -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 102, [("100.00", "1")]), 10)
    assert engine.on_snapshot("BTCUSDT", snapshot(99, BASE_BIDS, BASE_ASKS), 11) == SNAP_STALE
    assert engine.stats[STAT_SNAPSHOTS_STALE] == 1
    assert engine.needs_snapshot() == ["BTCUSDT"]
    assert engine.status("BTCUSDT") == BOOK_EMPTY
    assert levels_of(engine) == ([], [])
    # the refetched snapshot is recent enough
    assert engine.on_snapshot("BTCUSDT", snapshot(101, BASE_BIDS, BASE_ASKS), 12) > 0
    assert engine.status("BTCUSDT") == BOOK_SYNCED
    assert engine.update_id("BTCUSDT") == 102
    assert engine.needs_snapshot() == []


def test_buffered_diffs_covered_by_snapshot_then_dropped_and_rest_applied() -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 102, [("100.00", "9.0")]), 10)  # u <= lastUpdateId: must be dropped
    engine.on_frame(depth(103, 105, [("99.50", "4.0")], [("101.00", "0")]), 11)  # bridges 104
    engine.on_frame(depth(106, 108, asks=[("102.00", "7.25")], event_ms=5), 12)
    n = engine.on_snapshot("BTCUSDT", snapshot(104, BASE_BIDS, BASE_ASKS), 13)

    ev = engine.events[:n]
    assert engine.stats[STAT_DROPPED_STALE] == 1
    assert engine.stats[STAT_SNAPSHOTS_APPLIED] == 1
    assert engine.update_id("BTCUSDT") == 108
    bids, asks = levels_of(engine)
    assert bids == [(10000, 100000000), (9950, 400000000), (9900, 200000000), (9800, 300000000)]
    assert asks == [(10200, 725000000), (10300, 350000000)]
    # RESET, the snapshot's 6 levels, then the 3 levels of the two applied diffs
    assert n == 1 + 6 + 3
    assert ev["kind"].tolist() == [EV_BOOK_RESET] + [EV_BOOK_LEVEL] * 9
    assert ev["update_id"].tolist() == [104] * 7 + [105, 105, 108]
    assert (ev["flags"][1:7] & FLAG_SNAPSHOT).all() and not (ev["flags"][7:] & FLAG_SNAPSHOT).any()
    assert ev["flags"].tolist().count(FLAG_LAST_IN_FRAME) == 1 and ev["flags"][-1] & FLAG_LAST_IN_FRAME
    assert ev["side"][1:7].tolist() == [SIDE_BUY] * 3 + [SIDE_SELL] * 3
    assert ev["ts_recv"].tolist() == [13] * 7 + [11, 11, 12]
    assert ev["ts_exch"][-1] == 5 * 1_000_000
    assert (ev["symbol_id"] == BTC.symbol_id).all() and (ev["ts_init"] == 0).all()
    snap = engine.snapshots[BTC.symbol_id]
    assert (snap["status"], snap["update_id"], snap["bid_price"], snap["ask_price"]) == (BOOK_SYNCED, 108, 10000, 10200)
    assert engine.dirty[BTC.symbol_id] == 1


def test_first_diff_not_bridging_snapshot_then_gap_and_resync_counted() -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 102), 10)
    assert engine.on_snapshot("BTCUSDT", snapshot(110, BASE_BIDS, BASE_ASKS), 11) > 0  # all buffered are stale
    assert engine.status("BTCUSDT") == BOOK_SYNCED
    assert engine.on_frame(depth(112, 115, [("100.00", "5")]), 12) == 1  # needs U <= 111
    assert engine.events[0]["kind"] == EV_BOOK_RESET
    assert engine.events[0]["flags"] == FLAG_LAST_IN_FRAME
    assert engine.stats[STAT_GAPS] == 1 and engine.stats[STAT_RESYNCS] == 1
    assert engine.status("BTCUSDT") == BOOK_RESYNCING
    assert engine.snapshots[0]["status"] == BOOK_RESYNCING and engine.snapshots[0]["n_bid_levels"] == 0
    assert engine.needs_snapshot() == ["BTCUSDT"]  # the diff that showed the gap starts the new buffer
    assert engine.on_snapshot("BTCUSDT", snapshot(113, BASE_BIDS, BASE_ASKS), 13) > 0
    assert engine.update_id("BTCUSDT") == 115
    assert levels_of(engine)[0][0] == (10000, 500000000)


def test_overlapping_first_diff_then_applied() -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 102), 10)
    engine.on_snapshot("BTCUSDT", snapshot(110, BASE_BIDS, BASE_ASKS), 11)
    assert engine.on_frame(depth(105, 115, [("100.00", "5")]), 12) == 1  # U <= 111 <= u
    assert engine.update_id("BTCUSDT") == 115
    assert engine.events[0]["flags"] == FLAG_LAST_IN_FRAME


def test_gap_between_live_diffs_then_book_thrown_away() -> None:
    engine = synced_engine(1000)
    assert engine.on_frame(depth(1001, 1003, [("100.00", "2")]), 20) == 1
    assert engine.on_frame(depth(1005, 1006, [("100.00", "3")]), 21) == 1  # 1004 missing
    assert engine.events[0]["kind"] == EV_BOOK_RESET and engine.events[0]["update_id"] == 1003
    assert engine.stats[STAT_GAPS] == 1 and engine.stats[STAT_RESYNCS] == 1
    assert levels_of(engine) == ([], [])
    assert engine.on_frame(depth(1007, 1008), 22) == 0  # buffered now
    assert engine.needs_snapshot() == ["BTCUSDT"]


def test_overlapping_live_diff_after_bridge_then_gap() -> None:
    engine = synced_engine(1000)
    engine.on_frame(depth(1001, 1003), 20)
    assert engine.on_frame(depth(1002, 1005), 21) == 1  # U must be exactly 1004
    assert engine.stats[STAT_GAPS] == 1


def test_stale_duplicate_diff_then_dropped_without_resync() -> None:
    engine = synced_engine(1000)
    frame = depth(1001, 1003, [("100.00", "2")])
    assert engine.on_frame(frame, 20) == 1
    assert engine.on_frame(frame, 21) == 0
    assert engine.stats[STAT_DROPPED_STALE] == 1 + 1  # plus the one buffered before the snapshot
    assert engine.stats[STAT_RESYNCS] == 0
    assert engine.status("BTCUSDT") == BOOK_SYNCED


def test_gap_while_buffering_then_older_diffs_dropped() -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 102, [("100.00", "1")]), 10)
    engine.on_frame(depth(105, 107, [("100.00", "2")]), 11)
    assert engine.stats[STAT_GAPS] == 1
    assert engine.on_snapshot("BTCUSDT", snapshot(103, BASE_BIDS, BASE_ASKS), 12) == SNAP_STALE  # 103 < 105
    assert engine.on_snapshot("BTCUSDT", snapshot(106, BASE_BIDS, BASE_ASKS), 13) > 0
    assert levels_of(engine)[0][0] == (10000, 200000000)


def test_update_crossing_the_book_then_crossed_counted_and_resync() -> None:
    engine = synced_engine(1000)
    assert engine.on_frame(depth(1001, 1001, [("101.50", "1")]), 20) == 1  # bid above best ask 101
    assert engine.events[0]["kind"] == EV_BOOK_RESET
    assert engine.stats[STAT_CROSSED] == 1 and engine.stats[STAT_RESYNCS] == 1
    assert engine.status("BTCUSDT") == BOOK_RESYNCING
    assert engine.needs_snapshot() == []  # the suspect diff is not buffered; the next one will be
    engine.on_frame(depth(1002, 1002), 21)
    assert engine.needs_snapshot() == ["BTCUSDT"]


def test_bad_number_in_synced_diff_then_counted_and_resync() -> None:
    engine = synced_engine(1000)
    assert engine.on_frame(depth(1001, 1001, [("100.001", "1")]), 20) == 1  # 3 decimals, symbol has 2
    assert engine.stats[STAT_BAD_NUMBER] == 1 and engine.stats[STAT_RESYNCS] == 1
    assert engine.status("BTCUSDT") == BOOK_RESYNCING


def test_non_positive_price_or_negative_size_then_bad_level_counted() -> None:
    engine = synced_engine(1000)
    assert engine.on_frame(depth(1001, 1001, asks=[("101.00", "-1")]), 20) == 1
    assert engine.stats[STAT_BAD_LEVEL] == 1
    engine = synced_engine(1000)
    assert engine.on_frame(depth(1001, 1001, [("0.00", "1")]), 20) == 1
    assert engine.stats[STAT_BAD_LEVEL] == 1
    assert engine.stats[STAT_RESYNCS] == 1


def test_snapshot_for_synced_book_then_ignored() -> None:
    engine = synced_engine(1000)
    engine.dirty[:] = 0
    assert engine.on_snapshot("BTCUSDT", snapshot(2000, [("1.00", "1")], []), 30) == SNAP_IGNORED
    assert engine.stats[STAT_SNAPSHOTS_IGNORED] == 1
    assert engine.update_id("BTCUSDT") == 1000
    assert engine.dirty[0] == 0


def test_crossed_or_malformed_snapshot_then_rejected_and_still_needed() -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 102), 10)
    assert engine.on_snapshot("BTCUSDT", snapshot(101, [("101.00", "1")], [("100.00", "1")]), 11) == SNAP_CROSSED
    assert engine.on_snapshot("BTCUSDT", b'{"lastUpdateId":101,"bids":[', 12) == SNAP_MALFORMED
    assert engine.on_snapshot("BTCUSDT", b'{"lastUpdateId":101,"bids":[["1","2","3"]],"asks":[]}', 12) < 0
    assert engine.on_snapshot("DOGEUSDT", snapshot(101, BASE_BIDS, BASE_ASKS), 13) == SNAP_UNKNOWN_SYMBOL
    assert engine.status("BTCUSDT") == BOOK_EMPTY
    assert engine.needs_snapshot() == ["BTCUSDT"]
    assert levels_of(engine) == ([], [])
    assert engine.on_snapshot("BTCUSDT", snapshot(101, BASE_BIDS, BASE_ASKS), 14) > 0


def test_full_diff_buffer_then_oldest_dropped_and_counted() -> None:
    engine = FeedEngine([BTC], max_buffered_diffs=2, max_buffered_levels=3)
    engine.on_frame(depth(100, 100, [("100.00", "1")]), 10)
    engine.on_frame(depth(101, 101, [("100.00", "2")]), 11)
    engine.on_frame(depth(102, 102, [("100.00", "3"), ("99.00", "1")]), 12)  # needs 2 of 3 level slots
    assert engine.stats[STAT_BUFFER_OVERFLOW] == 1  # only the oldest had to go
    assert engine.on_snapshot("BTCUSDT", snapshot(100, BASE_BIDS, BASE_ASKS), 13) == SNAP_STALE
    assert engine.on_snapshot("BTCUSDT", snapshot(101, BASE_BIDS, BASE_ASKS), 14) > 0
    assert levels_of(engine)[0][:2] == [(10000, 300000000), (9900, 100000000)]


def test_snapshot_deeper_than_capacity_then_best_levels_kept_and_published() -> None:
    engine = FeedEngine([BTC], depth_capacity=2)
    engine.on_frame(depth(100, 100), 10)
    n = engine.on_snapshot("BTCUSDT", snapshot(100, BASE_BIDS, BASE_ASKS), 11)
    assert n == 1 + 2 + 2
    assert engine.stats[STAT_TRUNCATED] == 2
    assert engine.events["price"][1:n].tolist() == [10000, 9900, 10100, 10200]


def test_disconnect_then_books_reset_and_snapshot_needed_after_next_diff() -> None:
    engine = synced_engine(1000)
    assert engine.on_disconnect(50) == 1
    assert engine.events[0]["kind"] == EV_BOOK_RESET and engine.events[0]["flags"] == FLAG_LAST_IN_FRAME
    assert engine.status("BTCUSDT") == BOOK_RESYNCING
    assert engine.needs_snapshot() == []
    engine.on_frame(depth(5000, 5001), 51)
    assert engine.needs_snapshot() == ["BTCUSDT"]


def test_two_symbols_then_independent_books_and_sparse_ids() -> None:
    engine = FeedEngine([BTC, ETH])
    engine.on_frame(depth(10, 11, symbol="ETHUSDT"), 1)
    engine.on_frame(depth(500, 501), 2)
    assert sorted(engine.needs_snapshot()) == ["BTCUSDT", "ETHUSDT"]
    assert engine.on_snapshot("ethusdt", snapshot(11, [("2000.00", "1")], [("2001.00", "1")]), 3) > 0
    assert engine.status("ETHUSDT") == BOOK_SYNCED and engine.status("BTCUSDT") == BOOK_EMPTY
    assert engine.snapshots.shape == (4,)
    assert engine.snapshots[3]["bid_price"] == 200000 and engine.snapshots[3]["symbol_id"] == 3
    assert np.flatnonzero(engine.dirty).tolist() == [3]
    assert engine.on_frame(depth(12, 12, [("2000.50", "1")], symbol="ETHUSDT"), 4) == 1
    assert engine.events[0]["symbol_id"] == 3
