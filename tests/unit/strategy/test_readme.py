"""The README's "Writing a strategy" example and its unit test, run exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks() -> list[str]:
    section = README.read_text().split("## Writing a strategy", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_strategy_when_run_with_its_own_test_then_the_test_passes(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    strategy, test = python_blocks()
    assert len(strategy.splitlines()) <= 40  # "a complete example of about 30 lines"
    (tmp_path / "quotes.py").write_text(strategy)
    monkeypatch.chdir(tmp_path)  # the test names the strategy by its path, as a user's test would
    namespace: dict = {}
    exec(compile(test, "README test block", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1
    tests[0]()
