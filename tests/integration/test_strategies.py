"""Strategies users write themselves, in `hft run`: the example market maker quotes both sides with cancels and
replaces, on the simulator and on recorded Binance data; a broken or raising strategy is stopped cleanly."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from shm_layout.region import find_segments
from tests.integration.test_pipeline import hft
from tests.integration.test_replay import BTC, deterministic_rows, needs_data

REPO = Path(__file__).resolve().parents[2]
MARKET_MAKER = REPO / "examples" / "market_maker.toml"
TAKER = REPO / "examples" / "taker.toml"
MAX_INVENTORY = 0.005  # examples/market_maker.toml


def check_market_maker_run(summary: dict, db: Path) -> None:
    """Both sides quoted, cancels and replaces, maker fills, the position within its limit, no unexplained
    rejects, and the database agrees with the run's summary."""
    assert summary["orders"] > 20 and summary["fills"] > 0 and summary["cancels"] > 0
    assert summary["rejects"] == 0  # post-only crosses and cancel races are counted apart
    assert summary["db_orders"] == summary["orders"] and summary["db_trades"] == summary["fills"]
    assert summary["db_executions"] == summary["executions"]
    with sqlite3.connect(db) as conn:
        sides = {row[0] for row in conn.execute("SELECT DISTINCT side FROM orders WHERE command = 'NEW'")}
        statuses = dict(conn.execute("SELECT command || '/' || status, COUNT(*) FROM orders GROUP BY 1"))
        liquidity = {row[0] for row in conn.execute("SELECT DISTINCT liquidity FROM trades")}
        worst = conn.execute("SELECT MAX(ABS(position)) FROM executions").fetchone()[0]
        reasons = {row[0] for row in conn.execute("SELECT DISTINCT reason FROM orders WHERE status = 'REJECTED'")}
        cancels = conn.execute("SELECT COUNT(*) FROM orders WHERE command != 'NEW'").fetchone()[0]
        cancel_rejects = conn.execute("SELECT COUNT(*) FROM orders WHERE status = 'CANCEL_REJECTED'").fetchone()[0]
    assert sides == {"BUY", "SELL"}
    assert not any(key.endswith("/PENDING") for key in statuses), statuses  # every command ended
    assert set(statuses) <= {"NEW/FILLED", "NEW/CANCELLED", "NEW/REJECTED", "NEW/EXPIRED", "CANCEL/DONE",
                             "CANCEL/CANCEL_REJECTED", "CANCEL_ALL/DONE"}, statuses
    assert statuses.get("NEW/CANCELLED", 0) > 0 and statuses.get("CANCEL/DONE", 0) > 0  # replaces happened
    assert liquidity == {"MAKER"}  # post-only: never took
    assert worst <= MAX_INVENTORY + 1e-12
    assert reasons <= {"POST_ONLY_WOULD_CROSS"}  # the only rejection a market maker expects
    assert cancels == summary["cancels"] and cancel_rejects == summary["cancel_rejects"]


def test_market_maker_example_when_run_on_the_simulator_then_quotes_both_sides_within_its_limit(
    instance: str, tmp_path: Path
) -> None:
    db = tmp_path / "mm.db"
    result = hft("run", "--config", str(MARKET_MAKER), "--duration", "5", "--instance", instance, "--db", str(db),
                 "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    check_market_maker_run(summary, db)
    assert summary["post_only_rejects"] < summary["orders"] * 0.05  # judged at the real touch, not a stale book


@needs_data
def test_market_maker_example_when_replayed_then_trades_and_the_backtest_gives_identical_orders_and_fills(
    instance: str, tmp_path: Path, warm_backtest: None
) -> None:
    db = tmp_path / "mm.db"
    result = hft("run", "--config", str(MARKET_MAKER), "--source", "replay", str(BTC), "--instance", instance,
                 "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["stop_reason"] == "replay-finished"
    check_market_maker_run(summary, db)
    backtest_db = tmp_path / "backtest.db"
    result = hft("backtest", str(BTC), "--config", str(MARKET_MAKER), "--db", str(backtest_db), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    # tickers stamped on the recording's clock: the same fills in every replay, and in the backtest
    assert deterministic_rows(backtest_db) == deterministic_rows(db)
    backtest = json.loads(result.stdout)
    assert backtest["post_only_rejects"] == summary["post_only_rejects"]
    assert backtest["cancel_rejects"] == summary["cancel_rejects"]


def test_taker_example_when_run_then_trades_on_tickers_and_trades(instance: str, tmp_path: Path) -> None:
    db = tmp_path / "taker.db"
    result = hft("run", "--config", str(TAKER), "--duration", "6", "--instance", instance, "--db", str(db),
                 "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["orders"] > 0 and summary["fills"] > 0
    assert summary["db_orders"] == summary["orders"] and summary["db_executions"] == summary["executions"]
    with sqlite3.connect(db) as conn:
        assert {row[0] for row in conn.execute("SELECT DISTINCT liquidity FROM trades")} == {"TAKER"}
        assert conn.execute("SELECT MAX(ABS(position)) FROM executions").fetchone()[0] <= 0.003 + 1e-12


@pytest.mark.parametrize(
    ("source", "params", "expected"),
    [
        ("def on_bookticker(ctx, symbol):\n    pass\n", "", "on_bookticker is not a callback; did you mean on_book?"),
        ("def on_bbo(ctx, symbol):\n    ctx.nothing = 1\n", "", "on_bbo failed to compile"),
        ("from hft.strategy import api\nP = api.declare_params(size=1.0)\n\n\ndef on_bbo(ctx, symbol):\n    pass\n",
         "sise = 2.0", "unknown parameter 'sise'; did you mean 'size'?"),
    ],
)
def test_run_when_strategy_is_broken_then_one_clear_error_and_nothing_runs(
    instance: str, tmp_path: Path, source: str, params: str, expected: str
) -> None:
    (tmp_path / "mine.py").write_text(source)
    config = tmp_path / "mine.toml"
    config.write_text(f'[strategy]\nmodule = "mine.py"\n[strategy.params]\n{params}\n')
    result = hft("run", "--config", str(config), "--duration", "5", "--instance", instance, timeout=120)
    assert result.returncode == 2
    assert "strategy mine.py" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "pipeline" not in result.stdout and find_segments(instance) == []


RAISES_ON_ETH = """
from hft.strategy import api


def on_bbo(ctx, symbol):
    if ctx.ints[symbol, 0] == 0:
        price = api.best_bid(ctx, symbol) - 1000 * api.tick(ctx, symbol)  # far below the touch: never fills
        ctx.ints[symbol, 0] = api.post_only(ctx, symbol, api.BUY, price, api.to_size(ctx, symbol, 0.01))
    elif ctx.ints[symbol, 0] > 0:
        ctx.ints[symbol, 99] = 1  # a bug: past its state array
"""


def test_run_when_a_strategy_raises_then_it_is_halted_its_orders_cancelled_and_the_others_trade(
    instance: str, tmp_path: Path
) -> None:
    (tmp_path / "buggy.py").write_text(RAISES_ON_ETH)
    config = tmp_path / "two.toml"
    config.write_text(
        '[[strategy.instances]]\nname = "seed"\nmodule = "imbalance"\nsymbols = ["BTCUSDT"]\n'
        '[strategy.instances.params]\nmin_confidence = 0.5\nholding_min_ms = 100.0\nholding_max_ms = 300.0\n'
        '[[strategy.instances]]\nname = "buggy"\nmodule = "buggy.py"\nsymbols = ["ETHUSDT"]\n')
    db = tmp_path / "two.db"
    result = hft("run", "--config", str(config), "--duration", "6", "--instance", instance, "--db", str(db),
                 "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["strategy_faults"] == 1
    assert "strategy instance 'buggy' (buggy.py) halted: on_bbo raised IndexError" in result.stderr
    with sqlite3.connect(db) as conn:
        eth = dict(conn.execute("SELECT command || '/' || status, COUNT(*) FROM orders WHERE symbol = 'ETHUSDT' "
                                "GROUP BY 1"))
        btc = conn.execute("SELECT COUNT(*) FROM orders WHERE symbol = 'BTCUSDT'").fetchone()[0]
    assert eth == {"NEW/CANCELLED": 1, "CANCEL_ALL/DONE": 1}  # its one quote, cancelled for it when halted
    assert btc > 0  # the other instance kept trading
