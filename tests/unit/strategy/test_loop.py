"""The strategy loop's decisions on crafted snapshots and events, through real shared-memory rings."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from hft.risk.config import RiskConfig, build_limits
from hft.risk.engine import make_risk_state
from hft.runtime import LOOP_STOPPED, LOOP_TIMEOUT
from hft.strategy.features import make_feature_state
from hft.strategy.kernels import (
    F_IMBALANCE,
    F_SPREAD_BPS,
    FEATURE_NAMES,
    configure_symbol,
    make_features,
    make_kernel_params,
    make_kernel_state,
)
from hft.strategy.loop import (
    GENERATORS,
    N_STATE,
    S_MAX_POSITION,
    S_OPEN_ORDER_ID,
    S_ORDER_SIZE,
    S_POSITION,
    strategy_loop,
)
from hft.strategy.rules import compile_rules
from procs.strategy import risk_reason_counters
from shm_layout.counters import C_ORDERS, C_RISK_REJECTS, C_TICKS, W_COUNTERS, C
from shm_layout.layout import (
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_STRATEGY,
    STAGE_STRATEGY,
    W_ABORT_REQUESTED,
    W_KILL_SWITCH,
    W_STOP_REQUESTED,
    Pipeline,
)
from shm_layout.records import (
    BOOK_SNAPSHOT,
    BOOK_SYNCED,
    EV_BOOK_LEVEL,
    EXEC_REPORT,
    FLAG_LAST_IN_FRAME,
    MD_EVENT,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    SYMBOL_INFO,
)
from shm_layout.ring import ring_tail
from tests.unit.strategy.test_signal_and_features import seed_params

ORDER_SIZE = 50_000
MAX_POSITION = 100_000


class Harness:
    """A pipeline in shared memory plus the strategy loop's private state, driven step by step."""

    def __init__(self, instance: str) -> None:
        symbols = np.zeros(1, SYMBOL_INFO)
        symbols[0]["name"] = b"BTCUSDT"
        self.pipeline = Pipeline.create(instance, symbols, {MD_EVENTS: 1024, ORDERS: 64, EXECUTIONS: 64})
        self.state = np.zeros((1, N_STATE), np.int64)
        self.state[0, S_ORDER_SIZE] = ORDER_SIZE
        self.state[0, S_MAX_POSITION] = MAX_POSITION
        self.params = seed_params()
        self.features = make_feature_state(1)
        self.md_batch = np.zeros(256, MD_EVENT)
        self.exec_batch = np.zeros(64, EXEC_REPORT)
        self.snapshot = np.zeros(1, BOOK_SNAPSHOT)
        self.broker_reader = 0  # orders ring consumer slot of "broker"
        self.clock = 1_000_000_000
        limits = build_limits(RiskConfig(max_position="0.001", max_order_size="0.001"), [(2, 8)])
        self.risk = (limits, *make_risk_state(limits))  # 0.001 BTC at 8 decimals = MAX_POSITION
        self.decision_clock = np.zeros(1, np.int64)
        self.reason_counters = risk_reason_counters()
        self.generators = np.full(1, GENERATORS["imbalance"], np.int64)
        self.kparams = make_kernel_params(1)
        configure_symbol(self.kparams, 0, window_ns=10_000_000_000, bucket_volume=100_000_000)
        self.kstate = tuple(make_kernel_state(1))
        self.kfeatures = make_features(1)
        self.rules = compile_rules(["imbalance > 2 -> flat"], FEATURE_NAMES)
        self.rule_stack = self.rules.make_stack()
        self.pending = np.zeros(4, np.int64)

    def book(self, bid_size: int, ask_size: int, mid_ticks: int = 6_000_000) -> None:
        snap = np.zeros(1, BOOK_SNAPSHOT)
        snap["status"] = BOOK_SYNCED
        snap["bid_price"], snap["ask_price"] = mid_ticks - 1, mid_ticks + 1
        snap["bid_size"], snap["ask_size"] = bid_size, ask_size
        snap["mid_x2"] = 2 * mid_ticks
        snap["spread"] = 2
        snap["imbalance"] = (bid_size - ask_size) / (bid_size + ask_size)
        self.clock += 50_000_000
        snap["ts_recv"] = self.clock
        snap["ts_exch"] = self.clock
        self.pipeline.snapshots.write(0, snap)
        event = np.zeros(1, MD_EVENT)
        event["kind"], event["flags"], event["ts_recv"] = EV_BOOK_LEVEL, FLAG_LAST_IN_FRAME, self.clock
        self.pipeline.rings[MD_EVENTS].try_publish(event)

    def step(self) -> int:
        p = self.pipeline
        md, orders, execs = p.rings[MD_EVENTS], p.rings[ORDERS], p.rings[EXECUTIONS]
        return strategy_loop(
            md.ctrl, md.slots, 0, self.md_batch, p.snapshots.words, self.snapshot, self.snapshot.view(np.int64),
            orders.ctrl, orders.slots, execs.ctrl, execs.slots, 0, self.exec_batch, p.control.words,
            W_STOP_REQUESTED, STAGE_STRATEGY, W_KILL_SWITCH, W_ABORT_REQUESTED,
            p.control.process_words(PROC_STRATEGY), self.state, self.params, 10_000_000_000, *self.features, 0,
            1_000_000, *self.risk, self.decision_clock, self.reason_counters, self.generators, self.kparams,
            *self.kstate, self.kfeatures, self.rules.program, self.rules.consts, self.rules.rule_starts,
            self.rules.actions, self.rule_stack, np.full(1, 1000.0),
            np.array([[0, len(self.rules.rules)]], np.int64), self.pending,
        )

    def orders(self) -> np.ndarray:
        return self.pipeline.rings[ORDERS].read(self.broker_reader, 64)

    def fill(self, order: np.void, position_after: int) -> None:
        report = np.zeros(1, EXEC_REPORT)
        report["order_id"] = order["order_id"]
        report["symbol_id"] = 0
        report["side"] = order["side"]
        report["size"] = order["size"]
        report["status"] = STATUS_FILLED
        report["position"] = position_after
        self.pipeline.rings[EXECUTIONS].try_publish(report)

    def counter(self, index: int) -> int:
        return int(self.pipeline.control.process_words(PROC_STRATEGY)[W_COUNTERS + index])

    def close(self) -> None:
        self.pipeline.unlink()
        self.pipeline.close()


@pytest.fixture
def harness(instance: str) -> Iterator[Harness]:
    h = Harness(instance)
    yield h
    h.close()


def trend_up(h: Harness) -> None:
    """Move the mid up 0.005 % (half a basis point) per tick for four ticks with a bid-heavy book.

    The loop reads the *latest* snapshot when it handles an event (seqlock semantics), so each tick is
    stepped on its own, as a live feed would interleave them.
    """
    for step in range(4):
        h.book(bid_size=900, ask_size=100, mid_ticks=6_000_000 + step * 300)
        h.step()


def test_loop_when_bid_imbalance_with_momentum_then_one_buy_market_order_at_the_ask(harness: Harness) -> None:
    trend_up(harness)
    assert harness.step() == LOOP_TIMEOUT
    orders = harness.orders()
    assert len(orders) == 1  # one order in flight per symbol, even though later ticks also signal
    order = orders[0]
    assert order["side"] == SIDE_BUY and order["size"] == ORDER_SIZE
    # 1st tick: no momentum yet (confidence 0.5); 2nd: momentum 0.005 % -> confidence 0.75 >= 0.7: buy its ask
    assert order["price"] == 6_000_000 + 300 + 1
    assert order["order_id"] == 1
    assert order["ts_tick_recv"] > 0 and order["ts_init"] > 0
    assert harness.counter(C_ORDERS) == 1
    assert harness.counter(C_TICKS) == 4


def test_loop_when_execution_report_arrives_then_position_follows_and_next_order_allowed(harness: Harness) -> None:
    trend_up(harness)
    harness.step()
    order = harness.orders()[0]
    harness.fill(order, ORDER_SIZE)
    harness.step()
    assert harness.state[0, S_POSITION] == ORDER_SIZE
    assert harness.state[0, S_OPEN_ORDER_ID] == 0
    # same-direction signal while long: no new order (target already held)
    trend_up(harness)
    harness.step()
    assert len(harness.orders()) == 0


def test_loop_when_signal_reverses_then_order_closes_and_reverses(harness: Harness) -> None:
    trend_up(harness)
    harness.step()
    harness.fill(harness.orders()[0], ORDER_SIZE)
    harness.step()
    for step in range(4):  # strong ask imbalance and a falling mid
        harness.book(bid_size=100, ask_size=900, mid_ticks=6_000_900 - step * 300)
        harness.step()
    orders = harness.orders()
    assert len(orders) == 1
    assert orders[0]["side"] == SIDE_SELL and orders[0]["size"] == 2 * ORDER_SIZE  # flat and short


def test_submit_order_when_kill_switch_active_then_denied(harness: Harness) -> None:
    harness.pipeline.control.words[W_KILL_SWITCH] = 1
    trend_up(harness)
    harness.step()
    assert len(harness.orders()) == 0
    assert harness.counter(C_RISK_REJECTS) >= 1
    assert harness.counter(C["risk_kill_switch"]) == harness.counter(C_RISK_REJECTS)


def test_submit_order_when_it_would_exceed_max_position_then_denied(harness: Harness) -> None:
    harness.state[0, S_ORDER_SIZE] = MAX_POSITION + 1
    trend_up(harness)
    harness.step()
    assert len(harness.orders()) == 0
    assert harness.counter(C_RISK_REJECTS) >= 1


def test_loop_when_book_not_synced_then_no_tick_evaluated(harness: Harness) -> None:
    event = np.zeros(1, MD_EVENT)
    event["flags"] = FLAG_LAST_IN_FRAME
    harness.pipeline.rings[MD_EVENTS].try_publish(event)  # snapshot slot still empty
    harness.step()
    assert harness.counter(C_TICKS) == 0


def test_loop_when_stop_stage_reached_and_input_drained_then_returns_stopped(harness: Harness) -> None:
    harness.pipeline.control.words[W_STOP_REQUESTED] = STAGE_STRATEGY
    assert harness.step() == LOOP_STOPPED


def test_reversal_when_kill_switch_active_then_cut_to_a_flattening_order(harness: Harness) -> None:
    trend_up(harness)
    harness.fill(harness.orders()[0], ORDER_SIZE)
    harness.step()
    harness.pipeline.control.words[W_KILL_SWITCH] = 1
    for step in range(4):  # a sell signal while long: close, but do not go short
        harness.book(bid_size=100, ask_size=900, mid_ticks=6_000_900 - step * 300)
        harness.step()
    orders = harness.orders()
    assert len(orders) == 1
    assert orders[0]["side"] == SIDE_SELL and orders[0]["size"] == ORDER_SIZE


def test_rules_generator_when_rule_matches_features_then_orders_follow_the_rule(harness: Harness) -> None:
    harness.generators[0] = GENERATORS["rules"]
    harness.rules = compile_rules(["spread_bps < 5 and imbalance < -0.5 -> buy", "imbalance > 0.5 -> flat"],
                                  FEATURE_NAMES)
    harness.rule_stack = harness.rules.make_stack()
    harness.book(bid_size=100, ask_size=900)  # imbalance -0.8, spread 2 ticks on 60,000.00: a contrarian buy
    harness.step()
    assert harness.kfeatures[0, F_IMBALANCE] == -0.8
    assert harness.kfeatures[0, F_SPREAD_BPS] < 5
    orders = harness.orders()
    assert len(orders) == 1 and orders[0]["side"] == SIDE_BUY
    harness.fill(orders[0], ORDER_SIZE)
    harness.step()
    harness.book(bid_size=900, ask_size=100)  # "flat" rule: close the long at once
    harness.step()
    orders = harness.orders()
    assert len(orders) == 1 and orders[0]["side"] == SIDE_SELL and orders[0]["size"] == ORDER_SIZE


def test_onnx_generator_when_tick_ready_then_handed_to_python_and_model_decision_becomes_an_order(
    harness: Harness,
) -> None:
    from hft.runtime import LOOP_NEED_MODEL
    from hft.strategy.loop import P_MD_CURSOR, P_SYMBOL, act_on_model

    harness.generators[0] = GENERATORS["onnx"]
    harness.book(bid_size=900, ask_size=100)
    harness.book(bid_size=800, ask_size=100)  # a second frame: it must stay unread until the model decided
    assert harness.step() == LOOP_NEED_MODEL
    assert harness.pending[P_SYMBOL] == 0
    md = harness.pipeline.rings[MD_EVENTS]
    assert ring_tail(md.ctrl, 0) == harness.pending[P_MD_CURSOR] == 1  # only the first frame is consumed
    assert harness.kfeatures[0, F_IMBALANCE] != 0.0  # features were updated before the hand-off
    limits, risk_state, risk_fstate = harness.risk
    orders = harness.pipeline.rings[ORDERS]
    act_on_model(0, 1, 500.0, harness.snapshot, harness.pending, harness.state, orders.ctrl, orders.slots,
                 harness.pipeline.control.words, W_KILL_SWITCH, W_ABORT_REQUESTED,
                 harness.pipeline.control.process_words(PROC_STRATEGY), 0, limits, risk_state, risk_fstate,
                 harness.decision_clock, harness.reason_counters)
    placed = harness.orders()
    assert len(placed) == 1 and placed[0]["side"] == SIDE_BUY and placed[0]["md_cursor"] == 1


def test_symbol_when_no_instance_trades_it_then_features_update_but_no_order(harness: Harness) -> None:
    harness.generators[0] = -1
    trend_up(harness)
    assert len(harness.orders()) == 0
    assert harness.counter(C_TICKS) == 4 and harness.kfeatures[0, F_IMBALANCE] == 0.8
