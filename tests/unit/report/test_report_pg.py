"""`hft report` over PostgreSQL against a real server: the overview of runs of two hosts and two instances per host,
instance, strategy and in total; one run's report equal to the SQLite store's for the same rows; `--compare` naming
each run's host and instance; a bad URL is one line and exit 2."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hft.cli import main
from hft.persistence.pg import PgTradeStore, pg_schema
from hft.persistence.store import SCHEMA_VERSION
from hft.report import load_overview, load_report, render_overview, report_json
from tests.pg import free_port
from tests.unit.report.test_report import REALIZED, UNREALIZED, build_db

REPO = Path(__file__).resolve().parents[3]
# a pipeline of one strategy, and one of two strategy instances each on its own symbol (strategy_id 1 and 2)
ONE = {"instance": "main", "strategy": {"module": "imbalance", "params": {}, "instances": []}}
TWO = {"instance": "eth", "strategy": {"module": "imbalance", "params": {}, "instances": [
    {"name": "taker", "module": "imbalance", "symbols": ["BTCUSDT"], "params": {}},
    {"name": "mm", "module": "/opt/desk/examples/market_maker.py", "symbols": ["ETHUSDT"], "params": {}},
]}}
COPIED = ("orders", "executions", "positions", "performance_metrics")


def sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as db:
        cursor = db.execute(statement.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def pipeline_run(url: str, host: str, config: dict, generation: int, sqlite_db: Path, sqlite_run: int) -> int:
    """Register a run of ``host`` and copy the rows of a run of the hand-built SQLite database into it."""
    store = PgTradeStore(url, [], host, config["instance"], generation, json.dumps(config))
    source = sqlite3.connect(sqlite_db)
    store.import_rows((table, source.execute(f"SELECT * FROM {table} WHERE run_id = ?", (sqlite_run,)).fetchall())
                      for table in COPIED)
    source.close()
    store.close()
    return store.run_id


@pytest.fixture
def desk(pg_database: str, tmp_path: Path) -> tuple[str, dict[str, int]]:
    """Three pipeline runs (the fills of test_report.FILLS: BTC a losing round trip, ETH half closed at a gain):

    * A: host-a, instance main, one strategy; the run's metrics samples end after its last fill (ETH unrealized
      25.0 at the end) while its positions row still holds the older mark (20.0): the sample counts, as in the
      run's own report;
    * B: host-a, instance eth, two strategies: taker trades BTC, mm trades ETH (25.0 unrealized in its positions
      row); its last sample says 70.0 in total, a later mark than the positions rows (noted);
    * C: host-b, instance main, one strategy: the BTC round trip only, no positions, no samples."""
    url = pg_database
    sqlite_db = build_db(tmp_path / "hft.db")
    runs = {"A": pipeline_run(url, "host-a", ONE, 1, sqlite_db, 3),
            "B": pipeline_run(url, "host-a", TWO, 1, sqlite_db, 3),
            "C": pipeline_run(url, "host-b", ONE, 1, sqlite_db, 1)}
    sql(url, "UPDATE positions SET unrealized_pnl = 20.0 WHERE run_id = ? AND symbol = 'ETHUSDT'", (runs["A"],))
    sql(url, "UPDATE orders SET strategy_id = 2 WHERE run_id = ? AND symbol = 'ETHUSDT'", (runs["B"],))
    sql(url, "UPDATE performance_metrics SET total_pnl = 70.0 WHERE run_id = ? AND sample_id = 4", (runs["B"],))
    for table in ("executions", "orders"):
        sql(url, f"DELETE FROM {table} WHERE run_id = ? AND symbol = 'ETHUSDT'", (runs["C"],))
    return url, runs


# (runs, orders, fills, maker share, notional, fees, realized, unrealized, closing trades, win rate)
BTC_ROUND_TRIP = (1, 2, 2, 0.5, 11_990.0, 1.199, -11.199, 0.0, 1, 0.0)
EXPECTED = {
    ("hosts", "host-a"): (2, 10, 8, 0.5, 33_080.0, 3.308, 2 * REALIZED, 50.0, 4, 0.5),
    ("hosts", "host-b"): BTC_ROUND_TRIP,
    ("instances", "host-a/eth"): (1, 5, 4, 0.5, 16_540.0, 1.654, REALIZED, 25.0, 2, 0.5),
    ("instances", "host-a/main"): (1, 5, 4, 0.5, 16_540.0, 1.654, REALIZED, UNREALIZED, 2, 0.5),
    ("instances", "host-b/main"): BTC_ROUND_TRIP,
    ("strategies", "main (imbalance)"): (2, 7, 6, 0.5, 28_530.0, 2.853, REALIZED - 11.199, 25.0, 3, 1 / 3),
    ("strategies", "mm (market_maker)"): (1, 3, 2, 0.5, 4_550.0, 0.455, 49.545, 25.0, 1, 1.0),
    ("strategies", "taker (imbalance)"): BTC_ROUND_TRIP,
    ("total", ""): (3, 12, 10, 0.5, 45_070.0, 4.507, 2 * REALIZED - 11.199, 50.0, 5, 0.4),
}
FIELDS = ("runs", "orders", "fills", "maker_share", "notional", "fees", "realized_pnl", "unrealized_pnl",
          "closing_trades", "win_rate")


def label(section: str, line: dict) -> str:
    if section == "hosts":
        return line["host"]
    if section == "instances":
        return f"{line['host']}/{line['instance']}"
    if section == "strategies":
        return f"{line['strategy']} ({line['module']})"
    return ""


def test_report_when_postgres_holds_runs_of_two_hosts_then_lines_per_host_instance_strategy_and_total(
    desk: tuple[str, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, runs = desk
    assert main(["report", url, "--json"]) == 0
    overview = json.loads(capsys.readouterr().out)
    assert (overview["runs"], overview["backtests"]) == (3, 0)
    lines = {(section, label(section, line)): line for section in ("hosts", "instances", "strategies")
             for line in overview[section]}
    lines[("total", "")] = overview["total"]
    assert set(lines) == set(EXPECTED)
    for key, expected in EXPECTED.items():
        got = tuple(lines[key][field] for field in FIELDS)
        assert got == pytest.approx(expected), key
        assert lines[key]["total_pnl"] == pytest.approx(expected[6] + expected[7]), key
    # B's strategies keep their own positions' marks; the run's later sample (70.0 in total) is noted
    assert len(overview["notes"]) == 1 and f"run {runs['B']} (host-a/eth)" in overview["notes"][0]
    # a pipeline of one strategy: its line is what the run's own report says (the sample, not the older mark)
    single = load_report(url, runs["A"]).performance
    assert lines[("instances", "host-a/main")]["total_pnl"] == pytest.approx(single.total_pnl)


def test_render_overview_when_postgres_then_a_section_per_level_and_the_total_last(
    desk: tuple[str, dict[str, int]]
) -> None:
    url, _ = desk
    text = render_overview(load_overview(url))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0].startswith("3 runs in " + url)
    assert "2 hosts, 3 instances, 3 strategies" in lines[1]
    sections = [lines.index(name) for name in ("host", "instance", "strategy")]
    assert sections == sorted(sections)
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:4] == ["3", "12", "10"] and "+115.4930" in total and "40.0 %" in total
    assert lines.index(total) > sections[-1]
    mm = next(line for line in lines if line.startswith("mm (market_maker)"))
    assert "+49.5450" in mm and "+74.5450" in mm
    assert "host-b/main" in text and text.count("note:") == 1


def test_report_run_when_postgres_then_the_sqlite_report_of_the_same_rows(pg_database: str, tmp_path: Path) -> None:
    sqlite_db = build_db(tmp_path / "hft.db")
    run_id = pipeline_run(pg_database, "host-a", ONE, 7, sqlite_db, 3)
    pg = report_json(load_report(pg_database, run_id))
    lite = report_json(load_report(sqlite_db, 3))
    assert [pg.pop(key) for key in ("db_path", "host", "instance", "run_id")] == [pg_database, "host-a", "main",
                                                                                  run_id]
    for key in ("db_path", "run_id", "started_at"):
        lite.pop(key)
    pg.pop("started_at")  # (registered when copied)
    assert pg == lite  # every figure, exactly: the same queries and code over either store


def test_report_run_when_postgres_then_text_names_host_and_instance_and_no_plot_unless_asked(
    pg_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = pipeline_run(pg_database, "host-b", ONE, 1, build_db(tmp_path / "hft.db"), 3)
    monkeypatch.chdir(tmp_path)
    assert main(["report", pg_database, "--run", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run {run_id} of {pg_database}  (host host-b, instance main, started ")
    assert "plot:" not in out and not list(tmp_path.glob("*.png"))
    png = tmp_path / "run.png"
    assert main(["report", pg_database, "--run", str(run_id), "--png", str(png)]) == 0
    assert f"plot: {png}" in capsys.readouterr().out and png.stat().st_size > 10_000


def test_compare_when_postgres_then_every_run_with_its_host_and_instance(
    desk: tuple[str, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, runs = desk
    assert main(["report", url, "--compare", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["host"], r["instance"], r["kind"]) for r in rows] == [
        (runs["A"], "host-a", "main", "pipeline"), (runs["B"], "host-a", "eth", "pipeline"),
        (runs["C"], "host-b", "main", "pipeline")]
    assert [r["total_pnl"] for r in rows] == pytest.approx([REALIZED + UNREALIZED, 70.0, -11.199])
    export = tmp_path / "compare.csv"
    assert main(["report", url, "--compare", str(runs["C"]), str(runs["A"]), "--export", str(export)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:4] == ["run", "host", "instance", "kind"]
    with open(export) as handle:
        exported = list(csv.DictReader(handle))
    assert [(int(r["run_id"]), r["host"], r["instance"]) for r in exported] == [
        (runs["C"], "host-b", "main"), (runs["A"], "host-a", "main")]


def test_report_when_postgres_holds_no_runs_then_exit_2_saying_so(
    pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for statement in pg_schema():
        sql(pg_database, statement)
    sql(pg_database, "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    assert main(["report", pg_database]) == 2
    assert "holds no runs yet" in capsys.readouterr().err


def hft_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hft.cli", "report", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


@pytest.mark.parametrize("extra", [[], ["--compare"], ["--run", "1"]])
def test_report_when_nothing_listens_at_the_url_then_one_line_exit_2_without_the_password(extra: list[str]) -> None:
    done = hft_report(f"postgresql://desk:s3cret@127.0.0.1:{free_port()}/hft", *extra)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("hft report: cannot connect to postgresql://desk:***@127.0.0.1:")
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("url", ["postgresql://desk:s3cret@127.0.0.1:port/hft", "mysql://127.0.0.1/hft"])
def test_report_when_the_url_is_malformed_then_one_line_exit_2(url: str) -> None:
    done = hft_report(url)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr


def test_report_when_the_postgres_database_is_not_an_hft_database_then_one_line_exit_2(pg_database: str) -> None:
    done = hft_report(pg_database)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "is not an hft database (no table" in done.stderr and "persistence.url" in done.stderr
