"""Benchmark cross-process transport of 64-byte records: the numba shared-memory ring against the baselines.

Usage::

    PYTHONPATH=. python bench/ipc.py                  # full run (well under 2 minutes)
    PYTHONPATH=. python bench/ipc.py --quick          # ~15 s, fewer records
    PYTHONPATH=. python bench/ipc.py --records 50000 --json-only > ipc.json
    PYTHONPATH=. python bench/ipc.py --transports ring,faster_fifo --cores 0,1 --gap-ns 5000 --json-out x.json

Every measurement runs a producer and a consumer in two separate processes (``spawn``), each pinned to its own
core with ``os.sched_setaffinity`` as the first thing it does (unpinned, with yielding waits, when only one CPU
is available). Processes are started once per transport family and run that family's jobs in order; before
each job both sides warm up (the ring kernels are compiled and run on a private scratch ring) and meet at a
barrier. Every job also pushes ``warm`` records through the real transport first and discards them.

Latency (one way, paced): the producer busy-waits until ``--gap-ns`` (default 20 µs, the same for every transport
but mp.Queue; a smaller gap makes the Python baselines queue) after its previous send, stamps
CLOCK_MONOTONIC into the record's ``ts_init`` and publishes it; the consumer stamps CLOCK_MONOTONIC when it has
the record in hand. CLOCK_MONOTONIC is one clock for every process on the machine, so the difference is the
one-way latency. The ring side runs entirely in numba (publish: ``ring_claim`` + slot writes + ``ring_commit``;
poll: ``ring_available`` + a direct slot read + ``ring_release``, busy-spinning with ``cpu_relax``) and keeps its
samples in a preallocated array; the baselines run in Python with ``time.monotonic_ns``. ``mp.Queue`` is paced
with ``time.sleep`` at a longer gap and fewer records: a busy-waiting sender keeps the GIL from the queue's
feeder thread and would measure GIL hand-over (milliseconds) instead of the queue.

Throughput (unpaced): the producer sends as fast as the transport accepts, the consumer drains and checks every
record's sequence number; rate = records / (consumer's last receipt - producer's first timed send). Ring variants:
batched in place (claim up to 256 slots, write them, ``ring_commit``; the consumer reads the slots where they lie
and ``ring_release``s up to 256 at a time), batched through the copy API (``ring_try_publish`` of a 256-record
staging array, ``ring_read`` into a 256-record buffer) and unbatched (one record per claim/commit and per
release). Baselines: faster-fifo ``put_many``/``get_many`` of 256 and ``put``/``get_nowait`` of one,
``mp.Queue`` put/get, ``Pipe`` send_bytes/recv_bytes.

Every job reports the involuntary context switches of both processes during its timed part: on a quiet machine
with the two cores to ourselves they are ~0; when they are not, the tails (and often the medians) measure the
other tasks, not the transport.

The output is a readable table and a JSON document (``--json-only``: the JSON alone). Shared-memory segments
are created here (the benchmark plays the supervisor), named ``hft.ipcbench<pid><random>.bench.*``, and
unlinked in a ``finally`` even on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import queue
import resource
import secrets
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Keep BLAS/OpenMP pools from starting threads on every core in the pinned worker processes (inherited by spawn).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # allow `python bench/ipc.py` without PYTHONPATH
    sys.path.insert(0, str(_REPO))

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from shm_layout.atomics import cpu_relax, monotonic_ns  # noqa: E402
from shm_layout.records import EV_TRADE, FLAG_LAST_IN_FRAME, MAX_CONSUMERS, MD_EVENT, SIDE_BUY  # noqa: E402
from shm_layout.region import remove_segment, segment_name  # noqa: E402
from shm_layout.ring import (  # noqa: E402
    CONSUMER_WORDS,
    CONTROL_BYTES,
    POLICY_BLOCK,
    W_ACTIVE,
    W_CAPACITY,
    W_CONSUMERS,
    W_HEAD,
    W_N_CONSUMERS,
    W_POLICY,
    Ring,
    ring_available,
    ring_claim,
    ring_commit,
    ring_read,
    ring_release,
    ring_tail,
    ring_try_publish,
)
from shm_layout.wait import sched_yield  # noqa: E402

try:
    import faster_fifo
except ImportError:  # reported as a skipped baseline, not an error
    faster_fifo = None

RECORD_BYTES = MD_EVENT.itemsize
assert RECORD_BYTES == 64

# --- defaults (per --records N) -------------------------------------------------------------------------------
DEFAULT_RECORDS = 200_000
QUICK_RECORDS = 50_000
# One record every 20 µs for every transport. The Python baselines cost 3-7 µs per record on each side here
# (faster-fifo 0.2-0.3 M msgs/s, Pipe ~0.15 M/s): at a 2-5 µs gap they queue without bound and the "latency"
# becomes queueing delay (milliseconds). The ring's latency does not depend on the gap (try --gap-ns 2000).
DEFAULT_GAP_NS = 20_000
MP_QUEUE_GAP_NS = 100_000  # sleep-paced (see module docstring)
MP_QUEUE_SHARE = 10  # mp.Queue latency runs N / 10 records
RING_CAPACITY = 4096  # slots (256 KiB of records: fits L2)
BATCH = 256
RING_BATCHED_FACTOR = 100  # throughput record counts, as multiples of N
RING_UNBATCHED_FACTOR = 25
FIFO_BATCHED_FACTOR = 5
PY_UNBATCHED_FACTOR = 1
FIFO_BYTES = 4 << 20
STALL_NS = 20_000_000_000  # a side that sees no progress for 20 s gives up (the other side died)
STALL_S = STALL_NS / 1e9
BARRIER_S = 180.0  # covers a cold numba compile in the other process

# --- targets (from the issue) ---------------------------------------------------------------------------------
TARGET_RING_P50_NS = 500
TARGET_FIFO_OVER_RING = 20.0
TARGET_RING_BATCHED_RATE = 20e6

# --- jitted kernel status codes -------------------------------------------------------------------------------
ST_OK = 0
ST_STALLED = -1
ST_SEQUENCE = -2
STATUS_TEXT = {ST_OK: "ok", ST_STALLED: "stalled: no progress from the other side", ST_SEQUENCE: "sequence gap"}


# ================================================================================================ numba kernels


@njit(inline="always", cache=True)
def _pause(yield_mode: bool) -> None:
    if yield_mode:
        sched_yield()
    else:
        cpu_relax()


@njit(cache=True)
def _stalled(spins: int, give_up: np.ndarray, stall_ns: int) -> bool:
    """Check the clock every 65536 empty polls; ``give_up[0]`` holds the deadline (0: not armed)."""
    if spins & 0xFFFF != 0:
        return False
    now = monotonic_ns()
    if give_up[0] == 0:
        give_up[0] = now + stall_ns
        return False
    return now > give_up[0]


@njit(inline="always", cache=True)
def _fill_record(rec: Any, seq: int, ts: int) -> None:
    rec.ts_exch = 0
    rec.ts_recv = 0
    rec.price = 6_000_000 + (seq & 1023)
    rec.size = 1 + (seq & 7)
    rec.update_id = seq
    rec.symbol_id = 0
    rec.kind = EV_TRADE
    rec.side = SIDE_BUY
    rec.flags = FLAG_LAST_IN_FRAME
    rec.ts_init = ts


@njit(cache=True)
def ring_latency_producer(
    ctrl: np.ndarray,
    slots: np.ndarray,
    n_warm: int,
    n: int,
    gap_ns: int,
    stall_ns: int,
    yield_mode: bool,
    times: np.ndarray,
) -> int:
    """Publish ``n_warm + n`` records one at a time, ``gap_ns`` apart, stamping ``ts_init`` just before commit.

    ``times[0]``/``times[1]``: send time of the first/last timed record. Return a status code.
    """
    mask = ctrl[W_CAPACITY] - 1
    give_up = np.zeros(1, np.int64)
    prev = monotonic_ns()
    for i in range(n_warm + n):
        target = prev + gap_ns
        while monotonic_ns() < target:
            _pause(yield_mode)
        seq = ring_claim(ctrl, 1)
        spins = 0
        give_up[0] = 0
        while seq < 0:
            _pause(yield_mode)
            spins += 1
            if _stalled(spins, give_up, stall_ns):
                return ST_STALLED
            seq = ring_claim(ctrl, 1)
        rec = slots[seq & mask]
        _fill_record(rec, seq, 0)
        t = monotonic_ns()
        rec.ts_init = t
        ring_commit(ctrl, seq + 1)
        if i == n_warm:
            times[0] = t
        prev = t
    times[1] = prev
    return ST_OK


@njit(cache=True)
def ring_latency_consumer(
    ctrl: np.ndarray,
    slots: np.ndarray,
    consumer: int,
    n_warm: int,
    lat: np.ndarray,
    stall_ns: int,
    yield_mode: bool,
) -> int:
    """Receive ``n_warm + len(lat)`` records by busy-polling; store receipt - ``ts_init`` of the timed ones."""
    mask = ctrl[W_CAPACITY] - 1
    give_up = np.zeros(1, np.int64)
    tail = ring_tail(ctrl, consumer)
    errors = 0
    for i in range(n_warm + lat.shape[0]):
        spins = 0
        give_up[0] = 0
        while ring_available(ctrl, consumer) <= 0:
            _pause(yield_mode)
            spins += 1
            if _stalled(spins, give_up, stall_ns):
                return ST_STALLED
        rec = slots[tail & mask]
        ts = rec.ts_init
        seq = rec.update_id
        t = monotonic_ns()
        ring_release(ctrl, consumer, tail + 1)
        if seq != tail:
            errors += 1
        if i >= n_warm:
            lat[i - n_warm] = t - ts
        tail += 1
    return ST_OK if errors == 0 else ST_SEQUENCE


@njit(cache=True)
def _ring_fill_inplace(
    ctrl: np.ndarray, slots: np.ndarray, start: int, end: int, batch: int, stall_ns: int, yield_mode: bool
) -> int:
    mask = ctrl[W_CAPACITY] - 1
    give_up = np.zeros(1, np.int64)
    seq = start
    spins = 0
    while seq < end:
        count = min(batch, end - seq)
        first = ring_claim(ctrl, count)
        if first < 0:
            _pause(yield_mode)
            spins += 1
            if _stalled(spins, give_up, stall_ns):
                return ST_STALLED
            continue
        spins = 0
        give_up[0] = 0
        for k in range(count):
            _fill_record(slots[(first + k) & mask], first + k, first)
        ring_commit(ctrl, first + count)
        seq = first + count
    return ST_OK


@njit(cache=True)
def _ring_fill_copy(
    ctrl: np.ndarray,
    slots: np.ndarray,
    staging: np.ndarray,
    start: int,
    end: int,
    batch: int,
    stall_ns: int,
    yield_mode: bool,
) -> int:
    give_up = np.zeros(1, np.int64)
    seq = start
    spins = 0
    while seq < end:
        count = min(batch, end - seq, staging.shape[0])
        for k in range(count):
            _fill_record(staging[k], seq + k, seq)
        done = 0
        while done < count:
            published = ring_try_publish(ctrl, slots, staging, done, count - done)
            if published == 0:
                _pause(yield_mode)
                spins += 1
                if _stalled(spins, give_up, stall_ns):
                    return ST_STALLED
                continue
            spins = 0
            give_up[0] = 0
            done += published
        seq += count
    return ST_OK


@njit(cache=True)
def ring_burst_producer(
    ctrl: np.ndarray,
    slots: np.ndarray,
    staging: np.ndarray,
    copy_api: bool,
    n_warm: int,
    n: int,
    batch: int,
    stall_ns: int,
    yield_mode: bool,
    times: np.ndarray,
) -> int:
    """Publish ``n_warm`` then ``n`` records unpaced, ``batch`` per publish; ``times[0]``: start of the timed part.

    In place: ``ring_claim`` + slot writes + ``ring_commit``. Copy API (``copy_api``): fill ``staging`` and
    ``ring_try_publish`` it.
    """
    if copy_api:
        status = _ring_fill_copy(ctrl, slots, staging, 0, n_warm, batch, stall_ns, yield_mode)
    else:
        status = _ring_fill_inplace(ctrl, slots, 0, n_warm, batch, stall_ns, yield_mode)
    if status != ST_OK:
        return status
    times[0] = monotonic_ns()
    if copy_api:
        status = _ring_fill_copy(ctrl, slots, staging, n_warm, n_warm + n, batch, stall_ns, yield_mode)
    else:
        status = _ring_fill_inplace(ctrl, slots, n_warm, n_warm + n, batch, stall_ns, yield_mode)
    times[1] = monotonic_ns()
    return status


@njit(cache=True)
def _ring_drain(
    ctrl: np.ndarray,
    slots: np.ndarray,
    consumer: int,
    out: np.ndarray,
    copy_api: bool,
    count: int,
    batch: int,
    stall_ns: int,
    yield_mode: bool,
    sums: np.ndarray,
) -> int:
    mask = ctrl[W_CAPACITY] - 1
    give_up = np.zeros(1, np.int64)
    tail = ring_tail(ctrl, consumer)
    end = tail + count
    errors = 0
    checksum = 0
    spins = 0
    while tail < end:
        want = min(batch, end - tail)
        if copy_api:
            got = ring_read(ctrl, slots, consumer, out, want)
            for k in range(got):
                if out[k].update_id != tail + k:
                    errors += 1
                checksum += out[k].size
        else:
            got = min(ring_available(ctrl, consumer), want)
            for k in range(got):
                rec = slots[(tail + k) & mask]
                if rec.update_id != tail + k:
                    errors += 1
                checksum += rec.size
            if got > 0:
                ring_release(ctrl, consumer, tail + got)
        if got <= 0:
            _pause(yield_mode)
            spins += 1
            if _stalled(spins, give_up, stall_ns):
                return ST_STALLED
            continue
        spins = 0
        give_up[0] = 0
        tail += got
    sums[0] += checksum
    return ST_OK if errors == 0 else ST_SEQUENCE


@njit(cache=True)
def ring_burst_consumer(
    ctrl: np.ndarray,
    slots: np.ndarray,
    consumer: int,
    out: np.ndarray,
    copy_api: bool,
    n_warm: int,
    n: int,
    batch: int,
    stall_ns: int,
    yield_mode: bool,
    times: np.ndarray,
) -> int:
    """Drain ``n_warm`` then ``n`` records, checking each sequence; ``times[1]``: receipt of the last one.

    In place: ``ring_available`` + slot reads + ``ring_release``, at most ``batch`` per release. Copy API:
    ``ring_read`` into ``out``. ``times[2]`` accumulates a checksum of the sizes read (keeps the reads live).
    """
    sums = np.zeros(1, np.int64)
    status = _ring_drain(ctrl, slots, consumer, out, copy_api, n_warm, batch, stall_ns, yield_mode, sums)
    if status != ST_OK:
        return status
    times[0] = monotonic_ns()
    status = _ring_drain(ctrl, slots, consumer, out, copy_api, n, batch, stall_ns, yield_mode, sums)
    times[1] = monotonic_ns()
    times[2] = sums[0]
    return status


@njit(cache=True)
def clock_read_cost(samples: np.ndarray) -> None:
    """Fill ``samples`` with the difference of back-to-back ``monotonic_ns`` reads in jitted code."""
    for i in range(samples.shape[0]):
        t0 = monotonic_ns()
        t1 = monotonic_ns()
        samples[i] = t1 - t0


def _scratch_ring(capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Return private (ctrl, slots) arrays shaped like a fresh block ring with consumer 0 active (JIT warm-up)."""
    ctrl = np.zeros(CONTROL_BYTES // 8, np.int64)
    ctrl[W_CAPACITY] = capacity
    ctrl[W_POLICY] = POLICY_BLOCK
    ctrl[W_N_CONSUMERS] = MAX_CONSUMERS
    ctrl[W_CONSUMERS + 0 * CONSUMER_WORDS + W_ACTIVE] = 1
    return ctrl, np.zeros(capacity, MD_EVENT)


def _scratch_published(capacity: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a scratch ring holding ``count`` published records for a consumer warm-up."""
    ctrl, slots = _scratch_ring(capacity)
    slots["update_id"][:count] = np.arange(count)
    slots["ts_init"][:count] = time.monotonic_ns()
    ctrl[W_HEAD] = count
    return ctrl, slots


# ================================================================================================ jobs


@dataclass(frozen=True)
class Job:
    """One measurement: a producer side and a consumer side run in their two processes."""

    name: str  # key in the report, e.g. "ring", "faster_fifo_spin", "ring_batched"
    label: str  # human text for the table
    transport: str  # "ring" | "faster_fifo" | "mp_queue" | "pipe"
    measure: str  # "latency" | "throughput"
    n: int
    n_warm: int
    gap_ns: int = 0
    pacing: str = "busy"  # "busy" | "sleep" (latency only)
    batch: int = 1
    receive: str = "spin"  # python consumers: "spin" (get_nowait loop) | "blocking"
    copy_api: bool = False  # ring throughput: ring_try_publish/ring_read instead of in-place slots
    ring_name: str = ""
    capacity: int = 0
    generation: int = 0
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Return the job's unique key: latency and throughput runs of one transport share a name."""
        return f"{self.name}:{self.measure}"


_FIELDS = MD_EVENT.names
_STRUCT_CODES = {np.dtype(np.int64): "q", np.dtype(np.int32): "i"}
_CODES = "".join(_STRUCT_CODES[MD_EVENT.fields[f][0]] for f in _FIELDS)
_REC = struct.Struct("<" + _CODES)
assert _REC.size == RECORD_BYTES, "MD_EVENT has padding: build the struct format with pad bytes"
assert [struct.calcsize("<" + _CODES[:i]) for i in range(len(_FIELDS))] == [MD_EVENT.fields[f][1] for f in _FIELDS]
I_TS_INIT = _FIELDS.index("ts_init")
I_UPDATE_ID = _FIELDS.index("update_id")


def _py_record(seq: int, ts: int) -> bytes:
    """Return one MD_EVENT as 64 bytes, laid out like the ring's record (struct derived from the dtype)."""
    values = {
        "ts_exch": 0,
        "ts_recv": 0,
        "ts_init": ts,
        "price": 6_000_000 + (seq & 1023),
        "size": 1 + (seq & 7),
        "update_id": seq,
        "symbol_id": 0,
        "kind": EV_TRADE,
        "side": SIDE_BUY,
        "flags": FLAG_LAST_IN_FRAME,
    }
    return _REC.pack(*(values[f] for f in _FIELDS))


def _record_packer() -> Callable[[int, int], bytes]:
    """Return a fast ``(seq, ts) -> bytes`` for the hot loops (same bytes as ``_py_record``)."""
    order = list(_FIELDS)
    pack = _REC.pack
    i_ts, i_seq, i_price, i_size = I_TS_INIT, I_UPDATE_ID, order.index("price"), order.index("size")
    template = list(_REC.unpack(_py_record(0, 0)))

    def make(seq: int, ts: int) -> bytes:
        values = template.copy()
        values[i_ts] = ts
        values[i_seq] = seq
        values[i_price] = 6_000_000 + (seq & 1023)
        values[i_size] = 1 + (seq & 7)
        return pack(*values)

    return make


_CHECK = np.frombuffer(_record_packer()(7, 123), MD_EVENT)[0]
assert (_CHECK["update_id"], _CHECK["ts_init"], _CHECK["kind"]) == (7, 123, EV_TRADE)


def _switches() -> int:
    """Return this process's involuntary context switches so far: how often the OS took its core away."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


def _go(barrier: Any) -> int:
    """Meet the other side at the start line; return the involuntary switch count at the start of the timed part."""
    barrier.wait(BARRIER_S)
    return _switches()


def _python_sender(job: Job, endpoint: Any) -> tuple[Callable[[bytes], None], Callable[[list[bytes]], None] | None]:
    if job.transport == "faster_fifo":
        if job.measure == "latency":
            return endpoint.put_nowait, None

        def put(msg: bytes) -> None:
            endpoint.put(msg, block=True, timeout=STALL_S)

        def put_many(msgs: list[bytes]) -> None:
            endpoint.put_many(msgs, block=True, timeout=STALL_S)

        return put, put_many
    if job.transport == "mp_queue":
        return endpoint.put, None
    if job.transport == "pipe":
        return endpoint.send_bytes, None
    raise ValueError(job.transport)


def _python_receiver(job: Job, endpoint: Any, yield_mode: bool) -> tuple[Callable[[], bytes], Callable[[int], list]]:
    if job.transport == "faster_fifo":
        if job.receive == "spin":
            get_nowait = endpoint.get_nowait
            empty = queue.Empty

            def get() -> bytes:
                while True:
                    try:
                        return get_nowait()
                    except empty:
                        if yield_mode:
                            os.sched_yield()

        else:

            def get() -> bytes:
                return endpoint.get(block=True, timeout=STALL_S)

        def get_many(limit: int) -> list:
            return endpoint.get_many(block=True, timeout=STALL_S, max_messages_to_get=limit)

        return get, get_many
    if job.transport == "mp_queue":

        def mp_get() -> bytes:
            return endpoint.get(timeout=STALL_S)

        return mp_get, None  # type: ignore[return-value]
    if job.transport == "pipe":
        return endpoint.recv_bytes, None  # type: ignore[return-value]
    raise ValueError(job.transport)


def _python_latency_producer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    send, _ = _python_sender(job, endpoint)
    make = _record_packer()
    mono = time.monotonic_ns
    make(0, mono())  # warm the closure
    switches = _go(barrier)
    gap = job.gap_ns
    sleep_pacing = job.pacing == "sleep"
    first = last = prev = mono()
    for i in range(job.n_warm + job.n):
        target = prev + gap
        if sleep_pacing:
            remaining = target - mono()
            if remaining > 0:
                time.sleep(remaining / 1e9)
        else:
            while mono() < target:
                if yield_mode:
                    os.sched_yield()
        t = mono()
        send(make(i, t))
        if i == job.n_warm:
            first = t
        prev = last = t
    return {"preempted": _switches() - switches, "status": ST_OK, "t_first": first, "t_last": last}


def _python_latency_consumer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    get, _ = _python_receiver(job, endpoint, yield_mode)
    unpack = _REC.unpack
    mono = time.monotonic_ns
    lat = [0] * job.n
    n_warm = job.n_warm
    errors = 0
    switches = _go(barrier)
    for i in range(n_warm + job.n):
        msg = get()
        t = mono()
        rec = unpack(msg)
        if rec[I_UPDATE_ID] != i:
            errors += 1
        if i >= n_warm:
            lat[i - n_warm] = t - rec[I_TS_INIT]
    return {
        "preempted": _switches() - switches,
        "status": ST_OK if errors == 0 else ST_SEQUENCE,
        "lat": np.array(lat, dtype=np.int64),
    }


def _python_burst_producer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    send, send_many = _python_sender(job, endpoint)
    make = _record_packer()
    mono = time.monotonic_ns
    switches = _go(barrier)
    t_start = 0
    if job.batch > 1 and send_many is not None:
        seq = 0
        for start, end in ((0, job.n_warm), (job.n_warm, job.n_warm + job.n)):
            if start == job.n_warm:
                t_start = mono()
            seq = start
            while seq < end:
                count = min(job.batch, end - seq)
                send_many([make(seq + k, 0) for k in range(count)])
                seq += count
    else:
        for i in range(job.n_warm):
            send(make(i, 0))
        t_start = mono()
        for i in range(job.n_warm, job.n_warm + job.n):
            send(make(i, 0))
    return {"preempted": _switches() - switches, "status": ST_OK, "t_start": t_start, "t_end": mono()}


def _python_burst_consumer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    get, get_many = _python_receiver(job, endpoint, yield_mode)
    unpack = _REC.unpack
    mono = time.monotonic_ns
    errors = 0
    switches = _go(barrier)
    t_first = 0
    if job.batch > 1 and get_many is not None:
        for start, end in ((0, job.n_warm), (job.n_warm, job.n_warm + job.n)):
            if start == job.n_warm:
                t_first = mono()
            seq = start
            while seq < end:
                for msg in get_many(end - seq):
                    if unpack(msg)[I_UPDATE_ID] != seq:
                        errors += 1
                    seq += 1
    else:
        for i in range(job.n_warm + job.n):
            if i == job.n_warm:
                t_first = mono()
            if unpack(get())[I_UPDATE_ID] != i:
                errors += 1
    return {
        "preempted": _switches() - switches,
        "status": ST_OK if errors == 0 else ST_SEQUENCE,
        "t_first": t_first,
        "t_end": mono(),
    }


def _attach_ring(job: Job) -> Ring:
    return Ring.attach(job.ring_name, MD_EVENT, ("bench",), capacity=job.capacity, generation=job.generation)


def _ring_latency_producer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    ring = _attach_ring(job)
    times = np.zeros(2, np.int64)
    ctrl, slots = _scratch_ring(job.capacity)
    ring_latency_producer(ctrl, slots, 16, min(256, job.capacity // 2), 100, STALL_NS, yield_mode, times)
    switches = _go(barrier)
    status = ring_latency_producer(ring.ctrl, ring.slots, job.n_warm, job.n, job.gap_ns, STALL_NS, yield_mode, times)
    ring.region.close()
    return {
        "preempted": _switches() - switches,
        "status": int(status),
        "t_first": int(times[0]),
        "t_last": int(times[1]),
    }


def _ring_latency_consumer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    ring = _attach_ring(job)
    ring.claim_consumer(0)
    warm = min(512, job.capacity // 2)
    ctrl, slots = _scratch_published(job.capacity, warm)
    ring_latency_consumer(ctrl, slots, 0, 16, np.zeros(warm - 16, np.int64), STALL_NS, yield_mode)
    lat = np.zeros(job.n, np.int64)
    lat[:] = 1  # fault the pages in before the clock starts
    switches = _go(barrier)
    status = ring_latency_consumer(ring.ctrl, ring.slots, 0, job.n_warm, lat, STALL_NS, yield_mode)
    ring.region.close()
    return {"preempted": _switches() - switches, "status": int(status), "lat": lat}


def _ring_burst_producer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    ring = _attach_ring(job)
    staging = np.zeros(max(job.batch, 1), MD_EVENT)
    times = np.zeros(2, np.int64)
    ctrl, slots = _scratch_ring(job.capacity)
    ring_burst_producer(
        ctrl, slots, staging, job.copy_api, 64, min(1024, job.capacity // 2), job.batch, STALL_NS, yield_mode, times
    )
    switches = _go(barrier)
    status = ring_burst_producer(
        ring.ctrl, ring.slots, staging, job.copy_api, job.n_warm, job.n, job.batch, STALL_NS, yield_mode, times
    )
    stats = ring.stats()
    ring.region.close()
    return {
        "preempted": _switches() - switches,
        "status": int(status),
        "t_start": int(times[0]),
        "t_end": int(times[1]),
        "publishes": stats["publishes"],
    }


def _ring_burst_consumer(job: Job, endpoint: Any, barrier: Any, yield_mode: bool) -> dict:
    ring = _attach_ring(job)
    ring.claim_consumer(0)
    out = np.zeros(max(job.batch, 1), MD_EVENT)
    times = np.zeros(3, np.int64)
    warm = min(1024, job.capacity // 2)
    ctrl, slots = _scratch_published(job.capacity, warm)
    ring_burst_consumer(ctrl, slots, 0, out, job.copy_api, 64, warm - 64, job.batch, STALL_NS, yield_mode, times)
    switches = _go(barrier)
    status = ring_burst_consumer(
        ring.ctrl, ring.slots, 0, out, job.copy_api, job.n_warm, job.n, job.batch, STALL_NS, yield_mode, times
    )
    ring.region.close()
    return {
        "preempted": _switches() - switches,
        "status": int(status),
        "t_first": int(times[0]),
        "t_end": int(times[1]),
    }


_SIDES: dict[tuple[str, str, str], Callable[[Job, Any, Any, bool], dict]] = {
    ("ring", "latency", "producer"): _ring_latency_producer,
    ("ring", "latency", "consumer"): _ring_latency_consumer,
    ("ring", "throughput", "producer"): _ring_burst_producer,
    ("ring", "throughput", "consumer"): _ring_burst_consumer,
    ("python", "latency", "producer"): _python_latency_producer,
    ("python", "latency", "consumer"): _python_latency_consumer,
    ("python", "throughput", "producer"): _python_burst_producer,
    ("python", "throughput", "consumer"): _python_burst_consumer,
}


def _pin(core: int | None) -> list[int]:
    """Pin the calling thread (the process's only thread so far) to ``core``; return the resulting affinity."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    return sorted(os.sched_getaffinity(0))


def _worker(
    role: str,
    core: int | None,
    jobs: list[Job],
    endpoints: dict[str, Any],
    barrier: Any,
    results: Any,
    yield_mode: bool,
) -> None:
    """Run one side of every job in order and report each outcome on ``results`` (a spawned process's target)."""
    affinity = _pin(core)  # first: before any thread (mp.Queue feeder) exists
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    for job in jobs:
        family = "ring" if job.transport == "ring" else "python"
        try:
            out = _SIDES[(family, job.measure, role)](job, endpoints.get(job.key), barrier, yield_mode)
        except threading.BrokenBarrierError:
            results.put((job.key, role, {"status": None, "error": "the other side failed (barrier broken)"}))
            return
        except Exception as exc:  # reported in the JSON; the other side is released and the family stops
            with contextlib.suppress(Exception):
                barrier.abort()
            results.put((job.key, role, {"status": None, "error": f"{type(exc).__name__}: {exc}"}))
            return
        out["affinity"] = affinity
        out["pid"] = os.getpid()
        results.put((job.key, role, out))


# ================================================================================================ parent side


@dataclass
class Plan:
    """What to run: resolved counts, pacing and cores."""

    records: int
    quick: bool
    gap_ns: int
    producer_core: int | None
    consumer_core: int | None
    yield_mode: bool
    transports: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


def _warm_count(n: int) -> int:
    return int(min(10_000, max(100, n // 20)))


def _family_jobs(plan: Plan, transport: str) -> list[Job]:
    """Return the jobs of one transport family (one producer/consumer process pair runs them all)."""
    n = plan.records
    gap = plan.gap_ns
    warm = _warm_count(n)
    if transport == "ring":
        jobs = [
            Job(name="ring", label="shm ring (numba, busy-spin)", transport="ring", measure="latency", n=n,
                n_warm=warm, gap_ns=gap, capacity=RING_CAPACITY),
        ]  # fmt: skip
        for name, label, factor, batch, copy_api in (
            ("ring_batched", f"shm ring batched {BATCH} (claim/commit, in place)", RING_BATCHED_FACTOR, BATCH, False),
            ("ring_batched_copy", f"shm ring batched {BATCH} (try_publish/ring_read)", RING_BATCHED_FACTOR, BATCH,
             True),
            ("ring_unbatched", "shm ring unbatched (1 per publish)", RING_UNBATCHED_FACTOR, 1, False),
        ):  # fmt: skip
            count = n * factor
            jobs.append(
                Job(name=name, label=label, transport="ring", measure="throughput", n=count,
                    n_warm=min(count // 10, 1_000_000), batch=batch, copy_api=copy_api, capacity=RING_CAPACITY)
            )  # fmt: skip
        return jobs
    if transport == "faster_fifo":
        batched = n * FIFO_BATCHED_FACTOR
        return [
            Job(name="faster_fifo_spin", label="faster-fifo (get_nowait spin)", transport="faster_fifo",
                measure="latency", n=n, n_warm=warm, gap_ns=gap, receive="spin"),
            Job(name="faster_fifo_blocking", label="faster-fifo (blocking get)", transport="faster_fifo",
                measure="latency", n=n, n_warm=warm, gap_ns=gap, receive="blocking"),
            Job(name="faster_fifo_batched", label=f"faster-fifo put_many/get_many {BATCH}", transport="faster_fifo",
                measure="throughput", n=batched, n_warm=_warm_count(batched), batch=BATCH),
            Job(name="faster_fifo", label="faster-fifo put/get_nowait (1 per call)", transport="faster_fifo",
                measure="throughput", n=n * PY_UNBATCHED_FACTOR, n_warm=warm, receive="spin"),
        ]  # fmt: skip
    if transport == "mp_queue":
        n_lat = max(100, n // MP_QUEUE_SHARE)
        mpq_gap = max(MP_QUEUE_GAP_NS, gap)
        note = (
            f"{n_lat} records (N/{MP_QUEUE_SHARE}), paced with time.sleep every {mpq_gap // 1000} µs: "
            "a busy-waiting sender starves the feeder thread of the GIL"
        )
        return [
            Job(name="mp_queue", label="multiprocessing.Queue (blocking get)", transport="mp_queue",
                measure="latency", n=n_lat, n_warm=_warm_count(n_lat), gap_ns=mpq_gap, pacing="sleep",
                receive="blocking", notes=(note,)),
            Job(name="mp_queue", label="multiprocessing.Queue", transport="mp_queue", measure="throughput",
                n=n * PY_UNBATCHED_FACTOR, n_warm=warm, receive="blocking"),
        ]  # fmt: skip
    if transport == "pipe":
        return [
            Job(name="pipe", label="multiprocessing.Pipe (send_bytes/recv_bytes)", transport="pipe",
                measure="latency", n=n, n_warm=warm, gap_ns=gap, receive="blocking"),
            Job(name="pipe", label="multiprocessing.Pipe", transport="pipe", measure="throughput",
                n=n * PY_UNBATCHED_FACTOR, n_warm=warm, receive="blocking"),
        ]  # fmt: skip
    raise ValueError(f"unknown transport {transport!r}")


def _latency_summary(job: Job, lat: np.ndarray, producer: dict) -> dict:
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
    tenth = max(1, lat.size // 10)
    first_med = float(np.median(lat[:tenth]))
    drift = float(np.median(lat[-tenth:]) / first_med) if first_med > 0 else None
    achieved_gap = None
    if job.n > 1 and producer.get("t_last", 0) > producer.get("t_first", 0):
        achieved_gap = (producer["t_last"] - producer["t_first"]) / (job.n - 1)
    return {
        "label": job.label,
        "n": int(lat.size),
        "warmup_records": job.n_warm,
        "gap_ns": job.gap_ns,
        "pacing": job.pacing,
        "achieved_gap_ns": round(achieved_gap, 1) if achieved_gap else None,
        "p50_ns": float(p50),
        "p99_ns": float(p99),
        "p999_ns": float(p999),
        "max_ns": int(lat.max()),
        "min_ns": int(lat.min()),
        "mean_ns": float(lat.mean()),
        "over_10us": int(np.count_nonzero(lat > 10_000)),
        "drift_last_over_first_decile_p50": round(drift, 3) if drift else None,
        "notes": list(job.notes),
    }


def _throughput_summary(job: Job, producer: dict, consumer: dict) -> dict:
    seconds = (consumer["t_end"] - producer["t_start"]) / 1e9
    out = {
        "label": job.label,
        "n": job.n,
        "warmup_records": job.n_warm,
        "batch": job.batch,
        "seconds": round(seconds, 6),
        "records_per_s": job.n / seconds if seconds > 0 else None,
        "notes": list(job.notes),
    }
    if job.transport == "ring":
        out["api"] = "ring_try_publish + ring_read" if job.copy_api else "ring_claim/ring_commit + in-place read"
        publishes = producer.get("publishes") or 0
        out["records_per_publish"] = round((job.n + job.n_warm) / publishes, 1) if publishes else None
    return out


def _endpoints(ctx: Any, jobs: list[Job]) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """Create each job's transport object; return producer ends, consumer ends, and what the parent must close."""
    prod: dict[str, Any] = {}
    cons: dict[str, Any] = {}
    to_close: list[Any] = []
    for job in jobs:
        key = job.key
        if job.transport == "faster_fifo":
            q = faster_fifo.Queue(max_size_bytes=FIFO_BYTES)
            prod[key] = cons[key] = q
        elif job.transport == "mp_queue":
            q = ctx.Queue()
            prod[key] = cons[key] = q
        elif job.transport == "pipe":
            reader, writer = ctx.Pipe(duplex=False)
            prod[key], cons[key] = writer, reader
            to_close += [reader, writer]
    return prod, cons, to_close


def _run_family(ctx: Any, plan: Plan, jobs: list[Job], log: Callable[[str], None]) -> dict[tuple[str, str], dict]:
    """Start the producer and consumer processes for ``jobs``; return ``{(job key, role): outcome}``."""
    prod_ends, cons_ends, to_close = _endpoints(ctx, jobs)
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = {
        "consumer": ctx.Process(
            target=_worker,
            name=f"ipcbench-{jobs[0].transport}-consumer",
            daemon=True,
            args=("consumer", plan.consumer_core, jobs, cons_ends, barrier, results, plan.yield_mode),
        ),
        "producer": ctx.Process(
            target=_worker,
            name=f"ipcbench-{jobs[0].transport}-producer",
            daemon=True,
            args=("producer", plan.producer_core, jobs, prod_ends, barrier, results, plan.yield_mode),
        ),
    }
    outcomes: dict[tuple[str, str], dict] = {}
    expected = {(job.key, role) for job in jobs for role in procs}
    budget_s = 120.0 + sum(_job_budget_s(job) for job in jobs)
    deadline = time.monotonic() + budget_s
    try:
        for proc in procs.values():
            proc.start()
        for conn in to_close:  # the children hold their own ends: EOF reaches a reader if its writer dies
            conn.close()
        dead_since: float | None = None
        while expected - outcomes.keys():
            if time.monotonic() > deadline:
                for key in expected - outcomes.keys():
                    outcomes[key] = {"status": None, "error": f"timed out after {budget_s:.0f} s"}
                break
            try:
                name, role, out = results.get(timeout=0.25)
                outcomes[(name, role)] = out
                if out.get("error"):
                    log(f"  {name} {role}: {out['error']}")
                continue
            except queue.Empty:
                pass
            missing = expected - outcomes.keys()
            gone = [
                role for role, proc in procs.items() if proc.exitcode is not None and any(r == role for _, r in missing)
            ]
            if gone:
                dead_since = dead_since or time.monotonic()
                if time.monotonic() - dead_since > 3.0:  # results still in flight had their chance
                    codes = ", ".join(f"{role} exit code {procs[role].exitcode}" for role in gone)
                    for key in missing:
                        outcomes[key] = {"status": None, "error": f"process ended without reporting ({codes})"}
                    break
    finally:
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc in procs.values():
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        results.close()
        results.cancel_join_thread()
    return outcomes


def _job_budget_s(job: Job) -> float:
    if job.measure == "latency":
        per = (job.gap_ns + (200_000 if job.pacing == "sleep" else 50_000)) / 1e9
        return (job.n + job.n_warm) * per
    return (job.n + job.n_warm) / (1e6 if job.transport == "ring" else 2e4)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _machine(plan: Plan) -> dict:
    clock = np.zeros(100_000, np.int64)
    clock_read_cost(clock[:100])
    clock_read_cost(clock)
    mono = time.monotonic_ns
    py = np.array([-(mono() - mono()) for _ in range(100_000)], dtype=np.int64)
    pinned = plan.producer_core is not None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "faster_fifo": _version("faster-fifo"),
        "clocksource": _read_text("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "clock_read_ns_p50": {"numba": float(np.median(clock)), "python": float(np.median(py))},
        "loadavg_at_start": list(os.getloadavg()),
        "pinning": {
            "pinned": pinned,
            "producer_core": plan.producer_core,
            "consumer_core": plan.consumer_core,
            "wait": "sched_yield (single CPU)" if plan.yield_mode else "busy-spin (pause)",
            "note": None if pinned else "only one CPU available: producer and consumer run unpinned on it",
        },
    }


def _ratio(num: dict | None, den: dict | None, key: str) -> float | None:
    if not num or not den or not den.get(key):
        return None
    return num[key] / den[key]


def run_benchmark(plan: Plan, log: Callable[[str], None]) -> dict:
    """Run every job of every requested transport family and return the report (shared memory cleaned up)."""
    started = time.monotonic()
    ctx = mp.get_context("spawn")
    instance = f"ipcbench{os.getpid()}{secrets.token_hex(3)}"
    report: dict[str, Any] = {
        "benchmark": "ipc",
        "schema": 1,
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            "records": plan.records,
            "quick": plan.quick,
            "record_bytes": RECORD_BYTES,
            "gap_ns": plan.gap_ns,
            "mp_queue_gap_ns": MP_QUEUE_GAP_NS,
            "ring_capacity": RING_CAPACITY,
            "batch": BATCH,
            "transports": list(plan.transports),
            "start_method": "spawn",
        },
        "machine": _machine(plan),
        "latency": {},
        "throughput": {},
        "errors": {},
        "notes": list(plan.notes),
    }
    created: list[Ring] = []
    names: list[str] = []
    try:
        for transport in plan.transports:
            if transport == "faster_fifo" and faster_fifo is None:
                report["notes"].append("faster-fifo is not installed: its baseline was skipped")
                continue
            jobs = _family_jobs(plan, transport)
            if transport == "ring":
                generation = secrets.randbits(31)
                resolved = []
                for job in jobs:
                    name = segment_name(instance, f"bench.{job.name}")
                    names.append(name)
                    created.append(Ring.create(name, MD_EVENT, job.capacity, POLICY_BLOCK, ("bench",), generation))
                    resolved.append(replace(job, ring_name=name, generation=generation))
                jobs = resolved
            log(f"running {transport}: " + ", ".join(f"{j.name} {j.measure} ({j.n:,})" for j in jobs))
            t0 = time.monotonic()
            outcomes = _run_family(ctx, plan, jobs, log)
            log(f"  done in {time.monotonic() - t0:.1f} s")
            for job in jobs:
                key = job.key
                producer = outcomes.get((key, "producer"), {"status": None, "error": "no result"})
                consumer = outcomes.get((key, "consumer"), {"status": None, "error": "no result"})
                problems = [
                    f"{role}: {out.get('error') or STATUS_TEXT.get(out['status'], out['status'])}"
                    for role, out in (("producer", producer), ("consumer", consumer))
                    if out.get("status") != ST_OK
                ]
                if problems:
                    report["errors"][key] = problems
                    continue
                if job.measure == "latency":
                    entry = report["latency"][job.name] = _latency_summary(job, consumer["lat"], producer)
                else:
                    entry = report["throughput"][job.name] = _throughput_summary(job, producer, consumer)
                entry["preempted"] = {"producer": producer.get("preempted"), "consumer": consumer.get("preempted")}
                if transport == "ring" and job.measure == "latency":
                    report["machine"]["pinning"]["producer_affinity"] = producer.get("affinity")
                    report["machine"]["pinning"]["consumer_affinity"] = consumer.get("affinity")
            for ring in created:
                ring.region.close()
                ring.region.unlink()
            created.clear()
    finally:
        for ring in created:
            with contextlib.suppress(Exception):
                ring.region.close()
            with contextlib.suppress(Exception):
                ring.region.unlink()
        for name in names:
            remove_segment(name)  # idempotent: covers a create interrupted half-way
    _add_verdicts(report)
    report["duration_s"] = round(time.monotonic() - started, 2)
    report["machine"]["loadavg_at_end"] = list(os.getloadavg())
    return report


def _add_verdicts(report: dict) -> None:
    lat = report["latency"]
    thr = report["throughput"]
    ring = lat.get("ring")
    report["ratios"] = {
        "faster_fifo_spin_p50_over_ring_p50": _ratio(lat.get("faster_fifo_spin"), ring, "p50_ns"),
        "faster_fifo_blocking_p50_over_ring_p50": _ratio(lat.get("faster_fifo_blocking"), ring, "p50_ns"),
        "mp_queue_p50_over_ring_p50": _ratio(lat.get("mp_queue"), ring, "p50_ns"),
        "pipe_p50_over_ring_p50": _ratio(lat.get("pipe"), ring, "p50_ns"),
        "ring_batched_over_faster_fifo_batched_throughput": _ratio(
            thr.get("ring_batched"), thr.get("faster_fifo_batched"), "records_per_s"
        ),
    }
    fifo_ratio = report["ratios"]["faster_fifo_spin_p50_over_ring_p50"]
    batched = thr.get("ring_batched", {}).get("records_per_s")
    report["targets"] = {
        "ring_p50_below_500ns": {
            "value_ns": ring["p50_ns"] if ring else None,
            "target_ns": TARGET_RING_P50_NS,
            "met": (ring["p50_ns"] < TARGET_RING_P50_NS) if ring else None,
        },
        "ring_p50_20x_below_faster_fifo": {
            "value": fifo_ratio,
            "target": TARGET_FIFO_OVER_RING,
            "compared_with": "faster-fifo get_nowait spin",
            "met": (fifo_ratio >= TARGET_FIFO_OVER_RING) if fifo_ratio is not None else None,
        },
        "ring_batched_above_20M_per_s": {
            "value_per_s": batched,
            "target_per_s": TARGET_RING_BATCHED_RATE,
            "met": (batched > TARGET_RING_BATCHED_RATE) if batched is not None else None,
        },
    }


# ================================================================================================ output


_ROWS = (  # (latency key, throughput key) shown on one line
    ("ring", "ring_unbatched"),
    (None, "ring_batched"),
    (None, "ring_batched_copy"),
    ("faster_fifo_spin", "faster_fifo"),
    ("faster_fifo_blocking", None),
    (None, "faster_fifo_batched"),
    ("pipe", "pipe"),
    ("mp_queue", "mp_queue"),
)


def format_table(report: dict) -> str:
    """Return the human-readable table, ratio lines and target verdicts."""
    lat, thr = report["latency"], report["throughput"]
    m = report["machine"]
    pin = m["pinning"]
    lines = [
        f"ipc benchmark: {m['cpu_model']}, {m['cpu_count']} CPUs, python {m['python']}, numba {m['numba']}, "
        f"clock {m['clocksource']} (read {m['clock_read_ns_p50']['numba']:.0f} ns numba / "
        f"{m['clock_read_ns_p50']['python']:.0f} ns python)",
        (
            f"pinned: producer core {pin['producer_core']}, consumer core {pin['consumer_core']}"
            if pin["pinned"]
            else f"NOT pinned: {pin['note']}"
        )
        + f"; paced gap {report['config']['gap_ns'] / 1000:g} µs; load at start {m['loadavg_at_start'][0]:.2f}",
        "",
        f"{'transport':48} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'max µs':>9} {'n':>8} {'M rec/s':>8}"
        f"  throughput mode",
    ]
    for lat_key, thr_key in _ROWS:
        row_lat = lat.get(lat_key) if lat_key else None
        row_thr = thr.get(thr_key) if thr_key else None
        if row_lat is None and row_thr is None:
            continue
        label = (row_lat or row_thr)["label"]
        if row_lat:
            cells = (
                f"{row_lat['p50_ns'] / 1e3:8.3f} {row_lat['p99_ns'] / 1e3:8.3f} "
                f"{row_lat['p999_ns'] / 1e3:9.2f} {row_lat['max_ns'] / 1e3:9.1f} {row_lat['n']:8d}"
            )
        else:
            cells = f"{'-':>8} {'-':>8} {'-':>9} {'-':>9} {'-':>8}"
        if row_thr and row_thr.get("records_per_s"):
            mode = f"{row_thr['n']:,} rec" if row_thr["label"] == label else f"{row_thr['label']}, {row_thr['n']:,} rec"
            rate = f"{row_thr['records_per_s'] / 1e6:8.3f}  {mode}"
        else:
            rate = f"{'-':>8}"
        lines.append(f"{label:48} {cells} {rate}")
    lines.append("")
    ratios = report["ratios"]
    for key, text in (
        ("faster_fifo_spin_p50_over_ring_p50", "faster-fifo (spin) p50 / ring p50"),
        ("faster_fifo_blocking_p50_over_ring_p50", "faster-fifo (blocking) p50 / ring p50"),
        ("mp_queue_p50_over_ring_p50", "mp.Queue p50 / ring p50"),
        ("pipe_p50_over_ring_p50", "Pipe p50 / ring p50"),
    ):
        value = ratios.get(key)
        if value is None:
            lines.append(f"{text:40} {'n/a':>8}")
        else:
            lines.append(f"{text:40} {value:8.1f}x" if value >= 1 else f"{text:40} {value:8.3f}x")
    targets = report["targets"]

    def verdict(entry: dict) -> str:
        return {True: "MET", False: "NOT MET", None: "n/a"}[entry["met"]]

    t1, t2, t3 = (
        targets["ring_p50_below_500ns"],
        targets["ring_p50_20x_below_faster_fifo"],
        targets["ring_batched_above_20M_per_s"],
    )
    lines += [
        "",
        "targets:",
        f"  ring p50 < 0.5 µs                          {verdict(t1):8} "
        + (f"({t1['value_ns'] / 1e3:.3f} µs)" if t1["value_ns"] is not None else ""),
        f"  ring p50 >= 20x below faster-fifo (spin)   {verdict(t2):8} "
        + (f"({t2['value']:.1f}x)" if t2["value"] is not None else ""),
        f"  ring batched throughput > 20 M rec/s       {verdict(t3):8} "
        + (f"({t3['value_per_s'] / 1e6:.1f} M/s)" if t3["value_per_s"] is not None else ""),
    ]
    notes = list(report["notes"])
    for section in (lat, thr):
        for key, entry in section.items():
            notes += [f"{key}: {note}" for note in entry.get("notes", [])]
            drift = entry.get("drift_last_over_first_decile_p50")
            if drift is not None and drift > 3:
                notes.append(
                    f"{key}: p50 of the last tenth is {drift:.1f}x the first tenth: records queued "
                    "(the transport is slower than the pacing) or the machine got busier"
                )
    preempted = [
        f"{key} {entry['preempted']['producer']}/{entry['preempted']['consumer']}"
        for section in (lat, thr)
        for key, entry in section.items()
        if (entry.get("preempted", {}).get("producer") or 0) + (entry.get("preempted", {}).get("consumer") or 0)
    ]
    if preempted:
        notes.append(
            "involuntary context switches in the timed parts, producer/consumer (other tasks ran on the "
            "benchmark's cores; tails and queueing follow): " + ", ".join(preempted)
        )
    for key, problems in report["errors"].items():
        notes.append(f"ERROR {key}: {'; '.join(problems)}")
    if notes:
        lines += ["", "notes:"] + [f"  - {note}" for note in notes]
    load_end = report["machine"].get("loadavg_at_end", [float("nan")])[0]
    lines.append(f"\ntotal {report['duration_s']:.1f} s; 1-min load average at end {load_end:.2f}")
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value).__name__)


def _plan(args: argparse.Namespace) -> Plan:
    records = args.records or (QUICK_RECORDS if args.quick else DEFAULT_RECORDS)
    if records < 10:
        raise SystemExit("--records must be at least 10")
    available = sorted(os.sched_getaffinity(0))
    notes: list[str] = []
    if args.cores:
        producer_core, consumer_core = (int(c) for c in args.cores.split(","))
        missing = {producer_core, consumer_core} - set(available)
        if missing or producer_core == consumer_core:
            raise SystemExit(f"--cores must name two different CPUs among {available}")
    elif len(available) >= 2:
        producer_core, consumer_core = available[0], available[1]
    else:
        producer_core = consumer_core = None
        notes.append("only one CPU available: ran unpinned with sched_yield waits; latencies measure the scheduler")
    transports = tuple(t.strip() for t in args.transports.split(",") if t.strip())
    unknown = set(transports) - {"ring", "faster_fifo", "pipe", "mp_queue"}
    if unknown:
        raise SystemExit(f"unknown transports {sorted(unknown)}")
    return Plan(
        records=records,
        quick=args.quick,
        gap_ns=args.gap_ns,
        producer_core=producer_core,
        consumer_core=consumer_core,
        yield_mode=producer_core is None,
        transports=transports,
        notes=notes,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table and the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help=f"latency samples per fast transport (default {DEFAULT_RECORDS:,}, --quick "
        f"{QUICK_RECORDS:,}); mp.Queue latency uses N/{MP_QUEUE_SHARE}; throughput uses "
        f"{RING_BATCHED_FACTOR}N (ring batched), {RING_UNBATCHED_FACTOR}N (ring unbatched), "
        f"{FIFO_BATCHED_FACTOR}N (faster-fifo batched), N (the others)",
    )
    parser.add_argument("--quick", action="store_true", help=f"~15 s run: N = {QUICK_RECORDS:,}")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON document on stdout")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON document to this file")
    parser.add_argument("--gap-ns", type=int, default=DEFAULT_GAP_NS, help="pacing of the latency runs")
    parser.add_argument("--cores", default=None, help="producer,consumer CPUs (default: the first two available)")
    parser.add_argument(
        "--transports",
        default="ring,faster_fifo,pipe,mp_queue",
        help="comma-separated subset of ring,faster_fifo,pipe,mp_queue",
    )
    args = parser.parse_args(argv)
    plan = _plan(args)

    def log(text: str) -> None:
        if not args.json_only:
            print(text, file=sys.stderr, flush=True)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwind through the finally blocks: children terminated, segments unlinked

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        report = run_benchmark(plan, log)
    except KeyboardInterrupt:
        print("interrupted: worker processes terminated, shared memory unlinked", file=sys.stderr)
        return 130
    document = json.dumps(report, indent=2, default=_json_default)
    if args.json_out:
        args.json_out.write_text(document + "\n")
    if args.json_only:
        print(document)
    else:
        print(format_table(report))
        print()
        print(document)
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
