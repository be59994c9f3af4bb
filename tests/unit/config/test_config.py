"""Config: defaults, TOML loading, and clear errors naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hft.config import Config, ConfigError, decimal_to_fixed, decode_config, encode_config, load_config

REPO = Path(__file__).resolve().parents[3]


def test_deploy_config_when_loaded_then_equals_the_documented_defaults() -> None:
    assert load_config(REPO / "deploy" / "config.toml") == Config()


def test_load_when_no_path_then_defaults_with_two_symbols() -> None:
    config = load_config(None)
    assert [s.name for s in config.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert config.strategy.imbalance_threshold == 0.3
    assert config.strategy.min_confidence == 0.7


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[strategy]\nimbalance_thresold = 0.4\n", "imbalance_thresold"),
        ("[rings]\norders = 100\n", "rings.orders"),
        ("[strategy]\nmax_position = \"abc\"\n", "max_position"),
        ("[[symbols]]\nname = \"btc\"\n", "BTCUSDT"),
        ("[[symbols]]\nname = \"BTCUSDT\"\ntick_size = \"0.001\"\n", "tick_size"),
        ("[processes.feed]\nwait = \"nap\"\n", "wait"),
        ("instance = \"a.b\"\n", "instance"),
        ("[strategy\n", "not valid TOML"),
    ],
)
def test_load_when_value_is_bad_then_error_names_it(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.") if names != "not valid TOML" else names):
        load_config(path)


def test_load_when_file_missing_then_error_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_encode_decode_when_round_tripped_then_identical() -> None:
    config = Config()
    assert decode_config(encode_config(config)) == config


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [("60000.01", 2, 6000001), ("60000.01000000", 2, 6000001), ("0.00001", 5, 1), ("7", 0, 7)],
)
def test_decimal_to_fixed_when_on_grid_then_exact(text: str, decimals: int, expected: int) -> None:
    assert decimal_to_fixed(text, decimals, "x") == expected


@pytest.mark.parametrize("text", ["0.001", "nan", "inf", "1e", ""])
def test_decimal_to_fixed_when_off_grid_or_not_a_number_then_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        decimal_to_fixed(text, 2, "x")
