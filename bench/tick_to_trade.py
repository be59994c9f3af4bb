"""Tick-to-trade benchmark: the whole pipeline driven by the simulator at fixed rates and by a recording, with
the same hops carried by faster-fifo and multiprocessing.Queue as baselines, in one run.

Usage::

    python bench/tick_to_trade.py                        # full run: 1k, 10k, 50k events/s x 10 s, replay, baselines
    python bench/tick_to_trade.py --quick                # smoke run: 1k events/s for 2 s, no replay (~30 s)
    python bench/tick_to_trade.py --rates 2000,20000 --duration 20 --json-out tt.json
    python bench/tick_to_trade.py --json-only > tt.json
    python bench/tick_to_trade.py --rates 1000,10000 --placements feed-own-core --skip-baselines --no-replay

Part 1, the pipeline (``hft run`` as a subprocess, exactly as users start it: supervisor, simulator, feed,
strategy, broker, persistence; feed and persistence pinned to core 0, strategy and broker to core 1, the
default placement). Per rate of ``--rates`` (the simulator's ``source.sim_events_per_second``) one run with a
config that trades often: the integration test's ``TRADING_CONFIG`` strategy (min_confidence 0.5, holding
100-300 ms), ``broker.entry_latency_us = 0`` (so tick-to-broker is the pipeline's, not a simulated delay),
pre-trade risk's order-rate limit raised to 1,000/s (decisions, not denials, are timed) and the Prometheus
endpoint on a free port. The bench waits until the strategy evaluates ticks, lets ``--warmup`` seconds pass, takes
a reading of every process's counters and histograms (``hft.stats.collect``: the reading ``hft stats --json``
prints, from a read-only mapping), samples RSS and CPU of every process each ``SAMPLE_S``, takes a last reading
after ``--duration`` seconds, then stops the run with SIGINT (a clean staged stop) and reads its ``--json``
summary. Latency figures are the *difference* of the two readings' histograms, so they cover the measured
window only:

* frame-to-order: the strategy's histogram 0, frame received by the feed (``ts_recv`` after ``recv``) -> order
  on the strategy.orders ring;
* tick-to-broker: the broker's histograms, order on the ring -> its first execution report (``order_to_exec``)
  and frame received -> that report (``tick_to_exec``);
* feed frame -> published and the md.events hop alone (feed's histogram 0, strategy's histogram 1), to tell
  where the time goes;
* md.events overruns/lost per consumer (cumulative, from the last reading), back-pressure waits of the block
  rings, feed reconnects;
* VmRSS / VmHWM (``/proc/<pid>/status``) and CPU share of the supervisor, simulator and the four workers;
* the simulator's own counters (``GET /sim/stats`` at both readings): events and frames made and sent per
  second, slow-client disconnects.

Wire-to-order: the bench turns on the opt-in wire clock (``HFT_SIM_STAMP_SEND=1``: the simulator writes the
CLOCK_MONOTONIC time of each frame's socket write into the frame, ``hft.sim.server``; ``HFT_FEED_WIRE_CLOCK=DIR``:
the feed maps each frame's ``ts_recv`` to that stamp and writes the map at exit, ``hft.feed.wireclock``). Every
order carries ``ts_tick_recv`` = the ``ts_recv`` of its frame and persistence stores it with ``ts_init`` in the
run's SQLite ``orders`` table, so per order: wire-to-order = ``ts_init - send_ns`` and frame-to-order =
``ts_init - ts_tick_recv`` (both CLOCK_MONOTONIC, exact per order, not bucketed), and wire-to-receive for every
frame of the window (how far behind the stream the feed runs). ``--no-wire-clock`` runs without it.

Wire -> order by segment (issue 14), every stamped frame of the window: the simulator's stamp -> its socket write
returned (``GET /sim/stats`` ``send_write_ns``, per write), send -> the feed's socket read returned (the write,
loopback and the feed's wake-up), read -> frame complete (framing, and the frames of the same read decoded
before it), frame -> published (decode and publication), and per order published -> order (the md.events hop
and the strategy). The floor beside it: after each pipeline run, ``bench/wire_floor.py`` reads the same
simulator configuration's frames over a plain socket (no WebSocket library, one receive per readable event),
pinned to the feed's core and waiting like the feed; send -> plain read is what the machine costs, and the feed's
path is reported as ``send -> published / (floor send -> read + frame -> published)`` at p50.

Placements (``--placements``, default both): ``default`` (the product's 2-core defaults, simulator unpinned) and
``feed-own-core`` (the feed alone on core 0 busy polling its socket; strategy, broker, persistence and the
simulator on core 1).
"Sustained" for a rate means: no md.events overrun or lost record for any consumer and no feed reconnect (the
simulator drops a client that falls 50,000 frames behind); the report also says whether the feed kept up with
the wire (wire-to-receive p99 under ``KEPT_UP_NS``).

``--source replay FILE`` (default: the shared recording, skipped with a note when absent or in ``--quick``): the
same pipeline on a recorded file, lock step, as fast as possible; the run ends at the end of the file, so its
figures come from the run's summary (strategy's ``tick_to_order`` and broker's ``tick_to_exec`` over the whole
run) and from the last reading taken while it ran (the broker's ``order_to_exec``, rings, RSS).

Part 2, the baselines: "the same pipeline with its hops carried by faster-fifo queues and by
multiprocessing.Queue". Re-wiring the product's processes onto queues would change the product, so a bench-only
three-process chain stands in for it and is run three times, changing only what carries its two hops:

* feed side (core 0): the real ``hft.feed.FeedEngine`` decoding simulator frames (``OrderFlowModel``, default
  symbols, books synced from its REST snapshot first), one frame every ``--chain-gap-us`` plus the sleep's
  overshoot (paced with ``time.sleep``, which also lets mp.Queue's feeder thread run), ``ts_recv`` stamped just
  before ``on_frame`` as the feed process does;
* strategy side (core 1): on every complete frame that changed a book, the real per-tick work of
  ``hft.strategy.loop._evaluate`` minus risk and position keeping (``update_window_features``, the 14 feature
  kernels ``on_book``, ``on_trade`` on trades, ``imbalance_signal``), then one order per such frame (whatever the
  signal says: every frame is a sample), stamped ``ts_init`` = order handed to the hop;
* broker side (core 1): takes each order and stamps its arrival (the acknowledgement): frame-to-broker.

Hops: (a) ``ring``: the product's own shared memory, i.e. ``hft.feed.publish.publish_frame`` (seqlock snapshots, then
the frame's events on md.events) and a jitted strategy loop reading md.events and the seqlock, publishing on
strategy.orders, and a jitted broker loop reading it, all waiting like the product (``spin-yield``);
(b) ``faster_fifo``: ``faster_fifo.Queue`` (``put`` / spinning ``get_nowait`` with ``sched_yield`` when empty);
(c) ``mp_queue``: ``multiprocessing.Queue`` (``put`` / blocking ``get``). For the queues the feed side sends one
message per frame (changed snapshot rows + the frame's events as bytes) and the strategy side unpacks it into
the same arrays and calls the same jitted per-frame function once. Differences from ``hft run``: no websocket
(frames come from memory), no pre-trade risk, one order per changed book instead of per signal, no execution
reports back, no persistence; the ring chain's strategy and broker loops are bench copies of the product's (same
ring and seqlock calls). The chain's frames are the simulator's depthUpdate frames only (the simulator's
default mix, 2,000 events/s, 100 ms diffs of ~60 levels): trades and bookTickers never change the book the
strategy evaluates, so they make no order in the product either. Frame-to-order, frame-to-broker and the feed
side's frame-to-handed-over are measured per sample (CLOCK_MONOTONIC, not bucketed) after ``CHAIN_WARM``
discarded frames.

Targets (issue 6): frame-to-order p50 < 10 µs and p99 < 50 µs; at least 10x better than the
multiprocessing.Queue wiring at p50 and p99 (chain ``ring`` against chain ``mp_queue``).

Output: a readable table and a JSON document (``--json-only``: the JSON alone; ``--json-out FILE``). Shared
memory of the chain is created here (the bench plays the supervisor, instance ``ttbench<pid>...``) and unlinked
in a ``finally``; the pipeline runs use instance names ``ttrun<pid>...`` and unlink their own. Run it on a quiet
machine: 2 cores shared with other work make every tail a measure of that work.
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
import secrets
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # allow `python bench/tick_to_trade.py` without PYTHONPATH
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from hft.config import Config, decimal_to_fixed  # noqa: E402
from hft.feed.engine import FeedEngine, SymbolSpec  # noqa: E402
from hft.feed.wireclock import WIRE_CLOCK_ENV, load_wire_clock  # noqa: E402
from hft.strategy.kernels import (  # noqa: E402
    F_MOMENTUM,
    F_VOLATILITY,
    configure_symbol,
    make_features,
    make_kernel_params,
    make_kernel_state,
    on_book,
    on_trade,
)
from hft.strategy.signal import N_PARAMS, imbalance_signal  # noqa: E402
from shm_layout.atomics import monotonic_ns  # noqa: E402
from shm_layout.counters import bucket_lower_bound, hist_row, hist_summary  # noqa: E402
from shm_layout.layout import (  # noqa: E402
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_BROKER,
    PROC_FEED,
    PROC_STRATEGY,
    PROCESS_NAMES,
    Pipeline,
)
from shm_layout.records import (  # noqa: E402
    BOOK_SNAPSHOT,
    BOOK_SYNCED,
    CMD_NEW,
    EV_BOOK_LEVEL,
    EV_TRADE,
    FLAG_LAST_IN_FRAME,
    HIST_HEADER_WORDS,
    MD_EVENT,
    N_HISTOGRAMS,
    ORDER,
    ORDER_MARKET,
    SIDE_BUY,
    SIDE_SELL,
    TIF_IOC,
)
from shm_layout.ring import (  # noqa: E402
    CONTROL_BYTES,
    POLICY_BLOCK,
    W_ACTIVE,
    W_CAPACITY,
    W_CONSUMERS,
    W_HEAD,
    W_N_CONSUMERS,
    W_POLICY,
    ring_available,
    ring_claim,
    ring_commit,
    ring_read,
    ring_release,
    ring_tail,
)
from shm_layout.seqlock import SLOT_WORDS, seqlock_read  # noqa: E402
from shm_layout.wait import WAIT_SPIN_YIELD, idle  # noqa: E402

try:
    import faster_fifo
except ImportError:  # reported as a skipped baseline, not an error
    faster_fifo = None

# --- defaults ----------------------------------------------------------------------------------------------------
DEFAULT_RATES = (1_000, 10_000, 50_000)
DEFAULT_DURATION_S = 10.0
DEFAULT_WARMUP_S = 2.0
QUICK_RATES = (1_000,)
QUICK_DURATION_S = 2.0
QUICK_WARMUP_S = 0.5
DEFAULT_REPLAY = REPO.parent / "shared" / "data" / "binance-spot" / "hftbacktest_spot_btcusdt_20240808.gz"
SAMPLE_S = 0.5  # RSS / CPU sampling period during a run
START_TIMEOUT_S = 300.0  # a cold numba cache compiles every jitted loop first (~1 min on 2 busy cores)
STOP_TIMEOUT_S = 90.0
KEPT_UP_NS = 50_000_000  # the feed "kept up" if wire-to-receive p99 stays under 50 ms
ORDER_RATE_LIMIT = 1_000.0  # risk.max_orders_per_second in the bench config (decisions, not denials)

CHAIN_FRAMES = 6_000  # depthUpdate frames (see make_chain_frames)
QUICK_CHAIN_FRAMES = 400
CHAIN_WARM = 300  # frames whose samples are discarded (the first books, caches, branch predictors)
QUICK_CHAIN_WARM = 100
CHAIN_GAP_US = 400.0  # one frame per 400 µs plus the sleep's overshoot: ~2,000 frames/s
CHAIN_SIM_RATE = 2_000.0  # the simulator's events/s for the chain's frames (the product default)
CHAIN_STALL_NS = 60_000_000_000  # a chain side that sees nothing for 60 s gives up (the other side died)
CHAIN_BARRIER_S = 300.0
FIFO_BYTES = 8 << 20
END_KIND = 99  # MD_EVENT.kind of the chain's end marker
TRANSPORTS = ("ring", "faster_fifo", "mp_queue")

# --- targets (issue 6) -------------------------------------------------------------------------------------------
TARGET_P50_NS = 10_000
TARGET_P99_NS = 50_000
TARGET_MPQ_RATIO = 10.0

# The strategy settings of tests/integration/test_pipeline.py TRADING_CONFIG: trades every few seconds per symbol.
CONFIG_TEMPLATE = """\
instance = "{instance}"
{symbols}
[strategy.params]
min_confidence = 0.5
holding_min_ms = 100.0
holding_max_ms = 300.0

[source]
sim_events_per_second = {rate}

[broker]
entry_latency_us = 0

[risk]
max_orders_per_second = {order_rate}
order_burst = 100

[metrics]
port = 0

[persistence]
db_path = "{db}"
{placement}"""

# Where the processes run. "default" is the product's 2-core default (feed + persistence on core 0, blocking
# socket waits; strategy + broker on core 1, spin-yield; the simulator unpinned). "feed-own-core" gives the feed
# core 0 alone, busy polling its socket, and puts everything else on core 1, the simulator included (a machine
# with more cores would give the strategy a core of its own too).
PLACEMENTS: dict[str, dict[str, Any]] = {
    "default": {"toml": "", "sim_core": None, "feed_core": 0, "floor_mode": "block"},
    "feed-own-core": {
        "toml": """
[processes.feed]
core = 0
wait = "busy-spin"
[processes.strategy]
core = 1
wait = "spin-yield"
[processes.broker]
core = 1
wait = "spin-yield"
[processes.persistence]
core = 1
""",
        "sim_core": 1, "feed_core": 0, "floor_mode": "spin",
    },
}



def queue_receiver(transport: str, endpoint: Any) -> Callable[[], bytes]:
    """How a baseline stage waits for its next message: faster-fifo polled with a yield (as the product's
    spin-yield), multiprocessing.Queue with a blocking get."""
    if transport == "faster_fifo":
        get_nowait = endpoint.get_nowait
        empty = queue.Empty
        sched_yield = os.sched_yield

        def get() -> bytes:
            while True:
                try:
                    return get_nowait()
                except empty:
                    sched_yield()

        return get
    blocking_get = endpoint.get

    def get_blocking() -> bytes:
        return blocking_get(timeout=CHAIN_STALL_NS / 1e9)

    return get_blocking

def _log_to(enabled: bool) -> Callable[[str], None]:
    def log(text: str) -> None:
        if enabled:
            print(text, file=sys.stderr, flush=True)

    return log


# ================================================================================================ measurements


def _summary_of(samples: np.ndarray) -> dict[str, float]:
    """Exact percentiles of per-sample latencies (ns)."""
    if samples.size == 0:
        return {"count": 0, "p50": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0, "min": 0.0}
    p50, p99, p999 = np.percentile(samples, [50, 99, 99.9])
    return {
        "count": int(samples.size),
        "p50": float(p50),
        "p99": float(p99),
        "p999": float(p999),
        "max": float(samples.max()),
        "mean": float(samples.mean()),
        "min": float(samples.min()),
    }


def _delta_summary(before: np.ndarray | None, after: np.ndarray) -> dict[str, float]:
    """Summarize the samples a histogram row gained between two readings (count, sum and buckets subtract)."""
    if before is None or int(before[0]) == 0:
        return hist_summary(after)
    row = after - before
    count = int(row[0])
    if count <= 0:
        return hist_summary(np.zeros_like(after))
    nonzero = np.flatnonzero(row[HIST_HEADER_WORDS:])
    row[2] = bucket_lower_bound(int(nonzero[0]))  # min/max of the window are known to a bucket only
    row[3] = max(bucket_lower_bound(int(nonzero[-1]) + 1) - 1, row[2])
    if int(after[3]) <= row[3]:
        row[3] = after[3]  # the run's max fell in the window's top bucket: it is the window's max
    return hist_summary(row)


def _hist_rows(pipeline: Pipeline) -> dict[tuple[int, int], np.ndarray]:
    """Copy every histogram row of every process (raw, for window deltas)."""
    rows = {}
    for process in range(len(PROCESS_NAMES)):
        block = pipeline.control.process_words(process)
        for h in range(N_HISTOGRAMS):
            rows[(process, h)] = hist_row(block, h)
    return rows


def _proc_status(pid: int) -> dict[str, int] | None:
    """VmRSS / VmHWM (kB) and CPU ticks (utime + stime) of ``pid``; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    out = {}
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            out["vm_rss_kb"] = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            out["vm_hwm_kb"] = int(line.split()[1])
    if "vm_rss_kb" not in out:
        return None  # a zombie (exited, not yet reaped): nothing left to measure
    fields = stat[stat.rindex(")") + 2 :].split()
    out["cpu_ticks"] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return out


def _children_of(parent: int) -> list[int]:
    """Pids whose parent is ``parent`` (the simulator and resource tracker of a supervisor)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def _label_child(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"pid {pid}"
    if "resource_tracker" in cmdline:
        return "resource_tracker"
    if "spawn_main" in cmdline:
        return "sim"
    return f"child {pid}"


class ProcessSampler:
    """Sample RSS, peak RSS and CPU of a set of processes; keep the largest RSS and the last readings."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.first: dict[str, dict[str, int]] = {}
        self.last: dict[str, dict[str, int]] = {}
        self.max_rss: dict[str, int] = {}
        self.t_first = self.t_last = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.pids.items():
            reading = _proc_status(pid)
            if reading is None:
                continue
            if name not in self.first:
                self.first[name] = reading
                self.t_first = self.t_first or now
            self.last[name] = reading
            self.max_rss[name] = max(self.max_rss.get(name, 0), reading["vm_rss_kb"])
        self.t_last = now

    def report(self) -> dict[str, dict[str, Any]]:
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        seconds = max(1e-9, self.t_last - self.t_first)
        out = {}
        for name, pid in self.pids.items():
            last = self.last.get(name)
            if last is None:
                out[name] = {"pid": pid, "note": "not readable"}
                continue
            first = self.first[name]
            out[name] = {
                "pid": pid,
                "vm_rss_mib": round(self.max_rss[name] / 1024, 1),
                "vm_hwm_mib": round(last["vm_hwm_kb"] / 1024, 1),
                "cpu_share": round((last["cpu_ticks"] - first["cpu_ticks"]) / ticks_per_s / seconds, 3),
            }
        return out


def _symbols_toml(symbols: list[Any] | None) -> str:
    if not symbols:
        return ""
    lines = []
    for s in symbols:
        lines += [
            "[[symbols]]",
            f'name = "{s.name}"',
            f"price_decimals = {s.price_decimals}",
            f"size_decimals = {s.size_decimals}",
            f'tick_size = "{s.tick_size}"',
            f'lot_size = "{s.lot_size}"',
            f'sim_start_price = "{s.sim_start_price}"',
            "",
        ]
    return "\n".join(lines)


def _ring_report(reading: dict[str, Any]) -> dict[str, Any]:
    rings = {}
    for ring in reading["rings"]:
        name = ring["name"].split(".", 2)[2]
        rings[name] = {
            "policy": ring["policy"],
            "capacity": ring["capacity"],
            "backpressure_waits": ring["backpressure_waits"],
            "consumers": {
                c["name"]: {"overruns": c["overruns"], "lost": c["lost"], "lag": c["lag"]} for c in ring["consumers"]
            },
        }
    return rings


def _wire_join(db_path: Path, wire_dir: Path, t0: int, t1: int) -> dict[str, Any]:
    """Join the run's orders (ts_tick_recv, ts_init) with the feed's wire clock (per frame: simulator send time,
    socket read returned, frame complete, published) and split wire -> order into its segments."""
    pairs = load_wire_clock(wire_dir)
    out: dict[str, Any] = {"stamped_frames": len(pairs)}
    if len(pairs) == 0:
        out["note"] = "no stamped frame was captured (wire clock off, or the feed wrote no map)"
        return out
    order = np.argsort(pairs[:, 0], kind="stable")
    recv, sent, read, published = (pairs[order, k] for k in range(4))
    in_window = (recv >= t0) & (recv <= t1)
    out["wire_to_receive_ns"] = _summary_of(recv[in_window] - sent[in_window])
    read_known = in_window & (read > 0)
    out["send_to_read_ns"] = _summary_of(read[read_known] - sent[read_known])  # write, loopback, wake-up
    out["read_to_frame_ns"] = _summary_of(recv[read_known] - read[read_known])  # framing, earlier frames of the read
    out["frame_to_published_ns"] = _summary_of(published[in_window] - recv[in_window])  # decode and publication
    out["send_to_published_ns"] = _summary_of(published[in_window] - sent[in_window])  # the feed's whole path
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT ts_tick_recv, ts_init FROM orders WHERE command = 'NEW'").fetchall()
    if not rows:
        out["orders"] = 0
        return out
    orders = np.array(rows, dtype=np.int64)
    orders = orders[(orders[:, 1] >= t0) & (orders[:, 1] <= t1)]
    idx = np.clip(np.searchsorted(recv, orders[:, 0]), 0, len(recv) - 1)
    matched = recv[idx] == orders[:, 0]
    out["orders"] = len(orders)
    out["orders_matched"] = int(matched.sum())  # the others were decided on a REST snapshot or an unstamped frame
    tick, init, send = orders[matched, 0], orders[matched, 1], sent[idx[matched]]
    out["wire_to_order_ns"] = _summary_of(init - send)
    out["frame_to_order_ns"] = _summary_of(init - tick)
    out["wire_to_frame_ns"] = _summary_of(tick - send)
    out["published_to_order_ns"] = _summary_of(init - published[idx[matched]])  # the hop and the strategy
    return out


def _simulator_of(run_dir: Path) -> tuple[int, int] | None:
    """``(pid, port)`` of the run's simulator, from the supervisor's log line; None before it is written."""
    import re

    match = re.search(r"exchange simulator \(pid (\d+)\) listening on 127\.0\.0\.1:(\d+)", _tail(run_dir, 1 << 20))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _pin_simulator(run_dir: Path, core: int | None) -> None:
    """Pin the run's simulator to ``core`` (None: leave it where the kernel puts it)."""
    simulator = _simulator_of(run_dir)
    if simulator is not None and core is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(simulator[0], {core})


def run_floor(workdir: Path, rate: float, placement: str, seconds: float, warmup_s: float) -> dict[str, Any]:
    """The plain-socket floor (``bench/wire_floor.py``) against a simulator of the same configuration as the
    pipeline's, pinned and waiting like the placement's feed; the pipeline is not running meanwhile. Return
    send -> read for every stamped frame after the warm-up, and the simulator's stamp -> write returned."""
    import urllib.request

    import msgspec

    from hft.supervisor import sim_config_for
    from hft.venue import combined_stream_url

    where = PLACEMENTS[placement]
    run_dir = workdir / f"floor{int(rate)}-{placement}"
    run_dir.mkdir(parents=True)
    config = msgspec.convert({"source": {"sim_events_per_second": float(rate)}}, Config)
    (run_dir / "sim.json").write_bytes(msgspec.json.encode(sim_config_for(config)))
    port_file = run_dir / "port"
    env = dict(os.environ)
    env.pop("HFT_SIM_STAMP_SEND", None)
    sim = subprocess.Popen(
        [sys.executable, "-m", "hft.sim.server", "--config", str(run_dir / "sim.json"), "--port", "0",
         "--port-file", str(port_file), "--stamp-send", "--duration", str(seconds + warmup_s + 30)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if where["sim_core"] is not None:
            os.sched_setaffinity(sim.pid, {where["sim_core"]})
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if time.monotonic() > deadline or sim.poll() is not None:
                raise RuntimeError("the floor's simulator did not start")
            time.sleep(0.05)
        port = int(port_file.read_text())
        url = combined_stream_url(f"ws://127.0.0.1:{port}", [s.name for s in config.symbols])
        out_path = run_dir / "floor.npy"
        subprocess.run(
            [sys.executable, str(REPO / "bench" / "wire_floor.py"), "--url", url, "--core", str(where["feed_core"]),
             "--mode", where["floor_mode"], "--seconds", str(seconds + warmup_s), "--out", str(out_path)],
            cwd=REPO, check=True, timeout=seconds + warmup_s + 60,
        )  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sim/stats", timeout=5) as answer:
            sim_stats = json.loads(answer.read())
    finally:
        sim.terminate()
        sim.wait(10)
    pairs = np.load(out_path)
    if len(pairs):
        pairs = pairs[pairs[:, 1] >= pairs[0, 1] + int(warmup_s * 1e9)]
    return {
        "placement": placement,
        "mode": where["floor_mode"],
        "core": where["feed_core"],
        "sim_core": where["sim_core"],
        "send_to_read_ns": _summary_of(pairs[:, 1] - pairs[:, 0]) if len(pairs) else {"count": 0},
        "sim_stamp_to_write_returned_ns": sim_stats.get("send_write_ns"),
    }


def run_pipeline(
    label: str,
    workdir: Path,
    rate: float | None,
    replay: Path | None,
    duration_s: float,
    warmup_s: float,
    wire_clock: bool,
    log: Callable[[str], None],
    placement: str = "default",
) -> dict[str, Any]:
    """Run ``hft run`` once (simulator at ``rate``, or ``replay``) and measure it; return the run's section."""
    from hft.cli import replay_symbols
    from hft.stats import attach_running, collect

    run_dir = workdir / label
    run_dir.mkdir(parents=True)
    instance = f"ttrun{os.getpid()}{secrets.token_hex(2)}"
    db = run_dir / "run.db"
    symbols = replay_symbols(str(replay)) if replay is not None else None
    config_path = run_dir / "config.toml"
    config_path.write_text(
        CONFIG_TEMPLATE.format(
            instance=instance, symbols=_symbols_toml(symbols), rate=float(rate or 2000.0),
            order_rate=ORDER_RATE_LIMIT, db=db, placement=PLACEMENTS[placement]["toml"],
        )
    )  # fmt: skip
    env = dict(os.environ)
    env.pop("HFT_SIM_STAMP_SEND", None)
    env.pop(WIRE_CLOCK_ENV, None)
    wire_dir = run_dir / "wireclock"
    use_wire = wire_clock and replay is None
    if use_wire:
        env["HFT_SIM_STAMP_SEND"] = "1"
        env[WIRE_CLOCK_ENV] = str(wire_dir)
    cmd = [sys.executable, "-m", "hft.cli", "run", "--config", str(config_path), "--json"]
    if replay is not None:
        cmd += ["--source", "replay", str(replay)]
    section: dict[str, Any] = {
        "label": label,
        "source": "replay" if replay is not None else "sim",
        "rate_events_per_s": rate,
        "replay_file": str(replay) if replay is not None else None,
        "config": config_path.read_text(),
        "wire_clock": use_wire,
        "placement": placement,
        "notes": [],
    }
    stdout = (run_dir / "stdout.json").open("w")
    stderr = (run_dir / "stderr.log").open("w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=stdout, stderr=stderr)
    pipeline = None
    try:
        # 1. wait until every worker runs (and, against the simulator, the strategy evaluates ticks)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"hft run exited with {proc.returncode} before running: {_tail(run_dir)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"hft run did not come up in {START_TIMEOUT_S:.0f} s: {_tail(run_dir)}")
            if pipeline is None:
                with contextlib.suppress(LookupError, Exception):
                    pipeline = attach_running(instance)
            if pipeline is not None:
                reading = collect(pipeline)
                states = {p["state"] for p in reading["processes"].values()}
                ticks = reading["processes"]["strategy"]["counters"]["ticks"]
                if states == {"running"} and (replay is not None or ticks > 0):
                    break
            time.sleep(0.02 if replay is not None else 0.2)
        pids = {name: int(p["pid"]) for name, p in reading["processes"].items()}
        for child in _children_of(proc.pid):
            if child not in pids.values():
                pids.setdefault(_label_child(child), child)
        pids["supervisor"] = proc.pid
        if replay is None:
            _pin_simulator(run_dir, PLACEMENTS[placement]["sim_core"])
        sampler = ProcessSampler(pids)
        sampler.sample()
        if replay is not None:
            # 2r. the replay ends by itself: keep the last reading taken while it ran
            t0 = reading["taken_ns"]
            last = reading
            while proc.poll() is None:
                with contextlib.suppress(Exception):
                    last = collect(pipeline)
                sampler.sample()
                time.sleep(0.05)
            rows0 = None
            first = reading
        else:
            # 2. warm-up, first reading, sample while the window runs, last reading, SIGINT
            time.sleep(warmup_s)
            sampler = ProcessSampler(pids)
            sim0 = _sim_stats(run_dir)
            first = collect(pipeline)
            rows0 = _hist_rows(pipeline)
            t0 = first["taken_ns"]
            sampler.sample()
            end = time.monotonic() + duration_s
            while time.monotonic() < end:
                time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
                sampler.sample()
                if proc.poll() is not None:
                    section["notes"].append(f"hft run exited early with code {proc.returncode}")
                    break
            last = collect(pipeline)
            rows1 = _hist_rows(pipeline)
            sim1 = _sim_stats(run_dir)
            sampler.sample()
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        proc.wait(STOP_TIMEOUT_S)
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        raise
    finally:
        if pipeline is not None:
            pipeline.close()
        stdout.close()
        stderr.close()
    try:
        summary = json.loads((run_dir / "stdout.json").read_text())
    except ValueError:
        summary = None
        section["notes"].append(f"no JSON summary (exit code {proc.returncode}): {_tail(run_dir)}")
    t1 = last["taken_ns"]
    window_s = (t1 - t0) / 1e9
    section["exit_code"] = proc.returncode
    section["window_s"] = round(window_s, 3)
    feed0, feed1 = first["processes"]["feed"]["counters"], last["processes"]["feed"]["counters"]
    section["frames"] = feed1["frames"] - feed0["frames"]
    section["frames_per_s"] = round(section["frames"] / max(window_s, 1e-9), 1)
    section["events_per_s_published"] = round((feed1["msgs_out"] - feed0["msgs_out"]) / max(window_s, 1e-9), 1)
    strat0, strat1 = first["processes"]["strategy"]["counters"], last["processes"]["strategy"]["counters"]
    section["ticks"] = strat1["ticks"] - strat0["ticks"]
    section["orders"] = strat1["orders"] - strat0["orders"]
    section["risk_rejects"] = strat1["risk_rejects"] - strat0["risk_rejects"]
    section["feed_reconnects"] = feed1["reconnects"]
    if replay is None:
        section["frame_to_order_ns"] = _delta_summary(rows0[(PROC_STRATEGY, 0)], rows1[(PROC_STRATEGY, 0)])
        section["md_hop_ns"] = _delta_summary(rows0[(PROC_STRATEGY, 1)], rows1[(PROC_STRATEGY, 1)])
        section["order_to_exec_ns"] = _delta_summary(rows0[(PROC_BROKER, 0)], rows1[(PROC_BROKER, 0)])
        section["tick_to_exec_ns"] = _delta_summary(rows0[(PROC_BROKER, 1)], rows1[(PROC_BROKER, 1)])
        section["feed_frame_to_publish_ns"] = _delta_summary(rows0[(PROC_FEED, 0)], rows1[(PROC_FEED, 0)])
        section["latency_scope"] = "window between the two readings (histogram deltas)"
        if sim0 and sim1:
            seconds = max(window_s, 1e-9)
            section["simulator"] = {
                "frames_generated_per_s": round((sim1["frames_generated"] - sim0["frames_generated"]) / seconds, 1),
                "frames_sent_per_s": round((sim1["frames_sent"] - sim0["frames_sent"]) / seconds, 1),
                "events_per_s": round((sim1["model_events"] - sim0["model_events"]) / seconds, 1),
                "slow_disconnects": sim1["slow_disconnects"],
                "virtual_slip_ms": round(sim1["virtual_slip_ns"] / 1e6, 1),
                "pending_at_end": sum(c["pending"] for c in sim1.get("clients", [])),
                "stamp_to_write_returned_ns": sim1.get("send_write_ns"),  # its latest writes
            }
    else:
        lat = last["processes"]
        section["frame_to_order_ns"] = summary["tick_to_order_ns"] if summary else lat["strategy"]["latency_ns"][
            "tick_to_order"]
        section["md_hop_ns"] = lat["strategy"]["latency_ns"]["md_hop"]
        section["order_to_exec_ns"] = lat["broker"]["latency_ns"]["order_to_exec"]
        section["tick_to_exec_ns"] = summary["tick_to_exec_ns"] if summary else lat["broker"]["latency_ns"][
            "tick_to_exec"]
        section["feed_frame_to_publish_ns"] = lat["feed"]["latency_ns"]["frame_to_publish"]
        section["latency_scope"] = ("whole run: strategy tick_to_order and broker tick_to_exec from the run's "
                                    "summary, the others from the last reading taken while it ran")
        if summary:
            section["orders"] = summary["orders"]
            section["ticks"] = summary["ticks"]
            section["replay_seconds"] = summary["duration_s"]
    section["rings"] = _ring_report(last)
    section["processes"] = sampler.report()
    md = section["rings"].get("md.events", {}).get("consumers", {})
    section["md_overruns"] = sum(c["overruns"] for c in md.values())
    section["md_lost"] = sum(c["lost"] for c in md.values())
    if summary:
        section["run_summary"] = {
            k: summary.get(k)
            for k in ("duration_s", "ticks", "orders", "fills", "rejects", "executions", "db_orders",
                      "tick_to_order_ns", "tick_to_exec_ns", "stop_reason", "exit_codes", "restarts")
        }  # fmt: skip
    if use_wire:
        section["wire"] = _wire_join(db, wire_dir, t0, t1)
    section["sustained"] = (
        section["md_overruns"] == 0 and section["md_lost"] == 0 and section["feed_reconnects"] == 0
        and proc.returncode == 0
    )  # fmt: skip
    wire = section.get("wire") or {}
    lag = wire.get("wire_to_receive_ns")
    section["feed_kept_up"] = (lag["p99"] < KEPT_UP_NS) if lag and lag["count"] else None
    return section


def _sim_stats(run_dir: Path) -> dict[str, Any] | None:
    """``GET /sim/stats`` of the run's simulator (its port is in the supervisor's log); None if unavailable."""
    import urllib.request

    simulator = _simulator_of(run_dir)
    if simulator is None:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{simulator[1]}/sim/stats", timeout=2.0) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def _tail(run_dir: Path, chars: int = 1500) -> str:
    try:
        return (run_dir / "stderr.log").read_text()[-chars:]
    except OSError:
        return ""


# ================================================================================================ baseline chain


def _chain_config() -> Config:
    return Config()  # default symbols (BTCUSDT, ETHUSDT) and strategy parameters


def _chain_specs(config: Config) -> list[SymbolSpec]:
    """Symbol specs as the feed process builds them (configured tick, no lot check on market data)."""
    return [
        SymbolSpec(s.name, i, s.price_decimals, s.size_decimals,
                   decimal_to_fixed(s.tick_size, s.price_decimals, "tick_size"), 1)
        for i, s in enumerate(config.symbols)
    ]  # fmt: skip


def make_chain_frames(config: Config, n_frames: int) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    """Return the simulator's REST snapshots and its next ``n_frames`` depthUpdate frames (deterministic).

    Only depth frames: bookTicker and trade frames never change the book the strategy evaluates (its snapshot is
    the depth book), so in the product they make no tick and no order either; at the simulator's default mix
    (~2 % depth frames) a chain of all frames would spend 98 % of its time on frames that are not samples.
    """
    from hft.sim.config import SimConfig, SimSymbol
    from hft.sim.model import OrderFlowModel

    symbols = [
        SimSymbol(name=s.name, start_price=s.sim_start_price, tick_size=s.tick_size, lot_size=s.lot_size,
                  price_decimals=s.price_decimals, size_decimals=s.size_decimals)
        for s in config.symbols
    ]  # fmt: skip
    model = OrderFlowModel(
        SimConfig.from_preset(config.source.sim_volatility, symbols=symbols, seed=config.source.sim_seed,
                              events_per_second=CHAIN_SIM_RATE)
    )  # fmt: skip
    model.advance_streams(500_000_000)  # half a second of flow before the snapshot, as a feed connecting late
    snapshots = [(s.name, model.depth_snapshot(s.name, config.source.depth_limit)) for s in config.symbols]
    frames: list[bytes] = []
    while len(frames) < n_frames:
        frames.extend(frame for stream, frame in model.advance_streams(5_000_000) if "@depth" in stream)
    return snapshots, frames[:n_frames]


def _strategy_arrays(config: Config) -> dict[str, Any]:
    """The strategy side's parameters and state, as the built-in imbalance strategy and the engine build them."""
    from hft.strategy.builtin import imbalance

    cfg = config.strategy
    n = len(config.symbols)
    declared = imbalance.P.__class__.hft_declaration[1]
    params = np.array([float(v) for v in declared.values() if isinstance(v, int | float)][:N_PARAMS], np.float64)
    kparams = make_kernel_params(n)
    for index, symbol in enumerate(config.symbols):
        configure_symbol(
            kparams, index, window_ns=cfg.feature_window_ms * 1_000_000,
            bucket_volume=decimal_to_fixed(cfg.vpin_bucket_volume, symbol.size_decimals, "vpin_bucket_volume"),
            n_buckets=cfg.vpin_buckets, tick_size=decimal_to_fixed(symbol.tick_size, symbol.price_decimals, "tick"),
            surge_half_life_ns=cfg.surge_half_life_ms * 1_000_000,
        )  # fmt: skip
    return {
        "params": params,
        "kparams": kparams,
        "kstate": tuple(make_kernel_state(n)),
        "features": make_features(n),
        "order_size": np.full(n, 1000, np.int64),
        "last_seq": np.zeros(n, np.int64),
    }


@njit(cache=True)
def _tick_work(sym, book, ts_tick_recv, kind, order, order_id, params, kparams, kints, kaccs, kbook_ts, kbook_f,
               ktrades, kbuckets, features, order_size):
    """The strategy's per-tick work on a synced book, then fill ``order`` (everything but ``ts_init``)."""
    on_book(sym, book, kparams, kints, kaccs, kbook_ts, kbook_f, ktrades, kbuckets, features)
    direction, _strength, _confidence, _holding = imbalance_signal(
        book.imbalance, features[sym, F_MOMENTUM], features[sym, F_VOLATILITY], params
    )
    side = SIDE_SELL if direction < 0 else SIDE_BUY
    order.order_id = order_id
    order.ts_tick_recv = ts_tick_recv
    order.ts_exch = book.ts_exch
    order.price = book.ask_price if side == SIDE_BUY else book.bid_price
    order.size = order_size[sym]
    order.md_cursor = 0
    order.expire_ts = 0
    order.target_order_id = 0
    order.symbol_id = sym
    order.strategy_id = kind  # bench only: the kind of the frame's last event (EV_BOOK_LEVEL: a depthUpdate)
    order.side = side
    order.order_type = ORDER_MARKET
    order.tif = TIF_IOC
    order.command = CMD_NEW


@njit(cache=True)
def chain_ring_strategy(md_ctrl, md_slots, md_consumer, md_batch, snap_words, snapshot, snapshot_words, order_ctrl,
                        order_slots, last_seq, out_recv, out_lat, out_kind, wait_strategy, stall_ns, params, kparams,
                        kints, kaccs, kbook_ts, kbook_f, ktrades, kbuckets, features, order_size):
    """The ring chain's strategy: md.events + seqlock in, one order per frame that changed a book, until END.

    Records per order its frame's ``ts_recv``, frame-to-order (``ts_init - ts_recv``) and the frame kind; returns
    the number of orders, or -1 if nothing arrived for ``stall_ns``.
    """
    order_mask = order_slots.shape[0] - 1
    n_out = 0
    rounds = 0
    since = monotonic_ns()
    while True:
        n = ring_read(md_ctrl, md_slots, md_consumer, md_batch, md_batch.shape[0])
        if n == 0:
            idle(wait_strategy, rounds)
            rounds += 1
            if rounds & 0xFFF == 0 and monotonic_ns() - since > stall_ns:
                return -1
            continue
        rounds = 0
        since = monotonic_ns()
        for k in range(n):
            event = md_batch[k]
            if event.kind == END_KIND:
                seq = ring_claim(order_ctrl, 1)
                while seq < 0:
                    idle(wait_strategy, 100)
                    seq = ring_claim(order_ctrl, 1)
                order_slots[seq & order_mask].order_id = -1
                ring_commit(order_ctrl, seq + 1)
                return n_out
            sym = event.symbol_id
            if event.kind == EV_TRADE:
                on_trade(sym, event.ts_exch, event.price, event.size, event.side, kparams, kints, kaccs, kbook_ts,
                         kbook_f, ktrades, kbuckets, features)
            if event.flags & FLAG_LAST_IN_FRAME:
                if seqlock_read(snap_words, sym, snapshot_words, 1000) < 0:
                    continue
                book = snapshot[0]
                if book.seq == last_seq[sym]:
                    continue  # a trade-only frame: the book did not change (the product skips it too)
                last_seq[sym] = book.seq
                if book.status != BOOK_SYNCED or book.bid_price <= 0 or book.ask_price <= book.bid_price:
                    continue
                seq = ring_claim(order_ctrl, 1)
                while seq < 0:
                    idle(wait_strategy, 100)
                    seq = ring_claim(order_ctrl, 1)
                order = order_slots[seq & order_mask]
                _tick_work(sym, book, event.ts_recv, event.kind, order, seq + 1, params, kparams, kints, kaccs,
                           kbook_ts, kbook_f, ktrades, kbuckets, features, order_size)
                ts_init = monotonic_ns()
                order.ts_init = ts_init
                ring_commit(order_ctrl, seq + 1)
                if n_out < out_lat.shape[0]:
                    out_recv[n_out] = event.ts_recv
                    out_lat[n_out] = ts_init - event.ts_recv
                    out_kind[n_out] = event.kind
                n_out += 1


@njit(cache=True)
def chain_ring_broker(order_ctrl, order_slots, consumer, out_recv, out_lat, wait_strategy, stall_ns):
    """The ring chain's broker: take each order, stamp its arrival (frame-to-broker), until the END order."""
    mask = order_slots.shape[0] - 1
    n_out = 0
    rounds = 0
    since = monotonic_ns()
    tail = ring_tail(order_ctrl, consumer)
    while True:
        available = ring_available(order_ctrl, consumer)
        if available <= 0:
            idle(wait_strategy, rounds)
            rounds += 1
            if rounds & 0xFFF == 0 and monotonic_ns() - since > stall_ns:
                return -1
            continue
        now = monotonic_ns()
        rounds = 0
        since = now
        for k in range(available):
            order = order_slots[(tail + k) & mask]
            if order.order_id == -1:
                ring_release(order_ctrl, consumer, tail + k + 1)
                return n_out
            if n_out < out_lat.shape[0]:
                out_recv[n_out] = order.ts_tick_recv
                out_lat[n_out] = now - order.ts_tick_recv
            n_out += 1
        tail += available
        ring_release(order_ctrl, consumer, tail)


@njit(cache=True)
def chain_queue_frame(events, n_events, snaps_in, n_snaps, books, changed, order, order_id, params, kparams, kints,
                      kaccs, kbook_ts, kbook_f, ktrades, kbuckets, features, order_size):
    """The queue chains' strategy work for one message (one frame): 1 if ``order`` was filled, -1 at END, else 0."""
    for j in range(n_snaps):
        sym = snaps_in[j].symbol_id
        books[sym] = snaps_in[j]
        changed[sym] = 1
    for k in range(n_events):
        event = events[k]
        if event.kind == END_KIND:
            return -1
        sym = event.symbol_id
        if event.kind == EV_TRADE:
            on_trade(sym, event.ts_exch, event.price, event.size, event.side, kparams, kints, kaccs, kbook_ts,
                     kbook_f, ktrades, kbuckets, features)
        if event.flags & FLAG_LAST_IN_FRAME:
            if changed[sym] == 0:
                continue  # a trade-only frame
            changed[sym] = 0
            book = books[sym]
            if book.status != BOOK_SYNCED or book.bid_price <= 0 or book.ask_price <= book.bid_price:
                continue
            _tick_work(sym, book, event.ts_recv, event.kind, order[0], order_id, params, kparams, kints, kaccs,
                       kbook_ts, kbook_f, ktrades, kbuckets, features, order_size)
            order[0].ts_init = monotonic_ns()
            return 1
    return 0


def _scratch_ring(dtype: np.dtype, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Private (ctrl, slots) shaped like a fresh block ring with consumer 0 active (JIT warm-up)."""
    ctrl = np.zeros(CONTROL_BYTES // 8, np.int64)
    ctrl[W_CAPACITY] = capacity
    ctrl[W_POLICY] = POLICY_BLOCK
    ctrl[W_N_CONSUMERS] = 1
    ctrl[W_CONSUMERS + W_ACTIVE] = 1
    return ctrl, np.zeros(capacity, dtype)


def _pin(core: int | None) -> list[int]:
    if core is not None:
        os.sched_setaffinity(0, {core})
    return sorted(os.sched_getaffinity(0))


def _strategy_args(arrays: dict[str, Any]) -> tuple:
    return (arrays["params"], arrays["kparams"], *arrays["kstate"], arrays["features"], arrays["order_size"])


# --- message layout of the queue chains: int64 n_events, int64 n_snapshots, snapshot rows, event records ---
_HEADER = struct.Struct("<qq")
_SNAP_BYTES = BOOK_SNAPSHOT.itemsize
_EVENT_BYTES = MD_EVENT.itemsize
_ORDER_TS_TICK = ORDER.fields["ts_tick_recv"][1]
_END_MESSAGE = _HEADER.pack(-1, 0)
_END_ORDER = b"END"


def _chain_feed(transport: str, core: int | None, frames: list[bytes], snapshots: list[tuple[str, bytes]],
                gap_s: float, warm: int, endpoint: Any, instance: str, barrier: Any, results: Any) -> None:
    """Feed side of the chain (a spawned process): decode each frame with the real engine, hand it on."""
    affinity = _pin(core)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        config = _chain_config()
        engine = FeedEngine(_chain_specs(config))
        for name, body in snapshots:
            engine.on_snapshot(name, body, time.monotonic_ns())
        mono = time.monotonic_ns
        if transport == "ring":
            from hft.feed.publish import publish_frame
            from procs.feed import warm_up

            pipeline = Pipeline.attach(instance)
            md = pipeline.rings[MD_EVENTS]
            rows = engine.snapshots.view(np.int64).reshape(len(engine.snapshots), SLOT_WORDS)
            words = pipeline.snapshots.words
            proc = pipeline.control.process_words(PROC_FEED)
            warm_up(_chain_specs(config), md.slots)

            def send(n: int, ts_recv: int) -> None:
                publish_frame(engine.events, n, rows, engine.dirty, words, md.ctrl, md.slots, proc, ts_recv, mono())

            def finish() -> None:
                end = np.zeros(1, MD_EVENT)
                end[0]["kind"] = END_KIND
                end[0]["flags"] = FLAG_LAST_IN_FRAME
                from shm_layout.ring import ring_try_publish

                while ring_try_publish(md.ctrl, md.slots, end, 0, 1) == 0:
                    time.sleep(0.001)

        else:
            put = endpoint.put
            dirty = engine.dirty
            snaps = engine.snapshots
            events = engine.events
            pipeline = None

            def send(n: int, ts_recv: int) -> None:
                changed = np.flatnonzero(dirty)
                if n == 0 and changed.size == 0:
                    return
                dirty[changed] = 0
                batch = events[:n]
                batch["ts_init"] = mono()
                put(b"".join((_HEADER.pack(n, changed.size), snaps[changed].tobytes(), batch.tobytes())))

            def finish() -> None:
                put(_END_MESSAGE)

        # the first books published before the clock starts (the snapshots' events)
        send(0, mono())
        barrier.wait(CHAIN_BARRIER_S)
        time.sleep(0.05)
        t_start = 0
        started = time.monotonic()
        recv_at = np.zeros(len(frames), np.int64)
        handed_at = np.zeros(len(frames), np.int64)
        for index, frame in enumerate(frames):
            if index == warm:
                t_start = mono()
                started = time.monotonic()
            ts_recv = mono()
            n = engine.on_frame(frame, ts_recv)
            send(n, ts_recv)
            handed_at[index] = mono()
            recv_at[index] = ts_recv
            time.sleep(gap_s)
        elapsed = time.monotonic() - started
        finish()
        stats = {k: v for k, v in engine.stats_dict().items() if v}
        if pipeline is not None:
            pipeline.close()
        results.put(("feed", {"t_start": t_start, "frames_per_s": (len(frames) - warm) / max(elapsed, 1e-9),
                              "recv_at": recv_at, "handed_at": handed_at, "affinity": affinity,
                              "engine": stats}))  # fmt: skip
    except Exception as exc:  # reported, and the others are released
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put(("feed", {"error": f"{type(exc).__name__}: {exc}"}))


def _chain_strategy(transport: str, core: int | None, n_max: int, endpoint_in: Any, endpoint_out: Any,
                    instance: str, barrier: Any, results: Any) -> None:
    """Strategy side of the chain (a spawned process)."""
    affinity = _pin(core)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        config = _chain_config()
        arrays = _strategy_args(_strategy_arrays(config))
        n_symbols = len(config.symbols)
        out_recv = np.zeros(n_max, np.int64)
        out_lat = np.zeros(n_max, np.int64)
        out_kind = np.zeros(n_max, np.int64)
        order = np.zeros(1, ORDER)
        if transport == "ring":
            pipeline = Pipeline.attach(instance)
            md, orders = pipeline.rings[MD_EVENTS], pipeline.rings[ORDERS]
            md_batch = np.zeros(1024, MD_EVENT)
            snapshot = np.zeros(1, BOOK_SNAPSHOT)
            last_seq = np.zeros(n_symbols, np.int64)
            # warm-up on private rings: an END event in, the END order out
            w_md_ctrl, w_md_slots = _scratch_ring(MD_EVENT, 16)
            w_md_slots[0]["kind"] = END_KIND
            w_md_ctrl[W_HEAD] = 1
            w_ord_ctrl, w_ord_slots = _scratch_ring(ORDER, 16)
            w_ord_ctrl[W_CONSUMERS + W_ACTIVE] = 0
            w_words = np.zeros(n_symbols * SLOT_WORDS, np.int64)
            chain_ring_strategy(w_md_ctrl, w_md_slots, 0, md_batch, w_words, snapshot, snapshot.view(np.int64),
                                w_ord_ctrl, w_ord_slots, last_seq, out_recv, out_lat, out_kind, WAIT_SPIN_YIELD,
                                CHAIN_STALL_NS, *_strategy_args(_strategy_arrays(config)))  # fmt: skip
            barrier.wait(CHAIN_BARRIER_S)
            n = chain_ring_strategy(md.ctrl, md.slots, md.consumer_index("strategy"), md_batch,
                                    pipeline.snapshots.words, snapshot, snapshot.view(np.int64), orders.ctrl,
                                    orders.slots, last_seq, out_recv, out_lat, out_kind, WAIT_SPIN_YIELD,
                                    CHAIN_STALL_NS, *arrays)  # fmt: skip
            pipeline.close()
            if n < 0:
                raise RuntimeError("stalled: no market data for 60 s")
        else:
            events = np.zeros(4096, MD_EVENT)
            snaps_in = np.zeros(n_symbols, BOOK_SNAPSHOT)
            books = np.zeros(n_symbols, BOOK_SNAPSHOT)
            changed = np.zeros(n_symbols, np.int64)
            events_u8 = events.view(np.uint8)
            snaps_u8 = snaps_in.view(np.uint8)
            # warm-up: one END message through the jitted function
            events[0]["kind"] = END_KIND
            chain_queue_frame(events, 1, snaps_in, 0, books, changed, order, 1,
                              *_strategy_args(_strategy_arrays(config)))  # fmt: skip
            events[0]["kind"] = 0
            put = endpoint_out.put
            mono = time.monotonic_ns
            get = queue_receiver(transport, endpoint_in)

            barrier.wait(CHAIN_BARRIER_S)
            n = 0
            order_id = 0
            header_size = _HEADER.size
            while True:
                message = get()
                n_events, n_snaps = _HEADER.unpack_from(message)
                if n_events < 0:
                    put(_END_ORDER)
                    break
                snap_end = header_size + n_snaps * _SNAP_BYTES
                if n_snaps:
                    snaps_u8[: n_snaps * _SNAP_BYTES] = np.frombuffer(message, np.uint8, n_snaps * _SNAP_BYTES,
                                                                      header_size)  # fmt: skip
                if n_events:
                    events_u8[: n_events * _EVENT_BYTES] = np.frombuffer(message, np.uint8, n_events * _EVENT_BYTES,
                                                                         snap_end)  # fmt: skip
                order_id += 1
                if chain_queue_frame(events, n_events, snaps_in, n_snaps, books, changed, order, order_id,
                                     *arrays) == 1:  # fmt: skip
                    put(order.tobytes())
                    t = mono()
                    if n < n_max:
                        record = order[0]
                        out_recv[n] = record["ts_tick_recv"]
                        out_lat[n] = t - record["ts_tick_recv"]
                        out_kind[n] = record["strategy_id"]
                    n += 1
        n = min(n, n_max)
        results.put(("strategy", {"orders": n, "recv": out_recv[:n], "lat": out_lat[:n], "kind": out_kind[:n],
                                  "affinity": affinity}))  # fmt: skip
    except Exception as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put(("strategy", {"error": f"{type(exc).__name__}: {exc}"}))


def _chain_broker(transport: str, core: int | None, n_max: int, endpoint: Any, instance: str, barrier: Any,
                  results: Any) -> None:
    """Broker side of the chain (a spawned process): stamp each order's arrival."""
    affinity = _pin(core)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        out_recv = np.zeros(n_max, np.int64)
        out_lat = np.zeros(n_max, np.int64)
        if transport == "ring":
            pipeline = Pipeline.attach(instance)
            orders = pipeline.rings[ORDERS]
            w_ctrl, w_slots = _scratch_ring(ORDER, 16)
            w_slots[0]["order_id"] = -1
            w_ctrl[W_HEAD] = 1
            chain_ring_broker(w_ctrl, w_slots, 0, out_recv, out_lat, WAIT_SPIN_YIELD, CHAIN_STALL_NS)
            barrier.wait(CHAIN_BARRIER_S)
            n = chain_ring_broker(orders.ctrl, orders.slots, orders.consumer_index("broker"), out_recv, out_lat,
                                  WAIT_SPIN_YIELD, CHAIN_STALL_NS)  # fmt: skip
            pipeline.close()
            if n < 0:
                raise RuntimeError("stalled: no order for 60 s")
        else:
            mono = time.monotonic_ns
            unpack_ts = struct.Struct("<q").unpack_from
            get = queue_receiver(transport, endpoint)

            barrier.wait(CHAIN_BARRIER_S)
            n = 0
            while True:
                message = get()
                t = mono()
                if message == _END_ORDER:
                    break
                if n < n_max:
                    tick = unpack_ts(message, _ORDER_TS_TICK)[0]
                    out_recv[n] = tick
                    out_lat[n] = t - tick
                n += 1
        n = min(n, n_max)
        results.put(("broker", {"orders": n, "recv": out_recv[:n], "lat": out_lat[:n], "affinity": affinity}))
    except Exception as exc:
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put(("broker", {"error": f"{type(exc).__name__}: {exc}"}))


def run_chain(transport: str, frames: list[bytes], snapshots: list[tuple[str, bytes]], gap_us: float, warm: int,
              cores: tuple[int | None, int | None], log: Callable[[str], None]) -> dict[str, Any]:
    """Run the three-process chain once over ``transport``; return its section."""
    from hft.supervisor import symbol_table

    ctx = mp.get_context("spawn")
    config = _chain_config()
    instance = f"ttbench{os.getpid()}{secrets.token_hex(2)}"
    pipeline = None
    hop1 = hop2 = None
    if transport == "ring":
        pipeline = Pipeline.create(instance, symbol_table(config), {MD_EVENTS: 65536, ORDERS: 4096, EXECUTIONS: 64})
        pipeline.rings[ORDERS].deactivate_consumer(pipeline.rings[ORDERS].consumer_index("persistence"))
    elif transport == "faster_fifo":
        hop1, hop2 = faster_fifo.Queue(max_size_bytes=FIFO_BYTES), faster_fifo.Queue(max_size_bytes=FIFO_BYTES)
    else:
        hop1, hop2 = ctx.Queue(), ctx.Queue()
    barrier = ctx.Barrier(3)
    results = ctx.Queue()
    n_max = len(frames) + 16
    feed_core, latency_core = cores
    procs = {
        "broker": ctx.Process(target=_chain_broker, name=f"ttchain-{transport}-broker", daemon=True,
                              args=(transport, latency_core, n_max, hop2, instance, barrier, results)),
        "strategy": ctx.Process(target=_chain_strategy, name=f"ttchain-{transport}-strategy", daemon=True,
                                args=(transport, latency_core, n_max, hop1, hop2, instance, barrier, results)),
        "feed": ctx.Process(target=_chain_feed, name=f"ttchain-{transport}-feed", daemon=True,
                            args=(transport, feed_core, frames, snapshots, gap_us / 1e6, warm, hop1, instance,
                                  barrier, results)),
    }  # fmt: skip
    outcomes: dict[str, dict] = {}
    budget = 240.0 + len(frames) * (gap_us / 1e6 + 0.002)
    deadline = time.monotonic() + budget
    try:
        for proc in procs.values():
            proc.start()
        while len(outcomes) < len(procs):
            if time.monotonic() > deadline:
                for role in set(procs) - set(outcomes):
                    outcomes[role] = {"error": f"timed out after {budget:.0f} s"}
                break
            try:
                role, out = results.get(timeout=0.25)
                outcomes[role] = out
                continue
            except queue.Empty:
                pass
            dead = [r for r, p in procs.items() if p.exitcode is not None and r not in outcomes]
            if dead:
                time.sleep(2.0)
                while True:
                    try:
                        role, out = results.get(timeout=0.5)
                        outcomes[role] = out
                    except queue.Empty:
                        break
                for role in dead:
                    outcomes.setdefault(role, {"error": f"exited with code {procs[role].exitcode} without a result"})
    finally:
        for proc in procs.values():
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        results.close()
        results.cancel_join_thread()
        for hop in (hop1, hop2):
            if hop is not None and hasattr(hop, "cancel_join_thread"):
                hop.close()
                hop.cancel_join_thread()
        if pipeline is not None:
            pipeline.unlink()
            pipeline.close()
    section: dict[str, Any] = {"transport": transport, "label": CHAIN_LABELS[transport]}
    errors = {role: out["error"] for role, out in outcomes.items() if "error" in out}
    if errors:
        section["errors"] = errors
        return section
    t_start = outcomes["feed"]["t_start"]
    strat, broker = outcomes["strategy"], outcomes["broker"]
    keep = strat["recv"] >= t_start
    keep_b = broker["recv"] >= t_start
    feed = outcomes["feed"]
    recv_at, handed_at = feed["recv_at"], feed["handed_at"]
    timed = recv_at >= t_start

    def after_handoff(recv: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Per sample: arrival - the moment the feed side had handed its frame to the hop."""
        idx = np.clip(np.searchsorted(recv_at, recv), 0, len(recv_at) - 1)
        ok = recv_at[idx] == recv
        return (recv[ok] + lat[ok]) - handed_at[idx[ok]]

    section.update({
        "frames": len(frames),
        "warm_frames": warm,
        "frames_per_s": round(outcomes["feed"]["frames_per_s"], 1),
        "orders": int(keep.sum()),
        "frame_to_handoff_ns": _summary_of(handed_at[timed] - recv_at[timed]),
        "frame_to_order_ns": _summary_of(strat["lat"][keep]),
        "frame_to_broker_ns": _summary_of(broker["lat"][keep_b]),
        "handoff_to_order_ns": _summary_of(after_handoff(strat["recv"][keep], strat["lat"][keep])),
        "handoff_to_broker_ns": _summary_of(after_handoff(broker["recv"][keep_b], broker["lat"][keep_b])),
        "orders_not_on_depth_frames": int((keep & (strat["kind"] != EV_BOOK_LEVEL)).sum()),
        "affinity": {role: outcomes[role].get("affinity") for role in procs},
        "feed_engine": outcomes["feed"].get("engine"),
    })  # fmt: skip
    return section


CHAIN_LABELS = {
    "ring": "shm rings + seqlock (the product's hops, spin-yield)",
    "faster_fifo": "faster_fifo.Queue (get_nowait + sched_yield)",
    "mp_queue": "multiprocessing.Queue (blocking get)",
}


# ================================================================================================ report


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import numba

    return {
        "platform": platform.platform(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_available": sorted(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "faster_fifo": getattr(faster_fifo, "__version__", None) if faster_fifo else None,
        "loadavg_at_start": list(os.getloadavg()),
    }


def _verdict(value: float | None, target: float, below: bool = True) -> dict[str, Any]:
    met = None if value is None else (value < target if below else value >= target)
    return {"value": value, "target": target, "met": met}


def add_targets(report: dict[str, Any]) -> None:
    """Judge every frame-to-order figure against the issue's targets; ratios against the mp.Queue chain."""
    targets: dict[str, Any] = {}
    for run in report["pipeline"]:
        f2o = run.get("frame_to_order_ns")
        if f2o and f2o.get("count"):
            targets[f"pipeline {run['label']}"] = {
                "p50_below_10us": _verdict(f2o["p50"], TARGET_P50_NS),
                "p99_below_50us": _verdict(f2o["p99"], TARGET_P99_NS),
            }
    chain = report["baselines"]
    ring = chain.get("ring", {}).get("frame_to_order_ns")
    if ring and ring.get("count"):
        targets["chain ring"] = {
            "p50_below_10us": _verdict(ring["p50"], TARGET_P50_NS),
            "p99_below_50us": _verdict(ring["p99"], TARGET_P99_NS),
        }
    ratios: dict[str, Any] = {}
    for other in ("faster_fifo", "mp_queue"):
        for figure in ("frame_to_order", "frame_to_broker", "handoff_to_order", "handoff_to_broker"):
            ours = chain.get("ring", {}).get(f"{figure}_ns")
            theirs = chain.get(other, {}).get(f"{figure}_ns")
            for q in ("p50", "p99"):
                if ours and theirs and ours.get("count") and theirs.get("count") and ours[q] > 0:
                    ratios[f"{other}_over_ring_{figure}_{q}"] = theirs[q] / ours[q]
    report["ratios"] = ratios
    for q in ("p50", "p99"):
        targets.setdefault("chain ring", {})[f"{q}_10x_below_mp_queue"] = _verdict(
            ratios.get(f"mp_queue_over_ring_frame_to_order_{q}"), TARGET_MPQ_RATIO, below=False
        )
        # the same comparison without the feed side's decode, which every wiring shares (supplementary)
        targets.setdefault("chain ring, after hand-over", {})[f"{q}_10x_below_mp_queue"] = _verdict(
            ratios.get(f"mp_queue_over_ring_handoff_to_order_{q}"), TARGET_MPQ_RATIO, below=False
        )
    # issue 14: the feed's path against the plain-socket floor, and wire -> order with the feed on its own core
    for run in report["pipeline"]:
        wire, floor = run.get("wire") or {}, run.get("floor") or {}
        path, decode = wire.get("send_to_published_ns"), wire.get("frame_to_published_ns")
        base = floor.get("send_to_read_ns")
        if path and decode and base and path.get("count") and base.get("count"):
            ratio = path["p50"] / (base["p50"] + decode["p50"])
            run["feed_path_over_floor_plus_decode_p50"] = ratio
            targets.setdefault(f"wire {run['label']}", {})["feed_within_2x_floor"] = _verdict(ratio, 2.0)
        w2o = wire.get("wire_to_order_ns")
        if run.get("placement") == "feed-own-core" and w2o and w2o.get("count"):
            targets.setdefault(f"wire {run['label']}", {})["wire_to_order_p50_below_50us"] = _verdict(
                w2o["p50"], 50_000)
    report["targets"] = targets
    sustained = [r["rate_events_per_s"] for r in report["pipeline"] if r.get("source") == "sim" and r.get("sustained")]
    kept = [r["rate_events_per_s"] for r in report["pipeline"]
            if r.get("source") == "sim" and r.get("sustained") and r.get("feed_kept_up") is not False]  # fmt: skip
    report["highest_rate_without_overruns"] = max(sustained) if sustained else None
    report["highest_rate_sustained_and_kept_up"] = max(kept) if kept else None


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:,.0f}"


def _us(ns: float | None) -> str:
    if ns is None:
        return "-"
    return f"{ns / 1000:.1f}" if ns < 10_000_000 else f"{ns / 1000:,.0f}"


def _row(name: str, s: dict[str, float] | None) -> str:
    if not s or not s.get("count"):
        return f"  {name:<34}{'n=0':>8}"
    return (f"  {name:<34}{s['count']:>8}{_us(s['p50']):>11}{_us(s['p99']):>11}{_us(s.get('p999')):>11}"
            f"{_us(s.get('max')):>11}")  # fmt: skip


def format_table(report: dict[str, Any]) -> str:
    """Return the human-readable tables and verdicts."""
    m = report["machine"]
    lines = [
        f"tick-to-trade benchmark: {m['cpu_model']}, {m['cpu_count']} CPUs, python {m['python']}, numba "
        f"{m['numba']}; load average at start {m['loadavg_at_start'][0]:.2f}, at end "
        f"{report.get('loadavg_at_end', [float('nan')])[0]:.2f}",
        "",
        "PIPELINE (hft run; default placement: feed+persistence core 0, strategy+broker core 1; latency in µs)",
        f"  {'figure':<34}{'n':>8}{'p50':>11}{'p99':>11}{'p99.9':>11}{'max':>11}",
    ]
    for run in report["pipeline"]:
        if "error" in run:
            lines.append(f"{run['label']}: ERROR {run['error']}")
            continue
        head = (f"{run['label']}: {run['frames_per_s']:,.0f} frames/s over {run['window_s']:.1f} s, "
                f"{run['orders']} orders, md.events overruns {run['md_overruns']} lost {run['md_lost']}, "
                f"feed reconnects {run['feed_reconnects']}"
                f"{'' if run['sustained'] else '  NOT SUSTAINED'}")  # fmt: skip
        if run.get("feed_kept_up") is False:
            head += "  (feed fell behind the wire)"
        lines.append(head)
        sim = run.get("simulator")
        if sim:
            lines.append(f"  simulator: {sim['events_per_s']:,.0f} events/s, {sim['frames_generated_per_s']:,.0f} "
                         f"frames/s made, {sim['frames_sent_per_s']:,.0f} sent, {sim['slow_disconnects']} slow-client "
                         f"drops, {sim['pending_at_end']} frames queued at the end")  # fmt: skip
        lines.append(_row("frame -> order (strategy hist 0)", run.get("frame_to_order_ns")))
        lines.append(_row("order -> exec report (broker 0)", run.get("order_to_exec_ns")))
        lines.append(_row("frame -> exec report (broker 1)", run.get("tick_to_exec_ns")))
        lines.append(_row("frame -> published (feed 0)", run.get("feed_frame_to_publish_ns")))
        lines.append(_row("md.events hop (strategy 1)", run.get("md_hop_ns")))
        wire = run.get("wire")
        if wire and wire.get("orders"):
            lines.append(_row("wire -> order (sim send clock)", wire.get("wire_to_order_ns")))
            lines.append(_row("frame -> order, same orders", wire.get("frame_to_order_ns")))
            lines.append(_row("wire -> frame recv, same orders", wire.get("wire_to_frame_ns")))
        if wire and wire.get("wire_to_receive_ns"):
            lines.append(_row("wire -> recv, every frame", wire.get("wire_to_receive_ns")))
            lines.append("  wire -> order, by segment (every frame; the last one per order):")
            lines.append(_row(" sim stamp -> write returned", (sim or {}).get("stamp_to_write_returned_ns")))
            lines.append(_row(" send -> feed's read returns", wire.get("send_to_read_ns")))
            lines.append(_row(" read -> frame complete", wire.get("read_to_frame_ns")))
            lines.append(_row(" frame -> published", wire.get("frame_to_published_ns")))
            lines.append(_row(" = send -> published (feed path)", wire.get("send_to_published_ns")))
            lines.append(_row(" published -> order (hop+strat)", wire.get("published_to_order_ns")))
        floor = run.get("floor") or {}
        if floor.get("error"):
            lines.append(f"  floor: ERROR {floor['error']}")
        elif floor:
            lines.append(_row(f" floor: send -> plain read ({floor['mode']})", floor.get("send_to_read_ns")))
            lines.append(_row(" floor: sim stamp -> write ret.", floor.get("sim_stamp_to_write_returned_ns")))
            if run.get("feed_path_over_floor_plus_decode_p50"):
                ratio = run["feed_path_over_floor_plus_decode_p50"]
                lines.append(f"  feed path / (floor + decode) at p50: {ratio:.2f}x")
        rss = ", ".join(f"{n} {p.get('vm_rss_mib', '?')}/{p.get('vm_hwm_mib', '?')} MiB {p.get('cpu_share', 0):.2f} cpu"
                        for n, p in run.get("processes", {}).items())  # fmt: skip
        lines.append(f"  RSS/peak, CPU: {rss}")
        for note in run.get("notes", []):
            lines.append(f"  note: {note}")
    for note in report.get("pipeline_notes", []):
        lines.append(f"note: {note}")
    lines += [
        "",
        f"highest simulator rate without md.events overruns or feed reconnects: "
        f"{_rate(report['highest_rate_without_overruns'])} events/s; also with the feed keeping up with the wire "
        f"(wire -> recv p99 < {KEPT_UP_NS / 1e6:g} ms): {_rate(report['highest_rate_sustained_and_kept_up'])} "
        f"events/s (of the rates tried: {', '.join(_rate(r) for r in report['config']['rates'])})",
        "",
        "BASELINES (bench chain: real feed engine -> real strategy kernels -> broker ack; feed core 0, "
        "strategy+broker core 1)",
        f"  {'hop transport / figure':<34}{'n':>8}{'p50':>11}{'p99':>11}{'p99.9':>11}{'max':>11}",
    ]
    for transport in TRANSPORTS:
        section = report["baselines"].get(transport)
        if section is None:
            continue
        if "errors" in section or "skipped" in section:
            lines.append(f"{transport}: {section.get('skipped') or section.get('errors')}")
            continue
        lines.append(f"{section['label']} ({section['frames_per_s']:,.0f} frames/s)")
        lines.append(_row("frame -> handed to hop (feed)", section["frame_to_handoff_ns"]))
        lines.append(_row("frame -> order", section["frame_to_order_ns"]))
        lines.append(_row("frame -> broker", section["frame_to_broker_ns"]))
        lines.append(_row("handed over -> order (hop+strat)", section["handoff_to_order_ns"]))
        lines.append(_row("handed over -> broker", section["handoff_to_broker_ns"]))
    lines.append("")
    for key, value in report["ratios"].items():
        lines.append(f"  {key:<50}{value:8.1f}x")
    lines += ["", "targets:"]
    for where, checks in report["targets"].items():
        for name, v in checks.items():
            verdict = {True: "MET", False: "NOT MET", None: "n/a"}[v["met"]]
            value = v["value"]
            shown = "-" if value is None else (f"{value / 1000:.1f} µs" if "us" in name else f"{value:.2f}x")
            lines.append(f"  {where:<48}{name:<24}{verdict:>8}  ({shown})")
    if report["notes"]:
        lines += ["", "notes:"] + [f"  - {n}" for n in report["notes"]]
    lines.append(f"\ntotal {report['duration_s']:.0f} s")
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def run_benchmark(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Run every part; return the report."""
    started = time.monotonic()
    rates = [float(r) for r in args.rates.split(",") if r.strip()] if args.rates else list(
        QUICK_RATES if args.quick else DEFAULT_RATES)  # fmt: skip
    rates = [int(r) if float(r).is_integer() else r for r in rates]
    duration = args.duration if args.duration is not None else (QUICK_DURATION_S if args.quick else DEFAULT_DURATION_S)
    warmup = args.warmup if args.warmup is not None else (QUICK_WARMUP_S if args.quick else DEFAULT_WARMUP_S)
    chain_frames = args.chain_frames or (QUICK_CHAIN_FRAMES if args.quick else CHAIN_FRAMES)
    warm = min(QUICK_CHAIN_WARM if args.quick else CHAIN_WARM, chain_frames // 4)
    chosen = args.placements or ("default" if args.quick else ",".join(PLACEMENTS))
    placements = [p.strip() for p in chosen.split(",")]
    unknown = [p for p in placements if p not in PLACEMENTS]
    if unknown:
        raise SystemExit(f"unknown placement(s) {unknown}: choose from {', '.join(PLACEMENTS)}")
    replay = None
    if args.source and args.source[0] == "replay":
        replay = Path(args.source[1]) if len(args.source) > 1 else DEFAULT_REPLAY
    elif not args.source and not args.quick and not args.no_replay:
        replay = DEFAULT_REPLAY
    report: dict[str, Any] = {
        "benchmark": "tick_to_trade",
        "schema": 1,
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            "rates": rates,
            "placements": placements,
            "duration_s": duration,
            "warmup_s": warmup,
            "quick": args.quick,
            "wire_clock": not args.no_wire_clock,
            "replay": str(replay) if replay else None,
            "chain_frames": chain_frames,
            "chain_warm_frames": warm,
            "chain_gap_us": args.chain_gap_us,
            "order_rate_limit": ORDER_RATE_LIMIT,
        },
        "machine": _machine(),
        "pipeline": [],
        "pipeline_notes": [],
        "replay": None,
        "baselines": {},
        "notes": [],
    }
    with tempfile.TemporaryDirectory(prefix="tt_bench_") as tmp:
        workdir = Path(tmp)
        if not args.skip_pipeline:
            for placement, rate in ((p, r) for p in placements for r in rates):
                label = f"sim {rate:,.0f} ev/s" + ("" if placement == "default" else f", {placement}")
                log(f"pipeline: {label}, {duration:g} s after {warmup:g} s of warm-up")
                try:
                    run = run_pipeline(f"sim{int(rate)}-{placement}", workdir, rate, None, duration, warmup,
                                       not args.no_wire_clock, log, placement)  # fmt: skip
                    run["label"] = label
                except Exception as exc:  # reported, the other runs go on
                    run = {"label": label, "source": "sim", "rate_events_per_s": rate, "error": str(exc)}
                if not args.no_wire_clock and not args.no_floor:
                    log(f"floor: plain-socket reader, {label}")
                    try:
                        run["floor"] = run_floor(workdir, rate, placement, duration, warmup)
                    except Exception as exc:
                        run["floor"] = {"error": str(exc)}
                report["pipeline"].append(run)
            if replay is not None and replay.is_file():
                log(f"pipeline: replay {replay.name} (lock step, as fast as possible)")
                try:
                    run = run_pipeline("replay", workdir, None, replay, duration, warmup, False, log)
                    run["label"] = f"replay {replay.name.split('.')[0]}"
                except Exception as exc:
                    run = {"label": f"replay {replay.name.split('.')[0]}", "source": "replay", "error": str(exc)}
                report["pipeline"].append(run)
                report["replay"] = run
            elif replay is not None:
                report["pipeline_notes"].append(f"replay skipped: {replay} is absent")
                report["replay"] = {"skipped": f"{replay} is absent"}
            else:
                report["pipeline_notes"].append("replay skipped in --quick (add --source replay [FILE] for it)")
                report["replay"] = {"skipped": "--quick"}
        else:
            report["pipeline_notes"].append("pipeline runs skipped (--skip-pipeline)")
        if not args.skip_baselines:
            config = _chain_config()
            snapshots, frames = make_chain_frames(config, chain_frames)
            available = sorted(os.sched_getaffinity(0))
            cores: tuple[int | None, int | None] = (available[0], available[1]) if len(available) >= 2 else (None,
                                                                                                           None)
            if cores[0] is None:
                report["notes"].append("only one CPU available: the chain ran unpinned")
            for transport in TRANSPORTS:
                if transport == "faster_fifo" and faster_fifo is None:
                    report["baselines"][transport] = {"skipped": "faster-fifo is not installed"}
                    continue
                log(f"baseline chain over {transport}: {chain_frames:,} frames")
                report["baselines"][transport] = run_chain(transport, frames, snapshots, args.chain_gap_us, warm,
                                                           cores, log)  # fmt: skip
        else:
            report["notes"].append("baselines skipped (--skip-baselines)")
    add_targets(report)
    report["notes"].append(
        "chain vs hft run: the chain has no websocket (frames from memory), no risk, no execution reports and no "
        "persistence, and sends one order per book-changing frame; it compares the hops, the pipeline rows are "
        "the product"
    )
    report["loadavg_at_end"] = list(os.getloadavg())
    report["duration_s"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the table and the JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=None, help="simulator events/s, comma-separated (default 1000,10000,50000)")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per rate (default 10)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds after the first tick before measuring")
    parser.add_argument("--source", nargs="*", default=None, metavar="replay [FILE]",
                        help="'replay [FILE]': the recording to replay (default: the shared BTCUSDT file)")
    parser.add_argument("--no-replay", action="store_true", help="skip the recorded-file run")
    parser.add_argument("--placements", default=None,
                        help=f"comma-separated, of {', '.join(PLACEMENTS)} (default: all; --quick: default)")
    parser.add_argument("--no-floor", action="store_true", help="skip the plain-socket floor runs")
    parser.add_argument("--no-wire-clock", action="store_true", help="run without the simulator/feed wire clock")
    parser.add_argument("--chain-frames", type=int, default=None, help=f"frames per baseline chain ({CHAIN_FRAMES})")
    parser.add_argument("--chain-gap-us", type=float, default=CHAIN_GAP_US, help="sleep between chain frames (µs)")
    parser.add_argument("--skip-pipeline", action="store_true", help="baselines only")
    parser.add_argument("--skip-baselines", action="store_true", help="pipeline runs only")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK_RATES[0]:,} events/s for {QUICK_DURATION_S:g} s, no replay, "
                        f"{QUICK_CHAIN_FRAMES} chain frames")
    parser.add_argument("--json-only", action="store_true", help="print only the JSON document on stdout")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON document to this file")
    args = parser.parse_args(argv)
    if args.source and args.source[0] != "replay":
        parser.error("--source takes: replay [FILE]")
    log = _log_to(not args.json_only)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        report = run_benchmark(args, log)
    except KeyboardInterrupt:
        print("interrupted: child processes stopped, shared memory unlinked", file=sys.stderr)
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
    failed = [r for r in report["pipeline"] if "error" in r] + [
        b for b in report["baselines"].values() if "errors" in b
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
