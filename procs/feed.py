"""The feed process: websocket-client on the combined stream, REST depth snapshots, ``hft.feed.FeedEngine``
for decoding and book sync, and one jitted call per frame that publishes the changed snapshots (seqlock)
and then the frame's events (md.events).

Ordering invariant relied on by the strategy: for every frame, the seqlock snapshots are written *before*
the frame's events are published on the ring, so a consumer that sees an event reads a snapshot at least as
new as that event.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import websocket
from numba import njit

from hft.feed.engine import STAT_MALFORMED, STAT_RESYNCS, FeedEngine, SymbolSpec
from procs.common import WorkerContext, worker_main
from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_BOOK_EVENTS,
    C_ERRORS,
    C_FRAMES,
    C_MALFORMED,
    C_MSGS_IN,
    C_MSGS_OUT,
    C_RECONNECTS,
    C_RESYNCS,
    C_SNAPSHOTS_PUBLISHED,
    W_COUNTERS,
    counter_add,
    heartbeat,
    hist_record,
)
from shm_layout.layout import MD_EVENTS, PROC_FEED
from shm_layout.records import BOOK_SNAPSHOT, PROCESS_BLOCK, RING_CONTROL, word_index
from shm_layout.ring import ring_try_publish
from shm_layout.seqlock import SLOT_WORDS, seqlock_write

W_SNAPSHOT_TS_INIT = word_index(BOOK_SNAPSHOT, "ts_init")
H_FRAME_TO_PUBLISH = 0
H_FRAME_DECODE = 1
RECV_TIMEOUT_S = 0.1
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0


@njit(cache=True)
def publish_frame(
    events: np.ndarray,
    n_events: int,
    snapshot_rows: np.ndarray,
    dirty: np.ndarray,
    snap_words: np.ndarray,
    md_ctrl: np.ndarray,
    md_slots: np.ndarray,
    proc: np.ndarray,
    ts_recv: int,
    ts_decoded: int,
) -> int:
    """Publish dirty snapshots, then the frame's events; record frame->published latency. Return events out."""
    now = monotonic_ns()
    for symbol in range(dirty.shape[0]):
        if dirty[symbol] != 0:
            snapshot_rows[symbol, W_SNAPSHOT_TS_INIT] = now
            seqlock_write(snap_words, symbol, snapshot_rows[symbol])
            dirty[symbol] = 0
            counter_add(proc, C_SNAPSHOTS_PUBLISHED, 1)
    for k in range(n_events):
        events[k].ts_init = now
    done = 0
    while done < n_events:  # lossy ring: never waits, takes at most a ring per call
        done += ring_try_publish(md_ctrl, md_slots, events, done, n_events - done)
    published = monotonic_ns()
    counter_add(proc, C_FRAMES, 1)
    counter_add(proc, C_MSGS_IN, 1)
    counter_add(proc, C_MSGS_OUT, n_events)
    counter_add(proc, C_BOOK_EVENTS, n_events)
    hist_record(proc, H_FRAME_TO_PUBLISH, published - ts_recv)
    hist_record(proc, H_FRAME_DECODE, ts_decoded - ts_recv)
    heartbeat(proc, published)
    return n_events


def stream_url(base: str, symbols: list[str]) -> str:
    """Return the combined-stream URL for depth diffs, bookTicker and trades of every symbol."""
    streams = "/".join(f"{s.lower()}@depth@100ms/{s.lower()}@bookTicker/{s.lower()}@trade" for s in symbols)
    return f"{base.rstrip('/')}/stream?streams={streams}"


class SnapshotFetcher:
    """Fetch REST depth snapshots off the receive thread, so frames keep being read (and buffered) meanwhile."""

    def __init__(self, rest_base: str, limit: int, log: object) -> None:
        self.rest_base = rest_base.rstrip("/")
        self.limit = limit
        self.log = log
        self.results: queue.Queue[tuple[str, bytes | None, int]] = queue.Queue()
        self.in_flight: set[str] = set()

    def request(self, symbol: str) -> None:
        if symbol in self.in_flight:
            return
        self.in_flight.add(symbol)
        threading.Thread(target=self._fetch, args=(symbol,), daemon=True, name=f"snapshot-{symbol}").start()

    def _fetch(self, symbol: str) -> None:
        url = f"{self.rest_base}/api/v3/depth?symbol={symbol}&limit={self.limit}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            self.log.warning("snapshot %s failed: %s", symbol, exc)
            body = None
        self.results.put((symbol, body, monotonic_ns()))

    def completed(self) -> list[tuple[str, bytes | None, int]]:
        done = []
        while True:
            try:
                item = self.results.get_nowait()
            except queue.Empty:
                return done
            self.in_flight.discard(item[0])
            done.append(item)


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
    engine.on_snapshot(name, b'{"lastUpdateId":10,"bids":[["1.00","1.0"]],"asks":[["2.00","1.0"]]}', 1)
    engine.on_frame(frames[0].encode(), 1)
    engine.on_disconnect(1)
    rows = engine.snapshots.view(np.int64).reshape(len(engine.snapshots), SLOT_WORDS)
    publish_frame(engine.events, 0, rows, np.zeros(len(rows), np.int64), np.zeros(rows.size, np.int64),
                  np.zeros(RING_CONTROL.itemsize // 8, np.int64), md_slots[:1].copy(),
                  np.zeros(PROCESS_BLOCK.itemsize // 8, np.int64), 0, 0)


def run(ctx: WorkerContext) -> int:
    config = ctx.config
    symbols = [SymbolSpec(s.name, i, s.price_decimals, s.size_decimals) for i, s in enumerate(config.symbols)]
    engine = FeedEngine(symbols)
    md = ctx.pipeline.rings[MD_EVENTS]
    snap_words = ctx.pipeline.snapshots.words
    snapshot_rows = engine.snapshots.view(np.int64).reshape(len(engine.snapshots), SLOT_WORDS)
    proc = ctx.proc_words
    url = stream_url(config.source.ws_url, [s.name for s in config.symbols])
    fetcher = SnapshotFetcher(config.source.rest_url, config.source.depth_limit, ctx.log)
    backoff = BACKOFF_INITIAL_S
    last_housekeeping = 0.0
    warm_up(symbols, md.slots)
    ctx.mark_running()

    def publish(n_events: int, ts_recv: int, ts_decoded: int) -> None:
        publish_frame(engine.events, n_events, snapshot_rows, engine.dirty, snap_words, md.ctrl, md.slots, proc,
                      ts_recv, ts_decoded)

    def housekeeping() -> None:
        # mirror the engine's reasons into shared counters (feed is their only writer)
        proc[W_COUNTERS + C_RESYNCS] = engine.stats[STAT_RESYNCS]
        proc[W_COUNTERS + C_MALFORMED] = engine.stats[STAT_MALFORMED]
        heartbeat(proc, monotonic_ns())

    while not (ctx.stop_reached() or ctx.should_exit()):
        try:
            ws = websocket.create_connection(url, timeout=10, enable_multithread=False)
        except (OSError, websocket.WebSocketException) as exc:
            delay = min(BACKOFF_MAX_S, backoff) * (0.5 + random.random())  # jitter
            ctx.log.warning("connect to %s failed (%s); retrying in %.1f s", url, exc, delay)
            counter_add(proc, C_ERRORS, 1)
            backoff *= 2
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not (ctx.stop_reached() or ctx.should_exit()):
                time.sleep(0.05)
            continue
        ctx.log.info("connected to %s", url)
        ws.settimeout(RECV_TIMEOUT_S)
        try:
            while not (ctx.stop_reached() or ctx.should_exit()):
                try:
                    opcode, data = ws.recv_data()
                except websocket.WebSocketTimeoutException:
                    data = None
                if data is not None:
                    ts_recv = monotonic_ns()
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        raise websocket.WebSocketConnectionClosedException("server closed the stream")
                    if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                        n = engine.on_frame(data, ts_recv)
                        publish(n, ts_recv, monotonic_ns())
                        backoff = BACKOFF_INITIAL_S
                for symbol in engine.needs_snapshot():
                    fetcher.request(symbol)
                for symbol, body, ts in fetcher.completed():
                    if body is None:
                        continue  # still needed: requested again on the next pass
                    n = engine.on_snapshot(symbol, body, ts)
                    if n > 0:
                        ctx.log.info("%s book synced from snapshot (%d events)", symbol, n)
                        publish(n, ts, monotonic_ns())
                now = time.monotonic()
                if now - last_housekeeping > 0.1:
                    housekeeping()
                    last_housekeeping = now
        except (OSError, websocket.WebSocketException) as exc:
            ctx.log.warning("stream broke (%s): books reset, reconnecting", exc)
            counter_add(proc, C_RECONNECTS, 1)
            n = engine.on_disconnect(monotonic_ns())
            if n > 0:
                publish(n, monotonic_ns(), monotonic_ns())
        finally:
            ws.close()
    housekeeping()
    ctx.log.info("feed stopped: %s", json.dumps({k: v for k, v in engine.stats_dict().items() if v}))
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_FEED, config_raw, parent_pid, run)
