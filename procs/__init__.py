"""One module per OS process: each wires domain logic from ``hft`` to shared memory from ``shm_layout``."""

import shm_layout as _shm_layout  # noqa: F401  (configures numba's cache before any kernel loads)
