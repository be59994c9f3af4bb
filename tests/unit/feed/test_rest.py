"""REST snapshots are retried politely: exponential backoff with jitter per symbol, the venue's Retry-After on
429/418 for every symbol, each failure counted by reason; against the real simulator on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from hft.feed.rest import SnapshotFetcher
from hft.sim.config import SimConfig
from hft.sim.server import SimServerThread, start_in_thread
from hft.venue import BinanceSpot

LOG = logging.getLogger("test.rest")


@pytest.fixture
def exchange() -> Iterator[SimServerThread]:
    server = start_in_thread(SimConfig(events_per_second=200.0))
    yield server
    server.stop()


def poll(fetcher: SnapshotFetcher, seconds: float, symbol: str = "BTCUSDT") -> list[float]:
    """Play the feed's loop: ask every 5 ms while no snapshot arrived; return when each answer came."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not got:
            fetcher.request(symbol)
        for _symbol, body, _ts in fetcher.completed():
            assert body.startswith(b'{"lastUpdateId"')
            got.append(time.monotonic())
        time.sleep(0.005)
    return got


def test_http_500_when_repeated_then_backoff_not_a_storm_and_counted(exchange: SimServerThread) -> None:
    exchange.inject({"kind": "rest_error", "status": 500, "requests": 3})
    fetcher = SnapshotFetcher(BinanceSpot("", exchange.http_url), 100, LOG, backoff_initial_s=0.2,
                              backoff_max_s=2.0)
    got = poll(fetcher, 3.0)
    assert fetcher.counts == {"http_500": 3}
    assert fetcher.requests == 4 and len(got) == 1  # 3 failures, then the snapshot: ~0.2 + 0.4 + 0.8 s apart
    assert fetcher.failures_total == 3 and "BTCUSDT" not in fetcher.failures  # a success clears the backoff


def test_http_429_with_retry_after_when_answered_then_every_symbol_waits_that_long(
    exchange: SimServerThread
) -> None:
    exchange.inject({"kind": "rest_error", "status": 429, "requests": 1, "retry_after_s": 1})
    fetcher = SnapshotFetcher(BinanceSpot("", exchange.http_url), 100, LOG, backoff_initial_s=0.05)
    started = time.monotonic()
    got = poll(fetcher, 0.5)
    assert got == [] and fetcher.counts == {"http_429": 1, "throttled": 1}
    assert not fetcher.request("ETHUSDT")  # the venue limits per IP: the other symbol waits too
    got = poll(fetcher, 2.0)
    assert len(got) == 1 and got[0] - started >= 1.0
    assert fetcher.requests == 2


def test_unreachable_endpoint_when_polled_then_a_few_tries_not_thousands() -> None:
    fetcher = SnapshotFetcher(BinanceSpot("", "http://127.0.0.1:9"), 100, LOG, backoff_initial_s=0.2,
                              backoff_max_s=1.0)
    poll(fetcher, 1.5)
    assert 2 <= fetcher.requests <= 5 and fetcher.counts.get("network", 0) == fetcher.requests - (
        1 if fetcher.in_flight else 0)


def test_stale_snapshot_when_booked_then_the_next_request_waits() -> None:
    fetcher = SnapshotFetcher(BinanceSpot("", "http://127.0.0.1:9"), 100, LOG, backoff_initial_s=1.0)
    delay = fetcher.failed("BTCUSDT", "stale")
    assert 0.5 <= delay <= 1.5 and fetcher.counts == {"stale": 1}
    assert not fetcher.request("BTCUSDT")


def test_snapshot_body_over_the_limit_when_answered_then_refused_as_too_large(exchange: SimServerThread) -> None:
    """The body is read at most one byte past the limit (a hostile 200 MB body is never buffered whole)."""
    fetcher = SnapshotFetcher(BinanceSpot("", exchange.http_url), 100, LOG, backoff_initial_s=5.0, max_bytes=256)
    got = poll(fetcher, 0.5)
    assert got == [] and fetcher.counts == {"too_large": 1} and fetcher.failures_total == 1
