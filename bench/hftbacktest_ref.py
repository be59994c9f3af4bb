"""Reference figure: hftbacktest (PyPI ``hftbacktest``) replaying the same recorded Binance spot file.

Why: to put the project's replay/backtest speed next to an established backtester's on identical input. The
file is hftbacktest's own spot example (``<local ns> <combined-stream JSON>`` lines plus one REST snapshot).

1. Conversion to hftbacktest's ``event_dtype`` (``convert_s``: JSON parsing + their fix-ups, the fix-ups' JIT
   compilation left out). Their ``binancefutures.convert`` needs futures fields (trade ``X``/``T``, depth and
   snapshot ``T``) that spot lines lack, so ``_convert`` does what it does with spot's fields: depth diffs ->
   DEPTH_EVENT rows, trades -> TRADE_EVENT rows, the snapshot -> DEPTH_CLEAR_EVENT + DEPTH_SNAPSHOT_EVENT per
   side; ``exch_ts`` = ``E`` (ms) * 1e6 (for the snapshot, which has none, the last ``E`` before it: the local
   clock is another clock); then their ``correct_local_timestamp`` / ``correct_event_order`` /
   ``validate_event_order``. bookTickers are skipped, as that converter does by default (no ``t`` option).
2. The same market maker as ``examples/market_maker.py`` joined at the touch (no skew), in hftbacktest's numba
   API: on every feed event one post-only (GTX) buy at the best bid and one sell at the best ask, 0.001 each,
   cancel + new when the touch moves, no new order on a side whose fills could take |position| past 0.005.
   HashMapMarketDepthBacktest, tick 0.01, lot 0.00001, 500 us entry latency (the project broker's default),
   risk-averse queue, no partial fills. Only the loop is timed; a first, uncounted run compiles it.

``python bench/hftbacktest_ref.py [path]`` prints the JSON document.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import sys
import time
from pathlib import Path

DEFAULT_PATH = (
    Path(__file__).resolve().parent.parent.parent
    / "shared" / "data" / "binance-spot" / "hftbacktest_spot_btcusdt_20240808.gz"
)
ORDER_SIZE = 0.001
MAX_POSITION = 0.005
ENTRY_LATENCY_NS = 500_000
_MM = None  # the jitted strategy, built on first use so that importing this module needs neither numba nor hbt


def available() -> bool:
    """hftbacktest importable (it is an optional, reference-only dependency)."""
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return False
    return True


def _convert(path: str):
    """The file -> hftbacktest events, as ``hftbacktest.data.utils.binancefutures.convert`` does for futures.

    Returns (events, input lines, JSON parsing seconds, fix-up seconds)."""
    import numpy as np
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
        event_dtype,
    )

    t0 = time.perf_counter()
    rows, lines, exch_ts = [], 0, 0
    with gzip.open(path, "rb") as f:
        for line in f:
            lines += 1
            local_ts = int(line[:19])
            msg = json.loads(line[20:])
            data = msg.get("data")
            if data is None:  # the REST snapshot: it has no exchange time; the last one seen is the closest
                ts = exch_ts or local_ts
                for side, levels in ((BUY_EVENT, msg["bids"]), (SELL_EVENT, msg["asks"])):
                    if levels:
                        rows.append((DEPTH_CLEAR_EVENT | side, ts, local_ts, float(levels[-1][0]), 0.0, 0, 0, 0.0))
                        rows.extend((DEPTH_SNAPSHOT_EVENT | side, ts, local_ts, float(px), float(qty), 0, 0, 0.0)
                                    for px, qty in levels)
                continue
            evt = data.get("e")
            if evt == "depthUpdate":
                exch_ts = data["E"] * 1_000_000
                for side, levels in ((BUY_EVENT, data["b"]), (SELL_EVENT, data["a"])):
                    rows.extend((DEPTH_EVENT | side, exch_ts, local_ts, float(px), float(qty), 0, 0, 0.0)
                                for px, qty in levels)
            elif evt == "trade":  # side: the initiator's, as in their converter
                exch_ts = data["E"] * 1_000_000
                side = SELL_EVENT if data["m"] else BUY_EVENT
                rows.append((TRADE_EVENT | side, exch_ts, local_ts, float(data["p"]), float(data["q"]), 0, 0, 0.0))
    tmp = np.array(rows, dtype=event_dtype)
    parse_s = time.perf_counter() - t0
    _fix(tmp[:64].copy())  # compiles their njit fix-ups outside the timing (~1 s, not conversion work)
    t0 = time.perf_counter()
    data = _fix(tmp)
    return data, lines, parse_s, time.perf_counter() - t0


def _fix(tmp):
    """hftbacktest's own fix-ups, as their converter applies them: clock offset, event order, validation."""
    import numpy as np
    from hftbacktest.data.validation import correct_event_order, correct_local_timestamp, validate_event_order

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the clock offset it corrects
        tmp = correct_local_timestamp(tmp, 0)
    data = correct_event_order(tmp, np.argsort(tmp["exch_ts"], kind="mergesort"),
                               np.argsort(tmp["local_ts"], kind="mergesort"))
    validate_event_order(data)
    return data


def _strategy():
    """The market maker, jitted once (a closure over hftbacktest's constants)."""
    global _MM
    if _MM is not None:
        return _MM
    from hftbacktest import BUY, CANCELED, GTX, LIMIT
    from numba import njit

    @njit
    def mm(hbt, size, max_pos):
        oid, submitted, cancels, wakeups = 0, 0, 0, 0
        while True:
            r = hbt.wait_next_feed(False, 3_600_000_000_000)
            if r != 2:
                if r == 0:
                    continue
                break  # 1: end of data; anything else is an error, which run() reports
            wakeups += 1
            depth = hbt.depth(0)
            bid, ask = depth.best_bid_tick, depth.best_ask_tick
            if bid <= 0 or ask <= bid or ask == 0x7FFFFFFFFFFFFFFF:
                continue
            hbt.clear_inactive_orders(0)
            pos = hbt.position(0)
            buys, sells, has_bid, has_ask = 0.0, 0.0, False, False
            values = hbt.orders(0).values()
            while values.has_next():
                o = values.get()
                target = bid if o.side == BUY else ask
                if o.price_tick == target and o.req != CANCELED:
                    if o.side == BUY:
                        has_bid = True
                    else:
                        has_ask = True
                elif o.cancellable:
                    hbt.cancel(0, o.order_id, False)
                    cancels += 1
                if o.side == BUY:  # every open order counts until it is gone: a cancel can lose the race
                    buys += o.leaves_qty
                else:
                    sells += o.leaves_qty
            if not has_bid and pos + buys + size <= max_pos + 1e-9:
                oid += 1
                hbt.submit_buy_order(0, oid, bid * depth.tick_size, size, GTX, LIMIT, False)
                submitted += 1
            if not has_ask and pos - sells - size >= -max_pos - 1e-9:
                oid += 1
                hbt.submit_sell_order(0, oid, ask * depth.tick_size, size, GTX, LIMIT, False)
                submitted += 1
        sv = hbt.state_values(0)
        return r, wakeups, submitted, cancels, sv.num_trades, sv.position, sv.trading_volume

    _MM = mm
    return mm


def _backtester(data):
    """A fresh backtester over the converted array (its construction is not timed)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data(data)
        .linear_asset(1.0)
        .constant_order_latency(ENTRY_LATENCY_NS, 0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0001)  # the project broker's defaults: maker 0, taker 1 bp
        .tick_size(0.01)
        .lot_size(0.00001)
    )
    return HashMapMarketDepthBacktest([asset])


def run(path: str = str(DEFAULT_PATH), repeats: int = 3) -> dict:
    """Convert once, then ``repeats`` timed backtests after one warm-up; never raises."""
    if not available():
        return {"skipped": "hftbacktest is not installed (pip install hftbacktest)"}
    try:
        import hftbacktest

        data, lines, parse_s, fix_s = _convert(path)
        mm = _strategy()
        loop_s, result = [], None
        for i in range(max(1, repeats) + 1):
            hbt = _backtester(data)
            t0 = time.perf_counter()
            result = mm(hbt, ORDER_SIZE, MAX_POSITION)
            elapsed = time.perf_counter() - t0
            hbt.close()
            if i:  # run 0 compiles
                loop_s.append(elapsed)
        end, wakeups, submitted, cancels, fills, position, volume = result
        if end != 1:
            return {"error": f"hftbacktest loop stopped with code {end}"}
        best = min(loop_s)
        return {
            "version": hftbacktest.__version__,
            "path": path,
            "lines": lines,
            "events": len(data),
            "convert_s": round(parse_s + fix_s, 4),  # without the fix-ups' JIT compilation
            "convert_parse_s": round(parse_s, 4),
            "convert_fixup_s": round(fix_s, 4),
            "loop_s": [round(s, 5) for s in loop_s],
            "loop_s_best": round(best, 5),
            "lines_per_s": round(lines / best),
            "events_per_s": round(len(data) / best),
            "feed_wakeups": wakeups,
            "orders_submitted": submitted,
            "cancels": cancels,
            "fills": int(fills),
            "final_position": round(float(position), 8),
            "traded_qty": round(float(volume), 8),
        }
    except Exception as e:  # a reference measurement must not take the caller down
        return {"error": f"{type(e).__name__}: {e}"}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_PATH))))
