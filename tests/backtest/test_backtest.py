"""`hft backtest` and `hft convert`: one process over recordings or event files, consecutive files continuing one
book, the same samples every run, and one clear error for every input it cannot use. (Its equality with the
four-process replay is asserted in test_replay.py and test_strategies.py, next to those replays.)"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from hft.backtest.events import write_events
from hft.backtest.run import BacktestError, run_backtest
from hft.config import Config, load_config, resolve_module_paths
from hft.strategy.loader import StrategyError
from tests.integration.test_pipeline import hft
from tests.integration.test_replay import BTC, deterministic_rows, needs_data

REPO = Path(__file__).resolve().parents[2]
MARKET_MAKER = REPO / "examples" / "market_maker.toml"
LOG = logging.getLogger("test.backtest")

pytestmark = needs_data


@pytest.fixture(scope="module")
def btc_lines() -> list[bytes]:
    with gzip.open(BTC, "rb") as f:
        return f.read().splitlines(keepends=True)


def write_gz(path: Path, lines: list[bytes]) -> Path:
    with gzip.open(path, "wb") as f:
        f.writelines(lines)
    return path


def btc_config() -> Config:
    import msgspec

    from hft.cli import replay_symbols

    return msgspec.structs.replace(Config(), symbols=replay_symbols(str(BTC)))


def run_rows(config: Config, inputs: list[Path], db: Path, **kwargs) -> tuple[object, tuple]:
    result = run_backtest(config, [str(p) for p in inputs], str(db), log=LOG, **kwargs)
    return result, deterministic_rows(db)


def test_two_consecutive_files_when_backtested_then_one_book_and_the_same_fills_as_the_whole_file(
    tmp_path: Path, btc_lines: list[bytes], instance: str
) -> None:
    """A day split in two files is one stream: the book continues across the files (no resync), and the orders
    and fills equal those of the whole file, from the recordings, from one event file converted from both, and
    from the four-process lock-step replay of the two files."""
    half = len(btc_lines) // 2
    first = write_gz(tmp_path / "a.gz", btc_lines[:half])
    second = write_gz(tmp_path / "b.gz", btc_lines[half:])
    config = btc_config()
    whole, whole_rows = run_rows(config, [BTC], tmp_path / "whole.db")
    split, split_rows = run_rows(config, [first, second], tmp_path / "split.db")
    assert whole.orders > 0 and whole.fills > 0
    assert split_rows == whole_rows
    assert split.messages == whole.messages == len(btc_lines)
    assert split.feed["resyncs"] == 0 and split.feed["gaps"] == 0 and split.feed["snapshots_applied"] == 1
    events = tmp_path / "both.npz"
    write_events(config, [str(first), str(second)], events, LOG)
    converted, converted_rows = run_rows(config, [events], tmp_path / "converted.db")
    assert converted_rows == whole_rows
    assert converted.messages == whole.messages and converted.events == whole.events
    replay_db = tmp_path / "replay.db"
    result = hft("run", "--source", "replay", str(first), str(second), "--instance", instance, "--db",
                 str(replay_db), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["stop_reason"] == "replay-finished"
    assert deterministic_rows(replay_db) == whole_rows


def test_a_gap_between_files_when_backtested_then_counted_and_the_book_waits_for_a_snapshot(
    tmp_path: Path, btc_lines: list[bytes]
) -> None:
    half = len(btc_lines) // 2
    first = write_gz(tmp_path / "a.gz", btc_lines[:half])
    # a minute of the day is missing between the files: the update ids break
    second = write_gz(tmp_path / "b.gz", btc_lines[half + 5000:])
    result = run_backtest(btc_config(), [str(first), str(second)], str(tmp_path / "gap.db"), log=LOG)
    assert result.feed["gaps"] >= 1
    whole = run_backtest(btc_config(), [str(first)], str(tmp_path / "first.db"), log=LOG)
    assert result.orders >= whole.orders  # the first file's trading stands; nothing after the break is invented


def test_backtest_when_run_twice_then_the_same_equity_samples_on_the_venue_clock(tmp_path: Path) -> None:
    """Samples on the venue clock: a replayed day gives the same performance table every time, one sample per
    interval of market time (346 s of data: ~346 samples at 1 s, ~692 at 500 ms)."""
    config = resolve_module_paths(load_config(str(MARKET_MAKER)), str(MARKET_MAKER))
    tables = []
    for attempt in range(2):
        db = tmp_path / f"run{attempt}.db"
        run_backtest(config, [str(BTC)], str(db), log=LOG)
        with sqlite3.connect(db) as conn:
            tables.append(conn.execute(
                "SELECT sample_id, ts_exch, total_pnl, realized_pnl, unrealized_pnl, fees, sharpe, max_drawdown, "
                "win_rate, trade_count FROM performance_metrics ORDER BY sample_id").fetchall())
    assert tables[0] == tables[1]
    assert 340 <= len(tables[0]) <= 350
    ts = [row[1] for row in tables[0]]
    assert all(b - a == 1_000_000_000 for a, b in itertools.pairwise(ts[:-1]))  # the last: end of data
    assert tables[0][-1][6] is not None  # Sharpe of the whole curve on the last sample
    finer = run_backtest(config, [str(BTC)], str(tmp_path / "fine.db"), log=LOG, sample_interval_ms=500)
    assert 2 * len(tables[0]) - 4 <= finer.samples <= 2 * len(tables[0]) + 1
    result = hft("report", str(tmp_path / "run0.db"), "--json", "--no-plot")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["fills"] > 0 and report["performance"]["total_pnl"] == pytest.approx(tables[0][-1][2])


def test_inputs_out_of_time_order_when_backtested_then_one_clear_error_and_no_run_left(
    tmp_path: Path, btc_lines: list[bytes]
) -> None:
    half = len(btc_lines) // 2
    first = write_gz(tmp_path / "a.gz", btc_lines[:half])
    second = write_gz(tmp_path / "b.gz", btc_lines[half:])
    db = tmp_path / "bad.db"
    with pytest.raises(BacktestError, match="give the recordings in time order"):
        run_backtest(btc_config(), [str(second), str(first)], str(db), log=LOG)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0  # a failed run is not a result


@pytest.mark.parametrize("damage", ["truncated", "no_snapshot", "not_a_recording"])
def test_bad_input_when_backtested_from_the_cli_then_one_line_and_exit_2(
    tmp_path: Path, btc_lines: list[bytes], damage: str
) -> None:
    path = tmp_path / "bad.gz"
    if damage == "truncated":
        data = BTC.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
        expected = "bad.gz"
    elif damage == "no_snapshot":
        write_gz(path, [line for line in btc_lines if b"lastUpdateId" not in line[:40]])
        expected = "no depth snapshot"
    else:
        path.write_bytes(b"hello\n")
        expected = "not a recording"
    result = hft("backtest", str(path), "--config", str(MARKET_MAKER), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert expected in result.stderr.strip().splitlines()[-1]


def test_unknown_parameter_when_backtested_then_clear_error_naming_it(tmp_path: Path) -> None:
    config = resolve_module_paths(load_config(str(MARKET_MAKER)), str(MARKET_MAKER))
    with pytest.raises(StrategyError, match="unknown parameter 'order_sise'"):
        run_backtest(config, [str(BTC)], str(tmp_path / "p.db"), params={"order_sise": 0.002}, log=LOG)
    result = hft("backtest", str(BTC), "--config", str(MARKET_MAKER), "--param", "order_sise=0.002",
                 "--db", str(tmp_path / "p.db"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "order_sise" in result.stderr


def test_a_parameter_when_given_then_it_changes_the_run_and_is_recorded_in_the_run_row(tmp_path: Path) -> None:
    config = resolve_module_paths(load_config(str(MARKET_MAKER)), str(MARKET_MAKER))
    db = tmp_path / "p.db"
    base = run_backtest(config, [str(BTC)], str(db), log=LOG)
    wider = run_backtest(config, [str(BTC)], str(db), params={"half_spread_ticks": 3.0}, log=LOG)
    assert wider.fills < base.fills  # quoting 3 ticks behind the touch fills less
    with sqlite3.connect(db) as conn:
        runs = {row[0]: json.loads(row[1]) for row in conn.execute("SELECT run_id, config FROM runs")}
    assert runs[wider.run_id]["kind"] == "backtest"
    assert runs[wider.run_id]["params"] == {"half_spread_ticks": 3.0}
    assert runs[wider.run_id]["config"]["strategy"]["params"]["half_spread_ticks"] == 3.0
    assert runs[base.run_id]["params"] == {}
