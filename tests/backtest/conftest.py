"""The backtest tests run the engine's jitted loop in-process: they wait for the session's background `hft warm`
to have compiled it (and the pipeline's kernels it shares) and load it from the cache, instead of compiling the
same code a second time, on the same two cores, while the warm does."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _compiled_backtest(warm_backtest: None) -> None:
    """Every test here runs the backtest loop: its code must be compiled already."""
