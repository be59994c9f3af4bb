"""The broker's bundles: built from validated arrays, and the compiled code sees the same memory as Python."""

from __future__ import annotations

import numpy as np
import pytest
from numba import typeof

from hft.broker.matching import N_O, N_P, N_ST, N_TOUCH, ST_N_OUT, shutdown
from hft.broker.state import broker_state_from_arrays, broker_state_t, new_broker_state
from hft.bundle import BundleError
from shm_layout.records import EXEC_REPORT


def _arrays(n_symbols: int = 2, depth: int = 8, max_orders: int = 4) -> dict[str, np.ndarray]:
    return {
        "table": np.zeros((max_orders, N_O), np.int64), "state": np.zeros(N_ST, np.int64),
        "params": np.zeros(N_P, np.int64), "grid": np.ones((n_symbols, 2), np.int64),
        "out": np.zeros(16, EXEC_REPORT), "account": np.zeros((n_symbols, 4), np.int64),
        "prices": np.zeros((n_symbols, 2, depth), np.int64), "sizes": np.zeros((n_symbols, 2, depth), np.int64),
        "counts": np.zeros((n_symbols, 2), np.int64), "touch": np.zeros((n_symbols, N_TOUCH), np.int64),
    }


def test_new_broker_state_when_built_then_kernels_write_the_arrays_python_holds() -> None:
    book = new_broker_state(3, np.ones((3, 2), np.int64), np.zeros(N_P, np.int64), max_open_orders=5,
                            depth_capacity=7)
    assert book.table.shape == (5, N_O) and book.prices.shape == (3, 2, 7) and book.touch.shape == (3, N_TOUCH)
    assert len(book.out) == 2 * 5 + 64
    assert typeof(book.ref) == broker_state_t
    book.state[ST_N_OUT] = 3  # a kernel reads what Python wrote, and the other way round
    assert shutdown(book.ref) == 0
    assert book.state[ST_N_OUT] == 3


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("sizes", np.zeros((2, 2, 8), np.int32), "BrokerState.sizes: dtype int32"),
        ("prices", np.zeros((2, 2, 16), np.int64)[:, :, ::2], "BrokerState.prices: not C-contiguous"),
        ("touch", np.zeros((2, N_TOUCH + 1), np.int64), "BrokerState.touch: shape"),
        ("table", np.zeros((4, N_O - 1), np.int64), "BrokerState.table: shape"),
        ("counts", np.zeros((3, 2), np.int64), "BrokerState.counts: shape"),
    ],
)
def test_broker_state_when_an_array_does_not_fit_then_bundle_error_names_the_field(
    name: str, value: np.ndarray, message: str
) -> None:
    arrays = _arrays() | {name: value}
    with pytest.raises(BundleError, match=message):
        broker_state_from_arrays(**arrays)
