"""Wait strategies (shm_layout/wait.py): busy-spin never gives the core away, spin-sleep ends up sleeping."""

from __future__ import annotations

import time

import pytest
from numba import njit

from shm_layout.wait import (
    SLEEP_NS,
    SPIN_LIMIT,
    WAIT_BUSY_SPIN,
    WAIT_NAMES,
    WAIT_SPIN_SLEEP,
    WAIT_SPIN_YIELD,
    YIELD_LIMIT,
    idle,
    sched_yield,
    sleep_us,
)


@njit(cache=True)
def _idle_many(strategy, first_round, n):
    for i in range(n):
        idle(strategy, first_round + i)
    return n


@njit(cache=True)
def _yield_and_sleep(micros):
    sched_yield()
    sleep_us(micros)
    return 1


def _timed(strategy: int, first_round: int, n: int) -> float:
    _idle_many(strategy, first_round, 1)  # compile
    started = time.perf_counter()
    _idle_many(strategy, first_round, n)
    return time.perf_counter() - started


def test_wait_names_when_looked_up_then_three_distinct_strategies() -> None:
    assert WAIT_NAMES == {"busy-spin": WAIT_BUSY_SPIN, "spin-yield": WAIT_SPIN_YIELD, "spin-sleep": WAIT_SPIN_SLEEP}
    assert len(set(WAIT_NAMES.values())) == 3
    assert SPIN_LIMIT < YIELD_LIMIT


def test_sleep_us_when_called_from_jitted_code_then_sleeps_at_least_that_long() -> None:
    _yield_and_sleep(1)
    started = time.perf_counter()
    _yield_and_sleep(20_000)
    assert time.perf_counter() - started >= 0.019


@pytest.mark.parametrize("strategy", [WAIT_BUSY_SPIN, WAIT_SPIN_YIELD, WAIT_SPIN_SLEEP])
def test_idle_when_first_rounds_then_only_spins(strategy: int) -> None:
    assert _timed(strategy, 0, SPIN_LIMIT) < 0.5  # SPIN_LIMIT pause instructions: far below a sleep each


def test_idle_when_busy_spin_after_many_rounds_then_never_sleeps() -> None:
    assert _timed(WAIT_BUSY_SPIN, 10 * YIELD_LIMIT, 2_000) < 0.5  # 2000 sleeps would take >= 0.1 s each 50 µs


def test_idle_when_spin_sleep_past_yield_limit_then_sleeps() -> None:
    rounds = 200
    assert _timed(WAIT_SPIN_SLEEP, YIELD_LIMIT, rounds) >= rounds * SLEEP_NS / 1e9 * 0.9

