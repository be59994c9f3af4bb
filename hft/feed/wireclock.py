"""Opt-in wire clock of the feed: per received frame, the simulator's send time it carried and the feed's own
stamps along its path, written at exit.

The exchange simulator can stamp every frame with the CLOCK_MONOTONIC time it handed the frame to its socket
(``hft.sim.server``, ``HFT_SIM_STAMP_SEND=1``: a ``"sim_send_ns":"<19 digits>"`` key at the end of the frame's
``data`` object, which the engine skips like any unknown key). Every order carries the ``ts_recv`` of the frame it
was decided on (``ts_tick_recv``, stored in the ``orders`` table), so a map ``ts_recv -> send_ns`` is all a
benchmark needs to measure wire-to-order (``orders.ts_init - send_ns``) next to frame-to-order
(``orders.ts_init - ts_tick_recv``), both on one clock. Per frame the map also keeps when the socket read that
completed it returned (``ts_read``, from ``hft.feed.wsreader``) and when its publication returned
(``ts_published``), so wire -> order splits into send -> read (kernel and wake-up), read -> frame (framing),
frame -> published (decode and publication) and published -> order (hop and strategy).

Turned on by the environment variable ``HFT_FEED_WIRE_CLOCK=<directory>`` (a spawned feed inherits it from
``hft run``). Then :func:`capture_from_env` returns a :class:`WireClockCapture` whose :meth:`~WireClockCapture.wrap`
replaces the engine's ``on_frame`` and the runner's ``publish`` by thin wrappers: ``on_frame`` keeps a reference
to the frame, ``publish`` publishes first and only then reads the stamp (a bounded ``rfind`` over the frame's tail
and an ``int`` of 19 digits, ~0.5 µs), so the parse is not inside the frame's own latency figures; the wrapper's
extra Python call is (~0.2 µs: the feed's frame -> published p50 went from 2.7 to 2.9 µs in an A/B run at 10,000
events/s). At exit :meth:`~WireClockCapture.dump` writes ``<directory>/wireclock-<pid>.npy``: an int64 array of
shape ``(n, 4)``, columns ``COLUMNS`` (``ts_recv, send_ns, ts_read, ts_published``; ``ts_read`` 0 in a replay),
in receive order within each part (the frames of the Python path, then those of the jitted drain, whose trace
holds at most ``TRACE_ROWS``). Off (the variable unset), nothing is wrapped:
the feed's hot path is exactly the usual one.

Single writer: the feed's receive thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from time import monotonic_ns  # CLOCK_MONOTONIC, as shm_layout.atomics.monotonic_ns, without a call into numba

import numpy as np
from numba import njit

__all__ = ["COLUMNS", "WIRE_CLOCK_ENV", "WireClockCapture", "capture_from_env", "load_wire_clock", "send_stamp",
           "send_stamp_at"]

WIRE_CLOCK_ENV = "HFT_FEED_WIRE_CLOCK"
SEND_STAMP_KEY = b'"sim_send_ns":"'  # the simulator's key (hft.sim.server.SEND_STAMP_KEY)
SEND_STAMP_DIGITS = 19
_SEARCH = 64  # the stamp ends 2-3 bytes before the end of a frame
_STAMP_KEY_BYTES = np.frombuffer(SEND_STAMP_KEY, np.uint8).copy()  # the key for send_stamp_at
INITIAL_CAPACITY = 1 << 16
COLUMNS = ("ts_recv", "send_ns", "ts_read", "ts_published")
TRACE_ROWS = 1 << 21  # frames the jitted drain records (2M: over a minute at the 50k events/s bench rate)


def send_stamp(frame: bytes) -> int:
    """Return the simulator's send stamp carried by ``frame`` (ns), or -1 when it carries none."""
    at = frame.rfind(SEND_STAMP_KEY, max(0, len(frame) - _SEARCH))
    if at < 0:
        return -1
    start = at + len(SEND_STAMP_KEY)
    digits = frame[start : start + SEND_STAMP_DIGITS]
    if len(digits) != SEND_STAMP_DIGITS or not digits.isdigit():
        return -1
    value = int(digits)
    return value if value > 0 else -1


@njit(cache=True, nogil=True)
def send_stamp_at(buf: np.ndarray, start: int, stop: int) -> int:
    """``send_stamp`` of the frame ``buf[start:stop]`` of a uint8 array, for jitted readers (``hft.feed.drain``)."""
    key = _STAMP_KEY_BYTES
    width = key.shape[0]
    lo = max(start, stop - _SEARCH)
    for at in range(stop - width - SEND_STAMP_DIGITS, lo - 1, -1):
        match = True
        for k in range(width):
            if buf[at + k] != key[k]:
                match = False
                break
        if match:
            value = 0
            for k in range(at + width, at + width + SEND_STAMP_DIGITS):
                digit = buf[k] - 48
                if digit < 0 or digit > 9:
                    return -1
                value = value * 10 + digit
            return value if value > 0 else -1
    return -1


class WireClockCapture:
    """Collect the ``COLUMNS`` of every stamped frame; write them to ``directory`` at exit."""

    def __init__(self, directory: str | os.PathLike[str], capacity: int = INITIAL_CAPACITY) -> None:
        self.directory = Path(directory)
        self.pairs = np.zeros((max(16, capacity), len(COLUMNS)), np.int64)
        self.count = 0
        self.unstamped = 0  # frames without a stamp (a simulator that does not stamp, a replay)
        self._frame: bytes | None = None
        self._ts_recv = 0
        self._ts_read = 0
        # rows the feed's jitted drain (hft.feed.drain) writes itself, and how many it used
        self.trace = np.zeros((0, len(COLUMNS)), np.int64)
        self.trace_used: Callable[[], int] = lambda: 0

    def new_trace(self, rows: int, used: Callable[[], int]) -> np.ndarray:
        """Allocate the jitted drain's trace (``rows`` of ``COLUMNS``); ``used()`` says how many it filled."""
        self.trace = np.zeros((rows, len(COLUMNS)), np.int64)  # pages are committed only as rows are written
        self.trace_used = used
        return self.trace

    def note(self, frame: bytes, ts_recv: int, ts_read: int = 0, ts_published: int = 0) -> None:
        """Record the stamps of one frame received at ``ts_recv`` (call off the latency path)."""
        sent = send_stamp(frame) if isinstance(frame, (bytes, bytearray)) else -1
        if sent < 0:
            self.unstamped += 1
            return
        if self.count == self.pairs.shape[0]:
            self.pairs = np.concatenate((self.pairs, np.zeros_like(self.pairs)))
        self.pairs[self.count] = (ts_recv, sent, ts_read, ts_published)
        self.count += 1

    def wrap(
        self, on_frame: Callable[..., int], publish: Callable[[int, int, int], None],
        read_ns: Callable[[], int] | None = None,
    ) -> tuple[Callable[..., int], Callable[[int, int, int], None]]:
        """Return ``(on_frame, publish)`` that also capture: the stamp is read after the frame is published.
        ``read_ns()`` gives the return time of the socket read that completed the frame (live only)."""

        def on_frame_captured(raw: bytes, ts_recv: int, ts_local: int | None = None) -> int:
            self._frame = raw
            self._ts_recv = ts_recv
            self._ts_read = read_ns() if read_ns is not None else 0
            return on_frame(raw, ts_recv) if ts_local is None else on_frame(raw, ts_recv, ts_local)

        def publish_captured(n_events: int, ts_recv: int, ts_decoded: int) -> None:
            publish(n_events, ts_recv, ts_decoded)
            published = monotonic_ns()  # just after publish_frame's own stamp: its end, within ~0.1 us
            frame = self._frame
            if frame is not None:
                self._frame = None
                self.note(frame, self._ts_recv, self._ts_read, published)

        return on_frame_captured, publish_captured

    def dump(self, log: logging.Logger | None = None) -> Path | None:
        """Write ``wireclock-<pid>.npy`` (int64, ``(n, 4)``: ``COLUMNS``); return its path (None on error)."""
        path = self.directory / f"wireclock-{os.getpid()}.npy"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            traced = self.trace[: self.trace_used()]
            np.save(tmp, np.concatenate((self.pairs[: self.count], traced)))
            os.replace(tmp, path)
        except OSError as exc:
            if log is not None:
                log.error("wire clock: cannot write %s: %s", path, exc)
            return None
        if log is not None:
            log.info(
                "wire clock: %d stamped frames (%d without a stamp) written to %s", self.count + self.trace_used(),
                self.unstamped, path
            )
        return path


def capture_from_env() -> WireClockCapture | None:
    """Return a capture when ``HFT_FEED_WIRE_CLOCK`` names a directory, else None (the default: no capture)."""
    directory = os.environ.get(WIRE_CLOCK_ENV, "")
    return WireClockCapture(directory) if directory else None


def load_wire_clock(directory: str | os.PathLike[str]) -> np.ndarray:
    """Read every ``wireclock-*.npy`` of ``directory`` (one per feed process life) into one ``(n, 4)`` array."""
    parts = [np.load(path) for path in sorted(Path(directory).glob("wireclock-*.npy"))]
    parts = [part.reshape(-1, len(COLUMNS)) for part in parts if part.size]
    return np.concatenate(parts) if parts else np.zeros((0, len(COLUMNS)), np.int64)
