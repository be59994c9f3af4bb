"""Loopback exchange that speaks the Binance spot market-data protocol, driven by :class:`OrderFlowModel`.

One asyncio server on one port answers both

* WebSocket upgrades on ``/stream?streams=a/b/c`` (combined payloads ``{"stream":...,"data":...}``) and
  ``/ws/a/b`` (raw payloads), with live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` requests, and
* plain HTTP ``GET /api/v3/depth``, ``/api/v3/exchangeInfo``, ``/api/v3/ping`` and ``/api/v3/time`` through the
  websockets ``process_request`` hook,

so a feed written for Binance (websocket-client + REST snapshot + the documented local-order-book procedure) works
against it unchanged. A single producer task advances the shared model by the real time elapsed (virtual time =
real time) and fans each frame out to the subscribed clients; every client has its own bounded backlog and is
disconnected (and counted) when it falls too far behind, so a slow reader never stalls the others. The REST
snapshot reads the same model in the same event loop, hence it is always consistent with the diffs already sent.

Faults on demand (see :mod:`hft.sim.faults` for every kind and field) change what is *sent*, never the model, so
the generated stream for a seed is the same with or without them. They are injected

* over HTTP on the same port: ``POST /sim/fault`` with a JSON body such as ``{"kind":"stall","ms":300}``, or
  ``GET /sim/fault?kind=stall&ms=300`` (the same fields as query parameters, for curl and browsers). websockets'
  handshake parser refuses request bodies, so :class:`_SimConnection` reads a POST body itself before the parser
  sees the request (POST also needs a websockets release that hands non-GET requests to ``process_request``, as
  the installed 17.x does; older ones close the connection instead, and GET is the way there). Both answer 200
  with a JSON ack (``{"ok":true,"fault":{...},"clients":[...]}``) or 400 with ``{"ok":false,"error":"..."}``
  naming the unknown kind, field or value. ``GET /sim/stats`` returns the counters of :class:`SimStats` plus the
  open clients (their ids are what ``"client"`` fields refer to);
* from Python with :meth:`SimExchange.inject` (thread-safe; :meth:`SimServerThread.inject` for a server started
  with :func:`start_in_thread`);
* on a timetable with ``SimConfig.faults`` (or the CLI's ``--fault AT_S:KIND[,key=value...]``).

Wire clock (opt-in, for ``bench/tick_to_trade.py``): with ``stamp_send=True`` (or the environment variable
``HFT_SIM_STAMP_SEND=1``, which reaches a simulator started by ``hft run``; or ``--stamp-send``) every market-data
frame carries one more key in its ``data`` object, ``"sim_send_ns":"<19 digits>"``: the CLOCK_MONOTONIC time
(``time.monotonic_ns``, the clock of every pipeline stamp) at which the frame was handed to the socket. The key
goes inside ``data`` because the feed's fast path accepts unknown keys there (and skips them) but declines any
extra top-level key; it is a fixed-width zero-padded *string* because a JSON number may not have leading zeros.
The frame is built once with nineteen zeros; :meth:`_SimConnection.send_data` joins the batch, finds the slots,
then reads the clock and writes the digits over them and hands the buffer to the transport, so the stamp is the
socket write (a few microseconds before it: ``GET /sim/stats`` reports stamp -> write returned as
``send_write_ns``), not the moment the model made the frame. The feed side that reads it back is
:mod:`hft.feed.wireclock`. Off (the default), nothing changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import email.utils
import json
import logging
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import tomllib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from hft.sim.config import VOLATILITY_PRESETS, SimConfig, symbol_by_name
from hft.sim.faults import (
    FAULT_KINDS,
    MAX_STALE_AGE_MS,
    DropConnection,
    Fault,
    FaultError,
    Malformed,
    RestError,
    ScheduledFault,
    SkipUpdates,
    SlowRest,
    StaleSnapshot,
    Stall,
    corrupt,
    decode_fault,
    fault_from_params,
    fault_from_spec,
    fault_to_dict,
)
from hft.sim.model import BookState, OrderFlowModel, format_fixed

__all__ = ["DEFAULT_PORT", "SimExchange", "SimServerThread", "SimStats", "main", "serve", "start_in_thread"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
TICK_S = 0.005  # producer cadence: trades and bookTickers leave at most this late
MAX_STEP_NS = 1_000_000_000  # the producer never generates more than 1 s of virtual time in one tick
DEFAULT_MAX_PENDING = 50_000  # frames queued for one client before it is disconnected as too slow
CLOSE_TIMEOUT_S = 0.5  # wait this long for a client's close frame before dropping the TCP connection
WRITE_SAMPLES = 65536  # socket writes whose duration /sim/stats summarizes (send stamps on)
SEND_BATCH = 256  # frames written to a socket per drain
HISTORY_INTERVAL_S = 0.2  # cadence of the book copies kept for stale snapshots
HISTORY_LEN = int(MAX_STALE_AGE_MS / 1000 / HISTORY_INTERVAL_S) + 2  # enough copies to go MAX_STALE_AGE_MS back
MAX_POST_BODY = 64 * 1024  # largest control request body read
MAX_REQUEST_HEAD = 16 * 1024  # a POST whose headers are longer goes to websockets' parser unchanged (and is refused)
INJECT_TIMEOUT_S = 5.0
SEND_STAMP_ENV = "HFT_SIM_STAMP_SEND"  # "1": stamp every market-data frame's send time (see the module docstring)
SEND_STAMP_KEY = b'"sim_send_ns":"'  # then SEND_STAMP_DIGITS digits and a quote; read by hft.feed.wireclock
SEND_STAMP_DIGITS = 19  # int64 nanoseconds, zero-padded
_STAMP_BLANK = SEND_STAMP_KEY + b"0" * SEND_STAMP_DIGITS
_STAMP_SLOT = b"," + _STAMP_BLANK + b'"'  # inserted before the closing brace of the frame's data object
_STAMP_SEARCH = 64  # the slot ends 2-3 bytes before the end of a frame: only the tail is searched
_CONTENT_LENGTH_RE = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$")
_EXPECT_CONTINUE_RE = re.compile(rb"(?im)^expect:[ \t]*100-continue[ \t]*\r?$")

_SYMBOL_PARAM_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_ERR_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
_ERR_MISSING_SYMBOL = {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."}


@dataclasses.dataclass
class SimStats:
    """Counters of one server run, for tests and the exit log line."""

    connections: int = 0  # WebSocket connections accepted
    open_connections: int = 0
    slow_disconnects: int = 0  # clients dropped because their backlog exceeded max_pending
    http_requests: int = 0  # REST requests answered
    frames_generated: int = 0  # frames produced by the model
    frames_queued: int = 0  # frames queued to clients (one per subscriber)
    frames_sent: int = 0
    virtual_slip_ns: int = 0  # virtual time skipped because the producer fell more than MAX_STEP_NS behind
    ticks: int = 0
    loop_cpu_ns: int = 0  # CPU time of the event-loop thread (model, fan-out, sends), updated every tick
    control_requests: int = 0  # /sim/... requests answered
    faults_injected: dict[str, int] = dataclasses.field(default_factory=dict)  # by kind, accepted faults only
    fault_errors: int = 0  # fault requests refused (bad kind, field, client or symbol)
    fault_disconnects: int = 0  # connections closed by drop_connection
    frames_skipped: int = 0  # depth frames withheld by skip_updates (once per client for a per-client fault)
    malformed_frames: int = 0  # malformed frames queued to clients
    stale_snapshots: int = 0  # REST depth answers served from the history
    slow_rest_responses: int = 0  # REST depth answers delayed by slow_rest
    rest_errors: int = 0  # REST depth requests answered with an HTTP error by rest_error
    stalls: int = 0  # stall faults applied


class _Client:
    """One WebSocket subscriber: its subscriptions, its backlog, the event that wakes its sender and its faults.

    ``faulty`` is true while a per-client fault (withheld depth frames, malformed frames to insert) is pending: only
    then does the fan-out take the slower path through :meth:`SimExchange._faulty_frames`.
    """

    __slots__ = (
        "closing",
        "faulty",
        "frames_sent",
        "id",
        "malformed",
        "malformed_index",
        "malformed_left",
        "malformed_queue",
        "malformed_streams",
        "names",
        "pending",
        "raw",
        "routes",
        "skip",
        "stall_until",
        "wake",
        "ws",
    )

    def __init__(
        self, ws: ServerConnection, raw: bool, names: list[str], model: OrderFlowModel, client_id: int = 0
    ) -> None:
        self.ws = ws
        self.id = client_id
        self.raw = raw
        self.names: list[str] = []
        self.routes: dict[str, list[bytes] | None] = {}
        self.pending: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closing = False
        self.frames_sent = 0
        self.faulty = False
        self.skip: dict[str, int] = {}  # canonical depth stream -> frames still to withhold from this client
        self.malformed: Malformed | None = None
        self.malformed_left = 0
        self.malformed_index = 0
        self.malformed_streams: frozenset[str] = frozenset()
        self.malformed_queue: deque[tuple[Malformed, frozenset[str]]] = deque()  # injected while one was active
        self.stall_until = 0.0
        self.set_names(names, model)

    def set_names(self, names: list[str], model: OrderFlowModel) -> None:
        """Rebuild the routing table: canonical stream -> labels (``None``: forward the model's frame as is)."""
        self.names = list(dict.fromkeys(names))
        routes: dict[str, list[bytes]] = {}
        for name in self.names:
            found = model.canonical_stream(name)
            if found is not None:
                routes.setdefault(found[0], []).append(name.encode())
        self.routes = {
            canonical: (None if not self.raw and labels == [canonical.encode()] else labels)
            for canonical, labels in routes.items()
        }

    def frames_for(self, msgs: list[tuple[str, bytes]]) -> list[bytes]:
        """Select and relabel the frames this client subscribed to, in order."""
        routes = self.routes
        out: list[bytes] = []
        for stream, frame in msgs:
            labels = routes.get(stream, False)
            if labels is None:
                out.append(frame)
            elif labels is not False:
                data = frame[len(stream) + 20 : -1]  # strip '{"stream":"<stream>","data":' and the final '}'
                if self.raw:
                    out.append(data)
                else:
                    for label in labels:
                        out.append(b'{"stream":"' + label + b'","data":' + data + b"}")
        return out


async def _send_text_frames(ws: ServerConnection, frames: list[bytes]) -> None:
    """Send each UTF-8 frame as its own text message, with one socket write and one drain for the whole batch.

    ``ServerConnection.send`` costs a write and a drain per message, which caps a Python server at roughly
    20k messages/s; queuing the frames on the sans-I/O protocol inside one ``send_context`` (what ``send`` itself
    does for a single frame) is several times cheaper. Falls back to ``send`` if that internal API ever changes.
    """
    send_context = getattr(ws, "send_context", None)
    protocol = getattr(ws, "protocol", None)
    if send_context is None or protocol is None or ws.send_in_progress is not None:
        for frame in frames:
            await ws.send(frame, text=True)
        return
    async with send_context():
        send_text = protocol.send_text
        for frame in frames:
            send_text(frame)


def stamp_slot(frame: bytes) -> bytes:
    """Return ``frame`` (a combined-stream frame, ``...}}``) with a blank send-stamp key at the end of ``data``."""
    return frame[:-2] + _STAMP_SLOT + frame[-2:]


def stamp_slots(chunks: list[bytes]) -> tuple[bytearray, list[int]]:
    """Join the outgoing WebSocket frames into one buffer; return it and where each blank send stamp's digits are.

    A server frame is unmasked, so its payload lies verbatim at the end of the chunk websockets serialized; the
    stamp's width is fixed, so a frame's length (already in its header) does not change when it is written.
    All the work happens here, before the clock is read: what is left between the stamp and the socket write is
    a slice assignment per frame (:func:`write_stamps`).
    """
    data = bytearray().join(chunks)
    slots = []
    offset = 0
    for chunk in chunks:
        at = chunk.rfind(_STAMP_BLANK, max(0, len(chunk) - _STAMP_SEARCH))
        if at >= 0:
            slots.append(offset + at + len(SEND_STAMP_KEY))
        offset += len(chunk)
    return data, slots


def write_stamps(data: bytearray, slots: list[int], stamp_ns: int) -> None:
    """Write ``stamp_ns`` (19 zero-padded digits) into every slot of ``data``."""
    digits = b"%019d" % stamp_ns
    for at in slots:
        data[at : at + SEND_STAMP_DIGITS] = digits


def _json_response(status: int, payload: Any) -> Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Content-Length", str(len(body))),
        ]
    )
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _split_symbol(name: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY"):
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)], quote
    return name[:-3], name[-3:]


class _SimConnection(ServerConnection):
    """A ``ServerConnection`` that reads the body of a ``POST`` before websockets' handshake parser sees it.

    The parser refuses any request with a non-zero ``Content-Length`` (a WebSocket handshake has no body), which
    would make ``POST /sim/fault`` impossible. This class buffers the first bytes of a connection; for a ``POST``
    it waits for the headers and ``Content-Length`` bytes of body, keeps the body in ``sim_body`` and feeds the
    parser the headers with ``Content-Length: 0``. Any other request goes to the parser untouched after the first
    packet, so WebSocket clients pay nothing. Runs in the event loop, like every asyncio protocol callback.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sim_body: bytes | None = None
        self.sim_stamp = False  # set by the exchange when send stamps are on: send_data fills the slots
        # with stamps on: (stamp, write returned) of the latest writes, CLOCK_MONOTONIC ns: the simulator's own
        # share of wire -> receive (GET /sim/stats "send_write_ns"); one deque per exchange, bounded
        self.sim_writes: deque[int] | None = None
        self._sim_head: bytearray | None = bytearray()
        self._sim_continued = False

    def data_received(self, data: bytes) -> None:
        head = self._sim_head
        if head is None:
            super().data_received(data)
            return
        head += data
        if not head.startswith(b"POST "):
            if len(head) >= 5 or not b"POST ".startswith(bytes(head)):
                self._pass_through()
            return
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_REQUEST_HEAD:
                self._pass_through()
            return
        block = bytes(head[: end + 4])
        match = _CONTENT_LENGTH_RE.search(block)
        length = int(match.group(1)) if match else 0
        if length > MAX_POST_BODY:
            self._pass_through()  # the parser refuses it
            return
        if len(head) < end + 4 + length:
            if not self._sim_continued and _EXPECT_CONTINUE_RE.search(block) and self.transport is not None:
                self._sim_continued = True
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[attr-defined]
            return
        self.sim_body = bytes(head[end + 4 : end + 4 + length])
        rest = bytes(head[end + 4 + length :])
        if match is not None:
            block = block[: match.start(1)] + b"0" + block[match.end(1) :]
        self._sim_head = None
        super().data_received(block + rest)

    def send_data(self) -> None:
        """Write the protocol's pending output with one transport call instead of one ``write`` per frame.

        websockets writes each queued frame separately, which is one ``send`` syscall per frame while the socket
        keeps up; :func:`_send_text_frames` queues up to ``SEND_BATCH`` frames at a time, so joining them cuts the
        syscalls by that factor. An empty chunk (half-close request) is handled exactly like websockets does.
        """
        chunks = self.protocol.data_to_send()
        if not chunks:
            return
        transport = self.transport
        if all(chunks):
            if not self.sim_stamp:
                transport.writelines(chunks)
                return
            # the stamp is the socket write: everything but the digits is done before the clock is read, and
            # asyncio sends at once when nothing is buffered (GET /sim/stats "send_write_ns": stamp -> returned)
            data, slots = stamp_slots(chunks)
            stamped_at = time.monotonic_ns()
            write_stamps(data, slots, stamped_at)
            transport.write(data)
            if self.sim_writes is not None:
                self.sim_writes.append(time.monotonic_ns() - stamped_at)
            return
        for chunk in chunks:
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof():
                with contextlib.suppress(Exception):  # write_eof() documents no exceptions; uvloop raises some
                    transport.write_eof()
            else:
                transport.close()

    def _pass_through(self) -> None:
        head, self._sim_head = self._sim_head, None
        if head:
            super().data_received(bytes(head))


class _RestQueue:
    """Pending one-shot REST faults (stale or slow depth answers), consumed first-in first-out."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[list[Any]] = []  # [symbol or None, parameter, requests left]

    def add(self, symbol: str | None, parameter: int, requests: int) -> int:
        self.items.append([symbol, parameter, requests])
        return sum(item[2] for item in self.items)

    def take(self, symbol: str) -> int | None:
        """Consume one request for ``symbol`` and return its parameter, or ``None`` when nothing applies."""
        for index, item in enumerate(self.items):
            if item[0] is None or item[0] == symbol:
                item[2] -= 1
                if item[2] == 0:
                    del self.items[index]
                return int(item[1])
        return None


class SimExchange:
    """The server state: one model, the connected clients, the producer that feeds them and the pending faults.

    Everything runs in one asyncio event loop; create it and call :meth:`run` from that loop's thread. Only
    :meth:`inject` and :meth:`stats_snapshot` may be called from other threads (they hand the work to the loop).
    """

    def __init__(
        self, config: SimConfig, *, max_pending: int = DEFAULT_MAX_PENDING, stamp_send: bool | None = None
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if config.wall_clock:  # venue times near this machine's clock, like a real venue's
            config = msgspec.structs.replace(config, epoch_ms=time.time_ns() // 1_000_000)
        self.config = config
        # opt-in wire clock (module docstring); None: from the environment, so `hft run` can turn it on
        self.stamp_send = stamp_send if stamp_send is not None else os.environ.get(SEND_STAMP_ENV, "") == "1"
        self.model = OrderFlowModel(config)
        self.stats = SimStats()
        self.port: int | None = None
        self._max_pending = max_pending
        self._clients: set[_Client] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._exchange_info = self._build_exchange_info()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_client_id = 1
        self._writes: deque[int] = deque(maxlen=WRITE_SAMPLES)  # stamp -> socket write returned, ns (stamps on)
        self._skip: dict[str, int] = {}  # canonical depth stream -> frames still to withhold from everyone
        self._stall_until = 0.0  # loop time before which no client is written to
        self._stale = _RestQueue()  # parameter: age in ms
        self._slow = _RestQueue()  # parameter: delay in ms
        self._errors = _RestQueue()  # parameter: HTTP status * 10_000 + Retry-After seconds
        self._history: dict[str, deque[tuple[int, BookState]]] = {
            name: deque(maxlen=HISTORY_LEN) for name in self.model.symbols
        }
        self._schedule: list[ScheduledFault] = sorted(config.faults, key=lambda f: f.at_s)
        listed = set(self.model.symbols)
        candidates = (f"ZZZ{i}USDT" if i else "ZZZUSDT" for i in range(len(listed) + 1))
        self._unknown_symbol = next(name for name in candidates if name not in listed)  # for malformed frames

    # ------------------------------------------------------------------ lifecycle

    async def run(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_ready: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Listen, produce until ``stop`` is set or ``duration_s`` elapses, then close every connection."""
        self._loop = asyncio.get_running_loop()
        try:
            async with ws_serve(
                self._handler,
                host,
                port,
                process_request=self._process_request,
                create_connection=_SimConnection,
                compression=None,
                max_size=1 << 16,
                close_timeout=CLOSE_TIMEOUT_S,
                server_header="sim-exchange",
            ) as server:
                self.port = self._bound_port(server)
                if on_ready is not None:
                    on_ready(self.port)
                log.info("sim-exchange listening on %s:%d", host, self.port)
                await self._produce(stop, duration_s)
                for client in tuple(self._clients):
                    client.closing = True
                    client.wake.set()
            if self._closers:
                await asyncio.gather(*self._closers, return_exceptions=True)
        finally:
            self._loop = None
        log.info("sim-exchange stopped: %s", self.stats)

    @staticmethod
    def _bound_port(server: Server) -> int:
        return int(server.sockets[0].getsockname()[1])

    async def _produce(self, stop: threading.Event | None, duration_s: float | None) -> None:
        """Advance the model by the real time elapsed every ``TICK_S``, fan the frames out, fire scheduled faults."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = None if duration_s is None else start + duration_s
        model = self.model
        slip = 0
        schedule = self._schedule
        next_fault = 0
        self._record_history()
        next_history = start + HISTORY_INTERVAL_S
        cpu_start = time.thread_time_ns()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            self.stats.loop_cpu_ns = time.thread_time_ns() - cpu_start
            if (stop is not None and stop.is_set()) or (deadline is not None and now >= deadline):
                return
            while next_fault < len(schedule) and schedule[next_fault].at_s <= now - start:
                self._fire_scheduled(schedule[next_fault])
                next_fault += 1
            dt = int((now - start) * 1e9) - slip - model.now_ns
            if dt > MAX_STEP_NS:  # the producer was starved: skip virtual time rather than spiral
                slip += dt - MAX_STEP_NS
                self.stats.virtual_slip_ns = slip
                dt = MAX_STEP_NS
            if dt <= 0:
                continue
            self.stats.ticks += 1
            msgs = model.advance_streams(dt)
            if msgs:
                self._broadcast(msgs)
            if now >= next_history:
                self._record_history()
                next_history = now + HISTORY_INTERVAL_S

    def _record_history(self) -> None:
        """Keep a copy of every book for stale snapshots (a few dict copies every ``HISTORY_INTERVAL_S``)."""
        now = self.model.now_ns
        for name, history in self._history.items():
            history.append((now, self.model.book(name)))

    def _fire_scheduled(self, scheduled: ScheduledFault) -> None:
        try:
            ack = self._apply(scheduled.fault)
        except FaultError as exc:
            self.stats.fault_errors += 1
            log.warning("scheduled fault at %.3f s not applied: %s", scheduled.at_s, exc)
        else:
            log.info("scheduled fault at %.3f s applied: %s", scheduled.at_s, ack)

    # ------------------------------------------------------------------ fan-out

    def _broadcast(self, msgs: list[tuple[str, bytes]]) -> None:
        """Queue ``msgs`` to every subscriber; drop the clients whose backlog would exceed ``max_pending``."""
        self.stats.frames_generated += len(msgs)
        if self.stamp_send:
            msgs = [(stream, stamp_slot(frame)) for stream, frame in msgs]
        if self._skip:
            msgs = self._withhold(msgs)
        for client in tuple(self._clients):
            frames = self._faulty_frames(client, msgs) if client.faulty else client.frames_for(msgs)
            if not frames:
                continue
            if len(client.pending) + len(frames) > self._max_pending:
                self._drop_slow(client)
                continue
            client.pending.extend(frames)
            self.stats.frames_queued += len(frames)
            client.wake.set()

    def _withhold(self, msgs: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """Remove the depth frames a global ``skip_updates`` fault withholds from every client."""
        skip = self._skip
        out: list[tuple[str, bytes]] = []
        for item in msgs:
            left = skip.get(item[0])
            if left:
                if left == 1:
                    del skip[item[0]]
                else:
                    skip[item[0]] = left - 1
                self.stats.frames_skipped += 1
                continue
            out.append(item)
        return out

    def _faulty_frames(self, client: _Client, msgs: list[tuple[str, bytes]]) -> list[bytes]:
        """Like ``client.frames_for`` but apply the client's own faults: withhold depth frames, insert malformed."""
        out: list[bytes] = []
        routes, skip = client.routes, client.skip
        for item in msgs:
            stream = item[0]
            if stream not in routes:
                continue
            left = skip.get(stream)
            if left:
                if left == 1:
                    del skip[stream]
                else:
                    skip[stream] = left - 1
                self.stats.frames_skipped += 1
                continue
            frames = client.frames_for([item])
            if client.malformed_left and stream in client.malformed_streams:
                for frame in frames:
                    if client.malformed_left:
                        out.append(self._next_malformed(client, frame))
                    out.append(frame)
            else:
                out.extend(frames)
        client.faulty = bool(skip) or client.malformed_left > 0
        return out

    def _next_malformed(self, client: _Client, frame: bytes) -> bytes:
        fault = client.malformed
        assert fault is not None
        variant = fault.variant_at(client.malformed_index)
        client.malformed_index += 1
        client.malformed_left -= 1
        self.stats.malformed_frames += 1
        if not client.malformed_left and client.malformed_queue:
            client.malformed, client.malformed_streams = client.malformed_queue.popleft()
            client.malformed_left = client.malformed.count
            client.malformed_index = 0
        return corrupt(frame, variant, unknown_symbol=self._unknown_symbol, huge_bytes=fault.huge_bytes)

    def _drop_slow(self, client: _Client) -> None:
        self.stats.slow_disconnects += 1
        self._forget(client)
        self._spawn_close(client.ws, 1008, "slow consumer")

    def _forget(self, client: _Client) -> None:
        """Stop feeding ``client``: no more frames are queued to it and its sender exits."""
        self._clients.discard(client)
        client.closing = True
        client.pending.clear()
        client.wake.set()

    def _spawn_close(self, ws: ServerConnection, code: int, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self._close(ws, code, reason))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    @staticmethod
    async def _close(ws: ServerConnection, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close(code, reason)

    async def _sender(self, client: _Client) -> None:
        """Write the client's backlog in order; one task per client so a slow socket only delays itself."""
        ws = client.ws
        pending = client.pending
        loop = asyncio.get_running_loop()
        transport = ws.transport
        with contextlib.suppress(ConnectionClosed, OSError):
            while not client.closing:
                await client.wake.wait()
                client.wake.clear()
                # a dead transport discards writes without making drain() wait, so this loop would never yield
                # to let the connection notice it is closed: check it, or a big backlog spins (and logs) in vain
                while pending and not client.closing and not transport.is_closing():
                    hold = max(self._stall_until, client.stall_until) - loop.time()
                    if hold > 0:  # a stall fault: keep queueing, write the burst afterwards
                        await asyncio.sleep(hold)
                        continue
                    batch = [pending.popleft() for _ in range(min(len(pending), SEND_BATCH))]
                    await _send_text_frames(ws, batch)
                    self.stats.frames_sent += len(batch)
                    client.frames_sent += len(batch)

    async def _handler(self, ws: ServerConnection) -> None:
        raw, names = getattr(ws, "sim_subscription", (False, []))
        ws.sim_stamp = self.stamp_send  # type: ignore[attr-defined]
        ws.sim_writes = self._writes  # type: ignore[attr-defined]
        client = _Client(ws, raw, names, self.model, self._next_client_id)
        self._next_client_id += 1
        self._clients.add(client)
        self.stats.connections += 1
        self.stats.open_connections += 1
        sender = asyncio.get_running_loop().create_task(self._sender(client))
        try:
            async for message in ws:
                reply = self._control(client, message)
                client.pending.append(reply)
                client.wake.set()
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            self.stats.open_connections -= 1
            client.closing = True
            client.wake.set()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    def _control(self, client: _Client, message: str | bytes) -> bytes:
        """Answer a Binance WebSocket request (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS)."""
        try:
            request = json.loads(message)
        except ValueError:
            return self._ws_error(3, "Invalid JSON: expected a JSON object", None)
        if not isinstance(request, dict):
            return self._ws_error(3, "Invalid JSON: expected a JSON object", None)
        req_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return self._ws_error(1, "Invalid value type: expected a list of stream names", req_id)
            bad = self._invalid_stream(params)
            if bad is not None:
                return self._ws_error(2, f"Invalid request: {bad['msg']}", req_id)
            keep = [n for n in client.names if n not in params]
            names = keep + params if method == "SUBSCRIBE" else keep
            client.set_names(names, self.model)
            result: Any = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(client.names)
        else:
            return self._ws_error(2, f"Invalid request: unknown method {method!r}", req_id)
        return json.dumps({"result": result, "id": req_id}, separators=(",", ":")).encode()

    @staticmethod
    def _ws_error(code: int, msg: str, req_id: Any) -> bytes:
        return json.dumps({"error": {"code": code, "msg": msg}, "id": req_id}, separators=(",", ":")).encode()

    # ------------------------------------------------------------------ faults

    def inject(self, fault: Fault | dict[str, Any], timeout: float = INJECT_TIMEOUT_S) -> dict[str, Any]:
        """Apply ``fault`` now and return the ack the HTTP endpoint would send.

        ``fault`` is a fault struct or a dict shaped like the JSON body (``{"kind": "stall", "ms": 300}``).
        Thread-safe: from the server's own loop it applies directly, from any other thread it hands the fault to
        the loop and waits up to ``timeout`` for the ack. Raise :class:`FaultError` (a ``ValueError``) when the
        fault is invalid or names an unknown client or symbol, ``RuntimeError`` when the server is not running.
        """
        if isinstance(fault, dict):
            fault = fault_from_params(fault)
        return self._in_loop(lambda: self._apply(fault), timeout)

    def stats_snapshot(self, timeout: float = INJECT_TIMEOUT_S) -> dict[str, Any]:
        """Return the body of ``GET /sim/stats``; thread-safe like :meth:`inject`."""
        return self._in_loop(self._stats_body, timeout)

    def _in_loop(self, fn: Callable[[], dict[str, Any]], timeout: float) -> dict[str, Any]:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the simulated exchange is not running")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn()

        async def call() -> dict[str, Any]:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def _apply(self, fault: Fault) -> dict[str, Any]:
        """Apply one fault in the event loop; return the ack or raise :class:`FaultError`."""
        try:
            ack = self._apply_kind(fault)
        except FaultError:
            self.stats.fault_errors += 1
            raise
        kind = str(type(fault).__struct_config__.tag)
        self.stats.faults_injected[kind] = self.stats.faults_injected.get(kind, 0) + 1
        return {"ok": True, "fault": fault_to_dict(fault), **ack}

    def _targets(self, client_id: int | None) -> list[_Client]:
        clients = sorted(self._clients, key=lambda c: c.id)
        if client_id is None:
            return clients
        chosen = [c for c in clients if c.id == client_id]
        if not chosen:
            raise FaultError(f"no open client with id {client_id}; open clients are {[c.id for c in clients]}")
        return chosen

    def _check_symbol(self, symbol: str | None) -> list[str]:
        if symbol is None:
            return self.model.symbols
        if symbol not in self.model.symbols:
            raise FaultError(f"unknown symbol {symbol!r}; configured symbols are {', '.join(self.model.symbols)}")
        return [symbol]

    def _depth_stream(self, symbol: str) -> str:
        found = self.model.canonical_stream(f"{symbol.lower()}@depth")
        assert found is not None
        return found[0]

    def _apply_kind(self, fault: Fault) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if isinstance(fault, DropConnection):
            targets = self._targets(fault.client)
            for client in targets:
                self._drop(client, fault.mode)
            return {"clients": [c.id for c in targets]}
        if isinstance(fault, SkipUpdates):
            streams = [self._depth_stream(name) for name in self._check_symbol(fault.symbol)]
            if fault.client is None:
                for stream in streams:
                    self._skip[stream] = self._skip.get(stream, 0) + fault.frames
                return {"streams": streams, "clients": "all"}
            (client,) = self._targets(fault.client)
            streams = [stream for stream in streams if stream in client.routes]
            if not streams:
                raise FaultError(f"client {client.id} subscribes to no depth stream of {fault.symbol or 'any symbol'}")
            for stream in streams:
                client.skip[stream] = client.skip.get(stream, 0) + fault.frames
            client.faulty = True
            return {"streams": streams, "clients": [client.id]}
        if isinstance(fault, Malformed):
            symbols = {name.lower() for name in self._check_symbol(fault.symbol)}
            chosen = []
            for client in self._targets(fault.client):
                mine = [s for s in client.routes if s.split("@", 1)[0] in symbols]
                if fault.channel is not None:
                    streams = frozenset(s for s in mine if s.split("@", 1)[1].startswith(fault.channel))
                else:
                    depth = [s for s in mine if "@depth" in s]
                    streams = frozenset(depth or mine)
                if not streams:
                    continue
                if client.malformed_left:
                    client.malformed_queue.append((fault, streams))  # runs after the active one: none is lost
                else:
                    client.malformed = fault
                    client.malformed_left = fault.count
                    client.malformed_index = 0
                    client.malformed_streams = streams
                client.faulty = True
                chosen.append(client.id)
            if fault.client is not None and not chosen:
                raise FaultError(f"client {fault.client} subscribes to no stream of {sorted(symbols)}")
            return {"clients": chosen}
        if isinstance(fault, StaleSnapshot):
            self._check_symbol(fault.symbol)
            return {"requests_pending": self._stale.add(fault.symbol, fault.age_ms, fault.requests)}
        if isinstance(fault, Stall):
            until = loop.time() + fault.ms / 1000
            self.stats.stalls += 1
            if fault.client is None:
                self._stall_until = max(self._stall_until, until)
                return {"clients": "all"}
            (client,) = self._targets(fault.client)
            client.stall_until = max(client.stall_until, until)
            return {"clients": [client.id]}
        if isinstance(fault, SlowRest):
            return {"requests_pending": self._slow.add(None, fault.ms, fault.requests)}
        if isinstance(fault, RestError):
            code = fault.status * 10_000 + fault.retry_after_s
            return {"requests_pending": self._errors.add(None, code, fault.requests)}
        raise FaultError(f"unsupported fault {fault!r}")

    def _drop(self, client: _Client, mode: str) -> None:
        """Close one connection the way a network or a venue does: abort (no close frame), reset, or close 1001."""
        self.stats.fault_disconnects += 1
        self._forget(client)
        ws = client.ws
        if mode == "close":
            self._spawn_close(ws, 1001, "going away")
            return
        transport = ws.transport
        if mode == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def _stale_snapshot(self, symbol: str, age_ms: int, limit: int) -> bytes:
        """Format the newest recorded book of ``symbol`` that is at least ``age_ms`` old (else the oldest one)."""
        history = self._history[symbol]
        if not history:
            self._record_history()
        cutoff = self.model.now_ns - age_ms * 1_000_000
        chosen = history[0][1]
        for t_ns, state in history:
            if t_ns > cutoff:
                break
            chosen = state
        return self.model.depth_snapshot_of(symbol, chosen, limit)

    # ------------------------------------------------------------------ HTTP

    def _invalid_stream(self, names: Sequence[str]) -> dict[str, Any] | None:
        """Return a Binance-style error for the first unknown stream name, ``None`` when all exist."""
        known_symbols = {s.lower() for s in self.model.symbols}
        for name in names:
            if self.model.canonical_stream(name) is None:
                symbol = name.split("@", 1)[0]
                if "@" in name and symbol not in known_symbols:
                    return {"code": -1121, "msg": f"Invalid symbol in stream {name!r}."}
                return {"code": -1100, "msg": f"Invalid stream name {name!r}."}
        return None

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | Awaitable[Response] | None:
        """Route a request: WebSocket paths proceed to the upgrade, REST and control paths get an answer here."""
        url = urlsplit(request.path)
        path = url.path
        query = parse_qs(url.query, keep_blank_values=True)
        if path == "/stream" or path == "/ws" or path.startswith("/ws/"):
            if path == "/stream":
                raw = False
                names = [n for n in query.get("streams", [""])[0].split("/") if n]
            else:
                raw = True
                names = [n for n in path[4:].split("/") if n]
            error = self._invalid_stream(names)
            if error is not None:
                return _json_response(400, error)
            ws.sim_subscription = (raw, names)  # type: ignore[attr-defined]
            return None
        if path.startswith("/sim/"):
            self.stats.control_requests += 1
            return self._sim_endpoint(getattr(request, "method", "GET"), path, query, getattr(ws, "sim_body", None))
        self.stats.http_requests += 1
        if path == "/api/v3/depth":
            return self._rest_depth(query)
        if path == "/api/v3/exchangeInfo":
            return self._rest_exchange_info(query)
        if path == "/api/v3/ping":
            return _json_response(200, {})
        if path == "/api/v3/time":
            return _json_response(200, {"serverTime": self.model.now_ms})
        return _json_response(404, {"code": -1000, "msg": f"Unknown path {path!r}."})

    def _sim_endpoint(self, method: str, path: str, query: dict[str, list[str]], body: bytes | None) -> Response:
        """Answer ``/sim/fault`` (POST JSON body or GET query) and ``/sim/stats``."""
        if path == "/sim/stats":
            if method != "GET":
                return _json_response(405, {"ok": False, "error": "use GET /sim/stats"})
            return _json_response(200, self._stats_body())
        if path != "/sim/fault":
            return _json_response(
                404, {"ok": False, "error": f"unknown control path {path!r}; use /sim/fault or /sim/stats"}
            )
        if method not in ("GET", "POST"):
            return _json_response(405, {"ok": False, "error": "use POST (JSON body) or GET (query) /sim/fault"})
        try:
            fault = self._fault_request(method, query, body)
        except FaultError as exc:
            self.stats.fault_errors += 1
            return _json_response(400, {"ok": False, "error": str(exc), "kinds": list(FAULT_KINDS)})
        try:
            ack = self._apply(fault)
        except FaultError as exc:  # counted by _apply
            return _json_response(400, {"ok": False, "error": str(exc), "kinds": list(FAULT_KINDS)})
        return _json_response(200, ack)

    @staticmethod
    def _fault_request(method: str, query: dict[str, list[str]], body: bytes | None) -> Fault:
        """Decode the fault of a control request: a JSON body for POST, query parameters for GET."""
        if method == "POST":
            if query:
                raise FaultError("POST /sim/fault takes a JSON body, not query parameters")
            if not body:
                raise FaultError(f'empty body; send JSON like {{"kind":"stall","ms":300}}; kinds are {FAULT_KINDS}')
            return decode_fault(body)
        repeated = sorted(k for k, v in query.items() if len(v) != 1)
        if repeated:
            raise FaultError(f"query parameters given more than once: {', '.join(repeated)}")
        if not query:
            raise FaultError(f"missing fault, e.g. /sim/fault?kind=stall&ms=300; kinds are {', '.join(FAULT_KINDS)}")
        return fault_from_params({k: v[0] for k, v in query.items()})

    def _stats_body(self) -> dict[str, Any]:
        body = dataclasses.asdict(self.stats)
        body["faults_injected"] = dict(self.stats.faults_injected)
        body["model_events"] = self.model.events
        body["virtual_ns"] = self.model.now_ns
        writes = sorted(self._writes)
        body["send_write_ns"] = {  # the latest WRITE_SAMPLES writes with send stamps on (empty when off)
            "count": len(writes),
            "p50": writes[len(writes) // 2] if writes else None,
            "p99": writes[min(len(writes) - 1, len(writes) * 99 // 100)] if writes else None,
        }
        body["clients"] = [
            {
                "id": c.id,
                "streams": list(c.names),
                "raw": c.raw,
                "pending": len(c.pending),
                "frames_sent": c.frames_sent,
            }
            for c in sorted(self._clients, key=lambda c: c.id)
        ]
        return body

    def _rest_depth(self, query: dict[str, list[str]]) -> Response | Awaitable[Response]:
        symbol = query.get("symbol", [""])[0]
        if not symbol:
            return _json_response(400, _ERR_MISSING_SYMBOL)
        if not _SYMBOL_PARAM_RE.match(symbol):
            return _json_response(
                400,
                {
                    "code": -1100,
                    "msg": "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,20}$'.",
                },
            )
        if symbol not in self.model.symbols:
            return _json_response(400, _ERR_INVALID_SYMBOL)
        limit_text = query.get("limit", ["100"])[0]
        if not limit_text.isdigit() or len(limit_text) > 20 or int(limit_text) < 1:
            return _json_response(
                400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'; legal range is '1..5000'."}
            )
        error = self._errors.take(symbol) if self._errors.items else None
        if error is not None:
            self.stats.rest_errors += 1
            status, retry_after = divmod(error, 10_000)
            response = _json_response(status, {"code": -1003 if status in (418, 429) else -1000,
                                               "msg": "simulated failure (rest_error fault)"})
            if retry_after > 0:
                response.headers["Retry-After"] = str(retry_after)
            return response
        age_ms = self._stale.take(symbol) if self._stale.items else None
        if age_ms is None:
            body = self.model.depth_snapshot(symbol, int(limit_text))
        else:
            self.stats.stale_snapshots += 1
            body = self._stale_snapshot(symbol, age_ms, int(limit_text))
        response = _json_response(200, body)
        delay_ms = self._slow.take(symbol) if self._slow.items else None
        if delay_ms is None:
            return response
        self.stats.slow_rest_responses += 1
        return self._delayed(response, delay_ms / 1000)

    @staticmethod
    async def _delayed(response: Response, delay_s: float) -> Response:
        """Deliver a response late: the snapshot was taken on arrival, as if the answer were stuck in transit."""
        await asyncio.sleep(delay_s)
        return response

    def _rest_exchange_info(self, query: dict[str, list[str]]) -> Response:
        info = self._exchange_info
        symbol = query.get("symbol", [""])[0]
        if symbol:
            chosen = [s for s in info["symbols"] if s["symbol"] == symbol]
            if not chosen:
                return _json_response(400, _ERR_INVALID_SYMBOL)
            info = dict(info, symbols=chosen)
        return _json_response(200, dict(info, serverTime=self.model.now_ms))

    def _build_exchange_info(self) -> dict[str, Any]:
        symbols = []
        for spec in self.config.symbols:
            base, quote = _split_symbol(spec.name)
            tick = format_fixed(spec.tick_int, spec.price_decimals)
            lot = format_fixed(spec.lot_int, spec.size_decimals)
            symbols.append(
                {
                    "symbol": spec.name,
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "isSpotTradingAllowed": True,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": tick,
                            "maxPrice": "1000000.00000000",
                            "tickSize": tick,
                        },
                        {"filterType": "LOT_SIZE", "minQty": lot, "maxQty": "9000.00000000", "stepSize": lot},
                    ],
                }
            )
        return {"timezone": "UTC", "serverTime": 0, "rateLimits": [], "exchangeFilters": [], "symbols": symbols}


def serve(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    duration_s: float | None = None,
    *,
    max_pending: int = DEFAULT_MAX_PENDING,
    stamp_send: bool | None = None,
) -> None:
    """Run the simulated exchange in the calling thread until ``stop`` is set or ``duration_s`` elapses.

    ``on_ready(actual_port)`` is called once, from the server's event loop, as soon as the socket listens
    (``port=0`` picks a free port). Blocks; to run it in the background use :func:`start_in_thread`.
    ``stamp_send``: see the module docstring (None: from ``HFT_SIM_STAMP_SEND``).
    """
    exchange = SimExchange(config, max_pending=max_pending, stamp_send=stamp_send)
    asyncio.run(exchange.run(host, port, on_ready=on_ready, stop=stop, duration_s=duration_s))


class SimServerThread:
    """Handle of a server started by :func:`start_in_thread`: its port, its exchange and a way to stop it."""

    def __init__(
        self,
        thread: threading.Thread,
        port: int,
        stop_event: threading.Event,
        host: str = "127.0.0.1",
        exchange: SimExchange | None = None,
    ) -> None:
        self.thread = thread
        self.port = port
        self.stop_event = stop_event
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.exchange = exchange

    @property
    def ws_url(self) -> str:
        """Base URL of the combined stream endpoint (append ``?streams=...``)."""
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def http_url(self) -> str:
        """Base URL of the REST API."""
        return f"http://{self.host}:{self.port}"

    def inject(self, fault: Fault | dict[str, Any], timeout: float = INJECT_TIMEOUT_S) -> dict[str, Any]:
        """Inject ``fault`` from the calling thread and return its ack (see :meth:`SimExchange.inject`)."""
        if self.exchange is None:
            raise RuntimeError("this handle has no exchange; start the server with start_in_thread")
        return self.exchange.inject(fault, timeout)

    def stats(self, timeout: float = INJECT_TIMEOUT_S) -> dict[str, Any]:
        """Return the ``GET /sim/stats`` body, read consistently from the server's loop."""
        if self.exchange is None:
            raise RuntimeError("this handle has no exchange; start the server with start_in_thread")
        return self.exchange.stats_snapshot(timeout)

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the server to stop and wait for its thread; return whether it ended within ``timeout``."""
        self.stop_event.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()


def start_in_thread(
    config: SimConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 10.0,
    *,
    max_pending: int = DEFAULT_MAX_PENDING,
    stamp_send: bool | None = None,
) -> SimServerThread:
    """Start the exchange in a daemon thread and return once it listens: the test and bench entry point."""
    ready: list[int] = []
    listening = threading.Event()
    stop_event = threading.Event()
    failure: list[BaseException] = []
    exchange = SimExchange(config, max_pending=max_pending, stamp_send=stamp_send)

    def on_ready(actual_port: int) -> None:
        ready.append(actual_port)
        listening.set()

    def target() -> None:
        try:
            asyncio.run(exchange.run(host, port, on_ready=on_ready, stop=stop_event))
        except Exception as exc:  # reported to the caller below, not swallowed
            failure.append(exc)
            listening.set()

    thread = threading.Thread(target=target, name="sim-exchange", daemon=True)
    thread.start()
    if not listening.wait(timeout) or not ready:
        stop_event.set()
        raise RuntimeError(f"sim-exchange did not start: {failure[0] if failure else 'timeout'}")
    return SimServerThread(thread, ready[0], stop_event, host, exchange)


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser, so ``hft sim-exchange`` can reuse or extend it."""
    defaults = SimConfig()
    parser = argparse.ArgumentParser(
        prog="hft sim-exchange",
        description="Deterministic Binance-compatible market-data simulator on loopback (WebSocket + REST, one port).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port, 0 picks a free one (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="SimConfig as a .json or .toml file (any field, custom symbols, scheduled faults); "
        "the options below override it",
    )
    parser.add_argument(
        "--volatility",
        choices=sorted(VOLATILITY_PRESETS),
        default=None,
        help="volatility regime preset (default normal); explicit fields in --config override it",
    )
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default {defaults.seed})")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"order-flow events per second, all symbols (default {defaults.events_per_second:g})",
    )
    parser.add_argument(
        "--symbols",
        default=None,
        help="comma-separated built-in symbols (default BTCUSDT,ETHUSDT); custom symbols go in --config",
    )
    parser.add_argument(
        "--depth-interval-ms",
        type=int,
        default=None,
        help=f"depth frame cadence, 0 = one frame per event (default {defaults.depth_interval_ms})",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="AT_S:KIND[,KEY=VALUE...]",
        help="schedule a fault, e.g. '2.5:stall,ms=300' or '4:drop_connection,mode=close' (repeatable); "
        f"kinds: {', '.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_MAX_PENDING,
        help=f"frames queued for one client before it is dropped as too slow (default {DEFAULT_MAX_PENDING})",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: run until SIGINT/SIGTERM)"
    )
    parser.add_argument("--port-file", default=None, help="write the listening port to this file once ready")
    parser.add_argument(
        "--stamp-send",
        action="store_true",
        default=None,
        help=f'add "sim_send_ns" (CLOCK_MONOTONIC at the socket write) to each frame (also {SEND_STAMP_ENV}=1)',
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build the SimConfig of a CLI run: preset, then the --config file, then the individual options."""
    fields: dict[str, Any] = {}
    if args.volatility is not None:
        fields.update(VOLATILITY_PRESETS[args.volatility])
    if args.config is not None:
        path = Path(args.config)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read --config {path}: {exc.strerror}") from None
        try:
            loaded = tomllib.loads(raw.decode()) if path.suffix == ".toml" else msgspec.json.decode(raw)
        except (ValueError, msgspec.DecodeError) as exc:
            raise ValueError(f"--config {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {path} must hold an object of SimConfig fields")
        fields.update(loaded)
    if args.symbols is not None:
        fields["symbols"] = [
            msgspec.to_builtins(symbol_by_name(name)) for name in args.symbols.split(",") if name.strip()
        ]
    for field, value in (
        ("seed", args.seed),
        ("events_per_second", args.rate),
        ("depth_interval_ms", args.depth_interval_ms),
    ):
        if value is not None:
            fields[field] = value
    if args.fault:
        scheduled = [msgspec.to_builtins(fault_from_spec(spec)) for spec in args.fault]
        fields["faults"] = [*fields.get("faults", []), *scheduled]
    try:
        return msgspec.convert(fields, type=SimConfig)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")
    if args.max_pending < 1:
        parser.error("--max-pending must be >= 1")

    stop = threading.Event()

    def on_ready(port: int) -> None:
        if args.port_file:
            _write_port_file(args.port_file, port)
        print(
            f"sim-exchange listening on ws://{args.host}:{port}/stream and http://{args.host}:{port}/api/v3/depth",
            flush=True,
        )

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda _signum, _frame: stop.set())
    try:
        serve(
            config,
            args.host,
            args.port,
            on_ready=on_ready,
            stop=stop,
            duration_s=args.duration,
            max_pending=args.max_pending,
            stamp_send=args.stamp_send,
        )
    except OSError as exc:
        print(f"sim-exchange: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
