"""The validation helpers live in one leaf module: importing any of their users first works (no import circle),
and the conversion is exact."""

from __future__ import annotations

import ast
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import hft.validation
from hft.validation import ConfigError, decimal_to_fixed, parse_decimal


def test_leaf_module_when_parsed_then_imports_nothing_of_the_project() -> None:
    tree = ast.parse(Path(hft.validation.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if name.split(".")[0] in ("hft", "procs", "shm_layout")}


@pytest.mark.parametrize("module", ["hft.risk.config", "hft.strategy.kernels", "hft.config", "hft.sim.config"])
def test_module_when_imported_first_then_no_circular_import(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_decimal_to_fixed_when_on_and_off_the_grid() -> None:
    assert decimal_to_fixed("60000.01", 2, "p") == 6_000_001
    assert decimal_to_fixed("1.50000000", 2, "p") == 150  # trailing zeros are on the grid
    assert decimal_to_fixed(Decimal("0.00001"), 8, "lot") == 1000
    with pytest.raises(ConfigError, match=r"p: 0\.001 has more than 2 decimals"):
        decimal_to_fixed("0.001", 2, "p")


@pytest.mark.parametrize("text", ["abc", "nan", "inf", 1.5, None])
def test_parse_decimal_when_not_a_finite_decimal_string_then_one_clear_error(text: object) -> None:
    with pytest.raises(ConfigError, match=r"^x: "):
        parse_decimal(text, "x")
