"""End to end: `hft run` as users start it (a real subprocess, real simulator on loopback, four workers),
`hft stats` against it, and the shared-memory lifecycle after normal stops, killed workers and a killed
supervisor."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shm_layout.region import find_segments

# A looser signal than the seed's defaults so a few seconds of simulated flow reliably trade; the seed's
# exact rules are covered by the strategy unit tests.
TRADING_CONFIG = """
[strategy.params]
min_confidence = 0.5
holding_min_ms = 100.0
holding_max_ms = 300.0

[source]
sim_events_per_second = 3000.0
"""

RUN_TIMEOUT_S = 240  # the first run in a fresh clone compiles every jitted loop (~30 s on 2 cores)


def hft(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hft.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def start_hft(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hft.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stats_reading(instance: str) -> dict | None:
    """What `hft stats --json` prints, read in this process through the same code (``hft.stats``): a poll by
    subprocess costs a Python start-up (~1 s of a core) each time. None while no pipeline is attached."""
    from hft.stats import attach_running, collect, with_rates
    from shm_layout.region import LayoutMismatchError

    try:
        pipeline = attach_running(instance)
    except (LookupError, LayoutMismatchError):
        return None
    try:
        before = collect(pipeline)
        time.sleep(0.05)
        return json.loads(json.dumps(with_rates(before, collect(pipeline)), default=float))
    finally:
        pipeline.close()


def wait_running(instance: str, proc: subprocess.Popen[str], timeout: float = RUN_TIMEOUT_S) -> dict:
    """Poll the stats until every worker runs and the strategy sees ticks; return that reading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"hft run exited early: {proc.communicate()[1][-3000:]}"
        found = stats_reading(instance)
        if found is not None:
            states = {name: p["state"] for name, p in found["processes"].items()}
            if set(states.values()) == {"running"} and found["processes"]["strategy"]["counters"]["ticks"] > 0:
                return found
        time.sleep(0.2)
    raise AssertionError(f"pipeline {instance} did not come up in {timeout} s")


def reading(instance: str) -> dict:
    """One stats reading of a running pipeline (as `hft stats --json` prints it)."""
    found = stats_reading(instance)
    assert found is not None, f"no pipeline {instance} to read"
    return found


def stop_run(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM a running `hft run` (a clean staged stop drains everything, as at the end of a duration) and
    return its output."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=240)


def assert_every_record_once(db: Path, summary: dict) -> tuple[sqlite3.Connection, int]:
    """The latest run in ``db`` holds order ids 1..orders and exec ids 1..executions of the run's summary: none
    lost, none twice (primary keys forbid twice), no gap. Return the open connection and the run id."""
    conn = sqlite3.connect(db)
    run_id = conn.execute("SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    order_ids = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE run_id = ? ORDER BY 1", (run_id,))]
    exec_ids = [r[0] for r in conn.execute("SELECT exec_id FROM executions WHERE run_id = ? ORDER BY 1", (run_id,))]
    assert order_ids == list(range(1, summary["orders"] + 1))
    assert exec_ids == list(range(1, summary["executions"] + 1))
    return conn, run_id


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(TRADING_CONFIG)
    return path


def test_run_for_a_few_seconds_then_orders_fills_and_db_rows_match_counters(
    instance: str, tmp_path: Path, config_file: Path
) -> None:
    db = tmp_path / "run.db"
    result = hft("run", "--config", str(config_file), "--duration", "8", "--instance", instance, "--db", str(db),
                 "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["stop_reason"] == "duration"
    assert summary["ticks"] > 0
    assert summary["orders"] > 0
    assert summary["fills"] > 0
    assert summary["executions"] >= summary["orders"]  # every order has at least its final report
    assert summary["db_executions"] == summary["executions"]
    assert summary["db_orders"] == summary["orders"]
    assert summary["db_trades"] == summary["fills"]
    assert summary["persisted_trades"] == summary["fills"]
    assert summary["tick_to_order_ns"]["count"] == summary["orders"]
    assert 0 < summary["tick_to_order_ns"]["p50"] <= summary["tick_to_order_ns"]["p99"]
    assert all(code == 0 for code in summary["exit_codes"].values()), summary["exit_codes"]
    assert find_segments(instance) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        order_ids = [row[0] for row in conn.execute("SELECT order_id FROM orders ORDER BY order_id")]
        assert order_ids == list(range(1, summary["orders"] + 1))  # none lost, none twice
        trade_orders = {row[0] for row in conn.execute("SELECT order_id FROM trades")}
        assert trade_orders <= set(order_ids)
        # every order ended: the broker's final report set its state (market orders never rest)
        open_states = conn.execute("SELECT COUNT(*) FROM orders WHERE status IN ('PENDING', 'NEW')").fetchone()[0]
        assert open_states == 0
        # the broker's last realized PnL per symbol is what the summary reports
        for symbol, pnl in summary["realized_pnl"].items():
            last = conn.execute(
                "SELECT realized_pnl FROM trades WHERE symbol = ? ORDER BY exec_id DESC LIMIT 1", (symbol,)
            ).fetchone()[0]
            assert last == pytest.approx(pnl)


def test_human_summary_when_run_ends_then_prints_every_figure(instance: str, tmp_path: Path) -> None:
    db = tmp_path / "human.db"
    result = hft("run", "--duration", "2", "--instance", instance, "--db", str(db))
    assert result.returncode == 0, result.stderr[-3000:]
    for label in ("ticks", "orders", "fills", "realized PnL", "tick-to-trade", "p50", "p99", "database"):
        assert label in result.stdout
    assert str(db) in result.stdout
    assert find_segments(instance) == []


def test_stats_when_pipeline_running_then_live_counters_and_sigint_stops_cleanly(
    instance: str, tmp_path: Path, config_file: Path
) -> None:
    proc = start_hft("run", "--config", str(config_file), "--instance", instance, "--db", str(tmp_path / "s.db"))
    try:
        first = wait_running(instance, proc)
        time.sleep(1.0)
        result = hft("stats", "--instance", instance, "--json", "--interval", "0.5", timeout=30)
        assert result.returncode == 0, result.stderr
        second = json.loads(result.stdout)
        feed, strategy = second["processes"]["feed"], second["processes"]["strategy"]
        assert feed["counters"]["frames"] > first["processes"]["feed"]["counters"]["frames"]  # live
        assert feed["rates_per_s"]["frames"] > 0
        for name, process in second["processes"].items():
            assert process["pid"] > 0, name
            assert process["heartbeat_age_ms"] is not None and process["heartbeat_age_ms"] < 2000, name
        assert strategy["latency_ns"]["md_hop"]["count"] > 0
        rings = {ring["name"].split(".", 2)[2]: ring for ring in second["rings"]}
        assert set(rings) == {"md.events", "strategy.orders", "broker.executions"}
        assert rings["md.events"]["head"] > 0 and rings["md.events"]["policy"] == "lossy"
        assert rings["strategy.orders"]["policy"] == "block"
        human = hft("stats", "--instance", instance, "--interval", "0.2", timeout=30)
        assert human.returncode == 0 and "md.events" in human.stdout and "tick_to_order" in human.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "run finished (signal)" in out
    assert find_segments(instance) == []


def test_stats_when_no_pipeline_then_says_none_is_running(instance: str) -> None:
    result = hft("stats", "--instance", instance, timeout=30)
    assert result.returncode == 1
    assert "no pipeline is running" in result.stderr


def test_run_when_instance_already_running_then_refuses(instance: str, tmp_path: Path) -> None:
    proc = start_hft("run", "--instance", instance, "--db", str(tmp_path / "a.db"))
    try:
        wait_running(instance, proc)
        second = hft("run", "--duration", "1", "--instance", instance, "--db", str(tmp_path / "b.db"), timeout=60)
        assert second.returncode == 2
        assert "already running" in second.stderr
        assert proc.poll() is None  # the first pipeline was not disturbed
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert find_segments(instance) == []


def test_sigkill_worker_when_not_restartable_then_supervisor_stops_everything_and_unlinks(
    instance: str, tmp_path: Path
) -> None:
    config = tmp_path / "no_restart.toml"
    config.write_text('[supervisor]\nrestart = ["feed", "broker", "persistence"]\n')  # not the strategy
    proc = start_hft("run", "--config", str(config), "--instance", instance, "--db", str(tmp_path / "k.db"))
    try:
        reading = wait_running(instance, proc)
        os.kill(reading["processes"]["strategy"]["pid"], signal.SIGKILL)
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1  # a worker died for good: the run is reported as failed, not as a clean stop
    assert "strategy" in err and "exited unexpectedly" in err and "restarting it" not in err
    assert find_segments(instance) == []
    pids = [p["pid"] for p in reading["processes"].values()]
    assert _all_gone(pids, timeout=10)


def test_sigkill_supervisor_then_workers_exit_and_hft_clean_removes_segments(instance: str, tmp_path: Path) -> None:
    proc = start_hft("run", "--instance", instance, "--db", str(tmp_path / "c.db"))
    reading = wait_running(instance, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    pids = [p["pid"] for p in reading["processes"].values()]
    assert _all_gone(pids, timeout=15), "workers outlived their supervisor"
    left = find_segments(instance)
    assert len(left) == 5 and all(s.is_hft and not s.creator_alive for s in left)
    stats = hft("stats", "--instance", instance, timeout=30)
    assert stats.returncode == 1 and "hft clean" in stats.stderr
    result = hft("clean", "--instance", instance, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "5 stale segment(s) removed" in result.stdout
    assert find_segments(instance) == []


def test_run_when_stale_segments_left_then_removed_at_start(instance: str, tmp_path: Path) -> None:
    code = (
        "import numpy as np, sys\n"
        "from shm_layout.layout import Pipeline\n"
        "from shm_layout.records import SYMBOL_INFO\n"
        "Pipeline.create(sys.argv[1], np.zeros(1, SYMBOL_INFO), "
        "{'md.events': 64, 'strategy.orders': 64, 'broker.executions': 64})\n"
    )
    subprocess.run([sys.executable, "-c", code, instance], check=True, timeout=60)
    assert len(find_segments(instance)) == 5
    result = hft("run", "--duration", "1", "--instance", instance, "--db", str(tmp_path / "st.db"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "removed 5 stale segments" in result.stderr
    assert find_segments(instance) == []


def test_plan_when_fewer_cores_than_processes_then_says_they_share(tmp_path: Path) -> None:
    config = tmp_path / "plan.toml"
    config.write_text("[processes.feed]\ncore = 0\n[processes.strategy]\ncore = 0\n[processes.broker]\ncore = 7\n")
    result = hft("run", "--config", str(config), "--plan", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "feed+strategy" in result.stdout.replace("feed+strategy+", "feed+strategy")
    if 7 not in os.sched_getaffinity(0):
        assert "core 7 is not available" in result.stdout


def test_run_when_config_invalid_then_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[strategy]\nimbalance_thresold = 0.4\n")
    result = hft("run", "--config", str(config), "--duration", "1", timeout=30)
    assert result.returncode == 2
    assert "imbalance_thresold" in result.stderr


def _all_gone(pids: list[int], timeout: float) -> bool:
    from shm_layout.region import pid_alive

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_second_run_when_same_database_then_its_rows_are_kept_next_to_the_first_runs(
    instance: str, tmp_path: Path, config_file: Path
) -> None:
    db = tmp_path / "shared.db"
    summaries = []
    for _ in range(2):
        result = hft("run", "--config", str(config_file), "--duration", "4", "--instance", instance,
                     "--db", str(db), "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        summaries.append(json.loads(result.stdout))
    for summary in summaries:  # ids restart at 1 every run; rows are keyed by run, so none is dropped
        assert summary["orders"] > 0
        assert summary["db_orders"] == summary["orders"] and summary["db_trades"] == summary["fills"]
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        total = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert runs == 2 and total == summaries[0]["orders"] + summaries[1]["orders"]
