"""Typed state bundles for jitted code: numba structrefs that travel as one pointer.

Why. A jitted loop that carries its state as dozens of positional arrays is hard to read and easy to break
(two arrays of the same type swapped at a call site compile silently), and a new piece of state touches every
call site. Each array argument also costs ~7 machine words per call (data, shape, strides, meminfo). A
structref is a reference to one heap struct: a call passes two words, a field read is a load, and a new field
touches the declaration and the constructor only.

How a component declares one (``hft.broker.state``, ``hft.strategy.context``)::

    @structref.register
    class BrokerStateType(types.StructRef):
        pass

    class BrokerStateRef(structref.StructRefProxy):
        pass

    FIELDS = (("table", types.int64[:, ::1]), ("params", types.int64[::1]), ...)
    structref.define_proxy(BrokerStateRef, BrokerStateType, field_names(FIELDS))
    broker_state_t = BrokerStateType(FIELDS)

    @njit(cache=True)  # cached: a fresh process loads it instead of compiling it (~0.5 s otherwise)
    def _new_broker_state(table, params, ...):
        return BrokerStateRef(table, params, ...)

Python keeps its own references to the numpy arrays (the struct holds the same memory, not a copy): tests and
housekeeping read them directly and never go through the structref. ``check_fields`` validates the values
against the declared types before construction, so a wrong dtype or a strided view is a clear error naming the
field rather than a second numba type that no compiled function expects. Single writer, like the arrays
themselves: a bundle belongs to one process.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import from_dtype, types

FieldSpec = Sequence[tuple[str, types.Type]]


class BundleError(TypeError):
    """A value does not fit the bundle's declared field type; the message names the bundle and the field."""


def field_names(fields: FieldSpec) -> list[str]:
    """Return the names of ``fields`` in declaration order (the constructor's argument order)."""
    return [name for name, _ in fields]


def check_fields(bundle: str, fields: FieldSpec, values: Sequence[object]) -> None:
    """Raise ``BundleError`` unless every value matches its declared numba type exactly.

    Arrays must have the declared dtype and number of dimensions, be C-contiguous when declared so, and be
    writable (a read-only array is a different numba type). Integer fields take Python or numpy integers.
    """
    if len(values) != len(fields):
        raise BundleError(f"{bundle}: {len(values)} values for {len(fields)} fields")
    for (name, declared), value in zip(fields, values, strict=True):
        where = f"{bundle}.{name}"
        if isinstance(declared, types.Array):
            if not isinstance(value, np.ndarray):
                raise BundleError(f"{where}: expected a numpy array, got {type(value).__name__}")
            if from_dtype(value.dtype) != declared.dtype:
                raise BundleError(f"{where}: dtype {value.dtype} does not match the declared {declared.dtype}")
            if value.ndim != declared.ndim:
                raise BundleError(f"{where}: {value.ndim} dimensions, declared {declared.ndim}")
            if declared.layout == "C" and not value.flags.c_contiguous:
                raise BundleError(f"{where}: not C-contiguous (pass np.ascontiguousarray or a fresh array)")
            if not value.flags.writeable:
                raise BundleError(f"{where}: read-only array")
        elif isinstance(declared, types.Integer):
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise BundleError(f"{where}: expected an integer, got {type(value).__name__}")
        elif isinstance(declared, types.Float) and not isinstance(value, float | int | np.floating | np.integer):
            raise BundleError(f"{where}: expected a number, got {type(value).__name__}")
