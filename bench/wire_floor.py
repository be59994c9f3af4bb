"""The floor under the feed's wire latency: a bench-only reader of the simulator's stamped frames over a plain
socket, no WebSocket client library (a hand-made upgrade), one receive per readable event (issue 14).

It connects to the same simulator as the feed (a second subscriber of the same streams: the simulator writes each
batch to each connection and stamps each write on its own, ``hft.sim.server``), is pinned like the feed and waits
like it (``block``: ``poll`` then one ``recv_into``; ``spin``: ``recv_into`` on a non-blocking socket in a loop),
and notes for every stamped frame the simulator's send stamp and when the receive that completed the frame
returned. send -> read is what the machine costs: the simulator's write, loopback and the reader's wake-up.
The frames are split by the feed's own reader (``hft.feed.wsreader``) after the read's stamp, so parsing is not in
the figure.

Usage (``bench/tick_to_trade.py`` starts it)::

    python bench/wire_floor.py --url 'ws://127.0.0.1:PORT/stream?streams=...' --core 0 --mode block \
        --seconds 12 --out floor.npy

Writes an int64 array ``(n, 2)``: ``send_ns, read_ns`` (CLOCK_MONOTONIC), in arrival order.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
from pathlib import Path
from time import monotonic_ns
from urllib.parse import urlsplit

import numpy as np
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hft.feed.wireclock import send_stamp
from hft.feed.wsreader import OPCODE_PING, OPCODE_TEXT, WsFrameReader, wait_idle

MAX_MESSAGE_BYTES = 1 << 24


def connect(url: str, timeout_s: float = 10.0) -> socket.socket:
    """Open the socket and do the HTTP upgrade by hand. The response is read a byte at a time, so every frame byte
    is left in the socket for the frame reader."""
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
    while not response.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError("the simulator closed the connection during the upgrade")
        response += byte
    if not response.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"upgrade refused: {response.splitlines()[0]!r}")
    return sock


def read_frames(sock: socket.socket, mode: str, seconds: float) -> np.ndarray:
    """Read for ``seconds``; return ``(send_ns, read_ns)`` of every stamped text frame."""
    reader = WsFrameReader(sock, MAX_MESSAGE_BYTES)
    out = np.zeros((1 << 16, 2), np.int64)
    count = 0
    deadline = monotonic_ns() + int(seconds * 1e9)
    while True:
        try:
            got = reader.receive()
        except websocket.WebSocketConnectionClosedException:
            break
        if not got:
            if monotonic_ns() > deadline:
                break
            wait_idle(reader, mode, 0.1)  # block: poll; spin: straight back to the next receive
            continue
        read_ns = reader.read_ns  # the figure's end: stamped as the receive returned, before any parsing
        while (frame := reader.next_frame()) is not None:
            opcode, payload = frame
            if opcode == OPCODE_PING:  # answered (masked, as a client must; a zero mask leaves the payload as is)
                sock.setblocking(True)
                sock.sendall(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
                sock.setblocking(False)
            elif opcode == OPCODE_TEXT and (sent := send_stamp(payload)) > 0:
                if count == len(out):
                    out = np.concatenate((out, np.zeros_like(out)))
                out[count] = (sent, read_ns)
                count += 1
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
    sock = connect(args.url)
    try:
        pairs = read_frames(sock, args.mode, args.seconds)
    finally:
        sock.close()
    np.save(args.out, pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
