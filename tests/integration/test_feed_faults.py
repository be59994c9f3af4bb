"""The whole pipeline against the simulator while faults are injected: the feed must count each, recover
(reconnect, resync) and the strategy must keep getting synced books afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hft.sim.config import SimConfig
from hft.sim.server import SimServerThread, start_in_thread
from tests.integration.test_pipeline import RUN_TIMEOUT_S, reading, wait_running


@pytest.fixture
def exchange() -> Iterator[SimServerThread]:
    server = start_in_thread(SimConfig(events_per_second=1500.0))
    yield server
    server.stop()


def inject(server: SimServerThread, **fault: object) -> dict:
    query = urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v for k, v in fault.items()})
    with urllib.request.urlopen(f"{server.http_url}/sim/fault?{query}", timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["ok"], answer
    return answer


def feed_counters(instance: str) -> dict:
    return reading(instance)["processes"]


def wait_for(instance: str, predicate, what: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes = feed_counters(instance)
        if predicate(processes):
            return processes
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(processes)[:2000]}")


def reset_peak_rss(pid: int) -> None:
    """Set the process's peak resident size (VmHWM) to its current size (proc(5): clear_refs, value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_growth(pid: int) -> int:
    """Bytes the process's peak resident size is above its current size."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return (int(status["VmHWM"].split()[0]) - int(status["VmRSS"].split()[0])) * 1024


def ticks(processes: dict) -> int:
    return processes["strategy"]["counters"]["ticks"]


def test_faults_when_injected_then_counted_and_the_pipeline_recovers(
    instance: str, tmp_path: Path, exchange: SimServerThread
) -> None:
    ws_base = exchange.ws_url.removesuffix("/stream")
    config = tmp_path / "watchdog.toml"
    config.write_text("[source]\nno_data_timeout_s = 1.0\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hft.cli", "run", "--config", str(config), "--source", "url", ws_base,
         exchange.http_url, "--instance", instance, "--db", str(tmp_path / "f.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_running(instance, proc, RUN_TIMEOUT_S)

        # 1. skipped update ids: a U/u gap throws the book away and resyncs from a new snapshot
        before = feed_counters(instance)
        inject(exchange, kind="skip_updates", symbol="BTCUSDT", frames=1)
        after = wait_for(instance, lambda p: p["feed"]["counters"]["gaps"] > before["feed"]["counters"]["gaps"],
                         "a gap")
        assert after["feed"]["counters"]["resyncs"] > before["feed"]["counters"]["resyncs"]
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after the resync")

        # 2. malformed frames: each counted under its reason, the stream goes on
        before = feed_counters(instance)["feed"]["counters"]
        inject(exchange, kind="malformed", count=3, variant="truncated")
        wait_for(instance, lambda p: p["feed"]["counters"]["malformed"] == before["malformed"] + 3, "truncated")
        inject(exchange, kind="malformed", count=3, variant="unknown_symbol")
        wait_for(instance, lambda p: p["feed"]["counters"]["unknown_symbol"] == before["unknown_symbol"] + 3,
                 "unknown symbol")
        # nested 5,000 deep (a recursive decoder's RecursionError killed the feed): refused, counted, no restart
        inject(exchange, kind="malformed", count=3, variant="deep")
        wait_for(instance, lambda p: p["feed"]["counters"]["too_deep"] == before["too_deep"] + 3, "too deep")
        assert feed_counters(instance)["feed"]["restarts"] == 0
        # NaN, numbers as JSON numbers, negative sizes, a 2 MiB frame: a corrupted diff that the book had already
        # covered is dropped as stale without being parsed, so only "at least some" are counted by reason
        reasons = ("malformed", "bad_number", "bad_level", "unknown_symbol", "huge_frames")
        before = feed_counters(instance)["feed"]["counters"]
        inject(exchange, kind="malformed", count=7, variant="mixed")
        after = wait_for(
            instance,
            lambda p: sum(p["feed"]["counters"][k] - before[k] for k in reasons) >= 3,
            "mixed malformed frames counted",
        )
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after malformed frames")

        # a 16 MiB frame: refused while it is received (websocket-client alone holds it whole, twice: the feed's
        # peak was 566 MB for 200 MB), counted, no reconnect; the feed's peak resident memory barely moves
        feed = feed_counters(instance)["feed"]
        reset_peak_rss(feed["pid"])
        inject(exchange, kind="malformed", count=1, variant="huge", huge_bytes=16 * 1024 * 1024)
        after = wait_for(instance, lambda p: p["feed"]["counters"]["huge_frames"] > feed["counters"]["huge_frames"],
                         "the 16 MiB frame counted")
        assert after["feed"]["counters"]["reconnects"] == feed["counters"]["reconnects"]
        assert peak_rss_growth(feed["pid"]) < 8 * 1024 * 1024

        # sanity bounds: trades of 60,000 BTC, at 99,999,999,999.99, stamped in the year 2200, and a diff with a
        # level at that price: counted as outliers and dropped (the diff resyncs its book); a crossed bookTicker
        # is counted as crossed. Trading goes on.
        before = feed_counters(instance)["feed"]["counters"]
        for variant in ("huge_size", "far_price", "future_time"):
            inject(exchange, kind="malformed", count=2, variant=variant, channel="trade", symbol="BTCUSDT")
        after = wait_for(instance, lambda p: p["feed"]["counters"]["outliers"] >= before["outliers"] + 6,
                         "six outlier trades")
        # (a copy of a diff the book already covers, right after a resync, is dropped as stale unread: hence 3)
        inject(exchange, kind="malformed", count=3, variant="far_price", channel="depth", symbol="BTCUSDT")
        inject(exchange, kind="malformed", count=2, variant="crossed", channel="bookTicker")
        after = wait_for(instance, lambda p: p["feed"]["counters"]["outliers"] >= before["outliers"] + 7
                         and p["feed"]["counters"]["crossed"] >= before["crossed"] + 2
                         and p["feed"]["counters"]["resyncs"] > before["resyncs"], "the outlier diff and tickers")
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after the outliers")

        # 3. a dropped connection: reconnect, resync, trade on
        before = feed_counters(instance)
        inject(exchange, kind="drop_connection")
        after = wait_for(
            instance, lambda p: p["feed"]["counters"]["reconnects"] > before["feed"]["counters"]["reconnects"],
            "a reconnect",
        )
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after the reconnect")

        # 4. a stale snapshot during a resync: detected, fetched again
        before = feed_counters(instance)
        inject(exchange, kind="stale_snapshot", requests=1)
        inject(exchange, kind="skip_updates", symbol="ETHUSDT", frames=1)
        after = wait_for(
            instance,
            lambda p: p["feed"]["counters"]["stale_snapshots"] > before["feed"]["counters"]["stale_snapshots"],
            "a stale snapshot",
        )
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after the stale snapshot")

        # 5. a stalled sender: a burst afterwards, nothing lost (no gap)
        before = feed_counters(instance)
        inject(exchange, kind="stall", ms=400)
        time.sleep(1.5)
        after = feed_counters(instance)
        assert after["feed"]["counters"]["gaps"] == before["feed"]["counters"]["gaps"]
        assert ticks(after) > ticks(before)
        assert after["feed"]["counters"]["no_data_reconnects"] == 0  # 0.4 s is not silence (watchdog: 1 s)

        # 6. a server silent longer than the watchdog: it looked synced and fresh; now the connection is closed,
        # counted and logged, the books resync and trading goes on
        before = feed_counters(instance)
        inject(exchange, kind="stall", ms=2500)
        after = wait_for(instance, lambda p: p["feed"]["counters"]["no_data_reconnects"] > 0, "the watchdog")
        assert after["feed"]["counters"]["reconnects"] > before["feed"]["counters"]["reconnects"]
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after the watchdog's reconnect")

        # 7. the snapshot endpoint fails (HTTP 500 three times) during a resync: retried with backoff (not 16-33
        # times a second), every failure counted, and the book resyncs once it answers
        before = feed_counters(instance)
        requests_before = exchange.stats()["http_requests"]
        inject(exchange, kind="rest_error", status=500, requests=3)
        inject(exchange, kind="skip_updates", symbol="BTCUSDT", frames=1)
        after = wait_for(instance, lambda p: p["feed"]["counters"]["snapshot_failures"]
                         >= before["feed"]["counters"]["snapshot_failures"] + 3, "three failed snapshots")
        wait_for(instance, lambda p: ticks(p) > ticks(after) + 5, "ticks after the failed snapshots")
        assert exchange.stats()["http_requests"] - requests_before <= 8

        # 8. the feed killed and restarted: its reason counters go on from where they were, not from zero
        before = feed_counters(instance)["feed"]
        os.kill(before["pid"], signal.SIGKILL)
        after = wait_for(instance, lambda p: p["feed"]["state"] == "running" and p["feed"]["pid"] != before["pid"]
                         and ticks(p) > 0, "the feed restarted", timeout=60)["feed"]
        for name in ("malformed", "too_deep", "unknown_symbol", "gaps", "snapshot_failures"):
            assert after["counters"][name] >= before["counters"][name] > 0, name
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "run finished (signal)" in out
    assert "no data for 1 s (source.no_data_timeout_s)" in err
