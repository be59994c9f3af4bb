"""REST depth snapshots for the live feed: fetched off the receive thread, and retried politely.

Why: the feed asks for a snapshot on every pass of its loop while a book waits for one, and a failing endpoint
(HTTP 500, a stale answer, a bad URL) was asked 16-33 times a second; against Binance that is how an IP gets
banned. Each symbol now waits after a failure, exponentially (``backoff_initial_s`` doubling up to
``backoff_max_s``) with jitter (x0.5-1.5). HTTP 429 ("too many requests") and 418 ("banned") pause every symbol
(Binance limits per IP) for at least their ``Retry-After``; an answer whose ``X-MBX-USED-WEIGHT-1M`` header shows
more than 80 % of the minute's weight used pauses new requests until the next minute. A body over ``max_bytes``
is refused after reading one byte past it. Every failure is counted by reason (``counts``: ``http_<status>``,
``network``, ``too_large``, ``stale``, ``throttled``) and logged at most once per ``LOG_EVERY_S`` per reason.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import urllib.error

from hft.venue import SnapshotTooLargeError, Venue

WEIGHT_LIMIT_1M = 6000  # Binance spot: request weight per IP and minute
WEIGHT_PAUSE_SHARE = 0.8  # above this share of the minute's weight used, wait for the next minute
LOG_EVERY_S = 5.0
THROTTLE_STATUSES = (418, 429)


class SnapshotFetcher:
    """Fetch REST depth snapshots on threads of their own, one at a time per symbol, with backoff."""

    def __init__(self, venue: Venue, limit: int, log: logging.Logger, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 60.0, max_bytes: int = 8 * 1024 * 1024) -> None:
        self.venue = venue
        self.max_bytes = max_bytes
        self.limit = limit
        self.log = log
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.results: queue.Queue[tuple[str, bytes | None, int, str | None, float, int]] = queue.Queue()
        self.in_flight: set[str] = set()
        self.failures: dict[str, int] = {}  # symbol -> consecutive failures
        self.not_before: dict[str, float] = {}  # symbol -> monotonic time of its next allowed request
        self.paused_until = 0.0  # every symbol: throttled by the venue
        self.counts: dict[str, int] = {}  # failure reason -> count
        self.requests = 0
        self._logged: dict[str, float] = {}

    def request(self, symbol: str) -> bool:
        """Ask for ``symbol``'s snapshot unless one is in flight or its backoff has not passed; True if sent."""
        now = time.monotonic()
        if symbol in self.in_flight or now < self.paused_until or now < self.not_before.get(symbol, 0.0):
            return False
        self.in_flight.add(symbol)
        self.requests += 1
        threading.Thread(target=self._fetch, args=(symbol,), daemon=True, name=f"snapshot-{symbol}").start()
        return True

    def _fetch(self, symbol: str) -> None:
        from shm_layout.atomics import monotonic_ns

        body, reason, retry_after, used_weight = None, None, 0.0, 0
        try:
            body, headers = self.venue.fetch_snapshot(symbol, self.limit, max_bytes=self.max_bytes)
            used_weight = _int_header(headers.get("X-MBX-USED-WEIGHT-1M"))
        except urllib.error.HTTPError as exc:
            reason = f"http_{exc.code}"
            retry_after = float(_int_header(exc.headers.get("Retry-After") if exc.headers else None))
        except SnapshotTooLargeError as exc:
            reason = "too_large"
            self._log_once(reason, "snapshot %s refused: %s", symbol, exc)
        except (OSError, ValueError) as exc:  # refused, timed out, a bad URL
            reason = "network"
            self._log_once(reason, "snapshot %s failed: %s", symbol, exc)
        self.results.put((symbol, body, monotonic_ns(), reason, retry_after, used_weight))

    def completed(self) -> list[tuple[str, bytes, int]]:
        """The snapshots that arrived since the last call (failures are booked and retried later)."""
        done = []
        while True:
            try:
                symbol, body, ts, reason, retry_after, used_weight = self.results.get_nowait()
            except queue.Empty:
                return done
            self.in_flight.discard(symbol)
            if body is None:
                self.failed(symbol, reason or "network", retry_after)
                continue
            self.failures.pop(symbol, None)
            if used_weight > WEIGHT_LIMIT_1M * WEIGHT_PAUSE_SHARE:
                now = time.time()
                self.paused_until = max(self.paused_until, time.monotonic() + 60.0 - now % 60.0)
                self._count("throttled")
                self._log_once("weight", "the venue reports %d of %d request weight used this minute: no "
                               "snapshot request until the next minute", used_weight, WEIGHT_LIMIT_1M)
            done.append((symbol, body, ts))

    def failed(self, symbol: str, reason: str, retry_after_s: float = 0.0) -> float:
        """Book a failed snapshot of ``symbol`` (``stale``: applied but older than the buffered diffs): it is
        asked again only after its backoff; return that delay in seconds."""
        self._count(reason)
        n = self.failures[symbol] = self.failures.get(symbol, 0) + 1
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (n - 1)) * (0.5 + random.random())
        status = int(reason[5:]) if reason.startswith("http_") and reason[5:].isdigit() else 0
        if status in THROTTLE_STATUSES:
            delay = max(delay, retry_after_s, self.backoff_initial_s)
            self.paused_until = max(self.paused_until, time.monotonic() + delay)  # the venue limits per IP
            self._count("throttled")
        self.not_before[symbol] = time.monotonic() + delay
        self._log_once(reason, "snapshot %s failed (%s, %d in a row): next try in %.1f s", symbol, reason, n, delay)
        return delay

    def _count(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def _log_once(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY_S) >= LOG_EVERY_S:
            self._logged[key] = now
            self.log.warning(message, *args)

    @property
    def failures_total(self) -> int:
        return sum(count for reason, count in self.counts.items() if reason != "throttled")


def _int_header(value: str | None) -> int:
    try:
        return max(0, int(float(value))) if value else 0
    except ValueError:
        return 0
