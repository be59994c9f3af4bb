"""Exactly once under SIGKILL: the persistence process is killed at random moments during a run, again and
again; the supervisor restarts it, and at the end the database holds every order and every execution report
the strategy and broker published: none lost, none twice, ids contiguous."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.test_pipeline import (
    TRADING_CONFIG,
    assert_every_record_once,
    hft,
    reading,
    start_hft,
    stop_run,
    wait_running,
)

KILLS = 4
CRASH_CONFIG = TRADING_CONFIG + """
[supervisor]
restart_backoff_ms = 100
restart_backoff_max_ms = 400

[persistence]
batch_size = 64
flush_ms = 5
"""


def persistence_pid(instance: str) -> int:
    process = reading(instance)["processes"]["persistence"]
    return int(process["pid"]) if process["state"] == "running" else 0


def kill_persistence(instance: str, kills: int, pause_s: Callable[[], float]) -> list[int]:
    """SIGKILL the running persistence process ``kills`` times, ``pause_s()`` apart, each time a new one (the
    supervisor's restart); return the pids killed (fewer when 30 s were not enough)."""
    killed: list[int] = []
    deadline = time.monotonic() + 30
    while len(killed) < kills and time.monotonic() < deadline:
        time.sleep(pause_s())
        pid = persistence_pid(instance)
        if pid and pid not in killed:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def test_sigkill_persistence_repeatedly_then_every_record_is_in_the_db_exactly_once(
    instance: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CRASH_CONFIG)
    db = tmp_path / "crash.db"
    rng = random.Random(int(os.environ.get("HFT_CRASH_SEED", "7")))
    proc = start_hft("run", "--config", str(config), "--duration", "300", "--instance", instance, "--db", str(db),
                     "--json")
    try:
        wait_running(instance, proc)
        killed = kill_persistence(instance, KILLS, lambda: rng.uniform(0.3, 2.0))
        assert len(killed) == KILLS, f"could only kill {killed}"
        time.sleep(1.0)
        stdout, stderr = stop_run(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["restarts"]["persistence"] == KILLS
    assert summary["orders"] > 0 and summary["executions"] > 0
    # every record the producers published, once (primary keys forbid twice), with no gap
    conn, run_id = assert_every_record_once(db, summary)
    with conn:
        fills = conn.execute("SELECT COUNT(*) FROM trades WHERE run_id = ?", (run_id,)).fetchone()[0]
        unreported = conn.execute(
            "SELECT COUNT(*) FROM orders WHERE run_id = ? AND command = 'NEW' AND last_exec_id = 0", (run_id,)
        ).fetchone()[0]
    conn.close()
    assert fills == summary["fills"]
    assert unreported == 0  # every order's state was updated from its reports


def test_run_when_database_cannot_be_created_then_clear_error_clean_stop_no_restart_loop(
    instance: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    result = hft("run", "--duration", "5", "--instance", instance, "--db", str(blocker / "hft.db"), timeout=240)
    assert result.returncode != 0
    assert "cannot open database" in result.stderr
    assert result.stderr.count("persistence running") == 0
    assert "restarting it" not in result.stderr  # exit code 2 is fatal: no crash loop
