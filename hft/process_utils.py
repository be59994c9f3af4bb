"""OS-level helpers every process of the product uses: parent-death signal and CPU pinning."""

from __future__ import annotations

import ctypes
import logging
import os
import signal

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux ``prctl``).

    Children of a supervisor that was SIGKILLed must not keep running against segments nobody owns.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: callers also poll their parent pid
        pass


def pin_to_core(core: int, log: logging.Logger) -> bool:
    """Pin the calling thread (call before starting any other) to ``core``; -1 leaves placement alone."""
    if core < 0:
        return False
    available = sorted(os.sched_getaffinity(0))
    if core not in available:
        log.warning("core %d not available (have %s): not pinned", core, available)
        return False
    os.sched_setaffinity(0, {core})
    return True
