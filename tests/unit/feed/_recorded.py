"""Loaders of the recorded Binance spot data (``/work/shared/data/binance-spot``, see its PROVENANCE.md).

Each loader skips the calling test with a clear reason when the data folder or file is absent.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

DATA = Path("/work/shared/data/binance-spot")
HFTBACKTEST = {
    "BTCUSDT": ("hftbacktest_spot_btcusdt_20240808.gz", 3451, 28040, 9757),
    "ETHUSDT": ("hftbacktest_spot_ethusdt_20240808.gz", 3434, 24077, 6106),
}
CRYPTOFEED_WS = "cryptofeed_BINANCE_2021-08-14.ws.1.0"
CRYPTOFEED_HTTP = "cryptofeed_BINANCE_2021-08-14.http.0.0"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"recorded data not available: {path} is absent (see the data folder's PROVENANCE.md)")
    return path


def load_hftbacktest(file_name: str) -> list[tuple[int, bytes]]:
    """Lines ``<ns> <json>`` in file order."""
    with gzip.open(_require(DATA / file_name), "rb") as f:
        return [(int(ts), js.rstrip(b"\n")) for ts, js in (line.split(b" ", 1) for line in f)]


def is_snapshot(js: bytes) -> bool:
    return js.startswith(b'{"lastUpdateId"')


def load_cryptofeed() -> list[tuple[float, str, bytes]]:
    """Merge the ws and http recordings by local receive time: ``(t, "ws" | symbol, raw)``."""
    out: list[tuple[float, str, bytes]] = []
    with open(_require(DATA / CRYPTOFEED_WS), "rb") as f:
        next(f)  # the url line
        for line in f:
            ts, js = line.rstrip(b"\n").split(b": ", 1)
            out.append((float(ts), "ws", js))
    with open(_require(DATA / CRYPTOFEED_HTTP), "rb") as f:
        for line in f:
            if not line.strip():
                continue
            url, rest = line.rstrip(b"\n").split(b" -> ", 1)
            ts, js = rest.split(b": ", 1)
            symbol = url.split(b"symbol=")[1].split(b"&")[0].decode()
            out.append((float(ts), symbol, js))
    out.sort(key=lambda item: item[0])
    return out
