"""The feed's WebSocket reader (``hft.feed.wsreader.WsFrameReader``) over a real socket pair, the server's frames
written by another thread: every complete frame a receive brought is handed on, frames split across reads are
reassembled, the size cap is enforced while receiving (a message over ``max_message_bytes`` is skipped as it
arrives, never held, reported once), and frames no server may send are protocol errors."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import websocket
from websocket._abnf import ABNF

from hft.feed.wsreader import DROPPED, OPCODE_PING, OPCODE_TEXT, WsFrameReader, wait_idle

CAP = 1 << 20


def server_frame(data: bytes, opcode: int = ABNF.OPCODE_TEXT, fin: int = 1) -> bytes:
    return ABNF(fin, 0, 0, 0, opcode, 0, data).format()  # servers do not mask


@pytest.fixture
def pair() -> Iterator[tuple[WsFrameReader, socket.socket]]:
    client, server = socket.socketpair()
    yield WsFrameReader(client, CAP, capacity=4096), server
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


def receive(reader: WsFrameReader, n: int) -> list[tuple[int, bytes]]:
    """``n`` frames as (opcode, payload), waiting as the feed does when it shares its core."""
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        if not reader.receive():
            wait_idle(reader, "block", 0.01)
            continue
        while (frame := reader.next_frame()) is not None:
            got.append(frame)
    return got


def test_many_frames_in_one_read_when_received_then_all_handed_on_from_that_read(pair) -> None:
    reader, server = pair
    frames = [b'{"n":%d}' % k for k in range(50)]
    server.sendall(b"".join(server_frame(f) for f in frames))
    time.sleep(0.05)  # all of them in the kernel before the one receive
    assert reader.receive() > 0
    got = []
    while (frame := reader.next_frame()) is not None:
        got.append(frame)
    assert got == [(OPCODE_TEXT, f) for f in frames] and reader.receives == 1


def test_frames_split_at_every_byte_when_received_then_reassembled(pair) -> None:
    reader, server = pair
    stream = server_frame(b"a" * 300) + server_frame(b"b" * 70_000) + server_frame(b"c")  # 16- and 64-bit lengths
    got: list[tuple[int, bytes]] = []
    for k in range(0, len(stream), 997):  # each piece read on its own, cut through headers and payloads
        server.sendall(stream[k:k + 997])
        while not reader.receive():
            wait_idle(reader, "block", 0.01)
        while (frame := reader.next_frame()) is not None:
            got.append(frame)
    assert [payload for _, payload in got] == [b"a" * 300, b"b" * 70_000, b"c"]


def test_message_over_the_cap_when_received_then_dropped_without_holding_it(pair) -> None:
    reader, server = pair
    huge = server_frame(b'{"stream":"x","data":"' + b"a" * (12 << 20) + b'"}')
    tracemalloc.start()
    writer = send_later(server, [server_frame(b"first"), huge, server_frame(b"after")])
    got = receive(reader, 3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    writer.join()
    assert got == [(OPCODE_TEXT, b"first"), (DROPPED, b""), (OPCODE_TEXT, b"after")]
    assert peak < 2 * CAP, f"peak {peak} bytes while a 12 MiB frame went by"


def test_message_at_the_cap_when_received_then_intact_in_a_grown_buffer(pair) -> None:
    reader, server = pair
    payload = b"b" * CAP
    writer = send_later(server, [server_frame(payload), server_frame(b"next")])
    got = receive(reader, 2)
    writer.join()
    assert got == [(OPCODE_TEXT, payload), (OPCODE_TEXT, b"next")]


def test_fragments_when_their_sum_is_over_the_cap_then_the_whole_message_dropped_once(pair) -> None:
    reader, server = pair
    part = b"c" * (600 << 10)
    frames = [
        server_frame(part, ABNF.OPCODE_TEXT, 0), server_frame(part, ABNF.OPCODE_CONT, 0),  # 1.2 MiB: over
        server_frame(b"x" * 10, ABNF.OPCODE_CONT, 1),
        server_frame(b"d" * 100, ABNF.OPCODE_TEXT, 0), server_frame(b"e" * 100, ABNF.OPCODE_CONT, 1),  # fine
    ]
    writer = send_later(server, frames)
    got = receive(reader, 2)
    writer.join()
    assert got == [(DROPPED, b""), (OPCODE_TEXT, b"d" * 100 + b"e" * 100)]


def test_frame_trickling_in_over_the_cap_when_received_then_the_skip_resumes(pair) -> None:
    reader, server = pair
    huge = server_frame(b"f" * (3 << 20))
    pieces = [huge[k:k + 300_000] for k in range(0, len(huge), 300_000)]
    writer = send_later(server, [*pieces, server_frame(b"next")], pause_s=0.03)  # the reader waits 10 ms at a time
    got = receive(reader, 2)
    writer.join()
    assert got == [(DROPPED, b""), (OPCODE_TEXT, b"next")]


def test_ping_between_data_when_received_then_handed_on_between_them(pair) -> None:
    reader, server = pair
    writer = send_later(server, [server_frame(b"x" * (2 << 20)), server_frame(b"hi", ABNF.OPCODE_PING),
                                 server_frame(b"ok")])
    got = receive(reader, 3)
    writer.join()
    assert got == [(DROPPED, b""), (OPCODE_PING, b"hi"), (OPCODE_TEXT, b"ok")]


@pytest.mark.parametrize("frame, why", [
    (server_frame(b"p" * 200, ABNF.OPCODE_PING), "control frame of 200 bytes"),
    (server_frame(b"p", ABNF.OPCODE_PING, fin=0), "fragmented"),
    (ABNF(1, 1, 0, 0, ABNF.OPCODE_TEXT, 0, b"z").format(), "reserved bits"),
    (ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 1, b"z").format(), "a mask"),
    (bytes((0x83, 1)) + b"z", "unknown opcode"),
    (server_frame(b"z", ABNF.OPCODE_CONT), "continuation frame outside"),
])
def test_frame_no_server_may_send_when_received_then_protocol_error(pair, frame: bytes, why: str) -> None:
    reader, server = pair
    server.sendall(frame)
    with pytest.raises(websocket.WebSocketProtocolException, match=why):
        receive(reader, 1)


def test_server_closing_the_socket_when_received_then_connection_closed(pair) -> None:
    reader, server = pair
    server.shutdown(socket.SHUT_WR)
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        receive(reader, 1)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A throwaway self-signed certificate (the openssl binary comes with the PostgreSQL server CI installs)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the TLS test")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    return str(key), str(cert)


def test_frames_over_tls_when_records_split_them_then_every_frame_read_without_stalling(tls_files) -> None:
    # wss:// as Binance serves it: a read returns at most one TLS record (16 KiB), and bytes OpenSSL already
    # decrypted are invisible to poll(); the reader must take them (SSLSocket.pending) instead of waiting
    key, cert = tls_files
    listener = socket.create_server(("127.0.0.1", 0))
    frames = [b"a" * 10, b"b" * 70_000, *(b'{"n":%d}' % k for k in range(200)), b"c" * 40_000]
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)

    def serve() -> None:
        conn, _ = listener.accept()
        with server_side.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # the client reads from here on
            stream = b"".join(server_frame(f) for f in frames)
            cut = len(stream) // 2  # inside a frame: the reader meets an empty socket mid-frame (SSL want-read)
            tls.sendall(stream[:cut])  # many records in one burst
            time.sleep(0.2)
            tls.sendall(stream[cut:])
            tls.settimeout(5)
            with contextlib.suppress(OSError):
                tls.recv(1)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_side = ssl.create_default_context(cafile=cert)
    client_side.check_hostname = False
    with client_side.wrap_socket(socket.create_connection(listener.getsockname()), server_hostname="localhost") as tls:
        tls.sendall(b"!")
        reader = WsFrameReader(tls, CAP, capacity=4096)
        started = time.monotonic()
        got = receive(reader, len(frames))
        elapsed = time.monotonic() - started
    listener.close()
    thread.join(5)
    assert [payload for _, payload in got] == frames
    assert elapsed < 1.0, f"{elapsed:.2f} s: the reader waited on bytes it already held"
    assert reader.receives >= 4  # the burst came in many records and reads, across an empty socket
