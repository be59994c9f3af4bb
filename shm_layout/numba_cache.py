"""Point numba's on-disk cache at a directory keyed by this project's sources.

numba's ``cache=True`` invalidates a cached function only when *its own* file changes. Our kernels inline
constants and helpers from other modules (record layouts, ring word indices, wait limits): after editing
``shm_layout/ring.py`` a cached strategy loop would keep the old offsets and silently read the wrong words.
Keying the cache directory on every source file of ``shm_layout``, ``hft`` and ``procs`` (path, size,
mtime) makes any change start from a clean cache. An explicit ``NUMBA_CACHE_DIR`` is left alone.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = ("shm_layout", "hft", "procs")


def sources_digest() -> str:
    """Return a short digest of every project source file's path, size and modification time."""
    digest = hashlib.blake2b(digest_size=8)
    for package in _PACKAGES:
        for path in sorted((_ROOT / package).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(_ROOT)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def configure() -> str | None:
    """Set numba's cache directory (before or after numba is imported); return it, or None if user-set."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hft" / "numba"
    directory = str(base / sources_digest())
    os.environ["NUMBA_CACHE_DIR"] = directory  # read by numba at import, and by spawned children
    if "numba" in sys.modules:
        from numba.core import config

        config.CACHE_DIR = directory
    return directory
