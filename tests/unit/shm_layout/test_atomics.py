"""The numba memory-ordering intrinsics (shm_layout/atomics.py), in jitted code and across processes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from shm_layout.atomics import (
    count_leading_zeros,
    cpu_relax,
    fence_acquire,
    fence_release,
    fence_seq_cst,
    load_acquire,
    load_relaxed,
    monotonic_ns,
    store_relaxed,
    store_release,
)
from shm_layout.region import KIND_RING, create_region, segment_name
from tests.unit.shm_layout import _workers

INT64_VALUES = [0, 1, -1, 123_456_789_012, 2**63 - 1, -(2**63)]


@njit(cache=True)
def _release_then_acquire(words, index, value):
    store_release(words, index, value)
    return load_acquire(words, index)


@njit(cache=True)
def _relaxed_round_trip(words, index, value):
    store_relaxed(words, index, value)
    return load_relaxed(words, index)


@njit(cache=True)
def _store_small_int(words, index, value):
    store_release(words, index, np.int32(value))


@njit(cache=True)
def _all_fences(n):
    total = 0
    for i in range(n):
        fence_acquire()
        fence_release()
        fence_seq_cst()
        cpu_relax()
        total += i
    return total


@njit(cache=True)
def _ctlz(value):
    return count_leading_zeros(value)


@njit(cache=True)
def _now():
    return monotonic_ns()


@njit(cache=True)
def _clock_steps(n):
    first = monotonic_ns()
    previous = first
    backwards = 0
    for _ in range(n):
        now = monotonic_ns()
        if now < previous:
            backwards += 1
        previous = now
    return backwards, previous - first


@njit(cache=True)
def _poll_until(words, index, expected, timeout_ns):
    """Spin on an acquire load until ``words[index] == expected``; return the spin count, -1 on timeout."""
    start = monotonic_ns()
    spins = 0
    while load_acquire(words, index) != expected:
        spins += 1
        if monotonic_ns() - start > timeout_ns:
            return -1
        cpu_relax()
    return spins


@njit(cache=True)
def _spin_until(words, index, expected, max_spins):
    """A bare spin (no calls in the loop): a non-atomic load here gets hoisted and the loop never sees a store."""
    spins = 0
    while load_acquire(words, index) != expected:
        spins += 1
        if spins > max_spins:
            return -1
    return spins


@pytest.mark.parametrize("value", INT64_VALUES)
def test_release_store_when_acquire_loaded_in_jitted_code_then_same_value(value: int) -> None:
    words = np.zeros(4, np.int64)
    assert _release_then_acquire(words, 2, value) == value
    assert words.tolist() == [0, 0, value, 0]  # only the addressed word changed


@pytest.mark.parametrize("value", INT64_VALUES)
def test_relaxed_store_when_relaxed_loaded_in_jitted_code_then_same_value(value: int) -> None:
    words = np.zeros(4, np.int64)
    assert _relaxed_round_trip(words, 1, value) == value
    assert words.tolist() == [0, value, 0, 0]


def test_atomics_when_index_is_int32_or_uint64_then_address_same_word() -> None:
    words = np.zeros(8, np.int64)
    assert _release_then_acquire(words, np.int32(5), 55) == 55
    assert _relaxed_round_trip(words, np.uint64(6), 66) == 66
    assert words.tolist() == [0, 0, 0, 0, 0, 55, 66, 0]


def test_atomics_when_index_addresses_a_view_then_write_lands_in_base_array() -> None:
    base = np.zeros(16, np.int64)
    view = base[8:]
    _release_then_acquire(view, 3, 7)
    assert base[11] == 7


def test_store_when_value_is_int32_then_widened_to_int64() -> None:
    words = np.full(2, -1, np.int64)
    _store_small_int(words, 0, -5)
    _store_small_int(words, 1, 2**31 - 1)
    assert words.tolist() == [-5, 2**31 - 1]


def test_atomics_when_called_from_python_then_behave_like_jitted_versions() -> None:
    words = np.zeros(3, np.int64)
    store_release(words, 0, 11)
    store_relaxed(words, 1, -12)
    assert load_acquire(words, 0) == 11
    assert load_relaxed(words, 1) == -12
    assert words.tolist() == [11, -12, 0]


@pytest.mark.parametrize(
    "array",
    [np.zeros(4, np.float64), np.zeros(4, np.uint64), np.zeros(4, np.int32), np.zeros((2, 2), np.int64)],
    ids=["float64", "uint64", "int32", "2d"],
)
def test_atomic_load_when_array_is_not_1d_int64_then_typing_error(array: np.ndarray) -> None:
    with pytest.raises((TypeError, TypingError), match="1-d int64"):
        load_acquire(array, 0)


def test_atomic_store_when_value_is_float_then_typing_error() -> None:
    with pytest.raises((TypeError, TypingError), match="integer"):
        store_release(np.zeros(2, np.int64), 0, 1.5)


def test_fences_when_compiled_then_run_without_effect_on_results() -> None:
    assert _all_fences(1000) == sum(range(1000))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 64), (1, 63), (2, 62), (3, 62), (255, 56), (1 << 32, 31), (1 << 62, 1), (2**63 - 1, 1), (-1, 0),
     (-(2**63), 0)],
)
def test_count_leading_zeros_when_given_value_then_exact(value: int, expected: int) -> None:
    assert _ctlz(value) == expected
    assert count_leading_zeros(value) == expected


def test_count_leading_zeros_when_random_positive_values_then_matches_bit_length() -> None:
    rng = np.random.default_rng(7)
    for value in rng.integers(1, 2**63 - 1, size=2000, dtype=np.int64).tolist() + [2**k for k in range(63)]:
        assert _ctlz(value) == 64 - int(value).bit_length()


def test_monotonic_ns_when_compared_with_python_clock_then_same_clock() -> None:
    _now()  # compile first
    for _ in range(100):
        before = time.monotonic_ns()
        jitted = _now()
        after = time.monotonic_ns()
        assert before <= jitted <= after, "monotonic_ns is not CLOCK_MONOTONIC (time.monotonic_ns)"
    assert abs(_now() - time.monotonic_ns()) < 50_000_000


def test_monotonic_ns_when_sampled_in_tight_loop_then_never_decreases() -> None:
    backwards, elapsed = _clock_steps(200_000)
    assert backwards == 0
    assert elapsed > 0


def test_acquire_poll_loop_when_another_process_stores_then_terminates(instance: str, children) -> None:
    name = segment_name(instance, "atomics")
    region = create_region(name, KIND_RING, 8, 32, 32 * 8, generation=1)
    try:
        words = region.body.view(np.int64)
        _poll_until(np.ones(1, np.int64), 0, 1, 1_000_000)  # compile before the child starts
        _spin_until(np.ones(1, np.int64), 0, 1, 1)
        children.start(_workers.store_after_delay, name, 0, 8, 987_654_321, 0.2)
        deadline = time.monotonic() + 30
        while words[0] != 1:  # the child has attached; now it sleeps 0.2 s before storing
            assert time.monotonic() < deadline, "child never attached"
            time.sleep(0.005)
        started = time.monotonic_ns()
        spins = _poll_until(words, 8, 987_654_321, 10_000_000_000)
        waited = time.monotonic_ns() - started
        assert spins > 0, "the value was visible before the child stored it"
        assert spins != -1, "the poll loop never saw the other process's store (load hoisted?)"
        assert words[8] == 987_654_321
        assert waited > 100_000_000  # it really waited for the delayed store
        spins = _spin_until(words, 16, -5, 50_000_000_000)  # the child's second store, 0.2 s later
        assert spins > 0 and words[16] == -5
        assert children.results(1, timeout=10)[0][0] == "stored"
        children.join(timeout=10)
    finally:
        region.unlink()
        region.close()
