"""The seed's imbalance signal rules, as the built-in imbalance strategy applies them."""

from __future__ import annotations

import numpy as np
import pytest

from hft.strategy.signal import (
    N_PARAMS,
    P_HOLD_MAX_MS,
    P_HOLD_MIN_MS,
    P_MIN_CONFIDENCE,
    P_MOMENTUM_SCALE,
    P_THRESHOLD,
    P_VOLATILITY_FLOOR,
    P_VOLATILITY_SCALE,
    imbalance_signal,
)


def seed_params() -> np.ndarray:
    params = np.zeros(N_PARAMS)
    params[P_THRESHOLD] = 0.3
    params[P_MIN_CONFIDENCE] = 0.7
    params[P_MOMENTUM_SCALE] = 0.01
    params[P_VOLATILITY_SCALE] = 0.01
    params[P_VOLATILITY_FLOOR] = 0.001
    params[P_HOLD_MIN_MS] = 100
    params[P_HOLD_MAX_MS] = 10_000
    return params


def test_signal_when_imbalance_below_threshold_then_none() -> None:
    assert imbalance_signal(0.29, 0.02, 0.0, seed_params())[0] == 0


def test_signal_when_strong_bid_imbalance_and_momentum_then_buy_with_seed_rules() -> None:
    direction, strength, confidence, holding = imbalance_signal(0.5, 0.01, 0.0005, seed_params())
    assert direction == 1
    assert strength == 1.0  # 0.5 / 0.3 clamped
    assert confidence == pytest.approx(1.0)
    assert holding == pytest.approx(2000.0)  # 1000 / 0.5 ms


def test_signal_when_ask_imbalance_then_sell_and_strength_scaled() -> None:
    direction, strength, confidence, _ = imbalance_signal(-0.3, -0.008, 0.0, seed_params())
    assert direction == -1
    assert strength == pytest.approx(-1.0)
    assert confidence == pytest.approx(0.5 * (0.8 + 1.0))


def test_signal_when_confidence_below_minimum_then_suppressed() -> None:
    # momentum 0.002 -> 0.2; volatility 0.02 -> 0.5: mean 0.35 < 0.7
    direction, _, confidence, _ = imbalance_signal(0.9, 0.002, 0.02, seed_params())
    assert direction == 0
    assert confidence == pytest.approx(0.35)


@pytest.mark.parametrize(("imbalance", "holding"), [(1.0, 1000.0), (0.31, 1000 / 0.31), (0.05, 10_000.0)])
def test_holding_period_when_imbalance_varies_then_clamped_1000_over_imbalance(
    imbalance: float, holding: float
) -> None:
    params = seed_params()
    params[P_THRESHOLD] = 0.01
    params[P_MIN_CONFIDENCE] = 0.0
    assert imbalance_signal(imbalance, 0.01, 0.0, params)[3] == pytest.approx(holding)


def test_signal_when_it_persists_past_its_half_life_then_it_opens_no_new_position() -> None:
    from hft.strategy.signal import P_DECAY_MS, P_MIN_STRENGTH, decayed_direction

    params = seed_params()
    params[P_DECAY_MS] = 2000.0
    params[P_MIN_STRENGTH] = 0.5
    assert decayed_direction(1, 1.0, 0.0, params) == 1
    assert decayed_direction(1, 1.0, 1999.0, params) == 1  # 1.0 * 2**(-0.9995) > 0.5
    assert decayed_direction(-1, -1.0, 2001.0, params) == 0  # below half strength
    assert decayed_direction(0, 0.0, 0.0, params) == 0
    params[P_DECAY_MS] = 0.0  # decay off
    assert decayed_direction(1, 1.0, 1e9, params) == 1
