"""The broker loop through real rings: md.events up to the strategy's cursor, orders in, reports out."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from hft.broker.loop import H_ORDER_TO_EXEC, H_TICK_TO_EXEC, broker_loop
from hft.broker.matching import (
    N_P,
    P_CLOCK_FALLBACK,
    P_LATENCY_NS,
    P_TAKER_FEE,
    ST_N_PENDING,
    ST_N_RESTING,
)
from hft.broker.state import new_broker_io, new_broker_state
from hft.feed.book import book_best
from hft.runtime import LOOP_STOPPED, LOOP_TIMEOUT
from shm_layout.counters import (
    C_BBO_UPDATES,
    C_CANCEL_REJECTS,
    C_CANCELS,
    C_ERRORS,
    C_FILLS,
    C_ORDERS,
    C_POST_ONLY_REJECTS,
    C_REJECTS,
    C_RESTING,
    H_COUNT,
    W_COUNTERS,
    hist_row,
)
from shm_layout.layout import (
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_BROKER,
    STAGE_BROKER,
    STAGE_STRATEGY,
    W_ABORT_REQUESTED,
    W_STOP_REQUESTED,
    Pipeline,
)
from shm_layout.records import (
    CMD_CANCEL,
    CMD_NEW,
    EV_BBO,
    EV_BOOK_LEVEL,
    EXEC_FIRST,
    FLAG_LAST_IN_FRAME,
    LIQUIDITY_TAKER,
    MD_EVENT,
    ORDER,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_BAD_ORDER,
    REASON_BAD_PRICE,
    REASON_BAD_SIZE,
    REASON_CANCEL_REQUESTED,
    REASON_NONE,
    REASON_POST_ONLY_WOULD_CROSS,
    REASON_SHUTDOWN,
    REASON_TOO_LATE_TO_CANCEL,
    REASON_UNKNOWN_SYMBOL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_REJECTED,
    SYMBOL_INFO,
    TIF_GTC,
)
from shm_layout.ring import ring_release, ring_tail
from shm_layout.wait import WAIT_BUSY_SPIN

BID, ASK = 5_999_999, 6_000_001
T0 = 1_700_000_000_000_000_000  # venue time of the first event
TAKER = 1_000  # 10 bps, in hundredths of a bp
SLICE_NS = 2_000_000
EV_NONE = 0  # not a market-data kind: the broker does nothing with it but let time pass


class Broker:
    """A pipeline whose feed and strategy are this test: it publishes md.events and orders, moves the strategy's
    cursor on md.events by hand, runs ``broker_loop`` for a slice and reads broker.executions as persistence."""

    def __init__(self, instance: str, *, live: bool = False, latency_ns: int = 0, max_orders: int = 32) -> None:
        symbols = np.zeros(1, SYMBOL_INFO)
        symbols["tick_size"], symbols["lot_size"] = 1, 1
        self.pipeline = p = Pipeline.create(instance, symbols, {MD_EVENTS: 64, ORDERS: 64, EXECUTIONS: 64})
        self.md, self.orders, self.execs = p.rings[MD_EVENTS], p.rings[ORDERS], p.rings[EXECUTIONS]
        self.strategy = self.md.consumer_index("strategy")
        self.md_consumer = self.md.consumer_index("broker")
        self.persistence = self.execs.consumer_index("persistence")
        # only the broker and this test read: the absent consumers must not gate the block rings
        self.execs.deactivate_consumer(self.execs.consumer_index("strategy"))
        self.orders.deactivate_consumer(self.orders.consumer_index("persistence"))
        params = np.zeros(N_P, np.int64)
        params[P_TAKER_FEE] = TAKER
        params[P_LATENCY_NS] = latency_ns
        params[P_CLOCK_FALLBACK] = 1 if live else 0
        syms = p.control.symbols
        grid = np.stack([syms["tick_size"], syms["lot_size"]], axis=1).astype(np.int64)
        self.bk = new_broker_state(1, grid, params, max_orders, depth_capacity=64)
        self.state, self.prices, self.sizes, self.counts = self.bk.state, self.bk.prices, self.bk.sizes, self.bk.counts
        self.proc = p.control.process_words(PROC_BROKER)
        self.io = new_broker_io(
            order_ctrl=self.orders.ctrl, order_slots=self.orders.slots,
            order_consumer=self.orders.consumer_index("broker"), md_ctrl=self.md.ctrl, md_slots=self.md.slots,
            md_consumer=self.md_consumer, strategy_md_consumer=self.strategy, snap_words=p.snapshots.words,
            exec_ctrl=self.execs.ctrl, exec_slots=self.execs.slots, control_words=p.control.words,
            stop_index=W_STOP_REQUESTED, stage=STAGE_BROKER, abort_index=W_ABORT_REQUESTED, proc=self.proc,
            wait_strategy=WAIT_BUSY_SPIN, md_batch_size=256,
        )
        self.event_ts: list[int] = []
        self.next_id = 1

    # --- the feed ---
    def publish(self, kind: int, side: int = 0, price: int = 0, size: int = 0, u: int = 0, flags: int = 0) -> None:
        event = np.zeros(1, MD_EVENT)
        ts = T0 + 1_000 * len(self.event_ts)
        event["ts_exch"], event["kind"], event["side"], event["price"], event["size"] = ts, kind, side, price, size
        event["update_id"], event["flags"] = u, flags
        assert self.md.try_publish(event) == 1
        self.event_ts.append(ts)

    def book(self, bid_size: int = 100_000, ask_size: int = 100_000) -> None:
        self.publish(EV_BOOK_LEVEL, SIDE_BUY, BID, bid_size)
        self.publish(EV_BOOK_LEVEL, SIDE_SELL, ASK, ask_size)

    # --- the strategy ---
    def consume(self, n: int | None = None) -> None:
        """The strategy processed ``n`` more events (default: all published)."""
        tail = ring_tail(self.md.ctrl, self.strategy)
        ring_release(self.md.ctrl, self.strategy, len(self.event_ts) if n is None else tail + n)

    def send(self, side: int, size: int, order_type: int = ORDER_MARKET, price: int = 0, symbol: int = 0,
             command: int = CMD_NEW, target: int = 0) -> int:
        """An order decided on every event the strategy consumed (its cursor, the last one's venue time)."""
        cursor = int(ring_tail(self.md.ctrl, self.strategy))
        order = np.zeros(1, ORDER)
        order_id = self.next_id
        self.next_id += 1
        order["order_id"], order["side"], order["size"], order["order_type"], order["tif"] = (
            order_id, side, size, order_type, TIF_GTC)
        order["price"], order["command"], order["symbol_id"] = price, command, symbol
        order["target_order_id"], order["strategy_id"] = target, 1
        order["md_cursor"], order["ts_exch"] = cursor, self.event_ts[cursor - 1] if cursor else T0
        assert self.orders.try_publish(order) == 1
        return order_id

    def cancel(self, target: int) -> int:
        return self.send(0, 0, 0, command=CMD_CANCEL, target=target)

    def tick(self) -> None:
        """Time passes on the venue: an event that changes no book (a kind the broker ignores), consumed by the
        strategy."""
        self.publish(EV_NONE)
        self.consume()

    # --- the broker ---
    def run(self, max_run_ns: int = SLICE_NS) -> int:
        return int(broker_loop(self.bk.ref, self.io.ref, max_run_ns))

    def stop(self) -> None:
        self.pipeline.control.words[W_STOP_REQUESTED] = STAGE_BROKER

    def reports(self) -> np.ndarray:
        return self.execs.read(self.persistence, 64)

    def counter(self, index: int) -> int:
        return int(self.proc[W_COUNTERS + index])

    def broker_cursor(self) -> int:
        return int(ring_tail(self.md.ctrl, self.md_consumer))


@pytest.fixture
def broker(instance: str) -> Iterator[Broker]:
    b = Broker(instance)
    yield b
    b.pipeline.unlink()
    b.pipeline.close()


def test_market_buy_when_book_consumed_then_filled_with_taker_fee_and_inputs_released(broker: Broker) -> None:
    broker.book()
    broker.consume()
    order_id = broker.send(SIDE_BUY, 50_000)
    broker.tick()
    assert broker.run() == LOOP_TIMEOUT
    (report,) = broker.reports()
    assert report["exec_id"] == 1 and report["order_id"] == order_id
    assert report["status"] == STATUS_FILLED and report["reason"] == REASON_NONE
    assert report["price"] == ASK and report["size"] == 50_000 and report["leaves"] == 0
    assert report["liquidity"] == LIQUIDITY_TAKER and report["flags"] == EXEC_FIRST
    assert report["fee"] == 50_000 * ASK * TAKER // 1_000_000
    assert report["position"] == 50_000 and report["mid_x2"] == BID + ASK
    assert report["ts_exch"] == broker.event_ts[1]  # arrived at its decision time (no latency)
    assert report["ts_init"] > 0
    assert broker.counter(C_ORDERS) == 1 and broker.counter(C_FILLS) == 1
    assert ring_tail(broker.orders.ctrl, 0) == 1 and broker.broker_cursor() == 3


def test_long_then_sell_more_when_filled_then_reports_flip_to_short(broker: Broker) -> None:
    broker.book()
    broker.consume()
    broker.send(SIDE_BUY, 5)
    broker.send(SIDE_SELL, 8)
    broker.tick()
    broker.run()
    reports = broker.reports()
    assert [int(r["position"]) for r in reports] == [5, -3]
    assert [int(r["price"]) for r in reports] == [ASK, BID]
    assert reports[1]["closed"] == 5 and reports[1]["realized_pnl"] == 5 * (BID - ASK) - sum(reports["fee"])
    assert list(reports["exec_id"]) == [1, 2]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"size": 0}, REASON_BAD_SIZE),
        ({"size": -5}, REASON_BAD_SIZE),
        ({"symbol": 3}, REASON_UNKNOWN_SYMBOL),
        ({"side": 0}, REASON_BAD_ORDER),
        ({"order_type": ORDER_LIMIT, "price": 0}, REASON_BAD_PRICE),
    ],
)
def test_order_when_malformed_then_rejected_at_once_without_market_data(
    broker: Broker, fields: dict[str, int], reason: int
) -> None:
    order_id = broker.send(**({"side": SIDE_BUY, "size": 1} | fields))
    broker.run()
    (report,) = broker.reports()
    assert report["order_id"] == order_id
    assert report["status"] == STATUS_REJECTED and report["reason"] == reason
    assert broker.counter(C_REJECTS) == 1 and broker.state[ST_N_PENDING] == 0


def test_loop_when_strategy_cursor_behind_then_never_applies_events_beyond_it(broker: Broker) -> None:
    broker.book()  # events 0 (bid) and 1 (ask)
    broker.publish(EV_BOOK_LEVEL, SIDE_SELL, ASK - 1, 10)  # event 2: a better ask the strategy has not seen
    broker.consume(2)
    order_id = broker.send(SIDE_BUY, 10)  # decided on events 0 and 1
    assert broker.run() == LOOP_TIMEOUT
    assert broker.reports().size == 0  # held: lock step, and no event after its arrival was released
    assert broker.broker_cursor() == 2
    assert book_best(broker.prices[0], broker.sizes[0], broker.counts[0], SIDE_SELL)[1] == ASK
    assert broker.state[ST_N_PENDING] == 1
    broker.consume(1)
    broker.run()
    (report,) = broker.reports()  # arrived before event 2: at the book the strategy saw
    assert report["order_id"] == order_id and report["price"] == ASK
    assert broker.broker_cursor() == 3
    assert book_best(broker.prices[0], broker.sizes[0], broker.counts[0], SIDE_SELL)[1] == ASK - 1


def test_loop_when_live_and_market_quiet_then_order_arrives_by_the_clock(instance: str) -> None:
    broker = Broker(instance, live=True, latency_ns=1_000)
    try:
        broker.book()
        broker.consume()
        broker.send(SIDE_SELL, 7)  # ts_init 0: its arrival on this machine's clock is long past
        broker.run()
        (report,) = broker.reports()
        assert report["status"] == STATUS_FILLED and report["price"] == BID and report["position"] == -7
    finally:
        broker.pipeline.unlink()
        broker.pipeline.close()


def test_loop_when_stopping_then_drains_every_order_before_returning(broker: Broker) -> None:
    broker.book()
    broker.consume()
    for _ in range(20):
        broker.send(SIDE_BUY, 1)  # no event after them: they arrive at the stop, against the final book
    broker.pipeline.control.words[W_STOP_REQUESTED] = STAGE_STRATEGY
    assert broker.run() == LOOP_TIMEOUT  # not our stage yet
    assert broker.reports().size == 0
    broker.stop()
    assert broker.run(10**9) == LOOP_STOPPED
    reports = broker.reports()
    assert len(reports) == 20
    assert all(r["status"] == STATUS_FILLED and r["price"] == ASK for r in reports)
    assert list(reports["exec_id"]) == list(range(1, 21))
    assert reports[-1]["position"] == 20


def test_loop_when_stopping_with_resting_orders_then_they_end_cancelled_shutdown(broker: Broker) -> None:
    broker.book()
    broker.consume()
    resting = broker.send(SIDE_BUY, 3, ORDER_LIMIT, BID - 1)
    broker.tick()
    broker.run()
    (ack,) = broker.reports()
    assert ack["order_id"] == resting and ack["status"] == STATUS_NEW and broker.state[ST_N_RESTING] == 1
    late = broker.send(SIDE_SELL, 2, ORDER_LIMIT, ASK + 1)  # still pending at the stop
    broker.stop()
    assert broker.run(10**9) == LOOP_STOPPED
    reports = broker.reports()
    assert [(int(r["order_id"]), int(r["status"]), int(r["reason"])) for r in reports] == [
        (late, STATUS_NEW, REASON_NONE),
        (resting, STATUS_CANCELLED, REASON_SHUTDOWN),
        (late, STATUS_CANCELLED, REASON_SHUTDOWN),
    ]
    assert all(r["leaves"] == 0 for r in reports[1:])
    assert broker.state[ST_N_RESTING] == 0 and broker.state[ST_N_PENDING] == 0
    assert broker.counter(C_CANCELS) == 2 and broker.counter(C_RESTING) == 2


def test_reports_when_cancel_race_and_post_only_cross_then_counted_apart_from_rejects(broker: Broker) -> None:
    broker.book()
    broker.consume()
    filled = broker.send(SIDE_BUY, 5)
    resting = broker.send(SIDE_BUY, 3, ORDER_LIMIT, BID - 1)
    crossing = broker.send(SIDE_BUY, 1, ORDER_POST_ONLY, ASK)
    too_late = broker.cancel(filled)
    done = broker.cancel(resting)
    broker.tick()
    broker.run()
    reports = broker.reports()
    assert [(int(r["order_id"]), int(r["status"]), int(r["reason"])) for r in reports] == [
        (filled, STATUS_FILLED, REASON_NONE),
        (resting, STATUS_NEW, REASON_NONE),
        (crossing, STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS),
        (too_late, STATUS_CANCEL_REJECTED, REASON_TOO_LATE_TO_CANCEL),
        (resting, STATUS_CANCELLED, REASON_CANCEL_REQUESTED),
        (done, STATUS_DONE, REASON_NONE),
    ]
    assert [int(r["target_order_id"]) for r in reports] == [0, 0, 0, filled, 0, resting]
    assert broker.counter(C_REJECTS) == 0  # nothing here was a wrong order
    assert broker.counter(C_POST_ONLY_REJECTS) == 1 and broker.counter(C_CANCEL_REJECTS) == 1
    assert broker.counter(C_CANCELS) == 1 and broker.counter(C_RESTING) == 1 and broker.counter(C_FILLS) == 1
    # order-to-execution latency: the first report of each of the three orders, none of the two commands
    for histogram in (H_ORDER_TO_EXEC, H_TICK_TO_EXEC):
        assert hist_row(broker.proc, histogram)[H_COUNT] == 3


def test_tickers_when_applied_then_counted_in_bbo_updates_and_malformed_ones_in_errors(broker: Broker) -> None:
    broker.book()  # 5,999,999 / 6,000,001: a two-tick spread with 6,000,000 inside it
    broker.publish(EV_BBO, SIDE_BUY, BID + 1, 4, u=10)
    broker.publish(EV_BBO, SIDE_SELL, ASK, 2, u=10, flags=FLAG_LAST_IN_FRAME)
    broker.publish(EV_BBO, SIDE_BUY, ASK, 4, u=11)  # locked: bid == ask
    broker.publish(EV_BBO, SIDE_SELL, ASK, 2, u=11, flags=FLAG_LAST_IN_FRAME)
    broker.consume()
    quote = broker.send(SIDE_SELL, 1, ORDER_POST_ONLY, BID + 1)  # at the ticker's bid: would cross
    broker.tick()
    broker.run()
    (report,) = broker.reports()
    assert (int(report["order_id"]), int(report["status"]), int(report["reason"])) == (
        quote, STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS)
    assert report["mid_x2"] == BID + 1 + ASK
    assert broker.counter(C_BBO_UPDATES) == 1 and broker.counter(C_ERRORS) == 1
    assert broker.counter(C_POST_ONLY_REJECTS) == 1 and broker.counter(C_REJECTS) == 0
