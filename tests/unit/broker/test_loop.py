"""The skeleton broker: fills at the touch, rejections with reasons, positions in the reports."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from hft.broker.accounting import N_ACCOUNT
from hft.broker.loop import broker_loop
from hft.runtime import LOOP_STOPPED
from shm_layout.layout import (
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_BROKER,
    STAGE_BROKER,
    W_ABORT_REQUESTED,
    W_STOP_REQUESTED,
    Pipeline,
)
from shm_layout.records import (
    BOOK_SNAPSHOT,
    BOOK_SYNCED,
    CMD_NEW,
    ORDER,
    ORDER_LIMIT,
    ORDER_MARKET,
    REASON_BAD_ORDER,
    REASON_NO_MARKET,
    REASON_NOT_MARKETABLE,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_REJECTED,
    SYMBOL_INFO,
)

BID, ASK = 5_999_999, 6_000_001


class Broker:
    def __init__(self, instance: str) -> None:
        symbols = np.zeros(1, SYMBOL_INFO)
        self.pipeline = Pipeline.create(instance, symbols, {MD_EVENTS: 64, ORDERS: 64, EXECUTIONS: 64})
        self.account = np.zeros((1, N_ACCOUNT), np.int64)
        self.snapshot = np.zeros(1, BOOK_SNAPSHOT)
        self.next_id = 1

    def market(self, synced: bool = True) -> None:
        snap = np.zeros(1, BOOK_SNAPSHOT)
        snap["status"] = BOOK_SYNCED if synced else 0
        snap["bid_price"], snap["ask_price"] = BID, ASK
        self.pipeline.snapshots.write(0, snap)

    def send(self, side: int, size: int, order_type: int = ORDER_MARKET, price: int = 0, symbol: int = 0) -> None:
        order = np.zeros(1, ORDER)
        order["order_id"], order["side"], order["size"] = self.next_id, side, size
        order["order_type"], order["price"], order["command"], order["symbol_id"] = order_type, price, CMD_NEW, symbol
        self.next_id += 1
        assert self.pipeline.rings[ORDERS].try_publish(order) == 1

    def run(self) -> np.ndarray:
        p = self.pipeline
        orders, execs = p.rings[ORDERS], p.rings[EXECUTIONS]
        broker_loop(
            orders.ctrl, orders.slots, 0, p.snapshots.words, 1, self.snapshot, self.snapshot.view(np.int64),
            execs.ctrl, execs.slots, p.control.words, W_STOP_REQUESTED, STAGE_BROKER, W_ABORT_REQUESTED,
            p.control.process_words(PROC_BROKER), self.account, 100, 0, 1_000_000,
        )
        return execs.read(1, 64)  # the persistence consumer's view


@pytest.fixture
def broker(instance: str) -> Iterator[Broker]:
    b = Broker(instance)
    yield b
    b.pipeline.unlink()
    b.pipeline.close()


def test_market_buy_when_book_synced_then_filled_at_the_ask_with_taker_fee(broker: Broker) -> None:
    broker.market()
    broker.send(SIDE_BUY, 50_000)
    report = broker.run()[0]
    assert report["status"] == STATUS_FILLED
    assert report["price"] == ASK and report["size"] == 50_000 and report["leaves"] == 0
    assert report["position"] == 50_000
    assert report["fee"] == 50_000 * ASK // 10_000
    assert report["exec_id"] == 1 and report["order_id"] == 1


def test_long_then_sell_more_when_filled_then_reports_flip_to_short(broker: Broker) -> None:
    broker.market()
    broker.send(SIDE_BUY, 5)
    broker.send(SIDE_SELL, 8)
    reports = broker.run()
    assert [int(r["position"]) for r in reports] == [5, -3]
    assert reports[1]["price"] == BID


def test_limit_buy_when_not_crossing_then_rejected_not_marketable(broker: Broker) -> None:
    broker.market()
    broker.send(SIDE_BUY, 1, ORDER_LIMIT, price=ASK - 1)
    broker.send(SIDE_BUY, 1, ORDER_LIMIT, price=ASK + 5)
    reports = broker.run()
    assert reports[0]["status"] == STATUS_REJECTED and reports[0]["reason"] == REASON_NOT_MARKETABLE
    assert reports[1]["status"] == STATUS_FILLED and reports[1]["price"] == ASK  # fills at the touch


def test_order_when_book_not_synced_then_rejected_no_market(broker: Broker) -> None:
    broker.market(synced=False)
    broker.send(SIDE_BUY, 1)
    assert broker.run()[0]["reason"] == REASON_NO_MARKET


@pytest.mark.parametrize(("size", "symbol"), [(0, 0), (-5, 0), (1, 3)])
def test_order_when_malformed_then_rejected_bad_order(broker: Broker, size: int, symbol: int) -> None:
    broker.market()
    broker.send(SIDE_BUY, size, symbol=symbol)
    report = broker.run()[0]
    assert report["status"] == STATUS_REJECTED and report["reason"] == REASON_BAD_ORDER


def test_loop_when_stopping_then_drains_every_order_before_returning(broker: Broker) -> None:
    broker.market()
    for _ in range(20):
        broker.send(SIDE_BUY, 1)
    broker.pipeline.control.words[W_STOP_REQUESTED] = STAGE_BROKER
    p = broker.pipeline
    status = broker_loop(
        p.rings[ORDERS].ctrl, p.rings[ORDERS].slots, 0, p.snapshots.words, 1, broker.snapshot,
        broker.snapshot.view(np.int64), p.rings[EXECUTIONS].ctrl, p.rings[EXECUTIONS].slots, p.control.words,
        W_STOP_REQUESTED, STAGE_BROKER, W_ABORT_REQUESTED, p.control.process_words(PROC_BROKER), broker.account,
        0, 0, 10**9,
    )
    assert status == LOOP_STOPPED
    assert len(p.rings[EXECUTIONS].read(1, 64)) == 20
