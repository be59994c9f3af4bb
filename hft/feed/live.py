"""The live connection's lifecycle, venue-neutral: connect (backoff with jitter), receive with a size cap
enforced while receiving, a no-data watchdog, REST snapshots when a book needs one, reconnect on any break.

The venue (``hft.venue.Venue``) says where to connect and how to fetch a snapshot; the engine decodes frames
and keeps the books; the caller publishes what the engine produced and counts what this loop reports. Nothing
here knows shared memory, so the lifecycle is tested on its own against the simulator.

Receiving is ``hft.feed.wsreader.WsFrameReader``'s: every byte the socket holds in one call, every complete frame
decoded and published before the next wait, the size cap enforced on each frame's header. How the loop waits
for bytes follows the feed's placement (``processes.feed.wait``): ``spin-sleep`` blocks in ``poll`` (a feed that
shares its core), ``spin-yield`` and ``busy-spin`` poll the non-blocking socket (a core of its own).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic_ns  # CLOCK_MONOTONIC, as shm_layout.atomics.monotonic_ns, without a call into numba

import numpy as np
import websocket

from hft.feed.drain import IO_END, IO_READ_NS, IO_START, IO_WALL_OFFSET, new_cursor
from hft.feed.engine import SNAP_OUTLIER, SNAP_STALE, FeedEngine
from hft.feed.publish import FeedOutlet
from hft.feed.rest import SnapshotFetcher
from hft.feed.wsreader import DROPPED, MESSAGE_OPCODES, OPCODE_CLOSE, OPCODE_PING, WsFrameReader, wait_idle
from hft.venue import Venue

RECV_TIMEOUT_S = 0.1  # a blocking wait returns at least this often, so the watchdog, snapshots and stop are checked
CHORES_EVERY_NS = 1_000_000  # while frames stream or the loop spins: the chores (watchdog, snapshots) this often
WAIT_MODES = {"spin-sleep": "block", "spin-yield": "yield", "busy-spin": "spin"}  # processes.feed.wait -> socket wait
CONNECT_TIMEOUT_S = 10.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
SNAPSHOT_FAILURES = {SNAP_STALE: "stale", SNAP_OUTLIER: "outlier"}  # else "bad_snapshot"


class NoDataError(OSError):
    """The connection's no-data watchdog fired: it is closed and reconnected like a broken one."""


@dataclass
class LinkCounts:
    """What the lifecycle counts; the feed process mirrors these into its shared-memory counters."""

    connect_failures: int = 0
    reconnects: int = 0
    no_data_reconnects: int = 0


class LiveFeed:
    """One venue connection feeding one ``FeedEngine``; ``publish(n_events, ts_recv, ts_decoded)`` is called
    after every frame or snapshot that produced events (the engine's buffers hold them until the next call)."""

    def __init__(
        self,
        venue: Venue,
        symbols: list[str],
        engine: FeedEngine,
        publish: Callable[[int, int, int], None],
        log: logging.Logger,
        *,
        depth_limit: int,
        no_data_timeout_s: float,
        max_message_bytes: int | None = None,
        wait: str = "spin-sleep",
        outlet: FeedOutlet | None = None,
        trace: np.ndarray | None = None,
    ) -> None:
        self.venue = venue
        self.url = venue.stream_url(symbols)
        self.engine = engine
        self.publish = publish
        self.log = log
        self.no_data_timeout_s = no_data_timeout_s
        self.max_message_bytes = max_message_bytes or engine.max_frame_bytes
        self.fetcher = SnapshotFetcher(venue, depth_limit, log, max_bytes=engine.max_snapshot_bytes)
        self.counts = LinkCounts()
        self.wait_mode = WAIT_MODES[wait]
        # with an outlet, the frames of each read are decoded and published in one jitted call (hft.feed.drain);
        # ``publish`` then only sees what the Python path handles (snapshots, odd frames, disconnects)
        self.outlet = outlet
        self.trace = trace if trace is not None else np.zeros((0, 4), np.int64)
        self.cursor = new_cursor(0, self.max_message_bytes)
        self.got_data = False  # on the current connection
        self.wall_offset_ns = 0
        self.read_ns = 0  # when the receive that completed the frame being handled returned (CLOCK_MONOTONIC)

    def connect(self) -> websocket.WebSocket:
        # UTF-8 is checked by the frame decoder instead (the fast path takes ASCII only; anything else goes
        # through msgspec, which validates it): websocket-client's pure-Python check cost ~30 us a frame
        ws = websocket.WebSocket(enable_multithread=False, skip_utf8_validation=True)
        ws.settimeout(CONNECT_TIMEOUT_S)
        ws.connect(self.url)
        return ws

    def run(self, stopping: Callable[[], bool], housekeeping: Callable[[], None]) -> None:
        """Connect, receive and resync until ``stopping()``; ``housekeeping()`` runs on every pass."""
        backoff = BACKOFF_INITIAL_S
        while not stopping():
            try:
                ws = self.connect()
            except (OSError, websocket.WebSocketException) as exc:
                self.counts.connect_failures += 1
                backoff = self._wait(backoff, f"connect to {self.url} failed ({exc})", stopping)
                continue
            self.log.info("connected to %s", self.url)
            # frames are stamped on the monotonic clock (ts_recv); the venue-time drift bound and the bookTicker
            # stamps take the wall clock (ts_local), fixed per connection so that it never steps within one
            self.wall_offset_ns = time.time_ns() - monotonic_ns()
            self.got_data = False
            try:
                self._receive(ws, stopping, housekeeping)
            except (OSError, websocket.WebSocketException) as exc:
                self.counts.reconnects += 1
                n = self.engine.on_disconnect(monotonic_ns())
                if n > 0:
                    self.publish(n, monotonic_ns(), monotonic_ns())
                if self.got_data:  # a connection that worked: reconnect at once
                    self.log.warning("stream broke (%s): books reset, reconnecting", exc)
                    backoff = BACKOFF_INITIAL_S
                else:  # accepted and then closed or silent: not a storm of reconnects either
                    backoff = self._wait(backoff, f"stream broke before any data ({exc})", stopping)
            finally:
                ws.close()

    def _wait(self, backoff: float, why: str, stopping: Callable[[], bool]) -> float:
        """Log ``why``, sleep ``backoff`` with jitter (x0.5-1.5, capped) unless stopping; return the next backoff."""
        delay = min(BACKOFF_MAX_S, backoff) * (0.5 + random.random())
        self.log.warning("%s; retrying in %.1f s", why, delay)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not stopping():
            time.sleep(0.05)
        return backoff * 2

    def _receive(self, ws: websocket.WebSocket, stopping: Callable[[], bool],
                 housekeeping: Callable[[], None]) -> None:
        """Read, decode and publish until the connection breaks or ``stopping()``.

        Each pass takes what the socket holds in one receive and hands on every complete frame in it before
        anything else; the chores (stop, watchdog, snapshots, housekeeping) run when the socket is idle, and at
        least every ``CHORES_EVERY_NS`` while frames stream."""
        engine, publish = self.engine, self.publish
        reader = WsFrameReader(ws.sock, self.max_message_bytes)
        silence_ns = int(self.no_data_timeout_s * 1e9)
        wall_offset_ns, mode = self.wall_offset_ns, self.wait_mode
        outlet, cursor, trace = self.outlet, self.cursor, self.trace
        cursor[IO_WALL_OFFSET] = wall_offset_ns
        chores_due = 0
        while True:
            if reader.receive():
                self.read_ns = reader.read_ns
                while True:
                    if outlet is not None and reader.between_messages():
                        cursor[IO_START], cursor[IO_END] = reader.span
                        cursor[IO_READ_NS] = reader.read_ns
                        if engine.drain(reader.array, cursor, outlet, trace):
                            self.got_data = True
                        reader.consumed(int(cursor[IO_START]))
                    frame = reader.next_frame()  # what the jitted drain left: none, or one for the Python path
                    if frame is None:
                        break
                    opcode, payload = frame
                    if opcode in MESSAGE_OPCODES:
                        ts_recv = monotonic_ns()
                        n = engine.on_frame(payload, ts_recv, ts_recv + wall_offset_ns)
                        publish(n, ts_recv, monotonic_ns())
                    elif opcode == DROPPED:  # over the size cap: counted, its bytes skipped as they arrive
                        engine.on_frame_too_large()
                    elif opcode == OPCODE_PING:  # answered at once (Binance drops a client that does not)
                        ws.sock.settimeout(CONNECT_TIMEOUT_S)  # websocket-client's send, blocking briefly
                        ws.pong(payload)
                        ws.sock.setblocking(False)
                    elif opcode == OPCODE_CLOSE:
                        raise websocket.WebSocketConnectionClosedException("server closed the stream")
                    self.got_data = True
                now = monotonic_ns()
                if now < chores_due:
                    continue
            else:
                readable = wait_idle(reader, mode, RECV_TIMEOUT_S)
                now = monotonic_ns()
                if now < chores_due and (readable or mode != "block"):
                    continue  # bytes are waiting (or the loop spins): the chores are not due
            chores_due = now + CHORES_EVERY_NS
            if stopping():
                return
            # silence: no byte for the timeout (a long frame still arriving, even one being skipped, is not)
            if silence_ns > 0 and now - reader.read_ns > silence_ns:
                # a server that stops sending looks synced and fresh: say so, and start again
                self.counts.no_data_reconnects += 1
                raise NoDataError(f"no data for {self.no_data_timeout_s:g} s (source.no_data_timeout_s)")
            self._snapshots()
            housekeeping()

    def _snapshots(self) -> None:
        engine, fetcher = self.engine, self.fetcher
        for symbol in engine.needs_snapshot():
            fetcher.request(symbol)
        for symbol, body, ts in fetcher.completed():
            n = engine.on_snapshot(symbol, body, ts)
            if n > 0:
                self.log.info("%s book synced from snapshot (%d events)", symbol, n)
                self.publish(n, ts, monotonic_ns())
            elif n < 0:  # stale, malformed, off grid: still needed, asked again after a backoff
                fetcher.failed(symbol, SNAPSHOT_FAILURES.get(n, "bad_snapshot"))
