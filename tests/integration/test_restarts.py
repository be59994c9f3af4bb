"""Supervision end to end: SIGKILL each worker in turn during a run; the supervisor restarts it, it resumes
from its cursors, and the run completes with every order and execution report in the database once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

from tests.integration.test_pipeline import TRADING_CONFIG, hft, start_hft, wait_running

RESTART_CONFIG = TRADING_CONFIG + """
[supervisor]
restart_backoff_ms = 100
"""


def reading(instance: str) -> dict:
    result = hft("stats", "--instance", instance, "--json", "--interval", "0.1", timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_back(instance: str, name: str, old_pid: int, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = reading(instance)["processes"][name]
        if process["state"] == "running" and process["pid"] not in (0, old_pid):
            return process
        time.sleep(0.3)
    raise AssertionError(f"{name} did not come back within {timeout} s")


def test_sigkill_each_worker_in_turn_then_restarted_and_nothing_lost(instance: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(RESTART_CONFIG)
    db = tmp_path / "restarts.db"
    proc = start_hft("run", "--config", str(config), "--duration", "45", "--instance", instance, "--db", str(db),
                     "--json")
    seen_states = {}
    try:
        wait_running(instance, proc)
        for name in ("persistence", "broker", "strategy", "feed"):
            time.sleep(1.5)
            before = reading(instance)["processes"][name]
            os.kill(before["pid"], signal.SIGKILL)
            time.sleep(0.05)
            seen_states[name] = reading(instance)["processes"][name]["state"]
            back = wait_back(instance, name, before["pid"])
            assert back["counters"] is not None
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-4000:]
    summary = json.loads(stdout)
    assert summary["restarts"] == {"feed": 1, "strategy": 1, "broker": 1, "persistence": 1}
    # the supervisor wrote the dead worker's state for everyone to see (stats read it within 50 ms)
    assert set(seen_states.values()) <= {"dead", "restarting", "starting", "running"}
    assert "stale-data breaker tripped" in stderr  # the strategy noticed the feed was gone
    assert "STRATEGY_DOWN" in stderr or "strategy died" in stderr
    with sqlite3.connect(db) as conn:
        run_id = conn.execute("SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        order_ids = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE run_id = ? ORDER BY 1", (run_id,))]
        exec_ids = [r[0] for r in conn.execute("SELECT exec_id FROM executions WHERE run_id = ? ORDER BY 1",
                                               (run_id,))]
        still_open = conn.execute("SELECT COUNT(*) FROM orders WHERE run_id = ? AND status IN ('PENDING', 'NEW', "
                                  "'PARTIALLY_FILLED')", (run_id,)).fetchone()[0]
    assert summary["orders"] > 0
    assert order_ids == list(range(1, summary["orders"] + 1))
    assert exec_ids == list(range(1, summary["executions"] + 1))  # no report lost or written twice
    assert still_open == 0  # every order ended, across the broker's and the strategy's restarts
