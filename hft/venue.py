"""The venue's market-data endpoints as Binance spot defines them: one place for the URLs both the feed and
the recorder use."""

from __future__ import annotations

import urllib.request


def combined_stream_url(ws_base: str, symbols: list[str]) -> str:
    """Return the combined-stream URL of depth diffs, bookTicker and trades for ``symbols`` (lowercase names)."""
    streams = "/".join(f"{s.lower()}@depth@100ms/{s.lower()}@bookTicker/{s.lower()}@trade" for s in symbols)
    return f"{ws_base.rstrip('/')}/stream?streams={streams}"


def fetch_depth(rest_base: str, symbol: str, limit: int, timeout_s: float = 10.0) -> tuple[bytes, dict[str, str]]:
    """Return the raw body and the headers of ``GET /api/v3/depth``; raise ``OSError`` (``URLError``, and
    ``HTTPError`` with the status and headers) on failure, ``ValueError`` for a URL that is not one."""
    url = f"{rest_base.rstrip('/')}/api/v3/depth?symbol={symbol}&limit={limit}"
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read(), dict(response.headers.items())


def fetch_depth_snapshot(rest_base: str, symbol: str, limit: int, timeout_s: float = 10.0) -> bytes:
    """Return the raw body of ``GET /api/v3/depth``; raise ``OSError`` (``URLError`` included) on failure."""
    return fetch_depth(rest_base, symbol, limit, timeout_s)[0]
