"""What a restarted broker ends from the rings' history: every order and cancel command the dead one held."""

from __future__ import annotations

import numpy as np

from hft.broker.accounting import K_POSITION, N_ACCOUNT
from hft.broker.recovery import cancellation_reports, orphaned_orders, restore_account
from shm_layout.records import (
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    EXEC_FIRST,
    EXEC_REPORT,
    ORDER,
    ORDER_LIMIT,
    REASON_BROKER_RESTART,
    SIDE_BUY,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    TIF_GTC,
)


def _orders(*rows: tuple[int, int, int]) -> np.ndarray:
    """(order_id, command, target) rows, all symbol 0, strategy 1."""
    orders = np.zeros(len(rows), ORDER)
    for k, (order_id, command, target) in enumerate(rows):
        orders[k]["order_id"], orders[k]["command"], orders[k]["target_order_id"] = order_id, command, target
        if command == CMD_NEW:
            orders[k]["side"], orders[k]["order_type"], orders[k]["tif"] = SIDE_BUY, ORDER_LIMIT, TIF_GTC
        orders[k]["strategy_id"], orders[k]["ts_exch"] = 1, 100 * order_id
    return orders


def _reports(*rows: tuple[int, int, int]) -> np.ndarray:
    """(order_id, status, position after it) rows, oldest first."""
    reports = np.zeros(len(rows), EXEC_REPORT)
    for k, (order_id, status, position) in enumerate(rows):
        reports[k]["exec_id"], reports[k]["order_id"], reports[k]["status"] = k + 1, order_id, status
        reports[k]["position"], reports[k]["ts_exch"] = position, 1_000 + k
        reports[k]["cum_filled"] = 2 if status == STATUS_PARTIALLY_FILLED else 0
    return reports


def test_recovery_when_broker_died_holding_orders_and_cancels_then_orders_cancelled_then_commands_done() -> None:
    orders = _orders(
        (1, CMD_NEW, 0),  # rests: its NEW ack is its latest report
        (2, CMD_CANCEL, 1),  # held pending when the broker died: no report
        (3, CMD_NEW, 0),  # filled: final
        (4, CMD_CANCEL, 3),  # reported CANCEL_REJECTED: final
        (5, CMD_NEW, 0),  # partially filled
        (6, CMD_CANCEL_ALL, 0),  # held, no report
        (7, CMD_NEW, 0),  # taken, no report yet
        (8, CMD_CANCEL, 7),  # not taken: the new broker will read it off the ring
    )
    reports = _reports((1, STATUS_NEW, 0), (3, STATUS_FILLED, 5), (4, STATUS_CANCEL_REJECTED, 5),
                       (5, STATUS_PARTIALLY_FILLED, 7))
    lost, previous = orphaned_orders(orders, 7, reports)
    assert list(lost["order_id"]) == [1, 5, 7, 2, 6]  # orders first: a command's report follows its targets'
    account = np.zeros((1, N_ACCOUNT), np.int64)
    assert restore_account(account, reports) == [0] and account[0, K_POSITION] == 7
    finals = cancellation_reports(lost, previous, account, REASON_BROKER_RESTART, 2_000, EXEC_REPORT)
    got = [(int(r["order_id"]), int(r["status"]), int(r["reason"]), int(r["target_order_id"]), int(r["flags"]))
           for r in finals]
    assert got == [
        (1, STATUS_CANCELLED, REASON_BROKER_RESTART, 0, 0),
        (5, STATUS_CANCELLED, REASON_BROKER_RESTART, 0, 0),
        (7, STATUS_CANCELLED, REASON_BROKER_RESTART, 0, EXEC_FIRST),
        (2, STATUS_DONE, REASON_BROKER_RESTART, 1, EXEC_FIRST),
        (6, STATUS_DONE, REASON_BROKER_RESTART, 0, EXEC_FIRST),
    ]
    assert list(finals["position"]) == [7] * 5  # every final carries the restored account of its symbol
    assert list(finals["cum_filled"]) == [0, 2, 0, 0, 0]
    assert list(finals["side"]) == [SIDE_BUY] * 3 + [0, 0] and list(finals["order_type"][3:]) == [0, 0]
    assert all(finals["ts_exch"] >= 2_000)
