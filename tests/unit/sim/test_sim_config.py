"""SimConfig / SimSymbol validation: bad values fail at construction with a message naming the field."""

from __future__ import annotations

import msgspec
import pytest

from hft.sim.config import KNOWN_SYMBOLS, VOLATILITY_PRESETS, SimConfig, SimSymbol, symbol_by_name


def _symbol(**overrides: object) -> SimSymbol:
    fields: dict[str, object] = dict(
        name="BTCUSDT", start_price="60000.00", tick_size="0.01", lot_size="0.00001", price_decimals=2, size_decimals=5
    )
    fields.update(overrides)
    return SimSymbol(**fields)  # type: ignore[arg-type]


def test_default_config_then_btc_and_eth_with_documented_defaults() -> None:
    config = SimConfig()
    assert [s.name for s in config.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert config.seed == 7
    assert config.events_per_second == 2000.0
    assert config.depth_interval_ms == 100
    assert config.book_levels == 200
    btc = config.symbols[0]
    assert (btc.tick_int, btc.lot_int, btc.start_price_int) == (1, 1, 6_000_000)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"name": "btcusdt"}, "symbol name"),
        ({"start_price": "60000.005"}, "start_price"),
        ({"start_price": "60000.01", "tick_size": "0.02"}, "multiple of tick_size"),
        ({"tick_size": "-0.01"}, "positive"),
        ({"tick_size": "abc"}, "decimal string"),
        ({"lot_size": "0.000001"}, "lot_size"),
        ({"price_decimals": 13}, "price_decimals"),
        ({"tick_size": "0.000000001", "price_decimals": 10}, "8 decimals"),
        ({"start_price": "1.00"}, "1000 ticks"),
    ],
)
def test_bad_symbol_field_then_value_error_names_it(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        _symbol(**overrides)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"symbols": []}, "non-empty"),
        ({"symbols": [KNOWN_SYMBOLS["BTCUSDT"], KNOWN_SYMBOLS["BTCUSDT"]]}, "unique"),
        ({"seed": -1}, "seed"),
        ({"events_per_second": 0.0}, "events_per_second"),
        ({"depth_interval_ms": -100}, "depth_interval_ms"),
        ({"book_levels": 5}, "book_levels"),
        ({"trend_imbalance": 1.0}, "trend_imbalance"),
        ({"cancel_share": 0.6, "market_order_share": 0.5}, "cancel_share"),
    ],
)
def test_bad_config_field_then_value_error_names_it(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        SimConfig(**overrides)  # type: ignore[arg-type]


def test_config_decoded_from_json_then_validated_too() -> None:
    assert msgspec.json.decode(b'{"seed": 3, "depth_interval_ms": 0}', type=SimConfig).seed == 3
    with pytest.raises(msgspec.ValidationError, match="book_levels"):
        msgspec.json.decode(b'{"book_levels": 1}', type=SimConfig)


def test_symbol_by_name_unknown_then_lists_known_symbols() -> None:
    assert symbol_by_name("ethusdt").name == "ETHUSDT"
    with pytest.raises(ValueError, match="BTCUSDT"):
        symbol_by_name("DOGEUSDT")


def test_normal_preset_then_exactly_the_defaults() -> None:
    assert SimConfig.from_preset("normal") == SimConfig()
    for name, knobs in VOLATILITY_PRESETS.items():
        config = SimConfig.from_preset(name)
        assert {k: getattr(config, k) for k in knobs} == knobs


def test_preset_with_overrides_then_explicit_fields_win() -> None:
    config = SimConfig.from_preset("volatile", volatility_bps=9.0, seed=3, events_per_second=50_000.0)
    assert (config.volatility_bps, config.seed, config.events_per_second) == (9.0, 3, 50_000.0)
    assert config.trend_speed_bps == VOLATILITY_PRESETS["volatile"]["trend_speed_bps"]
    with pytest.raises(ValueError, match="calm, normal, volatile"):
        SimConfig.from_preset("wild")


def test_custom_symbol_and_high_rate_then_accepted() -> None:
    doge = _symbol(
        name="DOGEUSDT", start_price="0.12000", tick_size="0.00001", lot_size="1", price_decimals=5, size_decimals=0
    )
    config = SimConfig(symbols=[doge, KNOWN_SYMBOLS["SOLUSDT"]], events_per_second=50_000.0)
    assert [s.name for s in config.symbols] == ["DOGEUSDT", "SOLUSDT"]
