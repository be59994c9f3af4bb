"""Single-process backtests of the pipeline's own code (``hft.backtest.run``), and parameter sweeps."""
