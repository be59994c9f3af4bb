"""The region map: every segment a pipeline instance has, who writes it and who reads it.

=====================  ==========  =============  ================================  ===========================
region (channel)       kind        record         writer                            readers
=====================  ==========  =============  ================================  ===========================
control                control     CONTROL        supervisor (line 0), hft kill     everyone
                                                  (line 1), each process its block
md.snapshot            seqlock     BOOK_SNAPSHOT  feed                              strategy, broker, stats
md.events              ring lossy  MD_EVENT       feed                              strategy, broker (never
                                                                                    past the strategy's cursor)
strategy.orders        ring block  ORDER          strategy                          broker, persistence
broker.executions      ring block  EXEC_REPORT    broker                            strategy, persistence
=====================  ==========  =============  ================================  ===========================

Segment names are ``hft.<instance>.<region>``. All regions of one run carry the same ``generation`` in their
header (the control region's); workers attach with it, so a segment re-created by another run is refused.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import numpy as np

from shm_layout.counters import PROCESS_WORDS
from shm_layout.records import (
    CONTROL,
    EXEC_REPORT,
    MAX_PROCESSES,
    MAX_SYMBOLS,
    MD_EVENT,
    ORDER,
    PROCESS_BLOCK,
    word_index,
)
from shm_layout.region import KIND_CONTROL, Region, attach_region, create_region, segment_name
from shm_layout.ring import POLICY_BLOCK, POLICY_LOSSY, Ring
from shm_layout.seqlock import SnapshotTable

CONTROL_REGION = "control"
SNAPSHOTS = "md.snapshot"
MD_EVENTS = "md.events"
ORDERS = "strategy.orders"
EXECUTIONS = "broker.executions"

PROC_FEED = 0
PROC_STRATEGY = 1
PROC_BROKER = 2
PROC_PERSISTENCE = 3
PROCESS_NAMES = ("feed", "strategy", "broker", "persistence")
# what each process's two latency histograms measure (ns), for stats and Prometheus
HISTOGRAM_NAMES = (
    ("frame_to_publish", "frame_decode"),  # feed: frame received -> snapshot and events published
    ("tick_to_order", "md_hop"),  # strategy: frame received by feed -> order on the ring; md event hop
    ("order_to_exec", "tick_to_exec"),  # broker
    ("exec_to_commit", "commit"),  # persistence
)
assert len(PROCESS_NAMES) <= MAX_PROCESSES

W_SUPERVISOR_PID = word_index(CONTROL, "supervisor_pid")
W_RUN_STATE = word_index(CONTROL, "run_state")
W_STOP_REQUESTED = word_index(CONTROL, "stop_requested")
W_STRATEGIES_READY = word_index(CONTROL, "strategies_ready")
W_STARTED_NS = word_index(CONTROL, "started_ns")
W_ABORT_REQUESTED = word_index(CONTROL, "abort_requested")
W_N_SYMBOLS = word_index(CONTROL, "n_symbols")
W_KILL_SWITCH = word_index(CONTROL, "kill_switch")
W_PROCESSES = word_index(CONTROL, "processes")
W_STRATEGY_STATE = word_index(CONTROL, "strategy_state")  # blob: shm_layout.seqlock.blob_write/blob_read

# stop stages (CONTROL.stop_requested): the supervisor raises them one by one, each after the previous
# process exited, so every record in flight is drained downstream before its consumer stops.
STAGE_FEED = 1
STAGE_STRATEGY = 2
STAGE_BROKER = 3
STAGE_PERSISTENCE = 4
PROCESS_STAGES = (STAGE_FEED, STAGE_STRATEGY, STAGE_BROKER, STAGE_PERSISTENCE)

RUN_STARTING = 1
RUN_RUNNING = 2
RUN_STOPPING = 3


@dataclass(frozen=True)
class RingSpec:
    """One ring channel: its name, record, policy, the process that produces and the ones that consume."""

    name: str
    record_dtype: np.dtype
    policy: int
    producer: str
    consumers: tuple[str, ...]


def ring_specs() -> tuple[RingSpec, ...]:
    """Return the pipeline's rings (the consumer order fixes each consumer's cursor slot)."""
    return (
        RingSpec(MD_EVENTS, MD_EVENT, POLICY_LOSSY, "feed", ("strategy", "broker")),
        RingSpec(ORDERS, ORDER, POLICY_BLOCK, "strategy", ("broker", "persistence")),
        RingSpec(EXECUTIONS, EXEC_REPORT, POLICY_BLOCK, "broker", ("strategy", "persistence")),
    )


RING_SPECS = {spec.name: spec for spec in ring_specs()}


class ControlBlock:
    """The control region: run state, stop flag, kill switch, symbol table and one block per process."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.record = region.view(CONTROL)
        self.words = self.record.view(np.int64)
        self.generation = int(region.header[0]["generation"])

    def process_words(self, process: int) -> np.ndarray:
        """Return one process's PROCESS_BLOCK as int64 words (hand it to the jitted counter functions)."""
        start = W_PROCESSES + process * PROCESS_WORDS
        return self.words[start : start + PROCESS_WORDS]

    def process_record(self, process: int) -> np.void:
        return self.record[0]["processes"][process]

    @property
    def stop_requested(self) -> bool:
        return bool(self.words[W_STOP_REQUESTED])

    @property
    def symbols(self) -> np.ndarray:
        return self.record[0]["symbols"][: int(self.words[W_N_SYMBOLS])]


assert PROCESS_BLOCK.itemsize // 8 == PROCESS_WORDS


@dataclass
class Pipeline:
    """Every region of one pipeline instance, mapped into this process."""

    instance: str
    control: ControlBlock
    snapshots: SnapshotTable
    rings: dict[str, Ring]

    def consumer_slots(self, process_name: str) -> list[tuple[Ring, int]]:
        """Return ``(ring, consumer index)`` for every ring the named process consumes."""
        return [
            (self.rings[spec.name], spec.consumers.index(process_name))
            for spec in ring_specs()
            if process_name in spec.consumers
        ]

    def regions(self) -> list[Region]:
        return [self.control.region, self.snapshots.region] + [ring.region for ring in self.rings.values()]

    @classmethod
    def create(
        cls, instance: str, symbols: np.ndarray, capacities: dict[str, int], generation: int | None = None
    ) -> Pipeline:
        """Create every region of an instance (supervisor only). On failure, nothing is left behind."""
        if len(symbols) > MAX_SYMBOLS or len(symbols) == 0:
            raise ValueError(f"between 1 and {MAX_SYMBOLS} symbols, got {len(symbols)}")
        generation = generation if generation is not None else secrets.randbits(62) + 1
        created: list[Region] = []
        try:
            control_region = create_region(
                segment_name(instance, CONTROL_REGION), KIND_CONTROL, CONTROL.itemsize, 1, CONTROL.itemsize,
                generation,
            )
            created.append(control_region)
            control = ControlBlock(control_region)
            control.record[0]["symbols"][: len(symbols)] = symbols
            control.words[W_N_SYMBOLS] = len(symbols)
            control.words[W_SUPERVISOR_PID] = os.getpid()
            snapshots = SnapshotTable.create(segment_name(instance, SNAPSHOTS), len(symbols), generation)
            created.append(snapshots.region)
            rings = {}
            for spec in ring_specs():
                ring = Ring.create(
                    segment_name(instance, spec.name), spec.record_dtype, capacities[spec.name], spec.policy,
                    spec.consumers, generation,
                )
                created.append(ring.region)
                rings[spec.name] = ring
        except BaseException:
            for region in created:
                region.unlink()
                region.close()
            raise
        return cls(instance, control, snapshots, rings)

    @classmethod
    def attach(cls, instance: str, readonly: bool = False) -> Pipeline:
        """Map every region of a running instance, checking layouts and that they belong to one run."""
        control_region = attach_region(
            segment_name(instance, CONTROL_REGION), KIND_CONTROL, CONTROL.itemsize, 1, None, readonly
        )
        control = ControlBlock(control_region)
        generation = control.generation
        snapshots = SnapshotTable.attach(segment_name(instance, SNAPSHOTS), generation, readonly)
        rings = {
            spec.name: Ring.attach(
                segment_name(instance, spec.name), spec.record_dtype, spec.consumers, None, generation, readonly
            )
            for spec in ring_specs()
        }
        return cls(instance, control, snapshots, rings)

    def close(self) -> None:
        """Unmap every region from this process."""
        for region in self.regions():
            region.close()

    def unlink(self) -> None:
        """Remove every segment name (the creating supervisor only, once)."""
        for region in self.regions():
            region.unlink()
