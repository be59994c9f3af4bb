"""The region map of one pipeline instance (shm_layout/layout.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from shm_layout.counters import C_MSGS_IN, PROCESS_WORDS, W_COUNTERS, W_HEARTBEAT
from shm_layout.layout import (
    CONTROL_REGION,
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_BROKER,
    PROCESS_NAMES,
    RING_SPECS,
    SNAPSHOTS,
    W_ABORT_REQUESTED,
    W_KILL_SWITCH,
    W_N_SYMBOLS,
    W_PROCESSES,
    W_RUN_STATE,
    W_STARTED_NS,
    W_STOP_REQUESTED,
    W_SUPERVISOR_PID,
    Pipeline,
)
from shm_layout.records import CONTROL, EXEC_REPORT, MAX_SYMBOLS, MD_EVENT, ORDER, SYMBOL_INFO
from shm_layout.region import LayoutMismatchError, RegionMissingError, find_segments, segment_name
from shm_layout.ring import POLICY_BLOCK, POLICY_LOSSY, Ring
from tests.unit.shm_layout import _workers

CAPACITIES = {MD_EVENTS: 64, ORDERS: 16, EXECUTIONS: 32}
REGIONS = (CONTROL_REGION, SNAPSHOTS, MD_EVENTS, ORDERS, EXECUTIONS)
SYMBOLS = [("BTCUSDT", 0, 2, 5, 1, 1), ("ETHUSDT", 1, 2, 4, 1, 1), ("SOLUSDT", 2, 3, 2, 5, 10)]


def _symbols(rows=SYMBOLS) -> np.ndarray:
    table = np.zeros(len(rows), SYMBOL_INFO)
    for i, (name, sid, pdec, sdec, tick, lot) in enumerate(rows):
        table[i] = (name.encode(), sid, pdec, sdec, tick, lot, 0)
    return table


def _names(instance: str) -> set[str]:
    return {segment_name(instance, region) for region in REGIONS}


def _existing(instance: str) -> set[str]:
    prefix = f"hft.{instance}."
    return {entry for entry in os.listdir("/dev/shm") if entry.startswith(prefix)}


@pytest.fixture
def pipeline(instance: str):
    created = Pipeline.create(instance, _symbols(), CAPACITIES, generation=1234)
    yield created
    created.unlink()
    created.close()


def test_create_when_new_instance_then_five_segments_of_one_generation(pipeline: Pipeline, instance: str) -> None:
    assert _existing(instance) == _names(instance)
    assert {region.name for region in pipeline.regions()} == _names(instance)
    assert {int(region.header[0]["generation"]) for region in pipeline.regions()} == {1234}
    assert pipeline.control.generation == 1234
    assert all(region.owner for region in pipeline.regions())
    assert all(info.creator_alive and info.is_hft for info in find_segments(instance))


def test_create_when_new_instance_then_control_block_and_rings_initialised(pipeline: Pipeline) -> None:
    words = pipeline.control.words
    assert words.size * 8 == CONTROL.itemsize
    assert words[W_SUPERVISOR_PID] == os.getpid()
    assert words[W_N_SYMBOLS] == len(SYMBOLS)
    assert words[W_KILL_SWITCH] == 0
    assert not pipeline.control.stop_requested
    assert [bytes(n).rstrip(b"\0").decode() for n in pipeline.control.symbols["name"]] == [s[0] for s in SYMBOLS]
    assert pipeline.snapshots.n_slots == len(SYMBOLS)
    expected = {MD_EVENTS: (MD_EVENT, POLICY_LOSSY, ("strategy", "broker")),
                ORDERS: (ORDER, POLICY_BLOCK, ("broker", "persistence")),
                EXECUTIONS: (EXEC_REPORT, POLICY_BLOCK, ("strategy", "persistence"))}
    assert set(pipeline.rings) == set(expected) == set(RING_SPECS)
    for name, (dtype, policy, consumers) in expected.items():
        ring = pipeline.rings[name]
        assert (ring.record_dtype, ring.policy, ring.consumer_names, ring.capacity) == (
            dtype, policy, consumers, CAPACITIES[name])
        assert RING_SPECS[name].consumers == consumers


def test_attach_when_called_in_spawned_process_then_reads_symbol_table_and_writes_are_shared(
    pipeline: Pipeline, instance: str, children
) -> None:
    children.start(_workers.attach_pipeline, instance)
    result = children.results(1, timeout=30)[0]
    children.join(timeout=10)
    assert result["symbols"] == SYMBOLS
    assert result["generation"] == 1234
    assert result["generations"] == [1234] * 5
    assert result["capacities"] == CAPACITIES
    assert result["published"] == 1
    orders = pipeline.rings[ORDERS]
    assert orders.read(orders.consumer_index("broker"))["order_id"].tolist() == [4242]
    assert pipeline.control.process_words(PROC_BROKER)[W_COUNTERS + C_MSGS_IN] == 3  # written by the child


def test_attach_when_a_region_has_another_generation_then_refused_naming_it(pipeline: Pipeline, instance: str) -> None:
    name = segment_name(instance, EXECUTIONS)
    pipeline.rings[EXECUTIONS].region.unlink()
    replacement = Ring.create(name, EXEC_REPORT, CAPACITIES[EXECUTIONS], POLICY_BLOCK, ("strategy", "persistence"),
                              generation=999)
    try:
        with pytest.raises(LayoutMismatchError, match="generation 999, expected 1234") as info:
            Pipeline.attach(instance)
        assert name in str(info.value)
    finally:
        replacement.region.unlink()
        replacement.region.close()


def test_attach_when_instance_missing_then_region_missing_error(instance: str) -> None:
    with pytest.raises(RegionMissingError):
        Pipeline.attach(instance)


def test_attach_readonly_when_pipeline_running_then_reads_but_cannot_write(pipeline: Pipeline, instance: str) -> None:
    reader = Pipeline.attach(instance, readonly=True)
    assert reader.control.generation == 1234
    assert len(reader.control.symbols) == len(SYMBOLS)
    with pytest.raises(ValueError, match="read-only"):
        reader.control.words[W_KILL_SWITCH] = 1
    reader.close()


def test_create_when_segments_already_exist_then_file_exists_error_and_existing_intact(
    pipeline: Pipeline, instance: str
) -> None:
    pipeline.control.words[W_KILL_SWITCH] = 1
    pipeline.rings[ORDERS].try_publish(np.ones(3, ORDER))
    with pytest.raises(FileExistsError):
        Pipeline.create(instance, _symbols(SYMBOLS[:1]), CAPACITIES, generation=5)
    assert _existing(instance) == _names(instance)
    again = Pipeline.attach(instance)
    assert again.control.generation == 1234
    assert again.control.words[W_KILL_SWITCH] == 1
    assert len(again.control.symbols) == len(SYMBOLS)
    assert again.rings[ORDERS].stats()["head"] == 3
    again.close()


def test_create_when_only_a_later_segment_exists_then_error_and_nothing_else_left_behind(instance: str) -> None:
    name = segment_name(instance, EXECUTIONS)
    existing = Ring.create(name, EXEC_REPORT, 8, POLICY_BLOCK, ("x",), generation=1)
    existing.try_publish(np.ones(2, EXEC_REPORT))
    try:
        with pytest.raises(FileExistsError):
            Pipeline.create(instance, _symbols(), CAPACITIES)
        assert _existing(instance) == {name}
        assert int(existing.ctrl[0]) == 2  # untouched: head still 2
        assert os.path.exists(f"/dev/shm/{name}")
    finally:
        existing.region.unlink()
        existing.region.close()


def test_create_when_capacity_missing_then_error_and_nothing_left_behind(instance: str) -> None:
    with pytest.raises(KeyError):
        Pipeline.create(instance, _symbols(), {MD_EVENTS: 64, ORDERS: 16})
    assert _existing(instance) == set()


@pytest.mark.parametrize("count", [0, MAX_SYMBOLS + 1])
def test_create_when_symbol_count_out_of_range_then_value_error_and_nothing_created(instance: str, count: int) -> None:
    rows = [(f"S{i}", i, 2, 2, 1, 1) for i in range(count)]
    with pytest.raises(ValueError, match="symbols"):
        Pipeline.create(instance, _symbols(rows), CAPACITIES)
    assert _existing(instance) == set()


def test_create_when_generation_omitted_then_random_positive_and_distinct(instance: str) -> None:
    first = Pipeline.create(instance, _symbols(), CAPACITIES)
    generation = first.control.generation
    first.unlink()
    first.close()
    second = Pipeline.create(instance, _symbols(), CAPACITIES)
    try:
        assert generation > 0 and second.control.generation > 0
        assert generation != second.control.generation  # a re-created instance is refused by stale workers
    finally:
        second.unlink()
        second.close()


def test_unlink_when_called_then_all_five_segments_removed(instance: str) -> None:
    created = Pipeline.create(instance, _symbols(), CAPACITIES)
    assert _existing(instance) == _names(instance)
    created.unlink()
    assert _existing(instance) == set()
    assert find_segments(instance) == []
    created.unlink()  # idempotent
    created.close()
    with pytest.raises(RegionMissingError):
        Pipeline.attach(instance)


def test_control_block_when_words_written_then_visible_through_record_fields(pipeline: Pipeline) -> None:
    control = pipeline.control
    for word, field in [(W_SUPERVISOR_PID, "supervisor_pid"), (W_RUN_STATE, "run_state"),
                        (W_STOP_REQUESTED, "stop_requested"), (W_STARTED_NS, "started_ns"),
                        (W_ABORT_REQUESTED, "abort_requested"), (W_N_SYMBOLS, "n_symbols"),
                        (W_KILL_SWITCH, "kill_switch"), (W_PROCESSES, "processes")]:
        assert word * 8 == CONTROL.fields[field][1], field
    control.words[W_STOP_REQUESTED] = 2
    assert control.stop_requested
    assert int(control.record[0]["stop_requested"]) == 2
    for process in range(len(PROCESS_NAMES)):
        block = control.process_words(process)
        assert block.shape == (PROCESS_WORDS,)
        block[W_HEARTBEAT] = 1000 + process
        block[W_COUNTERS + C_MSGS_IN] = 7 * process
    for process in range(len(PROCESS_NAMES)):
        record = control.process_record(process)
        assert int(record["heartbeat_ns"]) == 1000 + process
        assert int(record["counters"][C_MSGS_IN]) == 7 * process
