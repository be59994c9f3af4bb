"""Smoke tests of bench/strategy.py and bench/feed.py: tiny runs must produce complete JSON reports."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "binance-spot" / "hftbacktest_spot_btcusdt_20240808.gz"


def run_bench(*args: str) -> dict:
    return run_bench_process(*args)[0]


def run_bench_process(*args: str) -> tuple[dict, int]:
    """The bench's JSON report and its process id."""
    with subprocess.Popen([sys.executable, *args, "--json-only"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=REPO) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout), proc.pid


def test_strategy_bench_when_run_briefly_then_every_section_measures_the_examples_and_nothing_is_left() -> None:
    report = run_bench(str(REPO / "bench" / "strategy.py"), "--quick")
    for name in ("taker", "market_maker"):
        row = report["callback"][name]
        assert row["api_ns_per_frame"] > 0 and row["wired_ns_per_frame"] > 0
        assert row["commands_per_run"]["api"] == row["commands_per_run"]["wired"] > 0  # both paths did the same
        for wait in ("busy-spin", "spin-yield"):
            process = report["process"][f"{name}/{wait}"]
            assert process["orders"] > 0
            assert 0 < process["tick_to_order"]["p50"] <= process["tick_to_order"]["p99"]
    assert set(report["targets"]) >= {"added_ns", "frame_to_order_p50_ns_own_core"}
    assert not [name for name in os.listdir("/dev/shm") if name.startswith("hft.stratbench")]


@pytest.mark.skipif(not DATA.is_file(), reason=f"recorded data {DATA} is absent")
def test_feed_bench_when_run_then_reports_every_kind_and_the_target() -> None:
    report = run_bench(str(REPO / "bench" / "feed.py"), "--repeats", "1")
    latency = report["latency"]["jitted scanner (default)"]
    assert {"bookTicker", "trade", "depth<=10", "depth>10"} <= set(latency)
    assert report["sustained"]["jitted scanner (default)"]["events_per_s"] > 0
    assert "depth<=10 p50 < 5 us" in report["target"]


def test_persistence_bench_when_run_briefly_then_every_report_committed_and_nothing_is_left() -> None:
    """Both stores: SQLite, and PostgreSQL on a throwaway server the bench starts and removes (skipped, saying why,
    only where the server binaries are missing)."""
    report, pid = run_bench_process(str(REPO / "bench" / "persistence.py"), "--reports", "3000", "--paced", "2000")
    stores = ["", "pg_"] if "skipped" not in report["postgres"] else [""]
    for prefix in stores:
        for name in ("store", "ring_unpaced", "ring_paced_2000"):
            assert report[prefix + name]["reports_per_s"] > 0
        assert report[prefix + "ring_unpaced"]["reports"] == 3000
        assert 0 <= report[prefix + "ring_paced_2000"]["producer_blocked_share"] <= 1
        assert report[prefix + "store"]["client_cpu_us_per_report"] > 0
    if "pg_" in stores:
        assert report["pg_store"]["server_cpu_us_per_report"] >= 0  # the bench's own server: its backend measured
        assert report["postgres"]["settings"]["fsync"] == "on"  # measured durable, as a production server runs
    assert {"measured", "met"} <= set(report["targets"]["postgresql: >= 100,000 reports/s (store)"])
    assert not [name for name in os.listdir("/dev/shm") if name.startswith("hft.pbench")]
    assert not _server_dirs_of(pid)  # the throwaway server is stopped and its directory removed


def _server_dirs_of(pid: int) -> list[Path]:
    """The directories of the PostgreSQL servers process ``pid`` started with tests/pg.py (other test sessions
    running meanwhile have their own)."""
    found = []
    for owner in Path(tempfile.gettempdir()).glob("hft-pg-*/owner.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(owner.read_text().split()[0]) == pid:
                found.append(owner.parent)
    return found
