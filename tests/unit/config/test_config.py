"""Config: defaults, TOML loading, and clear errors naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hft.config import Config, decode_config, encode_config, load_config
from hft.validation import ConfigError, decimal_to_fixed

REPO = Path(__file__).resolve().parents[3]


def test_deploy_config_when_loaded_then_equals_the_documented_defaults() -> None:
    assert load_config(REPO / "deploy" / "config.toml") == Config()


def test_load_when_no_path_then_defaults_with_two_symbols() -> None:
    config = load_config(None)
    assert [s.name for s in config.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert config.strategy.module == "imbalance" and config.strategy.params == {}
    assert [i.module for i in config.strategy.effective_instances()] == ["imbalance"]


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
        ("[source]\nkind = \"url\"\nws_url = \"http://127.0.0.1:1\"\nrest_url = \"http://127.0.0.1:1\"\n", "ws_url"),
        ("[source]\nkind = \"url\"\nws_url = \"ws://127.0.0.1:1\"\nrest_url = \"127.0.0.1:1\"\n", "rest_url"),
        ("[strategy\n", "not valid TOML"),
    ],
)
def test_load_when_value_is_bad_then_error_names_it(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.") if names != "not valid TOML" else names):
        load_config(path)


@pytest.mark.parametrize("key", ["imbalance_threshold", "order_type", "rules", "generator"])
def test_load_when_old_strategy_key_then_error_says_where_it_went(tmp_path: Path, key: str) -> None:
    path = tmp_path / "old.toml"
    path.write_text(f"[strategy]\n{key} = 1\n")
    with pytest.raises(ConfigError, match=f"strategy.{key} is no longer a strategy key"):
        load_config(path)


def test_module_paths_when_relative_then_resolved_beside_the_config_file(tmp_path: Path) -> None:
    from hft.config import resolve_module_paths

    (tmp_path / "mine.py").write_text("")
    path = tmp_path / "run.toml"
    path.write_text('[[strategy.instances]]\nname = "a"\nmodule = "mine.py"\nsymbols = ["BTCUSDT"]\n'
                    '[strategy.instances.params]\nsize = 2\n'
                    '[[strategy.instances]]\nname = "b"\nmodule = "rules"\nsymbols = ["ETHUSDT"]\n')
    config = resolve_module_paths(load_config(path), path)
    first, second = config.strategy.instances
    assert first.module == str(tmp_path / "mine.py") and first.params == {"size": 2}
    assert second.module == "rules"  # a built-in name is not a path


def test_strategy_params_when_instances_too_then_error(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    path.write_text('[strategy.params]\nx = 1\n[[strategy.instances]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="give each instance its own params"):
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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--duration", "nan"], "a finite number of seconds > 0"),
        (["run", "--duration", "-1"], "a finite number of seconds > 0"),
        (["run", "--duration", "0"], "a finite number of seconds > 0"),
        (["record", "--out", "x.gz", "--duration", "inf"], "a finite number of seconds > 0"),
        (["stats", "--instance", "bad/name"], "--instance 'bad/name': a simple name"),
        (["run", "--source", "url", "http://127.0.0.1:1", "http://127.0.0.1:1"], "source.ws_url"),
        (["run", "--source", "url", "ws://127.0.0.1:1", "127.0.0.1:1"], "source.rest_url"),
    ],
)
def test_cli_when_an_argument_is_bad_then_one_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never a pipeline started with a duration that cannot end, never a traceback for a user's mistake."""
    from hft.cli import main

    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert expected in err[-1] and "Traceback" not in "\n".join(err)
