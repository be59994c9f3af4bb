"""Loading strategies: every way a user's module can be wrong is one clear error naming the module and the
callback or parameter; a good module compiles once and then comes from a cache keyed on its own sources."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hft.strategy.loader import StrategyError, cache_dir_for, load_strategy, local_sources

GOOD = """
from hft.strategy import api

P = api.declare_params(size=0.001, mode="quote", names=["a"], enabled=True, ticks=2)
S = api.declare_state(order_id=0, fair=0.0)


def on_bbo(ctx, symbol):
    ctx.ints[symbol, S.order_id] += 1
"""


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def error_of(spec: str) -> str:
    with pytest.raises(StrategyError) as caught:
        load_strategy(spec)
    return str(caught.value)


def test_load_when_module_is_a_file_then_callbacks_params_and_state_are_read(tmp_path: Path) -> None:
    loaded = load_strategy(write(tmp_path, "good.py", GOOD))
    assert loaded.name == "good.py"
    assert [c is not None for c in loaded.callbacks] == [False, False, True, False, False, False, False]
    assert loaded.params == {"size": 0.001, "mode": "quote", "names": ["a"], "enabled": True, "ticks": 2}
    assert loaded.ints == [("order_id", 0)] and loaded.floats == [("fair", 0.0)]
    values = loaded.resolve_params({"size": 0.002, "ticks": 3, "mode": "x"})
    assert loaded.numeric_params(values).tolist() == [0.002, 1.0, 3.0]  # numbers only, declaration order


def test_load_when_builtin_name_then_the_shipped_strategy() -> None:
    assert load_strategy("imbalance").module.__name__ == "hft.strategy.builtin.imbalance"


def test_load_when_file_missing_then_error_names_it(tmp_path: Path) -> None:
    message = error_of(str(tmp_path / "nope.py"))
    assert "no such file" in message and "nope.py" in message


def test_load_when_dotted_module_missing_then_error_lists_the_ways_to_name_one() -> None:
    message = error_of("no_such_package.strategy")
    assert "no module named 'no_such_package'" in message and "imbalance, rules, onnx" in message


def test_load_when_module_fails_to_import_then_error_names_module_and_cause(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "broken.py", "import not_installed_anywhere\n"))
    assert message.startswith("strategy broken.py: importing it failed: ModuleNotFoundError")


def test_load_when_no_market_callback_then_error_says_it_would_never_act(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "idle.py", "def on_start(ctx, symbol):\n    pass\n"))
    assert "defines none of on_book, on_bbo, on_trade, on_timer" in message


def test_load_when_callback_name_misspelled_then_error_suggests_the_right_one(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "typo.py", "def on_bookticker(ctx, symbol):\n    pass\n"))
    assert "on_bookticker is not a callback" in message and "did you mean on_book" in message


def test_load_when_callback_signature_wrong_then_error_names_the_callback(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "sig.py", "def on_bbo(ctx):\n    pass\n"))
    assert "strategy sig.py: on_bbo(ctx) must take exactly (ctx, symbol)" in message


def test_load_when_callback_does_not_compile_then_error_names_callback_and_line(tmp_path: Path) -> None:
    source = "def on_trade(ctx, symbol):\n    x = ctx.no_such_field\n"
    message = error_of(write(tmp_path, "typing.py", source))
    assert "strategy typing.py: on_trade failed to compile (TypingError)" in message
    assert "no_such_field" in message and "line 2" in message


def test_load_when_helper_not_jitted_then_error_hints_at_jit(tmp_path: Path) -> None:
    source = "def helper(x):\n    return x\n\n\ndef on_trade(ctx, symbol):\n    helper(1)\n"
    message = error_of(write(tmp_path, "helper.py", source))
    assert "decorate it with @jit" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"sise": 1.0}, "unknown parameter 'sise'; did you mean 'size'?"),
        ({"size": "big"}, "parameter 'size' must be a number"),
        ({"ticks": 2.5}, "parameter 'ticks' must be an integer"),
        ({"enabled": 1}, "parameter 'enabled' must be true or false"),
        ({"names": "a"}, "parameter 'names' must be a list of strings"),
        ({"mode": 3}, "parameter 'mode' must be a string"),
    ],
)
def test_params_when_unknown_or_wrong_kind_then_error_names_strategy_and_key(
    tmp_path: Path, overrides: dict, expected: str
) -> None:
    loaded = load_strategy(write(tmp_path, "good.py", GOOD))
    with pytest.raises(StrategyError, match=r"strategy good\.py: ") as caught:
        loaded.resolve_params(overrides)
    assert expected in str(caught.value)


def test_cache_dir_when_a_helper_module_changes_then_a_new_directory(tmp_path: Path) -> None:
    """numba notices only the callback's own file: the strategy's cache key covers the helpers it reaches."""
    sys.path.insert(0, str(tmp_path))
    try:
        (tmp_path / "helpers_x.py").write_text("from hft.strategy import api\n\n\n@api.jit\ndef edge(x):\n"
                                               "    return x + 1\n")
        spec = write(tmp_path, "uses_helper.py", "from helpers_x import edge\n\n\ndef on_trade(ctx, symbol):\n"
                                                 "    edge(1)\n")
        loaded = load_strategy(spec)
        assert (tmp_path / "helpers_x.py").resolve() in local_sources(loaded.module)
        before = cache_dir_for(loaded.module)
        (tmp_path / "helpers_x.py").write_text("from hft.strategy import api\n\n\n@api.jit\ndef edge(x):\n"
                                               "    return x + 2\n")
        assert cache_dir_for(loaded.module) != before
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("helpers_x", None)


def test_compile_when_loaded_again_in_a_fresh_process_then_from_the_cache(tmp_path: Path) -> None:
    spec = write(tmp_path, "cached.py", GOOD)
    env = dict(os.environ, HFT_STRATEGY_CACHE_DIR=str(tmp_path / "cache"))
    script = ("import sys; from hft.strategy.loader import load_strategy; "
              f"print(load_strategy({spec!r}).compiled)")
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                           check=True).stdout.strip() for _ in range(2)]
    assert runs == ["['on_bbo']", "[]"]  # compiled the first time only
