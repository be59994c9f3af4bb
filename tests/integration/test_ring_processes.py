"""Rings across real processes (spawn): a producer process racing consumer processes.

Hot loops are jitted and live in ``_shm_workers``; this module creates the segments (as the supervisor does),
starts the children, and checks what they report.
"""

from __future__ import annotations

import numpy as np
import pytest

from shm_layout.records import MD_EVENT, ORDER
from shm_layout.region import KIND_CONTROL, create_region, segment_name
from shm_layout.ring import (
    CONSUMER_WORDS,
    POLICY_BLOCK,
    POLICY_LOSSY,
    W_BACKPRESSURE,
    W_CONSUMERS,
    W_HEAD,
    W_LOST,
    W_OVERRUNS,
    W_PUBLISHES,
    W_TAIL,
    Ring,
)
from shm_layout.wait import WAIT_SPIN_YIELD
from tests.integration import _shm_workers as workers

N_BLOCK = 1_000_000
BLOCK_CAPACITY = 4096
PUBLISH_BATCH = 256
READ_BATCH = 1024

N_LOSSY = 200_000
LOSSY_CAPACITY = 1024


@pytest.fixture
def flags(instance: str):
    region = create_region(segment_name(instance, "flags"), KIND_CONTROL, 8, 1, workers.FLAG_WORDS * 8, 1)
    yield region
    region.unlink()
    region.close()


@pytest.fixture
def ring_factory(instance: str):
    rings: list[Ring] = []

    def make(dtype: np.dtype, capacity: int, policy: int, consumers: tuple[str, ...]) -> Ring:
        ring = Ring.create(segment_name(instance, "ring"), dtype, capacity, policy, consumers, generation=1)
        rings.append(ring)
        return ring

    yield make
    for ring in rings:
        ring.region.unlink()
        ring.region.close()


def _consumer_word(consumer: int, field: int) -> int:
    return W_CONSUMERS + consumer * CONSUMER_WORDS + field


def test_block_ring_when_producer_and_two_consumer_processes_then_each_sees_every_record_in_order(
    ring_factory, flags, children
) -> None:
    ring = ring_factory(ORDER, BLOCK_CAPACITY, POLICY_BLOCK, ("c0", "c1"))
    for consumer in (0, 1):
        children.start(workers.block_consumer, ring.region.name, flags.name, consumer, N_BLOCK, READ_BATCH,
                       WAIT_SPIN_YIELD)
    children.start(workers.block_producer, ring.region.name, flags.name, N_BLOCK, PUBLISH_BATCH, 2,
                   WAIT_SPIN_YIELD)
    results = children.results(3, timeout=60)
    children.join(timeout=10)
    producer = next(r for r in results if r["role"] == "producer")
    consumers = sorted((r for r in results if r["role"] == "consumer"), key=lambda r: r["consumer"])
    assert producer["published"] == N_BLOCK
    assert producer["violations"] == 0, "0 <= head - tail <= capacity broken for an active consumer"
    for result in consumers:
        assert result["received"] == N_BLOCK, result
        assert result["bad"] == 0, f"gap, duplicate or torn record from {result['first_bad']}: {result}"
        assert 0 <= result["max_lag"] <= BLOCK_CAPACITY
    assert int(ring.ctrl[W_HEAD]) == N_BLOCK
    for consumer in (0, 1):
        assert int(ring.ctrl[_consumer_word(consumer, W_TAIL)]) == N_BLOCK
        assert int(ring.ctrl[_consumer_word(consumer, W_LOST)]) == 0
        assert int(ring.ctrl[_consumer_word(consumer, W_OVERRUNS)]) == 0
    stats = ring.stats()
    assert stats["backpressure_waits"] == int(ring.ctrl[W_BACKPRESSURE]) >= 0
    assert stats["publishes"] == int(ring.ctrl[W_PUBLISHES]) >= N_BLOCK // PUBLISH_BATCH
    assert {c["pid"] for c in stats["consumers"]} == {p.pid for p in children.procs[:2]}
    print(f"block ring: {N_BLOCK} records in {producer['seconds']:.3f} s, "
          f"backpressure_waits={stats['backpressure_waits']}, publishes={stats['publishes']}")


def test_lossy_ring_when_consumer_process_slower_than_producer_then_increasing_and_received_plus_lost_exact(
    ring_factory, flags, children
) -> None:
    ring = ring_factory(MD_EVENT, LOSSY_CAPACITY, POLICY_LOSSY, ("slow",))
    children.start(workers.lossy_consumer, ring.region.name, flags.name, 0, N_LOSSY, 32, 50_000)
    children.start(workers.lossy_producer, ring.region.name, flags.name, N_LOSSY, 500)
    results = children.results(2, timeout=60)
    children.join(timeout=10)
    producer = next(r for r in results if r["role"] == "producer")
    consumer = next(r for r in results if r["role"] == "consumer")
    assert producer["published"] == N_LOSSY
    assert int(ring.ctrl[W_HEAD]) == N_LOSSY
    assert int(ring.ctrl[W_BACKPRESSURE]) == 0  # a lossy producer never waits
    assert consumer["tail"] == N_LOSSY, consumer
    assert consumer["not_increasing"] == 0, consumer
    assert consumer["wrong"] == 0, f"records returned that were not the record at their sequence: {consumer}"
    assert consumer["overruns"] > 0, f"the slow consumer was never lapped: {consumer}"
    assert consumer["received"] + consumer["lost"] == N_LOSSY, consumer
    assert consumer["lost"] == int(ring.ctrl[_consumer_word(0, W_LOST)])
    print(f"lossy ring: received={consumer['received']} lost={consumer['lost']} overruns={consumer['overruns']}")
