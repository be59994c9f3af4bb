"""Faults on demand against a live server: what a correct Binance client observes for each one.

Every test starts its own server (faults are server-wide state) with 20 ms depth frames so that a few frames
arrive quickly, connects a websocket-client, injects the fault through ``/sim/fault`` and checks the outcome.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hft.sim.config import SimConfig
from hft.sim.faults import DropConnection, FaultError, ScheduledFault, SkipUpdates, Stall
from hft.sim.localbook import BookGapError, LocalBook
from hft.sim.server import SimServerThread, main, start_in_thread
from tests.unit.sim._client import (
    buffer_depth,
    connect,
    fault,
    http,
    malformed_reason,
    next_depth,
    read_until_closed,
    recv_json,
    sync,
)

SYMBOLS = {"BTCUSDT", "ETHUSDT"}


def _book() -> LocalBook:
    spec = SimConfig().symbols[0]
    return LocalBook(spec.price_decimals, spec.size_decimals)


@pytest.fixture
def server() -> Iterator[SimServerThread]:
    handle = start_in_thread(SimConfig(seed=11, depth_interval_ms=20))
    yield handle
    assert handle.stop(timeout=5.0)


# ---------------------------------------------------------------------------------------------- drop_connection


@pytest.mark.parametrize(("mode", "expected"), [("abort", ("lost", None)), ("reset", ("lost", None))])
def test_drop_connection_abort_then_closed_without_close_frame_and_reconnect_resyncs(
    server: SimServerThread, mode: str, expected: tuple[str, int | None]
) -> None:
    ws = connect(server.ws_url, "btcusdt@depth")
    try:
        sync(server.http_url, ws, _book(), "BTCUSDT")
        ack = fault(server.http_url, kind="drop_connection", mode=mode)
        assert ack["clients"] == [1]
        assert read_until_closed(ws) == expected
    finally:
        ws.close()
    again = connect(server.ws_url, "btcusdt@depth")
    try:
        book = _book()
        sync(server.http_url, again, book, "BTCUSDT")
        bid, _, ask, _ = book.touch()
        assert book.applied >= 2 and bid < ask
        stats = server.stats()
        assert stats["fault_disconnects"] == 1 and stats["connections"] == 2
        assert [c["id"] for c in stats["clients"]] == [2]
    finally:
        again.close()


def test_drop_connection_close_then_close_frame_1001(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "btcusdt@depth")
    try:
        next_depth(ws, "BTCUSDT")
        fault(server.http_url, kind="drop_connection", mode="close")
        assert read_until_closed(ws) == ("close", 1001)
    finally:
        ws.close()


def test_drop_connection_of_one_client_then_the_other_keeps_a_contiguous_stream(server: SimServerThread) -> None:
    first = connect(server.ws_url, "btcusdt@depth")
    second = connect(server.ws_url, "btcusdt@depth")
    try:
        ids = {c["id"] for c in server.stats()["clients"]}
        assert ids == {1, 2}
        assert fault(server.http_url, kind="drop_connection", client=1)["clients"] == [1]
        assert read_until_closed(first)[0] == "lost"
        previous = next_depth(second, "BTCUSDT")
        for _ in range(3):
            data = next_depth(second, "BTCUSDT")
            assert data["U"] == previous["u"] + 1
            previous = data
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------------------------------------- skip_updates


def test_skip_updates_then_client_detects_u_gap_and_resync_succeeds(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "btcusdt@depth/ethusdt@depth")
    try:
        book = _book()
        sync(server.http_url, ws, book, "BTCUSDT")
        eth_previous = next_depth(ws, "ETHUSDT")
        ack = fault(server.http_url, kind="skip_updates", symbol="BTCUSDT", frames=2)
        assert ack["streams"] == ["btcusdt@depth"]
        before = book.last_update_id
        with pytest.raises(BookGapError):
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                msg = recv_json(ws)
                data = msg["data"]
                if data["s"] == "ETHUSDT":  # the other symbol is untouched
                    assert data["U"] == eth_previous["u"] + 1
                    eth_previous = data
                else:
                    before = book.last_update_id
                    book.on_diff(data)
        assert data["U"] > before + 1  # a hole of whole frames
        book = _book()  # resync on the same connection
        sync(server.http_url, ws, book, "BTCUSDT")
        assert book.applied >= 2
        assert server.stats()["frames_skipped"] == 2
    finally:
        ws.close()


def test_skip_updates_for_one_client_then_only_that_client_sees_a_gap(server: SimServerThread) -> None:
    hit = connect(server.ws_url, "btcusdt@depth")
    spared = connect(server.ws_url, "btcusdt@depth")
    try:
        hit_prev, spared_prev = next_depth(hit, "BTCUSDT"), next_depth(spared, "BTCUSDT")
        fault(server.http_url, kind="skip_updates", symbol="BTCUSDT", frames=1, client=1)
        gaps = 0
        for _ in range(4):
            data = next_depth(hit, "BTCUSDT")
            gaps += data["U"] != hit_prev["u"] + 1
            hit_prev = data
        while spared_prev["u"] < hit_prev["u"]:
            data = next_depth(spared, "BTCUSDT")
            assert data["U"] == spared_prev["u"] + 1
            spared_prev = data
        assert gaps == 1
    finally:
        hit.close()
        spared.close()


# ---------------------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize("transport", ["post", "get"])
def test_malformed_mixed_then_exactly_n_bad_frames_and_normal_chain_intact(
    server: SimServerThread, transport: str
) -> None:
    count = 9  # "mixed" cycles the 7 variants, then starts again
    ws = connect(server.ws_url, "btcusdt@depth")
    try:
        previous = next_depth(ws, "BTCUSDT")
        if transport == "post":
            ack = fault(server.http_url, kind="malformed", count=count, variant="mixed")
        else:
            status, ack = http(f"{server.http_url}/sim/fault?kind=malformed&count={count}&variant=mixed")
            assert status == 200
        assert ack["clients"] == [1]
        reasons: list[str] = []
        normal = 0
        while normal < count + 3:
            message = ws.recv()
            reason = malformed_reason(message, SYMBOLS)
            if reason is not None:
                reasons.append(reason)
                continue
            data = json.loads(message)["data"]
            assert data["U"] == previous["u"] + 1  # no normal frame lost, none duplicated
            previous = data
            normal += 1
        assert len(reasons) == count
        assert {"invalid JSON", "bad decimal", "unknown symbol", "too large"} <= set(reasons)
        assert server.stats()["malformed_frames"] == count
    finally:
        ws.close()


def test_malformed_interleaved_then_each_bad_frame_precedes_a_normal_one(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "btcusdt@depth/btcusdt@trade")
    try:
        next_depth(ws, "BTCUSDT")
        fault(server.http_url, kind="malformed", count=3, variant="negative_size")
        kinds: list[str] = []
        while kinds.count("normal-depth") < 4:
            message = ws.recv()
            if malformed_reason(message, SYMBOLS) is not None:
                kinds.append("bad")
            elif json.loads(message)["data"]["e"] == "depthUpdate":
                kinds.append("normal-depth")
        assert kinds[:6] == ["bad", "normal-depth"] * 3  # malformed copies go to the depth stream only
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------- stale_snapshot


def test_stale_snapshot_then_client_detects_it_and_refetch_syncs(server: SimServerThread) -> None:
    while server.stats()["virtual_ns"] < 400_000_000:  # let some history build up before connecting
        time.sleep(0.05)
    ws = connect(server.ws_url, "btcusdt@depth")
    try:
        book = _book()
        buffer_depth(ws, book, "BTCUSDT", 0.15)
        fault(server.http_url, kind="stale_snapshot", requests=1, age_ms=1000)
        status, stale = http(f"{server.http_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert status == 200 and set(stale) == {"lastUpdateId", "bids", "asks"}
        with pytest.raises(BookGapError, match="older than the first buffered event"):
            book.on_snapshot(stale)
        buffer_depth(ws, book, "BTCUSDT", 0.05)
        status, fresh = http(f"{server.http_url}/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert fresh["lastUpdateId"] > stale["lastUpdateId"]
        book.on_snapshot(fresh)
        while book.applied < 2:
            book.on_diff(next_depth(ws, "BTCUSDT"))
        assert server.stats()["stale_snapshots"] == 1
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------- stall


def test_stall_then_gap_in_arrival_times_and_burst_without_lost_frame(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "btcusdt@depth")
    try:
        previous = next_depth(ws, "BTCUSDT")
        server.inject({"kind": "stall", "ms": 300})  # the Python API, from this (another) thread
        arrivals: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < 0.6:
            data = next_depth(ws, "BTCUSDT")
            arrivals.append(time.monotonic())
            assert data["U"] == previous["u"] + 1
            previous = data
        gaps = [b - a for a, b in zip([started, *arrivals], arrivals, strict=False)]
        longest = max(range(len(gaps)), key=gaps.__getitem__)
        assert gaps[longest] >= 0.25
        burst = arrivals[longest : longest + 8]
        assert len(burst) == 8 and burst[-1] - burst[0] < 0.05  # the queued frames arrive together
        assert server.stats()["stalls"] == 1
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------- slow_rest


def test_slow_rest_then_next_snapshot_delayed_and_still_syncs(server: SimServerThread) -> None:
    url = f"{server.http_url}/api/v3/depth?symbol=BTCUSDT&limit=1000"
    started = time.monotonic()
    assert http(url)[0] == 200
    assert time.monotonic() - started < 0.3
    ws = connect(server.ws_url, "btcusdt@depth")
    try:
        book = _book()
        buffer_depth(ws, book, "BTCUSDT", 0.05)
        fault(server.http_url, kind="slow_rest", ms=400, requests=1)
        started = time.monotonic()
        status, snapshot = http(url)
        assert status == 200 and time.monotonic() - started >= 0.38
        book.on_snapshot(snapshot)  # taken on arrival, delivered late: still inside the buffered range
        while book.applied < 2:
            book.on_diff(next_depth(ws, "BTCUSDT"))
        started = time.monotonic()
        assert http(url)[0] == 200
        assert time.monotonic() - started < 0.3  # only the next request was slow
        assert server.stats()["slow_rest_responses"] == 1
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------- control plane


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"kind": "explode"}, "fault kinds are drop_connection"),
        ({"ms": 3}, "missing required field `kind`"),
        ({"kind": "stall"}, "missing required field `ms`"),
        ({"kind": "stall", "ms": 300, "extra": 1}, "unknown field `extra`"),
        ({"kind": "stall", "ms": -5}, "ms must be an int"),
        ({"kind": "malformed", "variant": "spicy"}, "variant"),
        ({"kind": "drop_connection", "client": 99}, "no open client with id 99"),
        ({"kind": "skip_updates", "symbol": "DOGEUSDT"}, "unknown symbol 'DOGEUSDT'"),
        (b"{not json", "malformed"),
    ],
)
def test_bad_fault_request_then_400_with_clear_error(
    server: SimServerThread, body: dict[str, object] | bytes, fragment: str
) -> None:
    status, reply = http(f"{server.http_url}/sim/fault", body)
    assert status == 400 and reply["ok"] is False
    assert fragment in reply["error"]
    stats = server.stats()
    assert stats["fault_errors"] == 1 and stats["faults_injected"] == {}


def test_unknown_kind_by_query_then_400_and_kinds_listed(server: SimServerThread) -> None:
    status, reply = http(f"{server.http_url}/sim/fault?kind=meteor")
    assert status == 400
    assert reply["kinds"] == ["drop_connection", "skip_updates", "malformed", "stale_snapshot", "stall", "slow_rest",
                              "rest_error"]
    assert http(f"{server.http_url}/sim/fault")[0] == 400
    assert http(f"{server.http_url}/sim/nothing")[0] == 404


def test_stats_after_faults_then_counts_by_kind_clients_and_frames(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "ethusdt@depth/ethusdt@trade")
    try:
        next_depth(ws, "ETHUSDT")
        fault(server.http_url, kind="stall", ms=20)
        fault(server.http_url, kind="stall", ms=20)
        fault(server.http_url, kind="slow_rest", ms=10, requests=2)
        server.inject(SkipUpdates(symbol="ETHUSDT"))
        status, stats = http(f"{server.http_url}/sim/stats")
        assert status == 200
        assert stats["faults_injected"] == {"stall": 2, "slow_rest": 1, "skip_updates": 1}
        assert stats["clients"][0]["id"] == 1
        assert stats["clients"][0]["streams"] == ["ethusdt@depth", "ethusdt@trade"]
        assert stats["clients"][0]["frames_sent"] >= 1 and stats["frames_sent"] >= 1
        assert stats["open_connections"] == 1 and stats["model_events"] > 0
        assert stats["control_requests"] == 4  # three faults and this stats request
    finally:
        ws.close()


def test_inject_from_python_then_thread_safe_acks_and_errors(server: SimServerThread) -> None:
    acks: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: acks.append(server.inject(Stall(ms=1)))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(acks) == 8 and all(a["ok"] for a in acks)
    assert server.stats()["faults_injected"] == {"stall": 8}
    with pytest.raises(FaultError, match="no open client"):
        server.inject({"kind": "stall", "ms": 5, "client": 42})
    with pytest.raises(FaultError, match="fault kinds are"):
        server.inject({"kind": "nope"})


def test_post_with_expect_continue_then_body_read_and_applied(server: SimServerThread) -> None:
    body = json.dumps({"kind": "stall", "ms": 5}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /sim/fault HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["fault"] == {"kind": "stall", "ms": 5, "client": None}


# ---------------------------------------------------------------------------------------------- scheduled faults


def test_scheduled_drop_then_fires_at_its_time() -> None:
    config = SimConfig(
        depth_interval_ms=20,
        faults=[
            ScheduledFault(at_s=0.6, fault=DropConnection(mode="close")),  # listed out of order on purpose
            ScheduledFault(at_s=0.4, fault=SkipUpdates(symbol="BTCUSDT")),
        ],
    )
    started = time.monotonic()
    handle = start_in_thread(config)
    ws = connect(handle.ws_url, "btcusdt@depth")
    try:
        previous = next_depth(ws, "BTCUSDT")
        gap_at = None
        while gap_at is None:
            data = next_depth(ws, "BTCUSDT")
            if data["U"] != previous["u"] + 1:
                gap_at = time.monotonic() - started
            previous = data
        assert read_until_closed(ws) == ("close", 1001)
        closed_at = time.monotonic() - started
        assert 0.38 <= gap_at < 0.6 and 0.58 <= closed_at < 1.0
        stats = handle.stats()
        assert stats["faults_injected"] == {"skip_updates": 1, "drop_connection": 1}
    finally:
        ws.close()
        assert handle.stop(timeout=5.0)


def test_cli_fault_option_then_scheduled_fault_fires(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "sim.json"
    config_file.write_text(json.dumps({"seed": 5, "faults": [{"at_s": 0.05, "fault": {"kind": "slow_rest", "ms": 5}}]}))
    with caplog.at_level(logging.INFO, logger="hft.sim.server"):
        code = main(
            [
                *("--port", "0", "--duration", "0.3", "--config", str(config_file)),
                *("--fault", "0.1:stall,ms=20", "--volatility", "calm"),
            ]
        )
    assert code == 0
    applied = [r.getMessage() for r in caplog.records if "scheduled fault" in r.getMessage()]
    assert len(applied) == 2
    assert "'kind': 'slow_rest'" in applied[0] and "'kind': 'stall', 'ms': 20" in applied[1]
    assert "listening" in capsys.readouterr().out


def test_cli_bad_fault_spec_then_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--fault", "1:meteor"])
    assert info.value.code == 2
    assert "fault kinds are" in capsys.readouterr().err


def test_websocket_client_default_then_receives_huge_frame_intact(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "btcusdt@trade")
    try:
        recv_json(ws)
        fault(server.http_url, kind="malformed", variant="huge", huge_bytes=3_000_000)
        message = ws.recv()
        while len(message) < 1_000_000:
            message = ws.recv()
        assert len(message) == 3_000_000 and json.loads(message)["data"]["e"] == "trade"
    finally:
        ws.close()


def test_per_client_fault_on_stream_not_subscribed_then_400(server: SimServerThread) -> None:
    ws = connect(server.ws_url, "btcusdt@trade")
    try:
        recv_json(ws)
        status, reply = http(f"{server.http_url}/sim/fault", {"kind": "skip_updates", "client": 1})
        assert status == 400 and "subscribes to no depth stream" in reply["error"]
        status, reply = http(f"{server.http_url}/sim/fault", {"kind": "malformed", "client": 1, "symbol": "ETHUSDT"})
        assert status == 400 and "subscribes to no stream" in reply["error"]
    finally:
        ws.close()
