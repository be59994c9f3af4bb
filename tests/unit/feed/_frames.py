"""Builders of Binance combined-stream frames and REST snapshots for the feed tests."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from hft.feed.engine import FeedEngine, SymbolSpec

BTC = SymbolSpec("BTCUSDT", 0, 2, 8)
ETH = SymbolSpec("ETHUSDT", 3, 2, 8)
# a coarse grid that every price and size of the frames below respects: tick 0.05, lot 0.00001
BTC_GRID = SymbolSpec("BTCUSDT", 0, 2, 8, tick_size=5, lot_size=1000)

Levels = list[tuple[str, str]]


def depth(
    first: int, last: int, bids: Levels = (), asks: Levels = (), symbol: str = "BTCUSDT", event_ms: int = 1_000
) -> bytes:
    return json.dumps(
        {
            "stream": f"{symbol.lower()}@depth@100ms",
            "data": {
                "e": "depthUpdate",
                "E": event_ms,
                "s": symbol,
                "U": first,
                "u": last,
                "b": [list(level) for level in bids],
                "a": [list(level) for level in asks],
            },
        },
        separators=(",", ":"),
    ).encode()


def book_ticker(update_id: int, bid: str, bid_qty: str, ask: str, ask_qty: str, symbol: str = "BTCUSDT") -> bytes:
    data = {"u": update_id, "s": symbol, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}
    return json.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": data}).encode()


def trade(
    trade_id: int, price: str, qty: str, buyer_is_maker: bool, symbol: str = "BTCUSDT", event_ms: int = 2_000
) -> bytes:
    data = {
        "e": "trade",
        "E": event_ms,
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": qty,
        "T": event_ms - 1,
        "m": buyer_is_maker,
        "M": True,
    }
    return json.dumps({"stream": f"{symbol.lower()}@trade", "data": data}).encode()


def snapshot(last_update_id: int, bids: Levels, asks: Levels) -> bytes:
    return json.dumps(
        {"lastUpdateId": last_update_id, "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}
    ).encode()


BASE_BIDS: Levels = [("100.00", "1.0"), ("99.00", "2.0"), ("98.00", "3.0")]
BASE_ASKS: Levels = [("101.00", "1.5"), ("102.00", "2.5"), ("103.00", "3.5")]


def synced_engine(last_update_id: int = 1000, spec: SymbolSpec = BTC, **kwargs: int) -> FeedEngine:
    """An engine whose BTCUSDT book is synced at ``last_update_id`` from BASE_BIDS/BASE_ASKS."""
    engine = FeedEngine([spec], **kwargs)
    engine.on_frame(depth(last_update_id - 5, last_update_id - 3), 1)
    assert engine.on_snapshot("BTCUSDT", snapshot(last_update_id, BASE_BIDS, BASE_ASKS), 2) > 0
    return engine


def levels_of(engine: FeedEngine, symbol: str = "BTCUSDT") -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    bp, bs, ap, asz = engine.book(symbol)
    return list(zip(bp.tolist(), bs.tolist(), strict=True)), list(zip(ap.tolist(), asz.tolist(), strict=True))


def mutated_frames() -> st.SearchStrategy[bytes]:
    """Valid frames of each channel with 1-4 random byte flips, deletions or duplications."""
    seeds = [
        depth(1001, 1002, [("100.00", "0"), ("99.50", "0.5")], [("101.00", "4")]),
        book_ticker(1001, "100.00", "1", "101.00", "2"),
        trade(9, "100.50", "0.1", True),
    ]

    def mutate(seed: bytes, data: st.DataObject) -> bytes:
        out = bytearray(seed)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(out) - 1))
            op = data.draw(st.sampled_from(["flip", "del", "dup"]))
            if op == "flip":
                out[i] = data.draw(st.sampled_from(list(b'{}[]",: 0-.19eEtfn\\')) | st.integers(0, 255))
            elif op == "del":
                del out[i]
            else:
                out[i:i] = out[i : i + data.draw(st.integers(1, 8))]
            if not out:
                break
        return bytes(out)

    return st.builds(mutate, st.sampled_from(seeds), st.data())
