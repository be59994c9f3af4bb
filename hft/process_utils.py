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


def apply_priority(rt_priority: int, nice: int, log: logging.Logger) -> None:
    """Set the calling process's nice level and, if asked, SCHED_FIFO at ``rt_priority``; say what failed."""
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as exc:
            log.warning("nice %d not applied (%s): needs CAP_SYS_NICE for negative values", nice, exc)
    if rt_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
            log.info("real-time priority SCHED_FIFO %d", rt_priority)
        except OSError as exc:
            log.warning("SCHED_FIFO %d not applied (%s): needs CAP_SYS_NICE or root", rt_priority, exc)


def isolated_cores(path: str = "/sys/devices/system/cpu/isolated") -> set[int]:
    """The cores the kernel keeps ordinary tasks off (``isolcpus=``), from sysfs: e.g. ``2-3,6``."""
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return set()
    cores: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        cores.update(range(int(low), int(high or low) + 1))
    return cores
