"""The floor under the feed's wire latency: a bench-only reader of the simulator's stamped frames over a plain
socket, no WebSocket library, one receive per readable event (issue 14).

It connects to the same simulator as the feed (a second subscriber of the same streams: the simulator writes each
batch to each connection and stamps each write on its own, ``hft.sim.server``), is pinned like the feed and waits
like it (``block``: ``poll`` then one ``recv_into``; ``spin``: ``recv_into`` on a non-blocking socket in a loop),
and notes for every stamped frame the simulator's send stamp and when the receive that completed the frame
returned. send -> read is what the machine costs: the simulator's write, loopback and the reader's wake-up.
Parsing happens after the read's stamp, so it is not in the figure.

Usage (``bench/tick_to_trade.py`` starts it)::

    python bench/wire_floor.py --url 'ws://127.0.0.1:PORT/stream?streams=...' --core 0 --mode block \
        --seconds 12 --out floor.npy

Writes an int64 array ``(n, 2)``: ``send_ns, read_ns`` (CLOCK_MONOTONIC), in arrival order.
"""

from __future__ import annotations

import argparse
import base64
import os
import select
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hft.feed.wireclock import send_stamp

STAMP_TAIL = 64  # the send stamp ends within the last bytes of a frame (hft.feed.wireclock)
BUFFER_BYTES = 1 << 20


def connect(url: str, timeout_s: float = 10.0) -> tuple[socket.socket, bytes]:
    """Open the socket and do the HTTP upgrade by hand; return the socket and any frame bytes read with the
    response."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the simulator closed the connection during the upgrade")
        response += chunk
    head, _, rest = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"upgrade refused: {head.splitlines()[0]!r}")
    return sock, rest


def read_frames(sock: socket.socket, first: bytes, mode: str, seconds: float) -> np.ndarray:
    """Read for ``seconds``; return ``(send_ns, read_ns)`` of every stamped text frame."""
    sock.setblocking(False)
    buf = bytearray(BUFFER_BYTES)
    view = memoryview(buf)
    buf[: len(first)] = first
    start, end = 0, len(first)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    out = np.zeros((1 << 16, 2), np.int64)
    count = 0
    read_ns = time.monotonic_ns()
    deadline = read_ns + int(seconds * 1e9)
    recv_into, monotonic_ns = sock.recv_into, time.monotonic_ns
    while True:
        if mode == "block" and not poller.poll(100):
            if monotonic_ns() > deadline:
                break
            continue
        try:
            n = recv_into(view[end:])
        except BlockingIOError:
            if monotonic_ns() > deadline:
                break
            continue
        read_ns = monotonic_ns()  # the figure's end: before any parsing
        if n == 0:
            break
        end += n
        while end - start >= 2:  # every complete frame of the buffer
            length, head = buf[start + 1] & 0x7F, 2
            if length == 126:
                if end - start < 4:
                    break
                length, head = int.from_bytes(view[start + 2 : start + 4], "big"), 4
            elif length == 127:
                if end - start < 10:
                    break
                length, head = int.from_bytes(view[start + 2 : start + 10], "big"), 10
            if end - start < head + length:
                break
            stop = start + head + length
            opcode = buf[start] & 0x0F
            if opcode == 0x9:  # a ping: answered (masked, as a client must; a zero mask leaves the payload as is)
                payload = bytes(view[start + head : stop])
                sock.setblocking(True)
                sock.sendall(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
                sock.setblocking(False)
            elif opcode == 0x1:
                sent = send_stamp(bytes(view[max(start + head, stop - STAMP_TAIL) : stop]))
                if sent > 0:
                    if count == len(out):
                        out = np.concatenate((out, np.zeros_like(out)))
                    out[count] = (sent, read_ns)
                    count += 1
            start = stop
        if start == end:
            start = end = 0
        elif end > len(buf) - 65536:  # keep room: move the partial frame to the front
            buf[: end - start] = view[start:end]
            start, end = 0, end - start
        if read_ns > deadline:
            break
    return out[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the feed's stream URL (ws://host:port/stream?streams=...)")
    parser.add_argument("--core", type=int, default=-1, help="CPU core to pin to (-1: no pinning)")
    parser.add_argument("--mode", choices=("block", "spin"), default="block")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    sock, first = connect(args.url)
    try:
        pairs = read_frames(sock, first, args.mode, args.seconds)
    finally:
        sock.close()
    np.save(args.out, pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
