"""Unit-testing a strategy: drive its callbacks event by event, in this process, with a scripted market and
scripted venue answers, and look at the orders it sent.

::

    from hft.strategy.testing import StrategyHarness

    def test_quotes_both_sides_on_the_first_ticker():
        h = StrategyHarness("examples/market_maker.py", params={"order_size": 0.001})
        h.bbo("BTCUSDT", 60000.00, 1.5, 60000.10, 2.0)
        sent = h.sent()                      # the commands published since the last call
        assert sorted(sent["side"]) == [-1, 1]
        h.ack(sent["order_id"][0])           # the venue answers: ack, fill, cancelled, reject ...
        h.fill(sent["order_id"][1])
        assert h.position("BTCUSDT") == -0.001

The harness runs the real engine, API, risk checks and feature kernels (``hft.strategy.runtime``); only the
feed and the broker are replaced by the test's script. Orders land on a process-local ring (the same record
layout as ``strategy.orders``); answers become ``EXEC_REPORT`` records with a real position ledger
(``hft.broker.accounting``), so ``position``, ``realized_pnl`` and the risk limits behave as in a run. The venue
clock only moves when a call says so (``ts=`` or ``advance``): timers are deterministic.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_FEES, K_POSITION, K_REALIZED, N_ACCOUNT, apply_trade
from hft.config import StrategyConfig, SymbolConfig
from hft.risk.config import RiskConfig, build_limits
from hft.risk.engine import make_risk_state
from hft.strategy.api import DENIAL_NAMES
from hft.strategy.context import Outlet
from hft.strategy.loader import load_strategy
from hft.strategy.runtime import InstanceSpec, StrategyRuntime, risk_reason_counters
from hft.validation import decimal_to_fixed
from shm_layout.records import (
    BOOK_SNAPSHOT,
    BOOK_SYNCED,
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_TRADE,
    EXEC_REPORT,
    FLAG_LAST_IN_FRAME,
    MD_EVENT,
    ORDER,
    PROCESS_BLOCK,
    REASON_CANCEL_REQUESTED,
    REASON_EXPIRED,
    REASON_TOO_LATE_TO_CANCEL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    TOP_LEVELS,
)
from shm_layout.ring import LocalRing, ring_read
from shm_layout.seqlock import seqlock_write

T0 = 1_700_000_000_000_000_000  # venue ns of the harness's first event
STEP_NS = 1_000_000  # each market call moves the venue clock this much unless it says ts=
W_KILL = 0  # the harness's control words
W_ABORT = 1


class StrategyHarness:
    """One strategy instance on scripted market data and scripted venue answers (see the module docstring).

    ``module`` is what ``[strategy] module`` takes; ``params`` its parameter table; ``symbols`` default to
    BTCUSDT (2 price / 8 size decimals, tick 0.01, lot 0.00001); ``risk`` defaults to limits loose enough
    not to interfere (set them to test a denial).
    """

    def __init__(self, module: str, params: dict[str, Any] | None = None,
                 symbols: list[SymbolConfig] | None = None, risk: RiskConfig | None = None,
                 strategy: StrategyConfig | None = None, trades: list[str] | None = None) -> None:
        self.symbols = symbols or [SymbolConfig(name="BTCUSDT")]
        self.names = [s.name for s in self.symbols]
        self.log = logging.getLogger("hft.strategy.testing")
        loaded = load_strategy(module, log=None)
        resolved = loaded.resolve_params(params or {})
        traded = [self.names.index(name) for name in (trades or self.names)]
        spec = InstanceSpec("test", loaded, resolved, traded)
        risk = risk or RiskConfig(max_position="1000", max_order_size="1000", max_notional_usd=1e11,
                                  max_orders_per_second=100_000.0, order_burst=100_000,
                                  max_cancels_per_second=100_000.0, cancel_burst=100_000, max_drawdown_usd=1e11)
        limits = build_limits(risk, [(s.price_decimals, s.size_decimals) for s in self.symbols])
        self.risk_state, self.risk_fstate = make_risk_state(limits)
        self.orders = LocalRing(ORDER, 4096, consumer_names=("harness",))
        self.control = np.zeros(8, np.int64)
        self.proc = np.zeros(PROCESS_BLOCK.itemsize // 8, np.int64)
        outlet = Outlet(self.orders.ctrl, self.orders.slots, self.control, self.proc, limits, self.risk_state,
                        self.risk_fstate, risk_reason_counters(), W_KILL, W_ABORT, 0, no_wait=True)
        self.snapshots = np.zeros(len(self.symbols), BOOK_SNAPSHOT)
        self.snapshots["symbol_id"] = np.arange(len(self.symbols))
        self.runtime = StrategyRuntime(self.symbols, [spec], outlet, self.snapshots.view(np.int64),
                                       (limits, self.risk_state, self.risk_fstate), self.proc,
                                       strategy or StrategyConfig(), False, self.log)
        self.context = self.runtime.contexts[0]
        self.now = T0
        self.update_id = 1
        self.md_cursor = 0
        self.exec_id = 0
        self.ledger = np.zeros((len(self.symbols), N_ACCOUNT), np.int64)
        self.commands: dict[int, np.void] = {}  # every command sent, by id
        self.log_of_commands: list[np.void] = []
        self.seen = 0  # commands already returned by sent()
        self.answered: set[int] = set()  # cancel commands answered by answer_cancels
        self.filled: dict[int, tuple[int, int]] = {}  # order id -> (size filled, notional)
        self.runtime.start()

    # -------------------------------------------------------------------------------------------- units

    def _sid(self, symbol: str | int) -> int:
        return symbol if isinstance(symbol, int) else self.names.index(symbol)

    def price(self, symbol: str | int, value: float | str) -> int:
        """A price -> fixed point, exactly."""
        return decimal_to_fixed(str(value), self.symbols[self._sid(symbol)].price_decimals, "price")

    def size(self, symbol: str | int, value: float | str) -> int:
        """A size -> fixed point, exactly."""
        return decimal_to_fixed(str(value), self.symbols[self._sid(symbol)].size_decimals, "size")

    def _tick(self, ts: int | None) -> int:
        self.now = ts if ts is not None else self.now + STEP_NS
        return self.now

    # -------------------------------------------------------------------------------------------- market

    def _feed(self, events: np.ndarray) -> None:
        for event in events:
            event["ts_recv"] = event["ts_init"] = 1  # the engine's latency histograms need a stamp
        events[-1]["flags"] |= FLAG_LAST_IN_FRAME
        self.runtime.feed(events, self.md_cursor)
        self.md_cursor += len(events)

    def book(self, symbol: str | int, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
             ts: int | None = None) -> None:
        """A depth update: the symbol's book becomes ``bids``/``asks`` (best first), ``on_book`` is called."""
        sid = self._sid(symbol)
        ts = self._tick(ts)
        self.update_id += 1
        snap = np.zeros(1, BOOK_SNAPSHOT)
        record = snap[0]
        record["symbol_id"] = sid
        record["status"] = BOOK_SYNCED
        record["update_id"] = self.update_id
        record["ts_exch"] = ts
        for side, levels, prices, sizes, count in (("bid", bids, "bid_prices", "bid_sizes", "n_bid_levels"),
                                                    ("ask", asks, "ask_prices", "ask_sizes", "n_ask_levels")):
            levels = levels[:TOP_LEVELS]
            record[count] = len(levels)
            for k, (price, size) in enumerate(levels):
                record[prices][k] = self.price(sid, price)
                record[sizes][k] = self.size(sid, size)
            if levels:
                record[f"{side}_price"] = record[prices][0]
                record[f"{side}_size"] = record[sizes][0]
        if bids and asks:
            record["mid_x2"] = record["bid_price"] + record["ask_price"]
            record["spread"] = record["ask_price"] - record["bid_price"]
            total = record["bid_size"] + record["ask_size"]
            record["imbalance"] = (record["bid_size"] - record["ask_size"]) / total if total else 0.0
        seqlock_write(self.snapshots.view(np.int64), sid, snap.view(np.int64))
        event = np.zeros(1, MD_EVENT)
        event["kind"], event["symbol_id"], event["update_id"], event["ts_exch"] = EV_BOOK_LEVEL, sid, \
            self.update_id, ts
        self._feed(event)

    def bbo(self, symbol: str | int, bid: float, bid_size: float, ask: float, ask_size: float,
            ts: int | None = None) -> None:
        """A bookTicker (newer than the book): ``on_bbo`` is called."""
        sid = self._sid(symbol)
        ts = self._tick(ts)
        self.update_id += 1
        events = np.zeros(2, MD_EVENT)
        events["kind"], events["symbol_id"], events["update_id"], events["ts_exch"] = EV_BBO, sid, self.update_id, ts
        events[0]["side"], events[0]["price"], events[0]["size"] = SIDE_BUY, self.price(sid, bid), self.size(sid,
                                                                                                           bid_size)
        events[1]["side"], events[1]["price"], events[1]["size"] = SIDE_SELL, self.price(sid, ask), self.size(sid,
                                                                                                            ask_size)
        self._feed(events)

    def trade(self, symbol: str | int, price: float, size: float, aggressor: int, ts: int | None = None) -> None:
        """A print (``aggressor`` SIDE_BUY or SIDE_SELL): ``on_trade`` is called."""
        sid = self._sid(symbol)
        ts = self._tick(ts)
        event = np.zeros(1, MD_EVENT)
        event["kind"], event["symbol_id"], event["ts_exch"], event["side"] = EV_TRADE, sid, ts, aggressor
        event["price"], event["size"] = self.price(sid, price), self.size(sid, size)
        self._feed(event)

    def advance(self, ns: int) -> None:
        """Move the venue clock forward by ``ns`` with no market data: timers due by then fire."""
        self.now += ns
        self.runtime.fire_timers(self.now)

    # -------------------------------------------------------------------------------------------- orders

    def _drain(self) -> None:
        """Take everything the strategy published off the order ring into the log."""
        out = np.zeros(self.orders.capacity, ORDER)
        n = ring_read(self.orders.ctrl, self.orders.slots, 0, out, len(out))
        for record in out[:n]:
            self.commands[int(record["order_id"])] = record.copy()
            self.log_of_commands.append(record.copy())

    def sent(self) -> np.ndarray:
        """The commands (ORDER records) the strategy published since the last call of ``sent``."""
        self._drain()
        fresh = self.log_of_commands[self.seen:]
        self.seen = len(self.log_of_commands)
        return np.array(fresh, ORDER) if fresh else np.zeros(0, ORDER)

    def all_sent(self) -> np.ndarray:
        """Every command the strategy published so far."""
        self._drain()
        return np.array(self.log_of_commands, ORDER) if self.log_of_commands else np.zeros(0, ORDER)

    def _report(self, order_id: int, status: int, reason: int = 0, price: int = 0, size: int = 0,
                leaves: int = 0, target: int = 0) -> None:
        self.sent()
        command = self.commands[order_id]
        sid = int(command["symbol_id"])
        report = np.zeros(1, EXEC_REPORT)
        r = report[0]
        self.exec_id += 1
        r["exec_id"], r["order_id"], r["status"], r["reason"] = self.exec_id, order_id, status, reason
        r["symbol_id"], r["strategy_id"], r["side"] = sid, command["strategy_id"], command["side"]
        r["order_type"], r["tif"], r["ts_exch"] = command["order_type"], command["tif"], self.now
        r["price"], r["size"], r["leaves"], r["target_order_id"] = price, size, leaves, target
        filled, notional = self.filled.get(order_id, (0, 0))
        self.filled[order_id] = filled, notional = filled + size, notional + size * price
        r["cum_filled"], r["cum_notional"] = filled, notional
        if size > 0 and 0 <= sid < len(self.names):
            apply_trade(self.ledger, sid, size if command["side"] == SIDE_BUY else -size, price)
        if 0 <= sid < len(self.names):
            r["position"] = self.ledger[sid, K_POSITION]
            r["entry_notional"] = self.ledger[sid, K_ENTRY_NOTIONAL]
            r["realized_pnl"] = self.ledger[sid, K_REALIZED]
            r["total_fees"] = self.ledger[sid, K_FEES]
        self.runtime.reports(report)

    def _leaves(self, order_id: int) -> int:
        row = self.context.orders[self.context.orders[:, 0] == order_id]
        return int(row[0, 7]) if len(row) else int(self.commands[order_id]["size"])

    def ack(self, order_id: int) -> None:
        """The venue accepted the order and it rests."""
        self._report(order_id, STATUS_NEW, leaves=self._leaves(order_id))

    def fill(self, order_id: int, size: float | None = None, price: float | None = None) -> None:
        """The order fills ``size`` (default: all that is left) at ``price`` (default: its limit price)."""
        self._drain()
        command = self.commands[order_id]
        sid = int(command["symbol_id"])
        leaves = self._leaves(order_id)
        quantity = leaves if size is None else self.size(sid, size)
        fill_price = int(command["price"]) if price is None else self.price(sid, price)
        rest = leaves - quantity
        self._report(order_id, STATUS_FILLED if rest == 0 else STATUS_PARTIALLY_FILLED, price=fill_price,
                     size=quantity, leaves=rest)

    def cancelled(self, order_id: int, reason: int = REASON_CANCEL_REQUESTED) -> None:
        """The order was cancelled."""
        self._report(order_id, STATUS_CANCELLED, reason)

    def expired(self, order_id: int) -> None:
        """The GTD order expired."""
        self._report(order_id, STATUS_EXPIRED, REASON_EXPIRED)

    def reject(self, order_id: int, reason: int) -> None:
        """The venue rejected the order (``reason``: a ``REASON_*`` of ``shm_layout.records``)."""
        self._report(order_id, STATUS_REJECTED, reason)

    def answer_cancels(self, too_late: tuple[int, ...] = ()) -> None:
        """Answer every cancel command sent so far as a venue would: its targets CANCELLED then the command
        DONE; targets listed in ``too_late`` had filled first, so their cancel gets CANCEL_REJECTED."""
        for command in self.all_sent():
            if command["command"] == CMD_NEW or int(command["order_id"]) in self.answered:
                continue
            self.answered.add(int(command["order_id"]))
            if command["command"] == CMD_CANCEL:
                target = int(command["target_order_id"])
                cancel_id = int(command["order_id"])
                if target in too_late:
                    self._report(cancel_id, STATUS_CANCEL_REJECTED, REASON_TOO_LATE_TO_CANCEL, target=target)
                else:
                    self._report(target, STATUS_CANCELLED, REASON_CANCEL_REQUESTED)
                    self._report(cancel_id, STATUS_DONE, target=target)
            elif command["command"] == CMD_CANCEL_ALL:
                for row in self.context.open_orders():
                    if row[1] == command["symbol_id"]:
                        self._report(int(row[0]), STATUS_CANCELLED, REASON_CANCEL_REQUESTED)
                self._report(int(command["order_id"]), STATUS_DONE)

    # -------------------------------------------------------------------------------------------- looking

    def position(self, symbol: str | int) -> float:
        """The position in base units, as the strategy sees it."""
        sid = self._sid(symbol)
        return int(self.runtime.market.account[sid, 0]) / 10 ** self.symbols[sid].size_decimals

    def denials(self) -> dict[str, int]:
        """This instance's refused actions by reason (``hft.strategy.api.DENIAL_NAMES``), non-zero only."""
        return {DENIAL_NAMES[k]: int(v) for k, v in enumerate(self.context.denials[:len(DENIAL_NAMES)]) if v}

    @property
    def halted(self) -> bool:
        """A callback raised and the instance was halted."""
        return self.context.halted

    def kill_switch(self, on: bool) -> None:
        """Raise or lower the kill switch."""
        self.control[W_KILL] = 1 if on else 0


__all__ = ["CMD_CANCEL", "CMD_CANCEL_ALL", "CMD_NEW", "StrategyHarness"]
