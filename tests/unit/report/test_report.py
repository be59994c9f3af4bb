"""``hft report``: figures of a hand-built database, text and JSON output, the PNG, errors and the CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hft.cli import main
from hft.persistence.metrics import sharpe
from hft.persistence.store import SCHEMA, SCHEMA_VERSION
from hft.report import (
    EQUITY_FROM_METRICS,
    EQUITY_FROM_TRADES,
    ReportError,
    load_report,
    render_text,
    report_json,
    write_plot,
)

SECOND = 1_000_000_000
T0 = 1_714_564_800 * SECOND  # 2024-05-01 12:00:00 UTC
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# (exec_id, symbol, side, liquidity, price, size, fee, pnl, closed, position, realized_pnl, seconds after T0)
# BTC: a losing round trip (bought 60,000, sold 59,900); ETH: bought 1 at 3,000, sold half at 3,100 (a win)
FILLS = [
    (1, "BTCUSDT", "BUY", "TAKER", 60_000.0, 0.1, 0.6, -0.6, 0.0, 0.1, -0.6, 1),
    (2, "ETHUSDT", "BUY", "MAKER", 3_000.0, 1.0, 0.3, -0.3, 0.0, 1.0, -0.3, 2),
    (3, "BTCUSDT", "SELL", "MAKER", 59_900.0, 0.1, 0.599, -10.599, 0.1, 0.0, -11.199, 3),
    (4, "ETHUSDT", "SELL", "TAKER", 3_100.0, 0.5, 0.155, 49.845, 0.5, 0.5, 49.545, 4),
]
# total PnL samples: the fills above, ETH marked at 3,050 by the last one (0.5 * 50 = 25 unrealized)
SAMPLES = [(1, -0.6), (2, -0.9), (3, -11.499), (4, 48.346), (5, 63.346)]
REALIZED, UNREALIZED, FEES = 38.346, 25.0, 1.654


def insert_fills(db: sqlite3.Connection, run_id: int) -> None:
    for exec_id, symbol, side, liquidity, price, size, fee, pnl, closed, position, realized, second in FILLS:
        ts = T0 + second * SECOND
        db.execute(
            "INSERT INTO orders (run_id, order_id, command, symbol, side, order_type, tif, price, size, price_fp, "
            "size_fp, expire_ts, target_order_id, strategy_id, ts_exch, ts_tick_recv, ts_init, md_cursor, status, "
            "filled, filled_fp, avg_price, last_exec_id) "
            "VALUES (?, ?, 'NEW', ?, ?, 'LIMIT', 'GTC', ?, ?, 0, 0, 0, 0, 1, ?, ?, ?, 0, 'FILLED', ?, 0, ?, ?)",
            (run_id, exec_id, symbol, side, price, size, ts - SECOND // 2, ts, ts, size, price, exec_id),
        )
        db.execute(  # trades is a view of the executions that filled (size_fp > 0)
            "INSERT INTO executions (run_id, exec_id, order_id, symbol, side, status, reason, liquidity, price, size, "
            "leaves, fee, pnl, closed, position, entry_price, realized_pnl, price_fp, size_fp, leaves_fp, fee_fp, "
            "pnl_fp, position_fp, realized_pnl_fp, ts_exch, ts_tick_recv, ts_order_init, ts_init) "
            "VALUES (?, ?, ?, ?, ?, 'FILLED', '', ?, ?, ?, 0, ?, ?, ?, ?, NULL, ?, 0, 1, 0, 0, 0, 0, 0, ?, ?, ?, ?)",
            (run_id, exec_id, exec_id, symbol, side, liquidity, price, size, fee, pnl, closed, position, realized,
             ts, ts, ts, ts),
        )


def build_db(path: Path) -> Path:
    """Run 1: fills only (no metrics, no positions); run 2: no fills; run 3 (latest): fills, positions, metrics."""
    db = sqlite3.connect(path)
    for statement in SCHEMA:
        db.execute(statement)
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    for run_id in (1, 2, 3):
        db.execute("INSERT INTO runs (run_id) VALUES (?)", (run_id,))
    insert_fills(db, 1)
    db.execute(
        "INSERT INTO orders (run_id, order_id, command, symbol, side, order_type, tif, price, size, price_fp, size_fp, "
        "expire_ts, target_order_id, strategy_id, ts_exch, ts_tick_recv, ts_init, md_cursor, status) "
        "VALUES (2, 1, 'NEW', 'BTCUSDT', 'BUY', 'LIMIT', 'GTC', 59000, 0.1, 0, 0, 0, 0, 1, ?, ?, ?, 0, 'CANCELLED')",
        (T0, T0, T0),
    )
    insert_fills(db, 3)
    db.execute(
        "INSERT INTO orders (run_id, order_id, command, symbol, side, order_type, tif, price, size, price_fp, size_fp, "
        "expire_ts, target_order_id, strategy_id, ts_exch, ts_tick_recv, ts_init, md_cursor, status) VALUES "
        "(3, 5, 'NEW', 'ETHUSDT', 'SELL', 'LIMIT', 'GTC', 3200, 0.5, 0, 0, 0, 0, 1, ?, ?, ?, 0, 'CANCELLED'), "
        "(3, 6, 'CANCEL', 'ETHUSDT', '', 'LIMIT', 'GTC', 0, 0, 0, 0, 0, 5, 1, ?, ?, ?, 0, 'PENDING')",
        (T0 + 4 * SECOND, T0, T0, T0 + 5 * SECOND, T0, T0),
    )
    db.executemany(
        "INSERT INTO positions VALUES (3, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
        [("BTCUSDT", 0.0, None, 59_900.0, -11.199, 0.0, 1.199, 3, T0 + 3 * SECOND),
         ("ETHUSDT", 0.5, 3_000.0, 3_050.0, 49.545, 25.0, 0.455, 4, T0 + 5 * SECOND)],
    )
    db.executemany(
        "INSERT INTO performance_metrics (run_id, sample_id, ts_exch, total_pnl, realized_pnl, unrealized_pnl, fees, "
        "sharpe, max_drawdown, win_rate, avg_trade_pnl, trade_count) "
        "VALUES (3, ?, ?, ?, 0, 0, 0, NULL, 11.499, 0.5, 19.623, 2)",
        [(k, T0 + second * SECOND, total) for k, (second, total) in enumerate(SAMPLES)],
    )
    db.commit()
    db.close()
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return build_db(tmp_path / "hft.db")


def test_load_report_when_run_has_metrics_then_figures_from_fills_positions_and_samples(db_path: Path) -> None:
    result = report_json(load_report(db_path))
    assert result["run_id"] == 3  # the latest run by default
    assert result["equity_source"] == EQUITY_FROM_METRICS
    assert result["equity_samples"] == len(SAMPLES)
    perf = result["performance"]
    assert perf["total_pnl"] == pytest.approx(REALIZED + UNREALIZED)
    assert perf["realized_pnl"] == pytest.approx(REALIZED)
    assert perf["unrealized_pnl"] == pytest.approx(UNREALIZED)
    assert perf["fees"] == pytest.approx(FEES)
    assert perf["max_drawdown"] == pytest.approx(11.499)  # agrees with the stored sample's max_drawdown
    assert (perf["win_rate"], perf["trade_count"]) == (0.5, 2)
    assert perf["avg_trade_pnl"] == pytest.approx((49.845 - 10.599) / 2)
    expected_sharpe = sharpe(np.array([t for _, t in SAMPLES]), np.array([T0 + s * SECOND for s, _ in SAMPLES]))
    assert expected_sharpe is not None
    assert perf["sharpe"] == pytest.approx(expected_sharpe)
    assert result["fills"] == 4
    assert result["orders_by_status"] == {"CANCELLED": 1, "FILLED": 4}
    assert result["cancel_requests"] == 1
    assert result["duration_s"] == pytest.approx(4.5)  # first order (0.5 s) to the last sample (5 s)
    assert result["notes"] == []  # the last sample agrees with fills + positions
    json.dumps(result)  # plain values only


def test_load_report_when_two_symbols_then_per_symbol_table(db_path: Path) -> None:
    btc, eth = report_json(load_report(db_path))["symbols"]
    assert btc["symbol"] == "BTCUSDT"
    assert (btc["fills"], btc["buys"], btc["sells"], btc["closing_trades"]) == (2, 1, 1, 1)
    assert btc["volume"] == pytest.approx(0.2)
    assert btc["notional"] == pytest.approx(11_990.0)
    assert btc["maker_share"] == 0.5
    assert btc["realized_pnl"] == pytest.approx(-11.199)
    assert btc["fees"] == pytest.approx(1.199)
    assert (btc["position"], btc["win_rate"]) == (0.0, 0.0)
    assert eth["symbol"] == "ETHUSDT"
    assert eth["volume"] == pytest.approx(1.5)
    assert eth["notional"] == pytest.approx(4_550.0)
    assert eth["realized_pnl"] == pytest.approx(49.545)
    assert eth["unrealized_pnl"] == pytest.approx(25.0)
    assert (eth["position"], eth["closing_trades"], eth["win_rate"]) == (0.5, 1, 1.0)


def test_load_report_when_run_has_no_metrics_then_equity_is_cumulative_realized_pnl_and_said_so(db_path: Path) -> None:
    report = load_report(db_path, run_id=1)
    assert report.equity_source == EQUITY_FROM_TRADES
    np.testing.assert_allclose(report.equity, np.cumsum([fill[7] for fill in FILLS]))
    assert report.performance.max_drawdown == pytest.approx(11.499)
    assert report.performance.unrealized_pnl == 0.0
    assert report.performance.total_pnl == pytest.approx(REALIZED)
    assert any("cumulative realized PnL" in note for note in report.notes)
    assert any("no marks" in note for note in report.notes)  # ETH is still open
    assert "realized PnL only" in render_text(report)


def test_load_report_when_last_sample_lags_the_fills_then_noted(db_path: Path) -> None:
    db = sqlite3.connect(db_path)
    db.execute("DELETE FROM performance_metrics WHERE run_id = 3 AND sample_id = 4")
    db.commit()
    db.close()
    report = load_report(db_path)
    assert report.performance.total_pnl == pytest.approx(REALIZED + UNREALIZED)  # not copied from the sample
    assert any("predates" in note for note in report.notes)


def test_render_text_when_report_then_contains_its_figures(db_path: Path) -> None:
    text = render_text(load_report(db_path))
    for expected in ("run 3", "+63.3460", "+38.3460", "+25.0000", "1.6540", "11.4990", "+19.6230", "50.0 %",
                     "BTCUSDT", "ETHUSDT", "11,990.00", "FILLED 4", "4.5 s", "2024-05-01 12:00:00"):
        assert expected in text, expected
    lines = text.splitlines()
    header = next(line for line in lines if line.strip().startswith("symbol"))
    btc = next(line for line in lines if line.strip().startswith("BTCUSDT"))
    assert len(header) == len(btc)  # the table is aligned


def test_load_report_when_run_has_no_fills_then_flat_plot_and_says_no_fills(db_path: Path, tmp_path: Path) -> None:
    report = load_report(db_path, run_id=2)
    assert report.fills == 0
    assert report.performance.trade_count == 0
    assert report.performance.max_drawdown == 0.0
    assert "no fills" in report.notes
    assert "no fills" in render_text(report)
    png = write_plot(report, tmp_path / "empty.png")
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_write_plot_when_default_path_then_valid_png_next_to_the_database(db_path: Path) -> None:
    png = write_plot(load_report(db_path))
    assert png == db_path.with_name("hft-run3.png")
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000


def test_write_plot_when_directory_missing_then_report_error(db_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="--no-plot"):
        write_plot(load_report(db_path), tmp_path / "missing" / "x.png")


def test_load_report_when_read_then_database_unchanged(db_path: Path) -> None:
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    load_report(db_path)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["hft.db"]


def test_load_report_when_database_missing_then_report_error_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no database at .*hft run"):
        load_report(tmp_path / "nothing.db")


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b""])
def test_load_report_when_not_an_hft_database_then_report_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(content)
    with pytest.raises(ReportError, match="not an hft database"):
        load_report(path)


def test_load_report_when_schema_version_differs_then_report_error(db_path: Path) -> None:
    db = sqlite3.connect(db_path)
    db.execute("UPDATE schema_version SET version = 2")
    db.commit()
    db.close()
    with pytest.raises(ReportError, match="schema version 2"):
        load_report(db_path)


def test_load_report_when_run_unknown_then_report_error_lists_runs(db_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no run 99.*1, 2, 3"):
        load_report(db_path, run_id=99)


def test_load_report_when_no_runs_then_report_error(db_path: Path) -> None:
    db = sqlite3.connect(db_path)
    for table in ("executions", "orders", "positions", "performance_metrics", "runs"):  # trades: a view
        db.execute(f"DELETE FROM {table}")
    db.commit()
    db.close()
    with pytest.raises(ReportError, match="no runs"):
        load_report(db_path)


def test_cli_report_when_json_then_exit_0_and_parsable(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(db_path), "--json", "--no-plot"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["performance"]["total_pnl"] == pytest.approx(REALIZED + UNREALIZED)
    assert result["plot"] is None
    assert not db_path.with_name("hft-run3.png").exists()


def test_cli_report_when_run_and_png_given_then_text_and_plot(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "run1.png"
    assert main(["report", str(db_path), "--run", "1", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "run 1 of" in out
    assert f"plot: {png}" in out
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_cli_report_when_db_omitted_then_taken_from_config(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hft.toml"
    config.write_text(f'[persistence]\ndb_path = "{db_path}"\n')
    assert main(["report", "--config", str(config), "--json", "--no-plot"]) == 0
    assert json.loads(capsys.readouterr().out)["db_path"] == str(db_path)


def test_cli_report_when_run_unknown_then_exit_2_with_message(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(db_path), "--run", "99", "--no-plot"]) == 2
    captured = capsys.readouterr()
    assert "hft report:" in captured.err
    assert "no run 99" in captured.err
    assert captured.out == ""


def test_cli_report_when_run_as_module_and_db_missing_then_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    done = subprocess.run([sys.executable, "-m", "hft.cli", "report", str(missing)], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 2
    assert f"no database at {missing}" in done.stderr
