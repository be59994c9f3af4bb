"""Smoke test of ``bench/tick_to_trade.py --quick`` (every section of the JSON report), and of the opt-in wire
clock it relies on (simulator send stamp -> feed capture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from hft.feed import wireclock
from hft.feed.engine import STAT_FAST_FRAMES, STAT_MALFORMED, FeedEngine, SymbolSpec
from hft.sim import server

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "tick_to_trade.py"
# ~30 s with a warm numba cache; a cold cache (any source file changed) first compiles every jitted loop
TIMEOUT_S = 600

DEPTH = (
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723075200000,"s":"BTCUSDT","U":11,"u":12,'
    b'"b":[["60000.00","1.00000000"]],"a":[["60000.01","2.00000000"]]}}'
)


def _segments(prefix: str) -> set[str]:
    try:
        return {name for name in os.listdir("/dev/shm") if name.startswith(prefix)}
    except FileNotFoundError:
        return set()


def test_stamped_frame_when_decoded_then_fast_path_takes_it_and_the_stamp_reads_back() -> None:
    assert wireclock.SEND_STAMP_KEY == server.SEND_STAMP_KEY  # the two sides agree on the key
    assert wireclock.SEND_STAMP_DIGITS == server.SEND_STAMP_DIGITS
    blank = server.stamp_slot(DEPTH)
    sent, slots = server.stamp_slots([b"\x81\x7e" + blank, b"\x81\x05hello"])
    server.write_stamps(sent, slots, 123_456_789_012)
    assert len(slots) == 1 and sent.endswith(b"\x81\x05hello")
    sent = bytes(sent[: -7])
    frame = sent[2:]
    assert len(frame) == len(blank)
    assert wireclock.send_stamp(frame) == 123_456_789_012
    assert wireclock.send_stamp(blank) == -1  # an unwritten slot is no stamp
    assert wireclock.send_stamp(DEPTH) == -1
    plain, stamped = (FeedEngine([SymbolSpec("BTCUSDT", 0, 2, 8)]) for _ in range(2))
    snapshot = b'{"lastUpdateId":10,"bids":[["59999.00","1.0"]],"asks":[["60001.00","1.0"]]}'
    plain.on_snapshot("BTCUSDT", snapshot, 1)
    stamped.on_snapshot("BTCUSDT", snapshot, 1)
    n_plain = plain.on_frame(DEPTH, 5)
    n_stamped = stamped.on_frame(frame, 5)
    assert n_plain == n_stamped == 2
    assert np.array_equal(plain.events[:n_plain], stamped.events[:n_stamped])
    assert stamped.stats[STAT_FAST_FRAMES] == plain.stats[STAT_FAST_FRAMES] == 1  # not pushed to msgspec
    assert stamped.stats[STAT_MALFORMED] == 0


def test_wire_clock_capture_when_wrapped_then_reads_after_publish_and_dumps_pairs(tmp_path: Path) -> None:
    capture = wireclock.WireClockCapture(tmp_path, capacity=16)
    calls: list[str] = []

    def on_frame(raw: bytes, ts_recv: int) -> int:
        calls.append("frame")
        return 1

    def publish(n: int, ts_recv: int, ts_decoded: int) -> None:
        calls.append(f"publish {capture.count}")  # nothing captured yet when the frame is published

    on_frame_c, publish_c = capture.wrap(on_frame, publish, lambda: 50)  # the socket read's return time
    stamped, slots = server.stamp_slots([server.stamp_slot(DEPTH)])
    server.write_stamps(stamped, slots, 777)
    frame = bytes(stamped)
    for ts in range(100, 140):
        on_frame_c(frame, ts)
        publish_c(1, ts, ts + 1)
    publish_c(3, 999, 1000)  # a snapshot publication: no frame to capture
    assert calls[:4] == ["frame", "publish 0", "frame", "publish 1"]
    assert capture.count == 40  # grew past its initial capacity
    path = capture.dump()
    assert path is not None and path.name == f"wireclock-{os.getpid()}.npy"
    pairs = wireclock.load_wire_clock(tmp_path)
    assert pairs.shape == (40, len(wireclock.COLUMNS))
    assert pairs[0, :3].tolist() == [100, 777, 50] and pairs[-1, :3].tolist() == [139, 777, 50]
    assert (pairs[:, 3] > 1000).all()  # published: stamped after publish returned, on CLOCK_MONOTONIC


def test_tick_to_trade_bench_when_quick_then_json_has_every_section() -> None:
    before = _segments("hft.ttbench") | _segments("hft.ttrun")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json-only"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nerr:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    assert report["benchmark"] == "tick_to_trade"
    for key in ("config", "machine", "pipeline", "replay", "baselines", "ratios", "targets",
                "highest_rate_without_overruns", "highest_rate_sustained_and_kept_up", "notes"):  # fmt: skip
        assert key in report, key

    (run,) = report["pipeline"]
    assert "error" not in run, run.get("error")
    assert run["source"] == "sim" and run["exit_code"] == 0
    for figure in ("frame_to_order_ns", "order_to_exec_ns", "tick_to_exec_ns", "feed_frame_to_publish_ns",
                   "md_hop_ns"):  # fmt: skip
        assert {"count", "p50", "p99", "p999"} <= set(run[figure]), figure
    assert run["frames"] > 0
    assert run["frame_to_order_ns"]["count"] == run["orders"]
    assert set(run["rings"]["md.events"]["consumers"]) == {"strategy", "broker"}
    for consumer in run["rings"]["md.events"]["consumers"].values():
        assert {"overruns", "lost"} <= set(consumer)
    for name in ("feed", "strategy", "broker", "persistence", "supervisor"):
        assert run["processes"][name]["vm_rss_mib"] > 0, name
        assert run["processes"][name]["vm_hwm_mib"] >= run["processes"][name]["vm_rss_mib"] * 0.5
    wire = run["wire"]
    assert wire["stamped_frames"] > 0
    assert wire["wire_to_receive_ns"]["count"] > 0 and wire["wire_to_receive_ns"]["min"] > 0
    if wire.get("orders_matched"):
        assert wire["wire_to_order_ns"]["p50"] >= wire["frame_to_order_ns"]["p50"]
        assert wire["published_to_order_ns"]["count"] == wire["orders_matched"]
    # the segments of wire -> order, every one measured, and the plain-socket floor beside them
    for segment in ("send_to_read_ns", "read_to_frame_ns", "frame_to_published_ns", "send_to_published_ns"):
        assert wire[segment]["count"] > 0 and wire[segment]["min"] >= 0, segment
    assert wire["send_to_published_ns"]["p50"] >= wire["send_to_read_ns"]["p50"]
    assert run["simulator"]["stamp_to_write_returned_ns"]["count"] > 0
    assert run["floor"]["send_to_read_ns"]["count"] > 0 and run["floor"]["mode"] == "block"
    assert run["feed_path_over_floor_plus_decode_p50"] > 0
    assert report["replay"] is not None  # run, or skipped with the reason

    for transport in ("ring", "faster_fifo", "mp_queue"):
        section = report["baselines"][transport]
        if "skipped" in section:
            continue
        assert "errors" not in section, section.get("errors")
        assert section["orders"] > 0
        for figure in ("frame_to_handoff_ns", "frame_to_order_ns", "frame_to_broker_ns", "handoff_to_order_ns"):
            assert 0 < section[figure]["p50"] <= section[figure]["p99"], (transport, figure)
        assert section["frame_to_broker_ns"]["p50"] >= section["frame_to_order_ns"]["p50"] * 0.5
    assert "mp_queue_over_ring_frame_to_order_p50" in report["ratios"]
    assert {"p50_below_10us", "p99_below_50us", "p50_10x_below_mp_queue"} <= set(report["targets"]["chain ring"])
    assert (_segments("hft.ttbench") | _segments("hft.ttrun")) <= before  # nothing left behind
