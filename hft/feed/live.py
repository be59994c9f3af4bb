"""The live connection's lifecycle, venue-neutral: connect (backoff with jitter), receive with a size cap
enforced while receiving, a no-data watchdog, REST snapshots when a book needs one, reconnect on any break.

The venue (``hft.venue.Venue``) says where to connect and how to fetch a snapshot; the engine decodes frames
and keeps the books; the caller publishes what the engine produced and counts what this loop reports. Nothing
here knows shared memory, so the lifecycle is tested on its own against the simulator.

Why a size cap while receiving: websocket-client reads a whole frame into memory before returning it, so a
hostile 200 MB text frame cost the feed 566 MB before the engine's size check could refuse it. ``CappedFrameBuffer``
reads each frame's header first; a data message longer than ``max_message_bytes`` (fragments summed) is read
and thrown away in 64 KiB pieces, counted as a huge frame, and the stream goes on: no reconnect, no copy.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import websocket
from websocket._abnf import ABNF, frame_buffer  # the class websocket-client reads frames with (no public hook)

from hft.feed.engine import SNAP_OUTLIER, SNAP_STALE, FeedEngine
from hft.feed.rest import SnapshotFetcher
from hft.venue import Venue
from shm_layout.atomics import monotonic_ns

RECV_TIMEOUT_S = 0.1  # a receive returns at least this often, so the watchdog, snapshots and stop are checked
CONNECT_TIMEOUT_S = 10.0
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
DISCARD_CHUNK = 64 * 1024
MAX_CONTROL_PAYLOAD = 125  # RFC 6455 5.5: ping, pong and close carry at most 125 bytes

DATA_OPCODES = (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT)
SNAPSHOT_FAILURES = {SNAP_STALE: "stale", SNAP_OUTLIER: "outlier"}  # else "bad_snapshot"


class CappedFrameBuffer(frame_buffer):
    """websocket-client's frame reader with a message-size cap checked on each frame's header.

    A data frame that would take the message (the frames of one fragmented message summed) over
    ``max_message_bytes`` is discarded while it is read (its payload is never held) and returned empty, and so are
    the message's later fragments; ``dropped_messages`` counts each dropped message when its last frame passes,
    so the caller drops the (empty or partial) message ``recv_data`` hands back. A read that times out mid-frame
    resumes where it stopped (the parent class keeps the header; ``discard_left`` keeps the skip).
    A control frame longer than RFC 6455 allows is a protocol error (the connection is closed).
    """

    def __init__(self, recv_fn: Callable[[int], bytes], skip_utf8_validation: bool, max_message_bytes: int) -> None:
        super().__init__(self._recv_stamped, skip_utf8_validation)
        self._recv_socket = recv_fn
        self.last_bytes_at = time.monotonic()  # when the socket last gave bytes: liveness, even mid-frame
        self.max_message_bytes = max_message_bytes
        self.message_bytes = 0  # payload bytes of the data message being received
        self.dropping = False  # the data message being received is over the cap
        self.discard_left: int | None = None  # payload bytes of the current frame still to throw away
        self.dropped_messages = 0

    def _recv_stamped(self, bufsize: int) -> bytes:
        chunk = self._recv_socket(bufsize)
        self.last_bytes_at = time.monotonic()
        return chunk

    def recv_frame(self) -> ABNF:
        if self.needs_header():
            self.recv_header()
        if self.needs_length():
            self.recv_length()
        fin, opcode = self.header[0], self.header[4]
        length = self.length
        if opcode not in DATA_OPCODES:
            if length > MAX_CONTROL_PAYLOAD:
                raise websocket.WebSocketProtocolException(f"control frame of {length} bytes")
            return super().recv_frame()
        if self.discard_left is None and not self.dropping and self.message_bytes + length <= self.max_message_bytes:
            frame = super().recv_frame()  # may time out mid-payload: counted once it returns
            self.message_bytes = 0 if fin else self.message_bytes + length
            return frame
        # over the cap: throw the payload away as it arrives
        if self.needs_mask():
            self.recv_mask()
        if self.discard_left is None:
            self.discard_left = length
        self._discard()
        self.clear()
        self.discard_left = None
        self.dropping = not fin
        self.message_bytes = 0
        if fin:
            self.dropped_messages += 1
        return ABNF(fin, 0, 0, 0, opcode, 0, b"")

    def _discard(self) -> None:
        buffered = b"".join(self.recv_buffer)
        self.recv_buffer = []
        take = min(len(buffered), self.discard_left)
        self.discard_left -= take
        if take < len(buffered):  # the next frame's first bytes
            self.recv_buffer = [buffered[take:]]
        while self.discard_left > 0:
            chunk = self.recv(min(DISCARD_CHUNK, self.discard_left))
            self.discard_left -= len(chunk)


class CappedWebSocket(websocket.WebSocket):
    """A ``websocket.WebSocket`` whose frames are read by ``CappedFrameBuffer``."""

    def __init__(self, max_message_bytes: int, **options: object) -> None:
        super().__init__(**options)
        self.frame_buffer = CappedFrameBuffer(self._recv, bool(options.get("skip_utf8_validation")),
                                              max_message_bytes)


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
        self.got_data = False  # on the current connection
        self.wall_offset_ns = 0

    def connect(self) -> websocket.WebSocket:
        # UTF-8 is checked by the frame decoder instead (the fast path takes ASCII only; anything else goes
        # through msgspec, which validates it): websocket-client's pure-Python check cost ~30 us a frame
        ws = CappedWebSocket(self.max_message_bytes, enable_multithread=False, skip_utf8_validation=True)
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
            ws.settimeout(RECV_TIMEOUT_S)
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

    def _receive(self, ws: CappedWebSocket, stopping: Callable[[], bool], housekeeping: Callable[[], None]) -> None:
        engine, frames = self.engine, ws.frame_buffer
        dropped = frames.dropped_messages
        silence_s = self.no_data_timeout_s
        last_data = time.monotonic()
        while not stopping():
            try:
                opcode, data = ws.recv_data()  # answers server pings itself
            except websocket.WebSocketTimeoutException:
                data = None
            if data is None:
                # silence: no byte for silence_s (a long frame still arriving, even one thrown away, is not)
                if silence_s > 0 and time.monotonic() - max(last_data, frames.last_bytes_at) > silence_s:
                    # a server that stops sending looks synced and fresh: say so, and start again
                    self.counts.no_data_reconnects += 1
                    raise NoDataError(f"no data for {silence_s:g} s (source.no_data_timeout_s)")
            else:
                last_data = time.monotonic()
                ts_recv = monotonic_ns()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    raise websocket.WebSocketConnectionClosedException("server closed the stream")
                self.got_data = True
                if frames.dropped_messages != dropped:  # this message was over the cap: only counted
                    dropped = frames.dropped_messages
                    engine.on_frame_too_large()
                elif opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    n = engine.on_frame(data, ts_recv, ts_recv + self.wall_offset_ns)
                    self.publish(n, ts_recv, monotonic_ns())
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
