"""RiskConfig: documented defaults, TOML decoding, clear errors, and the exact fixed-point limits it builds."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from hft.config import ConfigError
from hft.risk.config import RiskConfig, build_limits
from hft.risk.engine import (
    G_TOKENS,
    L_BURST,
    L_COOLDOWN_NS,
    L_MAX_DRAWDOWN_MICRO_USD,
    L_MAX_NOTIONAL_MICRO_USD,
    L_MAX_ORDER_SIZE,
    L_MAX_POSITION,
    L_MONEY_DECIMALS,
    L_RATE_PICO_PER_NS,
    L_REJECT_STORM_COUNT,
    L_REJECT_WINDOW_NS,
    L_STALE_AFTER_NS,
    N_LIMITS,
    TOKEN,
    make_risk_state,
    state_words,
)


def test_defaults_when_constructed_empty_then_documented_values() -> None:
    config = RiskConfig()
    assert (config.max_position, config.max_order_size) == ("1.0", "1.0")
    assert config.max_notional_usd == 200_000.0
    assert (config.max_orders_per_second, config.order_burst) == (20.0, 20)
    assert config.stale_after_ms == 5_000
    assert config.max_drawdown_usd == 1_000.0
    assert (config.reject_storm_count, config.reject_storm_window_ms, config.reject_storm_cooldown_ms) == (
        10, 5_000, 30_000)


def test_config_when_assigned_then_frozen() -> None:
    with pytest.raises(AttributeError):
        RiskConfig().max_position = "2.0"  # type: ignore[misc]


def test_decode_when_toml_sets_keys_then_values_taken_and_rest_default() -> None:
    config = msgspec.toml.decode(b'max_position = "0.25"\nmax_notional_usd = 50000\norder_burst = 5\n',
                                 type=RiskConfig)
    assert config == RiskConfig(max_position="0.25", max_notional_usd=50_000.0, order_burst=5)


def test_decode_when_key_is_misspelled_then_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="max_postion"):
        msgspec.toml.decode(b'max_postion = "0.25"\n', type=RiskConfig)


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"max_position": "abc"}, "risk.max_position"),
        ({"max_position": "0"}, "risk.max_position"),
        ({"max_order_size": "-1"}, "risk.max_order_size"),
        ({"max_order_size": "NaN"}, "risk.max_order_size"),
        ({"max_notional_usd": 0.0}, "risk.max_notional_usd"),
        ({"max_notional_usd": float("inf")}, "risk.max_notional_usd"),
        ({"max_drawdown_usd": -5.0}, "risk.max_drawdown_usd"),
        ({"max_drawdown_usd": float("nan")}, "risk.max_drawdown_usd"),
        ({"max_orders_per_second": 0.0}, "risk.max_orders_per_second"),
        ({"max_orders_per_second": 0.0001}, "risk.max_orders_per_second"),
        ({"max_orders_per_second": 1.2345}, "more than 3 decimals"),
        ({"order_burst": 0}, "risk.order_burst"),
        ({"order_burst": 10**7}, "risk.order_burst"),
        ({"stale_after_ms": 0}, "risk.stale_after_ms"),
        ({"reject_storm_count": 0}, "risk.reject_storm_count"),
        ({"reject_storm_window_ms": -1}, "risk.reject_storm_window_ms"),
        ({"reject_storm_cooldown_ms": 0}, "risk.reject_storm_cooldown_ms"),
    ],
)
def test_config_when_value_is_bad_then_error_names_the_key(fields: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        RiskConfig(**fields)  # type: ignore[arg-type]


def test_decode_when_value_is_bad_then_validation_error_names_the_key() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"risk\.stale_after_ms"):  # msgspec wraps ConfigError
        msgspec.toml.decode(b"stale_after_ms = -3\n", type=RiskConfig)


def test_build_limits_when_defaults_then_exact_fixed_point_per_symbol() -> None:
    limits = build_limits(RiskConfig(), [(2, 8), (2, 4)])
    assert limits.dtype == np.int64 and limits.shape == (2, N_LIMITS)
    assert limits[0, L_MAX_POSITION] == limits[0, L_MAX_ORDER_SIZE] == 100_000_000
    assert limits[1, L_MAX_POSITION] == limits[1, L_MAX_ORDER_SIZE] == 10_000
    assert (limits[0, L_MONEY_DECIMALS], limits[1, L_MONEY_DECIMALS]) == (10, 6)
    for row in limits:  # the shared limits are repeated in every row
        assert row[L_MAX_NOTIONAL_MICRO_USD] == 200_000_000_000
        assert row[L_MAX_DRAWDOWN_MICRO_USD] == 1_000_000_000
        assert row[L_RATE_PICO_PER_NS] == 20_000  # 20 orders/s = 20e12 pico-tokens per 1e9 ns
        assert row[L_BURST] == 20
        assert row[L_STALE_AFTER_NS] == 5_000_000_000
        assert row[L_REJECT_STORM_COUNT] == 10
        assert row[L_REJECT_WINDOW_NS] == 5_000_000_000
        assert row[L_COOLDOWN_NS] == 30_000_000_000


def test_build_limits_when_fractional_values_then_exact() -> None:
    config = RiskConfig(max_position="0.00012345", max_notional_usd=1234.56, max_orders_per_second=0.125)
    limits = build_limits(config, [(2, 8)])
    assert limits[0, L_MAX_POSITION] == 12_345
    assert limits[0, L_MAX_NOTIONAL_MICRO_USD] == 1_234_560_000
    assert limits[0, L_RATE_PICO_PER_NS] == 125


def test_build_limits_when_size_is_off_the_size_grid_then_error_names_key_and_symbol() -> None:
    with pytest.raises(ConfigError, match=r"risk.max_position \(symbol 1\).*more than 4 decimals"):
        build_limits(RiskConfig(max_position="0.00001"), [(2, 8), (2, 4)])


@pytest.mark.parametrize(
    ("decimals", "names"),
    [([], "between 1 and 16"), ([(2, 8)] * 17, "between 1 and 16"), ([(2, 13)], "0..12"), ([(-1, 8)], "0..12"),
     ([(2,)], "expected \\(price_decimals, size_decimals\\)")],
)
def test_build_limits_when_decimals_are_bad_then_refused(decimals: list[tuple[int, ...]], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        build_limits(RiskConfig(), decimals)  # type: ignore[arg-type]


def test_build_limits_when_size_exceeds_float_exact_range_then_refused() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_order_size.*2\*\*53"):
        build_limits(RiskConfig(max_order_size="100000"), [(2, 12)])  # 1e17 size units


def test_make_state_when_built_then_bucket_full_and_ring_sized_for_n_plus_one() -> None:
    limits = build_limits(RiskConfig(order_burst=7, reject_storm_count=3), [(2, 8), (2, 8), (2, 8)])
    state, fstate = make_risk_state(limits)
    assert state.dtype == np.int64 and fstate.dtype == np.float64
    assert len(state) == state_words(limits) == 16 + 3 * 8 + 4
    assert state[G_TOKENS] == 7 * TOKEN


def test_make_state_when_limits_are_not_from_build_limits_then_refused() -> None:
    with pytest.raises(ValueError, match="build_limits"):
        make_risk_state(np.zeros((2, N_LIMITS), np.float64))
