"""The fill simulator's parameter vector from ``[broker]``: what the broker process and a backtest run with."""

from __future__ import annotations

import numpy as np

from hft.broker.matching import (
    FILL_MODELS,
    N_P,
    P_ADVERSE_X100,
    P_CANCEL_SHARE_PPM,
    P_CLOCK_FALLBACK,
    P_FILL_MODEL,
    P_LATENCY_NS,
    P_MAKER_FEE,
    P_SEED,
    P_TAKER_FEE,
    P_TOUCH_PROB_PPM,
)
from hft.config import Config


def broker_params(config: Config) -> np.ndarray:
    """The simulator's int64 parameter vector (fees and shares as integers: the kernels stay in fixed point)."""
    cfg = config.broker
    params = np.zeros(N_P, np.int64)
    params[P_LATENCY_NS] = cfg.entry_latency_us * 1_000
    params[P_TAKER_FEE] = round(cfg.taker_fee_bps * 100)
    params[P_MAKER_FEE] = round(cfg.maker_fee_bps * 100)
    params[P_ADVERSE_X100] = round(cfg.adverse_selection_bps * 100)
    params[P_CANCEL_SHARE_PPM] = round(cfg.queue_cancel_share * 1_000_000)
    params[P_FILL_MODEL] = FILL_MODELS[cfg.fill_model]
    params[P_TOUCH_PROB_PPM] = round(cfg.touch_fill_probability * 1_000_000)
    # a lock-step replay must not depend on this machine's clock: orders arrive by market data alone
    lockstep = config.source.kind == "replay" and config.source.lockstep
    params[P_CLOCK_FALLBACK] = 0 if lockstep else 1
    params[P_SEED] = cfg.random_seed
    return params
