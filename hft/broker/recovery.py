"""What a restarted broker or strategy rebuilds from the rings' history (never on a hot path).

The broker keeps positions, resting orders and its book in process memory, so a broker killed mid-run loses
them. The rings still hold the recent past: strategy.orders and broker.executions slots keep their records
until the producer wraps around (``Ring.history``). From them:

* positions and PnL: the latest execution report of each symbol carries the broker's whole account for it
  (position, entry notional, realized PnL, cumulative fees);
* orders the dead broker held: every NEW order it had taken off the ring whose latest report is not final
  (no report yet, NEW, PARTIALLY_FILLED). The restarted broker ends each with CANCELLED (BROKER_RESTART), so
  the strategy stops waiting for it and persistence records its end: every order still gets a final report.
* commands the dead broker held: a CANCEL or CANCEL_ALL it had taken without reporting it (a command's one
  report is always final). Each ends with DONE (BROKER_RESTART), after the orders' CANCELLED reports: what it
  named was cancelled with that reason anyway, as ``cancel_held`` ends a live broker's pending commands.

Orders older than the ring's history (more than its capacity ago) that were still resting are beyond this
reach: with the default 4,096-record rings that takes thousands of orders while one rests.
"""

from __future__ import annotations

import numpy as np

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_FEES, K_POSITION, K_REALIZED
from shm_layout.records import (
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    EXEC_FIRST,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
)


def latest_per_symbol(reports: np.ndarray, n_symbols: int) -> dict[int, np.void]:
    """The newest report of each symbol among ``reports`` (oldest first)."""
    latest: dict[int, np.void] = {}
    for report in reports:
        symbol = int(report["symbol_id"])
        if 0 <= symbol < n_symbols:
            latest[symbol] = report
    return latest


def restore_account(account: np.ndarray, reports: np.ndarray) -> list[int]:
    """Load each symbol's position, entry, realized PnL and fees from its newest report; return the symbols."""
    latest = latest_per_symbol(reports, account.shape[0])
    for symbol, report in latest.items():
        account[symbol, K_POSITION] = report["position"]
        account[symbol, K_ENTRY_NOTIONAL] = report["entry_notional"]
        account[symbol, K_REALIZED] = report["realized_pnl"]
        account[symbol, K_FEES] = report["total_fees"]
    return sorted(latest)


def orphaned_orders(orders: np.ndarray, taken_until: int, reports: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orders and cancel commands the dead broker had taken (ids <= ``taken_until``, its cursor) without a
    final report: NEW orders first, then the commands, each group oldest first (the order of their finals).

    Return ``(orders, their latest report or a zeroed one)``."""
    last_report: dict[int, np.void] = {}
    for report in reports:
        last_report[int(report["order_id"])] = report
    empty = np.zeros(1, reports.dtype)[0]
    held_orders: list[tuple[np.void, np.void]] = []
    held_commands: list[tuple[np.void, np.void]] = []
    for order in orders:
        if order["order_id"] > taken_until:
            continue
        command = int(order["command"])
        report = last_report.get(int(order["order_id"]))
        if command == CMD_NEW and (report is None or report["status"] in (STATUS_NEW, STATUS_PARTIALLY_FILLED)):
            held_orders.append((order, report if report is not None else empty))
        elif command in (CMD_CANCEL, CMD_CANCEL_ALL) and report is None:
            held_commands.append((order, empty))  # a command's one report is final: none yet means held
    chosen = held_orders + held_commands
    return (np.array([order for order, _ in chosen], orders.dtype),
            np.array([report for _, report in chosen], reports.dtype))


def cancellation_reports(orders: np.ndarray, previous: np.ndarray, account: np.ndarray, reason: int,
                         venue_ts: int, out_dtype: np.dtype) -> np.ndarray:
    """Final reports for orphaned orders, CANCELLED with ``reason``, and for orphaned cancel commands, DONE
    with ``reason`` (no side, type or fill, as the live broker reports a command); exec_id and ts_init are set
    when published."""
    out = np.zeros(len(orders), out_dtype)
    for k, (order, last) in enumerate(zip(orders, previous, strict=True)):
        report = out[k]
        symbol = int(order["symbol_id"])
        report["order_id"] = order["order_id"]
        report["ts_tick_recv"] = order["ts_tick_recv"]
        report["ts_order_init"] = order["ts_init"]
        report["ts_exch"] = max(venue_ts, int(last["ts_exch"]), int(order["ts_exch"]))
        report["cum_filled"] = last["cum_filled"]
        report["cum_notional"] = last["cum_notional"]
        if 0 <= symbol < account.shape[0]:
            report["position"] = account[symbol, K_POSITION]
            report["entry_notional"] = account[symbol, K_ENTRY_NOTIONAL]
            report["realized_pnl"] = account[symbol, K_REALIZED]
            report["total_fees"] = account[symbol, K_FEES]
        report["symbol_id"] = symbol
        report["strategy_id"] = order["strategy_id"]
        report["reason"] = reason
        report["flags"] = EXEC_FIRST if last["order_id"] == 0 else 0
        if order["command"] == CMD_NEW:
            report["side"] = order["side"]
            report["status"] = STATUS_CANCELLED
            report["order_type"] = order["order_type"]
            report["tif"] = order["tif"]
        else:
            report["status"] = STATUS_DONE
            report["target_order_id"] = order["target_order_id"] if order["command"] == CMD_CANCEL else 0
    return out
