"""The built-in strategies, chosen by config alone, trade in `hft run`; a bad parameter is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_pipeline import hft

RULES_CONFIG = """
[strategy]
module = "rules"
[strategy.params]
rules = [
  "imbalance > 0.4 and trade_flow > 0 -> buy",
  "imbalance < -0.4 and trade_flow < 0 -> sell",
  "abs(imbalance) < 0.05 -> flat",
]
rule_holding_ms = 500.0
"""


def test_rules_generator_when_configured_then_pipeline_trades_on_it(instance: str, tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULES_CONFIG)
    result = hft("run", "--config", str(config), "--duration", "6", "--instance", instance,
                 "--db", str(tmp_path / "r.db"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["orders"] > 0 and summary["fills"] > 0
    assert summary["db_executions"] == summary["executions"] >= summary["orders"]
    assert summary["db_trades"] == summary["fills"]


def test_rules_generator_when_rule_names_unknown_feature_then_config_error_points_at_it(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[strategy]\nmodule = "rules"\n[strategy.params]\nrules = ["imbalanse > 0.4 -> buy"]\n')
    result = hft("run", "--config", str(config), "--duration", "1", timeout=60)
    assert result.returncode == 2
    assert "unknown feature 'imbalanse'; did you mean 'imbalance'?" in result.stderr


def test_onnx_generator_when_configured_then_the_shipped_model_trades(instance: str, tmp_path: Path) -> None:
    config = tmp_path / "onnx.toml"
    config.write_text('[strategy]\nmodule = "onnx"\n')
    result = hft("run", "--config", str(config), "--duration", "6", "--instance", instance,
                 "--db", str(tmp_path / "o.db"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert "onnx model" in result.stderr and "imbalance_mlp.onnx loaded" in result.stderr
    assert summary["orders"] > 0 and summary["fills"] > 0
    assert summary["db_executions"] == summary["executions"] >= summary["orders"]


def test_onnx_generator_when_model_file_missing_then_config_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[strategy]\nmodule = "onnx"\n[strategy.params]\nmodel_path = "/nonexistent/model.onnx"\n')
    result = hft("run", "--config", str(config), "--duration", "1", timeout=60)
    assert result.returncode == 2
    assert "strategy onnx: parameter model_path: no such file" in result.stderr


TWO_INSTANCES = """
[[strategy.instances]]
name = "seed"
module = "imbalance"
symbols = ["BTCUSDT"]

[[strategy.instances]]
name = "contrarian"
module = "rules"
symbols = ["ETHUSDT"]
[strategy.instances.params]
rules = ["imbalance < -0.4 -> buy", "imbalance > 0.4 -> sell"]
rule_holding_ms = 300.0
"""


def test_two_instances_when_configured_then_each_trades_its_symbols_with_its_own_id(
    instance: str, tmp_path: Path
) -> None:
    import sqlite3

    config = tmp_path / "two.toml"
    config.write_text(TWO_INSTANCES)
    db = tmp_path / "two.db"
    result = hft("run", "--config", str(config), "--duration", "6", "--instance", instance, "--db", str(db),
                 "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT symbol, GROUP_CONCAT(DISTINCT strategy_id) FROM orders GROUP BY symbol"))
    assert ids == {"BTCUSDT": "1", "ETHUSDT": "2"}


def test_instances_when_a_symbol_is_claimed_twice_then_config_error(tmp_path: Path) -> None:
    config = tmp_path / "clash.toml"
    config.write_text(TWO_INSTANCES.replace('symbols = ["ETHUSDT"]', 'symbols = ["BTCUSDT"]'))
    result = hft("run", "--config", str(config), "--duration", "1", timeout=60)
    assert result.returncode == 2
    assert "BTCUSDT is traded by both seed and contrarian" in result.stderr
