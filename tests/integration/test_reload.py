"""`hft reload`: new [risk] limits reach the running strategy without a restart."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.test_pipeline import TRADING_CONFIG, hft, reading, start_hft, stop_run, wait_running


def test_reload_when_order_size_limit_lowered_then_strategy_denies_by_that_reason(
    instance: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(TRADING_CONFIG)
    proc = start_hft("run", "--config", str(config), "--duration", "120", "--instance", instance,
                     "--db", str(tmp_path / "reload.db"))
    try:
        wait_running(instance, proc)
        before = reading(instance)["processes"]["strategy"]["counters"]["risk_max_order_size"]
        assert before == 0
        # orders are 0.5 of the symbol: a 0.01 cap denies every one from now on
        config.write_text(TRADING_CONFIG + '\n[risk]\nmax_order_size = "0.01"\n')
        result = hft("reload", "--instance", instance, timeout=30)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 60
        denied = 0
        while time.monotonic() < deadline and denied == 0:
            time.sleep(0.5)
            denied = reading(instance)["processes"]["strategy"]["counters"]["risk_max_order_size"]
        assert denied > 0, "the reloaded limit never denied an order"
        _, stderr = stop_run(proc)  # done: stop cleanly instead of waiting out the duration
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert "risk limits reloaded" in stderr and "reload: new risk limits sent to the strategy" in stderr
    assert "restarting it" not in stderr  # applied in place: the strategy was not restarted
