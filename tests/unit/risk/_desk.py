"""A risk engine on a hand-driven clock: BTCUSDT and ETHUSDT at 2 price and 8 size decimals by default."""

from __future__ import annotations

from collections.abc import Sequence

from hft.risk.config import RiskConfig, build_limits
from hft.risk.engine import (
    F_DRAWDOWN,
    F_EQUITY,
    F_PEAK,
    make_risk_state,
    risk_check,
    risk_check_cancel,
    risk_on_cancel_sent,
    risk_on_execution,
    risk_on_market,
    risk_on_order_sent,
)
from shm_layout.records import REASON_NO_MARKET, REASON_NONE, STATUS_FILLED, STATUS_REJECTED

BTC, ETH = 0, 1
BTC_PRICE = 6_000_000  # 60,000.00
ETH_PRICE = 250_000  # 2,500.00
ONE = 100_000_000  # 1.0 base unit at 8 size decimals
MONEY_PER_USD = 10**10  # 2 price + 8 size decimals
MS = 1_000_000
T0 = 1_700_000_000_000_000_000  # an epoch-like start: venue clocks are large


class Desk:
    """Limits and state of one engine, and the caller's view of positions; ``now`` only moves when told."""

    def __init__(self, config: RiskConfig | None = None, decimals: Sequence[tuple[int, int]] = ((2, 8), (2, 8))):
        self.config = config or RiskConfig()
        self.limits = build_limits(self.config, list(decimals))
        self.state, self.fstate = make_risk_state(self.limits)
        self.now = T0
        self.kill = 0

    def advance(self, ns: int) -> int:
        self.now += ns
        return self.now

    def market(self, symbol: int, mark: int) -> int:
        return risk_on_market(self.limits, self.state, self.fstate, symbol, mark, self.now)

    def fresh(self) -> None:
        """Market data for every symbol at its default price, now."""
        self.market(BTC, BTC_PRICE)
        self.market(ETH, ETH_PRICE)

    def check(self, symbol: int, side: int, size: int, price: int = BTC_PRICE, position: int = 0) -> int:
        return risk_check(self.limits, self.state, self.fstate, symbol, side, size, price, self.now, self.kill,
                          position)

    def send(self) -> int:
        return risk_on_order_sent(self.limits, self.state, self.now)

    def cancel(self) -> int:
        """Check one cancel and, when it passes, send it."""
        decision = risk_check_cancel(self.limits, self.state, self.now)
        if decision == 0:
            risk_on_cancel_sent(self.limits, self.state, self.now)
        return decision

    def fill(self, symbol: int, position: int, entry_notional: int, realized: int = 0, price: int = BTC_PRICE) -> int:
        return risk_on_execution(self.limits, self.state, self.fstate, symbol, STATUS_FILLED, REASON_NONE, price,
                                 position, entry_notional, realized, self.now)

    def reject(self, symbol: int = BTC, reason: int = REASON_NO_MARKET) -> int:
        return risk_on_execution(self.limits, self.state, self.fstate, symbol, STATUS_REJECTED, reason, 0, 0, 0, 0,
                                 self.now)

    @property
    def equity(self) -> float:
        return float(self.fstate[F_EQUITY])

    @property
    def peak(self) -> float:
        return float(self.fstate[F_PEAK])

    @property
    def drawdown(self) -> float:
        return float(self.fstate[F_DRAWDOWN])


def usd(value: float) -> int:
    """Money units (2 + 8 decimals) of a USD amount given with at most 2 decimals."""
    return round(value * 100) * 10**8


