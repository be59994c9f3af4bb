"""Resting orders end to end: a post-only strategy in `hft run` rests at its touch, fills as maker by queue
position, expires (GTD), and every order ends in a final state in the database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec

from hft.strategy.snapshot import StrategySnapshot
from tests.integration.test_pipeline import TRADING_CONFIG, hft

POST_ONLY_CONFIG = TRADING_CONFIG + """
[broker]
maker_fee_bps = -0.5
"""


def test_post_only_strategy_when_run_then_orders_rest_fill_as_maker_or_expire(instance: str, tmp_path: Path) -> None:
    config = tmp_path / "post_only.toml"
    config.write_text(POST_ONLY_CONFIG.replace("[strategy.params]\n", '[strategy.params]\norder_type = "post_only"\n'
                                               "order_ttl_ms = 500.0\n", 1))
    db = tmp_path / "po.db"
    result = hft("run", "--config", str(config), "--duration", "8", "--instance", instance, "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["orders"] > 0
    assert summary["db_executions"] == summary["executions"]
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
        acks = conn.execute("SELECT COUNT(*) FROM executions WHERE status = 'NEW'").fetchone()[0]
        liquidity = {row[0] for row in conn.execute("SELECT DISTINCT liquidity FROM trades")}
        rebates = conn.execute("SELECT COUNT(*) FROM trades WHERE fee < 0").fetchone()[0]
        types = {row[0] for row in conn.execute("SELECT DISTINCT order_type || '/' || tif FROM orders")}
        snapshots = [row[0] for row in conn.execute("SELECT state FROM strategy_snapshots ORDER BY snapshot_id")]
        metrics = conn.execute("SELECT COUNT(*), MAX(trade_count), MIN(ts_exch) FROM performance_metrics").fetchone()
        closing = conn.execute("SELECT COUNT(*) FROM trades WHERE closed > 0").fetchone()[0]
    assert types == {"POST_ONLY/GTD"}
    assert set(statuses) <= {"FILLED", "EXPIRED", "CANCELLED", "REJECTED"}, statuses  # nothing left open
    assert acks > 0  # orders rested
    assert statuses.get("FILLED", 0) > 0 and liquidity == {"MAKER"} and rebates > 0
    # the strategy's own state, msgspec-encoded, a few times per run
    assert len(snapshots) >= 2
    state = msgspec.msgpack.decode(snapshots[-1], type=StrategySnapshot)
    assert [s.symbol for s in state.symbols] == ["BTCUSDT", "ETHUSDT"] and state.ts_exch > 0
    assert "imbalance" in state.symbols[0].features
    assert state.instances[0].strategy == "imbalance" and "open_id" in state.symbols[0].state
    # periodic performance rows on the venue clock; the last one counts every closing fill
    count, trade_count, first_ts = metrics
    assert count >= 2 and first_ts > 0 and trade_count == closing
