"""The size cap is enforced while a frame is received, not after: a message over ``max_message_bytes`` is read
and thrown away in pieces (never held whole), counted, and the stream goes on. Over a real socket pair, with
the server's frames written by another thread, slowly when a test needs the reader to time out mid-frame."""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import websocket
from websocket._abnf import ABNF

from hft.feed.live import CappedWebSocket

CAP = 1 << 20


def server_frame(data: bytes, opcode: int = ABNF.OPCODE_TEXT, fin: int = 1) -> bytes:
    return ABNF(fin, 0, 0, 0, opcode, 0, data).format()  # servers do not mask


@pytest.fixture
def pair() -> Iterator[tuple[CappedWebSocket, socket.socket]]:
    client, server = socket.socketpair()
    ws = CappedWebSocket(CAP, enable_multithread=False, skip_utf8_validation=True)
    ws.sock, ws.connected = client, True
    yield ws, server
    server.close()
    client.close()


def send_later(sock: socket.socket, chunks: list[bytes], pause_s: float = 0.0) -> threading.Thread:
    def write() -> None:
        for chunk in chunks:
            sock.sendall(chunk)
            if pause_s:
                time.sleep(pause_s)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def receive(ws: CappedWebSocket, n: int, timeout_s: float = 0.05) -> list[tuple[int, bytes, int]]:
    """``n`` messages as (opcode, data, messages dropped so far), retrying receive timeouts as the feed does."""
    ws.settimeout(timeout_s)
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketTimeoutException:
            continue
        got.append((opcode, data, ws.frame_buffer.dropped_messages))
    return got


def test_message_over_the_cap_when_received_then_dropped_without_holding_it(pair) -> None:
    ws, server = pair
    huge = server_frame(b'{"stream":"x","data":"' + b"a" * (12 << 20) + b'"}')
    tracemalloc.start()
    writer = send_later(server, [server_frame(b"first"), huge, server_frame(b"after")])
    got = receive(ws, 3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    writer.join()
    assert [(data, dropped) for _, data, dropped in got] == [(b"first", 0), (b"", 1), (b"after", 1)]
    assert peak < 2 * CAP, f"peak {peak} bytes while a 12 MiB frame went by"


def test_message_at_the_cap_when_received_then_intact(pair) -> None:
    ws, server = pair
    payload = b"b" * CAP
    writer = send_later(server, [server_frame(payload)])
    got = receive(ws, 1)
    writer.join()
    assert got[0][1] == payload and got[0][2] == 0


def test_fragments_when_their_sum_is_over_the_cap_then_the_whole_message_dropped(pair) -> None:
    ws, server = pair
    part = b"c" * (600 << 10)
    frames = [
        server_frame(part, ABNF.OPCODE_TEXT, 0), server_frame(part, ABNF.OPCODE_CONT, 0),  # 1.2 MiB: over
        server_frame(b"x" * 10, ABNF.OPCODE_CONT, 1),
        server_frame(b"d" * 100, ABNF.OPCODE_TEXT, 0), server_frame(b"e" * 100, ABNF.OPCODE_CONT, 1),  # fine
    ]
    writer = send_later(server, frames)
    got = receive(ws, 2)
    writer.join()
    assert got[0][2] == 1  # the first message was dropped (what recv_data returned is partial: thrown away)
    assert got[1][1] == b"d" * 100 + b"e" * 100 and got[1][2] == 1


def test_frame_trickling_in_when_reads_time_out_mid_frame_then_the_skip_resumes(pair) -> None:
    ws, server = pair
    huge = server_frame(b"f" * (3 << 20))
    pieces = [huge[k:k + 300_000] for k in range(0, len(huge), 300_000)]
    writer = send_later(server, [*pieces, server_frame(b"next")], pause_s=0.03)  # the reader times out at 10 ms
    got = receive(ws, 2, timeout_s=0.01)
    writer.join()
    assert [(data, dropped) for _, data, dropped in got] == [(b"", 1), (b"next", 1)]


def test_ping_between_data_when_received_then_answered_and_the_stream_goes_on(pair) -> None:
    ws, server = pair
    writer = send_later(server, [server_frame(b"x" * (2 << 20)), server_frame(b"hi", ABNF.OPCODE_PING),
                                 server_frame(b"ok")])
    got = receive(ws, 2)
    writer.join()
    assert [data for _, data, _ in got] == [b"", b"ok"]
    server.settimeout(5)
    pong = server.recv(64)
    assert pong[0] & 0x0F == ABNF.OPCODE_PONG


def test_control_frame_longer_than_rfc_6455_allows_when_received_then_protocol_error(pair) -> None:
    ws, server = pair
    writer = send_later(server, [server_frame(b"p" * 100_000, ABNF.OPCODE_PING)])
    with pytest.raises(websocket.WebSocketProtocolException):
        receive(ws, 1)
    writer.join(timeout=1)
