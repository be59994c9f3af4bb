"""Child-process entry points for the unit tests (imported by spawned children: keep imports light).

Every function takes the result queue as its last argument (see ``tests/conftest.py``: ``Children.start``).
"""

from __future__ import annotations

import os
import time

import numpy as np
from numba import njit

from shm_layout.atomics import monotonic_ns, store_release
from shm_layout.counters import C_MSGS_IN, C_ORDERS, counter_add, heartbeat, hist_record
from shm_layout.layout import ORDERS, PROC_BROKER, ControlBlock, Pipeline
from shm_layout.records import CONTROL, ORDER
from shm_layout.region import KIND_CONTROL, KIND_RING, attach_region


def store_after_delay(name: str, ready_index: int, value_index: int, value: int, delay: float, queue) -> None:
    """Attach, raise the ready word, sleep, release-store ``value``, sleep, store -5 one line further."""
    region = attach_region(name, KIND_RING, 8)
    words = region.body.view(np.int64)
    store_release(words, ready_index, 1)
    time.sleep(delay)
    store_release(words, value_index, value)
    time.sleep(delay)
    store_release(words, value_index + 8, -5)  # a second store, for a bare spin loop on the next line
    queue.put(("stored", os.getpid()))


def attach_and_exit(name: str, record_size: int, capacity: int, queue) -> None:
    """Attach as a worker does, write one byte, close one handle, leave another mapped, and exit normally."""
    region = attach_region(name, KIND_RING, record_size, capacity)
    region.body[0] = 42
    region.close()
    kept = attach_region(name, KIND_RING, record_size, capacity)
    queue.put(("attached", os.getpid(), int(kept.header[0]["generation"])))


@njit(cache=True)
def _bump_counters(block, n):
    for i in range(n):
        counter_add(block, C_MSGS_IN, 1)
        hist_record(block, 0, i * 100)
    counter_add(block, C_ORDERS, 7)
    heartbeat(block, monotonic_ns())


def bump_counters(name: str, process: int, n: int, queue) -> None:
    """Attach the control region and write counters, a histogram and a heartbeat into one process block."""
    region = attach_region(name, KIND_CONTROL, CONTROL.itemsize, 1)
    block = ControlBlock(region).process_words(process)
    _bump_counters(block, n)
    queue.put(("counted", os.getpid()))


def attach_pipeline(instance: str, queue) -> None:
    """Attach a running pipeline, report its symbol table, and publish one order as the strategy would."""
    pipeline = Pipeline.attach(instance)
    symbols = [
        (bytes(s["name"]).rstrip(b"\0").decode(), int(s["symbol_id"]), int(s["price_decimals"]),
         int(s["size_decimals"]), int(s["tick_size"]), int(s["lot_size"]))
        for s in pipeline.control.symbols
    ]
    order = np.zeros(1, ORDER)
    order["order_id"] = 4242
    published = pipeline.rings[ORDERS].try_publish(order)
    block = pipeline.control.process_words(PROC_BROKER)
    _bump_counters(block, 3)
    queue.put(
        {
            "symbols": symbols,
            "generation": pipeline.control.generation,
            "generations": [int(r.header[0]["generation"]) for r in pipeline.regions()],
            "capacities": {name: ring.capacity for name, ring in pipeline.rings.items()},
            "published": published,
        }
    )
    pipeline.close()
