"""The single-producer broadcast ring (shm_layout/ring.py), in one process.

Cross-process behaviour (a real producer racing real consumers) is in tests/integration/test_ring_processes.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from numba import njit

from shm_layout.records import MAX_CONSUMERS, MD_EVENT, ORDER
from shm_layout.region import LayoutMismatchError, segment_name
from shm_layout.ring import (
    CONSUMER_WORDS,
    POLICY_BLOCK,
    POLICY_LOSSY,
    W_ACTIVE,
    W_BACKPRESSURE,
    W_CAPACITY,
    W_CONSUMER_PID,
    W_CONSUMERS,
    W_HEAD,
    W_LOST,
    W_OVERRUNS,
    W_PUBLISHES,
    W_TAIL,
    Ring,
    ring_available,
    ring_claim,
    ring_commit,
    ring_free,
    ring_peek,
    ring_publish_wait,
    ring_read,
    ring_release,
    ring_tail,
)
from shm_layout.wait import WAIT_BUSY_SPIN

CAP = 8


def _word(consumer: int, field: int) -> int:
    return W_CONSUMERS + consumer * CONSUMER_WORDS + field


def _orders(first: int, count: int) -> np.ndarray:
    records = np.zeros(count, ORDER)
    records["order_id"] = np.arange(first, first + count)
    records["price"] = records["order_id"] * 3
    return records


def _events(first: int, count: int) -> np.ndarray:
    records = np.zeros(count, MD_EVENT)
    records["update_id"] = np.arange(first, first + count)
    return records


def _check_block_invariant(ring: Ring) -> None:
    head = int(ring.ctrl[W_HEAD])
    for index in range(MAX_CONSUMERS):
        if ring.ctrl[_word(index, W_ACTIVE)]:
            lag = head - int(ring.ctrl[_word(index, W_TAIL)])
            assert 0 <= lag <= ring.capacity, f"consumer {index}: head - tail = {lag}"


@pytest.fixture
def make_ring(instance: str):
    made: list[Ring] = []

    def make(policy: int = POLICY_BLOCK, consumers: tuple[str, ...] = ("a", "b"), capacity: int = CAP,
             dtype: np.dtype = ORDER, region: str = "ring") -> Ring:
        ring = Ring.create(segment_name(instance, region), dtype, capacity, policy, consumers, generation=3)
        made.append(ring)
        return ring

    yield make
    for ring in made:
        ring.region.unlink()
        ring.region.close()


# ------------------------------------------------------------------------------------------------ creation


@pytest.mark.parametrize("capacity", [0, -8, 3, 6, 12, 1000])
def test_create_when_capacity_not_power_of_two_then_value_error(instance: str, capacity: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        Ring.create(segment_name(instance, "bad"), ORDER, capacity, POLICY_BLOCK, ("a",), 1)
    assert not os.path.exists(f"/dev/shm/{segment_name(instance, 'bad')}")


def test_create_when_too_many_consumers_or_unknown_policy_then_value_error(instance: str) -> None:
    with pytest.raises(ValueError, match="consumers"):
        Ring.create(segment_name(instance, "bad"), ORDER, 8, POLICY_BLOCK, tuple("abcdefghi"), 1)
    with pytest.raises(ValueError, match="policy"):
        Ring.create(segment_name(instance, "bad"), ORDER, 8, 99, ("a",), 1)


def test_create_when_named_consumers_then_those_slots_active_at_zero(make_ring) -> None:
    ring = make_ring(POLICY_BLOCK, ("x", "y", "z"))
    assert ring.capacity == CAP == int(ring.ctrl[W_CAPACITY])
    assert ring.policy == POLICY_BLOCK
    assert [int(ring.ctrl[_word(i, W_ACTIVE)]) for i in range(MAX_CONSUMERS)] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert [int(ring.ctrl[_word(i, W_TAIL)]) for i in range(MAX_CONSUMERS)] == [0] * MAX_CONSUMERS
    assert ring.slots.shape == (CAP,) and ring.slots.dtype == ORDER
    assert ring.consumer_index("z") == 2
    with pytest.raises(KeyError, match="nobody"):
        ring.consumer_index("nobody")


def test_attach_when_record_dtype_differs_then_layout_mismatch(make_ring) -> None:
    ring = make_ring()
    with pytest.raises(LayoutMismatchError, match="record size"):
        Ring.attach(ring.region.name, np.dtype([*MD_EVENT.descr, ("extra", np.int64, 24)]))
    with pytest.raises(LayoutMismatchError, match="capacity"):
        Ring.attach(ring.region.name, ORDER, capacity=CAP * 2)


# ------------------------------------------------------------------------------------------ block policy


def test_try_publish_when_block_ring_full_then_returns_zero_and_keeps_unread_data(make_ring) -> None:
    ring = make_ring()
    assert ring.try_publish(_orders(0, CAP)) == CAP
    _check_block_invariant(ring)
    assert ring.try_publish(_orders(CAP, 1)) == 0
    assert ring_free(ring.ctrl, 1) == 0
    assert ring.slots["order_id"].tolist() == list(range(CAP))  # nothing overwritten
    assert ring.read(0)["order_id"].tolist() == list(range(CAP))
    assert ring.try_publish(_orders(CAP, 1)) == 0  # consumer b still gates
    assert ring.read(1, max_count=3)["order_id"].tolist() == [0, 1, 2]
    assert ring.try_publish(_orders(CAP, 5)) == 3  # exactly the space b released
    _check_block_invariant(ring)
    assert ring.read(1)["order_id"].tolist() == list(range(3, CAP + 3))
    assert ring.read(0)["order_id"].tolist() == [CAP, CAP + 1, CAP + 2]


def test_ring_claim_when_not_enough_room_then_minus_one(make_ring) -> None:
    ring = make_ring()
    assert ring.try_publish(_orders(0, CAP - 2)) == CAP - 2
    assert ring_claim(ring.ctrl, 3) == -1
    assert ring_claim(ring.ctrl, 2) == CAP - 2
    assert int(ring.ctrl[W_HEAD]) == CAP - 2  # claiming alone publishes nothing


def test_ring_claim_when_consumers_drained_ring_then_whole_capacity_claimable(make_ring) -> None:
    ring = make_ring(consumers=("a",))
    assert ring.try_publish(_orders(0, 5)) == 5
    assert ring.read(0)["order_id"].tolist() == [0, 1, 2, 3, 4]  # the ring is empty again
    assert ring_free(ring.ctrl, CAP) == CAP, "ring_free must report every slot the consumers released"
    for _ in range(3):  # retrying must not be needed, and must not stay stuck either
        assert ring_claim(ring.ctrl, CAP) == 5


def test_read_when_records_published_in_batches_then_order_preserved(make_ring) -> None:
    ring = make_ring(consumers=("a",), capacity=16)
    rng = np.random.default_rng(1)
    published = received = 0
    seen: list[int] = []
    while received < 500:
        if published < 500:
            published += ring.try_publish(_orders(published, min(int(rng.integers(1, 12)), 500 - published)))
        _check_block_invariant(ring)
        out = ring.read(0, max_count=int(rng.integers(1, 9)))
        seen.extend(out["order_id"].tolist())
        assert (out["price"] == out["order_id"] * 3).all()
        received += len(out)
    assert seen == list(range(500))


def test_read_when_two_consumers_then_each_sees_every_record(make_ring) -> None:
    ring = make_ring(consumers=("a", "b"), capacity=16)
    rng = np.random.default_rng(2)
    published = 0
    seen: dict[int, list[int]] = {0: [], 1: []}
    while len(seen[0]) < 300 or len(seen[1]) < 300:
        if published < 300:
            published += ring.try_publish(_orders(published, min(int(rng.integers(1, 20)), 300 - published)))
        _check_block_invariant(ring)
        consumer = int(rng.integers(0, 2))
        seen[consumer].extend(ring.read(consumer, max_count=int(rng.integers(1, 16)))["order_id"].tolist())
    assert seen[0] == list(range(300))
    assert seen[1] == list(range(300))
    assert ring.stats()["consumers"][0]["overruns"] == 0
    assert ring.stats()["consumers"][1]["lost"] == 0


def test_read_when_nothing_published_then_empty_and_tail_unchanged(make_ring) -> None:
    ring = make_ring()
    assert len(ring.read(0)) == 0
    assert ring_tail(ring.ctrl, 0) == 0
    assert ring_available(ring.ctrl, 0) == 0


def test_ring_read_when_out_smaller_than_max_count_then_limited_by_out(make_ring) -> None:
    ring = make_ring()
    ring.try_publish(_orders(0, 6))
    out = np.zeros(2, ORDER)
    assert ring_read(ring.ctrl, ring.slots, 0, out, 100) == 2
    assert out["order_id"].tolist() == [0, 1]
    assert ring_tail(ring.ctrl, 0) == 2
    assert ring_available(ring.ctrl, 0) == 4


def test_publish_wait_when_block_ring_full_and_stop_raised_then_partial_count_and_one_backpressure_episode(
    make_ring,
) -> None:
    ring = make_ring()
    stop = np.array([0, 1], np.int64)
    done = ring_publish_wait(ring.ctrl, ring.slots, _orders(0, CAP + 4), CAP + 4, stop, 1, WAIT_BUSY_SPIN)
    assert done == CAP
    assert int(ring.ctrl[W_BACKPRESSURE]) == 1
    assert int(ring.ctrl[W_HEAD]) == CAP
    _check_block_invariant(ring)
    # consumers drain: the same call now completes without a new episode
    ring.read(0)
    ring.read(1)
    assert ring.publish(_orders(CAP, 4), stop, 0) == 4
    assert int(ring.ctrl[W_BACKPRESSURE]) == 1


def test_publish_when_block_ring_has_room_then_all_published_without_backpressure(make_ring) -> None:
    ring = make_ring()
    assert ring.publish(_orders(0, 5)) == 5
    assert int(ring.ctrl[W_BACKPRESSURE]) == 0
    assert int(ring.ctrl[W_PUBLISHES]) == 1


def test_block_ring_when_no_active_consumer_then_producer_never_gated(make_ring) -> None:
    ring = make_ring(consumers=())
    for first in range(0, 5 * CAP, CAP):
        assert ring.try_publish(_orders(first, CAP)) == CAP
    assert int(ring.ctrl[W_HEAD]) == 5 * CAP


# ------------------------------------------------------------------------------------------ batch publish


@njit(cache=True)
def _claim_fill_commit(ctrl, slots, first_id, count):
    seq = ring_claim(ctrl, count)
    if seq < 0:
        return -1
    mask = slots.shape[0] - 1
    for k in range(count):
        slots[(seq + k) & mask].order_id = first_id + k
        slots[(seq + k) & mask].size = 10 * (first_id + k)
    ring_commit(ctrl, seq + count)
    return seq


def test_claim_commit_when_called_from_jitted_code_then_batch_visible_to_consumers(make_ring) -> None:
    ring = make_ring()
    assert _claim_fill_commit(ring.ctrl, ring.slots, 100, 5) == 0
    assert _claim_fill_commit(ring.ctrl, ring.slots, 105, 3) == 5
    assert _claim_fill_commit(ring.ctrl, ring.slots, 108, 1) == -1  # full: consumers gate
    assert int(ring.ctrl[W_PUBLISHES]) == 2
    for consumer in (0, 1):
        out = ring.read(consumer)
        assert out["order_id"].tolist() == list(range(100, 108))
        assert out["size"].tolist() == [10 * i for i in range(100, 108)]
    assert _claim_fill_commit(ring.ctrl, ring.slots, 108, 4) == 8  # wraps around the slot array
    assert ring.read(0)["order_id"].tolist() == [108, 109, 110, 111]


def test_claimed_slots_when_not_yet_committed_then_invisible_to_consumers(make_ring) -> None:
    ring = make_ring()
    seq = ring_claim(ring.ctrl, 2)
    ring.slots[seq & (CAP - 1)] = _orders(50, 1)[0]
    assert len(ring.read(0)) == 0
    ring_commit(ring.ctrl, seq + 1)
    assert ring.read(0)["order_id"].tolist() == [50]


# ------------------------------------------------------------------------------------------ lossy policy


def test_publish_when_lossy_ring_not_read_then_never_waits(make_ring) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    for first in range(0, 3 * CAP, CAP):
        assert ring.publish(_events(first, CAP)) == CAP
    assert int(ring.ctrl[W_HEAD]) == 3 * CAP
    assert int(ring.ctrl[W_BACKPRESSURE]) == 0
    assert ring_free(ring.ctrl, CAP) == CAP


def test_read_when_producer_laps_lossy_consumer_then_lost_exact_and_resync_quarter_ring(make_ring) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    for first in range(0, 20, 4):
        ring.try_publish(_events(first, 4))  # head = 20, tail = 0: lapped
    out = ring.read(0)
    resync = 20 - CAP + CAP // 4
    assert out["update_id"].tolist() == list(range(resync, 20))
    assert int(ring.ctrl[_word(0, W_OVERRUNS)]) == 1
    assert int(ring.ctrl[_word(0, W_LOST)]) == resync
    assert ring_tail(ring.ctrl, 0) == 20
    ring.try_publish(_events(20, 3))
    assert ring.read(0)["update_id"].tolist() == [20, 21, 22]
    assert int(ring.ctrl[_word(0, W_OVERRUNS)]) == 1  # caught up: nothing more lost
    assert int(ring.ctrl[_word(0, W_LOST)]) == resync
    stats = ring.stats()["consumers"][0]
    assert (stats["overruns"], stats["lost"], stats["lag"]) == (1, resync, 0)


@pytest.mark.parametrize("head", [CAP + 1, 2 * CAP, 3 * CAP + 5, 1000])
def test_read_when_lapped_consumer_resyncs_then_returns_only_unoverwritten_records(make_ring, head: int) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    for first in range(0, head, 3):
        ring.try_publish(_events(first, min(3, head - first)))
    received: list[int] = []
    while ring_tail(ring.ctrl, 0) < head:
        out = ring.read(0, max_count=3)
        received.extend(out["update_id"].tolist())
    lost = int(ring.ctrl[_word(0, W_LOST)])
    assert received == sorted(received)
    assert all(r > head - CAP for r in received), "a record older than one ring was returned"
    # what was returned is exactly the contiguous run after the skipped records
    assert received == list(range(lost, head))
    assert len(received) + lost == head


def test_read_when_lossy_consumer_exactly_one_ring_behind_and_producer_idle_then_all_records_valid(
    make_ring,
) -> None:
    # Documented rule: a copied record r is valid only if r >= claimed_now - capacity. With no batch in
    # progress (claimed == head) a full ring is entirely valid; the claimed slots of a batch in progress are
    # covered by test_read_when_lossy_producer_mid_batch_then_overwritten_records_not_returned.
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    ring.try_publish(_events(0, CAP))
    out = ring.read(0)
    assert out["update_id"].tolist() == list(range(CAP))
    assert int(ring.ctrl[_word(0, W_LOST)]) == 0
    assert int(ring.ctrl[_word(0, W_OVERRUNS)]) == 0


def test_read_when_lossy_producer_is_writing_next_slot_then_overwritten_record_discarded_not_returned(
    make_ring,
) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    ring.try_publish(_events(0, CAP))  # records 0..7, consumer at 0
    seq = ring_claim(ring.ctrl, 1)  # the producer is writing record 8 into record 0's slot, not yet committed
    ring.slots[seq & (CAP - 1)] = _events(seq, 1)[0]
    out = ring.read(0)
    assert out["update_id"].tolist() == list(range(1, CAP))  # record 0 is gone: counted, never returned
    assert (int(ring.ctrl[_word(0, W_LOST)]), int(ring.ctrl[_word(0, W_OVERRUNS)])) == (1, 1)
    ring_commit(ring.ctrl, seq + 1)
    assert ring.read(0)["update_id"].tolist() == [CAP]


def test_read_when_lossy_producer_mid_batch_then_overwritten_records_not_returned(make_ring) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    ring.try_publish(_events(0, CAP))  # records 0..7, consumer at 0
    # The producer is inside a batch of 4 (ring_claim, then slot writes, then ring_commit): it has written the
    # slots of records 8..11 (overwriting records 0..3) and not yet committed. A concurrent reader sees this.
    seq = ring_claim(ring.ctrl, 4)
    for k in range(4):
        ring.slots[(seq + k) & (CAP - 1)] = _events(seq + k, 1)[0]
    out = ring.read(0)
    tail = ring_tail(ring.ctrl, 0)
    positions = list(range(tail - len(out), tail))
    assert out["update_id"].tolist() == positions, "records returned under the wrong sequence (overwritten)"


def test_try_publish_when_lossy_batch_larger_than_capacity_then_capacity_published(make_ring) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    assert ring.try_publish(_events(0, 3 * CAP)) == CAP
    assert ring.slots["update_id"].tolist() == list(range(CAP))
    assert ring.publish(_events(CAP, 3 * CAP)) == 3 * CAP  # the waiting publisher finishes the rest


# ------------------------------------------------------------------------------------------ consumers


def test_register_consumer_when_slot_free_then_starts_at_head_and_gates_block_ring(make_ring) -> None:
    ring = make_ring(consumers=("a",))
    ring.try_publish(_orders(0, 5))
    index = ring.register_consumer(pid=4321)
    assert index == 1  # first slot after the named consumers
    assert ring_tail(ring.ctrl, index) == 5
    assert int(ring.ctrl[_word(index, W_CONSUMER_PID)]) == 4321
    assert int(ring.ctrl[_word(index, W_ACTIVE)]) == 1
    assert len(ring.read(index)) == 0  # nothing published before it registered
    published = 5
    while ring.try_publish(_orders(published, 1)) == 1:  # consumer 0 keeps up, the new one does not read
        published += 1
        ring.read(0)
        _check_block_invariant(ring)
        assert published <= 5 + CAP
    assert published == 5 + CAP  # gated by the new consumer's cursor
    assert ring.read(index)["order_id"].tolist() == list(range(5, 5 + CAP))
    assert ring.register_consumer() == 2
    assert int(ring.ctrl[_word(2, W_CONSUMER_PID)]) == os.getpid()


def test_register_consumer_when_all_slots_taken_then_runtime_error(make_ring) -> None:
    ring = make_ring(consumers=("a", "b"))
    assert [ring.register_consumer() for _ in range(MAX_CONSUMERS - 2)] == list(range(2, MAX_CONSUMERS))
    with pytest.raises(RuntimeError, match="consumer slots are taken"):
        ring.register_consumer()


def test_deactivate_consumer_when_it_stops_reading_then_producer_no_longer_gated(make_ring) -> None:
    ring = make_ring(consumers=("a", "b"))
    ring.try_publish(_orders(0, CAP))
    ring.read(0)
    assert ring.try_publish(_orders(CAP, 1)) == 0  # b gates
    ring.deactivate_consumer(1)
    assert int(ring.ctrl[_word(1, W_ACTIVE)]) == 0
    assert ring.try_publish(_orders(CAP, 2)) == 2
    assert ring_tail(ring.ctrl, 1) == 0  # its cursor stays for a restart
    assert ring.read(0)["order_id"].tolist() == [CAP, CAP + 1]


def test_activate_consumer_when_reactivated_before_lapped_then_resumes_from_cursor_and_gates(make_ring) -> None:
    ring = make_ring(consumers=("a", "b"))
    ring.try_publish(_orders(0, 6))
    ring.read(0)
    ring.read(1, max_count=2)
    ring.deactivate_consumer(1)
    ring.try_publish(_orders(6, 2))
    ring.read(0)
    ring.activate_consumer(1)
    assert int(ring.ctrl[_word(1, W_ACTIVE)]) == 1
    _check_block_invariant(ring)
    published = 8
    while ring.try_publish(_orders(published, 1)) == 1:
        published += 1
        ring.read(0)
        assert published <= 2 + CAP
    assert published == 2 + CAP  # gated again at b's cursor (2) plus one ring
    assert ring.read(1)["order_id"].tolist() == list(range(2, 2 + CAP))


def test_consumer_when_restarted_with_new_handle_then_resumes_from_shared_tail(make_ring) -> None:
    ring = make_ring(consumers=("a",))
    ring.try_publish(_orders(0, 6))
    assert ring.read(0, max_count=2)["order_id"].tolist() == [0, 1]
    restarted = Ring.attach(ring.region.name, ORDER, ("a",), capacity=CAP, generation=3)
    assert restarted.read(restarted.consumer_index("a"))["order_id"].tolist() == [2, 3, 4, 5]
    restarted.region.close()


def test_ring_peek_when_not_released_then_same_records_again_until_release(make_ring) -> None:
    ring = make_ring(consumers=("a",))
    ring.try_publish(_orders(0, 5))
    out = np.zeros(8, ORDER)
    assert ring_peek(ring.ctrl, ring.slots, 0, out, 3) == 3
    assert out["order_id"][:3].tolist() == [0, 1, 2]
    assert ring_tail(ring.ctrl, 0) == 0
    again = Ring.attach(ring.region.name, ORDER, ("a",))  # after a crash the records are still there
    assert ring_peek(again.ctrl, again.slots, 0, out, 8) == 5
    assert out["order_id"][:5].tolist() == [0, 1, 2, 3, 4]
    ring_release(ring.ctrl, 0, 3)
    assert ring.read(0)["order_id"].tolist() == [3, 4]
    again.region.close()


# ------------------------------------------------------------------------------------------------ stats


def test_stats_when_consumers_lag_then_lag_and_fill_reported(make_ring) -> None:
    ring = make_ring(consumers=("a", "b"))
    ring.try_publish(_orders(0, 6))
    ring.read(0, max_count=2)
    extra = ring.register_consumer(pid=99)
    ring.try_publish(_orders(6, 1))
    stats = ring.stats()
    assert stats["name"] == ring.region.name
    assert (stats["policy"], stats["capacity"], stats["record_size"]) == ("block", CAP, ORDER.itemsize)
    assert (stats["head"], stats["publishes"], stats["backpressure_waits"]) == (7, 2, 0)
    by_name = {c["name"]: c for c in stats["consumers"]}
    assert set(by_name) == {"a", "b", f"#{extra}"}
    assert (by_name["a"]["tail"], by_name["a"]["lag"], by_name["a"]["fill"]) == (2, 5, 5 / CAP)
    assert (by_name["b"]["tail"], by_name["b"]["lag"], by_name["b"]["fill"]) == (0, 7, 7 / CAP)
    assert (by_name[f"#{extra}"]["lag"], by_name[f"#{extra}"]["pid"]) == (1, 99)


def test_stats_when_lossy_consumer_lapped_then_fill_capped_at_one(make_ring) -> None:
    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    ring.try_publish(_events(0, CAP))
    ring.try_publish(_events(CAP, CAP))
    consumer = ring.stats()["consumers"][0]
    assert (consumer["lag"], consumer["fill"], ring.stats()["policy"]) == (2 * CAP, 1.0, "lossy")


def test_read_hold_when_records_copied_then_cursor_moves_only_on_release(make_ring) -> None:
    from shm_layout.ring import ring_read_hold, ring_release

    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    ring.try_publish(_events(0, 5))
    out = np.zeros(8, MD_EVENT)
    n = ring_read_hold(ring.ctrl, ring.slots, 0, out, 8)
    assert n == 5 and out["update_id"][:5].tolist() == [0, 1, 2, 3, 4]
    assert ring_tail(ring.ctrl, 0) == 0  # copied, not yet processed: a lock-step producer keeps waiting
    assert ring_read_hold(ring.ctrl, ring.slots, 0, out, 8) == 5  # the same records again until released
    ring_release(ring.ctrl, 0, ring_tail(ring.ctrl, 0) + n)
    assert ring_tail(ring.ctrl, 0) == 5
    assert ring_read_hold(ring.ctrl, ring.slots, 0, out, 8) == 0


def test_read_hold_when_lapped_then_cursor_skips_the_lost_records_before_returning(make_ring) -> None:
    from shm_layout.ring import ring_read_hold

    ring = make_ring(POLICY_LOSSY, ("s",), dtype=MD_EVENT)
    ring.publish(_events(0, 3 * CAP))
    out = np.zeros(CAP, MD_EVENT)
    n = ring_read_hold(ring.ctrl, ring.slots, 0, out, CAP)
    tail = ring_tail(ring.ctrl, 0)
    assert tail == int(ring.ctrl[_word(0, W_LOST)]) > 0  # moved past what was lost, not past what was read
    assert out["update_id"][:n].tolist() == list(range(tail, tail + n))
