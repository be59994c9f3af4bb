"""The strategy API end to end in one process: callbacks, actions, status codes and risk, through the real
engine (``hft.strategy.testing.StrategyHarness``) and a test strategy loaded like a user's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hft.config import SymbolConfig
from hft.risk.config import RiskConfig
from hft.strategy.api import (
    DENIAL_NAMES,
    DENIED_CANCEL_RATE,
    DENIED_INVALID_ORDER,
    DENIED_KILL_SWITCH,
    DENIED_MAX_POSITION,
    DENIED_ORDER_RATE,
    E_CANCEL_PENDING,
    E_NO_MARKET,
    E_UNKNOWN_ORDER,
)
from hft.strategy.context import OO_CANCEL_ID, OO_ID, OO_LEAVES, OO_STATE, ORDER_OPEN, ORDER_PARTIAL
from hft.strategy.testing import StrategyHarness
from shm_layout.counters import C_ACTION_ERRORS, C_RISK_REJECTS, W_COUNTERS, C
from shm_layout.records import (
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_POST_ONLY_WOULD_CROSS,
    REASON_TOO_LATE_TO_CANCEL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    TIF_GTC,
    TIF_GTD,
    TIF_IOC,
)
from tests.unit.strategy.strategies import probe

PROBE = str(Path(probe.__file__))
P, S = probe.P, probe.S
BTC = 0
MS = 1_000_000


def harness(**kw) -> StrategyHarness:
    return StrategyHarness(PROBE, **kw)


def state(h: StrategyHarness, column: int) -> int:
    return int(h.context.ints[BTC, column])


def do(h: StrategyHarness, action: int) -> int:
    """Perform ``action`` on the next ticker; return its result."""
    h.context.params[P.action] = action
    h.bbo("BTCUSDT", 60000.00, 1.5, 60000.10, 2.0)
    return state(h, S.result)


def quoted() -> tuple[StrategyHarness, int, int]:
    h = harness()
    do(h, probe.QUOTE)
    h.sent()
    return h, state(h, S.bid_id), state(h, S.ask_id)


def test_callbacks_when_each_event_arrives_then_each_callback_runs_once_per_event() -> None:
    h = harness(params={"timer_ms": 10.0})
    assert state(h, S.starts) == 1
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    h.bbo("BTCUSDT", 60000.0, 1.0, 60000.1, 1.0)
    h.trade("BTCUSDT", 60000.1, 0.5, SIDE_BUY)
    assert (state(h, S.books), state(h, S.bbos), state(h, S.trades)) == (1, 1, 1)
    timers = state(h, S.timers)
    h.advance(35 * MS)  # a quiet market: the venue clock moves by the harness alone
    assert state(h, S.timers) == timers + 1  # fell behind: fires once, at the last point of its grid


def test_ctx_when_ticker_and_trade_then_market_view_and_clock_follow() -> None:
    h = harness()
    h.bbo("BTCUSDT", 60000.00, 1.5, 60000.10, 2.0, ts=2_000 * MS)
    h.trade("BTCUSDT", 60000.10, 0.25, SIDE_SELL, ts=2_001 * MS)
    bbo = h.runtime.market.bbo[BTC]
    assert bbo[:4].tolist() == [6_000_000, 150_000_000, 6_000_010, 200_000_000]
    assert h.runtime.market.last_trade[BTC, :4].tolist() == [6_000_010, 25_000_000, SIDE_SELL, 2_001 * MS]
    assert h.runtime.clock == 2_001 * MS
    assert h.runtime.market.features[BTC, 10] == -1.0  # trade_flow: one seller-initiated print


def test_post_only_both_sides_then_two_open_orders_of_one_symbol_are_tracked() -> None:
    h, bid_id, ask_id = quoted()
    commands = h.all_sent()
    assert commands["command"].tolist() == [CMD_NEW, CMD_NEW]
    assert commands["side"].tolist() == [SIDE_BUY, SIDE_SELL]
    assert commands["price"].tolist() == [6_000_000, 6_000_010]
    assert commands["order_type"].tolist() == [ORDER_POST_ONLY] * 2 and commands["tif"].tolist() == [TIF_GTC] * 2
    assert (commands["strategy_id"] == 1).all() and (commands["ts_exch"] == h.now).all()
    assert (commands["md_cursor"] == h.md_cursor).all()  # the market state the decision saw
    rows = h.context.open_orders()
    assert sorted(rows[:, OO_ID].tolist()) == sorted([bid_id, ask_id]) and bid_id > 0 and ask_id > 0


def test_execution_reports_when_ack_partial_fill_then_rows_follow_and_callback_sees_each() -> None:
    h, bid_id, ask_id = quoted()
    h.ack(bid_id)
    assert state(h, S.last_status) == STATUS_NEW
    assert h.context.open_orders()[0, OO_STATE] == ORDER_OPEN
    h.fill(bid_id, size=0.0004)
    assert state(h, S.last_status) == STATUS_PARTIALLY_FILLED and state(h, S.last_filled) == 40_000
    row = h.context.open_orders()[h.context.open_orders()[:, OO_ID] == bid_id][0]
    assert (row[OO_STATE], row[OO_LEAVES]) == (ORDER_PARTIAL, 60_000)
    h.fill(bid_id)
    assert state(h, S.last_status) == STATUS_FILLED and h.position("BTCUSDT") == 0.001
    assert bid_id not in h.context.open_orders()[:, OO_ID]
    h.reject(ask_id, REASON_POST_ONLY_WOULD_CROSS)
    assert (state(h, S.last_status), state(h, S.last_reason)) == (STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS)
    assert len(h.context.open_orders()) == 0
    assert state(h, S.executions) == 4


def test_expiry_when_gtd_limit_expires_then_execution_callback_and_row_freed() -> None:
    h = harness()
    order_id = do(h, probe.LIMIT_GTD)
    command = h.sent()[0]
    assert (command["order_type"], command["tif"], command["expire_ts"]) == (ORDER_LIMIT, TIF_GTD, h.now + 1000 * MS)
    h.ack(order_id)
    h.expired(order_id)
    assert state(h, S.last_status) == STATUS_EXPIRED and len(h.context.open_orders()) == 0


def test_cancel_when_order_open_then_command_targets_it_and_row_stays_until_cancelled() -> None:
    h, bid_id, _ = quoted()
    h.ack(bid_id)
    cancel_id = do(h, probe.CANCEL_BID)
    command = h.sent()[0]
    assert cancel_id > bid_id and (command["command"], command["target_order_id"]) == (CMD_CANCEL, bid_id)
    row = h.context.open_orders()[h.context.open_orders()[:, OO_ID] == bid_id][0]
    assert row[OO_CANCEL_ID] == cancel_id  # pending: still open until its report
    assert do(h, probe.CANCEL_BID) == E_CANCEL_PENDING
    h.answer_cancels()
    assert state(h, S.last_status) == STATUS_CANCELLED and bid_id not in h.context.open_orders()[:, OO_ID]
    assert do(h, probe.CANCEL_BID) == E_UNKNOWN_ORDER  # nothing open under that id any more
    assert h.denials() == {"cancel_pending": 1, "unknown_order": 1}
    assert h.proc[W_COUNTERS + C_ACTION_ERRORS] == 2


def test_cancel_race_when_fill_wins_then_cancel_rejected_reaches_the_strategy_and_nothing_freezes() -> None:
    h, bid_id, _ = quoted()
    do(h, probe.CANCEL_BID)
    h.fill(bid_id)  # the fill was on its way when the cancel left
    h.answer_cancels(too_late=(bid_id,))
    assert (state(h, S.last_status), state(h, S.last_reason)) == (STATUS_CANCEL_REJECTED, REASON_TOO_LATE_TO_CANCEL)
    assert state(h, S.last_target) == bid_id and h.position("BTCUSDT") == 0.001
    assert do(h, probe.MARKET_BUY) > 0  # cancel races never trip the reject storm: the strategy still trades


def test_cancel_all_then_one_command_for_the_symbol_and_every_row_pending() -> None:
    h, _, _ = quoted()
    cancel_id = do(h, probe.CANCEL_ALL)
    command = h.sent()[0]
    assert (command["command"], command["symbol_id"], command["strategy_id"]) == (CMD_CANCEL_ALL, BTC, 1)
    assert set(h.context.open_orders()[:, OO_CANCEL_ID].tolist()) == {cancel_id}
    assert do(h, probe.CANCEL_ALL) == 0  # nothing left to cancel: nothing sent
    assert len(h.sent()) == 0
    h.answer_cancels()
    assert len(h.context.open_orders()) == 0


def test_replace_then_cancel_then_new_order_of_the_same_kind_at_the_new_price() -> None:
    h, bid_id, _ = quoted()
    new_id = do(h, probe.REPLACE_BID)
    cancel_cmd, new_cmd = h.sent()
    assert (cancel_cmd["command"], cancel_cmd["target_order_id"]) == (CMD_CANCEL, bid_id)
    assert (new_cmd["order_id"], new_cmd["command"], new_cmd["order_type"], new_cmd["side"]) == (
        new_id, CMD_NEW, ORDER_POST_ONLY, SIDE_BUY)
    assert new_cmd["price"] == 6_000_000 - 1
    assert len(h.context.open_orders()) == 3  # the replaced one until its CANCELLED report


def test_submit_when_position_limit_would_be_passed_by_open_orders_then_denied_by_reason() -> None:
    h = harness(risk=RiskConfig(max_position="0.0015", max_order_size="1", max_orders_per_second=1000.0,
                                order_burst=1000))
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    assert do(h, probe.MARKET_BUY) > 0  # 0.001 open, not filled yet
    assert do(h, probe.MARKET_BUY) == DENIED_MAX_POSITION  # worst case: 0.002 > 0.0015
    assert h.denials() == {"max_position": 1}
    assert h.proc[W_COUNTERS + C_RISK_REJECTS] == 1 and h.proc[W_COUNTERS + C["risk_max_position"]] == 1


def test_flood_when_orders_exceed_the_rate_then_denied_by_order_rate_and_counted() -> None:
    h = harness(risk=RiskConfig(max_position="1000", max_order_size="1", max_orders_per_second=5.0, order_burst=5))
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    assert do(h, probe.FLOOD) == DENIED_ORDER_RATE
    assert len(h.sent()) == 5 and h.denials() == {"order_rate": 1}


def test_cancels_when_flooding_then_denied_by_the_cancel_rate() -> None:
    h = harness(risk=RiskConfig(max_cancels_per_second=1.0, cancel_burst=1))
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    do(h, probe.QUOTE)
    assert do(h, probe.CANCEL_BID) > 0
    assert do(h, probe.CANCEL_ALL) == DENIED_CANCEL_RATE
    assert h.denials() == {"cancel_rate": 1}


def test_kill_switch_when_on_then_new_exposure_denied_and_reduction_allowed() -> None:
    h = harness()
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    h.kill_switch(True)
    assert do(h, probe.MARKET_BUY) == DENIED_KILL_SWITCH


def test_submit_when_price_off_tick_then_invalid_order() -> None:
    symbol = SymbolConfig(name="BTCUSDT", tick_size="0.10")
    h = harness(symbols=[symbol])
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    assert do(h, probe.OFF_TICK) == DENIED_INVALID_ORDER
    assert len(h.sent()) == 0


def test_market_order_when_no_touch_then_no_market() -> None:
    h = harness()
    h.context.params[P.action] = probe.MARKET_BUY
    h.trade("BTCUSDT", 60000.0, 1.0, SIDE_BUY)  # no action on trades: the next ticker is empty
    h.bbo("BTCUSDT", 0.0, 0.0, 0.0, 0.0)
    assert state(h, S.result) == E_NO_MARKET


def test_best_bid_when_ticker_newer_than_book_then_ticker_else_book() -> None:
    h = harness()
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.5, 1.0)])
    h.context.params[P.action] = probe.MARKET_BUY
    h.bbo("BTCUSDT", 60000.2, 1.0, 60000.3, 1.0)  # newer update id than the book: its ask prices the order
    h.context.params[P.action] = probe.MARKET_BUY
    h.book("BTCUSDT", [(60000.1, 1.0)], [(60000.4, 1.0)])  # a diff that covers the ticker: the book's ask
    assert h.sent()["price"].tolist() == [6_000_030, 6_000_040]


def test_model_hook_when_requested_then_python_answers_and_on_model_gets_it() -> None:
    h = harness(params={"with_model": True})
    assert do(h, probe.MODEL) == 0
    assert state(h, S.models) == 1 and h.context.floats[BTC, S.model_answer] == 42.0


def test_callback_when_it_raises_then_instance_halted_orders_cancelled_and_nothing_crashes(caplog) -> None:
    h, _, _ = quoted()
    do(h, probe.RAISE)
    assert h.halted
    commands = h.sent()
    assert commands["command"].tolist() == [CMD_CANCEL_ALL]  # its open orders, cancelled for it
    assert "on_bbo raised IndexError" in caplog.text
    books = state(h, S.bbos)
    h.bbo("BTCUSDT", 60000.0, 1.0, 60000.1, 1.0)
    assert state(h, S.bbos) == books  # no more callbacks
    h.answer_cancels()
    assert len(h.context.open_orders()) == 0  # its reports still keep the table right
    assert h.proc[W_COUNTERS + C["strategy_faults"]] == 1


def test_denial_names_when_codes_are_negated_then_each_has_a_name() -> None:
    assert DENIAL_NAMES[-DENIED_MAX_POSITION] == "max_position" and DENIAL_NAMES[-E_UNKNOWN_ORDER] == "unknown_order"
    assert len(set(DENIAL_NAMES)) == len(DENIAL_NAMES)


def test_market_order_then_priced_at_far_touch_with_ioc() -> None:
    h = harness()
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    do(h, probe.MARKET_BUY)
    command = h.sent()[0]
    assert (command["order_type"], command["tif"], command["price"]) == (ORDER_MARKET, TIF_IOC, 6_000_010)


@pytest.mark.parametrize("value", [0.00099, 0.001, 0.0010000001])
def test_to_size_when_value_not_on_lot_then_rounded_down(value: float) -> None:
    h = harness(params={"size": value})
    h.book("BTCUSDT", [(60000.0, 1.0)], [(60000.1, 1.0)])
    do(h, probe.MARKET_BUY)
    assert h.sent()[0]["size"] == (99_000 if value < 0.001 else 100_000)
    assert np.all(h.all_sent()["size"] % 1000 == 0)
