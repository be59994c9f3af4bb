"""The single source of truth for what lies in shared memory: records, regions, rings, seqlocks, counters."""

from shm_layout.numba_cache import configure as _configure_numba_cache

_configure_numba_cache()
