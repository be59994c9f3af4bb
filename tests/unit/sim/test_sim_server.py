"""The loopback server: a Binance-style client (websocket-client + urllib) syncs exactly; REST errors; shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from hft.sim.config import SimConfig
from hft.sim.localbook import LocalBook, parse_fixed
from hft.sim.server import SimExchange, SimServerThread, _Client, main, serve, start_in_thread

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server() -> Iterator[SimServerThread]:
    handle = start_in_thread(SimConfig(seed=21))
    yield handle
    assert handle.stop(timeout=5.0)


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _recv_json(ws: websocket.WebSocket) -> dict[str, Any]:
    message = ws.recv()
    assert isinstance(message, str)  # Binance sends text frames
    return json.loads(message)


def _sync_book(server: SimServerThread, ws: websocket.WebSocket, book: LocalBook, buffer_s: float) -> None:
    """Buffer diffs for ``buffer_s``, fetch the snapshot, then apply diffs until at least two are applied."""
    deadline = time.monotonic() + buffer_s
    while time.monotonic() < deadline:
        msg = _recv_json(ws)
        if msg["stream"] == "btcusdt@depth@100ms":
            book.on_diff(msg["data"])
    status, snapshot = _get(f"{server.http_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
    assert status == 200
    book.on_snapshot(snapshot)
    while book.applied < 2:
        msg = _recv_json(ws)
        if msg["stream"] == "btcusdt@depth@100ms":
            book.on_diff(msg["data"])


def test_binance_procedure_against_server_then_two_clients_agree_exactly(server: SimServerThread) -> None:
    streams = "btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade"
    early = websocket.create_connection(f"{server.ws_url}?streams={streams}", timeout=5)
    late = websocket.create_connection(f"{server.ws_url}?streams=btcusdt@depth@100ms", timeout=5)
    try:
        spec = SimConfig().symbols[0]
        book_early = LocalBook(spec.price_decimals, spec.size_decimals)
        book_late = LocalBook(spec.price_decimals, spec.size_decimals)
        kinds: set[str] = set()
        last_ticker: dict[str, Any] = {}

        # client 1: the documented procedure, snapshot after 0.25 s of buffering
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            msg = _recv_json(early)
            kinds.add(msg["stream"])
            if msg["stream"].endswith("@depth@100ms"):
                book_early.on_diff(msg["data"])
        status, snapshot = _get(f"{server.http_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert status == 200
        book_early.on_snapshot(snapshot)
        # client 2 buffers longer and syncs from a later snapshot
        _sync_book(server, late, book_late, buffer_s=0.15)
        # catch client 1 up to (at least) client 2, checking the book stays uncrossed
        while book_early.last_update_id < book_late.last_update_id:
            msg = _recv_json(early)
            kinds.add(msg["stream"])
            if msg["stream"].endswith("@depth@100ms"):
                book_early.on_diff(msg["data"])
                bid, _, ask, _ = book_early.touch()
                assert bid < ask
            elif msg["stream"].endswith("@bookTicker"):
                last_ticker = msg["data"]
        while book_late.last_update_id < book_early.last_update_id:
            msg = _recv_json(late)
            book_late.on_diff(msg["data"])

        assert book_early.last_update_id == book_late.last_update_id
        assert book_early.bids == book_late.bids and book_early.asks == book_late.asks
        assert len(book_early.bids) > 50 and book_early.applied > 3
        assert kinds == {"btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@trade"}
        assert parse_fixed(last_ticker["b"], 2) < parse_fixed(last_ticker["a"], 2)
    finally:
        early.close()
        late.close()


def test_depth_alias_and_raw_endpoint_then_same_frames_relabelled(server: SimServerThread) -> None:
    combined = websocket.create_connection(f"{server.ws_url}?streams=ethusdt@depth", timeout=5)
    raw = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws/ethusdt@depth@100ms", timeout=5)
    try:
        msg = _recv_json(combined)
        assert msg["stream"] == "ethusdt@depth" and msg["data"]["e"] == "depthUpdate"
        data = _recv_json(raw)
        while data["u"] < msg["data"]["u"]:
            data = _recv_json(raw)
        while msg["data"]["u"] < data["u"]:
            msg = _recv_json(combined)
        assert data == msg["data"]
    finally:
        combined.close()
        raw.close()


def test_subscribe_and_list_requests_then_binance_replies(server: SimServerThread) -> None:
    ws = websocket.create_connection(f"{server.ws_url}?streams=btcusdt@bookTicker", timeout=5)
    try:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 7}))
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@kline_1m"], "id": 8}))
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        replies: dict[int, dict[str, Any]] = {}
        streams: set[str] = set()
        deadline = time.monotonic() + 5
        # wait for both streams: under load one producer tick may carry an ethusdt trade before any btcusdt ticker
        while (len(replies) < 3 or len(streams) < 2) and time.monotonic() < deadline:
            msg = _recv_json(ws)
            if "id" in msg:
                replies[msg["id"]] = msg
            else:
                streams.add(msg["stream"])
        assert replies[7] == {"result": None, "id": 7}
        assert replies[8]["error"]["code"] == 2
        assert replies[9] == {"result": ["btcusdt@bookTicker", "ethusdt@trade"], "id": 9}
        assert streams == {"btcusdt@bookTicker", "ethusdt@trade"}
    finally:
        ws.close()


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("symbol=DOGEUSDT", 400, -1121),
        ("", 400, -1102),
        ("symbol=btcusdt", 400, -1100),
        ("symbol=BTCUSDT&limit=abc", 400, -1100),
        ("symbol=BTCUSDT&limit=0", 400, -1100),
    ],
)
def test_bad_depth_request_then_binance_error(server: SimServerThread, query: str, status: int, code: int) -> None:
    got_status, body = _get(f"{server.http_url}/api/v3/depth?{query}")
    assert (got_status, body["code"]) == (status, code)
    assert body["msg"]


def test_depth_limit_then_that_many_levels_and_default_100(server: SimServerThread) -> None:
    status, snap = _get(f"{server.http_url}/api/v3/depth?symbol=ETHUSDT&limit=5")
    assert status == 200 and len(snap["bids"]) == 5 and len(snap["asks"]) == 5
    assert parse_fixed(snap["bids"][0][0], 2) < parse_fixed(snap["asks"][0][0], 2)
    status, snap = _get(f"{server.http_url}/api/v3/depth?symbol=ETHUSDT")
    assert status == 200 and len(snap["bids"]) == 100


def test_exchange_info_then_tick_and_step_filters(server: SimServerThread) -> None:
    status, info = _get(f"{server.http_url}/api/v3/exchangeInfo")
    assert status == 200
    filters = {s["symbol"]: {f["filterType"]: f for f in s["filters"]} for s in info["symbols"]}
    assert filters["BTCUSDT"]["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["BTCUSDT"]["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["ETHUSDT"]["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert _get(f"{server.http_url}/api/v3/exchangeInfo?symbol=NOPE")[0] == 400
    assert _get(f"{server.http_url}/api/v3/ping") == (200, {})
    assert _get(f"{server.http_url}/api/v3/nothing")[0] == 404


@pytest.mark.parametrize("streams", ["btcusdt@kline_1m", "dogeusdt@trade", "btcusdt@trade/nonsense"])
def test_unknown_stream_then_handshake_rejected_with_400(server: SimServerThread, streams: str) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(f"{server.ws_url}?streams={streams}", timeout=5)
    assert info.value.status_code == 400


def test_stop_event_with_idle_client_then_server_thread_ends_within_2s() -> None:
    ports: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(SimConfig(),), kwargs={"on_ready": ports.append, "stop": stop})
    thread.start()
    deadline = time.monotonic() + 5
    while not ports and time.monotonic() < deadline:
        time.sleep(0.01)
    ws = websocket.create_connection(f"ws://127.0.0.1:{ports[0]}/stream?streams=btcusdt@trade", timeout=5)
    try:
        assert _recv_json(ws)["stream"] == "btcusdt@trade"
        started = time.monotonic()
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 2.0
    finally:
        ws.close()


def test_duration_elapsed_then_serve_returns() -> None:
    started = time.monotonic()
    serve(SimConfig(), duration_s=0.3)
    assert 0.3 <= time.monotonic() - started < 2.0


def test_client_backlog_over_limit_then_only_that_client_dropped() -> None:
    class FakeWs:
        def __init__(self) -> None:
            self.closed_with: tuple[int, str] | None = None

        async def close(self, code: int, reason: str) -> None:
            self.closed_with = (code, reason)

    async def scenario() -> tuple[SimExchange, FakeWs, FakeWs, _Client]:
        exchange = SimExchange(SimConfig(), max_pending=100)
        slow_ws, fast_ws = FakeWs(), FakeWs()
        slow = _Client(slow_ws, False, ["btcusdt@trade"], exchange.model)  # type: ignore[arg-type]
        fast = _Client(fast_ws, False, ["btcusdt@trade"], exchange.model)  # type: ignore[arg-type]
        exchange._clients.update({slow, fast})
        msgs = [("btcusdt@trade", b'{"stream":"btcusdt@trade","data":{}}')] * 60
        exchange._broadcast(msgs)
        fast.pending.clear()  # the fast client drains, the slow one does not
        exchange._broadcast(msgs)
        await asyncio.gather(*exchange._closers)
        return exchange, slow_ws, fast_ws, fast

    exchange, slow_ws, fast_ws, fast = asyncio.run(scenario())
    assert exchange.stats.slow_disconnects == 1
    assert slow_ws.closed_with == (1008, "slow consumer") and fast_ws.closed_with is None
    assert exchange._clients == {fast} and len(fast.pending) == 60


def test_cli_with_duration_then_prints_ready_line_and_writes_port_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port_file = tmp_path / "port"
    assert main(["--port", "0", "--duration", "0.3", "--port-file", str(port_file), "--symbols", "ETHUSDT"]) == 0
    port = int(port_file.read_text())
    line = capsys.readouterr().out.strip()
    assert line == f"sim-exchange listening on ws://127.0.0.1:{port}/stream and http://127.0.0.1:{port}/api/v3/depth"


def test_cli_bad_symbol_then_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--symbols", "NOPEUSDT"])
    assert info.value.code == 2


def test_cli_process_sigterm_then_exits_zero_without_traceback(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hft.sim.server", "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        port = int(port_file.read_text())
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/stream?streams=btcusdt@bookTicker", timeout=5)
        assert _recv_json(ws)["data"]["s"] == "BTCUSDT"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=3)
        ws.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert re.fullmatch(
        r"sim-exchange listening on ws://127\.0\.0\.1:\d+/stream and http://127\.0\.0\.1:\d+/api/v3/depth\n", out
    )
    assert "Traceback" not in err


def test_malformed_injected_twice_back_to_back_then_both_batches_are_sent() -> None:
    import json as _json
    import time as _time
    import urllib.request as _request

    import websocket as _websocket

    from hft.sim.config import SimConfig as _SimConfig
    from hft.sim.server import start_in_thread as _start

    server = _start(_SimConfig(events_per_second=1500.0))
    try:
        ws = _websocket.create_connection(f"{server.ws_url}?streams=btcusdt@depth@100ms/btcusdt@trade", timeout=5)
        _time.sleep(0.3)
        for variant in ("truncated", "unknown_symbol"):
            with _request.urlopen(f"{server.http_url}/sim/fault?kind=malformed&count=3&variant={variant}") as r:
                assert _json.loads(r.read())["ok"]
        bad, foreign = 0, 0
        deadline = _time.monotonic() + 3.0
        while _time.monotonic() < deadline and bad + foreign < 6:
            _, data = ws.recv_data()
            try:
                message = _json.loads(data)
            except ValueError:
                bad += 1
                continue
            foreign += message["stream"].startswith("zzz")
        ws.close()
        assert (bad, foreign) == (3, 3)
    finally:
        server.stop()
