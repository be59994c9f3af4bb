"""Pieces every jitted process loop shares: the idle pass (heartbeat, stop stage, deadline, wait strategy)
and claiming ring slots with back-pressure."""

from __future__ import annotations

import numpy as np
from numba import njit

from shm_layout.atomics import load_relaxed, monotonic_ns
from shm_layout.counters import C_BACKPRESSURE_WAITS, counter_add, heartbeat
from shm_layout.ring import ring_claim
from shm_layout.wait import idle

LOOP_CONTINUE = -1
LOOP_TIMEOUT = 0  # the time slice is over: back to Python for housekeeping
LOOP_STOPPED = 1  # the stop stage reached this process and its input is drained
LOOP_ABORTED = 2  # a forced shutdown interrupted a wait on a full ring
LOOP_NEED_MODEL = 3  # the strategy handed a tick to a model that runs in Python (ONNX)


@njit(cache=True)
def idle_pass(
    proc: np.ndarray,
    control_words: np.ndarray,
    stop_index: int,
    my_stage: int,
    deadline_ns: int,
    wait_strategy: int,
    idle_rounds: int,
) -> int:
    """Run when a poll found nothing: beat the heart, then stop, time out, or wait once (LOOP_CONTINUE)."""
    now = monotonic_ns()
    heartbeat(proc, now)
    if load_relaxed(control_words, stop_index) >= my_stage:
        return LOOP_STOPPED
    if now >= deadline_ns:
        return LOOP_TIMEOUT
    idle(wait_strategy, idle_rounds)
    return LOOP_CONTINUE


@njit(cache=True)
def claim_waiting(
    ctrl: np.ndarray, count: int, control_words: np.ndarray, abort_index: int, proc: np.ndarray, wait_strategy: int
) -> int:
    """Claim ``count`` slots of a block ring, waiting while it is full; return the first sequence, or -1 if a
    forced shutdown (``abort_requested``) interrupted the wait. Each full-ring episode counts once."""
    seq = ring_claim(ctrl, count)
    rounds = 0
    while seq < 0:
        if rounds == 0:
            counter_add(proc, C_BACKPRESSURE_WAITS, 1)
        if load_relaxed(control_words, abort_index) != 0:
            return -1
        idle(wait_strategy, rounds)
        rounds += 1
        seq = ring_claim(ctrl, count)
    return seq
