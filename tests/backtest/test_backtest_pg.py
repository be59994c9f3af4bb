"""`hft backtest` and `hft sweep` into PostgreSQL against a real server: the run registered as this machine,
instance backtest (or the sweep's name), with the rows and the report of the same backtest into SQLite; a failed
backtest leaves no run; a sweep's runs merged under the database's run ids; a bad URL is one line and exit 2."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import sqlite3
from pathlib import Path

import psycopg
import pytest

from hft.backtest.run import BacktestError, run_backtest
from hft.backtest.sweep import run_sweep
from hft.cli import main
from tests.backtest.test_backtest import btc_config
from tests.integration.test_pipeline import hft
from tests.integration.test_replay import BTC, needs_data
from tests.pg import free_port

pytestmark = needs_data
LOG = logging.getLogger("test.backtest_pg")
LINES = 20_000  # the first minutes of the day: a snapshot, then tens of imbalance fills
ORDER_ROWS = ("SELECT order_id, command, symbol, side, order_type, tif, price_fp, size_fp, md_cursor, "
              "target_order_id, status, reason, filled_fp FROM orders WHERE run_id = ? ORDER BY order_id")
REPORT_ROWS = ("SELECT exec_id, order_id, symbol, side, status, reason, liquidity, price_fp, size_fp, leaves_fp, "
               "fee_fp, realized_pnl_fp, position_fp, ts_exch FROM executions WHERE run_id = ? ORDER BY exec_id")


@pytest.fixture(scope="module")
def minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with gzip.open(BTC, "rb") as f:
        lines = [f.readline() for _ in range(LINES)]
    path = tmp_path_factory.mktemp("minutes") / "btc.gz"
    with gzip.open(path, "wb") as f:
        f.writelines(lines)
    return path


def pg_rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(sql.replace("?", "%s"), params).fetchall()


def sqlite_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def test_backtest_into_postgres_when_reported_then_the_rows_and_report_of_the_same_backtest_into_sqlite(
    pg_database: str, minutes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, lite_db = pg_database, tmp_path / "bt.db"
    pg = run_backtest(btc_config(), [str(minutes)], url, log=LOG)
    lite = run_backtest(btc_config(), [str(minutes)], str(lite_db), log=LOG)
    assert pg.fills > 10 and (pg.orders, pg.reports, pg.fills, pg.realized_pnl, pg.total_pnl) == (
        lite.orders, lite.reports, lite.fills, lite.realized_pnl, lite.total_pnl)
    assert pg.db_path == url
    [(host, instance, config)] = pg_rows(url, "SELECT host, instance, config FROM runs")
    assert (host, instance) == (socket.gethostname(), "backtest") and json.loads(config)["kind"] == "backtest"
    for sql in (ORDER_ROWS, REPORT_ROWS):
        assert pg_rows(url, sql, (pg.run_id,)) == sqlite_rows(lite_db, sql, (lite.run_id,))
    assert pg_rows(url, "SELECT COUNT(*), MAX(sharpe) FROM performance_metrics") == sqlite_rows(
        lite_db, "SELECT COUNT(*), MAX(sharpe) FROM performance_metrics")  # the last sample's whole-run Sharpe

    assert main(["report", url, "--run", str(pg.run_id), "--json"]) == 0
    from_pg = json.loads(capsys.readouterr().out)
    assert main(["report", str(lite_db), "--json", "--no-plot"]) == 0
    from_sqlite = json.loads(capsys.readouterr().out)
    for key in ("performance", "symbols", "fills", "orders_by_status", "first_ts_ns", "last_ts_ns", "notes"):
        assert from_pg[key] == from_sqlite[key], key
    assert main(["report", url, "--json"]) == 0
    overview = json.loads(capsys.readouterr().out)
    assert (overview["runs"], overview["backtests"]) == (1, 1)
    assert [(i["host"], i["instance"]) for i in overview["instances"]] == [(socket.gethostname(), "backtest")]
    assert overview["total"]["fills"] == pg.fills
    assert overview["total"]["total_pnl"] == pytest.approx(from_pg["performance"]["total_pnl"])


def test_backtest_into_postgres_when_it_fails_then_no_run_is_left(pg_database: str, minutes: Path,
                                                                  tmp_path: Path) -> None:
    with gzip.open(minutes, "rb") as f:
        lines = [line for line in f if b"lastUpdateId" not in line[:40]]
    no_snapshot = tmp_path / "no_snapshot.gz"
    with gzip.open(no_snapshot, "wb") as f:
        f.writelines(lines)
    with pytest.raises(BacktestError, match="no depth snapshot"):
        run_backtest(btc_config(), [str(no_snapshot)], pg_database, log=LOG)
    for table in ("runs", "orders", "executions", "performance_metrics"):
        assert pg_rows(pg_database, f"SELECT COUNT(*) FROM {table}") == [(0,)], table


def test_sweep_into_postgres_when_done_then_every_run_under_its_name_and_the_database_run_ids(
    pg_database: str, minutes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = pg_database
    sets = [{"imbalance_threshold": 0.3}, {"imbalance_threshold": 0.5}]
    sweep = run_sweep(btc_config(), [str(minutes)], sets, url, workers=2, name="night")
    assert not sweep.failed and sweep.db_path == url
    done = {o.result["run_id"]: o for o in sweep.outcomes}
    runs = {run_id: (host, instance, json.loads(config)["params"]) for run_id, host, instance, config in pg_rows(
        url, "SELECT run_id, host, instance, config FROM runs")}
    assert set(runs) == set(done)
    for run_id, outcome in done.items():
        assert runs[run_id] == (socket.gethostname(), "night", outcome.params)
        assert outcome.result["db_path"] == url and outcome.result["fills"] > 0
        assert pg_rows(url, "SELECT COUNT(*) FROM orders WHERE run_id = ?", (run_id,)) == [
            (outcome.result["orders"],)]
        assert pg_rows(url, "SELECT COUNT(*) FROM executions WHERE run_id = ?", (run_id,)) == [
            (outcome.result["reports"],)]
    assert main(["report", url, "--compare", "--json"]) == 0
    compared = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert {run_id: (row["instance"], row["kind"], json.loads(row["params"])) for run_id, row in compared.items()} == {
        run_id: ("night", "backtest", outcome.params) for run_id, outcome in done.items()}
    assert {run_id: row["fills"] for run_id, row in compared.items()} == {
        run_id: outcome.result["fills"] for run_id, outcome in done.items()}


@pytest.mark.parametrize("command", ["backtest", "sweep"])
def test_backtest_and_sweep_when_nothing_listens_at_the_url_then_one_line_exit_2(minutes: Path, command: str) -> None:
    url = f"postgresql://desk:s3cret@127.0.0.1:{free_port()}/hft"
    extra = ["--grid", "imbalance_threshold=0.3,0.5", "--json"] if command == "sweep" else []
    result = hft(command, str(minutes), "--db", url, *extra)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "s3cret" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"hft {command}: cannot connect to postgresql://desk:***@127.0.0.1:")
