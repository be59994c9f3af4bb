"""OrderFlowModel: determinism, book invariants, Binance message shapes and sync, trending regimes."""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections import defaultdict
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hft.sim.config import SimConfig, SimSymbol
from hft.sim.faults import DropConnection, Malformed, ScheduledFault, SkipUpdates
from hft.sim.localbook import LocalBook, parse_fixed
from hft.sim.model import MIN_LEVELS, OrderFlowModel, format_fixed

SEC = 1_000_000_000
MS = 1_000_000
WIRE_DECIMAL = re.compile(r"^\d+\.\d{8}$")


def _run(model: OrderFlowModel, seconds: float, step_ms: int = 100) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(round(seconds * 1000 / step_ms)):
        out.extend(model.advance(step_ms * MS))
    return out


def _decode(frames: list[bytes]) -> list[dict[str, Any]]:
    return [msgspec.json.decode(f) for f in frames]  # keeps key order, like json.loads, only faster


def _imbalance(touch: tuple[int, int, int, int]) -> float:
    _, bid_size, _, ask_size = touch
    return (bid_size - ask_size) / (bid_size + ask_size)


def _episodes(config: SimConfig, seconds: float, step_ms: int = 50) -> dict[str, list[float]]:
    """Times at which a 1 s mid move >= 0.4 % coincides with |touch imbalance| > 0.3 in its direction."""
    model = OrderFlowModel(config)
    window = 1000 // step_ms
    mids: dict[str, list[float]] = defaultdict(list)
    found: dict[str, list[float]] = {name: [] for name in model.symbols}
    last_hit: dict[str, int] = {}
    for i in range(round(seconds * 1000 / step_ms)):
        model.advance(step_ms * MS)
        for name in model.symbols:
            touch = model.touch(name)
            mids[name].append((touch[0] + touch[2]) / 2)
            if i < window:
                continue
            move = mids[name][-1] / mids[name][-1 - window] - 1
            imbalance = _imbalance(touch)
            if abs(move) >= 0.004 and abs(imbalance) > 0.3 and move * imbalance > 0:
                if i - last_hit.get(name, -(10**9)) > window:  # a new episode, not the same one continuing
                    found[name].append((i + 1) * step_ms / 1000)
                last_hit[name] = i
    return found


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_calls_then_byte_identical_output() -> None:
    a = _run(OrderFlowModel(SimConfig(seed=11)), 3.0)
    b = _run(OrderFlowModel(SimConfig(seed=11)), 3.0)
    assert len(a) > 1000
    assert a == b


def test_different_seed_then_different_output() -> None:
    a = _run(OrderFlowModel(SimConfig(seed=11)), 1.0)
    b = _run(OrderFlowModel(SimConfig(seed=12)), 1.0)
    assert a != b


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=1500 * MS), min_size=1, max_size=12))
def test_time_sliced_differently_then_same_output(cuts: list[int]) -> None:
    total = 1500 * MS
    points = sorted({min(c, total) for c in cuts} | {total})
    sliced: list[bytes] = []
    model = OrderFlowModel(SimConfig(seed=5))
    previous = 0
    for point in points:
        sliced.extend(model.advance(point - previous))
        previous = point
    assert sliced == OrderFlowModel(SimConfig(seed=5)).advance(total)


def test_negative_dt_then_value_error() -> None:
    with pytest.raises(ValueError, match="dt_ns"):
        OrderFlowModel(SimConfig()).advance(-1)


# ---------------------------------------------------------------------------- invariants


def test_sixty_virtual_seconds_then_book_never_crossed_and_on_grid() -> None:
    config = SimConfig()
    model = OrderFlowModel(config)
    specs = {s.name: s for s in config.symbols}
    grids = {s.name: (s.tick_int, s.lot_int) for s in config.symbols}
    frames: list[bytes] = []
    for _ in range(600):
        frames.extend(model.advance(100 * MS))
        for name, (tick, lot) in grids.items():
            state = model.book(name)
            for side in (state.bids, state.asks):
                assert MIN_LEVELS <= len(side) <= config.book_levels
                assert all(p > 0 and p % tick == 0 for p in side)
                assert all(q > 0 and q % lot == 0 for q in side.values())
            assert max(state.bids) < min(state.asks)
    # between the sampling points too: every bookTicker (one per touch change) is uncrossed and on the grid
    tickers = trades = 0
    for msg in _decode(frames):
        data = msg["data"]
        spec = specs[data["s"]]
        if msg["stream"].endswith("@bookTicker"):
            tickers += 1
            bid = parse_fixed(data["b"], spec.price_decimals)
            ask = parse_fixed(data["a"], spec.price_decimals)
            assert 0 < bid < ask and bid % spec.tick_int == 0 and ask % spec.tick_int == 0
            assert parse_fixed(data["B"], spec.size_decimals) % spec.lot_int == 0
        elif msg["stream"].endswith("@trade"):
            trades += 1
            assert parse_fixed(data["p"], spec.price_decimals) % spec.tick_int == 0
            qty = parse_fixed(data["q"], spec.size_decimals)
            assert qty > 0 and qty % spec.lot_int == 0
    assert tickers > 10_000 and trades > 5_000


def test_depth_frames_then_update_ids_contiguous_and_cut_on_interval() -> None:
    config = SimConfig()
    frames = [m for m in _decode(_run(OrderFlowModel(config), 9.99, step_ms=37)) if "@depth" in m["stream"]]
    last_u: dict[str, int] = {}
    for msg in frames:
        data = msg["data"]
        assert msg["stream"] == f"{data['s'].lower()}@depth@100ms"
        assert data["U"] <= data["u"]
        if data["s"] in last_u:
            assert data["U"] == last_u[data["s"]] + 1
        last_u[data["s"]] = data["u"]
        assert (data["E"] - config.epoch_ms) % 100 == 0
        bids = [parse_fixed(p, 2) for p, _ in data["b"]]
        asks = [parse_fixed(p, 2) for p, _ in data["a"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert len(frames) == 2 * 99  # 270 steps of 37 ms = 9.99 s; both symbols change in every 100 ms interval


def test_realtime_depth_interval_zero_then_one_contiguous_frame_per_event() -> None:
    model = OrderFlowModel(SimConfig(depth_interval_ms=0, events_per_second=500))
    msgs = _decode(_run(model, 2.0))
    depth = [m for m in msgs if "@depth" in m["stream"]]
    assert {m["stream"] for m in depth} == {"btcusdt@depth", "ethusdt@depth"}
    assert model.canonical_stream("btcusdt@depth@100ms") == ("btcusdt@depth", "BTCUSDT")
    last_u: dict[str, int] = {}
    for m in depth:
        data = m["data"]
        if data["s"] in last_u:
            assert data["U"] == last_u[data["s"]] + 1
        last_u[data["s"]] = data["u"]
    assert len({m["data"]["E"] for m in depth}) > 300  # frames are not batched on an interval


def test_trade_ids_then_consecutive_per_symbol_and_times_monotonic() -> None:
    msgs = _decode(_run(OrderFlowModel(SimConfig()), 5.0))
    last: dict[str, tuple[int, int]] = {}
    for m in msgs:
        if not m["stream"].endswith("@trade"):
            continue
        data = m["data"]
        if data["s"] in last:
            prev_id, prev_t = last[data["s"]]
            assert data["t"] == prev_id + 1 and data["T"] >= prev_t
        last[data["s"]] = (data["t"], data["T"])
    assert set(last) == {"BTCUSDT", "ETHUSDT"}


# ---------------------------------------------------------------------------- wire format


def test_messages_then_exact_binance_key_order_and_8_decimal_strings() -> None:
    config = SimConfig()
    model = OrderFlowModel(config)
    msgs = model.advance(1 * SEC)
    seen = set()
    for raw in msgs:
        msg = json.loads(raw)
        assert list(msg) == ["stream", "data"]
        data = msg["data"]
        kind = msg["stream"].split("@", 1)[1]
        seen.add(kind)
        assert b" " not in raw
        if kind == "depth@100ms":
            assert list(data) == ["e", "E", "s", "U", "u", "b", "a"] and data["e"] == "depthUpdate"
            levels = data["b"] + data["a"]
        elif kind == "bookTicker":
            assert list(data) == ["u", "s", "b", "B", "a", "A"]
            levels = [[data["b"], data["B"]], [data["a"], data["A"]]]
        else:
            assert kind == "trade"
            assert list(data) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
            assert data["e"] == "trade" and data["M"] is True and isinstance(data["m"], bool) and data["T"] == data["E"]
            levels = [[data["p"], data["q"]]]
        for price, qty in levels:
            assert WIRE_DECIMAL.match(price) and WIRE_DECIMAL.match(qty)
        if "E" in data:
            assert config.epoch_ms <= data["E"] <= config.epoch_ms + 1000
    assert seen == {"depth@100ms", "bookTicker", "trade"}
    assert b'"data":{"e":"depthUpdate","E":1723075200100,"s":"BTCUSDT","U":' in b"".join(msgs)


def test_fixed_point_scale_above_8_decimals_then_same_wire_output() -> None:
    fine = SimSymbol(
        name="BTCUSDT",
        start_price="60000.00",
        tick_size="0.01",
        lot_size="0.00001",
        price_decimals=10,
        size_decimals=12,
    )
    coarse = SimConfig().symbols[0]
    a = OrderFlowModel(SimConfig(symbols=[coarse])).advance(1 * SEC)
    b = OrderFlowModel(SimConfig(symbols=[fine])).advance(1 * SEC)
    assert a == b
    assert format_fixed(600_001_000_000_000, 10) == "60000.10000000"


def test_depth_snapshot_then_best_levels_sorted_and_limited() -> None:
    model = OrderFlowModel(SimConfig())
    model.advance(1 * SEC + 50 * MS)
    snap = json.loads(model.depth_snapshot("BTCUSDT", 5))
    assert list(snap) == ["lastUpdateId", "bids", "asks"]
    assert snap["lastUpdateId"] == model.book("BTCUSDT").update_id
    bids = [parse_fixed(p, 2) for p, _ in snap["bids"]]
    asks = [parse_fixed(p, 2) for p, _ in snap["asks"]]
    state = model.book("BTCUSDT")
    assert bids == sorted(state.bids, reverse=True)[:5] and asks == sorted(state.asks)[:5]
    full = json.loads(model.depth_snapshot("BTCUSDT", 100_000))
    assert len(full["bids"]) == len(state.bids) and len(full["asks"]) == len(state.asks)
    assert len(json.loads(model.depth_snapshot("ETHUSDT"))["bids"]) == 100  # Binance's default limit
    with pytest.raises(ValueError, match="limit"):
        model.depth_snapshot("BTCUSDT", 0)
    with pytest.raises(KeyError):
        model.depth_snapshot("DOGEUSDT", 5)


# ---------------------------------------------------------------------------- Binance sync procedure


def test_binance_procedure_on_model_output_then_local_book_equals_model_book() -> None:
    config = SimConfig(seed=3)
    model = OrderFlowModel(config)
    model.advance(2 * SEC)  # history the client never sees
    books = {s.name: LocalBook(s.price_decimals, s.size_decimals) for s in config.symbols}
    last_ticker: dict[str, dict[str, Any]] = {}

    def consume(frames: list[bytes]) -> None:
        for msg in _decode(frames):
            data = msg["data"]
            if "@depth" in msg["stream"]:
                books[data["s"]].on_diff(data)
                if books[data["s"]].synced:
                    bid, _, ask, _ = books[data["s"]].touch()
                    assert bid < ask
            else:
                if msg["stream"].endswith("@bookTicker"):
                    last_ticker[data["s"]] = data

    consume(model.advance(137 * MS))  # connected mid-interval: diffs are buffered
    for name, book in books.items():  # the snapshot includes changes not yet published in a frame
        book.on_snapshot(json.loads(model.depth_snapshot(name, 5000)))
    consume(model.advance(2 * SEC + 263 * MS))  # ends exactly on a frame boundary: nothing pending

    for name, book in books.items():
        state = model.book(name)
        assert book.applied > 10
        assert book.last_update_id == state.update_id
        assert book.bids == state.bids and book.asks == state.asks
        # the bookTicker stream agrees with the depth stream at the same update id
        ticker = last_ticker[name]
        assert ticker["u"] <= book.last_update_id
        assert (parse_fixed(ticker["b"], 2), parse_fixed(ticker["a"], 2)) == (max(book.bids), min(book.asks))


# ---------------------------------------------------------------------------- regimes


def test_default_config_twenty_seconds_then_several_trend_episodes_per_symbol() -> None:
    episodes = _episodes(SimConfig(), 20.0)
    for name, times in episodes.items():
        assert len(times) >= 3, f"{name}: only {times}"
    assert all(times[0] <= 30.0 for times in episodes.values())


def test_other_seeds_thirty_seconds_then_trend_episode_per_symbol() -> None:
    for seed in (1, 2):
        for name, times in _episodes(SimConfig(seed=seed), 30.0, step_ms=100).items():
            assert times, f"seed {seed} {name}: no trending episode"


def test_no_trend_probability_then_no_large_one_second_moves() -> None:
    episodes = _episodes(SimConfig(trend_probability=0.0), 20.0, step_ms=100)
    assert episodes == {"BTCUSDT": [], "ETHUSDT": []}


def test_build_phase_then_touch_imbalanced_in_direction_of_coming_move() -> None:
    model = OrderFlowModel(SimConfig())
    signed: list[float] = []
    calm: list[float] = []
    for _ in range(2000):  # 20 s in 10 ms steps
        model.advance(10 * MS)
        for name in model.symbols:
            phase, direction = model.trend(name)
            if phase == "build":
                signed.append(_imbalance(model.touch(name)) * direction)
            elif phase == "calm":
                calm.append(_imbalance(model.touch(name)))
    assert len(signed) > 100
    assert sum(signed) / len(signed) > 0.3
    assert abs(sum(calm) / len(calm)) < 0.2  # no directional bias outside trends


# ---------------------------------------------------------------------------- faults, presets, rate


# sha256 of the first 3 virtual seconds for seed 11 (default config): faults, the server and refactors must never
# change what the model generates; change this pin only with a deliberate change of the model itself
PINNED_SEED_11 = "0ffcfa2f6ce5f0316f316d54302428186481cf195ef2fe045ea59829dec5d5a7"


def test_seed_11_three_seconds_then_output_matches_pinned_hash() -> None:
    digest = hashlib.sha256(b"".join(_run(OrderFlowModel(SimConfig(seed=11)), 3.0))).hexdigest()
    assert digest == PINNED_SEED_11


def test_scheduled_faults_in_config_then_model_output_identical() -> None:
    faults = [
        ScheduledFault(at_s=0.1, fault=SkipUpdates(symbol="BTCUSDT", frames=3)),
        ScheduledFault(at_s=0.2, fault=Malformed(count=5)),
        ScheduledFault(at_s=0.3, fault=DropConnection()),
    ]
    plain = OrderFlowModel(SimConfig(seed=9))
    faulty = OrderFlowModel(SimConfig(seed=9, faults=faults))
    assert _run(plain, 1.0) == _run(faulty, 1.0)
    assert plain.depth_snapshot("BTCUSDT", 1000) == faulty.depth_snapshot("BTCUSDT", 1000)


def test_depth_snapshot_of_earlier_copy_then_formats_like_the_snapshot_did_then() -> None:
    model = OrderFlowModel(SimConfig(seed=3))
    model.advance(500 * MS)
    state = model.book("ETHUSDT")
    then = model.depth_snapshot("ETHUSDT", 20)
    model.advance(500 * MS)
    assert model.depth_snapshot_of("ETHUSDT", state, 20) == then
    assert model.depth_snapshot_of("ETHUSDT", model.book("ETHUSDT"), 20) == model.depth_snapshot("ETHUSDT", 20)


def test_volatility_presets_then_volatile_moves_most_and_books_stay_valid() -> None:
    spread: dict[str, float] = {}
    for preset in ("calm", "normal", "volatile"):
        model = OrderFlowModel(SimConfig.from_preset(preset, seed=2))
        mids = []
        for _ in range(200):
            model.advance(100 * MS)
            bid, _, ask, _ = model.touch("BTCUSDT")
            assert 0 < bid < ask
            mids.append((bid + ask) / 2)
        returns = [math.log(b / a) for a, b in zip(mids[::10], mids[10::10], strict=False)]
        spread[preset] = statistics.pstdev(returns)
    assert spread["calm"] < spread["normal"] < spread["volatile"]
    assert spread["volatile"] > 2 * spread["normal"]


def test_fifty_thousand_events_per_second_then_rate_and_id_chain_hold() -> None:
    model = OrderFlowModel(SimConfig(events_per_second=50_000.0, depth_interval_ms=0))
    frames = _decode(model.advance(200 * MS))
    assert 9_000 < model.events < 11_000
    last_u: dict[str, int] = {}
    for msg in frames:
        data = msg["data"]
        if data.get("e") == "depthUpdate":
            if data["s"] in last_u:
                assert data["U"] == last_u[data["s"]] + 1
            last_u[data["s"]] = data["u"]
    assert set(last_u) == {"BTCUSDT", "ETHUSDT"}
