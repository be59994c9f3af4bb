"""The hot path allocates nothing, and what one ``risk_check`` costs (measured and reported, not asserted)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from numba import njit
from numba.core.runtime import _nrt_python, rtsys

from hft.risk.engine import (
    N_RISK_REASONS,
    RISK_OK,
    RISK_ORDER_RATE,
    risk_check,
    risk_on_execution,
    risk_on_market,
    risk_on_order_sent,
)
from shm_layout.records import SIDE_BUY, STATUS_FILLED, STATUS_REJECTED
from tests.unit.risk._desk import BTC, BTC_PRICE, ETH, ETH_PRICE, ONE, Desk

CALLS = 200_000
STEP_NS = 1_000  # 200,000 calls span 0.2 s of the injected clock: market data stays fresh


@njit
def _checks(
    limits: np.ndarray, state: np.ndarray, fstate: np.ndarray, calls: int, start_ns: int, step_ns: int,
    counts: np.ndarray,
) -> int:
    """The order path as the strategy will drive it: one check per call, counted by reason (no order sent)."""
    now = start_ns
    for _ in range(calls):
        now += step_ns
        reason = risk_check(limits, state, fstate, ETH, SIDE_BUY, ONE // 2, ETH_PRICE, now, 0, 0)
        counts[reason] += 1
    return now


@njit
def _every_call(
    limits: np.ndarray, state: np.ndarray, fstate: np.ndarray, calls: int, start_ns: int, counts: np.ndarray
) -> int:
    now = start_ns
    for k in range(calls):
        now += 1_000_000  # 1 ms: the bucket runs dry (the check then ends at its last rule, the rate)
        risk_on_market(limits, state, fstate, BTC, BTC_PRICE + k % 7, now)
        risk_on_market(limits, state, fstate, ETH, ETH_PRICE, now)
        counts[risk_check(limits, state, fstate, ETH, SIDE_BUY, ONE // 2, ETH_PRICE, now, 0, 0)] += 1
        risk_on_order_sent(limits, state, now)
        risk_on_execution(limits, state, fstate, BTC, STATUS_FILLED, 0, BTC_PRICE, ONE, ONE * BTC_PRICE, 0, now)
        if k % 1_000 == 999:  # one rejection a second: the storm never trips, every check runs every rule
            risk_on_execution(limits, state, fstate, ETH, STATUS_REJECTED, 1, 0, 0, 0, 0, now)
    return now


def loaded_desk() -> Desk:
    """Both symbols fresh, a BTC position held (the notional rule then sums a second symbol): the full path."""
    desk = Desk()
    desk.fresh()
    desk.fill(BTC, ONE // 2, ONE // 2 * BTC_PRICE)
    return desk


def test_hot_path_when_called_in_a_loop_then_allocates_nothing() -> None:
    desk = loaded_desk()
    counts = np.zeros(N_RISK_REASONS, np.int64)
    _every_call(desk.limits, desk.state, desk.fstate, 1, desk.now, counts)  # compile
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        _every_call(desk.limits, desk.state, desk.fstate, 1, desk.now, counts)
        one = rtsys.get_allocation_stats()
        _every_call(desk.limits, desk.state, desk.fstate, 10_000, desk.now, counts)
        many = rtsys.get_allocation_stats()
    finally:
        if not was_enabled:
            _nrt_python.memsys_disable_stats()
    # whatever the Python -> numba boundary costs is the same for 1 and 10,000 iterations: the loop adds nothing
    assert many.alloc - one.alloc == one.alloc - before.alloc
    assert many.mi_alloc - one.mi_alloc == one.mi_alloc - before.mi_alloc
    assert counts[RISK_OK] + counts[RISK_ORDER_RATE] == counts.sum() == 10_002


def test_risk_check_when_timed_in_a_jitted_loop_then_cost_reported(record_property: pytest.RecordProperty) -> None:
    desk = loaded_desk()
    counts = np.zeros(N_RISK_REASONS, np.int64)
    _checks(desk.limits, desk.state, desk.fstate, 10, desk.now, STEP_NS, counts)  # compile and warm
    best = float("inf")
    for _ in range(5):
        counts[:] = 0
        start = time.perf_counter_ns()
        _checks(desk.limits, desk.state, desk.fstate, CALLS, desk.now, STEP_NS, counts)
        best = min(best, (time.perf_counter_ns() - start) / CALLS)
    start = time.perf_counter_ns()
    for _ in range(10_000):
        risk_check(desk.limits, desk.state, desk.fstate, ETH, SIDE_BUY, ONE // 2, ETH_PRICE, desk.now, 0, 0)
    from_python = (time.perf_counter_ns() - start) / 10_000
    assert counts[RISK_OK] == CALLS  # every timed call took the full path to the end and passed
    record_property("risk_check_ns_jitted", best)
    record_property("risk_check_ns_from_python", from_python)
    print(f"\nrisk_check: {best:.1f} ns per call inside numba (best of 5 x {CALLS:,}), "
          f"{from_python:.0f} ns per call from Python")
