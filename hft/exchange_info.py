"""Tick and lot sizes from the venue's ``GET /api/v3/exchangeInfo`` (PRICE_FILTER.tickSize, LOT_SIZE.stepSize).

The config states a grid per symbol; a live feed checks it against the venue at start and trusts the venue
when they differ (a wrong tick would reject every price as off-grid). Failure to reach the endpoint is not an
error: the config's values stay in force and the feed says so.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import msgspec


class _Filter(msgspec.Struct):
    filterType: str  # noqa: N815 (the venue's field name)
    tickSize: str | None = None  # noqa: N815
    stepSize: str | None = None  # noqa: N815


class _Symbol(msgspec.Struct):
    symbol: str
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_Symbol]


_DECODER = msgspec.json.Decoder(_ExchangeInfo)


@dataclass(frozen=True)
class SymbolGrid:
    """The venue's price tick and quantity step, as the decimal strings it sent."""

    tick_size: str
    step_size: str


def parse_exchange_info(body: bytes) -> dict[str, SymbolGrid]:
    """Return the grid of every symbol in an exchangeInfo response that has both filters."""
    info = _DECODER.decode(body)
    grids = {}
    for symbol in info.symbols:
        tick = next((f.tickSize for f in symbol.filters if f.filterType == "PRICE_FILTER" and f.tickSize), None)
        step = next((f.stepSize for f in symbol.filters if f.filterType == "LOT_SIZE" and f.stepSize), None)
        if tick and step:
            grids[symbol.symbol.upper()] = SymbolGrid(tick, step)
    return grids


def fetch_grids(rest_base: str, symbols: list[str], timeout_s: float = 5.0) -> dict[str, SymbolGrid]:
    """Ask the venue for the grids of ``symbols``; raise ``OSError``/``ValueError`` when it cannot be had."""
    query = urllib.parse.urlencode({"symbols": msgspec.json.encode([s.upper() for s in symbols]).decode()})
    url = f"{rest_base.rstrip('/')}/api/v3/exchangeInfo?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 400:
            raise
        # an endpoint without the ``symbols`` filter (or an older venue): take the whole list
        with urllib.request.urlopen(f"{rest_base.rstrip('/')}/api/v3/exchangeInfo", timeout=timeout_s) as response:
            body = response.read()
    try:
        return parse_exchange_info(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"exchangeInfo from {rest_base} is not what Binance sends: {exc}") from None
