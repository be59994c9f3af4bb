"""The feed's hot loop over one socket read, in jitted code: every complete text frame in the receive buffer is
decoded (the engine's fast path, ``hft.feed.fastpath.frame_kernel``) and published (``hft.feed.publish``) before
control returns to Python.

Why: called from Python, each frame cost three interpreter-to-numba crossings (parse the WebSocket header,
decode, publish: ~4.5 us together, most of it argument unboxing), and the simulator, like a venue under load,
delivers frames in bursts (~28 per read at 10k events/s), so the last frame of a read waited for all the
Python work of the ones before it. One call per read leaves only the decoding.

Anything the kernel does not take stops the batch at that frame, untouched, and the Python reader
(``hft.feed.wsreader.WsFrameReader``) and the engine's reference path handle it: a control frame, a fragment,
a frame over the size cap, a masked or reserved-bit frame, non-ASCII text (UTF-8 is validated in Python), a
frame the fast path declines.

The cursor is an int64 array of ``IO_WORDS`` words, shared with the caller: the unparsed span of the receive
buffer in, how far the kernel got out, plus the read's stamp and the constants the kernel needs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hft.feed.fastpath import frame_kernel
from hft.feed.publish import FeedOutlet, publish_to
from hft.feed.wireclock import send_stamp_at
from shm_layout.atomics import monotonic_ns

IO_START = 0  # in/out: first unparsed byte of the buffer
IO_END = 1  # in: one past the last received byte
IO_READ_NS = 2  # in: when the receive that brought the bytes returned (CLOCK_MONOTONIC)
IO_WALL_OFFSET = 3  # in: wall clock - monotonic clock for this connection (bookTicker stamps)
IO_MAX_MESSAGE = 4  # in: the size cap (a longer frame is left to the Python reader, which skips it)
IO_TRACED = 5  # in/out: rows of the trace used (the wire clock, when the trace has rows)
IO_WORDS = 6

_TEXT_FINAL = 0x81  # FIN and the text opcode, no reserved bit


def new_cursor(wall_offset_ns: int, max_message_bytes: int) -> np.ndarray:
    cursor = np.zeros(IO_WORDS, np.int64)
    cursor[IO_WALL_OFFSET] = wall_offset_ns
    cursor[IO_MAX_MESSAGE] = max_message_bytes
    return cursor


@njit(cache=True, nogil=True)
def _frame_span(buf: np.ndarray, start: int, end: int, max_message: int) -> tuple[int, int]:
    """``(payload start, payload end)`` of the complete final unmasked text frame at ``start`` within the cap,
    or ``(-1, -1)`` when the frame is anything else or not complete yet."""
    available = end - start
    if available < 2 or buf[start] != _TEXT_FINAL:
        return -1, -1
    length = np.int64(buf[start + 1])
    if length & 0x80:
        return -1, -1  # masked: the Python reader's protocol error
    head = 2
    if length == 126:
        if available < 4:
            return -1, -1
        length = (np.int64(buf[start + 2]) << 8) | buf[start + 3]
        head = 4
    elif length == 127:
        if available < 10:
            return -1, -1
        length = 0
        for k in range(start + 2, start + 10):
            length = (length << 8) | np.int64(buf[k])
        head = 10
        if length < 0:
            return -1, -1
    if length > max_message or available < head + length:
        return -1, -1
    return start + head, start + head + length


@njit(cache=True, nogil=True)
def drain_frames(arena: np.ndarray, outlet: FeedOutlet, buf: np.ndarray, cursor: np.ndarray,
                 trace: np.ndarray) -> int:
    """Decode and publish the complete text frames from ``cursor[IO_START]``; return how many.

    Stops at the first frame it does not take (see the module docstring) with ``cursor[IO_START]`` on it.
    ``trace`` (rows of ``hft.feed.wireclock.COLUMNS``; zero rows: off) gets one row per stamped frame."""
    start, end = cursor[IO_START], cursor[IO_END]
    read_ns, wall_offset, max_message = cursor[IO_READ_NS], cursor[IO_WALL_OFFSET], cursor[IO_MAX_MESSAGE]
    handled = 0
    while True:
        p, q = _frame_span(buf, start, end, max_message)
        if p < 0:
            break
        ascii_only = True
        for k in range(p, q):
            if buf[k] >= 0x80:
                ascii_only = False
                break
        if not ascii_only:
            break
        ts_recv = monotonic_ns()
        n = frame_kernel(arena, buf[p:q], ts_recv, ts_recv + wall_offset)
        if n < 0:
            break  # declined, nothing changed: the reference path takes it
        publish_to(outlet, n, ts_recv, monotonic_ns())
        if trace.shape[0] > 0:
            row = cursor[IO_TRACED]
            if row < trace.shape[0]:
                sent = send_stamp_at(buf, p, q)
                if sent > 0:
                    trace[row, 0] = ts_recv
                    trace[row, 1] = sent
                    trace[row, 2] = read_ns
                    trace[row, 3] = monotonic_ns()
                    cursor[IO_TRACED] = row + 1
        start = q
        handled += 1
    cursor[IO_START] = start
    return handled
