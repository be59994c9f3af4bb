"""The single-array state of the feed: regions aligned, disjoint, and the same memory for numba and numpy."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from numba import int64, njit

from hft.feed.arena import arena_view
from hft.feed.sync import arena_views, new_arena, numpy_views
from shm_layout.records import BOOK_SNAPSHOT, MD_EVENT, md_event_t


@njit(cache=True)
def _poke(arena):
    ctl, book, bufd, bufl, events, snapshots = arena_views(arena)
    ctl[1, 3] = 11
    book[1, 1, 0, 2] = 22
    bufd[0, 1, 4] = 33
    bufl[1, 2, 2] = 44
    events[5].price = 55
    events[5].flags = 5
    snapshots[1].imbalance = 0.5
    snapshots[1].bid_prices[9] = 66
    words = arena_view(arena, 0, int64, (4,))
    return words[0]


def test_kernel_writes_through_views_then_numpy_views_see_them() -> None:
    arena = new_arena(2, 3, 4, 5, 6)
    ctl, book, bufd, bufl, events, snapshots = numpy_views(arena)
    assert _poke(arena) == 2  # the header's row count
    assert (ctl[1, 3], book[1, 1, 0, 2], bufd[0, 1, 4], bufl[1, 2, 2]) == (11, 22, 33, 44)
    assert (events[5]["price"], events[5]["flags"]) == (55, 5)
    assert snapshots[1]["imbalance"] == 0.5 and snapshots[1]["bid_prices"][9] == 66
    assert np.count_nonzero(ctl) == 1 and np.count_nonzero(book) == 1


def test_new_arena_then_regions_disjoint_line_aligned_and_typed() -> None:
    arena = new_arena(3, 7, 5, 9, 11)
    regions = numpy_views(arena)
    assert [r.shape for r in regions] == [(4, 64), (3, 2, 2, 7), (3, 5, 5), (3, 9, 3), (11,), (3,)]
    assert regions[4].dtype == MD_EVENT and regions[5].dtype == BOOK_SNAPSHOT
    spans = []
    for region in regions:
        start = region.ctypes.data
        assert start % 64 == 0
        spans.append((start, start + region.nbytes))
    spans.sort()
    for (_, end), (start, _) in pairwise(spans):
        assert end <= start
    base = arena.ctypes.data
    assert spans[0][0] >= base and spans[-1][1] <= base + arena.nbytes
    assert md_event_t.size == MD_EVENT.itemsize
