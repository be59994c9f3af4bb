"""The feed process: the venue's combined stream (``hft.feed.live``), REST depth snapshots, ``hft.feed.FeedEngine``
for decoding and book sync, and ``hft.feed.publish`` for the changed snapshots (seqlock) and then the frame's
events (md.events), the ordering the strategy relies on (written there). Live, every complete frame of a socket
read is decoded and published in one jitted call (``hft.feed.drain``).
"""

from __future__ import annotations

import json
import time

import numpy as np
from numba import njit
from websocket._abnf import ABNF

from hft.feed.drain import IO_END, IO_TRACED, new_cursor
from hft.feed.engine import STAT_NAMES, FeedEngine, SymbolSpec
from hft.feed.live import LiveFeed
from hft.feed.publish import FeedOutlet, publish_to
from hft.feed.specs import symbol_specs
from hft.feed.wireclock import COLUMNS, TRACE_ROWS, WireClockCapture, capture_from_env
from hft.recording.formats import FRAME, RecordingError, open_recordings
from hft.venue import venue_for
from procs.common import WorkerContext, worker_main
from shm_layout.atomics import cpu_relax, load_acquire, monotonic_ns
from shm_layout.counters import (
    C_ERRORS,
    C_LOCKSTEP_WAITS,
    C_NO_DATA_RECONNECTS,
    C_RECONNECTS,
    C_SNAPSHOT_FAILURES,
    C_SNAPSHOT_THROTTLED,
    COUNTER_NAMES,
    W_COUNTERS,
    C,
    counter_add,
    heartbeat,
)
from shm_layout.layout import MD_EVENTS, ORDERS, PROC_FEED, RUN_RUNNING, W_RUN_STATE
from shm_layout.records import PROCESS_BLOCK, RING_CONTROL
from shm_layout.ring import CONSUMER_WORDS, POLICY_LOSSY, W_CAPACITY, W_CONSUMERS, W_HEAD, W_POLICY, W_TAIL
from shm_layout.seqlock import SLOT_WORDS


def warm_up(symbols: list[SymbolSpec], md_slots: np.ndarray) -> None:
    """Compile every jitted path on a scratch engine and scratch arrays, so the first real frame is fast."""
    engine = FeedEngine(symbols[:1])
    name = symbols[0].name
    lower = name.lower()
    frames = [
        f'{{"stream":"{lower}@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"{name}","U":10,"u":11,'
        f'"b":[["1.00","1.0"]],"a":[["2.00","1.0"]]}}}}',
        f'{{"stream":"{lower}@bookTicker","data":{{"u":11,"s":"{name}","b":"1.00","B":"1.0","a":"2.00","A":"1.0"}}}}',
        f'{{"stream":"{lower}@trade","data":{{"e":"trade","E":1,"s":"{name}","t":1,"p":"1.00","q":"1.0","T":1,'
        f'"m":true,"M":true}}}}',
    ]
    for frame in frames:
        engine.on_frame(frame.encode(), 1)
        # the same frame in a shape the jitted scanner declines ("data" before "stream"): the msgspec path's
        # kernels compile now, not at the first unusual frame of a live run (a 4 s stall, measured)
        decoded = json.loads(frame)
        engine.on_frame(json.dumps({"data": decoded["data"], "stream": decoded["stream"]},
                                   separators=(",", ":")).encode(), 1)
    engine.on_frame(b'{"stream":"x","data":' + b"[" * 64 + b"]" * 64 + b"}", 1)  # the nesting guard
    engine.on_snapshot(name, b'{"lastUpdateId":10,"bids":[["1.00","1.0"]],"asks":[["2.00","1.0"]]}', 1)
    engine.on_frame(frames[0].encode(), 1)
    engine.on_disconnect(1)
    # the jitted drain of a live read (hft.feed.drain), with arguments of exactly the live types: a frame it
    # takes, then one it leaves to the Python path (a ping); on scratch arrays and a private lossy ring. The
    # engine has every symbol, as the live one: with one symbol its ``dirty`` view is contiguous, with more it is
    # not, and numba compiles each layout on its own (a warm-up on the wrong one left a compile to the first
    # read); likewise the Python path's publish_to
    engine = FeedEngine(symbols)
    rows = engine.snapshots.view(np.int64).reshape(len(engine.snapshots), SLOT_WORDS)
    ring_ctrl = np.zeros(RING_CONTROL.itemsize // 8, np.int64)
    ring_ctrl[W_POLICY], ring_ctrl[W_CAPACITY] = POLICY_LOSSY, 64
    outlet = FeedOutlet(engine.events, rows, engine.dirty, np.zeros(rows.size + SLOT_WORDS, np.int64), ring_ctrl,
                        md_slots[:64].copy(), np.zeros(PROCESS_BLOCK.itemsize // 8, np.int64))
    publish_to(outlet, 0, 0, 0)  # the Python path's publication (snapshots, odd frames)
    received = bytearray(ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 0, frames[1].encode()).format()
                         + ABNF(1, 0, 0, 0, ABNF.OPCODE_PING, 0, b"").format())
    cursor = new_cursor(0, engine.max_frame_bytes)
    cursor[IO_END] = len(received)
    engine.drain(np.frombuffer(received, np.uint8), cursor, outlet, np.zeros((1, len(COLUMNS)), np.int64))


# shared-memory counter <- engine statistic, for every reason an operator must see
REASON_COUNTERS = tuple(
    (C[name], STAT_NAMES.index(stat))
    for name, stat in (
        ("malformed", "malformed"), ("resyncs", "resyncs"), ("unknown_symbol", "unknown_symbol"),
        ("unknown_stream", "unknown_stream"), ("bad_number", "bad_number"), ("bad_level", "bad_level"),
        ("off_grid", "off_grid"), ("crossed", "crossed"), ("gaps", "gaps"), ("huge_frames", "huge_frame"),
        ("too_deep", "too_deep"), ("stuck_books", "stuck_books"), ("outliers", "outliers"),
        ("stale_snapshots", "snapshots_stale"), ("buffer_overflow", "buffer_overflow"),
        ("truncated", "truncated"), ("events_overflow", "events_overflow"),
    )
    if stat in STAT_NAMES
)
LOG_BURST_S = 5.0  # a reason that keeps firing is logged at most once per this many seconds


@njit(cache=True)
def wait_lockstep(
    md_ctrl: np.ndarray, md_consumer: int, broker_md_consumer: int, order_ctrl: np.ndarray, order_consumer: int,
    max_spins: int,
) -> bool:
    """Spin until the strategy processed every published event, the broker every published order and the
    events up to the strategy's cursor (so every report those events caused is published).

    Order matters: the strategy publishes its orders before it releases the events that caused them, so once
    its md cursor reaches the head, the order ring's head already includes those orders; the broker publishes
    its reports before it moves either cursor. Return False if ``max_spins`` ran out (the caller checks for
    shutdown and calls again).
    """
    md_tail = W_CONSUMERS + md_consumer * CONSUMER_WORDS + W_TAIL
    broker_md_tail = W_CONSUMERS + broker_md_consumer * CONSUMER_WORDS + W_TAIL
    order_tail = W_CONSUMERS + order_consumer * CONSUMER_WORDS + W_TAIL
    for _ in range(max_spins):
        # short-circuit keeps the order of the loads: md cursor first, then the order ring, then the broker
        head = load_acquire(md_ctrl, W_HEAD)
        if (load_acquire(md_ctrl, md_tail) >= head
                and load_acquire(order_ctrl, order_tail) >= load_acquire(order_ctrl, W_HEAD)
                and load_acquire(md_ctrl, broker_md_tail) >= head):
            return True
        cpu_relax()
    return False


class FeedRunner:
    """One feed process: the engine, its publication to shared memory, and reason reporting."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        config = ctx.config
        self.symbols = symbol_specs(config, ctx.log)
        self.engine = FeedEngine(self.symbols)
        for spec in self.symbols:
            ctx.log.info("%s sanity bounds: price band %s ppm, max size %s units, venue-time drift %s ns (0: off)",
                         spec.name, spec.price_band_ppm, spec.max_size, spec.max_drift_ns)
        self.md = ctx.pipeline.rings[MD_EVENTS]
        self.orders = ctx.pipeline.rings[ORDERS]
        self.snap_words = ctx.pipeline.snapshots.words
        self.snapshot_rows = self.engine.snapshots.view(np.int64).reshape(len(self.engine.snapshots), SLOT_WORDS)
        self.proc = ctx.proc_words
        # the reason counters of earlier lives of this process (the block outlives a restart; the engine's own
        # statistics start at zero): what housekeeping mirrors is added to them, so a restart loses no count
        self.counter_base = {counter: int(self.proc[W_COUNTERS + counter]) for counter, _ in REASON_COUNTERS}
        for counter in (C_SNAPSHOT_FAILURES, C_SNAPSHOT_THROTTLED, C_ERRORS, C_RECONNECTS, C_NO_DATA_RECONNECTS):
            self.counter_base[counter] = int(self.proc[W_COUNTERS + counter])
        self.last_housekeeping = 0.0
        # counter -> (value when last logged, when): earlier lives' counts were logged by them
        self.logged: dict[int, tuple[int, float]] = {c: (v, -LOG_BURST_S) for c, v in self.counter_base.items()}
        self.outlet = FeedOutlet(self.engine.events, self.snapshot_rows, self.engine.dirty, self.snap_words,
                                 self.md.ctrl, self.md.slots, self.proc)

    def publish(self, n_events: int, ts_recv: int, ts_decoded: int) -> None:
        publish_to(self.outlet, n_events, ts_recv, ts_decoded)

    def housekeeping(self, force: bool = False) -> None:
        """Mirror reasons into shared counters (feed is their only writer); log each reason once per burst."""
        now = time.monotonic()
        if not force and now - self.last_housekeeping < 0.1:
            return
        self.last_housekeeping = now
        stats = self.engine.stats
        for counter, stat in REASON_COUNTERS:
            value = self.counter_base[counter] + int(stats[stat])
            self.proc[W_COUNTERS + counter] = value
            logged_value, logged_at = self.logged.get(counter, (0, -LOG_BURST_S))
            if value > logged_value and (force or now - logged_at >= LOG_BURST_S):
                self.ctx.log.warning("%s: %d more (total %d)", COUNTER_NAMES[counter], value - logged_value, value)
                self.logged[counter] = (value, now)
        heartbeat(self.proc, monotonic_ns())

    def mirror(self, counter: int, value: int) -> None:
        """Publish a count this life of the process kept, on top of the earlier lives' (``counter_base``)."""
        self.proc[W_COUNTERS + counter] = self.counter_base[counter] + value

    def stopping(self) -> bool:
        return self.ctx.stop_reached() or self.ctx.should_exit()


def run_live(runner: FeedRunner, wire_clock: WireClockCapture | None) -> int:
    """The venue's stream through ``hft.feed.live.LiveFeed`` (connection lifecycle, snapshots, watchdog); this
    process only publishes what the engine produced and mirrors the lifecycle's counts."""
    ctx = runner.ctx
    source = ctx.config.source
    live = LiveFeed(venue_for(source), [s.name for s in ctx.config.symbols], runner.engine, runner.publish,
                    ctx.log, depth_limit=source.depth_limit, no_data_timeout_s=source.no_data_timeout_s,
                    wait=ctx.config.processes.feed.wait, outlet=runner.outlet)
    if wire_clock is not None:
        runner.engine.on_frame, live.publish = wire_clock.wrap(runner.engine.on_frame, live.publish,
                                                               lambda: live.read_ns)
        live.trace = wire_clock.new_trace(TRACE_ROWS, lambda: int(live.cursor[IO_TRACED]))

    def housekeeping() -> None:
        counts, fetcher = live.counts, live.fetcher
        runner.mirror(C_ERRORS, counts.connect_failures)
        runner.mirror(C_RECONNECTS, counts.reconnects)
        runner.mirror(C_NO_DATA_RECONNECTS, counts.no_data_reconnects)
        runner.mirror(C_SNAPSHOT_FAILURES, fetcher.failures_total)
        runner.mirror(C_SNAPSHOT_THROTTLED, fetcher.counts.get("throttled", 0))
        runner.housekeeping()

    try:
        live.run(runner.stopping, housekeeping)
    finally:
        housekeeping()
    return 0


def run_replay(runner: FeedRunner) -> int:
    """Feed a recorded file through the same engine, paced or as fast as possible, in lock step if asked.

    Returns 0 at the end of the file: the supervisor then stops the pipeline as after a normal run.
    """
    ctx, engine = runner.ctx, runner.engine
    source = ctx.config.source
    md_consumer = runner.md.consumer_index("strategy")
    broker_md_consumer = runner.md.consumer_index("broker")
    order_consumer = runner.orders.consumer_index("broker")
    records = open_recordings(source.replay_files())  # errors surface on iteration (below)
    speed = source.replay_speed
    first_ts = started = None
    frames = 0
    wall_started = time.monotonic()
    try:
        for record in records:
            if frames % 256 == 0 and runner.stopping():
                ctx.log.info("replay stopped early after %d messages", frames)
                return 0
            frames += 1
            if speed > 0:
                if first_ts is None:
                    first_ts, started = record.ts_ns, monotonic_ns()
                due = started + int((record.ts_ns - first_ts) / speed)
                while monotonic_ns() < due:
                    if due - monotonic_ns() > 2_000_000:
                        time.sleep(0.001)
            ts_recv = monotonic_ns()
            if record.kind == FRAME:
                # bookTickers are stamped on the recording's receive clock: the same stamps on every replay
                n = engine.on_frame(record.payload, ts_recv, record.ts_ns)
            else:
                n = engine.on_snapshot(record.symbol, record.payload, ts_recv)
                if n > 0:
                    ctx.log.info("%s book synced from recorded snapshot (%d events)", record.symbol, n)
                n = max(n, 0)
            runner.publish(n, ts_recv, monotonic_ns())
            if source.lockstep and n > 0:
                counter_add(runner.proc, C_LOCKSTEP_WAITS, 1)
                while not wait_lockstep(runner.md.ctrl, md_consumer, broker_md_consumer, runner.orders.ctrl,
                                        order_consumer, 1_000_000):
                    if runner.stopping():
                        return 0
            runner.housekeeping()
    except RecordingError as exc:
        ctx.log.error("%s", exc)
        return 2
    elapsed = time.monotonic() - wall_started
    ctx.log.info("replay finished: %d messages in %.2f s (%.0f msg/s)", frames, elapsed, frames / max(elapsed, 1e-9))
    return 0


def run(ctx: WorkerContext) -> int:
    runner = FeedRunner(ctx)
    with ctx.warming("feed decoder and book sync"):
        warm_up(runner.symbols, runner.md.slots)
        wait_lockstep(runner.md.ctrl, 0, 1, runner.orders.ctrl, 0, 0)  # compile
    if ctx.warm_only:
        return 0
    # opt-in wire clock for bench/tick_to_trade.py (HFT_FEED_WIRE_CLOCK, see hft.feed.wireclock): unset, nothing
    # is wrapped and the loops below run exactly as without it
    wire_clock = capture_from_env()
    if wire_clock is not None and ctx.config.source.kind == "replay":
        runner.engine.on_frame, runner.publish = wire_clock.wrap(runner.engine.on_frame, runner.publish)
    ctx.mark_running()
    # market data flows only once every worker is running (warm): a strategy or broker still compiling would
    # otherwise meet its first orders seconds late
    while int(ctx.pipeline.control.words[W_RUN_STATE]) < RUN_RUNNING and not runner.stopping():
        time.sleep(0.005)
    try:
        if ctx.config.source.kind == "replay":
            return run_replay(runner)
        return run_live(runner, wire_clock)
    finally:
        runner.housekeeping(force=True)
        stats = {k: v for k, v in runner.engine.stats_dict().items() if v}
        ctx.log.info("feed stopped: %s", json.dumps(stats))
        if wire_clock is not None:
            wire_clock.dump(ctx.log)


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_FEED, config_raw, parent_pid, run)
