"""Supervision end to end: SIGKILL each worker in turn during a run; the supervisor restarts it, it resumes
from its cursors, and the run completes with every order and execution report in the database once."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_pipeline import (
    TRADING_CONFIG,
    assert_every_record_once,
    reading,
    start_hft,
    stop_run,
    wait_running,
)

RESTART_CONFIG = TRADING_CONFIG + """
[supervisor]
restart_backoff_ms = 100

[metrics]
port = {port}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of one Prometheus scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


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
    port = free_port()
    config.write_text(RESTART_CONFIG.format(port=port))
    db = tmp_path / "restarts.db"
    proc = start_hft("run", "--config", str(config), "--duration", "300", "--instance", instance, "--db", str(db),
                     "--json")
    seen_states = {}
    try:
        wait_running(instance, proc)
        metrics = scrape(port)  # the supervisor's endpoint serves the shared-memory counters
        assert metrics[("hft_process_up", (("process", "broker"),))] == 1
        assert metrics[("hft_process_counter_total", (("counter", "ticks"), ("process", "strategy")))] > 0
        assert metrics[("hft_latency_seconds_count", (("histogram", "tick_to_order"), ("process", "strategy")))] >= 0
        for name in ("persistence", "broker", "strategy", "feed"):
            time.sleep(1.5)
            before = reading(instance)["processes"][name]
            os.kill(before["pid"], signal.SIGKILL)
            time.sleep(0.05)
            seen_states[name] = reading(instance)["processes"][name]["state"]
            back = wait_back(instance, name, before["pid"])
            assert back["counters"] is not None
            assert scrape(port)[("hft_process_restarts_total", (("process", name),))] == 1
        time.sleep(1.0)  # let the restarted feed trade a little
        stdout, stderr = stop_run(proc)
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
    assert summary["orders"] > 0
    conn, run_id = assert_every_record_once(db, summary)  # no order or report lost or written twice
    with conn:
        still_open = conn.execute("SELECT COUNT(*) FROM orders WHERE run_id = ? AND status IN ('PENDING', 'NEW', "
                                  "'PARTIALLY_FILLED')", (run_id,)).fetchone()[0]
    conn.close()
    assert still_open == 0  # every order ended, across the broker's and the strategy's restarts


def test_worker_that_keeps_dying_slowly_then_the_run_stops_as_a_crash_loop(instance: str, tmp_path: Path) -> None:
    """Each life outlasts the budget window's share (1 s window here), so the window never fills: the lives in a
    row shorter than restart_stable_s stop the run after the budget, with one clear line."""
    config = tmp_path / "config.toml"
    config.write_text(RESTART_CONFIG.format(port=free_port()).replace(
        "restart_backoff_ms = 100", "restart_backoff_ms = 100\nrestart_budget = 2\nrestart_window_s = 1\n"
                                    "restart_stable_s = 120"))
    proc = start_hft("run", "--config", str(config), "--instance", instance, "--db", str(tmp_path / "r.db"))
    try:
        wait_running(instance, proc)
        for _ in range(3):
            pid = reading(instance)["processes"]["persistence"]["pid"]
            time.sleep(1.2)  # longer than the window: the old rule never stopped this
            os.kill(pid, signal.SIGKILL)
            if _ < 2:
                wait_back(instance, "persistence", pid)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert "3 lives in a row shorter than 120 s, a crash loop; stopping the pipeline" in err
    assert "restart-budget-spent" in out + err
