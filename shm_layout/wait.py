"""Wait strategies for a process that found nothing to do, chosen per process in the config.

* ``busy-spin``: ``pause`` and poll again. Lowest latency; needs a core of its own per spinner.
* ``spin-yield``: spin ``SPIN_LIMIT`` rounds, then ``sched_yield()``: gives the core to other runnable threads
  on it (processes that share a core) at the cost of a scheduler round trip.
* ``spin-sleep``: spin, yield, then sleep ``SLEEP_NS``: frees the core entirely; waking costs tens of µs on a
  VM, so only for processes off the latency path (persistence) or for machines with fewer cores than spinners.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from shm_layout.atomics import cpu_relax

WAIT_BUSY_SPIN = 0
WAIT_SPIN_YIELD = 1
WAIT_SPIN_SLEEP = 2
WAIT_NAMES = {"busy-spin": WAIT_BUSY_SPIN, "spin-yield": WAIT_SPIN_YIELD, "spin-sleep": WAIT_SPIN_SLEEP}

# Measured here (AMD EPYC KVM guest): `pause` ~25 ns, `sched_yield` ~0.5 µs. A short spin phase matters when
# two spinners share a core: the other one runs only when this one yields, so a 2000-round spin (50 µs) showed
# up as ~140 µs order-to-execution latency between a strategy and a broker on one core.
SPIN_LIMIT = 64  # ~1.6 µs of pause before the first yield
YIELD_LIMIT = 2_064  # then ~1 ms of yields (each returns at once when nothing else wants the core)
SLEEP_NS = 50_000


@intrinsic
def _sched_yield(typingctx):
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _usleep(typingctx, micros_type):
    def codegen(context, builder, signature, args):
        micros = context.cast(builder, args[0], signature.args[0], types.uint32)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "usleep")
        builder.call(fn, [micros])
        return context.get_dummy_value()

    return types.void(micros_type), codegen


@njit(cache=True)
def sched_yield() -> None:
    """Give up the CPU to another runnable thread (libc ``sched_yield``)."""
    _sched_yield()


@njit(cache=True)
def sleep_us(micros: int) -> None:
    """Sleep (libc ``usleep``) without returning to the interpreter."""
    _usleep(micros)


@njit(cache=True)
def idle(strategy: int, idle_rounds: int) -> None:
    """Wait once according to ``strategy``; ``idle_rounds`` counts consecutive empty polls (0 = first)."""
    if strategy == WAIT_BUSY_SPIN or idle_rounds < SPIN_LIMIT:
        cpu_relax()
    elif strategy == WAIT_SPIN_YIELD or idle_rounds < YIELD_LIMIT:
        _sched_yield()
    else:
        _usleep(SLEEP_NS // 1000)
