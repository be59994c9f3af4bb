"""Frozen configuration of the simulated exchange.

Every knob has a documented default; the defaults are tuned so that a 20 s run produces several trending episodes
per symbol (a ~0.4 % move within one second with the top of book imbalanced in the direction of the move), which
is what the downstream strategy needs to trade at all. :data:`VOLATILITY_PRESETS` names three regimes (``calm``,
``normal`` = the defaults, ``volatile``) for :meth:`SimConfig.from_preset`; every knob stays settable on its own.
Scheduled faults (``faults``) only change what the server sends, never the model's output.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import msgspec

from hft.sim.faults import ScheduledFault
from hft.validation import decimal_to_fixed, parse_decimal

__all__ = [
    "KNOWN_SYMBOLS",
    "VOLATILITY_PRESETS",
    "ScheduledFault",
    "SimConfig",
    "SimSymbol",
    "default_symbols",
    "symbol_by_name",
]

MAX_WIRE_DECIMALS = 8  # Binance formats every price and quantity with 8 decimals
MAX_FIXED_DECIMALS = 12  # fixed-point scales allowed by the pipeline's symbol table
_NAME_RE = re.compile(r"^[A-Z0-9]{2,20}$")


def _require(ok: bool, message: str) -> None:
    """Raise ``ValueError`` with ``message`` when ``ok`` is false: configuration errors are caught at the edge."""
    if not ok:
        raise ValueError(message)


def _decimal(field: str, text: str) -> Decimal:
    """Parse a decimal string exactly; floats are refused because they cannot represent ticks exactly."""
    value = parse_decimal(text, field)
    _require(value > 0, f"{field} must be a positive finite decimal, got {text!r}")
    return value


class SimSymbol(msgspec.Struct, frozen=True, kw_only=True):
    """One simulated instrument.

    Attributes
    ----------
    name:
        Upper-case Binance symbol, e.g. ``"BTCUSDT"``; streams use its lower-case form.
    start_price:
        Decimal string of the initial fair price, a multiple of ``tick_size``.
    tick_size:
        Decimal string of the price grid (``PRICE_FILTER.tickSize``).
    lot_size:
        Decimal string of the quantity grid (``LOT_SIZE.stepSize``).
    price_decimals, size_decimals:
        Fixed-point decimals: ``price_int = value * 10**price_decimals``; 0..12 and enough to make the tick (lot)
        an integer. The tick and lot themselves need at most 8 decimals, the precision of Binance's wire format.
    """

    name: str
    start_price: str
    tick_size: str
    lot_size: str
    price_decimals: int
    size_decimals: int

    def __post_init__(self) -> None:
        _require(
            isinstance(self.name, str) and _NAME_RE.match(self.name) is not None,
            f"symbol name must be 2-20 upper-case letters/digits like 'BTCUSDT', got {self.name!r}",
        )
        for field in ("price_decimals", "size_decimals"):
            value = getattr(self, field)
            _require(
                isinstance(value, int) and 0 <= value <= MAX_FIXED_DECIMALS,
                f"{self.name}: {field} must be an int in 0..{MAX_FIXED_DECIMALS}, got {value!r}",
            )
        for field in ("tick_size", "lot_size"):
            step = _decimal(f"{self.name}: {field}", getattr(self, field))
            _require(
                step.scaleb(MAX_WIRE_DECIMALS) == step.scaleb(MAX_WIRE_DECIMALS).to_integral_value(),
                f"{self.name}: {field}={step} has more than {MAX_WIRE_DECIMALS} decimals (Binance's wire precision)",
            )
        tick = decimal_to_fixed(
            _decimal(f"{self.name}: tick_size", self.tick_size), self.price_decimals, f"{self.name}: tick_size"
        )
        decimal_to_fixed(_decimal(f"{self.name}: lot_size", self.lot_size), self.size_decimals,
                         f"{self.name}: lot_size")
        start = decimal_to_fixed(
            _decimal(f"{self.name}: start_price", self.start_price), self.price_decimals, f"{self.name}: start_price"
        )
        _require(
            start % tick == 0,
            f"{self.name}: start_price {self.start_price} is not a multiple of tick_size {self.tick_size}",
        )
        _require(
            start >= 1000 * tick,
            f"{self.name}: start_price must be at least 1000 ticks so that bps moves are representable",
        )

    @property
    def tick_int(self) -> int:
        """Tick in fixed-point price units."""
        return decimal_to_fixed(self.tick_size, self.price_decimals, f"{self.name}: tick_size")

    @property
    def lot_int(self) -> int:
        """Lot in fixed-point size units."""
        return decimal_to_fixed(self.lot_size, self.size_decimals, f"{self.name}: lot_size")

    @property
    def start_price_int(self) -> int:
        """Start price in fixed-point price units."""
        return decimal_to_fixed(self.start_price, self.price_decimals, f"{self.name}: start_price")


KNOWN_SYMBOLS: dict[str, SimSymbol] = {
    s.name: s
    for s in (
        SimSymbol(
            name="BTCUSDT",
            start_price="60000.00",
            tick_size="0.01",
            lot_size="0.00001",
            price_decimals=2,
            size_decimals=5,
        ),
        SimSymbol(
            name="ETHUSDT",
            start_price="2500.00",
            tick_size="0.01",
            lot_size="0.0001",
            price_decimals=2,
            size_decimals=4,
        ),
        SimSymbol(
            name="BNBUSDT", start_price="500.00", tick_size="0.01", lot_size="0.001", price_decimals=2, size_decimals=3
        ),
        SimSymbol(
            name="SOLUSDT", start_price="140.00", tick_size="0.01", lot_size="0.001", price_decimals=2, size_decimals=3
        ),
        SimSymbol(
            name="XRPUSDT", start_price="0.5000", tick_size="0.0001", lot_size="0.1", price_decimals=4, size_decimals=1
        ),
    )
}


def symbol_by_name(name: str) -> SimSymbol:
    """Return the built-in definition of ``name`` so the CLI can take plain symbol names."""
    key = name.strip().upper()
    if key not in KNOWN_SYMBOLS:
        raise ValueError(f"unknown symbol {name!r}; built-in symbols are {', '.join(KNOWN_SYMBOLS)}")
    return KNOWN_SYMBOLS[key]


# Volatility regimes: the knobs that set how calm or jumpy prices are. "normal" is exactly the SimConfig defaults.
VOLATILITY_PRESETS: dict[str, dict[str, float | int]] = {
    "calm": {
        "volatility_bps": 0.6,
        "trend_probability": 0.05,
        "trend_duration_ms": 1200,
        "trend_speed_bps": 25.0,
        "market_order_share": 0.04,
    },
    "normal": {
        "volatility_bps": 1.5,
        "trend_probability": 0.3,
        "trend_duration_ms": 1500,
        "trend_speed_bps": 60.0,
        "market_order_share": 0.08,
    },
    "volatile": {
        "volatility_bps": 4.0,
        "trend_probability": 0.8,
        "trend_duration_ms": 2000,
        "trend_speed_bps": 150.0,
        "market_order_share": 0.12,
    },
}


def default_symbols() -> list[SimSymbol]:
    """Return the default instruments (BTCUSDT and ETHUSDT)."""
    return [KNOWN_SYMBOLS["BTCUSDT"], KNOWN_SYMBOLS["ETHUSDT"]]


class SimConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that shapes the simulated market; the same config and seed give byte-identical streams.

    Attributes
    ----------
    symbols:
        Instruments to simulate (default BTCUSDT and ETHUSDT).
    seed:
        Seed of the ``numpy.random.PCG64`` generator that drives every random choice.
    events_per_second:
        Order-flow events (adds, cancels, market orders) per virtual second, across all symbols.
    depth_interval_ms:
        Cadence of ``depthUpdate`` frames in virtual ms (Binance ``@depth@100ms``); a frame aggregates every level
        change since the previous one. ``0`` means real time: one frame per order-flow event.
    book_levels:
        Maximum price levels per side kept and served; the farthest level is removed (and published) beyond it.
    epoch_ms:
        Virtual exchange time (epoch ms) at model time zero: 2024-08-08T00:00:00Z by default. A server with
        ``wall_clock`` set replaces it with the wall clock's time when it starts.
    wall_clock:
        The server's venue times start at this machine's clock, as a real venue's do (the feed holds E to
        ``source.max_clock_drift_ms`` of its own clock). False: at ``epoch_ms``, the same on every run.
    volatility_bps:
        Calm-regime random walk of the fair price, in bps per square-root second.
    mean_reversion_per_s:
        Pull of the log fair price back to the start price, per second; keeps long runs near ``start_price``.
    trend_probability:
        Probability per second (hazard rate) that a calm symbol starts a trending burst.
    trend_build_ms:
        Length of the pre-trend phase in which the book becomes imbalanced before the price moves.
    trend_duration_ms:
        Mean length of the move phase (drawn uniformly in 0.6x..1.4x of it).
    trend_speed_bps:
        Mean speed of the fair price during the move phase, bps per second (drawn in 0.8x..1.5x of it).
    trend_imbalance:
        Target top-of-book imbalance ``(bid - ask) / (bid + ask)`` in the direction of the trend.
    trend_pressure_share:
        Share of a trending symbol's events that push the touch in the trend's direction.
    level_spacing_bps:
        Price grid of passive orders in bps of the start price (rounded to ticks); sets how sparse the book is.
    depth_bps:
        Mean distance (bps) of far passive orders from the fair price; 40 % of the adds land within ~1 bps.
    order_notional:
        Mean size of a passive order in quote currency.
    cancel_share, market_order_share:
        Shares of calm events that cancel (part of) a level or send a market order; the rest add liquidity.
    faults:
        Faults the server injects by itself at ``at_s`` seconds after it starts listening (see
        :mod:`hft.sim.faults`), so a CLI or pipeline run can include them without a test harness. The model
        ignores them: the generated stream is the same with or without faults.
    """

    symbols: list[SimSymbol] = msgspec.field(default_factory=default_symbols)
    seed: int = 7
    events_per_second: float = 2000.0
    depth_interval_ms: int = 100
    book_levels: int = 200
    epoch_ms: int = 1_723_075_200_000
    wall_clock: bool = True
    volatility_bps: float = 1.5
    mean_reversion_per_s: float = 0.002
    trend_probability: float = 0.3
    trend_build_ms: int = 300
    trend_duration_ms: int = 1500
    trend_speed_bps: float = 60.0
    trend_imbalance: float = 0.6
    trend_pressure_share: float = 0.3
    level_spacing_bps: float = 0.5
    depth_bps: float = 30.0
    order_notional: float = 2000.0
    cancel_share: float = 0.30
    market_order_share: float = 0.08
    faults: list[ScheduledFault] = msgspec.field(default_factory=list)

    @classmethod
    def from_preset(cls, volatility: str = "normal", **fields: Any) -> SimConfig:
        """Build a config from a named volatility regime; explicit ``fields`` override the preset's knobs."""
        if volatility not in VOLATILITY_PRESETS:
            raise ValueError(f"unknown volatility preset {volatility!r}; presets are {', '.join(VOLATILITY_PRESETS)}")
        return cls(**{**VOLATILITY_PRESETS[volatility], **fields})

    def __post_init__(self) -> None:
        _require(isinstance(self.symbols, list) and len(self.symbols) > 0, "symbols must be a non-empty list")
        names = [s.name for s in self.symbols]
        _require(len(set(names)) == len(names), f"symbol names must be unique, got {names}")
        _require(isinstance(self.seed, int) and self.seed >= 0, f"seed must be a non-negative int, got {self.seed!r}")
        _require(
            0 < self.events_per_second <= 1_000_000,
            f"events_per_second must be in (0, 1e6], got {self.events_per_second}",
        )
        _require(
            isinstance(self.depth_interval_ms, int) and 0 <= self.depth_interval_ms <= 60_000,
            f"depth_interval_ms must be an int in 0..60000 (0 = real time), got {self.depth_interval_ms!r}",
        )
        _require(
            isinstance(self.book_levels, int) and 10 <= self.book_levels <= 5000,
            f"book_levels must be an int in 10..5000, got {self.book_levels!r}",
        )
        _require(self.epoch_ms >= 0, f"epoch_ms must be >= 0, got {self.epoch_ms}")
        _require(self.volatility_bps >= 0, f"volatility_bps must be >= 0, got {self.volatility_bps}")
        _require(self.mean_reversion_per_s >= 0, f"mean_reversion_per_s must be >= 0, got {self.mean_reversion_per_s}")
        _require(
            0 <= self.trend_probability <= 10,
            f"trend_probability must be in [0, 10] per second, got {self.trend_probability}",
        )
        _require(self.trend_build_ms >= 0, f"trend_build_ms must be >= 0, got {self.trend_build_ms}")
        _require(self.trend_duration_ms > 0, f"trend_duration_ms must be > 0, got {self.trend_duration_ms}")
        _require(0 <= self.trend_speed_bps <= 5000, f"trend_speed_bps must be in [0, 5000], got {self.trend_speed_bps}")
        _require(0 <= self.trend_imbalance < 1, f"trend_imbalance must be in [0, 1), got {self.trend_imbalance}")
        _require(
            0 <= self.trend_pressure_share <= 1,
            f"trend_pressure_share must be in [0, 1], got {self.trend_pressure_share}",
        )
        _require(
            0 < self.level_spacing_bps <= 100, f"level_spacing_bps must be in (0, 100], got {self.level_spacing_bps}"
        )
        _require(0 < self.depth_bps <= 1000, f"depth_bps must be in (0, 1000], got {self.depth_bps}")
        _require(self.order_notional > 0, f"order_notional must be > 0, got {self.order_notional}")
        _require(
            self.cancel_share >= 0 and self.market_order_share >= 0 and self.cancel_share + self.market_order_share < 1,
            "cancel_share and market_order_share must be >= 0 and sum to < 1 (the rest are adds), "
            f"got {self.cancel_share} and {self.market_order_share}",
        )
        _require(
            isinstance(self.faults, list) and all(isinstance(f, ScheduledFault) for f in self.faults),
            "faults must be a list of ScheduledFault",
        )
        for scheduled in self.faults:
            symbol = getattr(scheduled.fault, "symbol", None)
            _require(
                symbol is None or symbol in names,
                f"scheduled fault at {scheduled.at_s} s names symbol {symbol!r}, which is not configured ({names})",
            )

    def symbol(self, name: str) -> SimSymbol:
        """Return the configured symbol called ``name`` (upper-case), raising ``KeyError`` when absent."""
        for s in self.symbols:
            if s.name == name:
                return s
        raise KeyError(name)
