"""The jitted whole-frame scanner against the msgspec reference path: same output for every frame it accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hft.feed.engine import STAT_FAST_FRAMES, STAT_FRAMES, STAT_MALFORMED, FeedEngine, SymbolSpec
from hft.feed.fastpath import skip_json_value

from ._frames import BASE_ASKS, BASE_BIDS, BTC, BTC_GRID, ETH, book_ticker, depth, mutated_frames, snapshot, trade
from ._recorded import HFTBACKTEST, is_snapshot, load_cryptofeed, load_hftbacktest


class Twin:
    """Two engines, jitted scanner on and off, fed the same inputs and compared after every call."""

    def __init__(self, symbols: list, **kwargs: int) -> None:
        self.fast = FeedEngine(symbols, fast_path=True, **kwargs)
        self.slow = FeedEngine(symbols, fast_path=False, **kwargs)

    def frame(self, raw: bytes, ts: int) -> int:
        before = int(self.fast.stats[STAT_FAST_FRAMES])
        n_fast = self.fast.on_frame(raw, ts)
        n_slow = self.slow.on_frame(raw, ts)
        assert n_fast == n_slow, raw
        assert self.fast.events[:n_fast].tobytes() == self.slow.events[:n_slow].tobytes(), raw
        self.assert_same_state()
        return int(self.fast.stats[STAT_FAST_FRAMES]) - before

    def snapshot(self, symbol: str, body: bytes, ts: int) -> int:
        n = self.fast.on_snapshot(symbol, body, ts)
        assert self.slow.on_snapshot(symbol, body, ts) == n
        if n > 0:
            assert self.fast.events[:n].tobytes() == self.slow.events[:n].tobytes()
        self.assert_same_state()
        return n

    def assert_same_state(self) -> None:
        fast_stats = self.fast.stats.copy()
        assert fast_stats[STAT_FAST_FRAMES] <= fast_stats[STAT_FRAMES]
        fast_stats[STAT_FAST_FRAMES] = 0
        assert self.slow.stats[STAT_FAST_FRAMES] == 0
        assert np.array_equal(fast_stats, self.slow.stats), (self.fast.stats_dict(), self.slow.stats_dict())
        assert self.fast.snapshots.tobytes() == self.slow.snapshots.tobytes()
        assert np.array_equal(self.fast.dirty, self.slow.dirty)


def test_recorded_session_then_fast_path_takes_every_frame_with_identical_output() -> None:
    lines = load_hftbacktest(HFTBACKTEST["BTCUSDT"][0])
    # 8 price decimals with the venue's 0.01 tick: every real price goes through the grid check, and passes
    twin = Twin([SymbolSpec("BTCUSDT", 0, 8, 8, tick_size=1_000_000)])
    taken = 0
    for ts, js in lines:
        if is_snapshot(js):
            assert twin.snapshot("BTCUSDT", js, ts) > 0
        else:
            taken += twin.frame(js, ts)
    assert taken == len(lines) - 1
    assert twin.fast.stats_dict()["off_grid"] == 0 and twin.fast.stats_dict()["resyncs"] == 0
    for fast, slow in zip(twin.fast.book("BTCUSDT"), twin.slow.book("BTCUSDT"), strict=True):
        assert np.array_equal(fast, slow)


def test_recorded_foreign_channels_then_declined_to_msgspec_with_identical_output() -> None:
    records = load_cryptofeed()
    names = ["XMRBTC", "FTMUSDT", "SXPBTC", "BADGERBTC"]
    twin = Twin([SymbolSpec(name, sid, 8, 8) for sid, name in enumerate(names)])
    taken = frames = 0
    for t, source, js in records:
        if source == "ws":
            frames += 1
            taken += twin.frame(js, int(t * 1e9))
        else:
            assert twin.snapshot(source, js, int(t * 1e9)) > 0
    assert twin.fast.stats_dict()["unknown_stream"] == frames - taken > 0  # kline and aggTrade: msgspec's


def _synced_twin(btc: SymbolSpec = BTC, **kwargs: int) -> Twin:
    twin = Twin([btc, ETH], max_buffered_levels=1024, **kwargs)
    twin.frame(depth(995, 997), 1)
    assert twin.snapshot("BTCUSDT", snapshot(1000, BASE_BIDS, BASE_ASKS), 2) > 0
    return twin


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(mutated_frames(), min_size=1, max_size=6), grid=st.booleans(), limit=st.sampled_from([0, 120]))
def test_mutated_frames_then_both_paths_agree(frames: list[bytes], grid: bool, limit: int) -> None:
    """Digit flips on a tick-5/lot-1000 grid land off it often; a 120-byte limit makes some frames huge."""
    twin = _synced_twin(BTC_GRID if grid else BTC, **({"max_frame_bytes": limit} if limit else {}))
    for frame in frames:
        twin.frame(frame, 7)


OFF_GRID_AND_HUGE = [
    depth(1001, 1001, [("100.01", "1")]),
    depth(1001, 1001, asks=[("101.00", "0.000001")]),
    depth(1001, 1001, [("100.00", "0")]),  # a removal is on every lot grid
    book_ticker(1001, "100.00", "1", "101.03", "1"),
    book_ticker(1001, "0.00", "0.00000000", "101.05", "1"),
    trade(5, "100.00", "0.0000001", True),
    trade(6, "100.05", "0.001", True),
    depth(1002, 1003, [("100.00", "1")] * 40),  # over the limit below: huge, then the next diff is a gap
    depth(1004, 1004, [("99.00", "1")]),
]


def test_off_grid_and_huge_frames_then_both_paths_agree_call_by_call() -> None:
    twin = _synced_twin(BTC_GRID, max_frame_bytes=400)
    took = [twin.frame(frame, 9) for frame in OFF_GRID_AND_HUGE]
    assert took[-2] == 0  # a huge frame is not read, so not "decoded by the fast path"
    stats = twin.fast.stats_dict()
    assert (stats["off_grid"], stats["huge_frame"]) == (4, 1)


GOOD = depth(1001, 1002, [("100.00", "0"), ("99.50", "0.5")], [("101.00", "4")])


def test_frames_outside_the_fast_shape_then_declined_and_still_handled() -> None:
    variants = [
        json.dumps(json.loads(GOOD), indent=2).encode(),  # whitespace everywhere: still fast
        json.dumps({"data": json.loads(GOOD)["data"], "stream": "btcusdt@depth@100ms"}).encode(),  # key order
        json.dumps({**json.loads(GOOD), "extra": 1}).encode(),  # extra top-level key
        GOOD.replace(b'"s":"BTCUSDT"', b'"s":"BTC\\u0055SDT"'),  # escape in a string
        GOOD.replace(b'"U":1001', b'"U":1001,"U":1001'),  # duplicate key
        GOOD.replace(b'"E":1000', b'"E":1000.0'),  # float in an int field
        GOOD.replace(b'"E":1000', b'"E":01000'),  # not JSON
        GOOD.replace(b'"e":"depthUpdate"', b'"e":"depthUpdate","x":[{"y":[1,2,{"z":null}]}]'),  # unknown key: fast
        GOOD.replace(b'"e":"depthUpdate"', b'"e":"depthUpdate","x":"\xc3\xa9"'),  # non-ASCII
        GOOD + b" ",
        GOOD + b"}",
        book_ticker(1002, "100.00", "1", "101.00", "2").replace(b'"u": 1002', b'"u": 1002, "m": null'),
        trade(5, "100.00", "1", False).replace(b'"m": false', b'"m": null'),
    ]
    twin = _synced_twin()
    took = [twin.frame(v, 9) for v in variants]
    assert took[0] == 1 and took[7] == 1
    assert sum(took) == 2 + 1  # the whitespace variant, the unknown nested key, and the trailing space
    assert twin.fast.stats[STAT_MALFORMED] == twin.slow.stats[STAT_MALFORMED] > 0


def test_non_bytes_frames_then_msgspec_path_without_error() -> None:
    twin = _synced_twin()
    fast_before = int(twin.fast.stats[STAT_FAST_FRAMES])
    for junk in (bytearray(GOOD), memoryview(GOOD), GOOD.decode()):
        n_fast = twin.fast.on_frame(junk, 3)  # type: ignore[arg-type]
        n_slow = twin.slow.on_frame(junk, 3)  # type: ignore[arg-type]
        assert n_fast == n_slow
    assert twin.fast.stats[STAT_FAST_FRAMES] == fast_before
    twin.assert_same_state()


json_scalars = (
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
)
json_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"\\'), max_size=8)
json_values = st.recursive(
    json_scalars | json_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=json_values, pad=st.sampled_from(["", " ", "\n\t"]), cut=st.integers(0, 200))
def test_json_documents_then_validator_agrees_with_json_module(value: object, pad: str, cut: int) -> None:
    text = json.dumps(value, separators=(",", ":") if not pad else (pad + "," + pad, pad + ":" + pad))
    data = (pad + text + pad).encode()
    assert skip_json_value(data, 0, len(data)) == len(pad) + len(text)
    truncated = data[: min(cut, len(data))]
    end = skip_json_value(truncated, 0, len(truncated))
    if end >= 0:  # whatever the validator accepts must be a JSON value
        json.loads(truncated[:end])


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.binary(max_size=40) | st.text(alphabet='{}[]",:0123456789.-+eE truefalsn', max_size=40).map(str.encode))
def test_random_bytes_then_validator_never_accepts_invalid_json(data: bytes) -> None:
    end = skip_json_value(data, 0, len(data))
    if end >= 0:
        json.loads(data[:end])


@pytest.mark.parametrize("fast_path", [True, False])
def test_ts_recv_of_other_types_then_numpy_ints_accepted_and_the_rest_raise(fast_path: bool) -> None:
    """A wrong timestamp is the caller's bug, not bad input: it fails loudly instead of being counted."""
    engine = FeedEngine([BTC], fast_path=fast_path)
    assert engine.on_frame(trade(1, "100.00", "1", False), np.int64(5)) == 1  # type: ignore[arg-type]
    assert engine.events[0]["ts_recv"] == 5 and engine.stats[STAT_FAST_FRAMES] == (1 if fast_path else 0)
    for ts, error in ((1.5, TypeError), ("7", TypeError), (None, TypeError), (True, TypeError), (2**63, ValueError)):
        with pytest.raises(error, match="ts_recv"):
            engine.on_frame(trade(2, "100.00", "1", False), ts)  # type: ignore[arg-type]
    assert engine.stats[STAT_FRAMES] == 1
