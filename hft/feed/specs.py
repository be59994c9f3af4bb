"""The feed engine's symbols from a config: what the feed process and a backtest decode market data with."""

from __future__ import annotations

import logging

from hft.config import Config
from hft.exchange_info import fetch_grids
from hft.feed.engine import SymbolSpec
from hft.validation import ConfigError, decimal_to_fixed


def symbol_specs(config: Config, log: logging.Logger) -> list[SymbolSpec]:
    """Build the engine's symbols: fixed-point scales from the config, the price tick from the venue's
    exchangeInfo when a live source serves it (else from the config).

    The lot (quantity step) is checked on orders, not on market data: real books hold resting sizes finer
    than today's step (recorded BTCUSDT has asks of 25.42618900 against a 0.00001 step), and rejecting them
    would throw a correct book away every few minutes.
    """
    grids = {}
    if config.source.kind != "replay":
        try:
            grids = fetch_grids(config.source.rest_url, [s.name for s in config.symbols])
        except (OSError, ValueError) as exc:
            log.warning("exchangeInfo unavailable (%s): using the configured tick and lot sizes", exc)
    specs = []
    for index, symbol in enumerate(config.symbols):
        tick, lot = symbol.tick_size, symbol.lot_size
        venue = grids.get(symbol.name)
        if venue is not None:
            try:
                venue_tick = decimal_to_fixed(venue.tick_size, symbol.price_decimals, f"{symbol.name} tickSize")
                venue_lot = decimal_to_fixed(venue.step_size, symbol.size_decimals, f"{symbol.name} stepSize")
            except ConfigError as exc:
                log.error("%s: the venue's grid does not fit the configured decimals (%s); using the config",
                          symbol.name, exc)
            else:
                if (venue_tick, venue_lot) != (decimal_to_fixed(tick, symbol.price_decimals, "tick"),
                                               decimal_to_fixed(lot, symbol.size_decimals, "lot")):
                    log.warning("%s: venue grid tick %s lot %s differs from the config (tick %s lot %s): "
                                "using the venue's", symbol.name, venue.tick_size, venue.step_size, tick, lot)
                tick, lot = venue.tick_size, venue.step_size
        specs.append(SymbolSpec(
            symbol.name, index, symbol.price_decimals, symbol.size_decimals,
            decimal_to_fixed(tick, symbol.price_decimals, f"{symbol.name}.tick_size"),
            1,  # no lot check on market data (see above)
            price_band_ppm=round(symbol.price_band_pct * 10_000),
            max_size=decimal_to_fixed(symbol.max_size, symbol.size_decimals, f"{symbol.name}.max_size"),
            max_drift_ns=config.source.max_clock_drift_ms * 1_000_000,
        ))
    return specs
