"""A server's WebSocket frames read straight from the socket: one receive takes every byte the kernel holds, and
every complete frame in it is handed on before the next wait.

Why not websocket-client's own reader: ``recv_data`` reads a frame with separate receive calls (two header bytes,
the extended length, the payload), each behind a ``poll`` when the socket has a timeout, and builds a few Python
objects per frame; on a shared core every one of those calls is a chance to be descheduled, and at 10k events/s
the feed fell behind the wire by most of a millisecond (issue 14, ``bench/RESULTS.md``). websocket-client keeps
doing what it does well, the connect, TLS, the HTTP upgrade and sending (pong, close); once the handshake is done
this reader owns the socket's receive side (websocket-client's handshake reads the response byte by byte, so no
frame byte is left in its buffers).

Server frames (RFC 6455 5.2): FIN, RSV1-3 (0: no extension was negotiated), the opcode; MASK must be 0 from a
server; a 7-bit length, or 126 and 16 bits, or 127 and 64 bits. Control frames (close, ping, pong) carry at most
125 bytes and are never fragmented. Anything else is a protocol error: the connection is dropped and reconnected.

The size cap is enforced on each frame's header, while receiving: a data message longer than
``max_message_bytes`` (its fragments summed) is skipped as its bytes arrive, never held, and reported once as
``DROPPED``; the stream goes on. A legitimate frame larger than the buffer grows it, never beyond the cap.

Single reader: the feed's receive loop. Not thread-safe.
"""

from __future__ import annotations

import os
import select
import ssl
from time import monotonic_ns  # CLOCK_MONOTONIC, as shm_layout.atomics.monotonic_ns, without a call into numba

import numpy as np
import websocket

OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
DATA_OPCODES = frozenset((OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY))
CONTROL_OPCODES = frozenset((OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG))
MESSAGE_OPCODES = frozenset((OPCODE_TEXT, OPCODE_BINARY))  # what a complete data message reports
DROPPED = -1  # the opcode next_frame reports for a data message dropped over the size cap
MAX_CONTROL_PAYLOAD = 125
INITIAL_CAPACITY = 1 << 18  # bytes: several hundred depth frames of a busy stream
_NOT_READY = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class WsFrameReader:
    """Frames of one connection's socket (set non-blocking by the caller or by :meth:`receive`'s first call).

    ``receive()`` reads once; ``next_frame()`` returns ``(opcode, payload)`` for each complete frame, then None.
    ``read_ns`` is the CLOCK_MONOTONIC time the last receive returned bytes: when the frames it completed became
    this process's (the wire clock's "read" stamp; also the watchdog's proof of life, even mid-frame).
    """

    def __init__(self, sock, max_message_bytes: int, capacity: int = INITIAL_CAPACITY) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray(capacity)
        self._view = memoryview(self._buf)
        self.array = np.frombuffer(self._buf, np.uint8)  # the same bytes, for jitted readers (hft.feed.drain)
        self._start = 0  # first byte not yet parsed
        self._end = 0  # one past the last byte received
        self._need = 0  # bytes the frame at _start needs in the buffer (0: unknown yet)
        self._discard_left = 0  # payload bytes of a frame over the cap still to skip
        self._dropping = False  # the data message in progress went over the cap: its later fragments go too
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_bytes = 0
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._tls = isinstance(sock, ssl.SSLSocket)
        self.read_ns = monotonic_ns()
        self.receives = 0  # receive calls that returned bytes

    def wait(self, timeout_s: float) -> bool:
        """Block until the socket is readable or ``timeout_s`` passed; return whether it is readable."""
        if self._tls and self.sock.pending():  # TLS may hold decrypted bytes the kernel no longer shows
            return True
        return bool(self._poller.poll(timeout_s * 1000.0))

    def receive(self) -> int:
        """Read what the socket holds, in one call; return the byte count (0: nothing was waiting).

        Raises ``WebSocketConnectionClosedException`` when the server closed the connection."""
        if self._start == self._end:
            self._start = self._end = 0  # all parsed: start over at the front, no copy
        elif len(self._buf) - self._end < max(self._need - (self._end - self._start), 4096):
            self._make_room()
        try:
            n = self.sock.recv_into(self._view[self._end :])
        except _NOT_READY:
            return 0
        if n == 0:
            raise websocket.WebSocketConnectionClosedException("the server closed the connection")
        self.read_ns = monotonic_ns()
        self.receives += 1
        self._end += n
        return n

    def _make_room(self) -> None:
        """Move the unparsed bytes to the front; grow the buffer if the frame being received needs it."""
        pending = self._end - self._start
        capacity = len(self._buf)
        if self._need > capacity or pending > capacity - 4096:
            capacity = max(capacity * 2, self._need + 4096)
            buf = bytearray(capacity)
            buf[:pending] = self._view[self._start : self._end]
            self._view.release()
            self._buf, self._view = buf, memoryview(buf)
            self.array = np.frombuffer(buf, np.uint8)
        else:
            self._buf[:pending] = self._view[self._start : self._end]
        self._start, self._end = 0, pending

    @property
    def span(self) -> tuple[int, int]:
        """``(start, end)``: the received bytes not parsed yet are ``array[start:end]``."""
        return self._start, self._end

    def consumed(self, start: int) -> None:
        """A jitted reader (``hft.feed.drain``) parsed the buffer up to ``start``."""
        self._start = start

    def between_messages(self) -> bool:
        """Whether the next byte starts a frame of a new message (nothing skipped or reassembled in between):
        only then may another reader take frames from the buffer."""
        return not self._discard_left and not self._dropping and not self._fragments

    def next_frame(self) -> tuple[int, bytes] | None:
        """Return the next complete frame's ``(opcode, payload)`` (a fragmented message whole, under the opcode
        of its first frame; ``(DROPPED, b"")`` once per message over the cap), or None until more bytes arrive.

        Raises ``WebSocketProtocolException`` on a frame no server may send."""
        while True:
            start, end = self._start, self._end
            if self._discard_left:
                skip = min(self._discard_left, end - start)
                self._start = start = start + skip
                self._discard_left -= skip
                if self._discard_left:
                    return None
            available = end - start
            if available < 2:
                return None
            buf = self._buf
            b0, b1 = buf[start], buf[start + 1]
            if b0 & 0x70 or b1 & 0x80:
                raise websocket.WebSocketProtocolException(
                    "a server frame with reserved bits set or a mask (RFC 6455 5.2): no extension was negotiated")
            length, head = b1 & 0x7F, 2
            if length == 126:
                if available < 4:
                    return None
                length, head = (buf[start + 2] << 8) | buf[start + 3], 4
            elif length == 127:
                if available < 10:
                    return None
                length, head = int.from_bytes(self._view[start + 2 : start + 10], "big"), 10
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode in DATA_OPCODES:
                continued = bool(self._fragments) or self._dropping
                if (opcode == OPCODE_CONT) != continued:
                    raise websocket.WebSocketProtocolException(
                        "a continuation frame outside a fragmented message" if opcode == OPCODE_CONT
                        else "a new message inside a fragmented one")
                if self._dropping or self._fragment_bytes + length > self.max_message_bytes:
                    # over the cap: skip the payload as it arrives; report the message once, at its header
                    self._start, self._discard_left, self._need = start + head, length, 0
                    first = not self._dropping
                    self._dropping = not fin
                    self._fragments, self._fragment_bytes = [], 0
                    if first:
                        return DROPPED, b""
                    continue
            elif opcode in CONTROL_OPCODES:
                if length > MAX_CONTROL_PAYLOAD or not fin:
                    raise websocket.WebSocketProtocolException(
                        f"a control frame of {length} bytes{'' if fin else ', fragmented'} (RFC 6455 5.5)")
            else:
                raise websocket.WebSocketProtocolException(f"unknown opcode {opcode:#x}")
            if available < head + length:
                self._need = head + length
                return None
            self._need = 0
            payload = bytes(self._view[start + head : start + head + length])
            self._start = start + head + length
            if fin and opcode != OPCODE_CONT:
                return opcode, payload  # the usual case: one frame, one message
            if opcode >= OPCODE_CLOSE:
                return opcode, payload  # a control frame between fragments
            if opcode != OPCODE_CONT:
                self._fragment_opcode = opcode
            self._fragments.append(payload)
            self._fragment_bytes += length
            if fin:
                message = b"".join(self._fragments)
                self._fragments, self._fragment_bytes = [], 0
                return self._fragment_opcode, message


def wait_idle(reader: WsFrameReader, mode: str, timeout_s: float) -> bool:
    """Wait for the next bytes the way the placement asks; return True when bytes are known to be waiting.

    ``block`` sleeps in ``poll`` up to ``timeout_s`` (a feed that shares its core), ``yield`` gives the core away
    once, ``spin`` returns at once (busy polling on a core of its own: the next ``receive`` is the poll)."""
    if mode == "block":
        return reader.wait(timeout_s)
    if mode == "yield":
        os.sched_yield()
    return False
