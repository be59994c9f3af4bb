"""What a correct Binance client does, reduced to test helpers: HTTP calls, strict frame checks, book sync.

Shared by the fault tests; spawned children import ``raw_reader`` from here, so imports stay light.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import websocket

from hft.sim.localbook import LocalBook

DECIMAL = re.compile(r"^\d+\.\d+$")
MAX_FRAME = 1 << 20  # a careful client refuses frames above 1 MiB (websockets' default max_size)


def http(url: str, body: dict[str, Any] | bytes | None = None, method: str | None = None) -> tuple[int, Any]:
    """Call ``url`` (POST when ``body`` is given) and return ``(status, decoded JSON body)``."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def fault(http_url: str, **fields: Any) -> dict[str, Any]:
    """Inject a fault through ``POST /sim/fault`` and return the ack, failing the test on anything but 200."""
    status, ack = http(f"{http_url}/sim/fault", fields)
    assert status == 200, ack
    assert ack["ok"] is True
    return ack


def _no_constants(name: str) -> Any:
    raise ValueError(f"bare {name} is not JSON")


def malformed_reason(message: str | bytes, symbols: set[str]) -> str | None:
    """Return why a frame is not a valid Binance combined-stream message, or ``None`` when it is valid.

    The checks a careful feed makes before touching its book: size, JSON, known symbol and stream, integer ids,
    prices and sizes as non-negative decimal strings.
    """
    if len(message) > MAX_FRAME:
        return "too large"
    try:
        msg = json.loads(message, parse_constant=_no_constants)
    except ValueError:
        return "invalid JSON"
    except RecursionError:
        return "nested too deep"
    if not isinstance(msg, dict) or not isinstance(msg.get("data"), dict) or not isinstance(msg.get("stream"), str):
        return "not a combined-stream message"
    data = msg["data"]
    if data.get("s") not in symbols or msg["stream"].split("@", 1)[0] != str(data.get("s")).lower():
        return "unknown symbol"
    if data.get("e") == "depthUpdate":
        if not isinstance(data.get("U"), int) or not isinstance(data.get("u"), int):
            return "bad update ids"
        levels = [*data.get("b", []), *data.get("a", [])]
    elif data.get("e") == "trade":
        levels = [[data.get("p"), data.get("q")]]
    else:
        levels = [[data.get("b"), data.get("B")], [data.get("a"), data.get("A")]]
    for level in levels:
        if not isinstance(level, list) or len(level) != 2:
            return "bad level"
        if not all(isinstance(x, str) and DECIMAL.match(x) for x in level):
            return "bad decimal"
    return None


def connect(ws_url: str, streams: str) -> websocket.WebSocket:
    """Open a combined-stream connection (``/stream?streams=...``).

    UTF-8 validation is skipped because websocket-client does it in pure Python (~0.2 s per MiB), which would
    dominate the huge-frame tests; the server's frames are ASCII anyway.
    """
    return websocket.create_connection(f"{ws_url}?streams={streams}", timeout=5, skip_utf8_validation=True)


def recv_json(ws: websocket.WebSocket) -> dict[str, Any]:
    message = ws.recv()
    assert isinstance(message, str)  # Binance sends text frames
    return json.loads(message)


def next_depth(ws: websocket.WebSocket, symbol: str) -> dict[str, Any]:
    """Return the ``data`` of the next depthUpdate of ``symbol``, skipping every other message."""
    while True:
        msg = recv_json(ws)
        if msg["data"].get("e") == "depthUpdate" and msg["data"]["s"] == symbol:
            return msg["data"]


def buffer_depth(ws: websocket.WebSocket, book: LocalBook, symbol: str, seconds: float) -> None:
    """Feed ``book`` every depthUpdate of ``symbol`` for ``seconds`` (it buffers them until its snapshot)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        book.on_diff(next_depth(ws, symbol))


def sync(http_url: str, ws: websocket.WebSocket, book: LocalBook, symbol: str, buffer_s: float = 0.1) -> None:
    """Binance procedure: buffer diffs, fetch the snapshot, apply diffs until at least two are applied."""
    buffer_depth(ws, book, symbol, buffer_s)
    status, snapshot = http(f"{http_url}/api/v3/depth?symbol={symbol}&limit=1000")
    assert status == 200
    book.on_snapshot(snapshot)
    while book.applied < 2:
        book.on_diff(next_depth(ws, symbol))


def read_until_closed(ws: websocket.WebSocket, timeout: float = 3.0) -> tuple[str, int | None]:
    """Read until the connection ends: ``("close", code)`` for a close frame, ``("lost", None)`` without one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return "lost", None
        if opcode == websocket.ABNF.OPCODE_CLOSE:  # websocket-client has answered it; release the socket too
            ws.shutdown()
            return "close", int.from_bytes(frame.data[:2], "big")
    raise AssertionError(f"connection still open after {timeout} s")


def raw_reader(port: int, path: str, seconds: float, queue: Any) -> None:
    """Spawned child: open ``path`` with a bare socket, count the frames of ``seconds`` and report the rate.

    Parses only the frame headers (the server never masks), so the reader is not what limits the rate.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    data = bytearray(rest)
    frames = 0
    start = time.monotonic()
    end = start + seconds
    now = start
    while now < end:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        now = time.monotonic()
        data += chunk
        pos, size = 0, len(data)
        while size - pos >= 2:
            length, header = data[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, header = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, header = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if size - pos < header + length:
                break
            pos += header + length
            frames += 1
        del data[:pos]
    sock.close()
    queue.put({"frames": frames, "seconds": now - start})
