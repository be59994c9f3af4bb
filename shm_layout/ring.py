"""Single-producer broadcast ring of fixed-size records (Disruptor style), usable from numba and Python.

Byte layout of a ring region's body::

    0      RING_CONTROL line 0 (producer): head, backpressure_waits, claimed, policy, n_consumers,
           capacity, publishes, cached_min_tail
    64     RING_CONTROL.consumers[0]: tail, overruns, lost, pid, active      (written by consumer 0 only)
    ...    one 64-byte line per consumer slot (MAX_CONSUMERS)
    576    slots[capacity] of the ring's record dtype; record ``s`` lives in ``slots[s & (capacity - 1)]``

Cursors are int64 record counts that only grow (2**63 records at 10**9/s is 292 years: no wrap-around).

Invariants (tests/unit/shm_layout/test_ring.py checks each):

* One producer per ring. ``head`` is written only by it, with a *release* store after the slots it covers are
  written; consumers *acquire*-load ``head`` before reading slots, so they see complete records.
* A consumer's ``tail`` is written only by that consumer, with a release store after it finished reading the
  slots below it; the producer acquire-loads tails before overwriting, so a slot is never reused under a reader.
* ``block`` policy (orders, executions, persistence): ``0 <= head - tail <= capacity`` for every *active*
  consumer at all times; the producer waits (``ring_publish_wait``, counting ``backpressure_waits``) and never
  drops. A consumer that stops consuming stalls the producer: that is the point, nothing is lost.
* ``lossy`` policy (market-data fan-out): the producer never waits and may lap a consumer. Before writing a
  batch the producer stores ``claimed = head + n`` (then a release fence: x86 keeps stores in order, the fence
  keeps the compiler from sinking it), so slots ``[head, claimed)`` may be half-written. A lossy consumer must
  read through ``ring_read``: copy, acquire fence, re-load ``claimed``; a copied record ``r`` is valid only if
  ``r >= claimed_now - capacity`` (its slot is not among those being rewritten). Anything older is discarded,
  counted in ``overruns``/``lost``, and the consumer resynchronises a quarter ring behind ``head``.
* Consumer slots are assigned when the supervisor creates the ring (names in ``shm_layout.layout``); a consumer
  restarted after a crash resumes from its ``tail``, which lives here, not in the process.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit

from shm_layout.atomics import fence_acquire, fence_release, load_acquire, load_relaxed, store_relaxed, store_release
from shm_layout.records import MAX_CONSUMERS, RING_CONSUMER, RING_CONTROL, word_index
from shm_layout.region import KIND_RING, Region, attach_region, create_region
from shm_layout.wait import idle

POLICY_BLOCK = 1
POLICY_LOSSY = 2
POLICY_NAMES = {POLICY_BLOCK: "block", POLICY_LOSSY: "lossy"}

W_HEAD = word_index(RING_CONTROL, "head")
W_BACKPRESSURE = word_index(RING_CONTROL, "backpressure_waits")
W_CLAIMED = word_index(RING_CONTROL, "claimed")
W_POLICY = word_index(RING_CONTROL, "policy")
W_N_CONSUMERS = word_index(RING_CONTROL, "n_consumers")
W_CAPACITY = word_index(RING_CONTROL, "capacity")
W_PUBLISHES = word_index(RING_CONTROL, "publishes")
W_CACHED_MIN_TAIL = word_index(RING_CONTROL, "cached_min_tail")
W_CONSUMERS = word_index(RING_CONTROL, "consumers")
CONSUMER_WORDS = RING_CONSUMER.itemsize // 8
W_TAIL = word_index(RING_CONSUMER, "tail")
W_OVERRUNS = word_index(RING_CONSUMER, "overruns")
W_LOST = word_index(RING_CONSUMER, "lost")
W_CONSUMER_PID = word_index(RING_CONSUMER, "pid")
W_ACTIVE = word_index(RING_CONSUMER, "active")
CONTROL_BYTES = RING_CONTROL.itemsize
assert CONTROL_BYTES % 64 == 0


@njit(inline="always", cache=True)
def _consumer_word(consumer: int, field: int) -> int:
    return W_CONSUMERS + consumer * CONSUMER_WORDS + field


# ----------------------------------------------------------------------------------------------- producer


@njit(cache=True)
def ring_free(ctrl: np.ndarray, wanted: int) -> int:
    """Return how many records the producer may write now without passing any gating consumer.

    Producer only. The slowest consumer's cursor is cached; it is re-read whenever the cached bound leaves
    fewer than ``wanted`` free slots, so a fixed-size claim always sees what consumers have released.
    Lossy rings never gate: the answer is always the capacity.
    """
    capacity = ctrl[W_CAPACITY]
    if ctrl[W_POLICY] == POLICY_LOSSY:
        return capacity
    head = load_relaxed(ctrl, W_HEAD)
    min_tail = load_relaxed(ctrl, W_CACHED_MIN_TAIL)
    if capacity - (head - min_tail) >= wanted:
        return capacity - (head - min_tail)
    # Cached bound too small: re-read every active consumer's tail. Acquire pairs with the consumer's release
    # store of its tail, so its reads of the old slots happen before we overwrite them.
    min_tail = head
    for consumer in range(ctrl[W_N_CONSUMERS]):
        if load_acquire(ctrl, _consumer_word(consumer, W_ACTIVE)) != 0:
            tail = load_acquire(ctrl, _consumer_word(consumer, W_TAIL))
            if tail < min_tail:
                min_tail = tail
    store_relaxed(ctrl, W_CACHED_MIN_TAIL, min_tail)
    return capacity - (head - min_tail)


@njit(cache=True)
def ring_claim(ctrl: np.ndarray, count: int) -> int:
    """Return the sequence of the first of ``count`` free slots, or -1 if they are not all free (producer only).

    Write the records into ``slots[(seq + k) & (capacity - 1)]`` then call ``ring_commit(ctrl, seq + count)``.
    """
    if ring_free(ctrl, count) < count:
        return -1
    head = load_relaxed(ctrl, W_HEAD)
    store_relaxed(ctrl, W_CLAIMED, head + count)
    fence_release()  # the claim is visible before any of the claimed slots change
    return head


@njit(cache=True)
def ring_commit(ctrl: np.ndarray, new_head: int) -> None:
    """Publish every slot below ``new_head`` (producer only): the release store orders the slot writes first."""
    store_release(ctrl, W_HEAD, new_head)
    store_relaxed(ctrl, W_PUBLISHES, ctrl[W_PUBLISHES] + 1)


@njit(cache=True)
def ring_try_publish(ctrl: np.ndarray, slots: np.ndarray, records: np.ndarray, start: int, count: int) -> int:
    """Copy up to ``count`` records from ``records[start:]`` into the ring and publish them as one batch.

    Return how many were published: as many as fit on a block ring; at most ``capacity`` per call on a lossy
    ring (a larger batch would overwrite itself): call again for the rest.
    """
    free = ring_free(ctrl, count)
    n = count if count < free else free
    if n <= 0:
        return 0
    head = load_relaxed(ctrl, W_HEAD)
    store_relaxed(ctrl, W_CLAIMED, head + n)
    fence_release()  # the claim is visible before any of the claimed slots change
    mask = ctrl[W_CAPACITY] - 1
    for k in range(n):
        slots[(head + k) & mask] = records[start + k]
    ring_commit(ctrl, head + n)
    return n


@njit(cache=True)
def ring_publish_wait(
    ctrl: np.ndarray,
    slots: np.ndarray,
    records: np.ndarray,
    count: int,
    stop_words: np.ndarray,
    stop_index: int,
    wait_strategy: int,
) -> int:
    """Publish all ``count`` records, waiting on a full block ring; give up only if ``stop_words[stop_index]``
    becomes non-zero (the control region's ``abort_requested``: a forced shutdown, never a normal stop).

    Each episode of finding the ring full counts once in ``backpressure_waits``. Return how many were
    published (``count`` unless stopped).
    """
    done = 0
    idle_rounds = 0
    while done < count:
        n = ring_try_publish(ctrl, slots, records, done, count - done)
        done += n
        if done == count:
            break
        if n > 0:
            idle_rounds = 0
            continue
        if idle_rounds == 0:
            store_relaxed(ctrl, W_BACKPRESSURE, ctrl[W_BACKPRESSURE] + 1)
        if load_relaxed(stop_words, stop_index) != 0:
            break
        idle(wait_strategy, idle_rounds)
        idle_rounds += 1
    return done


# ----------------------------------------------------------------------------------------------- consumer


@njit(cache=True)
def ring_available(ctrl: np.ndarray, consumer: int) -> int:
    """Return how many published records ``consumer`` has not yet released (acquire: safe to read them)."""
    head = load_acquire(ctrl, W_HEAD)
    return head - load_relaxed(ctrl, _consumer_word(consumer, W_TAIL))


@njit(cache=True)
def ring_tail(ctrl: np.ndarray, consumer: int) -> int:
    """Return the consumer's cursor: the sequence of the next record it will read."""
    return load_relaxed(ctrl, _consumer_word(consumer, W_TAIL))


@njit(cache=True)
def ring_release(ctrl: np.ndarray, consumer: int, new_tail: int) -> None:
    """Hand every slot below ``new_tail`` back to the producer (the consumer's own cursor, release store)."""
    store_release(ctrl, _consumer_word(consumer, W_TAIL), new_tail)


@njit(cache=True)
def _read_batch(ctrl: np.ndarray, slots: np.ndarray, consumer: int, out: np.ndarray, max_count: int) -> int:
    """Copy and validate up to ``max_count`` records into ``out``; move the cursor only past lost records.

    Return ``n``: ``out[:n]`` are records ``tail .. tail + n - 1`` where ``tail`` is the cursor on return.
    """
    capacity = ctrl[W_CAPACITY]
    mask = capacity - 1
    tail_word = _consumer_word(consumer, W_TAIL)
    tail = load_relaxed(ctrl, tail_word)
    start_tail = tail
    head = load_acquire(ctrl, W_HEAD)
    if head - tail > capacity:  # lapped before we even started: skip to fresh data
        resync = head - capacity + capacity // 4
        _count_overrun(ctrl, consumer, resync - tail)
        tail = resync
    n = head - tail
    if n > max_count:
        n = max_count
    if n > out.shape[0]:
        n = out.shape[0]
    for k in range(n):
        out[k] = slots[(tail + k) & mask]
    if ctrl[W_POLICY] == POLICY_LOSSY and n > 0:
        fence_acquire()  # the copies above complete before we look at the claim again
        claimed_now = load_acquire(ctrl, W_CLAIMED)
        oldest_valid = claimed_now - capacity  # slots of records below it may be being rewritten
        if tail < oldest_valid:
            torn = oldest_valid - tail
            if torn >= n:
                resync = claimed_now - capacity + capacity // 4
                _count_overrun(ctrl, consumer, resync - tail)
                tail = resync
                n = 0
            else:
                for k in range(n - torn):
                    out[k] = out[k + torn]
                _count_overrun(ctrl, consumer, torn)
                tail += torn
                n -= torn
    if tail != start_tail:
        ring_release(ctrl, consumer, tail)
    return n


@njit(cache=True)
def ring_read(ctrl: np.ndarray, slots: np.ndarray, consumer: int, out: np.ndarray, max_count: int) -> int:
    """Copy up to ``max_count`` unread records into ``out[0:n]``, release them, and return ``n``.

    Safe on both policies. On a lossy ring a lapped consumer loses the overwritten records: they are counted
    in its ``overruns`` and ``lost`` words and it continues from a quarter ring behind the producer.
    """
    n = _read_batch(ctrl, slots, consumer, out, max_count)
    if n > 0:
        ring_release(ctrl, consumer, load_relaxed(ctrl, _consumer_word(consumer, W_TAIL)) + n)
    return n


@njit(cache=True)
def ring_read_hold(ctrl: np.ndarray, slots: np.ndarray, consumer: int, out: np.ndarray, max_count: int) -> int:
    """Like ``ring_read`` but keep the records unreleased: call ``ring_release(ctrl, consumer,
    ring_tail(ctrl, consumer) + n)`` once they are *processed*.

    The cursor then means "processed", which a lock-step producer (replay) can wait on.
    """
    return _read_batch(ctrl, slots, consumer, out, max_count)


@njit(cache=True)
def ring_peek(ctrl: np.ndarray, slots: np.ndarray, consumer: int, out: np.ndarray, max_count: int) -> int:
    """Copy up to ``max_count`` unread records into ``out`` WITHOUT releasing them (block rings only).

    For consumers that must make their work durable first (persistence commits, then ``ring_release``):
    after a crash the unreleased records are still in the ring and are read again.
    """
    mask = ctrl[W_CAPACITY] - 1
    tail = load_relaxed(ctrl, _consumer_word(consumer, W_TAIL))
    n = load_acquire(ctrl, W_HEAD) - tail
    if n > max_count:
        n = max_count
    if n > out.shape[0]:
        n = out.shape[0]
    for k in range(n):
        out[k] = slots[(tail + k) & mask]
    return n


@njit(cache=True)
def _count_overrun(ctrl: np.ndarray, consumer: int, lost: int) -> None:
    store_relaxed(ctrl, _consumer_word(consumer, W_OVERRUNS), ctrl[_consumer_word(consumer, W_OVERRUNS)] + 1)
    store_relaxed(ctrl, _consumer_word(consumer, W_LOST), ctrl[_consumer_word(consumer, W_LOST)] + lost)


# ----------------------------------------------------------------------------------------------- Python side


def ring_body_bytes(record_dtype: np.dtype, capacity: int) -> int:
    """Return the body size of a ring region: control lines plus slots."""
    return CONTROL_BYTES + np.dtype(record_dtype).itemsize * capacity


class LocalRing:
    """A ring in this process's own memory: the same control words and slots as a shared ring, for drivers that
    run producer and consumers in one process (a backtest, tests). Every ``ring_*`` function works on it."""

    def __init__(self, record_dtype: np.dtype, capacity: int, policy: int = POLICY_BLOCK,
                 consumer_names: tuple[str, ...] = ()) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two, got {capacity}")
        if len(consumer_names) > MAX_CONSUMERS:
            raise ValueError(f"at most {MAX_CONSUMERS} consumers, got {len(consumer_names)}")
        self.record_dtype = np.dtype(record_dtype)
        self.capacity = capacity
        self.consumer_names = consumer_names
        self.ctrl = np.zeros(CONTROL_BYTES // 8, np.int64)
        self.control = self.ctrl.view(RING_CONTROL)
        self.slots = np.zeros(capacity, self.record_dtype)
        self.ctrl[W_CAPACITY] = capacity
        self.ctrl[W_POLICY] = policy
        self.ctrl[W_N_CONSUMERS] = MAX_CONSUMERS
        for index in range(len(consumer_names)):
            self.ctrl[W_CONSUMERS + index * CONSUMER_WORDS + W_ACTIVE] = 1

    def consumer_index(self, name: str) -> int:
        """Return the slot of a named consumer."""
        return self.consumer_names.index(name)


class Ring:
    """A ring region mapped into this process, with its control words and typed slots.

    ``ctrl`` (int64 words) and ``slots`` (records) are the arrays to hand to the jitted functions above.
    """

    def __init__(self, region: Region, record_dtype: np.dtype, consumer_names: tuple[str, ...] = ()) -> None:
        self.region = region
        self.record_dtype = np.dtype(record_dtype)
        self.ctrl = region.body[:CONTROL_BYTES].view(np.int64)
        self.control = region.body[:CONTROL_BYTES].view(RING_CONTROL)
        self.capacity = int(self.ctrl[W_CAPACITY])
        self.slots = region.view(self.record_dtype, CONTROL_BYTES, self.capacity)
        self.consumer_names = consumer_names

    @classmethod
    def create(
        cls,
        name: str,
        record_dtype: np.dtype,
        capacity: int,
        policy: int,
        consumer_names: tuple[str, ...],
        generation: int,
    ) -> Ring:
        """Create the ring's segment with one gating cursor per named consumer (supervisor only)."""
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError(f"{name}: capacity must be a power of two, got {capacity}")
        if len(consumer_names) > MAX_CONSUMERS:
            raise ValueError(f"{name}: at most {MAX_CONSUMERS} consumers, got {len(consumer_names)}")
        if policy not in POLICY_NAMES:
            raise ValueError(f"{name}: unknown ring policy {policy}")
        record_dtype = np.dtype(record_dtype)
        region = create_region(
            name, KIND_RING, record_dtype.itemsize, capacity, ring_body_bytes(record_dtype, capacity), generation
        )
        ctrl = region.body[:CONTROL_BYTES].view(np.int64)
        ctrl[W_CAPACITY] = capacity
        ctrl[W_POLICY] = policy
        ctrl[W_N_CONSUMERS] = MAX_CONSUMERS  # every slot is scanned; inactive ones do not gate
        for index in range(len(consumer_names)):
            ctrl[W_CONSUMERS + index * CONSUMER_WORDS + W_ACTIVE] = 1
        return cls(region, record_dtype, consumer_names)

    @classmethod
    def attach(
        cls,
        name: str,
        record_dtype: np.dtype,
        consumer_names: tuple[str, ...] = (),
        capacity: int | None = None,
        generation: int | None = None,
        readonly: bool = False,
    ) -> Ring:
        """Map an existing ring after checking its header (workers, tools)."""
        record_dtype = np.dtype(record_dtype)
        region = attach_region(name, KIND_RING, record_dtype.itemsize, capacity, generation, readonly)
        return cls(region, record_dtype, consumer_names)

    @property
    def policy(self) -> int:
        return int(self.ctrl[W_POLICY])

    def consumer_index(self, name: str) -> int:
        """Return the slot of a named consumer."""
        try:
            return self.consumer_names.index(name)
        except ValueError:
            raise KeyError(f"{self.region.name}: no consumer named {name!r} (have {self.consumer_names})") from None

    def register_consumer(self, pid: int | None = None) -> int:
        """Take a free consumer slot starting at the current head (tools and tests; one caller at a time)."""
        for index in range(len(self.consumer_names), MAX_CONSUMERS):
            base = W_CONSUMERS + index * CONSUMER_WORDS
            if self.ctrl[base + W_ACTIVE] == 0 and self.ctrl[base + W_CONSUMER_PID] == 0:
                self.ctrl[base + W_CONSUMER_PID] = pid if pid is not None else os.getpid()
                self.ctrl[base + W_TAIL] = int(self.ctrl[W_HEAD])
                store_release(self.ctrl, base + W_ACTIVE, 1)
                return index
        raise RuntimeError(f"{self.region.name}: all {MAX_CONSUMERS} consumer slots are taken")

    def claim_consumer(self, index: int, pid: int | None = None) -> None:
        """Record which process now reads through consumer slot ``index`` (for stats)."""
        self.ctrl[W_CONSUMERS + index * CONSUMER_WORDS + W_CONSUMER_PID] = pid if pid is not None else os.getpid()

    def deactivate_consumer(self, index: int) -> None:
        """Stop gating the producer on consumer ``index`` (it left cleanly; its cursor stays for a restart)."""
        store_release(self.ctrl, W_CONSUMERS + index * CONSUMER_WORDS + W_ACTIVE, 0)

    def activate_consumer(self, index: int) -> int:
        """Gate the producer on consumer ``index`` again (a restarted consumer resumes from its cursor).

        Return how many records it already missed (non-zero only if the producer lapped it while it was
        inactive; the caller must report that loss).
        """
        store_release(self.ctrl, W_CONSUMERS + index * CONSUMER_WORDS + W_ACTIVE, 1)
        tail = int(self.ctrl[W_CONSUMERS + index * CONSUMER_WORDS + W_TAIL])
        return max(0, int(self.ctrl[W_HEAD]) - self.capacity - tail)

    def publish(
        self, records: np.ndarray, stop_words: np.ndarray | None = None, stop_index: int = 0, wait_strategy: int = 2
    ) -> int:
        """Publish ``records`` (waiting on a full block ring until done or the stop flag is raised)."""
        records = np.ascontiguousarray(records, dtype=self.record_dtype)
        if stop_words is None:
            stop_words = np.zeros(1, np.int64)
            stop_index = 0
        return int(ring_publish_wait(self.ctrl, self.slots, records, len(records), stop_words, stop_index,
                                     wait_strategy))

    def try_publish(self, records: np.ndarray) -> int:
        """Publish as many of ``records`` as fit now; return the count."""
        records = np.ascontiguousarray(records, dtype=self.record_dtype)
        return int(ring_try_publish(self.ctrl, self.slots, records, 0, len(records)))

    def read(self, consumer: int, max_count: int = 1024) -> np.ndarray:
        """Return up to ``max_count`` unread records for ``consumer`` (a copy) and release them."""
        out = np.zeros(max_count, dtype=self.record_dtype)
        n = ring_read(self.ctrl, self.slots, consumer, out, max_count)
        return out[:n]

    def history(self, id_field: str) -> np.ndarray:
        """Copy the records still intact in the slots, oldest first: those of sequences ``[head - capacity,
        head)`` whose ``id_field`` equals their sequence + 1 (records numbered by the ring, such as order and
        execution ids; a slot being rewritten fails the check). For restarts, never on a hot path."""
        head = int(self.ctrl[W_HEAD])
        first = max(0, head - self.capacity)
        seqs = np.arange(first, head, dtype=np.int64)
        records = self.slots[seqs & (self.capacity - 1)].copy()
        return records[records[id_field] == seqs + 1]

    def stats(self) -> dict[str, object]:
        """Return capacity, head, and per-consumer cursor, lag, fill and overruns (plain reads)."""
        head = int(self.ctrl[W_HEAD])
        consumers = []
        for index in range(MAX_CONSUMERS):
            base = W_CONSUMERS + index * CONSUMER_WORDS
            active = int(self.ctrl[base + W_ACTIVE])
            pid = int(self.ctrl[base + W_CONSUMER_PID])
            if not active and not pid:
                continue
            tail = int(self.ctrl[base + W_TAIL])
            consumers.append(
                {
                    "name": self.consumer_names[index] if index < len(self.consumer_names) else f"#{index}",
                    "tail": tail,
                    "lag": head - tail,
                    "fill": min(1.0, max(0.0, (head - tail) / self.capacity)),
                    "overruns": int(self.ctrl[base + W_OVERRUNS]),
                    "lost": int(self.ctrl[base + W_LOST]),
                    "pid": pid,
                }
            )
        return {
            "name": self.region.name,
            "policy": POLICY_NAMES.get(self.policy, "?"),
            "capacity": self.capacity,
            "record_size": self.record_dtype.itemsize,
            "head": head,
            "publishes": int(self.ctrl[W_PUBLISHES]),
            "backpressure_waits": int(self.ctrl[W_BACKPRESSURE]),
            "consumers": consumers,
        }
