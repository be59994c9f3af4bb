"""numba's cache directory follows every project source file, not only the jitted function's own file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shm_layout import numba_cache


def test_digest_when_any_source_file_changes_then_cache_directory_changes(tmp_path: Path) -> None:
    before = numba_cache.sources_digest()
    target = Path(numba_cache.__file__).resolve().parent / "wait.py"
    stat = target.stat()
    try:
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert numba_cache.sources_digest() != before
    finally:
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert numba_cache.sources_digest() == before


def test_import_when_no_cache_dir_set_then_numba_uses_the_keyed_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path)}
    code = "import hft, numba.core.config as c, os; print(c.CACHE_DIR); print(os.environ['NUMBA_CACHE_DIR'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    numba_dir, env_dir = out.stdout.split()
    assert numba_dir == env_dir == str(tmp_path / "hft" / "numba" / numba_cache.sources_digest())


def test_import_when_cache_dir_set_by_user_then_left_alone(tmp_path: Path) -> None:
    env = dict(os.environ) | {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}
    code = "import hft, numba.core.config as c; print(c.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "mine")
