"""Per-process counters and log-bucketed histograms (shm_layout/counters.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from numba import njit

from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_ERRORS,
    C_MSGS_IN,
    C_ORDERS,
    COUNTER_NAMES,
    H_COUNT,
    H_MAX,
    H_MIN,
    H_SUM,
    HIST_ROW_WORDS,
    PROCESS_WORDS,
    W_COUNTERS,
    W_HEARTBEAT,
    W_HISTOGRAMS,
    C,
    bucket_lower_bound,
    bucket_of,
    counter_add,
    counters_dict,
    heartbeat,
    hist_record,
    hist_row,
    hist_summary,
)
from shm_layout.layout import PROC_BROKER, PROC_FEED, ControlBlock
from shm_layout.records import CONTROL, HIST_BUCKETS, HIST_HEADER_WORDS, MAX_PROCESSES, N_COUNTERS, PROCESS_BLOCK
from shm_layout.region import KIND_CONTROL, create_region, segment_name
from tests.unit.shm_layout import _workers

MAX_BUCKET = 16 + (62 - 4) * 8 + 7  # 487: the bucket of 2**63 - 1


def _interesting_values() -> list[int]:
    values = set(range(0, 200))
    for e in range(63):
        for delta in (-1, 0, 1):
            v = (1 << e) + delta
            if 0 <= v < 2**63:
                values.add(v)
    values.update([2**62, 2**62 + 2**59, 2**63 - 1, 10**9, 10**12, 123_456_789])
    rng = np.random.default_rng(3)
    values.update(int(v) for v in rng.integers(0, 2**63 - 1, 3000, dtype=np.int64))
    values.update(int(v) for v in np.exp(rng.uniform(0, 43, 3000)).astype(np.int64))
    return sorted(values)


@njit(cache=True)
def _buckets(values):
    out = np.empty(values.shape[0], np.int64)
    for i in range(values.shape[0]):
        out[i] = bucket_of(values[i])
    return out


@njit(cache=True)
def _record_all(block, histogram, values):
    for i in range(values.shape[0]):
        hist_record(block, histogram, values[i])


@njit(cache=True)
def _count_and_beat(block, n):
    for _ in range(n):
        counter_add(block, C_MSGS_IN, 1)
    counter_add(block, C_ERRORS, -2)
    now = monotonic_ns()
    heartbeat(block, now)
    return now


# ------------------------------------------------------------------------------------------------ buckets


@pytest.mark.parametrize("value", list(range(0, 21)))
def test_bucket_of_when_value_below_sixteen_then_bucket_is_value(value: int) -> None:
    expected = value if value < 16 else 16 + (value - 16) // 2
    assert bucket_of(value) == expected
    assert bucket_lower_bound(expected) <= value


def test_bucket_of_when_many_values_then_lower_bound_round_trip_and_upper_bound_exclusive() -> None:
    values = _interesting_values()
    buckets = _buckets(np.array(values, np.int64)).tolist()
    for value, bucket in zip(values, buckets, strict=True):
        assert 0 <= bucket <= MAX_BUCKET < HIST_BUCKETS
        low = bucket_lower_bound(bucket)
        assert low <= value, (value, bucket, low)
        if bucket < MAX_BUCKET:
            assert value < bucket_lower_bound(bucket + 1), (value, bucket)
        if bucket >= 16:
            assert value - low < low / 8 + 1  # ~6 % precision: bucket width is 1/8 of its lower bound


def test_bucket_of_when_values_increase_then_buckets_never_decrease() -> None:
    buckets = _buckets(np.array(_interesting_values(), np.int64))
    assert (np.diff(buckets) >= 0).all()


def test_bucket_lower_bound_when_mapped_back_then_same_bucket_for_every_bucket() -> None:
    previous = -1
    for bucket in range(MAX_BUCKET + 1):
        low = bucket_lower_bound(bucket)
        assert low > previous  # strictly increasing bounds
        assert bucket_of(low) == bucket
        if low > 0:
            assert bucket_of(low - 1) == bucket - 1
        previous = low


@pytest.mark.parametrize(("value", "bucket"), [(16, 16), (31, 23), (32, 24), (2**62, 480), (2**63 - 1, 487)])
def test_bucket_of_when_boundary_value_then_documented_bucket(value: int, bucket: int) -> None:
    assert bucket_of(value) == bucket


def test_bucket_of_when_powers_of_two_then_first_sub_bucket_of_their_octave() -> None:
    for e in range(4, 63):
        assert bucket_of(1 << e) == 16 + (e - 4) * 8
        assert bucket_lower_bound(16 + (e - 4) * 8) == 1 << e


# --------------------------------------------------------------------------------------------- histograms


def test_hist_summary_when_lognormal_latencies_then_percentiles_within_seven_percent_of_numpy() -> None:
    rng = np.random.default_rng(11)
    latencies = rng.lognormal(mean=np.log(2_000), sigma=1.2, size=200_000).astype(np.int64)
    block = np.zeros(PROCESS_WORDS, np.int64)
    _record_all(block, 1, latencies)
    row = hist_row(block, 1)
    quantiles = (0.5, 0.9, 0.99, 0.999)
    summary = hist_summary(row, quantiles)
    assert summary["count"] == latencies.size
    assert summary["min"] == latencies.min()
    assert summary["max"] == latencies.max()
    assert summary["mean"] == pytest.approx(latencies.mean(), rel=1e-12)
    for q, label in zip(quantiles, ("p50", "p90", "p99", "p999"), strict=True):
        expected = np.percentile(latencies, q * 100)
        assert abs(summary[label] - expected) <= 0.07 * expected, (label, summary[label], expected)
    assert hist_row(block, 0).sum() == 0  # the other histogram was not touched


def test_hist_record_when_values_recorded_then_header_words_exact() -> None:
    block = np.zeros(PROCESS_WORDS, np.int64)
    values = np.array([500, 3, 70_000, 12, -40], np.int64)
    _record_all(block, 0, values)
    base = W_HISTOGRAMS
    assert block[base + H_COUNT] == 5
    assert block[base + H_SUM] == 500 + 3 + 70_000 + 12  # a negative sample counts as 0
    assert block[base + H_MIN] == 0
    assert block[base + H_MAX] == 70_000
    buckets = block[base + HIST_HEADER_WORDS: base + HIST_ROW_WORDS]
    assert buckets.sum() == 5
    for v in (0, 3, 12, 500, 70_000):
        assert buckets[bucket_of(v)] >= 1
    assert block[:base].sum() == 0  # counters and identity untouched


def test_hist_summary_when_empty_then_zeros_and_when_single_value_then_clamped_to_it() -> None:
    block = np.zeros(PROCESS_WORDS, np.int64)
    empty = hist_summary(hist_row(block, 0))
    assert empty == {"count": 0, "mean": 0.0, "min": 0.0, "max": 0.0, "p50": 0.0, "p99": 0.0, "p999": 0.0}
    _record_all(block, 0, np.array([1234], np.int64))
    single = hist_summary(hist_row(block, 0))
    assert single["p50"] == single["p99"] == single["p999"] == 1234.0


def test_hist_row_when_returned_then_a_copy_of_one_row() -> None:
    block = np.zeros(PROCESS_WORDS, np.int64)
    row = hist_row(block, 1)
    assert row.shape == (HIST_ROW_WORDS,)
    row[0] = 5
    assert block[W_HISTOGRAMS + HIST_ROW_WORDS] == 0


# ------------------------------------------------------------------------------------------------ counters


def test_counter_names_when_listed_then_unique_and_fit_the_block() -> None:
    assert len(set(COUNTER_NAMES)) == len(COUNTER_NAMES) <= N_COUNTERS
    assert C["msgs_in"] == C_MSGS_IN == 0
    assert PROCESS_BLOCK.itemsize == PROCESS_WORDS * 8
    assert PROCESS_BLOCK.fields["counters"][1] == W_COUNTERS * 8
    assert PROCESS_BLOCK.fields["histograms"][1] == W_HISTOGRAMS * 8
    assert PROCESS_BLOCK.fields["heartbeat_ns"][1] == W_HEARTBEAT * 8


def test_counter_add_and_heartbeat_when_called_from_jitted_code_then_words_updated() -> None:
    block = np.zeros(PROCESS_WORDS, np.int64)
    before = time.monotonic_ns()
    now = _count_and_beat(block, 1000)
    assert before <= now <= time.monotonic_ns()
    assert block[W_COUNTERS + C_MSGS_IN] == 1000
    assert block[W_COUNTERS + C_ERRORS] == -2
    assert block[W_HEARTBEAT] == now
    named = counters_dict(block)
    assert named["msgs_in"] == 1000 and named["errors"] == -2
    assert sum(v for k, v in named.items() if k not in ("msgs_in", "errors")) == 0
    _count_and_beat(block, 5)
    assert block[W_COUNTERS + C_MSGS_IN] == 1005


def test_counters_when_written_by_spawned_process_then_visible_in_parent_only_in_its_block(
    instance: str, children
) -> None:
    region = create_region(segment_name(instance, "control"), KIND_CONTROL, CONTROL.itemsize, 1,
                           CONTROL.itemsize, generation=1)
    try:
        control = ControlBlock(region)
        started = time.monotonic_ns()
        children.start(_workers.bump_counters, region.name, PROC_BROKER, 500)
        assert children.results(1, timeout=30)[0][0] == "counted"
        children.join(timeout=10)
        block = control.process_words(PROC_BROKER)
        named = counters_dict(block)
        assert named["msgs_in"] == 500
        assert named["orders"] == 7
        assert block[W_COUNTERS + C_ORDERS] == 7
        assert started <= block[W_HEARTBEAT] <= time.monotonic_ns()
        summary = hist_summary(hist_row(block, 0))
        assert (summary["count"], summary["min"], summary["max"]) == (500, 0.0, 49_900.0)
        for other in range(MAX_PROCESSES):
            if other != PROC_BROKER:
                assert not control.process_words(other).any(), f"process block {other} was written"
        assert control.process_words(PROC_FEED).shape == (PROCESS_WORDS,)
        processes_start = CONTROL.fields["processes"][1] // 8
        assert not control.words[:processes_start].any()
        assert not control.words[processes_start + MAX_PROCESSES * PROCESS_WORDS:].any()  # the strategy blob
    finally:
        region.unlink()
        region.close()
