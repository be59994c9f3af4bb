"""One module per OS process: each wires domain logic from ``hft`` to shared memory from ``shm_layout``."""
