"""hft: a paper-trading pipeline for crypto markets, four processes over shared memory."""

__version__ = "0.1.0"

import shm_layout as _shm_layout  # noqa: F401  (configures numba's cache before any kernel loads)
