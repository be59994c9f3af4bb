"""CANCEL and CANCEL_ALL commands end with a report of their own, so no command is left without a final state.

The simulator is driven through its kernels with the ``Sim`` harness of ``test_matching``: every number is
exact. The counters of those reports are checked through the real loop in ``test_loop``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hft.broker.matching import ST_N_PENDING, ST_N_RESTING, cancel_held
from shm_layout.records import (
    EXEC_FIRST,
    ORDER_IOC,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_CANCEL_REQUESTED,
    REASON_NONE,
    REASON_STRATEGY_DOWN,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_REJECTED,
    TIF_GTD,
)
from tests.unit.broker.test_matching import MID_X2, T0, Sim, check, statuses

FINAL = {STATUS_FILLED, STATUS_CANCELLED, STATUS_REJECTED, STATUS_EXPIRED, STATUS_DONE, STATUS_CANCEL_REJECTED}


def test_cancel_all_when_three_orders_rest_then_each_cancelled_then_one_done_for_the_command() -> None:
    sim = Sim()
    sim.book()
    orders = [sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000 + k) for k in range(3)]
    sim.arrive()
    command = sim.cancel_all(strategy=1, symbol=0)
    reports = sim.arrive()
    assert statuses(reports) == [(order_id, STATUS_CANCELLED, REASON_CANCEL_REQUESTED) for order_id in orders] + [
        (command, STATUS_DONE, REASON_NONE)]
    check(reports[-1], target_order_id=0, symbol_id=0, strategy_id=1, flags=EXEC_FIRST, size=0, leaves=0,
          mid_x2=MID_X2, ts_exch=T0)
    assert sim.state[ST_N_RESTING] == 0 and sim.state[ST_N_PENDING] == 0


def test_cancel_all_when_nothing_rests_then_still_done() -> None:
    sim = Sim()
    sim.book()
    command = sim.cancel_all(strategy=1, symbol=-1)
    (report,) = sim.arrive()
    check(report, order_id=command, status=STATUS_DONE, reason=REASON_NONE, symbol_id=-1, position=0, mid_x2=0,
          target_order_id=0)


def test_cancel_held_when_cancel_commands_pending_then_done_with_the_same_reason_after_the_orders() -> None:
    sim = Sim(latency_ns=1_000)
    sim.book()
    resting = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000)
    sim.tick(ts=T0 + 2_000)  # it rests
    cancel = sim.cancel(resting)  # decided now, arrives 1,000 ns later: still pending when the strategy dies
    cancel_all = sim.cancel_all(strategy=1, symbol=-1)
    assert cancel_held(sim.bk.ref, REASON_STRATEGY_DOWN, T0 + 2_500, 0) == 1
    reports = sim.reports()
    assert statuses(reports) == [(resting, STATUS_CANCELLED, REASON_STRATEGY_DOWN),
                                 (cancel, STATUS_DONE, REASON_STRATEGY_DOWN),
                                 (cancel_all, STATUS_DONE, REASON_STRATEGY_DOWN)]
    check(reports[1], target_order_id=resting, flags=EXEC_FIRST, ts_exch=T0 + 3_000, side=0, order_type=0)
    check(reports[2], target_order_id=0, symbol_id=-1, flags=EXEC_FIRST)
    assert sim.state[ST_N_PENDING] == 0 and sim.state[ST_N_RESTING] == 0


def test_cancel_held_when_another_strategy_dies_then_its_commands_only() -> None:
    sim = Sim()
    sim.book()
    mine = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000, strategy=1)
    sim.arrive()
    sim.cancel(mine, strategy=1)
    theirs = sim.cancel_all(strategy=2, symbol=0)
    assert cancel_held(sim.bk.ref, REASON_STRATEGY_DOWN, T0, 2) == 0
    assert statuses(sim.reports()) == [(theirs, STATUS_DONE, REASON_STRATEGY_DOWN)]
    assert sim.state[ST_N_PENDING] == 1 and sim.state[ST_N_RESTING] == 1  # strategy 1's cancel and order stay


def _script(sim: Sim) -> tuple[list[int], np.ndarray]:
    """New orders of every kind, cancels that win and lose their race, cancel-alls, post-only crosses, expiries,
    market data in between, then the stop: return every id sent and every report."""
    sim.book(bids=[(10_000, 10), (9_999, 5)], asks=[(10_002, 10), (10_003, 5)])
    sent: list[int] = []
    reports: list[np.ndarray] = []

    def send(*args: int, **kw: int) -> int:
        sent.append(sim.send(*args, **kw))
        return sent[-1]

    resting = send(SIDE_BUY, 4, ORDER_LIMIT, 10_000)
    quote = send(SIDE_SELL, 2, ORDER_POST_ONLY, 10_002)
    send(SIDE_BUY, 1, ORDER_POST_ONLY, 10_002)  # crosses: rejected
    market = send(SIDE_BUY, 3, ORDER_MARKET)
    send(SIDE_SELL, 5, ORDER_LIMIT, 10_003, TIF_GTD, expire_ts=T0 + 250)  # expires at the print
    reports.append(sim.tick())
    sent.append(sim.cancel(market))  # already filled: too late
    sent.append(sim.cancel(resting))
    sent.append(sim.cancel(resting))  # the second of two: its target is gone by then
    sent.append(sim.cancel(10_000))  # never sent
    reports.append(sim.level(SIDE_SELL, 10_002, 6))
    reports.append(sim.trade(SIDE_BUY, 10_002, 9))  # at T0 + 300: fills the quote behind 6
    send(SIDE_SELL, 1, ORDER_POST_ONLY, 10_000)  # crosses the bid: rejected
    send(SIDE_BUY, 2, ORDER_IOC, 10_002)
    late = send(SIDE_BUY, 1, ORDER_LIMIT, 9_990)
    sent.append(sim.cancel_all(strategy=1, symbol=0))
    sent.append(sim.cancel(quote))
    reports.append(sim.trade(SIDE_SELL, 9_999, 1))
    send(SIDE_SELL, 1, ORDER_LIMIT, 10_050)  # rests to the stop
    sent.append(sim.cancel(late))
    reports.append(sim.tick(ts=T0 + 500))
    pending = sim.cancel_all(strategy=1, symbol=-1)
    sent.append(pending)
    assert sim.shutdown() == 0
    reports.append(sim.reports())
    return sent, np.concatenate(reports)


def test_commands_when_mixed_script_then_every_id_has_exactly_one_final_report_and_it_comes_last() -> None:
    sim = Sim(taker=1_000, maker=-100)
    sent, reports = _script(sim)
    finals = Counter(int(r["order_id"]) for r in reports if int(r["status"]) in FINAL)
    assert sorted(finals) == sorted(sent) and set(finals.values()) == {1}
    for order_id in sent:
        mine = reports[reports["order_id"] == order_id]
        assert int(mine[-1]["status"]) in FINAL, f"order {order_id} ends with a non-final report"
        assert int(mine[0]["flags"]) == EXEC_FIRST and not any(int(r["flags"]) for r in mine[1:])
    every_status = Counter(int(r["status"]) for r in reports if int(r["status"]) in FINAL)
    assert set(every_status) == FINAL  # the script reaches every final status
    assert sim.state[ST_N_PENDING] == 0 and sim.state[ST_N_RESTING] == 0


@pytest.mark.parametrize("command", ["cancel", "cancel_all"])
def test_command_report_when_symbol_has_a_position_then_carries_the_account_of_the_symbol(command: str) -> None:
    # the newest report of a symbol is what a restarted broker restores its position from
    sim = Sim(taker=1_000)
    sim.book()
    sim.send(SIDE_BUY, 3, ORDER_MARKET)
    sim.arrive()
    target = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000)
    sim.arrive()
    sim.cancel(target) if command == "cancel" else sim.cancel_all(strategy=1, symbol=0)
    _, report = sim.arrive()
    check(report, status=STATUS_DONE, position=3, entry_notional=3 * 10_001, realized_pnl=-30, total_fees=30,
          symbol_id=0, mid_x2=MID_X2, side=0, order_type=0, tif=0)
