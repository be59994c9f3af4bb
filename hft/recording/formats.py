"""Recorded market data: what ``hft record`` writes and what a replay reads.

Three formats are read, one is written. Every reader yields ``Recorded(ts_ns, kind, symbol, payload)`` in file
order, with the payload as the exact bytes that came off the wire (a replay must decode what live decoded):

* **lines** (``hft record`` output and hftbacktest's ``examples/spot`` files): gzip or plain text, one record
  per line, ``<local receive time, ns since epoch> <raw JSON>``. The JSON is a combined-stream frame
  ``{"stream": ..., "data": ...}``, a bare REST depth snapshot ``{"lastUpdateId": ...}`` (hftbacktest: the
  file holds one symbol, so the snapshot is that symbol's), or ours ``{"rest_depth": "BTCUSDT", "data": {...}}``
  (a file may hold many symbols).
* **cryptofeed** (bmoscon/cryptofeed sample_data): ``<name>.ws.<n>.<m>`` whose first line is
  ``<wss url> <-> <connect time>`` followed by ``<epoch seconds>: <raw frame>``, plus sibling
  ``<name>.http.<n>.<m>`` files with ``<url with symbol=X> -> <epoch seconds>: <raw snapshot>``; merged by time.

Timestamps are the recorder's receive clock: a replay uses their differences for pacing, never their values.
"""

from __future__ import annotations

import gzip
import heapq
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec

FRAME = 1  # a combined-stream WebSocket frame
SNAPSHOT = 2  # a REST depth snapshot body


class Recorded(NamedTuple):
    """One recorded message: receive time (ns), FRAME or SNAPSHOT, symbol (snapshots), raw payload bytes."""

    ts_ns: int
    kind: int
    symbol: str | None
    payload: bytes


class RecordingError(ValueError):
    """The file is not a recording this module can read; the message says where and why."""


class _OurSnapshot(msgspec.Struct):
    rest_depth: str
    data: msgspec.Raw


class _StreamName(msgspec.Struct):
    stream: str


_OUR_SNAPSHOT = msgspec.json.Decoder(_OurSnapshot)
_STREAM_NAME = msgspec.json.Decoder(_StreamName)
_SNAPSHOT_URL_SYMBOL = re.compile(rb"[?&]symbol=([A-Za-z0-9]+)")


def _open_text(path: Path) -> io.BufferedReader:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _stream_symbol(payload: bytes) -> str | None:
    try:
        stream = _STREAM_NAME.decode(payload).stream
    except msgspec.DecodeError:
        return None  # a malformed frame: the feed counts it, the reader just passes it on
    return stream.split("@", 1)[0].upper()


READ_BLOCK = 1 << 22  # bytes of (decompressed) text read at a time: line iteration per block, not per readline


def _lines(handle: io.BufferedReader) -> Iterator[bytes]:
    """The file's lines, read in blocks (a gzip ``readline`` per line costs more than the decoding after it)."""
    tail = b""
    while True:
        block = handle.read(READ_BLOCK)
        if not block:
            break
        lines = (tail + block).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail


def _fast_stream_symbol(payload: bytes) -> str | None:
    """The symbol of a combined-stream frame from its leading bytes (``{"stream":"btcusdt@...``), else by parsing."""
    if payload.startswith(b'{"stream":"'):
        at = payload.find(b"@", 11, 64)
        if at > 11:
            return payload[11:at].decode("ascii", "replace").upper()
    return _stream_symbol(payload)


def read_lines(path: str | Path) -> Iterator[Recorded]:
    """Read the ``<ns> <json>`` line format (ours and hftbacktest's)."""
    path = Path(path)
    seen: set[str] = set()
    held: list[Recorded] = []  # bare snapshots before any stream named their symbol
    with _open_text(path) as handle:
        for number, line in enumerate(_lines(handle), 1):
            line = line.rstrip(b"\r")
            if not line:
                continue
            stamp, _, payload = line.partition(b" ")
            try:
                ts_ns = int(stamp)
            except ValueError:
                raise RecordingError(f"{path}:{number}: expected '<ns> <json>', got {line[:60]!r}") from None
            if payload.startswith(b'{"lastUpdateId"'):
                record = Recorded(ts_ns, SNAPSHOT, None, payload)
                if len(seen) == 1:
                    yield record._replace(symbol=next(iter(seen)))
                elif not seen:
                    held.append(record)
                else:
                    raise RecordingError(
                        f"{path}:{number}: a bare depth snapshot in a file with several symbols {sorted(seen)}"
                    )
                continue
            if payload.startswith(b'{"rest_depth"'):
                try:
                    ours = _OUR_SNAPSHOT.decode(payload)
                except msgspec.DecodeError as exc:
                    raise RecordingError(f"{path}:{number}: bad snapshot record: {exc}") from None
                yield Recorded(ts_ns, SNAPSHOT, ours.rest_depth.upper(), bytes(ours.data))
                continue
            symbol = _fast_stream_symbol(payload)
            yield Recorded(ts_ns, FRAME, None, payload)
            if symbol is not None and symbol not in seen:
                seen.add(symbol)
                if held and len(seen) == 1:
                    for record in held:
                        yield record._replace(symbol=symbol)
                    held.clear()


def _cryptofeed_ws(path: Path) -> Iterator[Recorded]:
    with _open_text(path) as lines:
        header = lines.readline()
        if b"<->" not in header:
            raise RecordingError(f"{path}:1: expected '<url> <-> <time>' header of a cryptofeed ws file")
        for number, line in enumerate(lines, 2):
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            stamp, sep, payload = line.partition(b": ")
            if not sep:
                raise RecordingError(f"{path}:{number}: expected '<epoch>: <json>'")
            yield Recorded(_seconds_to_ns(stamp, path, number), FRAME, None, payload)


def _cryptofeed_http(path: Path) -> Iterator[Recorded]:
    with _open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            url, sep, rest = line.partition(b" -> ")
            stamp, sep2, payload = rest.partition(b": ")
            match = _SNAPSHOT_URL_SYMBOL.search(url)
            if not (sep and sep2 and match):
                raise RecordingError(f"{path}:{number}: expected '<url?symbol=X> -> <epoch>: <json>'")
            yield Recorded(_seconds_to_ns(stamp, path, number), SNAPSHOT, match.group(1).decode().upper(), payload)


def _seconds_to_ns(stamp: bytes, path: Path, number: int) -> int:
    whole, _, fraction = stamp.strip().partition(b".")
    try:
        return int(whole) * 1_000_000_000 + int((fraction + b"000000000")[:9] or b"0")
    except ValueError:
        raise RecordingError(f"{path}:{number}: bad epoch time {stamp!r}") from None


def read_cryptofeed(ws_path: str | Path) -> Iterator[Recorded]:
    """Read a cryptofeed ws file merged by time with its sibling http snapshot files."""
    ws_path = Path(ws_path)
    prefix = ws_path.name.split(".ws.", 1)[0]
    http_files = sorted(ws_path.parent.glob(f"{prefix}.http.*"))
    streams = [_cryptofeed_ws(ws_path)] + [_cryptofeed_http(path) for path in http_files]
    # on equal times, a snapshot goes after the frame (the feed buffers diffs first, as live)
    yield from heapq.merge(*streams, key=lambda record: (record.ts_ns, record.kind))


def open_recording(path: str | Path) -> Iterator[Recorded]:
    """Detect the format of ``path`` and iterate its records."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such recording")
    with _open_text(path) as probe:
        first = probe.readline(4096)
    if first.startswith((b"wss://", b"ws://")) and b"<->" in first:
        return read_cryptofeed(path)
    if re.match(rb"^\d+ \{", first):
        return read_lines(path)
    raise RecordingError(f"{path}: not a recording (first line {first[:60]!r})")


def open_recordings(paths: list[str] | list[Path]) -> Iterator[Recorded]:
    """Several recordings as one stream, in the order given (consecutive days, say): a replay and a backtest feed
    them to one engine, so a book continues across files when the update ids chain. A file that starts before
    the previous one ended is refused (``RecordingError`` naming both); so is a file that is not a recording or is
    cut short (a truncated gzip)."""
    last_ts, last_path = -1, None
    for path in paths:
        try:
            records = open_recording(path)
        except OSError as exc:
            raise RecordingError(f"{path}: {exc}") from None
        first = True
        try:
            for record in records:
                if first:
                    if record.ts_ns < last_ts:
                        raise RecordingError(
                            f"{path} starts at {record.ts_ns}, before {last_path} ended ({last_ts}): give the "
                            "recordings in time order")
                    first = False
                last_ts = max(last_ts, record.ts_ns)
                yield record
        except (OSError, EOFError) as exc:  # a truncated gzip raises EOFError
            raise RecordingError(f"{path}: {exc}") from None
        last_path = path


class RecordingWriter:
    """Write the lines format, gzip-compressed: frames exactly as received, snapshots with their symbol."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = gzip.open(self.path, "wb", compresslevel=6)  # noqa: SIM115 (closed by close()/__exit__)
        self.frames = 0
        self.snapshots = 0

    def frame(self, payload: bytes, ts_ns: int | None = None) -> None:
        self._out.write(b"%d %s\n" % (time.time_ns() if ts_ns is None else ts_ns, payload.rstrip(b"\n")))
        self.frames += 1

    def snapshot(self, symbol: str, body: bytes, ts_ns: int | None = None) -> None:
        stamp = time.time_ns() if ts_ns is None else ts_ns
        self._out.write(b'%d {"rest_depth":"%s","data":%s}\n' % (stamp, symbol.upper().encode(), body.strip()))
        self.snapshots += 1

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Level(msgspec.Struct, array_like=True):
    price: str
    size: str


class _SnapshotBody(msgspec.Struct):
    bids: list[_Level] = []
    asks: list[_Level] = []


_SNAPSHOT_BODY = msgspec.json.Decoder(_SnapshotBody)


def _decimals(text: str) -> int:
    _, _, fraction = text.partition(".")
    return len(fraction.rstrip("0"))


def survey_symbols(path: str | Path) -> dict[str, int]:
    """Return every symbol a recording streams, with the price decimals its REST snapshot needs.

    Lets ``hft run --source replay FILE`` configure itself for a recording of unknown symbols (the snapshot holds
    thousands of levels: enough to see the finest price step in use). Symbols without a snapshot get 8.
    """
    symbols: dict[str, int] = {}
    for record in open_recording(path):
        if record.kind == FRAME:
            symbol = _stream_symbol(record.payload)
            if symbol is not None:
                symbols.setdefault(symbol, 8)
            continue
        try:
            body = _SNAPSHOT_BODY.decode(record.payload)
        except msgspec.DecodeError:
            continue
        prices = [level.price for level in body.bids + body.asks]
        symbols[record.symbol] = max([2, *(_decimals(p) for p in prices)])
    return symbols
