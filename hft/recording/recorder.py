"""``hft record``: write the raw combined-stream frames and REST depth snapshots of a source to a gzip file.

The recording is what a replay needs to rebuild the books exactly as the live feed did: every frame byte for
byte with its receive time (ns since epoch, like hftbacktest's files), and one REST snapshot per symbol taken
*after* that symbol's first depth diff arrived (the Binance procedure buffers diffs from the connect, then
fetches the snapshot), written at the moment it came back.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import websocket

from hft.recording.formats import RecordingWriter
from hft.venue import combined_stream_url, fetch_depth_snapshot

log = logging.getLogger("hft.record")


class _Stream(msgspec.Struct):
    stream: str


_STREAM = msgspec.json.Decoder(_Stream)


@dataclass
class RecordResult:
    """What a recording session wrote."""

    path: str
    frames: int
    snapshots: int
    seconds: float
    reconnects: int


def _fetch_snapshot(rest_base: str, symbol: str, limit: int, writer: RecordingWriter, lock: threading.Lock) -> None:
    try:
        body = fetch_depth_snapshot(rest_base, symbol, limit)
    except OSError as exc:
        log.warning("snapshot %s failed: %s (the replay will wait for a snapshot that never comes)", symbol, exc)
        return
    with lock:
        writer.snapshot(symbol, body)


def record(
    ws_base: str,
    rest_base: str,
    symbols: list[str],
    out_path: str | Path,
    duration_s: float,
    stop: threading.Event | None = None,
    depth_limit: int = 1000,
) -> RecordResult:
    """Record until ``duration_s`` passed or ``stop`` is set; reconnects (and re-snapshots) if the stream breaks."""
    stop = stop or threading.Event()
    url = combined_stream_url(ws_base, symbols)
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + duration_s
    reconnects = 0
    with RecordingWriter(out_path) as writer:
        while time.monotonic() < deadline and not stop.is_set():
            try:
                ws = websocket.create_connection(url, timeout=10, enable_multithread=False)
            except (OSError, websocket.WebSocketException) as exc:
                log.warning("connect to %s failed: %s", url, exc)
                reconnects += 1
                time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
                continue
            ws.settimeout(0.2)
            snapshotted: set[str] = set()
            fetchers: list[threading.Thread] = []
            try:
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        opcode, data = ws.recv_data()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        raise websocket.WebSocketConnectionClosedException("server closed the stream")
                    if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                        continue
                    with lock:
                        writer.frame(data)
                    try:
                        stream = _STREAM.decode(data).stream
                    except msgspec.DecodeError:
                        continue  # recorded as received; the replay's feed counts it as malformed
                    symbol, _, channel = stream.partition("@")
                    symbol = symbol.upper()
                    if channel.startswith("depth") and symbol not in snapshotted and symbol in symbols:
                        snapshotted.add(symbol)
                        thread = threading.Thread(
                            target=_fetch_snapshot, args=(rest_base, symbol, depth_limit, writer, lock), daemon=True
                        )
                        thread.start()
                        fetchers.append(thread)
            except (OSError, websocket.WebSocketException) as exc:
                log.warning("stream broke (%s): reconnecting", exc)
                reconnects += 1
            finally:
                ws.close()
                for thread in fetchers:
                    thread.join(timeout=15)
        frames, snapshots = writer.frames, writer.snapshots
    return RecordResult(str(out_path), frames, snapshots, time.monotonic() - started, reconnects)
