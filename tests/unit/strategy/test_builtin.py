"""The built-in strategies (hft.strategy.builtin) keep the seed's trading rules on the public API: one order in
flight per symbol, open/reverse on a signal, flatten after the holding period, decay, the kill switch."""

from __future__ import annotations

from hft.strategy.builtin.directional import S
from hft.strategy.testing import StrategyHarness
from shm_layout.counters import C_SIGNALS, W_COUNTERS
from shm_layout.records import (
    ORDER_MARKET,
    ORDER_POST_ONLY,
    SIDE_BUY,
    SIDE_SELL,
    TIF_GTD,
)

MS = 1_000_000
BTC = 0
LOOSE = {"min_confidence": 0.0, "holding_min_ms": 100.0, "holding_max_ms": 100.0}


def bid_heavy(h: StrategyHarness, step: int, gap_ms: int = 50, ask_size: float = 0.1) -> None:
    """A bid-heavy book whose mid rises by one tick per step (positive momentum)."""
    bid = 60000.00 + step * 0.01
    h.book("BTCUSDT", [(round(bid, 2), 0.9)], [(round(bid + 0.01, 2), ask_size)], ts=h.now + gap_ms * MS)


def test_imbalance_when_bid_heavy_then_buys_half_the_max_position_at_market() -> None:
    h = StrategyHarness("imbalance", params=LOOSE | {"max_position": 0.002})
    bid_heavy(h, 0)
    bid_heavy(h, 1)
    sent = h.sent()
    assert len(sent) == 1
    assert (sent[0]["side"], sent[0]["order_type"], sent[0]["size"]) == (SIDE_BUY, ORDER_MARKET, 100_000)
    assert h.proc[W_COUNTERS + C_SIGNALS] >= 1


def test_imbalance_when_order_in_flight_then_decides_nothing_until_its_report() -> None:
    h = StrategyHarness("imbalance", params=LOOSE)
    for step in range(4):
        bid_heavy(h, step)
    first = h.sent()
    assert len(first) == 1  # three more signals while the order had no report
    h.fill(int(first[0]["order_id"]))
    assert h.context.ints[BTC, S.open_id] == 0
    bid_heavy(h, 5, gap_ms=200)  # the holding period (100 ms) is over: the same signal does not add, ...
    assert len(h.sent()) == 0  # ... it restarts the holding period instead


def test_imbalance_when_holding_period_over_without_signal_then_flattens() -> None:
    h = StrategyHarness("imbalance", params=LOOSE)
    bid_heavy(h, 0)
    bid_heavy(h, 1)
    order = h.sent()[0]
    h.fill(int(order["order_id"]))
    h.book("BTCUSDT", [(60000.01, 0.5)], [(60000.02, 0.5)], ts=h.now + 500 * MS)  # balanced: no signal
    flatten = h.sent()
    assert len(flatten) == 1 and flatten[0]["side"] == SIDE_SELL and flatten[0]["size"] == order["size"]


def test_imbalance_when_signal_persists_while_flat_then_stops_reentering_after_decay() -> None:
    h = StrategyHarness("imbalance", params=LOOSE | {"signal_decay_ms": 100.0, "min_strength": 0.5})
    placed = []
    for step in range(8):  # bid-heavy and rising for 400 ms: fresh at first, stale later
        bid_heavy(h, step)
        for order in h.sent():
            placed.append(step)
            h.cancelled(int(order["order_id"]))  # never filled: still flat, so only decay can stop re-entry
    # fresh at step 0 (age 0); strength 2**(-age / 100 ms) stays >= 0.5 up to 100 ms later (step 2)
    assert placed == [0, 1, 2]


def test_imbalance_when_kill_switch_on_then_a_reversal_becomes_a_flattening_order() -> None:
    h = StrategyHarness("imbalance", params=LOOSE)
    bid_heavy(h, 0)
    bid_heavy(h, 1)
    h.fill(int(h.sent()[0]["order_id"]))  # long 0.5
    h.kill_switch(True)
    for step in range(2, 5):  # ask-heavy and falling: a sell signal, reversal to short wanted
        bid = 60000.00 - step * 0.01
        h.book("BTCUSDT", [(round(bid, 2), 0.1)], [(round(bid + 0.01, 2), 0.9)], ts=h.now + 50 * MS)
    sent = h.sent()
    assert len(sent) == 1 and sent[0]["side"] == SIDE_SELL and sent[0]["size"] == 50_000_000  # flat, not short


def test_imbalance_when_post_only_then_gtd_at_our_touch_with_its_ttl() -> None:
    h = StrategyHarness("imbalance", params=LOOSE | {"order_type": "post_only", "order_ttl_ms": 250.0})
    bid_heavy(h, 0)
    order = h.sent()[0]
    assert (order["order_type"], order["tif"], order["side"]) == (ORDER_POST_ONLY, TIF_GTD, SIDE_BUY)
    assert order["price"] == 6_000_000 and order["expire_ts"] == h.now + 250 * MS  # the book's best bid


def test_rules_when_buy_rule_holds_then_buys_and_flat_rule_closes_at_once() -> None:
    rules = ["imbalance > 0.5 -> buy", "abs(imbalance) < 0.1 -> flat"]
    h = StrategyHarness("rules", params={"rules": rules, "rule_holding_ms": 60_000.0})
    h.book("BTCUSDT", [(60000.00, 0.9)], [(60000.01, 0.1)])
    buy = h.sent()
    assert len(buy) == 1 and buy[0]["side"] == SIDE_BUY
    h.fill(int(buy[0]["order_id"]))
    h.book("BTCUSDT", [(60000.00, 0.5)], [(60000.01, 0.5)])  # flat: closes long before its holding period
    flat = h.sent()
    assert len(flat) == 1 and flat[0]["side"] == SIDE_SELL


def test_onnx_when_model_answers_then_the_strategy_acts_on_it() -> None:
    h = StrategyHarness("onnx")
    for step in range(30):
        bid_heavy(h, step, gap_ms=20, ask_size=0.05 if step % 2 else 0.1)
        for order in h.sent():
            h.fill(int(order["order_id"]))
    # the shipped model's answers arrived through the Python hook: model_out holds the last one
    assert h.context.model_out[3] > 0  # a holding period, in ms
    assert not h.halted
