"""Smoke tests of bench/strategy.py and bench/feed.py: tiny runs must produce complete JSON reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "binance-spot" / "hftbacktest_spot_btcusdt_20240808.gz"


def run_bench(*args: str) -> dict:
    result = subprocess.run([sys.executable, *args, "--json-only"], capture_output=True, text=True, timeout=300,
                            check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


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
    report = run_bench(str(REPO / "bench" / "persistence.py"), "--reports", "3000", "--paced", "2000")
    for name in ("store", "ring_unpaced", "ring_paced_2000"):
        assert report[name]["reports_per_s"] > 0
    assert report["ring_unpaced"]["reports"] == 3000
    assert 0 <= report["ring_paced_2000"]["producer_blocked_share"] <= 1
    assert not [name for name in os.listdir("/dev/shm") if name.startswith("hft.pbench")]
