"""Sanity bounds per symbol: a price band around the book's last good mid (bookTicker, trades; book levels at
``DEPTH_BAND`` times), a size cap, and the drift of venue time from the local receive time. Outliers are
counted (``outliers``) and never become events; a diff carrying one resyncs the book. On both decoders."""

from __future__ import annotations

import numpy as np
import pytest

from hft.feed.engine import SNAP_OUTLIER, STAT_NAMES, FeedEngine, SymbolSpec
from shm_layout.records import BOOK_RESYNCING, BOOK_SYNCED, EV_BBO, EV_BOOK_RESET, EV_TRADE

from ._frames import BASE_ASKS, BASE_BIDS, book_ticker, depth, snapshot, synced_engine, trade

both_paths = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "msgspec"])
NOW_MS = 1_780_000_000_000  # the local receive time the tests pass (wall clock, ms)
NOW_NS = NOW_MS * 1_000_000
# 10 % band, at most 5 BTC, E within 60 s of the receive time
BOUNDED = SymbolSpec("BTCUSDT", 0, 2, 8, price_band_ppm=100_000, max_size=5 * 10**8, max_drift_ns=60 * 10**9)


def engine_with_bounds(fast_path: bool) -> FeedEngine:
    """Synced at update 1000 from BASE_BIDS/BASE_ASKS: mid 100.50."""
    engine = FeedEngine([BOUNDED], fast_path=fast_path)
    engine.on_frame(depth(995, 997, event_ms=NOW_MS), NOW_NS, NOW_NS)
    assert engine.on_snapshot("BTCUSDT", snapshot(1000, BASE_BIDS, BASE_ASKS), NOW_NS) > 0
    return engine


def outliers(engine: FeedEngine) -> int:
    return int(engine.stats[STAT_NAMES.index("outliers")])


@both_paths
@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (book_ticker(1001, "999999999.99", "1", "1000000000.00", "1"), "both sides far above the band"),
        (book_ticker(1001, "100.00", "1", "120.00", "1"), "ask 19 % above the mid"),
        (book_ticker(1001, "100.00", "60000", "101.00", "1"), "bid size over the cap"),
        (trade(7, "99999999999.99", "0.1", True, event_ms=NOW_MS), "price far above"),
        (trade(7, "100.50", "60000", True, event_ms=NOW_MS), "60,000 BTC"),
        (trade(7, "100.50", "0.1", True, event_ms=7_258_118_400_000), "E in the year 2200"),
        (trade(7, "100.50", "0.1", True, event_ms=NOW_MS - 61_000), "E 61 s behind"),
    ],
)
def test_ticker_or_trade_outside_the_bounds_then_counted_and_dropped(fast_path: bool, frame: bytes, why: str) -> None:
    engine = engine_with_bounds(fast_path)
    before = engine.stats.copy()
    assert engine.on_frame(frame, NOW_NS, NOW_NS) == 0, why
    assert outliers(engine) == 1
    assert engine.status("BTCUSDT") == BOOK_SYNCED  # nothing else happened
    changed = {name for name, d in zip(STAT_NAMES, engine.stats - before, strict=True) if d}
    assert changed - {"fast_frames"} in ({"frames", "bbo", "outliers"}, {"frames", "trades", "outliers"})


@both_paths
def test_ticker_and_trade_inside_the_bounds_then_events(fast_path: bool) -> None:
    engine = engine_with_bounds(fast_path)
    assert engine.on_frame(book_ticker(1001, "95.00", "5", "110.00", "0.5"), NOW_NS, NOW_NS) == 2
    assert engine.events["kind"][0] == EV_BBO
    assert engine.on_frame(trade(7, "91.00", "5", True, event_ms=NOW_MS + 59_000), NOW_NS, NOW_NS) == 1
    assert engine.events["kind"][0] == EV_TRADE
    assert outliers(engine) == 0


@both_paths
@pytest.mark.parametrize(
    ("diff", "why"),
    [
        (depth(1001, 1002, [], [("99999999999.99", "1")], event_ms=NOW_MS), "an ask level at 1e11"),
        (depth(1001, 1002, [("5.00", "1")], [], event_ms=NOW_MS), "a bid at a twentieth of the mid"),
        (depth(1001, 1002, [("99.50", "60000")], [], event_ms=NOW_MS), "a level over the size cap"),
        (depth(1001, 1002, [("99.50", "1")], [], event_ms=7_258_118_400_000), "E in the year 2200"),
    ],
)
def test_diff_with_an_outlier_when_synced_then_counted_and_the_book_resyncs(
    fast_path: bool, diff: bytes, why: str
) -> None:
    engine = engine_with_bounds(fast_path)
    assert engine.on_frame(diff, NOW_NS, NOW_NS) == 1, why
    assert engine.events["kind"][0] == EV_BOOK_RESET
    assert outliers(engine) == 1 and engine.status("BTCUSDT") == BOOK_RESYNCING


@both_paths
def test_far_levels_inside_the_depth_band_and_removals_then_applied(fast_path: bool) -> None:
    """Resting orders far from the touch are real (Binance allows asks at 5x): only ten times is an outlier."""
    engine = engine_with_bounds(fast_path)
    n = engine.on_frame(depth(1001, 1002, [("20.10", "1"), ("1.00", "0")], [("900.00", "2")], event_ms=NOW_MS),
                        NOW_NS, NOW_NS)
    assert n == 3 and outliers(engine) == 0 and engine.status("BTCUSDT") == BOOK_SYNCED


@both_paths
def test_band_when_the_book_moves_then_follows_its_mid(fast_path: bool) -> None:
    engine = engine_with_bounds(fast_path)
    ticker = book_ticker(1003, "118.00", "1", "119.00", "1")
    assert engine.on_frame(ticker, NOW_NS, NOW_NS) == 0  # 18 % above the mid of 100.50
    # the book moves up (bids taken out, new levels at 118/119): the band moves with its mid
    moved = depth(1001, 1002, [("100.00", "0"), ("99.00", "0"), ("98.00", "0"), ("118.00", "1")],
                  [("101.00", "0"), ("102.00", "0"), ("103.00", "0"), ("119.00", "1")], event_ms=NOW_MS)
    assert engine.on_frame(moved, NOW_NS, NOW_NS) == 8
    assert engine.on_frame(ticker, NOW_NS, NOW_NS) == 2


def test_snapshot_with_an_outlier_level_then_refused_and_still_needed() -> None:
    engine = FeedEngine([BOUNDED])
    engine.on_frame(depth(995, 997, event_ms=NOW_MS), NOW_NS, NOW_NS)
    assert engine.on_snapshot("BTCUSDT", snapshot(1000, BASE_BIDS, [*BASE_ASKS, ("5000.00", "1")]),
                              NOW_NS) == SNAP_OUTLIER
    assert outliers(engine) == 1 and engine.needs_snapshot() == ["BTCUSDT"]
    assert engine.on_snapshot("BTCUSDT", snapshot(1000, BASE_BIDS, BASE_ASKS), NOW_NS) > 0


@both_paths
def test_bounds_off_when_not_configured_then_everything_passes(fast_path: bool) -> None:
    engine = synced_engine(1000, fast_path=fast_path)
    assert engine.on_frame(book_ticker(1001, "100.00", "60000", "99999999.00", "1"), 10) == 2
    assert engine.on_frame(trade(7, "99999999999.99", "60000", True, event_ms=7_258_118_400_000), 10) == 1
    assert outliers(engine) == 0


@both_paths
def test_outlier_trade_when_counted_then_the_venue_clock_of_tickers_does_not_jump(fast_path: bool) -> None:
    """A year-2200 E must not become the stamp of every later bookTicker."""
    engine = engine_with_bounds(fast_path)
    engine.on_frame(trade(7, "100.50", "0.1", True, event_ms=7_258_118_400_000), NOW_NS, NOW_NS)
    engine.on_frame(depth(1001, 1002, [("99.50", "1")], [], event_ms=NOW_MS + 5), NOW_NS, NOW_NS)
    assert engine.on_frame(book_ticker(1003, "100.00", "1", "101.00", "1"), NOW_NS, NOW_NS) == 2
    assert np.all(engine.events["ts_exch"][:2] == (NOW_MS + 5) * 1_000_000)
