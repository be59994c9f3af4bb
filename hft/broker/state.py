"""The broker's two bundles (``hft.bundle``): the fill simulator's state, and the loop's rings and control words.

Why bundles. ``broker_loop`` used to take 29 positional arguments and each matching kernel ten arrays, several
of the same type (``prices``/``sizes``, ``table``/``account``): swapping two compiled silently. A structref
passes as one pointer, names every field at the use site, and a new piece of state is one declaration here.

``BrokerState`` (numba type ``broker_state_t``), owned by the broker process (single writer, no shared memory):

* ``table[MAX, N_O]``: one row per order or command the broker holds (``O_*`` columns, ``hft.broker.matching``)
* ``state[N_ST]``: scalars (``ST_*``); ``params[N_P]``: the simulator's parameters (``P_*``)
* ``grid[S, 2]``: each symbol's tick and lot
* ``out``: EXEC_REPORT records waiting to be published (``state[ST_N_OUT]`` of them)
* ``account[S, N_ACCOUNT]``: positions and PnL (``hft.broker.accounting``)
* ``prices[S, 2, depth]``, ``sizes[S, 2, depth]``, ``counts[S, 2]``: the L2 books (``hft.feed.book``, best last)
* ``touch[S, N_TOUCH]``: each symbol's bookTicker overlay on its book (``T_*`` columns, ``hft.broker.matching``)

``BrokerIO`` (``broker_io_t``): what ``broker_loop`` reads and writes besides its state: strategy.orders,
md.events (with the strategy's cursor on it), the md.snapshot seqlock, broker.executions, the control words and
this process's counter block. The arrays are views of shared memory; the bundle only holds references.

Python keeps the numpy arrays next to the structref (``BrokerBook``, ``BrokerWiring``): tests and housekeeping
read them directly, the compiled code reaches the same memory through ``.ref``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.experimental import structref

from hft.broker.accounting import N_ACCOUNT
from hft.broker.matching import N_O, N_P, N_ST, N_TOUCH
from hft.bundle import BundleError, check_fields, field_names
from hft.feed.book import DEFAULT_DEPTH_CAPACITY
from shm_layout.records import (
    BOOK_SNAPSHOT,
    EXEC_REPORT,
    book_snapshot_t,
    exec_report_t,
    md_event_t,
    order_t,
)

__all__ = [
    "BROKER_IO_FIELDS",
    "BROKER_STATE_FIELDS",
    "BrokerBook",
    "BrokerIO",
    "BrokerState",
    "BrokerWiring",
    "broker_io_t",
    "broker_state_t",
    "new_broker_io",
    "new_broker_state",
]

_i64 = types.int64


@structref.register
class BrokerStateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class BrokerState(structref.StructRefProxy):
    """The fill simulator's state as one reference (built by ``new_broker_state``)."""


BROKER_STATE_FIELDS = (
    ("table", _i64[:, ::1]),
    ("state", _i64[::1]),
    ("params", _i64[::1]),
    ("grid", _i64[:, ::1]),
    ("out", types.Array(exec_report_t, 1, "C")),
    ("account", _i64[:, ::1]),
    ("prices", _i64[:, :, ::1]),
    ("sizes", _i64[:, :, ::1]),
    ("counts", _i64[:, ::1]),
    ("touch", _i64[:, ::1]),
)
structref.define_proxy(BrokerState, BrokerStateType, field_names(BROKER_STATE_FIELDS))
broker_state_t = BrokerStateType(BROKER_STATE_FIELDS)


@njit(cache=True)  # cached: a fresh process loads it instead of compiling it
def _new_broker_state(table, state, params, grid, out, account, prices, sizes, counts, touch):
    return BrokerState(table, state, params, grid, out, account, prices, sizes, counts, touch)


@dataclass(frozen=True, slots=True)
class BrokerBook:
    """The simulator's arrays and the structref over them (``ref``): pass ``ref`` to the kernels."""

    ref: BrokerState
    table: np.ndarray
    state: np.ndarray
    params: np.ndarray
    grid: np.ndarray
    out: np.ndarray
    account: np.ndarray
    prices: np.ndarray
    sizes: np.ndarray
    counts: np.ndarray
    touch: np.ndarray


def broker_state_from_arrays(table: np.ndarray, state: np.ndarray, params: np.ndarray, grid: np.ndarray,
                             out: np.ndarray, account: np.ndarray, prices: np.ndarray, sizes: np.ndarray,
                             counts: np.ndarray, touch: np.ndarray) -> BrokerBook:
    """Bundle existing arrays (validated against ``BROKER_STATE_FIELDS`` and against each other's shapes)."""
    values = (table, state, params, grid, out, account, prices, sizes, counts, touch)
    check_fields("BrokerState", BROKER_STATE_FIELDS, values)
    n_symbols = account.shape[0]
    expected = {
        "table": (table.shape[1], N_O), "state": (state.shape[0], N_ST), "params": (params.shape[0], N_P),
        "grid": (grid.shape, (n_symbols, 2)), "account": (account.shape[1], N_ACCOUNT),
        "prices": (prices.shape[:2], (n_symbols, 2)), "sizes": (sizes.shape, prices.shape),
        "counts": (counts.shape, (n_symbols, 2)), "touch": (touch.shape, (n_symbols, N_TOUCH)),
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise BundleError(f"BrokerState.{name}: shape {got}, expected {want}")
    if out.shape[0] < 1:
        raise BundleError("BrokerState.out: no room for a report")
    return BrokerBook(_new_broker_state(*values), *values)


def new_broker_state(n_symbols: int, grid: np.ndarray, params: np.ndarray, max_open_orders: int,
                     depth_capacity: int = DEFAULT_DEPTH_CAPACITY, report_capacity: int | None = None) -> BrokerBook:
    """Allocate the simulator's state for ``n_symbols`` empty books and accounts.

    ``out`` defaults to ``2 * max_open_orders + 64`` reports: one event, with the arrivals due before it, adds
    at most two per held order (``on_event``). ``grid`` and ``params`` are copied into the bundle only if they
    are not already C-contiguous int64 arrays: change parameters through ``BrokerBook.params``.
    """
    if n_symbols < 1 or max_open_orders < 1 or depth_capacity < 1:
        raise ValueError("n_symbols, max_open_orders and depth_capacity must be >= 1")
    out_size = 2 * max_open_orders + 64 if report_capacity is None else report_capacity
    return broker_state_from_arrays(
        np.zeros((max_open_orders, N_O), np.int64),
        np.zeros(N_ST, np.int64),
        np.ascontiguousarray(params, dtype=np.int64),
        np.ascontiguousarray(grid, dtype=np.int64),
        np.zeros(out_size, EXEC_REPORT),
        np.zeros((n_symbols, N_ACCOUNT), np.int64),
        np.zeros((n_symbols, 2, depth_capacity), np.int64),
        np.zeros((n_symbols, 2, depth_capacity), np.int64),
        np.zeros((n_symbols, 2), np.int64),
        np.zeros((n_symbols, N_TOUCH), np.int64),
    )


# ------------------------------------------------------------------------------------------------ the loop's I/O


@structref.register
class BrokerIOType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class BrokerIO(structref.StructRefProxy):
    """The broker loop's rings and control words as one reference (built by ``new_broker_io``)."""


BROKER_IO_FIELDS = (
    ("order_ctrl", _i64[::1]),  # strategy.orders: control words, slots, the broker's consumer index
    ("order_slots", types.Array(order_t, 1, "C")),
    ("order_consumer", _i64),
    ("md_ctrl", _i64[::1]),  # md.events: control words, slots, the broker's and the strategy's consumer indices
    ("md_slots", types.Array(md_event_t, 1, "C")),
    ("md_consumer", _i64),
    ("strategy_md_consumer", _i64),
    ("md_batch", types.Array(md_event_t, 1, "C")),  # events copied off the ring, one batch at a time
    ("snap_words", _i64[::1]),  # md.snapshot seqlock words, and one BOOK_SNAPSHOT to read into (two views)
    ("snapshot", types.Array(book_snapshot_t, 1, "C")),
    ("snapshot_words", _i64[::1]),
    ("exec_ctrl", _i64[::1]),  # broker.executions
    ("exec_slots", types.Array(exec_report_t, 1, "C")),
    ("control_words", _i64[::1]),  # the control region: stop stage, abort flag
    ("stop_index", _i64),
    ("stage", _i64),
    ("abort_index", _i64),
    ("proc", _i64[::1]),  # this process's counter and histogram block
    ("wait_strategy", _i64),
)
structref.define_proxy(BrokerIO, BrokerIOType, field_names(BROKER_IO_FIELDS))
broker_io_t = BrokerIOType(BROKER_IO_FIELDS)


@njit(cache=True)
def _new_broker_io(order_ctrl, order_slots, order_consumer, md_ctrl, md_slots, md_consumer, strategy_md_consumer,
                   md_batch, snap_words, snapshot, snapshot_words, exec_ctrl, exec_slots, control_words, stop_index,
                   stage, abort_index, proc, wait_strategy):
    return BrokerIO(order_ctrl, order_slots, order_consumer, md_ctrl, md_slots, md_consumer, strategy_md_consumer,
                    md_batch, snap_words, snapshot, snapshot_words, exec_ctrl, exec_slots, control_words,
                    stop_index, stage, abort_index, proc, wait_strategy)


@dataclass(frozen=True, slots=True)
class BrokerWiring:
    """The I/O structref (``ref``) and the arrays only the broker owns (the batch and snapshot buffers)."""

    ref: BrokerIO
    md_batch: np.ndarray
    snapshot: np.ndarray


def new_broker_io(*, order_ctrl: np.ndarray, order_slots: np.ndarray, order_consumer: int, md_ctrl: np.ndarray,
                  md_slots: np.ndarray, md_consumer: int, strategy_md_consumer: int, snap_words: np.ndarray,
                  exec_ctrl: np.ndarray, exec_slots: np.ndarray, control_words: np.ndarray, stop_index: int,
                  stage: int, abort_index: int, proc: np.ndarray, wait_strategy: int,
                  md_batch_size: int = 4096) -> BrokerWiring:
    """Bundle the broker loop's I/O (keywords only: five of these are int64 word arrays, easy to swap).

    Allocates the md.events batch (``md_batch_size`` records) and the snapshot buffer the loop reads into."""
    if md_batch_size < 1:
        raise ValueError("md_batch_size must be >= 1")
    md_batch = np.zeros(md_batch_size, md_slots.dtype)
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    values = (order_ctrl, order_slots, order_consumer, md_ctrl, md_slots, md_consumer, strategy_md_consumer,
              md_batch, snap_words, snapshot, snapshot.view(np.int64), exec_ctrl, exec_slots, control_words,
              stop_index, stage, abort_index, proc, wait_strategy)
    check_fields("BrokerIO", BROKER_IO_FIELDS, values)
    ints = [int(v) if isinstance(v, np.integer) else v for v in values]
    return BrokerWiring(_new_broker_io(*ints), md_batch, snapshot)
