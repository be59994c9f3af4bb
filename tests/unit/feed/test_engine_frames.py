"""on_frame: event encoding of each channel, and bad frames counted by reason without an exception."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hft.feed.engine import (
    N_STATS,
    STAT_BAD_LEVEL,
    STAT_BAD_NUMBER,
    STAT_BBO,
    STAT_DEPTH,
    STAT_FRAMES,
    STAT_HUGE_FRAME,
    STAT_MALFORMED,
    STAT_NAMES,
    STAT_OFF_GRID,
    STAT_TRADES,
    STAT_UNKNOWN_STREAM,
    STAT_UNKNOWN_SYMBOL,
    FeedEngine,
)
from shm_layout.records import (
    BOOK_RESYNCING,
    BOOK_SYNCED,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
    EV_TRADE,
    FLAG_LAST_IN_FRAME,
    SIDE_BUY,
    SIDE_SELL,
)

from ._frames import BTC, book_ticker, depth, mutated_frames, synced_engine, trade


def test_trade_with_buyer_maker_then_sell_aggressor_event() -> None:
    engine = FeedEngine([BTC])
    assert engine.on_frame(trade(42, "61837.63000000", "0.02000000", True, event_ms=1723161255343), 99) == 1
    ev = engine.events[0]
    assert (ev["kind"], ev["side"], ev["price"], ev["size"], ev["update_id"]) == (
        EV_TRADE,
        SIDE_SELL,
        6183763,
        2000000,
        42,
    )
    assert (ev["ts_exch"], ev["ts_recv"], ev["ts_init"], ev["flags"]) == (
        1723161255343 * 1_000_000,
        99,
        0,
        FLAG_LAST_IN_FRAME,
    )
    assert engine.on_frame(trade(43, "61837.64", "1", False), 100) == 1
    assert engine.events[0]["side"] == SIDE_BUY
    assert engine.stats[STAT_TRADES] == 2
    assert engine.dirty[0] == 0  # trades do not touch the book


def test_book_ticker_then_bid_and_ask_bbo_events() -> None:
    engine = FeedEngine([BTC])  # not synced: bookTicker flows anyway
    assert engine.on_frame(book_ticker(7, "61837.63000000", "3.78826000", "61837.64000000", "1.54698000"), 5) == 2
    bid, ask = engine.events[0], engine.events[1]
    assert (bid["kind"], bid["side"], bid["price"], bid["size"], bid["flags"]) == (
        EV_BBO,
        SIDE_BUY,
        6183763,
        378826000,
        0,
    )
    assert (ask["kind"], ask["side"], ask["price"], ask["size"], ask["flags"]) == (
        EV_BBO,
        SIDE_SELL,
        6183764,
        154698000,
        FLAG_LAST_IN_FRAME,
    )
    assert bid["update_id"] == ask["update_id"] == 7
    assert bid["ts_exch"] == 0 and bid["ts_recv"] == 5  # no venue time seen yet on the symbol
    assert engine.stats[STAT_BBO] == 1


def test_book_ticker_when_venue_time_known_then_stamped_with_it_plus_local_time_elapsed() -> None:
    engine = FeedEngine([BTC])
    ms = 1_000_000
    assert engine.on_frame(trade(1, "100.00", "1", False, event_ms=1_000), 50 * ms) == 1
    ticker = book_ticker(8, "100.00", "1", "100.01", "1")
    assert engine.on_frame(ticker, 53 * ms) == 2  # 3 ms after the trade arrived
    assert engine.events["ts_exch"][:2].tolist() == [1_003 * ms] * 2
    engine.on_frame(depth(5, 6, event_ms=1_010), 54 * ms)  # buffered (not synced): its E still counts
    assert engine.on_frame(ticker, 55 * ms) == 2
    assert engine.events["ts_exch"][0] == 1_011 * ms
    # a replay passes the recorded receive time: the stamp follows it, not the machine's clock
    assert engine.on_frame(ticker, 999 * ms, ts_local=56 * ms) == 2
    assert engine.events["ts_exch"][0] == 1_012 * ms
    # a receive clock that steps back never moves a stamp back
    assert engine.on_frame(ticker, 57 * ms, ts_local=40 * ms) == 2
    assert engine.events["ts_exch"][0] == 1_012 * ms


def test_book_ticker_stamps_when_msgspec_path_then_same_as_fast_path() -> None:
    stamps = []
    for fast in (True, False):
        engine = FeedEngine([BTC], fast_path=fast)
        engine.on_frame(trade(1, "100.00", "1", False, event_ms=2_000), 10_000_000)
        engine.on_frame(book_ticker(8, "100.00", "1", "100.01", "1"), 12_500_000)
        stamps.append(int(engine.events["ts_exch"][0]))
    assert stamps == [2_002_500_000, 2_002_500_000]


def test_depth_on_synced_book_then_level_events_and_snapshot_published() -> None:
    engine = synced_engine(1000)
    engine.dirty[:] = 0
    n = engine.on_frame(depth(1001, 1002, [("100.00", "0"), ("99.50", "0.5")], [("101.00", "4")], event_ms=77), 8)
    ev = engine.events[:n]
    assert n == 3
    assert (ev["kind"] == EV_BOOK_LEVEL).all()
    assert ev["side"].tolist() == [SIDE_BUY, SIDE_BUY, SIDE_SELL]
    assert ev["price"].tolist() == [10000, 9950, 10100]
    assert ev["size"].tolist() == [0, 50000000, 400000000]
    assert (ev["update_id"] == 1002).all() and (ev["ts_exch"] == 77_000_000).all()
    assert ev["flags"].tolist() == [0, 0, FLAG_LAST_IN_FRAME]
    snap = engine.snapshots[0]
    assert engine.dirty[0] == 1
    assert (snap["bid_price"], snap["bid_size"], snap["ask_price"], snap["ask_size"]) == (
        9950,
        50000000,
        10100,
        400000000,
    )
    assert (snap["update_id"], snap["ts_exch"], snap["ts_recv"], snap["status"]) == (1002, 77_000_000, 8, BOOK_SYNCED)
    assert snap["mid_x2"] == 9950 + 10100 and snap["spread"] == 150


def sub(frame: bytes, old: bytes, new: bytes) -> bytes:
    """Replace ``old`` (which must be there: a silent no-op would test a good frame) by ``new``."""
    assert old in frame, (old, frame)
    return frame.replace(old, new)


GOOD_DEPTH = depth(1001, 1001, [("100.00", "1")])

BAD_FRAMES = [
    (b"", STAT_MALFORMED),
    (b"not json", STAT_MALFORMED),
    (b"[]", STAT_MALFORMED),
    (b"null", STAT_MALFORMED),
    (GOOD_DEPTH[:-7], STAT_MALFORMED),  # truncated
    (b'{"stream":"btcusdt@depth@100ms"}', STAT_MALFORMED),  # no data
    (b'{"data":{}}', STAT_MALFORMED),  # no stream
    (b'{"lastUpdateId":1,"bids":[],"asks":[]}', STAT_MALFORMED),  # a REST body is not a frame
    (sub(GOOD_DEPTH, b'"U":1001,', b""), STAT_MALFORMED),  # missing U
    (sub(GOOD_DEPTH, b',"a":[]', b""), STAT_MALFORMED),  # missing a
    (sub(GOOD_DEPTH, b'"depthUpdate"', b'"depthUpdat"'), STAT_MALFORMED),
    (sub(GOOD_DEPTH, b'"U":1001', b'"U":"1001"'), STAT_MALFORMED),  # mistyped
    (sub(GOOD_DEPTH, b'"U":1001', b'"U":-1'), STAT_MALFORMED),
    (sub(GOOD_DEPTH, b'"U":1001', b'"U":1002'), STAT_MALFORMED),  # U > u
    (sub(GOOD_DEPTH, b'"E":1000', b'"E":99999999999999999999'), STAT_MALFORMED),  # beyond int64 ns
    (sub(GOOD_DEPTH, b'"u":1001', b'"u":9223372036854775808'), STAT_MALFORMED),
    (sub(GOOD_DEPTH, b'"s":"BTCUSDT"', b'"s":"ETHUSDT"'), STAT_MALFORMED),  # stream/symbol mismatch
    (sub(GOOD_DEPTH, b'["100.00","1"]', b'[100.00,"1"]'), STAT_MALFORMED),  # number, not string
    (sub(GOOD_DEPTH, b'["100.00","1"]', b'["100.00"]'), STAT_MALFORMED),
    (sub(GOOD_DEPTH, b'["100.00","1"]', b'["100.00","1",""]'), STAT_MALFORMED),
    (sub(GOOD_DEPTH, b'["100.00","1"]', b'["1\\u0030\\u0030.00","1"]'), STAT_MALFORMED),  # escapes
    (sub(sub(GOOD_DEPTH, b'"b":[', b'"b":{"x":['), b'"]]', b'"]]}'), STAT_MALFORMED),
    (sub(GOOD_DEPTH, b'"100.00"', b'"NaN"'), STAT_BAD_NUMBER),
    (sub(GOOD_DEPTH, b'"100.00"', b'"1e2"'), STAT_BAD_NUMBER),
    (sub(GOOD_DEPTH, b'"100.00"', b'""'), STAT_BAD_NUMBER),
    (sub(GOOD_DEPTH, b'"100.00"', b'"100.001"'), STAT_BAD_NUMBER),
    (sub(GOOD_DEPTH, b'"100.00"', b'"99999999999999999999"'), STAT_BAD_NUMBER),
    (sub(GOOD_DEPTH, b'"100.00"', b'"-100.00"'), STAT_BAD_LEVEL),
    (sub(GOOD_DEPTH, b'"100.00"', b'"Infinity"'), STAT_BAD_NUMBER),
    (sub(GOOD_DEPTH, b'"1"]', b'"nan"]'), STAT_BAD_NUMBER),  # NaN size
    (sub(GOOD_DEPTH, b'"100.00"', b'"0.00"'), STAT_BAD_LEVEL),  # zero price
    (sub(GOOD_DEPTH, b'"100.00"', b'"-0.00"'), STAT_BAD_LEVEL),
    (sub(GOOD_DEPTH, b'"1"]', b'"-1"]'), STAT_BAD_LEVEL),  # negative size
    (book_ticker(5, "NaN", "1", "2.00", "1"), STAT_BAD_NUMBER),
    (book_ticker(5, "-1.00", "1", "2.00", "1"), STAT_BAD_LEVEL),
    (trade(1, "NaN", "1", False), STAT_BAD_NUMBER),
    (trade(1, "0.00", "1", False), STAT_BAD_LEVEL),  # zero price
    (trade(1, "-1.00", "1", False), STAT_BAD_LEVEL),
    (book_ticker(5, "1.00", "1", "2.00", "x"), STAT_BAD_NUMBER),
    (book_ticker(5, "1.00", "1", "2.00", "-1"), STAT_BAD_LEVEL),
    (sub(book_ticker(5, "1.00", "1", "2.00", "1"), b'"B": "1", ', b""), STAT_MALFORMED),
    (sub(book_ticker(5, "1.00", "1", "2.00", "1"), b'"u": 5', b'"u": null'), STAT_MALFORMED),
    (sub(book_ticker(5, "1.00", "1", "2.00", "1"), b'"b": "1.00"', b'"b": 1.00'), STAT_MALFORMED),
    (trade(1, "1.00", "0", False), STAT_BAD_LEVEL),
    (sub(trade(1, "1.00", "1", False), b'"m": false, ', b""), STAT_MALFORMED),
    (sub(trade(1, "1.00", "1", False), b'"m": false', b'"m": "no"'), STAT_MALFORMED),
    (sub(trade(1, "1.00", "1", False), b'"e": "trade"', b'"e": "aggTrade"'), STAT_MALFORMED),
    (trade(1, "1.0.0", "1", False), STAT_BAD_NUMBER),
    (depth(1, 2, symbol="DOGEUSDT"), STAT_UNKNOWN_SYMBOL),
    (b'{"stream":"btcusdt@kline_1m","data":{"e":"kline"}}', STAT_UNKNOWN_STREAM),
    (b'{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}', STAT_UNKNOWN_STREAM),
    (b'{"stream":"","data":{}}', STAT_UNKNOWN_SYMBOL),
]


@pytest.mark.parametrize(("frame", "stat"), BAD_FRAMES)
def test_bad_frame_then_counted_by_reason_and_no_event(frame: bytes, stat: int) -> None:
    engine = synced_engine(1000)
    before = engine.stats.copy()
    book_before = engine.book("BTCUSDT")
    n = engine.on_frame(frame, 1)
    delta = engine.stats - before
    assert delta[STAT_FRAMES] == 1
    assert delta[stat] == 1, dict(zip(STAT_NAMES, delta.tolist(), strict=True))
    reasons = [
        STAT_MALFORMED,
        STAT_UNKNOWN_SYMBOL,
        STAT_UNKNOWN_STREAM,
        STAT_BAD_NUMBER,
        STAT_BAD_LEVEL,
        STAT_OFF_GRID,
        STAT_HUGE_FRAME,
    ]
    assert sum(delta[r] for r in reasons) == 1  # counted once, under one reason
    if n:  # a diff with a valid chain but unusable content: the synced book missed it and is thrown away
        assert n == 1 and engine.events[0]["kind"] == EV_BOOK_RESET
        assert engine.status("BTCUSDT") == BOOK_RESYNCING
    else:
        for got, want in zip(engine.book("BTCUSDT"), book_before, strict=True):
            assert np.array_equal(got, want)


def test_non_bytes_input_then_counted_as_malformed() -> None:
    engine = FeedEngine([BTC])
    for junk in (None, 12, 3.5, ["x"], "not json", bytearray(b"{"), memoryview(b"[")):
        assert engine.on_frame(junk, 0) == 0  # type: ignore[arg-type]
    assert engine.stats[STAT_MALFORMED] == 7
    assert engine.stats[STAT_FRAMES] == 7


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(mutated_frames() | st.binary(max_size=64), min_size=1, max_size=8))
def test_mutated_or_random_frames_then_never_raise_and_each_counted_once(frames: list[bytes]) -> None:
    engine = synced_engine(1000)
    frames_before = int(engine.stats[STAT_FRAMES])
    depth_before = int(engine.stats[STAT_DEPTH])
    for frame in frames:
        n = engine.on_frame(frame, 1)
        assert 0 <= n <= engine.events.shape[0]
        if n:
            assert engine.events[n - 1]["flags"] & FLAG_LAST_IN_FRAME
    assert engine.stats[STAT_FRAMES] == frames_before + len(frames)
    assert engine.stats[STAT_DEPTH] - depth_before <= len(frames)
    bp, _, ap, _ = engine.book("BTCUSDT")
    assert (np.diff(bp) < 0).all() and (np.diff(ap) > 0).all()
    if len(bp) and len(ap):
        assert bp[0] < ap[0]


def test_stats_names_then_one_per_counter() -> None:
    engine = FeedEngine([BTC])
    assert engine.stats.shape == (N_STATS,)
    assert len(set(STAT_NAMES)) == N_STATS
    assert set(engine.stats_dict()) == set(STAT_NAMES)
    assert json.dumps(engine.stats_dict())
