"""Tick/lot grid, frame size limits and the reasons an operator sees: crafted input counted by reason.

Every engine-level test runs on both decoders (``fast_path`` True and False): the jitted frame scanner and the
msgspec reference path must count and behave identically (``test_fastpath`` compares them call by call).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hft.feed.engine import (
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_SNAPSHOT_BYTES,
    REASON_STATS,
    SNAP_BAD_NUMBER,
    SNAP_CROSSED,
    SNAP_HUGE,
    SNAP_OFF_GRID,
    STAT_BAD_LEVEL,
    STAT_BAD_NUMBER,
    STAT_CROSSED,
    STAT_FAST_FRAMES,
    STAT_FRAMES,
    STAT_GAPS,
    STAT_HUGE_FRAME,
    STAT_MALFORMED,
    STAT_NAMES,
    STAT_OFF_GRID,
    STAT_RESYNCS,
    STAT_TRADES,
    FeedEngine,
    SymbolSpec,
    measure_on_frame,
)
from shm_layout.records import (
    BOOK_EMPTY,
    BOOK_RESYNCING,
    BOOK_SYNCED,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
)

from ._frames import (
    BASE_ASKS,
    BASE_BIDS,
    BTC,
    BTC_GRID,
    book_ticker,
    depth,
    levels_of,
    snapshot,
    synced_engine,
    trade,
)

both_paths = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "msgspec"])


def delta_of(engine: FeedEngine, before: np.ndarray) -> dict[str, int]:
    return {name: int(v) for name, v in zip(STAT_NAMES, engine.stats - before, strict=True) if v}


# ---------------------------------------------------------------- tick and lot grid


@both_paths
@pytest.mark.parametrize(
    ("level", "why"),
    [
        (("100.01", "1"), "price 10001 is not a multiple of the tick 5"),
        (("100.00", "0.000001"), "size 100 is not a multiple of the lot 1000"),
    ],
)
def test_off_grid_level_in_synced_diff_then_counted_and_book_resynced(
    fast_path: bool, level: tuple[str, str], why: str
) -> None:
    engine = synced_engine(1000, BTC_GRID, fast_path=fast_path)
    before = engine.stats.copy()
    n = engine.on_frame(depth(1001, 1001, [("99.00", "5"), level]), 20)
    assert n == 1 and engine.events[0]["kind"] == EV_BOOK_RESET, why
    assert delta_of(engine, before) == {
        "frames": 1,
        "depth": 1,
        "off_grid": 1,
        "resyncs": 1,
        **({"fast_frames": 1} if fast_path else {}),
    }
    assert engine.status("BTCUSDT") == BOOK_RESYNCING
    assert engine.snapshots[0]["status"] == BOOK_RESYNCING
    assert levels_of(engine) == ([], [])
    assert engine.needs_snapshot() == []  # like a bad number: the suspect diff does not start the buffer


@both_paths
def test_on_grid_diff_with_removal_then_applied_without_off_grid(fast_path: bool) -> None:
    engine = synced_engine(1000, BTC_GRID, fast_path=fast_path)
    n = engine.on_frame(depth(1001, 1001, [("99.00", "0.00000000"), ("99.95", "0.00001")], [("101.00", "0")]), 20)
    assert n == 3
    assert engine.stats[STAT_OFF_GRID] == 0 and engine.status("BTCUSDT") == BOOK_SYNCED
    bids, asks = levels_of(engine)
    assert bids == [(10000, 100000000), (9995, 1000), (9800, 300000000)]
    assert asks == [(10200, 250000000), (10300, 350000000)]


@both_paths
def test_off_grid_diff_while_buffering_then_counted_and_buffer_dropped(fast_path: bool) -> None:
    engine = FeedEngine([BTC_GRID], fast_path=fast_path)
    assert engine.on_frame(depth(100, 101, [("100.00", "1")]), 10) == 0
    assert engine.needs_snapshot() == ["BTCUSDT"]
    assert engine.on_frame(depth(102, 103, asks=[("101.03", "1")]), 11) == 0
    assert engine.stats[STAT_OFF_GRID] == 1 and engine.stats[STAT_RESYNCS] == 0
    assert engine.needs_snapshot() == []  # the buffer can no longer bridge to a snapshot
    assert engine.on_frame(depth(104, 105, [("100.00", "2")]), 12) == 0
    assert engine.on_snapshot("BTCUSDT", snapshot(104, BASE_BIDS, BASE_ASKS), 13) > 0
    assert levels_of(engine)[0][0] == (10000, 200000000)


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        ([("100.00", "1"), ("99.99", "1")], BASE_ASKS),  # price off the tick
        (BASE_BIDS, [("101.00", "1.000000001")]),  # beyond 8 decimals: a bad number, not off grid
        (BASE_BIDS, [("101.00", "1.0000001")]),  # size off the lot
    ],
)
def test_off_grid_snapshot_then_rejected_and_still_needed(bids: list, asks: list) -> None:
    engine = FeedEngine([BTC_GRID])
    engine.on_frame(depth(100, 101), 10)
    before = engine.stats.copy()
    status = engine.on_snapshot("BTCUSDT", snapshot(101, bids, asks), 11)
    bad_number = asks[0][1] == "1.000000001"
    assert status == (SNAP_BAD_NUMBER if bad_number else SNAP_OFF_GRID)
    assert delta_of(engine, before) == {"snapshots": 1, ("bad_number" if bad_number else "off_grid"): 1}
    assert engine.status("BTCUSDT") == BOOK_EMPTY and engine.needs_snapshot() == ["BTCUSDT"]
    assert levels_of(engine) == ([], [])
    assert engine.on_snapshot("BTCUSDT", snapshot(101, BASE_BIDS, BASE_ASKS), 12) > 0


@both_paths
@pytest.mark.parametrize(
    "frame",
    [
        trade(7, "100.02", "1", False),
        trade(7, "100.00", "0.000001", True),
        book_ticker(9, "100.02", "1", "101.00", "1"),
        book_ticker(9, "100.00", "1", "101.00", "0.0000005"),
    ],
    ids=["trade price", "trade size", "ticker price", "ticker size"],
)
def test_off_grid_trade_or_ticker_then_counted_and_dropped_book_untouched(fast_path: bool, frame: bytes) -> None:
    engine = synced_engine(1000, BTC_GRID, fast_path=fast_path)
    engine.dirty[:] = 0
    book_before = levels_of(engine)
    before = engine.stats.copy()
    assert engine.on_frame(frame, 30) == 0
    delta = delta_of(engine, before)
    assert delta["off_grid"] == 1 and delta["frames"] == 1
    assert set(delta) <= {"off_grid", "frames", "trades", "bbo", "fast_frames"}
    assert levels_of(engine) == book_before and engine.status("BTCUSDT") == BOOK_SYNCED
    assert engine.dirty[0] == 0


@both_paths
def test_ticker_with_empty_side_zeros_then_on_grid_and_emitted(fast_path: bool) -> None:
    engine = FeedEngine([BTC_GRID], fast_path=fast_path)
    assert engine.on_frame(book_ticker(9, "0.00", "0.00000000", "101.05", "0.001"), 1) == 2
    assert engine.events["kind"][:2].tolist() == [EV_BBO, EV_BBO]
    assert engine.events["price"][:2].tolist() == [0, 10105]
    assert engine.on_frame(trade(3, "100.05", "0.00002", False), 2) == 1
    assert engine.stats[STAT_OFF_GRID] == 0


@pytest.mark.parametrize("field", ["tick_size", "lot_size"])
@pytest.mark.parametrize("value", [0, -5, 1.5, True, "0.01"])
def test_bad_grid_in_symbol_spec_then_value_error_at_the_edge(field: str, value: object) -> None:
    spec = SymbolSpec("BTCUSDT", 0, 2, 8, **{field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=field):
        FeedEngine([spec])


def test_symbol_spec_defaults_then_no_grid_beyond_the_decimals() -> None:
    assert (BTC.tick_size, BTC.lot_size) == (1, 1)
    engine = synced_engine(1000)
    assert engine.on_frame(depth(1001, 1001, [("99.99", "0.00000001")]), 1) == 1
    assert engine.events[0]["kind"] == EV_BOOK_LEVEL and engine.stats[STAT_OFF_GRID] == 0


# ---------------------------------------------------------------- frame size limits


@both_paths
def test_frame_over_max_frame_bytes_then_huge_counted_and_not_decoded(fast_path: bool) -> None:
    frame = depth(1001, 1001, [("100.00", "2")])
    engine = synced_engine(1000, fast_path=fast_path, max_frame_bytes=len(frame))
    before = engine.stats.copy()
    assert engine.on_frame(frame + b" ", 20) == 0  # valid JSON, one byte too long
    assert engine.on_frame(b"x" * (len(frame) + 1), 21) == 0  # never read: not counted as malformed
    assert delta_of(engine, before) == {"frames": 2, "huge_frame": 2}
    assert levels_of(engine)[0][0] == (10000, 100000000) and engine.update_id("BTCUSDT") == 1000
    assert engine.on_frame(frame, 22) == 1  # exactly at the limit: decoded
    assert levels_of(engine)[0][0] == (10000, 200000000)
    assert (engine.stats - before)[STAT_FAST_FRAMES] == (1 if fast_path else 0)


@both_paths
def test_huge_frame_that_was_a_diff_then_next_diff_finds_the_gap_and_resyncs(fast_path: bool) -> None:
    """The documented policy: a dropped huge frame is only counted; the U/u chain catches a lost diff."""
    small = depth(1003, 1003, [("100.00", "3")])
    engine = synced_engine(1000, fast_path=fast_path, max_frame_bytes=len(small))
    huge = depth(1001, 1002, [("100.00", "2")] + [(f"{50 + k}.00", "1") for k in range(20)])
    assert engine.on_frame(huge, 20) == 0
    assert engine.status("BTCUSDT") == BOOK_SYNCED  # nothing known yet
    assert engine.on_frame(small, 21) == 1
    assert engine.events[0]["kind"] == EV_BOOK_RESET
    stats = engine.stats
    assert (stats[STAT_HUGE_FRAME], stats[STAT_GAPS], stats[STAT_RESYNCS]) == (1, 1, 1)
    assert engine.needs_snapshot() == ["BTCUSDT"]  # the diff that showed the gap starts the buffer


@pytest.mark.parametrize(
    "frame",
    [
        "x" * 101,
        bytearray(b" " * 101),
        memoryview(b"{" * 101),
        "é" * 51,  # 51 characters, 102 bytes of UTF-8: the limit is in bytes
    ],
    ids=["str", "bytearray", "memoryview", "non-ascii str"],
)
def test_non_bytes_frame_over_limit_then_huge_on_the_reference_path(frame: object) -> None:
    engine = FeedEngine([BTC], max_frame_bytes=100)
    assert engine.on_frame(frame, 1) == 0  # type: ignore[arg-type]
    assert engine.stats[STAT_HUGE_FRAME] == 1 and engine.stats[STAT_MALFORMED] == 0
    assert engine.on_frame("é" * 50, 1) == 0  # 100 bytes: decoded (and malformed)
    assert engine.stats[STAT_HUGE_FRAME] == 1 and engine.stats[STAT_MALFORMED] == 1


def test_snapshot_over_max_snapshot_bytes_then_huge_and_still_needed() -> None:
    body = snapshot(101, BASE_BIDS, BASE_ASKS)
    engine = FeedEngine([BTC], max_frame_bytes=64, max_snapshot_bytes=len(body))
    engine.on_frame(depth(100, 101), 10)  # longer than 64 bytes: huge, not buffered
    assert engine.stats[STAT_HUGE_FRAME] == 1 and engine.needs_snapshot() == []
    engine = FeedEngine([BTC], max_snapshot_bytes=len(body))
    engine.on_frame(depth(100, 101), 10)
    before = engine.stats.copy()
    assert engine.on_snapshot("BTCUSDT", body + b" ", 11) == SNAP_HUGE
    assert delta_of(engine, before) == {"snapshots": 1, "huge_frame": 1}
    assert engine.needs_snapshot() == ["BTCUSDT"] and engine.status("BTCUSDT") == BOOK_EMPTY
    assert engine.on_snapshot("BTCUSDT", body, 12) > 0  # at the limit: applied


def test_default_limits_then_deep_snapshot_fits_and_a_mebibyte_frame_does_not() -> None:
    engine = FeedEngine([BTC])
    assert (engine.max_frame_bytes, engine.max_snapshot_bytes) == (1 << 20, 8 << 20)
    assert (DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_SNAPSHOT_BYTES) == (1 << 20, 8 << 20)
    bids = [(f"{60000 - k * 0.01:.8f}", "0.12345000") for k in range(5000)]
    asks = [(f"{60001 + k * 0.01:.8f}", "1.50000000") for k in range(5000)]
    body = snapshot(101, bids, asks)
    assert 200_000 < len(body) < DEFAULT_MAX_SNAPSHOT_BYTES
    engine.on_frame(depth(100, 101), 10)
    assert engine.on_snapshot("BTCUSDT", body, 11) == 1 + 10000
    bp, _, ap, _ = engine.book("BTCUSDT")
    assert (len(bp), bp[0], bp[-1], len(ap), ap[0]) == (5000, 6000000, 5995001, 5000, 6000100)
    padded = depth(102, 102, [("60000.00", "1")])
    padded = padded[:-1] + b" " * (DEFAULT_MAX_FRAME_BYTES + 1 - len(padded)) + b"}"
    assert engine.on_frame(padded, 12) == 0 and engine.stats[STAT_HUGE_FRAME] == 1


# ---------------------------------------------------------------- reasons (task: each counted under its own)


@pytest.mark.parametrize(
    ("body", "status", "stat"),
    [
        (snapshot(101, [("NaN", "1")], BASE_ASKS), SNAP_BAD_NUMBER, STAT_BAD_NUMBER),
        (snapshot(101, BASE_BIDS, [("101.00", "Infinity")]), SNAP_BAD_NUMBER, STAT_BAD_NUMBER),
        (snapshot(101, [("0.00", "1")], BASE_ASKS), SNAP_BAD_NUMBER, STAT_BAD_LEVEL),
        (snapshot(101, BASE_BIDS, [("101.00", "-1")]), SNAP_BAD_NUMBER, STAT_BAD_LEVEL),
        (snapshot(101, [("-100.00", "1")], BASE_ASKS), SNAP_BAD_NUMBER, STAT_BAD_LEVEL),
    ],
    ids=["nan price", "inf size", "zero price", "negative size", "negative price"],
)
def test_bad_snapshot_numbers_then_counted_by_reason_and_rejected(body: bytes, status: int, stat: int) -> None:
    engine = FeedEngine([BTC])
    engine.on_frame(depth(100, 101), 10)
    before = engine.stats.copy()
    assert engine.on_snapshot("BTCUSDT", body, 11) == status
    assert delta_of(engine, before) == {"snapshots": 1, STAT_NAMES[stat]: 1}
    assert engine.needs_snapshot() == ["BTCUSDT"]


@both_paths
def test_buffered_diff_crossing_the_snapshot_then_crossed_counted_and_rejected(fast_path: bool) -> None:
    engine = FeedEngine([BTC], fast_path=fast_path)
    engine.on_frame(depth(100, 102, [("101.50", "1")]), 10)  # bid above the snapshot's best ask 101
    assert engine.on_snapshot("BTCUSDT", snapshot(101, BASE_BIDS, BASE_ASKS), 11) == SNAP_CROSSED
    assert engine.stats[STAT_CROSSED] == 1 and engine.status("BTCUSDT") == BOOK_EMPTY
    assert levels_of(engine) == ([], [])


EXPECTED_REASONS = (
    "malformed",
    "unknown_symbol",
    "unknown_stream",
    "bad_number",
    "bad_level",
    "off_grid",
    "crossed",
    "gaps",
    "resyncs",
    "huge_frame",
    "too_deep",
    "stuck_books",
    "outliers",
    "buffer_overflow",
    "events_overflow",
    "stale_snapshots",
    "truncated",
)


def test_reason_stats_then_every_operator_reason_once_with_a_valid_index() -> None:
    assert tuple(name for name, _ in REASON_STATS) == EXPECTED_REASONS
    indices = [index for _, index in REASON_STATS]
    assert len(set(indices)) == len(indices)
    for name, index in REASON_STATS:
        assert STAT_NAMES[index] == ("snapshots_stale" if name == "stale_snapshots" else name)


def _trigger(reason: str, fast_path: bool) -> FeedEngine:
    """An engine after input that must be counted under ``reason``."""
    if reason == "off_grid":
        engine = synced_engine(1000, BTC_GRID, fast_path=fast_path)
        engine.on_frame(trade(1, "100.01", "1", False), 1)
        return engine
    if reason == "huge_frame":
        engine = FeedEngine([BTC], fast_path=fast_path, max_frame_bytes=50)
        engine.on_frame(trade(1, "100.00", "1", False), 1)
        return engine
    if reason == "stuck_books":
        engine = synced_engine(1000, fast_path=fast_path)
        engine.on_frame(depth(1001, 10**12), 1)  # applied: the book's id jumps far ahead of the stream
        for k in range(60):
            engine.on_frame(depth(1002 + k, 1002 + k), 2 + k)  # every later diff looks already covered
        return engine
    if reason == "too_deep":
        engine = synced_engine(1000, fast_path=fast_path)
        engine.on_frame(DEEP_FRAME, 1)
        return engine
    if reason == "buffer_overflow":
        engine = FeedEngine([BTC], fast_path=fast_path, max_buffered_diffs=1)
        engine.on_frame(depth(100, 100), 1)
        engine.on_frame(depth(101, 101), 2)
        return engine
    if reason == "events_overflow":
        engine = synced_engine(1000, fast_path=fast_path, depth_capacity=3, max_events=7)
        engine.on_frame(depth(1001, 1001, [(f"{90 + k}.00", "1") for k in range(8)]), 1)
        return engine
    if reason == "stale_snapshots":
        engine = FeedEngine([BTC], fast_path=fast_path)
        engine.on_frame(depth(100, 101), 1)
        engine.on_snapshot("BTCUSDT", snapshot(50, BASE_BIDS, BASE_ASKS), 2)
        return engine
    if reason == "truncated":
        return synced_engine(1000, fast_path=fast_path, depth_capacity=2)
    if reason == "outliers":
        engine = synced_engine(1000, SymbolSpec("BTCUSDT", 0, 2, 8, max_size=10**9), fast_path=fast_path)
        engine.on_frame(trade(1, "100.00", "60000", False), 1)  # 60,000 BTC over a 10 BTC cap
        return engine
    engine = synced_engine(1000, fast_path=fast_path)
    frame = {
        "malformed": b"not json",
        "unknown_symbol": depth(1, 2, symbol="DOGEUSDT"),
        "unknown_stream": b'{"stream":"btcusdt@kline_1m","data":{"e":"kline"}}',
        "bad_number": depth(1001, 1001, [("NaN", "1")]),
        "bad_level": depth(1001, 1001, [("-1.00", "1")]),
        "crossed": depth(1001, 1001, [("101.50", "1")]),
        "gaps": depth(1005, 1006),
        "resyncs": depth(1005, 1006),
    }[reason]
    engine.on_frame(frame, 1)
    return engine


@both_paths
@pytest.mark.parametrize("reason", EXPECTED_REASONS)
def test_each_operator_reason_then_visible_under_its_name(reason: str, fast_path: bool) -> None:
    engine = _trigger(reason, fast_path)
    mirrored = {name: int(engine.stats[index]) for name, index in REASON_STATS}
    assert mirrored[reason] >= 1, engine.stats_dict()


def test_trade_counted_before_its_reason_then_frames_and_trades_move_together() -> None:
    engine = synced_engine(1000, BTC_GRID)
    before = engine.stats.copy()
    engine.on_frame(trade(1, "100.01", "1", False), 1)
    assert (engine.stats - before)[[STAT_FRAMES, STAT_TRADES, STAT_OFF_GRID]].tolist() == [1, 1, 1]


# ---------------------------------------------------------------- measure_on_frame


def test_measure_on_frame_then_samples_per_kind_for_every_timed_pass(tmp_path: Path) -> None:
    lines = [
        depth(100, 101, [("100.00", "1")]),  # before the snapshot: buffered
        snapshot(101, BASE_BIDS, BASE_ASKS),
        depth(102, 102, [("99.00", "1")]),
        depth(103, 103, [(f"{80 + k}.00", "1") for k in range(11)]),
        book_ticker(103, "100.00", "1", "101.00", "1"),
        trade(5, "100.00", "1", False),
        b'{"stream":"btcusdt@kline_1m","data":{}}',
    ]
    path = tmp_path / "session.gz"
    with gzip.open(path, "wb") as f:
        for k, line in enumerate(lines):
            f.write(b"%d %s\n" % (1_000 + k, json.dumps(json.loads(line), separators=(",", ":")).encode()))
    samples = measure_on_frame(path, n_repeats=3)
    counts = {kind: len(values) for kind, values in samples.items()}
    assert counts == {
        "depth_buffered": 3,
        "snapshot": 3,
        "depth": 6,
        "depth_le10": 3,
        "depth_gt10": 3,
        "bbo": 3,
        "trade": 3,
        "other": 3,
    }
    for values in samples.values():
        assert values.dtype == np.int64 and (values > 0).all()
    with pytest.raises(ValueError, match="n_repeats"):
        measure_on_frame(path, n_repeats=0)


# a 2 KB frame nesting 1,000 arrays inside a key the feed ignores: the recursive decoder raised RecursionError
DEEP_FRAME = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"100.00","q":"1",'
              b'"T":1,"m":true,"x":' + b"[" * 1000 + b"]" * 1000 + b"}}")


@both_paths
def test_deeply_nested_input_when_decoded_then_refused_before_parsing_and_counted(fast_path: bool) -> None:
    """Nesting beyond MAX_JSON_DEPTH, in a frame or a REST snapshot body (even 5,000 deep, even inside a string
    that is not one), is counted as too_deep and yields nothing; the engine goes on with the next frame."""
    engine = synced_engine(1000, fast_path=fast_path)
    assert engine.on_frame(DEEP_FRAME, 1) == 0
    body = b'{"lastUpdateId":2000,"bids":[["100.00","1"]],"asks":[["101.00","1"]],"x":' + b"{\"a\":" * 5000 + b"1"
    body += b"}" * 5000 + b"}"
    engine.on_disconnect(2)
    engine.on_frame(depth(2001, 2001), 3)
    assert engine.on_snapshot("BTCUSDT", body, 4) < 0
    stats = engine.stats_dict()
    assert stats["too_deep"] == 2 and stats["malformed"] == 0
    quoted = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":2,"p":"100.00","q":"1",' \
             b'"T":1,"m":true,"x":"' + b"[" * 1000 + b'"}}'
    engine.on_frame(quoted, 5)  # brackets inside a string are text, not nesting
    assert engine.stats_dict()["too_deep"] == 2


def test_feed_warm_up_when_done_then_every_decode_path_is_compiled_before_ready() -> None:
    """The first unusual frame of a live run compiled the msgspec path's kernels on the hot path (a 4 s stall):
    the feed's warm-up compiles them, in a fresh process, before the feed reports ready."""
    import subprocess
    import sys

    code = (
        "from hft.feed.engine import SymbolSpec, json_too_deep\n"
        "from hft.feed.sync import bbo_kernel, depth_kernel, snapshot_kernel, trade_kernel\n"
        "from procs.feed import warm_up\n"
        "from shm_layout.records import MD_EVENT\n"
        "import numpy as np\n"
        "warm_up([SymbolSpec('BTCUSDT', 0, 2, 8, 1, 1)], np.zeros(4, MD_EVENT))\n"
        "print([len(k.signatures) for k in (depth_kernel, bbo_kernel, trade_kernel, snapshot_kernel, json_too_deep)])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(n >= 1 for n in json.loads(result.stdout.strip().splitlines()[-1]))


@both_paths
@pytest.mark.parametrize("jump", ["diff", "snapshot"])
def test_update_ids_far_ahead_when_the_book_stops_advancing_then_counted_and_resynced(
    fast_path: bool, jump: str
) -> None:
    """A diff with u = U + 10^12, or a snapshot whose lastUpdateId is far ahead, left the book synced but frozen
    (every later diff already covered), silently. Fifty covered diffs in a row: counted, thrown away, resynced."""
    from hft.feed.sync import MAX_STALE_STREAK

    if jump == "diff":
        engine = synced_engine(1000, fast_path=fast_path)
        engine.on_frame(depth(1001, 10**12), 1)
    else:
        engine = FeedEngine([BTC], fast_path=fast_path)
        engine.on_frame(depth(995, 997), 1)
        assert engine.on_snapshot("BTCUSDT", snapshot(10**12, BASE_BIDS, BASE_ASKS), 2) > 0
    assert engine.status("BTCUSDT") == BOOK_SYNCED
    for k in range(MAX_STALE_STREAK - 1):
        assert engine.on_frame(depth(1002 + k, 1002 + k), 3 + k) == 0  # covered: dropped
    assert engine.status("BTCUSDT") == BOOK_SYNCED and engine.stats_dict()["stuck_books"] == 0
    assert engine.on_frame(depth(2000, 2000), 100) == 1  # the fiftieth: the book is thrown away (one reset)
    stats = engine.stats_dict()
    assert stats["stuck_books"] == 1 and stats["resyncs"] >= 1
    assert engine.status("BTCUSDT") != BOOK_SYNCED and engine.needs_snapshot() in ([], ["BTCUSDT"])
    engine.on_frame(depth(2001, 2002), 101)  # buffered until the snapshot
    assert engine.on_snapshot("BTCUSDT", snapshot(2001, BASE_BIDS, BASE_ASKS), 102) > 0
    assert engine.status("BTCUSDT") == BOOK_SYNCED and engine.update_id("BTCUSDT") == 2002


@both_paths
def test_crossed_book_ticker_when_decoded_then_counted_and_dropped(fast_path: bool) -> None:
    """A bookTicker with bid >= ask passed to the strategy; now it is counted under crossed and dropped."""
    engine = synced_engine(1000, fast_path=fast_path)
    assert engine.on_frame(book_ticker(2000, "101.00", "1", "100.00", "1"), 1) == 0
    assert engine.on_frame(book_ticker(2001, "100.00", "1", "100.00", "1"), 2) == 0  # locked
    assert engine.stats_dict()["crossed"] == 2
    assert engine.on_frame(book_ticker(2002, "100.00", "1", "101.00", "1"), 3) == 2


@both_paths
def test_invalid_utf8_when_inside_an_ignored_key_then_malformed(fast_path: bool) -> None:
    """A text frame must be UTF-8, even in a key the feed does not read; valid non-ASCII text still passes."""
    engine = synced_engine(1000, fast_path=fast_path)
    good = trade(1, "100.00", "1", False)
    assert engine.on_frame(good[:-2] + b',"x":"\xff\xfe"}}', 1) == 0
    assert engine.stats_dict()["malformed"] == 1
    assert engine.on_frame(good[:-2] + ',"x":"é"}}'.encode(), 2) == 1
    body = snapshot(2000, BASE_BIDS, BASE_ASKS)
    assert engine.on_snapshot("BTCUSDT", body[:-1] + b',"x":"\xc3"}', 3) < 0
    assert engine.stats_dict()["malformed"] == 2
