"""The seed's order-book-imbalance signal, as a pure jitted function.

* fires when ``|imbalance| >= threshold``; direction = sign(imbalance);
  strength = clamp(imbalance / threshold, -1, 1)
* confidence = mean( min(|momentum| / momentum_scale, 1), min(volatility_scale / max(volatility, floor), 1) );
  a signal below ``min_confidence`` is suppressed
* holding period = clamp(1000 / |imbalance|, holding_min, holding_max) milliseconds

Units: momentum and volatility are in **percent** (100 x log return over the feature window, 100 x the per-tick
standard deviation of log returns), so the seed's scales read as "0.01 % (one basis point) of momentum gives
full confidence" and "volatility up to 0.01 % per tick is fully trusted": a sub-second horizon. Read as
fractions the same constants would demand a 0.4 % move inside one window; measured on the recorded BTCUSDT
session (3,449 book updates) that fires on 0 ticks, against 859 ticks in percent.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# float parameters (hft.strategy.loop builds the array from StrategyConfig)
P_THRESHOLD = 0
P_MIN_CONFIDENCE = 1
P_MOMENTUM_SCALE = 2
P_VOLATILITY_SCALE = 3
P_VOLATILITY_FLOOR = 4
P_HOLD_MIN_MS = 5
P_HOLD_MAX_MS = 6
N_PARAMS = 7


@njit(cache=True)
def imbalance_signal(
    imbalance: float, momentum: float, volatility: float, params: np.ndarray
) -> tuple[int, float, float, float]:
    """Return ``(direction, strength, confidence, holding_ms)``; direction 0 means no signal."""
    threshold = params[P_THRESHOLD]
    magnitude = abs(imbalance)
    if magnitude < threshold or magnitude == 0.0:
        return 0, 0.0, 0.0, 0.0
    strength = min(1.0, max(-1.0, imbalance / threshold))
    momentum_conf = min(abs(momentum) / params[P_MOMENTUM_SCALE], 1.0)
    volatility_conf = min(params[P_VOLATILITY_SCALE] / max(volatility, params[P_VOLATILITY_FLOOR]), 1.0)
    confidence = 0.5 * (momentum_conf + volatility_conf)
    if confidence < params[P_MIN_CONFIDENCE]:
        return 0, strength, confidence, 0.0
    holding_ms = min(params[P_HOLD_MAX_MS], max(params[P_HOLD_MIN_MS], 1000.0 / magnitude))
    direction = 1 if imbalance > 0 else -1
    return direction, strength, confidence, holding_ms
