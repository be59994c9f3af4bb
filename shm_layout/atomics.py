"""Memory-ordering primitives for numba ``nopython`` code.

Numba has no atomics of its own (numba issue #2988), so these are small ``numba.extending.intrinsic``
functions that emit LLVM atomic instructions and fences through llvmlite. On x86-64 an acquire load and a
release store compile to a plain ``mov`` and acquire/release fences to nothing: what they buy is that the
*compiler* may not hoist, sink or merge the access (a plain ``while buf[0] == old`` loop was seen compiled into
an infinite loop). A ``seq_cst`` fence becomes a locked instruction.

All functions take an ``int64`` array and an element index: cursors, sequences and counters in shared memory
are always 8-byte aligned ``int64`` words (mixing uint64 and int64 in numba arithmetic yields float64).
The plain-Python fallbacks (used when the functions are called outside jitted code) rely on numpy's aligned
8-byte loads and stores, which are single instructions on x86-64, plus the GIL-free ordering of a single
Python statement: good enough for tests, tooling and ``hft stats``, never used on the hot path.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "count_leading_zeros",
    "cpu_relax",
    "fence_acquire",
    "fence_release",
    "fence_seq_cst",
    "load_acquire",
    "load_relaxed",
    "monotonic_ns",
    "store_relaxed",
    "store_release",
]


def _element_pointer(context, builder, array_type, array_value, index_value):
    array = context.make_array(array_type)(context, builder, array_value)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index_value], wraparound=False)


def _check_word_array(array_type, index_type) -> None:
    if not isinstance(array_type, types.Array) or array_type.dtype != types.int64 or array_type.ndim != 1:
        raise TypeError("atomics work on 1-d int64 arrays only")
    if not isinstance(index_type, types.Integer):
        raise TypeError("atomic index must be an integer")


def _make_load(ordering: str):
    @intrinsic
    def _load(typingctx, array_type, index_type):
        _check_word_array(array_type, index_type)

        def codegen(context, builder, signature, args):
            array_value, index_value = args
            index_value = context.cast(builder, index_value, signature.args[1], types.intp)
            pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
            return builder.load_atomic(pointer, ordering, 8)

        return types.int64(array_type, index_type), codegen

    return _load


def _make_store(ordering: str):
    @intrinsic
    def _store(typingctx, array_type, index_type, value_type):
        _check_word_array(array_type, index_type)
        if not isinstance(value_type, types.Integer):
            raise TypeError("atomic store value must be an integer")

        def codegen(context, builder, signature, args):
            array_value, index_value, value = args
            index_value = context.cast(builder, index_value, signature.args[1], types.intp)
            value = context.cast(builder, value, signature.args[2], types.int64)
            pointer = _element_pointer(context, builder, signature.args[0], array_value, index_value)
            builder.store_atomic(value, pointer, ordering, 8)
            return context.get_dummy_value()

        return types.void(array_type, index_type, value_type), codegen

    return _store


def _make_fence(ordering: str):
    @intrinsic
    def _fence(typingctx):
        def codegen(context, builder, signature, args):
            builder.fence(ordering)
            return context.get_dummy_value()

        return types.void(), codegen

    return _fence


_load_acquire = _make_load("acquire")
_load_relaxed = _make_load("monotonic")
_store_release = _make_store("release")
_store_relaxed = _make_store("monotonic")
_fence_acquire = _make_fence("acquire")
_fence_release = _make_fence("release")
_fence_seq_cst = _make_fence("seq_cst")


@intrinsic
def _pause(typingctx):
    """Emit the x86 ``pause`` spin hint (``builder.asm`` aborts under numba's JIT, the intrinsic does not)."""

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
        builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _ctlz(typingctx, value_type):
    if not isinstance(value_type, types.Integer):
        raise TypeError("ctlz takes an integer")

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], types.int64)
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64), ir.IntType(1)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.ctlz.i64")
        return builder.call(fn, [value, ir.Constant(ir.IntType(1), 0)])

    return types.int64(value_type), codegen


_CLOCK_MONOTONIC = 1  # Linux <time.h>; the same clock as Python's time.monotonic_ns()


@intrinsic
def _clock_monotonic_ns(typingctx):
    """Call libc ``clock_gettime(CLOCK_MONOTONIC)`` (a vDSO call, ~20 ns) from jitted code."""

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        timespec = ir.LiteralStructType([i64, i64])
        slot = cgutils.alloca_once(builder, timespec)
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), timespec.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        builder.call(fn, [ir.Constant(ir.IntType(32), _CLOCK_MONOTONIC), slot])
        seconds = builder.load(builder.gep(slot, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 0)]))
        nanos = builder.load(builder.gep(slot, [ir.Constant(ir.IntType(32), 0), ir.Constant(ir.IntType(32), 1)]))
        return builder.add(builder.mul(seconds, ir.Constant(i64, 1_000_000_000)), nanos)

    return types.int64(), codegen


@njit(inline="always", cache=True)
def load_acquire(words: np.ndarray, index: int) -> int:
    """Load ``words[index]`` so that no later access is moved before it (pairs with ``store_release``)."""
    return _load_acquire(words, index)


@njit(inline="always", cache=True)
def load_relaxed(words: np.ndarray, index: int) -> int:
    """Load ``words[index]`` atomically with no ordering: the compiler must reload it every time."""
    return _load_relaxed(words, index)


@njit(inline="always", cache=True)
def store_release(words: np.ndarray, index: int, value: int) -> None:
    """Store ``value`` so that every earlier write is visible before it (publishes a cursor or a sequence)."""
    _store_release(words, index, value)


@njit(inline="always", cache=True)
def store_relaxed(words: np.ndarray, index: int, value: int) -> None:
    """Store ``value`` atomically with no ordering (counters read by other processes)."""
    _store_relaxed(words, index, value)


@njit(inline="always", cache=True)
def fence_acquire() -> None:
    """Keep later loads and stores after every earlier load."""
    _fence_acquire()


@njit(inline="always", cache=True)
def fence_release() -> None:
    """Keep earlier loads and stores before every later store."""
    _fence_release()


@njit(inline="always", cache=True)
def fence_seq_cst() -> None:
    """Full fence (a locked instruction on x86): orders a store before a later load."""
    _fence_seq_cst()


@njit(inline="always", cache=True)
def cpu_relax() -> None:
    """Tell the core we are spinning (x86 ``pause``): saves power and the sibling hyper-thread's cycles."""
    _pause()


@njit(inline="always", cache=True)
def count_leading_zeros(value: int) -> int:
    """Return the number of leading zero bits of a 64-bit value (64 for zero)."""
    return _ctlz(value)


@njit(inline="always", cache=True)
def monotonic_ns() -> int:
    """Return CLOCK_MONOTONIC in nanoseconds: one clock shared by every process on the machine."""
    return _clock_monotonic_ns()
