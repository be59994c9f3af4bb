"""Pipelines writing into one PostgreSQL database (a real server on loopback, tests/pg.py): exactly once under
SIGKILL of the persistence process, and two pipelines (two instances) side by side in one database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from tests.integration.test_persistence_crash import CRASH_CONFIG, kill_persistence
from tests.integration.test_pipeline import hft, reading, start_hft, stop_run, wait_running

KILLS = 2


def pg_config(tmp_path: Path, url: str, name: str, host: str = "") -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(CRASH_CONFIG + f'url = "{url}"\nhost = "{host}"\n')
    return config


def assert_every_record_once_in(url: str, host: str, instance: str, summary: dict) -> None:
    """The run of ``(host, instance)`` holds order ids 1..orders and exec ids 1..executions: none lost, none twice."""
    with psycopg.connect(url, autocommit=True) as db:
        runs = db.execute("SELECT run_id FROM runs WHERE host = %s AND instance = %s", (host, instance)).fetchall()
        assert len(runs) == 1, runs
        run_id = runs[0][0]
        order_ids = [r[0] for r in db.execute("SELECT order_id FROM orders WHERE run_id = %s ORDER BY 1", (run_id,))]
        exec_ids = [r[0] for r in db.execute("SELECT exec_id FROM executions WHERE run_id = %s ORDER BY 1",
                                             (run_id,))]
        fills = db.execute("SELECT COUNT(*) FROM trades WHERE run_id = %s", (run_id,)).fetchone()[0]
        unreported = db.execute("SELECT COUNT(*) FROM orders WHERE run_id = %s AND command = 'NEW' AND "
                                "last_exec_id = 0", (run_id,)).fetchone()[0]
    assert order_ids == list(range(1, summary["orders"] + 1))
    assert exec_ids == list(range(1, summary["executions"] + 1))
    assert fills == summary["fills"] and unreported == 0
    assert summary["db_executions"] == summary["executions"]  # the run's own summary read PostgreSQL


def test_sigkill_persistence_when_writing_to_postgres_then_every_record_once(
    instance: str, tmp_path: Path, pg_database: str
) -> None:
    config = pg_config(tmp_path, pg_database, "pg", host="host-a")
    proc = start_hft("run", "--config", str(config), "--duration", "300", "--instance", instance, "--json")
    try:
        wait_running(instance, proc)
        killed = kill_persistence(instance, KILLS, lambda: 0.8)
        assert len(killed) == KILLS
        time.sleep(1.0)
        stdout, stderr = stop_run(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["restarts"]["persistence"] == KILLS and summary["executions"] > 0
    assert_every_record_once_in(pg_database, "host-a", instance, summary)


def test_two_pipelines_when_writing_to_one_database_then_both_complete_and_apart(
    instance: str, tmp_path: Path, pg_database: str
) -> None:
    second = f"{instance}b"
    procs = {
        (host, name): start_hft("run", "--config", str(pg_config(tmp_path, pg_database, name, host)),
                                "--duration", "300", "--instance", name, "--json")
        for host, name in (("host-a", instance), ("host-b", second))
    }
    try:
        for (_, name), proc in procs.items():
            wait_running(name, proc)
        time.sleep(3.0)
        outputs = {key: stop_run(proc) for key, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    summaries = {}
    for (host, name), (stdout, stderr) in outputs.items():
        assert procs[(host, name)].returncode == 0, stderr[-3000:]
        summaries[(host, name)] = json.loads(stdout)
        assert_every_record_once_in(pg_database, host, name, summaries[(host, name)])
    # one report covers both: a line per host and per instance, and the total is their sum
    done = hft("report", pg_database, "--json")
    assert done.returncode == 0, done.stderr
    overview = json.loads(done.stdout)
    assert overview["runs"] == 2
    by_host = {line["host"]: line for line in overview["hosts"]}
    by_instance = {(line["host"], line["instance"]): line for line in overview["instances"]}
    assert set(by_host) == {"host-a", "host-b"} and set(by_instance) == set(summaries)
    for (host, name), summary in summaries.items():
        assert by_instance[(host, name)]["orders"] == by_host[host]["orders"] == summary["orders"]
        assert by_instance[(host, name)]["fills"] == summary["fills"]
    assert overview["total"]["orders"] == sum(summary["orders"] for summary in summaries.values())
    assert overview["total"]["fills"] == sum(summary["fills"] for summary in summaries.values())


def test_server_stopped_during_a_run_when_back_then_spool_replayed_and_every_record_once(
    instance: str, tmp_path: Path, pg_server, pg_database: str
) -> None:
    config = pg_config(tmp_path, pg_database, "spool", host="host-a")
    with config.open("a") as out:
        out.write(f'db_path = "{tmp_path / "runs" / "unused.db"}"\n')  # the spool lives beside it
    proc = start_hft("run", "--config", str(config), "--duration", "300", "--instance", instance, "--json")
    try:
        wait_running(instance, proc)
        time.sleep(1.0)
        waits_before = reading(instance)["processes"]["broker"]["counters"]["backpressure_waits"]
        pg_server.stop()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                counters = reading(instance)["processes"]["persistence"]["counters"]
                if counters["spool_pending"] >= 3:
                    break
                time.sleep(0.2)
            assert counters["store_failovers"] == 1 and counters["spool_pending"] >= 3, counters
            assert counters["spool_age_ms"] > 0
            assert reading(instance)["processes"]["persistence"]["restarts"] == 0  # no crash loop
            assert list((tmp_path / "runs").glob(f"spool-{instance}-*.db"))
            # the broker never waited on the executions ring while the server was away
            assert reading(instance)["processes"]["broker"]["counters"]["backpressure_waits"] == waits_before
        finally:
            pg_server.start()
        deadline = time.monotonic() + 30
        while reading(instance)["processes"]["persistence"]["counters"]["spool_pending"] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        counters = reading(instance)["processes"]["persistence"]["counters"]
        assert counters["spool_pending"] == 0 and counters["spool_replayed"] >= 3, counters
        stdout, stderr = stop_run(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert_every_record_once_in(pg_database, "host-a", instance, json.loads(stdout))
    assert not list((tmp_path / "runs").glob("spool-*.db"))  # drained and removed
