"""Replays through the whole pipeline: real recorded Binance data trades, and the same file always gives the
same orders and fills; `hft record` output replays too, at a chosen pace."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from shm_layout.region import find_segments
from tests.integration.test_pipeline import hft

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance-spot"
BTC = DATA / "hftbacktest_spot_btcusdt_20240808.gz"
needs_data = pytest.mark.skipif(not BTC.is_file(), reason=f"recorded data {BTC} is absent")


def deterministic_rows(db: Path) -> tuple[list[tuple], list[tuple]]:
    """Everything about orders and fills that does not depend on the machine's clock."""
    with sqlite3.connect(db) as conn:
        orders = conn.execute(
            "SELECT order_id, command, symbol, side, order_type, tif, price_fp, size_fp, md_cursor, target_order_id, "
            "status, reason, filled_fp FROM orders ORDER BY order_id"
        ).fetchall()
        reports = conn.execute(
            "SELECT exec_id, order_id, symbol, side, status, reason, liquidity, price_fp, size_fp, leaves_fp, fee_fp, "
            "realized_pnl_fp, position_fp, ts_exch FROM executions ORDER BY exec_id"
        ).fetchall()
    return orders, reports


@needs_data
@pytest.mark.parametrize("order_type", ["market", "post_only"])
def test_replay_real_btcusdt_then_trades_and_the_backtest_gives_identical_orders_and_fills(
    instance: str, tmp_path: Path, warm_backtest: None, order_type: str
) -> None:
    """Market orders walk the book; post-only orders rest, fill by queue position or expire: either way the
    broker's reports (status, prices, sizes, venue times) of the four-process lock-step replay are exactly those
    of `hft backtest` (one process, the same code), run twice."""
    config = tmp_path / "replay.toml"
    config.write_text(f'[strategy.params]\norder_type = "{order_type}"\n')
    db = tmp_path / "replay.db"
    result = hft("run", "--source", "replay", str(BTC), "--config", str(config), "--instance", instance,
                 "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["stop_reason"] == "replay-finished"
    assert summary["orders"] > 0 and summary["fills"] > 0  # the seed's strategy trades on real data
    assert summary["db_orders"] == summary["orders"] and summary["db_trades"] == summary["fills"]
    assert "BTCUSDT book synced from recorded snapshot" in result.stderr
    assert summary["ticks"] == 3449  # every book update evaluated: lock step loses none
    assert find_segments(instance) == []
    pipeline_rows = deterministic_rows(db)
    for attempt in range(2):
        backtest_db = tmp_path / f"backtest{attempt}.db"
        result = hft("backtest", str(BTC), "--config", str(config), "--db", str(backtest_db), "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        backtest = json.loads(result.stdout)
        assert deterministic_rows(backtest_db) == pipeline_rows
        assert backtest["fills"] == summary["fills"]
        assert backtest["realized_pnl"] == pytest.approx(summary["realized_pnl"]["BTCUSDT"], abs=1e-9)


def test_record_from_simulator_then_replay_at_double_speed_takes_about_half_the_time(
    instance: str, tmp_path: Path
) -> None:
    recording = tmp_path / "sim.gz"
    result = hft("record", "--out", str(recording), "--duration", "3", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    frames, snapshots = map(int, re.search(r"recorded (\d+) frames and (\d+) snapshots", result.stdout).groups())
    assert frames > 1000 and snapshots == 2
    result = hft("run", "--source", "replay", str(recording), "--speed", "2", "--instance", instance,
                 "--db", str(tmp_path / "r.db"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["stop_reason"] == "replay-finished"
    assert summary["ticks"] > 0  # both books synced from the recorded snapshots
    seconds = float(re.search(r"replay finished: \d+ messages in ([\d.]+) s", result.stderr).group(1))
    assert 1.2 <= seconds <= 3.0  # 3 s of recording at 2x (the first frames wait for the snapshot fetch)


def test_replay_when_file_is_not_a_recording_then_feed_reports_it_and_run_fails(
    instance: str, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.gz"
    junk.write_text("hello\n")
    result = hft("run", "--source", "replay", str(junk), "--instance", instance, "--db", str(tmp_path / "j.db"))
    assert result.returncode != 0
    assert "not a recording" in result.stderr
    assert find_segments(instance) == []
