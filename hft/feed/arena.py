"""Typed views into one ``int64`` arena from jitted code, without allocation.

Why: each array argument of a call from Python into numba costs about 0.1 us of unboxing, and a structured-dtype
array (MD_EVENT, BOOK_SNAPSHOT) about twice that. Keeping all of a component's state in a single int64 array and
carving typed views out of it inside the kernel turns a six-array call into a one-array call.

``arena_view(arena, word_offset, item_type, shape)`` returns a C-contiguous array of ``item_type`` (a numba
type: ``numba.int64`` or a record type from ``shm_layout.records``) that aliases ``arena`` from ``word_offset``.
The view carries no reference of its own: it is valid while ``arena`` is alive, i.e. for the duration of the
kernel that was passed the arena. Never return such a view to Python; build the Python-side views with numpy
(``arena[offset:...].view(dtype)``) from the same offsets.
"""

from __future__ import annotations

from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["arena_pointer", "arena_view"]


@intrinsic
def arena_pointer(typingctx, arena, word_offset, target):
    """Return a ``CPointer(target)`` to ``arena[word_offset]`` (``arena``: 1-d int64 array)."""
    if not (isinstance(arena, types.Array) and arena.dtype == types.int64 and arena.ndim == 1):
        return None
    if not isinstance(word_offset, types.Integer):
        return None
    pointee = getattr(target, "instance_type", None)
    if pointee is None:
        return None
    pointer_type = types.CPointer(pointee)
    sig = pointer_type(arena, word_offset, target)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        word_ptr = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]], wraparound=False)
        return builder.bitcast(word_ptr, context.get_value_type(pointer_type))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def arena_view(arena, word_offset, target, shape):
    """A C-contiguous view of ``shape`` (a tuple) items of ``target`` starting at ``arena[word_offset]``."""
    return carray(arena_pointer(arena, word_offset, target), shape)
