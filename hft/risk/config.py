"""Pre-trade risk limits: a frozen msgspec struct with documented defaults, and its fixed-point conversion.

``RiskConfig`` speaks the operator's units (base-currency sizes as decimal strings, USD, per second,
milliseconds). ``build_limits`` converts it once, at the edge, into the int64 ``limits`` array the jitted engine
(``hft.risk.engine``) reads: sizes in each symbol's size units, times in nanoseconds, USD in micro-USD, the order
rate in pico-tokens per nanosecond. Every bad value raises ``ConfigError`` naming the key; the kernels never
validate.

USD means the quote currency of every symbol (USDT for the default BTCUSDT and ETHUSDT): the engine does not
convert between quote currencies, so all traded symbols must share one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np

from hft.risk.engine import (
    L_BURST,
    L_CANCEL_BURST,
    L_CANCEL_RATE_PICO_PER_NS,
    L_COOLDOWN_NS,
    L_MAX_DRAWDOWN_MICRO_USD,
    L_MAX_NOTIONAL_MICRO_USD,
    L_MAX_ORDER_SIZE,
    L_MAX_POSITION,
    L_MONEY_DECIMALS,
    L_RATE_PICO_PER_NS,
    L_REJECT_STORM_COUNT,
    L_REJECT_WINDOW_NS,
    L_STALE_AFTER_NS,
    MAX_BURST,
    MAX_REJECT_STORM_COUNT,
    MICRO_USD,
    N_LIMITS,
)
from hft.validation import decimal_to_fixed, parse_decimal, require
from shm_layout.records import MAX_SYMBOLS

NS_PER_MS = 1_000_000
MAX_USD = 1e12  # a limit above a trillion USD is a typo; it also keeps micro-USD far inside int64
MAX_DURATION_MS = 10 * 365 * 86_400_000  # ten years: keeps every time in ns far inside int64
MAX_SIZE_UNITS = 2**53  # sizes above this lose exactness in the float64 notional and equity arithmetic
RATE_DECIMALS = 3  # max_orders_per_second is kept in milli-orders per second (= pico-tokens per ns)


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pre-trade limits, checked by ``hft.risk.engine.risk_check`` before every order.

    Attributes
    ----------
    max_position
        Largest ``|position|`` per symbol after an order, in base units (decimal string, "1.0": 1 BTC for
        BTCUSDT, 1 ETH for ETHUSDT). Orders that only reduce the position always pass this rule.
    max_order_size
        Largest size of one order per symbol, in base units ("1.0"). Applies to every order (fat-finger guard).
    max_notional_usd
        Largest gross exposure across all symbols after an order, in USD (200,000.0): the order's symbol at
        the order price, every other symbol at its last mark. Orders that only reduce exposure always pass.
    max_orders_per_second
        Token-bucket refill rate across all symbols (20.0); at most 3 decimals.
    order_burst
        Token-bucket capacity: orders allowed back to back after a quiet period (20).
    max_cancels_per_second
        Refill rate of the cancels' own bucket (50.0): a strategy flooding cancels is stopped here.
    cancel_burst
        Its capacity (50).
    stale_after_ms
        A symbol with no market data for longer than this trips the stale-data breaker for that symbol (5000);
        it resets by itself when data flows again. A symbol never seen is stale.
    max_drawdown_usd
        Equity (realized + unrealized PnL, USD, all symbols) falling more than this below its peak latches the
        drawdown breaker (1000.0). It stays latched until an operator resets it (``risk_reset_drawdown``).
    reject_storm_count
        More than this many broker rejections ... (10)
    reject_storm_window_ms
        ... within this many milliseconds (5000) trip the reject-storm breaker ...
    reject_storm_cooldown_ms
        ... for this many milliseconds (30000), after which it clears by itself.
    """

    max_position: str = "1.0"
    max_order_size: str = "1.0"
    max_notional_usd: float = 200_000.0
    max_orders_per_second: float = 20.0
    order_burst: int = 20
    max_cancels_per_second: float = 50.0
    cancel_burst: int = 50
    stale_after_ms: int = 5_000
    max_drawdown_usd: float = 1_000.0
    reject_storm_count: int = 10
    reject_storm_window_ms: int = 5_000
    reject_storm_cooldown_ms: int = 30_000

    def __post_init__(self) -> None:
        for name in ("max_position", "max_order_size"):
            text = getattr(self, name)
            require(parse_decimal(text, f"risk.{name}") > 0, f"risk.{name}: {text!r} must be a positive decimal")
        for name in ("max_notional_usd", "max_drawdown_usd"):
            value = getattr(self, name)
            require(math.isfinite(value) and 0 < value <= MAX_USD, f"risk.{name}: {value!r} must be in (0, 1e12]")
        for rate_key, burst_key in (("max_orders_per_second", "order_burst"),
                                    ("max_cancels_per_second", "cancel_burst")):
            rate = getattr(self, rate_key)
            require(math.isfinite(rate) and 0 < rate <= MAX_BURST,
                    f"risk.{rate_key}: {rate!r} must be in (0, {MAX_BURST}]")
            require(_rate_milli(rate) > 0 and abs(_rate_milli(rate) - rate * 1000) < 1e-6,
                    f"risk.{rate_key}: {rate!r} has more than {RATE_DECIMALS} decimals")
            burst = getattr(self, burst_key)
            require(1 <= burst <= MAX_BURST, f"risk.{burst_key}: {burst} must be in 1..{MAX_BURST}")
        for name in ("stale_after_ms", "reject_storm_window_ms", "reject_storm_cooldown_ms"):
            value = getattr(self, name)
            require(0 < value <= MAX_DURATION_MS, f"risk.{name}: {value} must be in 1..{MAX_DURATION_MS}")
        require(1 <= self.reject_storm_count <= MAX_REJECT_STORM_COUNT,
                f"risk.reject_storm_count: {self.reject_storm_count} must be in 1..{MAX_REJECT_STORM_COUNT}")


def _rate_milli(rate: float) -> int:
    return round(rate * 1000)


def _micro_usd(value: float) -> int:
    return round(value * MICRO_USD)


def build_limits(config: RiskConfig, symbols_decimals: Sequence[tuple[int, int]]) -> np.ndarray:
    """Convert ``config`` to the engine's int64 ``limits[symbol, L_*]`` array, one row per symbol.

    Parameters
    ----------
    config
        The validated risk configuration.
    symbols_decimals
        ``(price_decimals, size_decimals)`` per symbol, in symbol-id order, e.g.
        ``[(s.price_decimals, s.size_decimals) for s in pipeline_config.symbols]``.

    Returns
    -------
    np.ndarray
        ``int64`` of shape ``(n_symbols, N_LIMITS)``. Every row carries its symbol's own limits and a copy of
        the limits shared by all symbols, so a kernel reads one row and ``n_symbols = limits.shape[0]``.

    Raises
    ------
    ConfigError
        A size is off the symbol's size grid, too large, or the decimals are out of range.
    """
    require(1 <= len(symbols_decimals) <= MAX_SYMBOLS, f"risk: between 1 and {MAX_SYMBOLS} symbols, got "
            f"{len(symbols_decimals)}")
    limits = np.zeros((len(symbols_decimals), N_LIMITS), np.int64)
    for symbol, pair in enumerate(symbols_decimals):
        require(len(pair) == 2, f"risk: symbol {symbol}: expected (price_decimals, size_decimals), got {pair!r}")
        price_decimals, size_decimals = (int(value) for value in pair)
        require(0 <= price_decimals <= 12 and 0 <= size_decimals <= 12,
                f"risk: symbol {symbol}: decimals {pair!r} must be in 0..12")
        row = limits[symbol]
        for name, column in (("max_position", L_MAX_POSITION), ("max_order_size", L_MAX_ORDER_SIZE)):
            text = getattr(config, name)
            units = decimal_to_fixed(text, size_decimals, f"risk.{name} (symbol {symbol})")
            require(0 < units <= MAX_SIZE_UNITS,
                    f"risk.{name}: {text} is {units} size units at {size_decimals} decimals, must be in 1..2**53")
            row[column] = units
        row[L_MONEY_DECIMALS] = price_decimals + size_decimals
        row[L_MAX_NOTIONAL_MICRO_USD] = _micro_usd(config.max_notional_usd)
        row[L_MAX_DRAWDOWN_MICRO_USD] = _micro_usd(config.max_drawdown_usd)
        row[L_RATE_PICO_PER_NS] = _rate_milli(config.max_orders_per_second)
        row[L_BURST] = config.order_burst
        row[L_CANCEL_RATE_PICO_PER_NS] = _rate_milli(config.max_cancels_per_second)
        row[L_CANCEL_BURST] = config.cancel_burst
        row[L_STALE_AFTER_NS] = config.stale_after_ms * NS_PER_MS
        row[L_REJECT_STORM_COUNT] = config.reject_storm_count
        row[L_REJECT_WINDOW_NS] = config.reject_storm_window_ms * NS_PER_MS
        row[L_COOLDOWN_NS] = config.reject_storm_cooldown_ms * NS_PER_MS
    return limits
