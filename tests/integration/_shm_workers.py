"""Child-process entry points for the shared-memory integration tests (spawned: keep imports light).

The hot loops are jitted (cache=True) so a million records or reads take well under a second; Python only
attaches, starts the loop and reports the result on the queue (the last argument of every entry point).
A ``flags`` region (int64 words, one cache line per writer) carries start/stop signals:

    word 0        stop: the parent raises it to end open-ended loops (the seqlock writer)
    word 8 + 8*i  ready flag of child i (each on its own line)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shm_layout.atomics import cpu_relax, load_acquire, load_relaxed, monotonic_ns, store_release
from shm_layout.records import BOOK_SNAPSHOT, MD_EVENT, ORDER
from shm_layout.region import KIND_CONTROL, attach_region
from shm_layout.ring import (
    CONSUMER_WORDS,
    W_CONSUMERS,
    W_HEAD,
    W_LOST,
    W_OVERRUNS,
    W_TAIL,
    Ring,
    ring_publish_wait,
    ring_read,
    ring_try_publish,
)
from shm_layout.seqlock import SEQLOCK_BUSY, SLOT_WORDS, SnapshotTable, seqlock_read, seqlock_write
from shm_layout.wait import idle

FLAG_WORDS = 64
W_STOP = 0
W_IMBALANCE = BOOK_SNAPSHOT.fields["imbalance"][1] // 8
DEADLINE_NS = 30_000_000_000  # every loop gives up after 30 s: a bug shows as a failure, never a hang


def ready_word(child: int) -> int:
    return 8 + 8 * child


def _flags(name: str) -> np.ndarray:
    return attach_region(name, KIND_CONTROL, 8).body[: FLAG_WORDS * 8].view(np.int64)


@njit(cache=True)
def _wait_flag(flags, index, timeout_ns):
    start = monotonic_ns()
    while load_acquire(flags, index) == 0:
        if monotonic_ns() - start > timeout_ns:
            return False
        cpu_relax()
    return True


# ---------------------------------------------------------------------------------------------- block ring


@njit(cache=True)
def _produce_block(ctrl, slots, batch, total, flags, wait_strategy, n_consumers, capacity):
    """Publish ``total`` records (order_id = sequence) in batches; check 0 <= head - tail <= capacity."""
    published = 0
    violations = 0
    while published < total:
        n = batch.shape[0]
        if total - published < n:
            n = total - published
        for k in range(n):
            batch[k].order_id = published + k
            batch[k].price = (published + k) * 7
        done = ring_publish_wait(ctrl, slots, batch, n, flags, W_STOP, wait_strategy)
        published += done
        if done < n:
            break
        head = load_relaxed(ctrl, W_HEAD)
        for c in range(n_consumers):
            lag = head - load_acquire(ctrl, W_CONSUMERS + c * CONSUMER_WORDS + W_TAIL)
            if lag < 0 or lag > capacity:
                violations += 1
    return published, violations


@njit(cache=True)
def _consume_block(ctrl, slots, consumer, out, total, wait_strategy, capacity, deadline_ns):
    """Read until ``total`` records arrived; count records out of order (gaps or duplicates)."""
    received = 0
    expected = 0
    bad = 0
    first_bad = -1
    idle_rounds = 0
    max_lag = 0
    while received < total:
        n = ring_read(ctrl, slots, consumer, out, out.shape[0])
        if n == 0:
            if monotonic_ns() > deadline_ns:
                break
            idle(wait_strategy, idle_rounds)
            idle_rounds += 1
            continue
        idle_rounds = 0
        for k in range(n):
            if out[k].order_id != expected or out[k].price != expected * 7:
                bad += 1
                if first_bad < 0:
                    first_bad = expected
            expected = out[k].order_id + 1
        received += n
        tail = load_relaxed(ctrl, W_CONSUMERS + consumer * CONSUMER_WORDS + W_TAIL)
        lag = load_acquire(ctrl, W_HEAD) - tail
        if lag > max_lag:
            max_lag = lag
        if lag < 0 or lag > capacity:
            bad += 1
    return received, bad, first_bad, max_lag


def block_producer(ring_name: str, flags_name: str, total: int, batch_size: int, n_consumers: int,
                   wait_strategy: int, queue) -> None:
    ring = Ring.attach(ring_name, ORDER)
    flags = _flags(flags_name)
    batch = np.zeros(batch_size, ORDER)
    _produce_block(ring.ctrl, ring.slots, batch, 0, flags, wait_strategy, n_consumers, ring.capacity)  # compile
    for child in range(n_consumers):  # start only when every consumer is in its loop
        assert _wait_flag(flags, ready_word(child), DEADLINE_NS)
    started = monotonic_ns()
    published, violations = _produce_block(ring.ctrl, ring.slots, batch, total, flags, wait_strategy,
                                           n_consumers, ring.capacity)
    queue.put({"role": "producer", "published": int(published), "violations": int(violations),
               "seconds": (monotonic_ns() - started) / 1e9})


def block_consumer(ring_name: str, flags_name: str, consumer: int, total: int, read_batch: int,
                   wait_strategy: int, queue) -> None:
    ring = Ring.attach(ring_name, ORDER)
    flags = _flags(flags_name)
    ring.claim_consumer(consumer)
    out = np.zeros(read_batch, ORDER)
    _consume_block(ring.ctrl, ring.slots, consumer, out, 0, wait_strategy, ring.capacity, 0)  # compile first
    store_release(flags, ready_word(consumer), 1)
    received, bad, first_bad, max_lag = _consume_block(
        ring.ctrl, ring.slots, consumer, out, total, wait_strategy, ring.capacity, monotonic_ns() + DEADLINE_NS)
    queue.put({"role": "consumer", "consumer": consumer, "received": int(received), "bad": int(bad),
               "first_bad": int(first_bad), "max_lag": int(max_lag)})


# ---------------------------------------------------------------------------------------------- lossy ring


@njit(cache=True)
def _produce_lossy(ctrl, slots, record, total, pause_ns):
    """Publish ``total`` records one at a time (update_id = sequence), pausing ``pause_ns`` after each."""
    for seq in range(total):
        record[0].update_id = seq
        record[0].price = seq * 3
        ring_try_publish(ctrl, slots, record, 0, 1)
        if pause_ns > 0:
            until = monotonic_ns() + pause_ns
            while monotonic_ns() < until:
                cpu_relax()
    return total


@njit(cache=True)
def _consume_lossy(ctrl, slots, consumer, out, total, work_ns, deadline_ns):
    """Read slowly until the cursor reaches ``total``; every returned record must be the one at its sequence."""
    tail_word = W_CONSUMERS + consumer * CONSUMER_WORDS + W_TAIL
    received = 0
    wrong = 0
    not_increasing = 0
    last = -1
    while load_relaxed(ctrl, tail_word) < total:
        n = ring_read(ctrl, slots, consumer, out, out.shape[0])
        if n == 0:
            if monotonic_ns() > deadline_ns:
                break
            cpu_relax()
            continue
        tail = load_relaxed(ctrl, tail_word)
        for k in range(n):
            seq = out[k].update_id
            if seq != tail - n + k or out[k].price != seq * 3:
                wrong += 1
            if seq <= last:
                not_increasing += 1
            last = seq
        received += n
        until = monotonic_ns() + work_ns  # a deliberately slow consumer
        while monotonic_ns() < until:
            cpu_relax()
    return received, wrong, not_increasing


def lossy_producer(ring_name: str, flags_name: str, total: int, pause_ns: int, queue) -> None:
    ring = Ring.attach(ring_name, MD_EVENT)
    flags = _flags(flags_name)
    record = np.zeros(1, MD_EVENT)
    _produce_lossy(ring.ctrl, ring.slots, record, 0, 0)  # compile before waiting
    assert _wait_flag(flags, ready_word(0), DEADLINE_NS)
    started = monotonic_ns()
    published = _produce_lossy(ring.ctrl, ring.slots, record, total, pause_ns)
    queue.put({"role": "producer", "published": int(published), "seconds": (monotonic_ns() - started) / 1e9})


def lossy_consumer(ring_name: str, flags_name: str, consumer: int, total: int, read_batch: int, work_ns: int,
                   queue) -> None:
    ring = Ring.attach(ring_name, MD_EVENT)
    flags = _flags(flags_name)
    out = np.zeros(read_batch, MD_EVENT)
    _consume_lossy(ring.ctrl, ring.slots, consumer, out, 0, 0, 0)  # compile first
    store_release(flags, ready_word(consumer), 1)
    received, wrong, not_increasing = _consume_lossy(
        ring.ctrl, ring.slots, consumer, out, total, work_ns, monotonic_ns() + DEADLINE_NS)
    base = W_CONSUMERS + consumer * CONSUMER_WORDS
    queue.put({"role": "consumer", "received": int(received), "wrong": int(wrong),
               "not_increasing": int(not_increasing), "lost": int(ring.ctrl[base + W_LOST]),
               "overruns": int(ring.ctrl[base + W_OVERRUNS]), "tail": int(ring.ctrl[base + W_TAIL])})


# ---------------------------------------------------------------------------------------------- seqlock


@njit(cache=True)
def _write_snapshots(words, slot, source, source_f, flags, first_counter, deadline_ns):
    """Publish snapshots where every payload word derives from one counter, until the stop flag rises."""
    counter = first_counter - 1
    while True:
        counter += 1
        for k in range(1, source.shape[0]):
            if k != W_IMBALANCE:
                source[k] = counter * 31 + k
        source_f[W_IMBALANCE] = counter / 1048576.0
        seqlock_write(words, slot, source)
        if (counter & 255) == 0 and (load_relaxed(flags, W_STOP) != 0 or monotonic_ns() > deadline_ns):
            break
    return counter


@njit(cache=True)
def _read_snapshots(words, slot, dest, dest_f, n_reads, max_retries, deadline_ns):
    """Read ``n_reads`` consistent copies; count torn ones (words not from one counter) and retries."""
    reads = 0
    torn = 0
    retries = 0
    busy = 0
    backwards = 0
    last = 0
    while reads < n_reads:
        r = seqlock_read(words, slot, dest, max_retries)
        if r == SEQLOCK_BUSY:
            busy += 1
            if monotonic_ns() > deadline_ns:
                break
            continue
        retries += r
        reads += 1
        counter = (dest[1] - 1) // 31
        ok = dest[0] == 2 * counter and counter > 0
        for k in range(1, dest.shape[0]):
            if k != W_IMBALANCE and dest[k] != counter * 31 + k:
                ok = False
        if dest_f[W_IMBALANCE] != counter / 1048576.0:
            ok = False
        if not ok:
            torn += 1
        if counter < last:
            backwards += 1
        last = counter
        if (reads & 4095) == 0 and monotonic_ns() > deadline_ns:
            break
    return reads, torn, retries, busy, backwards, last


def seqlock_writer(table_name: str, flags_name: str, slot: int, queue) -> None:
    table = SnapshotTable.attach(table_name)
    flags = _flags(flags_name)
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    source = snapshot.view(np.int64)
    source_f = snapshot.view(np.float64)
    # compile on a private slot (the loop stops after 256 writes), then publish counter 1 for real so the
    # readers never see the all-zero initial slot: from here on, sequence == 2 * counter
    _write_snapshots(np.zeros(SLOT_WORDS, np.int64), 0, source, source_f, np.ones(1, np.int64), 1, 0)
    source[1:] = np.arange(1, SLOT_WORDS) + 31
    source_f[W_IMBALANCE] = 1 / 1048576.0
    assert seqlock_write(table.words, slot, source) == 2
    for reader in (1, 2):  # start writing flat out only once both readers are in their loops
        assert _wait_flag(flags, ready_word(reader), DEADLINE_NS)
    store_release(flags, ready_word(0), 1)
    last = _write_snapshots(table.words, slot, source, source_f, flags, 2, monotonic_ns() + DEADLINE_NS)
    queue.put({"role": "writer", "last_counter": int(last), "seq": int(table.words[slot * SLOT_WORDS])})


def seqlock_reader(table_name: str, flags_name: str, slot: int, reader: int, n_reads: int, queue) -> None:
    table = SnapshotTable.attach(table_name, readonly=True)
    flags = _flags(flags_name)
    dest_record = np.zeros(1, BOOK_SNAPSHOT)
    dest = dest_record.view(np.int64)
    dest_f = dest_record.view(np.float64)
    private = np.zeros(SLOT_WORDS, np.int64)
    private.setflags(write=False)  # same numba type as the read-only mapping
    _read_snapshots(private, 0, dest, dest_f, 1, 10, monotonic_ns() + DEADLINE_NS)  # compile
    store_release(flags, ready_word(1 + reader), 1)
    assert _wait_flag(flags, ready_word(0), DEADLINE_NS)
    started = monotonic_ns()
    reads, torn, retries, busy, backwards, last = _read_snapshots(
        table.words, slot, dest, dest_f, n_reads, 1_000_000, monotonic_ns() + DEADLINE_NS)
    queue.put({"role": "reader", "reader": reader, "reads": int(reads), "torn": int(torn), "retries": int(retries),
               "busy": int(busy), "backwards": int(backwards), "last": int(last),
               "seconds": (monotonic_ns() - started) / 1e9})
