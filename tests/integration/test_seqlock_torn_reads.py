"""Seqlock torn-read stress across processes (spawn): one writer process, two reader processes.

Every int64 payload word of the snapshot the writer publishes derives from one counter (word k is
``counter * 31 + k``, the float ``imbalance`` is ``counter / 2**20``, the sequence is ``2 * counter``), so a
reader can tell any mix of two writes apart from a consistent copy.
"""

from __future__ import annotations

import numpy as np

from shm_layout.region import KIND_CONTROL, create_region, segment_name
from shm_layout.seqlock import SLOT_WORDS, SnapshotTable
from tests.integration import _shm_workers as workers

READS_PER_READER = 550_000  # two readers: at least 10**6 reads in total
SLOT = 1


def test_seqlock_when_writer_process_races_two_reader_processes_then_no_torn_read(instance: str, children) -> None:
    table = SnapshotTable.create(segment_name(instance, "md.snapshot"), 3, generation=1)
    flags = create_region(segment_name(instance, "flags"), KIND_CONTROL, 8, 1, workers.FLAG_WORDS * 8, 1)
    words = flags.body[: workers.FLAG_WORDS * 8].view(np.int64)
    try:
        children.start(workers.seqlock_writer, table.region.name, flags.name, SLOT)
        for reader in (0, 1):
            children.start(workers.seqlock_reader, table.region.name, flags.name, SLOT, reader, READS_PER_READER)
        readers = children.results(2, timeout=60)
        words[workers.W_STOP] = 1  # readers are done: stop the writer
        writer = children.results(1, timeout=30)[0]
        children.join(timeout=15)
    finally:
        words[workers.W_STOP] = 1
        flags.unlink()
        flags.close()
    assert all(r["role"] == "reader" for r in readers) and writer["role"] == "writer"
    total_reads = sum(r["reads"] for r in readers)
    torn = sum(r["torn"] for r in readers)
    retries = sum(r["retries"] for r in readers)
    print(f"seqlock: reads={total_reads} torn={torn} retries={retries} busy={[r['busy'] for r in readers]} "
          f"writes={writer['last_counter']} read seconds={[round(r['seconds'], 3) for r in readers]}")
    assert total_reads >= 10**6, readers
    assert torn == 0, f"{torn} torn reads: {readers}"
    assert all(r["backwards"] == 0 for r in readers), f"a reader saw the sequence go backwards: {readers}"
    assert retries >= 0
    assert writer["last_counter"] > 1
    # the sequence grew by exactly 2 per write: 2 * counter after the last one
    assert writer["seq"] == 2 * writer["last_counter"]
    assert max(r["last"] for r in readers) <= writer["last_counter"]
    assert int(table.words[SLOT * SLOT_WORDS]) == writer["seq"]
    copy, _ = table.read(SLOT)
    assert copy["imbalance"][0] == writer["last_counter"] / 2**20
    assert int(table.words[0]) == 0 and int(table.words[2 * SLOT_WORDS]) == 0  # other slots never written
    table.region.unlink()
    table.region.close()
