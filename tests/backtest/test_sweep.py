"""`hft sweep`: a grid of parameter sets on a local process pool and on a real Dask scheduler with workers on
loopback; every run lands in one database, a failed set is reported with its parameters and loses no other, and
`hft report --compare` puts the runs side by side."""

from __future__ import annotations

import csv
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_pipeline import hft
from tests.integration.test_replay import BTC, needs_data

pytestmark = needs_data

# the README's quoting strategy, with a parameter that makes its prepare() fail at run time (not at the check)
STRATEGY = '''
from hft.strategy import api

P = api.declare_params(order_size=0.001, boom=0)
S = api.declare_state(bid_id=0, ask_id=0)


def prepare(setup):
    if setup.params["boom"]:
        raise RuntimeError("boom: this parameter set cannot run")


@api.jit
def keep_quote(ctx, symbol, side, column, price):
    order_id = ctx.ints[symbol, column]
    size = api.to_size(ctx, symbol, ctx.params[P.order_size])
    if order_id == 0:
        order_id = api.post_only(ctx, symbol, side, price, size)
    elif ctx.orders[api.order_row(ctx, order_id), api.OO_PRICE] != price:
        order_id = api.replace(ctx, order_id, price, size)
    if order_id > 0:
        ctx.ints[symbol, column] = order_id


def on_bbo(ctx, symbol):
    bid, ask = api.best_bid(ctx, symbol), api.best_ask(ctx, symbol)
    if 0 < bid < ask:
        keep_quote(ctx, symbol, api.BUY, S.bid_id, bid)
        keep_quote(ctx, symbol, api.SELL, S.ask_id, ask)


def on_execution(ctx, symbol):
    report = ctx.report[0]
    if report.status != api.ACKED and report.leaves == 0:
        for column in (S.bid_id, S.ask_id):
            if ctx.ints[symbol, column] == report.order_id:
                ctx.ints[symbol, column] = 0
'''
CONFIG = """
[strategy]
module = "quotes.py"

[risk]
max_position = "1"
max_order_size = "1"
max_orders_per_second = 10000.0
order_burst = 10000
max_cancels_per_second = 10000.0
cancel_burst = 10000

[[symbols]]
name = "BTCUSDT"
price_decimals = 2
size_decimals = 8
tick_size = "0.01"
lot_size = "0.00001"
sim_start_price = "60000"
"""


@pytest.fixture(scope="module")
def quotes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quotes")
    (folder / "quotes.py").write_text(STRATEGY)
    config = folder / "quotes.toml"
    config.write_text(CONFIG)
    return config


def run_rows(db: Path) -> dict[int, tuple[int, int]]:
    """run id -> (orders, executions) in the database."""
    with sqlite3.connect(db) as conn:
        runs = [row[0] for row in conn.execute("SELECT run_id FROM runs")]
        return {run: (conn.execute("SELECT COUNT(*) FROM orders WHERE run_id = ?", (run,)).fetchone()[0],
                      conn.execute("SELECT COUNT(*) FROM executions WHERE run_id = ?", (run,)).fetchone()[0])
                for run in runs}


def check_sweep(result: subprocess.CompletedProcess[str], db: Path) -> dict[str, dict]:
    """Two sets ran, two failed with their parameters named; the database holds exactly the two runs."""
    assert result.returncode == 1, result.stderr[-3000:]  # some sets failed: the command says so
    document = json.loads(result.stdout)
    by_params = {json.dumps(run["params"], sort_keys=True): run for run in document["runs"]}
    assert len(by_params) == 4
    failed = [run for run in document["runs"] if run["error"] is not None]
    assert sorted(run["params"]["order_size"] for run in failed) == [0.001, 0.002]
    assert all(run["params"]["boom"] == 1 and "boom: this parameter set cannot run" in run["error"]
               for run in failed)
    done = {run["result"]["run_id"]: run for run in document["runs"] if run["error"] is None}
    rows = run_rows(db)
    assert set(rows) == set(done)
    for run_id, run in done.items():
        assert run["result"]["fills"] > 0
        assert rows[run_id][0] == run["result"]["orders"] and rows[run_id][1] == run["result"]["reports"]
    return by_params


def test_sweep_on_a_local_pool_when_a_set_fails_then_reported_and_the_others_are_in_the_database(
    quotes: Path, tmp_path: Path
) -> None:
    db = tmp_path / "sweep.db"
    result = hft("sweep", str(BTC), "--config", str(quotes), "--grid", "order_size=0.001,0.002",
                 "--grid", "boom=0,1", "--workers", "2", "--db", str(db), "--json", timeout=600)
    by_params = check_sweep(result, db)
    small = by_params[json.dumps({"boom": 0, "order_size": 0.001}, sort_keys=True)]["result"]
    large = by_params[json.dumps({"boom": 0, "order_size": 0.002}, sort_keys=True)]["result"]
    assert small["run_id"] != large["run_id"]
    # the same parameter set as a single backtest: the sweep ran the same code
    single = hft("backtest", str(BTC), "--config", str(quotes), "--param", "order_size=0.001",
                 "--db", str(tmp_path / "one.db"), "--json")
    assert single.returncode == 0, single.stderr[-2000:]
    assert {k: v for k, v in json.loads(single.stdout).items() if k in ("orders", "fills", "realized_pnl")} == {
        k: v for k, v in small.items() if k in ("orders", "fills", "realized_pnl")}
    # side by side, and exported
    export = tmp_path / "compare.csv"
    result = hft("report", str(db), "--compare", "--export", str(export))
    assert result.returncode == 0, result.stderr[-2000:]
    with open(export) as handle:
        rows = list(csv.DictReader(handle))
    assert {int(r["run_id"]) for r in rows} == {small["run_id"], large["run_id"]}
    assert {r["kind"] for r in rows} == {"backtest"}
    assert all(float(r["maker_share"]) == 1.0 for r in rows)  # post-only quotes only ever make


def test_sweep_when_a_parameter_is_unknown_then_refused_before_any_task(quotes: Path, tmp_path: Path) -> None:
    result = hft("sweep", str(BTC), "--config", str(quotes), "--grid", "order_sise=0.001,0.002",
                 "--db", str(tmp_path / "s.db"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "order_sise" in result.stderr and "did you mean 'order_size'" in result.stderr
    assert not (tmp_path / "s.db").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A real Dask scheduler and a worker process with two single-threaded worker processes, on loopback."""
    pytest.importorskip("distributed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]  # noqa: SIM115
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], stdout=logs[0], stderr=subprocess.STDOUT)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                               "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path)],
                              stdout=logs[1], stderr=subprocess.STDOUT)
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def test_sweep_on_a_dask_cluster_when_a_set_fails_then_reported_and_the_others_are_in_the_database(
    quotes: Path, tmp_path: Path, dask_cluster: str
) -> None:
    db = tmp_path / "dask.db"
    result = hft("sweep", str(BTC), "--config", str(quotes), "--grid", "order_size=0.001,0.002",
                 "--grid", "boom=0,1", "--scheduler", dask_cluster, "--db", str(db), "--json", timeout=600)
    by_params = check_sweep(result, db)
    document = json.loads(result.stdout)
    assert document["where"] == f"Dask {dask_cluster}" and document["workers"] == 2
    local = hft("backtest", str(BTC), "--config", str(quotes), "--param", "order_size=0.002",
                "--db", str(tmp_path / "one.db"), "--json")
    assert local.returncode == 0, local.stderr[-2000:]
    remote = by_params[json.dumps({"boom": 0, "order_size": 0.002}, sort_keys=True)]["result"]
    assert json.loads(local.stdout)["fills"] == remote["fills"]
    assert json.loads(local.stdout)["realized_pnl"] == remote["realized_pnl"]
