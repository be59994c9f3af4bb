"""Smoke test of bench/backtest.py: a tiny run produces every section, and every backtest in it agrees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.test_replay import needs_data

REPO = Path(__file__).resolve().parents[2]


@needs_data
def test_backtest_bench_when_run_briefly_then_every_section_and_identical_results() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "backtest.py"), "--repeats", "1", "--sets", "2", "--no-lockstep",
         "--no-hftbacktest", "--json-only"], capture_output=True, text=True, timeout=600, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["identical_results"] is True  # recording and event file: the same orders and fills
    for path in ("raw", "converted"):
        row = report[path]
        assert row["lines"] == 41_249 and row["lines_per_s"] > 0
        assert 0 < row["loop_s"] < row["seconds"] and row["db_s"] > 0
    assert report["converted"]["file_bytes"] > 0
    assert report["hftbacktest"] == {"skipped": "--no-hftbacktest"}
    assert report["sweep"]["sets"] == 2 and report["sweep"]["speedup"] > 0
