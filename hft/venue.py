"""The venue seam: what the feed and the recorder need to know about an exchange's market-data endpoints.

A venue adapter says where to connect, which channels to subscribe and how to fetch a depth snapshot; the
connection lifecycle (``hft.feed.live``) and the recorder use only this. Binance spot is the one adapter today;
a second venue would be another class with the same three methods (plus its frame decoder), not a rewrite of
the lifecycle.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Protocol

DEFAULT_MAX_SNAPSHOT_BODY_BYTES = 8 * 1024 * 1024  # a 5000-level Binance body is ~200 KB


class SnapshotTooLargeError(OSError):
    """A REST snapshot body longer than the limit: refused after reading one byte past it, never buffered whole."""


class Venue(Protocol):
    """The market-data endpoints of one exchange."""

    name: str

    def stream_url(self, symbols: list[str]) -> str:
        """The URL of one connection carrying every channel of ``symbols``."""

    def fetch_snapshot(self, symbol: str, limit: int, timeout_s: float = 10.0,
                       max_bytes: int = DEFAULT_MAX_SNAPSHOT_BODY_BYTES) -> tuple[bytes, dict[str, str]]:
        """The raw depth-snapshot body and the response headers; ``OSError`` on failure (``HTTPError`` with its
        status and headers, ``SnapshotTooLargeError`` for a body over ``max_bytes``), ``ValueError`` for a URL that is
        not one."""


@dataclass(frozen=True)
class BinanceSpot:
    """Binance spot: the combined stream of depth diffs (100 ms), bookTicker and trades; ``GET /api/v3/depth``."""

    ws_base: str
    rest_base: str
    name: str = "binance-spot"
    channels: tuple[str, ...] = ("depth@100ms", "bookTicker", "trade")

    def stream_url(self, symbols: list[str]) -> str:
        streams = "/".join(f"{s.lower()}@{channel}" for s in symbols for channel in self.channels)
        return f"{self.ws_base.rstrip('/')}/stream?streams={streams}"

    def fetch_snapshot(self, symbol: str, limit: int, timeout_s: float = 10.0,
                       max_bytes: int = DEFAULT_MAX_SNAPSHOT_BODY_BYTES) -> tuple[bytes, dict[str, str]]:
        url = f"{self.rest_base.rstrip('/')}/api/v3/depth?symbol={symbol}&limit={limit}"
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read(max_bytes + 1)  # a hostile body is cut here, not read to its end
            if len(body) > max_bytes:
                raise SnapshotTooLargeError(f"snapshot body over {max_bytes} bytes")
            return body, dict(response.headers.items())


def venue_for(source: object) -> Venue:
    """The adapter of a ``[source]`` section (``ws_url`` and ``rest_url``); Binance spot is the only one today."""
    return BinanceSpot(source.ws_url, source.rest_url)


def combined_stream_url(ws_base: str, symbols: list[str]) -> str:
    """Return the combined-stream URL of depth diffs, bookTicker and trades for ``symbols``."""
    return BinanceSpot(ws_base, "").stream_url(symbols)


def fetch_depth_snapshot(rest_base: str, symbol: str, limit: int, timeout_s: float = 10.0) -> bytes:
    """Return the raw body of ``GET /api/v3/depth``; raise ``OSError`` (``URLError`` included) on failure."""
    return BinanceSpot("", rest_base).fetch_snapshot(symbol, limit, timeout_s)[0]
