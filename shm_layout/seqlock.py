"""Seqlock-guarded snapshot slots: one writer (the feed), any number of readers, no locks, no waiting writer.

Byte layout of a seqlock region's body: ``slots[n_symbols]`` of ``BOOK_SNAPSHOT`` (448 bytes, 7 cache lines,
``seq`` in word 0). Slot ``i`` belongs to symbol id ``i``.

Protocol (Boehm, "Can seqlocks get along with programming language memory models?", MSPC 2012):

* writer: ``seq = s + 1`` (relaxed) -> release fence -> payload words (relaxed atomic stores) ->
  ``seq = s + 2`` (release store). An **odd sequence means a write is in progress**.
* reader: ``s0 = seq`` (acquire; retry if odd) -> copy payload words (relaxed atomic loads) -> acquire fence ->
  ``s1 = seq`` (relaxed); the copy is valid iff ``s0 == s1``. Otherwise retry, counting retries.

Invariants: one writer per slot (the feed process); ``seq`` only grows, by exactly 2 per published write
(3 for the first write after a writer died mid-write, which rounds the odd sequence up);
a reader never returns a copy whose sequence check failed. A writer that died mid-write leaves ``seq`` odd:
readers give up after ``max_retries`` and return ``SEQLOCK_BUSY`` instead of spinning forever.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shm_layout.atomics import (
    cpu_relax,
    fence_acquire,
    fence_release,
    load_acquire,
    load_relaxed,
    store_relaxed,
    store_release,
)
from shm_layout.records import BLOB_HEADER_WORDS, BOOK_SNAPSHOT, word_index
from shm_layout.region import KIND_SEQLOCK, Region, attach_region, create_region

SLOT_WORDS = BOOK_SNAPSHOT.itemsize // 8
W_SEQ = word_index(BOOK_SNAPSHOT, "seq")
assert W_SEQ == 0
SEQLOCK_BUSY = -1  # read gave up: the writer is inside (or died inside) the slot
DEFAULT_MAX_RETRIES = 10_000


@njit(cache=True)
def seqlock_write(words: np.ndarray, slot: int, source: np.ndarray) -> int:
    """Publish ``source`` (one slot's worth of int64 words; its word 0 is ignored) into ``slot``; return new seq.

    Single writer per slot. The slot's readers never see a mix of old and new words.
    """
    base = slot * SLOT_WORDS
    seq = load_relaxed(words, base + W_SEQ)
    seq += seq & 1  # a previous writer died mid-write: round up so this write ends even again
    store_relaxed(words, base + W_SEQ, seq + 1)
    fence_release()  # the odd sequence is visible before any payload word changes
    for k in range(1, SLOT_WORDS):
        store_relaxed(words, base + k, source[k])
    store_release(words, base + W_SEQ, seq + 2)  # payload visible before the even sequence
    return seq + 2


@njit(cache=True)
def seqlock_read(words: np.ndarray, slot: int, dest: np.ndarray, max_retries: int) -> int:
    """Copy a consistent snapshot of ``slot`` into ``dest`` (int64 words, ``dest[0]`` = its sequence).

    Return the number of retries it took (>= 0), or ``SEQLOCK_BUSY`` after ``max_retries`` failed attempts.
    """
    base = slot * SLOT_WORDS
    retries = 0
    while retries <= max_retries:
        s0 = load_acquire(words, base + W_SEQ)
        if s0 & 1 == 0:
            for k in range(1, SLOT_WORDS):
                dest[k] = load_relaxed(words, base + k)
            fence_acquire()  # the payload loads complete before the sequence is re-read
            s1 = load_relaxed(words, base + W_SEQ)
            if s0 == s1:
                dest[0] = s0
                return retries
        retries += 1
        cpu_relax()
    return SEQLOCK_BUSY


@njit(cache=True)
def seqlock_sequence(words: np.ndarray, slot: int) -> int:
    """Return the slot's current sequence (acquire): cheap test for 'has it changed since I last read'."""
    return load_acquire(words, slot * SLOT_WORDS + W_SEQ)


class SnapshotTable:
    """The seqlock region mapped into this process: ``words`` for the jitted functions, ``slots`` typed."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.n_slots = int(region.header[0]["capacity"])
        self.slots = region.view(BOOK_SNAPSHOT, 0, self.n_slots)
        self.words = self.slots.view(np.int64)

    @classmethod
    def create(cls, name: str, n_slots: int, generation: int) -> SnapshotTable:
        """Create the region (supervisor only)."""
        region = create_region(
            name, KIND_SEQLOCK, BOOK_SNAPSHOT.itemsize, n_slots, BOOK_SNAPSHOT.itemsize * n_slots, generation
        )
        table = cls(region)
        table.slots["symbol_id"] = np.arange(n_slots)
        return table

    @classmethod
    def attach(cls, name: str, generation: int | None = None, readonly: bool = False) -> SnapshotTable:
        """Map an existing table after checking its header."""
        return cls(attach_region(name, KIND_SEQLOCK, BOOK_SNAPSHOT.itemsize, None, generation, readonly))

    def write(self, slot: int, snapshot: np.ndarray) -> int:
        """Publish one BOOK_SNAPSHOT record (a 1-element array) into ``slot`` (writer process only)."""
        source = np.ascontiguousarray(snapshot, dtype=BOOK_SNAPSHOT).view(np.int64)
        return int(seqlock_write(self.words, slot, source))

    def read(self, slot: int, max_retries: int = DEFAULT_MAX_RETRIES) -> tuple[np.ndarray, int]:
        """Return ``(snapshot record array of 1, retries)``; raise TimeoutError if the writer never let go."""
        dest = np.zeros(1, dtype=BOOK_SNAPSHOT)
        retries = int(seqlock_read(self.words, slot, dest.view(np.int64), max_retries))
        if retries == SEQLOCK_BUSY:
            raise TimeoutError(f"{self.region.name}[{slot}]: writer held the seqlock for {max_retries} retries")
        return dest, retries


# --- blobs: variable-length bytes under the same protocol -------------------------------------------------
# words[base + 0] seq, [base + 1] length in bytes, [base + 2] ts_exch, [base + 8 ...] the bytes as int64 words.
BLOB_SEQ = 0
BLOB_LENGTH = 1
BLOB_TS = 2


@njit(cache=True)
def blob_write(words: np.ndarray, base: int, capacity_words: int, payload: np.ndarray, length: int, ts: int) -> int:
    """Publish ``length`` bytes (``payload``: int64 words holding them) at ``words[base:]``; return the new seq,
    or -1 if they do not fit. Single writer."""
    n_words = (length + 7) // 8
    if n_words > capacity_words or n_words > payload.shape[0]:
        return -1
    seq = load_relaxed(words, base + BLOB_SEQ)
    seq += seq & 1
    store_relaxed(words, base + BLOB_SEQ, seq + 1)
    fence_release()
    store_relaxed(words, base + BLOB_LENGTH, length)
    store_relaxed(words, base + BLOB_TS, ts)
    for k in range(n_words):
        store_relaxed(words, base + BLOB_HEADER_WORDS + k, payload[k])
    store_release(words, base + BLOB_SEQ, seq + 2)
    return seq + 2


@njit(cache=True)
def blob_read(words: np.ndarray, base: int, dest: np.ndarray, header: np.ndarray, max_retries: int) -> int:
    """Copy a consistent blob into ``dest`` (int64 words) and ``header`` (seq, length, ts); return the retries,
    or ``SEQLOCK_BUSY``. A blob never written has seq 0 and length 0."""
    retries = 0
    while retries <= max_retries:
        s0 = load_acquire(words, base + BLOB_SEQ)
        if s0 & 1 == 0:
            length = load_relaxed(words, base + BLOB_LENGTH)
            ts = load_relaxed(words, base + BLOB_TS)
            n_words = (length + 7) // 8
            if 0 <= n_words <= dest.shape[0]:
                for k in range(n_words):
                    dest[k] = load_relaxed(words, base + BLOB_HEADER_WORDS + k)
                fence_acquire()
                if load_relaxed(words, base + BLOB_SEQ) == s0:
                    header[0] = s0
                    header[1] = length
                    header[2] = ts
                    return retries
        retries += 1
        cpu_relax()
    return SEQLOCK_BUSY
