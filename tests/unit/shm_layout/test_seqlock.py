"""Seqlock snapshot slots (shm_layout/seqlock.py) in one process.

The torn-read stress across processes is tests/integration/test_seqlock_torn_reads.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from shm_layout.records import BOOK_SNAPSHOT, TOP_LEVELS
from shm_layout.region import LayoutMismatchError, segment_name
from shm_layout.seqlock import (
    DEFAULT_MAX_RETRIES,
    SEQLOCK_BUSY,
    SLOT_WORDS,
    W_SEQ,
    SnapshotTable,
    seqlock_read,
    seqlock_sequence,
    seqlock_write,
)

N_SLOTS = 3


@pytest.fixture
def table(instance: str):
    created = SnapshotTable.create(segment_name(instance, "md.snapshot"), N_SLOTS, generation=9)
    yield created
    created.region.unlink()
    created.region.close()


def _snapshot(k: int) -> np.ndarray:
    snap = np.zeros(1, BOOK_SNAPSHOT)
    snap["seq"] = 12345  # ignored by the writer
    snap["ts_exch"], snap["ts_recv"], snap["ts_init"], snap["update_id"] = 1 + k, 2 + k, 3 + k, 4 + k
    snap["bid_price"], snap["bid_size"], snap["ask_price"], snap["ask_size"] = 100 + k, 7, 101 + k, 3
    snap["mid_x2"], snap["spread"] = 201 + 2 * k, 1
    snap["imbalance"] = 0.4 + k / 1024
    snap["symbol_id"], snap["status"], snap["n_bid_levels"], snap["n_ask_levels"] = 2, 1, TOP_LEVELS, 4
    snap["bid_prices"] = np.arange(TOP_LEVELS) + 1000 * k
    snap["bid_sizes"] = np.arange(TOP_LEVELS) * 2
    snap["ask_prices"] = -np.arange(TOP_LEVELS)
    snap["ask_sizes"] = 2**40 + np.arange(TOP_LEVELS)
    snap["spare"] = [-1, 2**62]
    return snap


def test_create_when_new_then_slots_zero_sequence_and_symbol_ids(table: SnapshotTable) -> None:
    assert table.n_slots == N_SLOTS
    assert table.slots["seq"].tolist() == [0] * N_SLOTS
    assert table.slots["symbol_id"].tolist() == list(range(N_SLOTS))
    assert table.words.shape == (N_SLOTS * SLOT_WORDS,)
    assert W_SEQ == 0 and BOOK_SNAPSHOT.itemsize == SLOT_WORDS * 8


def test_write_then_read_when_quiescent_then_every_field_round_trips_with_zero_retries(table: SnapshotTable) -> None:
    snap = _snapshot(5)
    assert table.write(1, snap) == 2
    copy, retries = table.read(1)
    assert retries == 0
    assert copy["seq"][0] == 2
    for field in BOOK_SNAPSHOT.names:
        if field != "seq":
            assert np.array_equal(copy[field], snap[field]), field


@pytest.mark.parametrize("writes", [1, 2, 7])
def test_write_when_repeated_then_sequence_grows_by_exactly_two(table: SnapshotTable, writes: int) -> None:
    returned = [table.write(0, _snapshot(k)) for k in range(writes)]
    assert returned == [2 * (k + 1) for k in range(writes)]
    assert seqlock_sequence(table.words, 0) == 2 * writes
    assert table.read(0)[0]["seq"][0] == 2 * writes
    assert table.read(0)[0]["bid_price"][0] == 100 + writes - 1


def test_write_when_source_sequence_word_set_then_ignored(table: SnapshotTable) -> None:
    source = _snapshot(0).view(np.int64).copy()
    source[0] = 999  # odd and large: must not reach the slot
    assert seqlock_write(table.words, 2, source) == 2
    assert table.words[2 * SLOT_WORDS] == 2


def test_write_when_one_slot_written_then_other_slots_untouched(table: SnapshotTable) -> None:
    before = table.slots.copy()
    table.write(1, _snapshot(3))
    assert table.slots[0].tobytes() == before[0].tobytes()
    assert table.slots[2].tobytes() == before[2].tobytes()


def test_read_when_sequence_odd_then_busy_within_max_retries_and_table_read_times_out(table: SnapshotTable) -> None:
    table.write(0, _snapshot(1))
    table.words[0 * SLOT_WORDS + W_SEQ] += 1  # a writer died between "seq + 1" and "seq + 2"
    dest = np.full(SLOT_WORDS, -7, np.int64)
    seqlock_read(table.words, 0, dest, 10)  # compile
    started = time.perf_counter()
    assert seqlock_read(table.words, 0, dest, 1000) == SEQLOCK_BUSY
    assert time.perf_counter() - started < 0.5  # gave up instead of spinning forever
    assert dest.tolist() == [-7] * SLOT_WORDS  # never returned a copy of the half-written slot
    assert seqlock_read(table.words, 0, dest, 0) == SEQLOCK_BUSY
    with pytest.raises(TimeoutError, match=r"\[0\]"):
        table.read(0, max_retries=100)
    with pytest.raises(TimeoutError):
        table.read(0)  # DEFAULT_MAX_RETRIES bounds it too
    assert DEFAULT_MAX_RETRIES > 0
    copy, retries = table.read(1)  # other slots are unaffected
    assert retries == 0 and copy["symbol_id"][0] == 1


def test_write_when_previous_writer_died_mid_write_then_slot_readable_after_next_write(
    table: SnapshotTable,
) -> None:
    table.write(0, _snapshot(1))
    table.words[W_SEQ] += 1  # the old writer died between "seq + 1" and "seq + 2": seq is 3
    new_seq = table.write(0, _snapshot(2))  # the restarted feed publishes again
    assert new_seq % 2 == 0, "an odd sequence means a write is in progress, but the write has finished"
    copy, _ = table.read(0, max_retries=100)
    assert copy["bid_price"][0] == 102
    assert copy["seq"][0] == new_seq


def test_write_when_sequence_even_then_next_sequence_plus_two_from_any_start(table: SnapshotTable) -> None:
    table.words[W_SEQ] = 1_000_000
    assert table.write(0, _snapshot(2)) == 1_000_002
    assert table.read(0)[0]["seq"][0] == 1_000_002


def test_attach_when_generation_differs_then_refused_and_when_readonly_then_readable(table: SnapshotTable) -> None:
    table.write(2, _snapshot(4))
    with pytest.raises(LayoutMismatchError, match="generation"):
        SnapshotTable.attach(table.region.name, generation=10)
    reader = SnapshotTable.attach(table.region.name, generation=9, readonly=True)
    copy, retries = reader.read(2)
    assert (copy["seq"][0], copy["bid_price"][0], retries) == (2, 104, 0)
    assert reader.n_slots == N_SLOTS
    reader.region.close()
