"""The feed's publication of one decoded frame to shared memory: the changed top-of-book snapshots (seqlock),
then the frame's events (md.events), then its counters and latency histograms.

Ordering invariant relied on by the strategy: for every frame, the seqlock snapshots are written *before* the
frame's events are published on the ring, so a consumer that sees an event reads a snapshot at least as new as
that event. Single writer of md.events, the snapshots and the feed's process block: the feed's receive thread.

``FeedOutlet`` is the bundle of arrays a publication touches, so jitted callers (``hft.feed.drain``) take one
argument for it, and a new piece of published state changes this bundle, not every call site.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_BOOK_EVENTS,
    C_FRAMES,
    C_MSGS_IN,
    C_MSGS_OUT,
    C_SNAPSHOTS_PUBLISHED,
    counter_add,
    heartbeat,
    hist_record,
)
from shm_layout.records import BOOK_SNAPSHOT, word_index
from shm_layout.ring import ring_try_publish
from shm_layout.seqlock import seqlock_write

W_SNAPSHOT_TS_INIT = word_index(BOOK_SNAPSHOT, "ts_init")
H_FRAME_TO_PUBLISH = 0
H_FRAME_DECODE = 1


class FeedOutlet(NamedTuple):
    """Where a frame's results go: the engine's buffers and the shared-memory words they are published to."""

    events: np.ndarray  # the engine's event buffer (MD_EVENT records)
    snapshot_rows: np.ndarray  # the engine's top-of-book rows, int64 words (n_symbols, SLOT_WORDS)
    dirty: np.ndarray  # per symbol: its row changed since the last publication
    snap_words: np.ndarray  # the seqlock snapshot region
    md_ctrl: np.ndarray  # md.events control words
    md_slots: np.ndarray  # md.events slots
    proc: np.ndarray  # the feed's process block (counters, histograms, heartbeat)


@njit(cache=True)
def publish_frame(
    events: np.ndarray,
    n_events: int,
    snapshot_rows: np.ndarray,
    dirty: np.ndarray,
    snap_words: np.ndarray,
    md_ctrl: np.ndarray,
    md_slots: np.ndarray,
    proc: np.ndarray,
    ts_recv: int,
    ts_decoded: int,
) -> int:
    """Publish dirty snapshots, then the frame's events; record frame->published latency. Return events out."""
    now = monotonic_ns()
    for symbol in range(dirty.shape[0]):
        if dirty[symbol] != 0:
            snapshot_rows[symbol, W_SNAPSHOT_TS_INIT] = now
            seqlock_write(snap_words, symbol, snapshot_rows[symbol])
            dirty[symbol] = 0
            counter_add(proc, C_SNAPSHOTS_PUBLISHED, 1)
    for k in range(n_events):
        events[k].ts_init = now
    done = 0
    while done < n_events:  # lossy ring: never waits, takes at most a ring per call
        done += ring_try_publish(md_ctrl, md_slots, events, done, n_events - done)
    published = monotonic_ns()
    counter_add(proc, C_FRAMES, 1)
    counter_add(proc, C_MSGS_IN, 1)
    counter_add(proc, C_MSGS_OUT, n_events)
    counter_add(proc, C_BOOK_EVENTS, n_events)
    hist_record(proc, H_FRAME_TO_PUBLISH, published - ts_recv)
    hist_record(proc, H_FRAME_DECODE, ts_decoded - ts_recv)
    heartbeat(proc, published)
    return n_events


@njit(cache=True)
def publish_to(outlet: FeedOutlet, n_events: int, ts_recv: int, ts_decoded: int) -> int:
    """``publish_frame`` on a bundle."""
    return publish_frame(outlet.events, n_events, outlet.snapshot_rows, outlet.dirty, outlet.snap_words,
                         outlet.md_ctrl, outlet.md_slots, outlet.proc, ts_recv, ts_decoded)
