"""Layout pin for every shared-memory record (shm_layout/records.py).

The table below is the layout as it is today, written out literally. Any change to a dtype (a field added,
moved, retyped or renamed, a size change) fails ``test_dtype_when_compared_with_pinned_table_then_identical``
and must be made deliberately: update the table, and LAYOUT_HASH changes with it (checked below), so that
processes built with the old layout refuse to attach.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit, typeof, types

from shm_layout import records
from shm_layout.region import HEADER_BYTES
from shm_layout.ring import CONTROL_BYTES

# name -> (itemsize, {field: (offset, base dtype str or nested dtype name, shape)}), in declaration order
PINNED: dict[str, tuple[int, dict[str, tuple[int, str, tuple[int, ...]]]]] = {
    "SYMBOL_INFO": (64, {
        "name": (0, "|S16", ()),
        "symbol_id": (16, "<i8", ()),
        "price_decimals": (24, "<i8", ()),
        "size_decimals": (32, "<i8", ()),
        "tick_size": (40, "<i8", ()),
        "lot_size": (48, "<i8", ()),
        "spare": (56, "<i8", ()),
    }),
    "MD_EVENT": (64, {
        "ts_exch": (0, "<i8", ()),
        "ts_recv": (8, "<i8", ()),
        "ts_init": (16, "<i8", ()),
        "price": (24, "<i8", ()),
        "size": (32, "<i8", ()),
        "update_id": (40, "<i8", ()),
        "symbol_id": (48, "<i4", ()),
        "kind": (52, "<i4", ()),
        "side": (56, "<i4", ()),
        "flags": (60, "<i4", ()),
    }),
    "ORDER": (128, {
        "order_id": (0, "<i8", ()),
        "ts_tick_recv": (8, "<i8", ()),
        "ts_init": (16, "<i8", ()),
        "ts_exch": (24, "<i8", ()),
        "price": (32, "<i8", ()),
        "size": (40, "<i8", ()),
        "md_cursor": (48, "<i8", ()),
        "expire_ts": (56, "<i8", ()),
        "target_order_id": (64, "<i8", ()),
        "symbol_id": (72, "<i4", ()),
        "strategy_id": (76, "<i4", ()),
        "side": (80, "<i2", ()),
        "order_type": (82, "<i2", ()),
        "tif": (84, "<i2", ()),
        "command": (86, "<i2", ()),
        "spare": (88, "<i8", (5,)),
    }),
    "EXEC_REPORT": (192, {
        "exec_id": (0, "<i8", ()),
        "order_id": (8, "<i8", ()),
        "ts_tick_recv": (16, "<i8", ()),
        "ts_order_init": (24, "<i8", ()),
        "ts_init": (32, "<i8", ()),
        "ts_exch": (40, "<i8", ()),
        "price": (48, "<i8", ()),
        "size": (56, "<i8", ()),
        "leaves": (64, "<i8", ()),
        "cum_filled": (72, "<i8", ()),
        "cum_notional": (80, "<i8", ()),
        "position": (88, "<i8", ()),
        "entry_notional": (96, "<i8", ()),
        "realized_pnl": (104, "<i8", ()),
        "fill_pnl": (112, "<i8", ()),
        "closed": (120, "<i8", ()),
        "fee": (128, "<i8", ()),
        "mid_x2": (136, "<i8", ()),
        "symbol_id": (144, "<i4", ()),
        "strategy_id": (148, "<i4", ()),
        "side": (152, "<i2", ()),
        "status": (154, "<i2", ()),
        "reason": (156, "<i2", ()),
        "order_type": (158, "<i2", ()),
        "tif": (160, "<i2", ()),
        "liquidity": (162, "<i2", ()),
        "flags": (164, "<i4", ()),
        "total_fees": (168, "<i8", ()),
        "target_order_id": (176, "<i8", ()),
        "spare": (184, "<i8", ()),
    }),
    "BOOK_SNAPSHOT": (448, {
        "seq": (0, "<i8", ()),
        "ts_exch": (8, "<i8", ()),
        "ts_recv": (16, "<i8", ()),
        "ts_init": (24, "<i8", ()),
        "update_id": (32, "<i8", ()),
        "bid_price": (40, "<i8", ()),
        "bid_size": (48, "<i8", ()),
        "ask_price": (56, "<i8", ()),
        "ask_size": (64, "<i8", ()),
        "mid_x2": (72, "<i8", ()),
        "spread": (80, "<i8", ()),
        "imbalance": (88, "<f8", ()),
        "symbol_id": (96, "<i4", ()),
        "status": (100, "<i4", ()),
        "n_bid_levels": (104, "<i4", ()),
        "n_ask_levels": (108, "<i4", ()),
        "bid_prices": (112, "<i8", (10,)),
        "bid_sizes": (192, "<i8", (10,)),
        "ask_prices": (272, "<i8", (10,)),
        "ask_sizes": (352, "<i8", (10,)),
        "spare": (432, "<i8", (2,)),
    }),
    "REGION_HEADER": (128, {
        "magic": (0, "<i8", ()),
        "layout_version": (8, "<i8", ()),
        "layout_hash": (16, "<i8", ()),
        "record_size": (24, "<i8", ()),
        "capacity": (32, "<i8", ()),
        "creator_pid": (40, "<i8", ()),
        "generation": (48, "<i8", ()),
        "created_ns": (56, "<i8", ()),
        "region_kind": (64, "<i8", ()),
        "body_offset": (72, "<i8", ()),
        "body_bytes": (80, "<i8", ()),
        "spare": (88, "<i8", (5,)),
    }),
    "RING_CONSUMER": (64, {
        "tail": (0, "<i8", ()),
        "overruns": (8, "<i8", ()),
        "lost": (16, "<i8", ()),
        "pid": (24, "<i8", ()),
        "active": (32, "<i8", ()),
        "spare": (40, "<i8", (3,)),
    }),
    "RING_CONTROL": (576, {
        "head": (0, "<i8", ()),
        "backpressure_waits": (8, "<i8", ()),
        "claimed": (16, "<i8", ()),
        "policy": (24, "<i8", ()),
        "n_consumers": (32, "<i8", ()),
        "capacity": (40, "<i8", ()),
        "publishes": (48, "<i8", ()),
        "cached_min_tail": (56, "<i8", ()),
        "consumers": (64, "RING_CONSUMER", (8,)),
    }),
    "PROCESS_BLOCK": (9024, {
        "heartbeat_ns": (0, "<i8", ()),
        "pid": (8, "<i8", ()),
        "state": (16, "<i8", ()),
        "started_ns": (24, "<i8", ()),
        "core": (32, "<i8", ()),
        "restarts": (40, "<i8", ()),
        "spare": (48, "<i8", (2,)),
        "counters": (64, "<i8", (80,)),
        "histograms": (704, "<i8", (2, 520)),
    }),
    "CONTROL": (138944, {
        "supervisor_pid": (0, "<i8", ()),
        "run_state": (8, "<i8", ()),
        "stop_requested": (16, "<i8", ()),
        "started_ns": (24, "<i8", ()),
        "n_symbols": (32, "<i8", ()),
        "n_processes": (40, "<i8", ()),
        "abort_requested": (48, "<i8", ()),
        "strategies_ready": (56, "<i8", ()),
        "kill_switch": (64, "<i8", ()),
        "spare1": (72, "<i8", (7,)),
        "symbols": (128, "SYMBOL_INFO", (16,)),
        "processes": (1152, "PROCESS_BLOCK", (8,)),
        "strategy_state": (73344, "<i8", (8200,)),
    }),
}

ALL_DTYPES: dict[str, np.dtype] = {name: dtype for name, (dtype, _) in records.EXPECTED_SIZES.items()}
ALL_DTYPES["CONTROL"] = records.CONTROL

LINE = 64
REPO_ROOT = str(Path(__file__).resolve().parents[3])


def _field(dtype: np.dtype, name: str) -> tuple[np.dtype, int, tuple[int, ...]]:
    field_dtype, offset = dtype.fields[name][:2]
    if field_dtype.subdtype is not None:
        base, shape = field_dtype.subdtype
    else:
        base, shape = field_dtype, ()
    return base, offset, shape


def _lines(start: int, size: int) -> set[int]:
    return set(range(start // LINE, (start + size - 1) // LINE + 1))


def _field_lines(dtype: np.dtype, name: str, base_offset: int = 0) -> set[int]:
    field_dtype, offset = dtype.fields[name][:2]
    return _lines(base_offset + offset, field_dtype.itemsize)


# ------------------------------------------------------------------------------------------------ layout pin


def test_pinned_table_when_compared_with_module_then_covers_every_dtype() -> None:
    assert set(PINNED) == set(ALL_DTYPES)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_dtype_when_compared_with_pinned_table_then_identical(name: str) -> None:
    dtype = ALL_DTYPES[name]
    size, fields = PINNED[name]
    assert dtype.itemsize == size, f"{name}: itemsize {dtype.itemsize}, pinned {size}"
    assert list(dtype.names) == list(fields), f"{name}: fields or their order changed"
    for field, (offset, base_spec, shape) in fields.items():
        base, actual_offset, actual_shape = _field(dtype, field)
        assert actual_offset == offset, f"{name}.{field}: offset {actual_offset}, pinned {offset}"
        assert actual_shape == shape, f"{name}.{field}: shape {actual_shape}, pinned {shape}"
        if base_spec in ALL_DTYPES:  # a nested record: must be exactly that (itself pinned) dtype
            assert base == ALL_DTYPES[base_spec], f"{name}.{field}: nested dtype is not {base_spec}"
        else:
            assert base.str == base_spec, f"{name}.{field}: type {base.str}, pinned {base_spec}"


@pytest.mark.parametrize("name", sorted(records.EXPECTED_SIZES))
def test_expected_sizes_when_checked_then_match_itemsize(name: str) -> None:
    dtype, size = records.EXPECTED_SIZES[name]
    assert dtype.itemsize == size


@pytest.mark.parametrize("name", sorted(PINNED))
def test_dtype_when_sized_then_whole_number_of_cache_lines(name: str) -> None:
    dtype = ALL_DTYPES[name]
    assert dtype.itemsize % LINE == 0
    assert dtype.isalignedstruct, f"{name} must be declared with align=True"


@pytest.mark.parametrize("name", sorted(PINNED))
def test_dtype_when_fields_inspected_then_naturally_aligned_and_non_overlapping(name: str) -> None:
    dtype = ALL_DTYPES[name]
    end = 0
    for field in dtype.names:
        base, offset, _ = _field(dtype, field)
        field_size = dtype.fields[field][0].itemsize
        assert offset >= end, f"{name}.{field} overlaps the previous field"
        assert offset % min(base.alignment, 8) == 0, f"{name}.{field} is misaligned"
        if base.fields is not None:  # nested records (one per writer) start on a cache line
            assert offset % LINE == 0, f"{name}.{field} does not start on a cache line"
        end = offset + field_size
    assert end <= dtype.itemsize


def test_int64_fields_when_word_index_taken_then_offset_over_eight() -> None:
    for dtype in ALL_DTYPES.values():
        for field in dtype.names:
            base, offset, _ = _field(dtype, field)
            if base == np.dtype(np.int64):
                assert records.word_index(dtype, field) * 8 == offset


def test_word_index_when_field_not_eight_byte_aligned_then_assertion() -> None:
    with pytest.raises(AssertionError):
        records.word_index(records.MD_EVENT, "kind")  # int32 at offset 52


# --------------------------------------------------------------------------------------- one writer per line


def test_ring_control_when_cursors_mapped_then_head_and_each_tail_on_own_line() -> None:
    control = records.RING_CONTROL
    consumer = records.RING_CONSUMER
    consumers_offset = control.fields["consumers"][1]
    producer_lines: set[int] = set()
    for field in ("head", "backpressure_waits", "claimed", "publishes", "cached_min_tail"):
        producer_lines |= _field_lines(control, field)
    assert producer_lines == {0}
    consumer_lines = []
    for index in range(records.MAX_CONSUMERS):
        base = consumers_offset + index * consumer.itemsize
        lines: set[int] = set()
        for field in ("tail", "overruns", "lost"):
            lines |= _field_lines(consumer, field, base)
        assert len(lines) == 1
        consumer_lines.append(lines)
    for index, lines in enumerate(consumer_lines):
        assert not lines & producer_lines, f"consumer {index}'s tail shares the head's line"
    for (i, a), (j, b) in itertools.combinations(enumerate(consumer_lines), 2):
        assert not a & b, f"consumers {i} and {j} share a line"
    # the slots that follow the control lines (after the region header) start on a line of their own
    assert (HEADER_BYTES + CONTROL_BYTES) % LINE == 0
    assert control.itemsize == CONTROL_BYTES


def test_control_when_writers_mapped_then_kill_switch_supervisor_and_each_process_on_own_lines() -> None:
    control = records.CONTROL
    supervisor: set[int] = set()
    for field in ("supervisor_pid", "run_state", "stop_requested", "started_ns", "n_symbols", "n_processes",
                  "abort_requested"):
        supervisor |= _field_lines(control, field)
    kill_switch = _field_lines(control, "kill_switch")
    assert kill_switch == {1}
    assert control.fields["kill_switch"][1] == LINE
    processes_offset = control.fields["processes"][1]
    block = records.PROCESS_BLOCK.itemsize
    process_lines = [_lines(processes_offset + i * block, block) for i in range(records.MAX_PROCESSES)]
    writers = {"supervisor": supervisor, "kill_switch": kill_switch}
    writers.update({f"process{i}": lines for i, lines in enumerate(process_lines)})
    for (a_name, a), (b_name, b) in itertools.combinations(writers.items(), 2):
        assert not a & b, f"{a_name} and {b_name} share a cache line: {sorted(a & b)}"
    # every field on the kill-switch line other than the kill switch is spare
    for field in control.names:
        if field != "kill_switch" and _field_lines(control, field) & kill_switch:
            assert field.startswith("spare"), f"{field} shares the kill switch's line"


def test_region_bodies_when_placed_after_header_then_records_start_on_cache_lines() -> None:
    assert records.REGION_HEADER.itemsize == HEADER_BYTES
    assert HEADER_BYTES % LINE == 0
    for dtype in (records.BOOK_SNAPSHOT, records.MD_EVENT, records.ORDER, records.EXEC_REPORT):
        for index in range(4):
            assert (HEADER_BYTES + index * dtype.itemsize) % LINE == 0


# ----------------------------------------------------------------------------------------------- layout hash


def _renamed(dtype: np.dtype, old: str, new: str) -> np.dtype:
    return np.dtype([(new if name == old else name, dtype.fields[name][0]) for name in dtype.names], align=True)


def _retyped(dtype: np.dtype, field: str, new_type: np.dtype) -> np.dtype:
    return np.dtype([(name, new_type if name == field else dtype.fields[name][0]) for name in dtype.names],
                    align=True)


def _swapped(dtype: np.dtype, a: str, b: str) -> np.dtype:
    names = list(dtype.names)
    i, j = names.index(a), names.index(b)
    names[i], names[j] = names[j], names[i]
    return np.dtype([(name, dtype.fields[name][0]) for name in names], align=True)


MODIFICATIONS = {
    "md_event_field_renamed": ("MD_EVENT", lambda d: _renamed(d, "update_id", "seq_no")),
    "md_event_field_retyped": ("MD_EVENT", lambda d: _retyped(d, "price", np.dtype(np.float64))),
    "md_event_fields_swapped": ("MD_EVENT", lambda d: _swapped(d, "kind", "side")),
    "order_int16_to_uint16": ("ORDER", lambda d: _retyped(d, "side", np.dtype(np.uint16))),
    "ring_consumer_field_renamed": ("RING_CONSUMER", lambda d: _renamed(d, "lost", "dropped")),
    "book_snapshot_levels_swapped": ("BOOK_SNAPSHOT", lambda d: _swapped(d, "bid_sizes", "ask_prices")),
    "process_block_grown": ("PROCESS_BLOCK", lambda d: np.dtype(
        [(n, d.fields[n][0]) for n in d.names] + [("extra", np.int64, 8)], align=True)),
}


def test_layout_fingerprint_when_unchanged_then_equals_layout_hash() -> None:
    assert records._layout_fingerprint() == records.LAYOUT_HASH
    assert -(2**63) <= records.LAYOUT_HASH < 2**63  # stored in an int64 header word


@pytest.mark.parametrize("case", sorted(MODIFICATIONS))
def test_layout_fingerprint_when_a_dtype_changes_then_hash_changes(case: str, monkeypatch) -> None:
    name, modify = MODIFICATIONS[case]
    dtype, size = records.EXPECTED_SIZES[name]
    changed = modify(dtype)
    assert changed != dtype
    monkeypatch.setitem(records.EXPECTED_SIZES, name, (changed, changed.itemsize))
    assert records._layout_fingerprint() != records.LAYOUT_HASH
    monkeypatch.setitem(records.EXPECTED_SIZES, name, (dtype, size))
    assert records._layout_fingerprint() == records.LAYOUT_HASH


def test_layout_fingerprint_when_control_changes_then_hash_changes(monkeypatch) -> None:
    monkeypatch.setattr(records, "CONTROL", _renamed(records.CONTROL, "kill_switch", "kill"))
    assert records._layout_fingerprint() != records.LAYOUT_HASH
    monkeypatch.setattr(records, "CONTROL", _swapped(records.CONTROL, "run_state", "stop_requested"))
    assert records._layout_fingerprint() != records.LAYOUT_HASH


def test_layout_hash_when_computed_in_another_interpreter_then_identical() -> None:
    # The hash is compared across processes: it must not depend on per-process hash randomization.
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, PYTHONHASHSEED="12345")
    result = subprocess.run(
        [sys.executable, "-c", "from shm_layout import records; print(records.LAYOUT_HASH)"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    assert int(result.stdout.strip()) == records.LAYOUT_HASH


# ------------------------------------------------------------------------------------------------ numba types


@njit(cache=True)
def _sum_fields(events, orders, reports, snapshots):
    return (events[0].update_id + events[0].flags + orders[0].order_id + orders[0].strategy_id
            + reports[0].exec_id + reports[0].liquidity + snapshots[0].bid_prices[3] + snapshots[0].n_ask_levels)


@pytest.mark.parametrize(
    ("numba_type", "dtype"),
    [
        (records.md_event_t, records.MD_EVENT),
        (records.order_t, records.ORDER),
        (records.exec_report_t, records.EXEC_REPORT),
        (records.book_snapshot_t, records.BOOK_SNAPSHOT),
    ],
)
def test_numba_record_type_when_derived_then_matches_dtype(numba_type, dtype: np.dtype) -> None:
    assert isinstance(numba_type, types.Record)
    assert numba_type.size == dtype.itemsize
    assert set(numba_type.fields) == set(dtype.names)
    for field in dtype.names:
        assert numba_type.offset(field) == dtype.fields[field][1]


def test_record_arrays_when_read_in_jitted_code_then_fields_at_declared_offsets() -> None:
    events = np.zeros(1, records.MD_EVENT)
    orders = np.zeros(1, records.ORDER)
    reports = np.zeros(1, records.EXEC_REPORT)
    snapshots = np.zeros(1, records.BOOK_SNAPSHOT)
    events["update_id"], events["flags"] = 1, 2
    orders["order_id"], orders["strategy_id"] = 10, 20
    reports["exec_id"], reports["liquidity"] = 100, 200
    snapshots[0]["bid_prices"][3], snapshots["n_ask_levels"] = 1000, 2000
    assert _sum_fields(events, orders, reports, snapshots) == 3333
    assert typeof(events).dtype == records.md_event_t
