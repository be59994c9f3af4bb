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
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from hft.sim.config import SimConfig, default_symbols, symbol_by_name
from hft.sim.model import OrderFlowModel, format_fixed

__all__ = ["DEFAULT_PORT", "SimExchange", "SimServerThread", "SimStats", "main", "serve", "start_in_thread"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
TICK_S = 0.005  # producer cadence: trades and bookTickers leave at most this late
MAX_STEP_NS = 1_000_000_000  # the producer never generates more than 1 s of virtual time in one tick
DEFAULT_MAX_PENDING = 50_000  # frames queued for one client before it is disconnected as too slow
CLOSE_TIMEOUT_S = 0.5  # wait this long for a client's close frame before dropping the TCP connection
SEND_BATCH = 256  # frames written to a socket per drain

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


class _Client:
    """One WebSocket subscriber: its subscriptions, its backlog and the event that wakes its sender."""

    __slots__ = ("closing", "names", "pending", "raw", "routes", "wake", "ws")

    def __init__(self, ws: ServerConnection, raw: bool, names: list[str], model: OrderFlowModel) -> None:
        self.ws = ws
        self.raw = raw
        self.names: list[str] = []
        self.routes: dict[str, list[bytes] | None] = {}
        self.pending: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closing = False
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


class SimExchange:
    """The server state: one model, the connected clients and the producer that feeds them.

    Everything runs in one asyncio event loop; create it and call :meth:`run` from that loop's thread.
    """

    def __init__(self, config: SimConfig, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.config = config
        self.model = OrderFlowModel(config)
        self.stats = SimStats()
        self.port: int | None = None
        self._max_pending = max_pending
        self._clients: set[_Client] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._exchange_info = self._build_exchange_info()

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
        async with ws_serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
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
        log.info("sim-exchange stopped: %s", self.stats)

    @staticmethod
    def _bound_port(server: Server) -> int:
        return int(server.sockets[0].getsockname()[1])

    async def _produce(self, stop: threading.Event | None, duration_s: float | None) -> None:
        """Advance the model by the real time elapsed every ``TICK_S`` and fan the frames out."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = None if duration_s is None else start + duration_s
        model = self.model
        slip = 0
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            if (stop is not None and stop.is_set()) or (deadline is not None and now >= deadline):
                return
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

    # ------------------------------------------------------------------ fan-out

    def _broadcast(self, msgs: list[tuple[str, bytes]]) -> None:
        """Queue ``msgs`` to every subscriber; drop the clients whose backlog would exceed ``max_pending``."""
        self.stats.frames_generated += len(msgs)
        for client in tuple(self._clients):
            frames = client.frames_for(msgs)
            if not frames:
                continue
            if len(client.pending) + len(frames) > self._max_pending:
                self._drop_slow(client)
                continue
            client.pending.extend(frames)
            self.stats.frames_queued += len(frames)
            client.wake.set()

    def _drop_slow(self, client: _Client) -> None:
        self.stats.slow_disconnects += 1
        self._clients.discard(client)
        client.closing = True
        client.pending.clear()
        client.wake.set()
        task = asyncio.get_running_loop().create_task(self._close(client.ws, 1008, "slow consumer"))
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
        with contextlib.suppress(ConnectionClosed, OSError):
            while not client.closing:
                await client.wake.wait()
                client.wake.clear()
                while pending and not client.closing:
                    batch = [pending.popleft() for _ in range(min(len(pending), SEND_BATCH))]
                    await _send_text_frames(ws, batch)
                    self.stats.frames_sent += len(batch)

    async def _handler(self, ws: ServerConnection) -> None:
        raw, names = getattr(ws, "sim_subscription", (False, []))
        client = _Client(ws, raw, names, self.model)
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

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        """Route a request: WebSocket paths proceed to the upgrade, REST paths get an HTTP answer here."""
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

    def _rest_depth(self, query: dict[str, list[str]]) -> Response:
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
        return _json_response(200, self.model.depth_snapshot(symbol, int(limit_text)))

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
) -> None:
    """Run the simulated exchange in the calling thread until ``stop`` is set or ``duration_s`` elapses.

    ``on_ready(actual_port)`` is called once, from the server's event loop, as soon as the socket listens
    (``port=0`` picks a free port). Blocks; to run it in the background use :func:`start_in_thread`.
    """
    exchange = SimExchange(config)
    asyncio.run(exchange.run(host, port, on_ready=on_ready, stop=stop, duration_s=duration_s))


class SimServerThread:
    """Handle of a server started by :func:`start_in_thread`: its port and a way to stop it."""

    def __init__(
        self, thread: threading.Thread, port: int, stop_event: threading.Event, host: str = "127.0.0.1"
    ) -> None:
        self.thread = thread
        self.port = port
        self.stop_event = stop_event
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host

    @property
    def ws_url(self) -> str:
        """Base URL of the combined stream endpoint (append ``?streams=...``)."""
        return f"ws://{self.host}:{self.port}/stream"

    @property
    def http_url(self) -> str:
        """Base URL of the REST API."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the server to stop and wait for its thread; return whether it ended within ``timeout``."""
        self.stop_event.set()
        self.thread.join(timeout)
        return not self.thread.is_alive()


def start_in_thread(
    config: SimConfig, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
) -> SimServerThread:
    """Start :func:`serve` in a daemon thread and return once it listens: the test and bench entry point."""
    ready: list[int] = []
    listening = threading.Event()
    stop_event = threading.Event()
    failure: list[BaseException] = []

    def on_ready(actual_port: int) -> None:
        ready.append(actual_port)
        listening.set()

    def target() -> None:
        try:
            serve(config, host, port, on_ready=on_ready, stop=stop_event)
        except Exception as exc:  # reported to the caller below, not swallowed
            failure.append(exc)
            listening.set()

    thread = threading.Thread(target=target, name="sim-exchange", daemon=True)
    thread.start()
    if not listening.wait(timeout) or not ready:
        stop_event.set()
        raise RuntimeError(f"sim-exchange did not start: {failure[0] if failure else 'timeout'}")
    return SimServerThread(thread, ready[0], stop_event, host)


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    """Return the CLI parser, so ``hft sim-exchange`` can reuse or extend it."""
    parser = argparse.ArgumentParser(
        prog="hft sim-exchange",
        description="Deterministic Binance-compatible market-data simulator on loopback (WebSocket + REST, one port).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port, 0 picks a free one (default {DEFAULT_PORT})"
    )
    parser.add_argument("--seed", type=int, default=SimConfig().seed, help="random seed (default 7)")
    parser.add_argument(
        "--rate",
        type=float,
        default=SimConfig().events_per_second,
        help="order-flow events per second, all symbols (default 2000)",
    )
    parser.add_argument(
        "--symbols",
        default=",".join(s.name for s in default_symbols()),
        help="comma-separated built-in symbols (default BTCUSDT,ETHUSDT)",
    )
    parser.add_argument(
        "--depth-interval-ms",
        type=int,
        default=SimConfig().depth_interval_ms,
        help="depth frame cadence, 0 = one frame per event (default 100)",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: run until SIGINT/SIGTERM)"
    )
    parser.add_argument("--port-file", default=None, help="write the listening port to this file once ready")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        symbols = [symbol_by_name(name) for name in args.symbols.split(",") if name.strip()]
        config = SimConfig(
            symbols=symbols,
            seed=args.seed,
            events_per_second=args.rate,
            depth_interval_ms=args.depth_interval_ms,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be > 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")

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
        serve(config, args.host, args.port, on_ready=on_ready, stop=stop, duration_s=args.duration)
    except OSError as exc:
        print(f"sim-exchange: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
