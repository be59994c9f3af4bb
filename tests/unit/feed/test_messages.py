"""Typed message decoding and the jitted level/quoted-number scanners."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hft.feed.decimal import DEC_OK, parse_fixed, parse_fixed_u8
from hft.feed.messages import (
    KIND_BOOK_TICKER,
    KIND_DEPTH,
    KIND_TRADE,
    MSG_MALFORMED,
    MSG_OK,
    MSG_UNKNOWN_STREAM,
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Trade,
    decode_message,
    decode_snapshot,
    stream_channel_kind,
)
from hft.feed.wire import (
    WIRE_BAD_LEVEL,
    WIRE_BAD_NUMBER,
    WIRE_FULL,
    WIRE_MALFORMED,
    WIRE_OFF_GRID,
    WIRE_OK,
    quoted_decimal_fast,
    scan_levels,
    scan_quoted,
    scan_quoted_number,
)
from shm_layout.records import EV_BOOK_LEVEL, FLAG_SNAPSHOT, MD_EVENT, SIDE_SELL

DEPTH = (
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,'
    b'"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],'
    b'["61844.30000000","0.40163000"]]}}'
)
TICKER = (
    b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000",'
    b'"B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}'
)
TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,'
    b'"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}'
)


def test_recorded_style_frames_then_typed_messages() -> None:
    status, kind, msg = decode_message(DEPTH)
    assert (status, kind) == (MSG_OK, KIND_DEPTH) and isinstance(msg, DepthUpdate)
    assert (msg.U, msg.u, msg.E, msg.s) == (50093239203, 50093239207, 1723161255308, "BTCUSDT")
    assert msg.b == [("55653.87000000", "0.00000000")] and len(msg.a) == 2
    status, kind, msg = decode_message(TICKER)
    assert (status, kind) == (MSG_OK, KIND_BOOK_TICKER) and isinstance(msg, BookTicker)
    assert (msg.u, msg.b, msg.B, msg.a, msg.A) == (
        50093239212,
        "61837.63000000",
        "3.78826000",
        "61837.64000000",
        "1.54698000",
    )
    status, kind, msg = decode_message(TRADE)
    assert (status, kind) == (MSG_OK, KIND_TRADE) and isinstance(msg, Trade)
    assert (msg.t, msg.p, msg.q, msg.m, msg.T) == (3735683259, "61837.63000000", "0.02000000", True, 1723161255342)


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        (b"{", MSG_MALFORMED),
        (DEPTH.replace(b'"U":50093239203,', b""), MSG_MALFORMED),
        (DEPTH.replace(b'"U":50093239203', b'"U":50093239208'), MSG_MALFORMED),  # U > u
        (DEPTH.replace(b'"depthUpdate"', b'"trade"'), MSG_MALFORMED),
        (TICKER.replace(b'"A":"1.54698000"', b'"A":1.5'), MSG_MALFORMED),
        (TRADE.replace(b'"m":true', b'"m":1'), MSG_MALFORMED),
        (TRADE.replace(b"@trade", b"@aggTrade"), MSG_UNKNOWN_STREAM),
    ],
)
def test_bad_frame_then_typed_decoder_status_not_exception(frame: bytes, status: int) -> None:
    assert decode_message(frame) == (status, 0, None)


def test_rest_snapshot_then_typed_snapshot() -> None:
    status, snap = decode_snapshot(b'{"lastUpdateId":7,"bids":[["1.00","2.00"]],"asks":[]}')
    assert status == MSG_OK and isinstance(snap, DepthSnapshot)
    assert (snap.last_update_id, snap.bids, snap.asks) == (7, [("1.00", "2.00")], [])
    assert decode_snapshot(b'{"lastUpdateId":-7,"bids":[],"asks":[]}') == (MSG_MALFORMED, None)


def test_stream_names_then_symbol_and_kind() -> None:
    assert stream_channel_kind("btcusdt@depth@100ms") == ("btcusdt", KIND_DEPTH)
    assert stream_channel_kind("btcusdt@depth") == ("btcusdt", KIND_DEPTH)
    assert stream_channel_kind("ethusdt@bookTicker") == ("ethusdt", KIND_BOOK_TICKER)
    assert stream_channel_kind("ethusdt@trade") == ("ethusdt", KIND_TRADE)
    assert stream_channel_kind("ethusdt@kline_1m") == ("ethusdt", 0)


def scan(text: bytes, events: np.ndarray | None = None, start_n: int = 0) -> tuple[int, int, np.ndarray]:
    if events is None:
        events = np.zeros(16, dtype=MD_EVENT)
    status, n = scan_levels(text, 0, len(text), 2, 8, 1, 1, SIDE_SELL, events, start_n, 9, 8, 7, 3, FLAG_SNAPSHOT)
    return status, n, events


def test_levels_with_json_whitespace_then_parsed() -> None:
    status, n, ev = scan(b' [ [ "1.50" ,\n"2" ] ,\t["3.00","0.00000001"]\r\n] ')
    assert (status, n) == (WIRE_OK, 2)
    assert ev["price"][:2].tolist() == [150, 300] and ev["size"][:2].tolist() == [200000000, 1]
    assert (ev["kind"][:2] == EV_BOOK_LEVEL).all() and (ev["side"][:2] == SIDE_SELL).all()
    assert ev[0]["update_id"] == 9 and ev[0]["ts_exch"] == 8 and ev[0]["ts_recv"] == 7
    assert ev[0]["symbol_id"] == 3 and ev[0]["flags"] == FLAG_SNAPSHOT
    assert scan(b"[]")[:2] == (WIRE_OK, 0)
    assert scan(b"[ ]")[:2] == (WIRE_OK, 0)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (b"", WIRE_MALFORMED),
        (b"[", WIRE_MALFORMED),
        (b"[[]]", WIRE_MALFORMED),
        (b'[["1","2"],]', WIRE_MALFORMED),
        (b'[["1","2"]] x', WIRE_MALFORMED),
        (b'[["1","2"]][]', WIRE_MALFORMED),
        (b'[["1" "2"]]', WIRE_MALFORMED),
        (b'[["1","2"', WIRE_MALFORMED),
        (b'[["1","2\\"]]', WIRE_MALFORMED),
        (b'[["1","2\n"]]', WIRE_MALFORMED),
        (b'{"1":"2"}', WIRE_MALFORMED),
        (b'[[1,"2"]]', WIRE_MALFORMED),
        (b'[["1.001","2"]]', WIRE_BAD_NUMBER),
        (b'[["","2"]]', WIRE_BAD_NUMBER),
        (b'[["1"," 2"]]', WIRE_BAD_NUMBER),
        (b'[["0","2"]]', WIRE_BAD_LEVEL),
        (b'[["-1","2"]]', WIRE_BAD_LEVEL),
        (b'[["1","-2"]]', WIRE_BAD_LEVEL),
    ],
)
def test_malformed_level_array_then_status(text: bytes, status: int) -> None:
    assert scan(text)[0] == status


def test_more_levels_than_records_then_full() -> None:
    events = np.zeros(2, dtype=MD_EVENT)
    assert scan(b'[["1","1"],["2","2"]]', events)[:2] == (WIRE_OK, 2)
    assert scan(b'[["1","1"],["2","2"]]', events, start_n=1)[:2] == (WIRE_FULL, 2)


level_text = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False).map(str)


@settings(max_examples=100, deadline=None, database=None)
@given(levels=st.lists(st.tuples(level_text, level_text), max_size=12), spaces=st.sampled_from(["", " ", "\n "]))
def test_generated_level_arrays_then_same_values_as_parse_fixed(levels: list[tuple[str, str]], spaces: str) -> None:
    text = ("[" + ",".join(f'{spaces}["{p}",{spaces}"{q}"]' for p, q in levels) + spaces + "]").encode()
    status, n, events = scan(text, np.zeros(16, dtype=MD_EVENT))
    expected = [(parse_fixed(p, 2), parse_fixed(q, 8)) for p, q in levels]
    if any(price <= 0 for price, _ in expected):
        assert status == WIRE_BAD_LEVEL
        return
    assert (status, n) == (WIRE_OK, len(levels))
    assert list(zip(events["price"][:n].tolist(), events["size"][:n].tolist(), strict=True)) == expected


def _general_path(buf: bytes, decimals: int) -> tuple[int, int, int]:
    """``scan_quoted`` then the exact parser: what ``scan_quoted_number`` did before its one-pass shortcut."""
    status, content_end, nxt = scan_quoted(buf, 0, len(buf))
    if status != WIRE_OK:
        return status, 0, nxt
    dst, value = parse_fixed_u8(buf, 1, content_end, decimals, True)
    return (WIRE_OK, value, nxt) if dst == DEC_OK else (WIRE_BAD_NUMBER, 0, nxt)


number_text = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=22),
    st.builds(
        "{}.{}".format,
        st.text(alphabet="0123456789", min_size=1, max_size=20),
        st.text(alphabet="0123456789", min_size=1, max_size=20),
    ),
    st.text(alphabet='0123456789.-+e "\\\x01\xe9', max_size=24),
)


@settings(max_examples=600, deadline=None, database=None)
@given(
    text=number_text,
    decimals=st.integers(0, 18),
    tail=st.sampled_from(["", '"', ",", '"]', ' "x"']),
)
@example(text="9" * 10, decimals=8, tail='"')  # 18 digits once scaled: the largest the shortcut takes
@example(text="9" * 11, decimals=8, tail='"')  # 19: declined, the exact parser decides
@example(text="922337203685477580", decimals=0, tail='"')
@example(text="1.000000010", decimals=8, tail='"')
@example(text="1.", decimals=2, tail='"')
def test_quoted_number_shortcut_then_declines_or_agrees_with_general_path(text: str, decimals: int, tail: str) -> None:
    buf = ('"' + text + tail).encode()
    ok, value, nxt = quoted_decimal_fast(buf, 0, len(buf), decimals)
    general = _general_path(buf, decimals)
    if ok:
        assert (WIRE_OK, value, nxt) == general
    assert scan_quoted_number(buf, 0, len(buf), decimals) == general


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (b'[["1.05","0.00001"],["1.10","0"]]', WIRE_OK),  # on the grid; a zero size always is
        (b'[["1.05","0.00001"],["1.11","1"]]', WIRE_OFF_GRID),  # price 111 is not a multiple of 5
        (b'[["1.05","0.000011"]]', WIRE_OFF_GRID),  # size 1100 is not a multiple of 1000
        (b'[["1.05","-0.00001"]]', WIRE_BAD_LEVEL),  # a bad level is named before the grid
        (b'[["1.051","0.00001"]]', WIRE_BAD_NUMBER),
    ],
)
def test_levels_on_a_tick_and_lot_grid_then_off_grid_status(text: bytes, status: int) -> None:
    events = np.zeros(4, dtype=MD_EVENT)
    assert scan_levels(text, 0, len(text), 2, 8, 5, 1000, SIDE_SELL, events, 0, 0, 0, 0, 0, 0)[0] == status
