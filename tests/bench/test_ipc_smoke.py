"""Smoke test of ``bench/ipc.py``: a tiny run across real processes must produce a complete JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "ipc.py"
LATENCY_KEYS = {"ring", "faster_fifo_spin", "faster_fifo_blocking", "pipe", "mp_queue"}
THROUGHPUT_KEYS = {
    "ring_batched",
    "ring_batched_copy",
    "ring_unbatched",
    "faster_fifo",
    "faster_fifo_batched",
    "pipe",
    "mp_queue",
}


def _segments() -> set[str]:
    try:
        return {name for name in os.listdir("/dev/shm") if name.startswith("hft.ipcbench")}
    except FileNotFoundError:
        return set()


def test_ipc_benchmark_when_run_with_tiny_counts_then_reports_every_transport_as_json() -> None:
    before = _segments()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", "300", "--json-only"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"exit {proc.returncode}\nout:\n{proc.stdout[-3000:]}\nerr:\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)

    assert report["benchmark"] == "ipc"
    assert report["errors"] == {}
    machine = report["machine"]
    for key in ("platform", "cpu_model", "cpu_count", "python", "numba", "pinning"):
        assert key in machine
    if len(os.sched_getaffinity(0)) >= 2:
        pin = machine["pinning"]
        assert pin["pinned"] is True
        assert pin["producer_affinity"] == [pin["producer_core"]]
        assert pin["consumer_affinity"] == [pin["consumer_core"]]

    assert set(report["latency"]) == LATENCY_KEYS
    for name, entry in report["latency"].items():
        assert entry["n"] > 0, name
        assert 0 < entry["p50_ns"] <= entry["p99_ns"] <= entry["p999_ns"] <= entry["max_ns"], name
    assert report["latency"]["ring"]["n"] == 300

    assert set(report["throughput"]) == THROUGHPUT_KEYS
    for name, entry in report["throughput"].items():
        assert entry["records_per_s"] > 0, name

    assert report["ratios"]["faster_fifo_spin_p50_over_ring_p50"] > 0
    for target in report["targets"].values():
        assert target["met"] in (True, False)
    assert _segments() <= before, "the benchmark left shared-memory segments behind"
    assert elapsed < 120
