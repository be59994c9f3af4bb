"""Per-process counters and log-bucketed latency histograms in the control region.

Each process owns one ``PROCESS_BLOCK`` (records.py) and is its only writer; blocks are whole cache lines, so
two processes never write the same line. Writers use relaxed atomic stores (the value must reach memory, no
ordering is needed); readers (``hft stats``, the supervisor's Prometheus exporter) read plain aligned int64s,
which cannot tear on x86-64. A reader may see a histogram's count and buckets from slightly different
moments: fine for monitoring, never used for control decisions.

Histogram buckets (HDR-style, about 6 % precision, 0 ns to 2**63 ns)::

    value < 16          -> bucket = value
    value >= 16, e = floor(log2(value)), sub = next 3 bits below the top bit
                        -> bucket = 16 + (e - 4) * 8 + sub            (at most 16 + 58 * 8 + 7 = 487)

Histogram row (``HIST_HEADER_WORDS + HIST_BUCKETS`` int64): ``[count, sum, min, max, 4 spare, buckets...]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shm_layout.atomics import count_leading_zeros, store_relaxed
from shm_layout.records import HIST_BUCKETS, HIST_HEADER_WORDS, N_COUNTERS, N_HISTOGRAMS, PROCESS_BLOCK, word_index

# counter indices (PROCESS_BLOCK.counters); names below are what `hft stats` and Prometheus show
COUNTER_NAMES = (
    "msgs_in",  # records or frames taken in
    "msgs_out",  # records published
    "overruns",  # times this process was lapped on a lossy ring
    "lost",  # records skipped by overruns
    "backpressure_waits",  # times a block ring was full when this process published
    "seqlock_reads",
    "seqlock_retries",
    "errors",  # malformed input, failed I/O: see the process log for the reason
    "frames",  # feed: wire frames received
    "book_events",  # feed: level and trade events broadcast
    "resyncs",  # feed: books thrown away and re-synced
    "malformed",  # feed: frames that could not be decoded
    "ticks",  # strategy: complete market-data frames evaluated
    "signals",  # strategy: non-neutral signals
    "orders",  # strategy: orders published; broker: orders received
    "risk_rejects",  # strategy: orders denied by pre-trade risk
    "fills",  # broker: executions with a fill
    "rejects",  # broker: rejected orders
    "rows_orders",  # persistence: order rows committed
    "rows_trades",  # persistence: trade rows committed
    "commits",  # persistence: transactions committed
    "reconnects",  # feed: websocket reconnections
    "snapshots_published",  # feed: seqlock writes
    "stale_reads",  # strategy: snapshot older than its event
    # feed: input rejected or distrusted, by reason (mirrors of hft.feed's engine statistics)
    "unknown_symbol",
    "unknown_stream",
    "bad_number",  # not exact at the symbol's precision, NaN, overflow
    "bad_level",  # price <= 0 or negative size
    "off_grid",  # price off the tick grid or size off the lot grid
    "crossed",  # book crossed after an update
    "gaps",  # U/u sequence breaks
    "huge_frames",  # frames over the size limit, dropped undecoded
    "stale_snapshots",  # REST snapshot older than the buffered diffs: fetched again
    "buffer_overflow",  # diffs dropped while waiting for a snapshot
    "truncated",  # levels beyond the book's capacity
    "events_overflow",  # a frame with more events than the feed's event buffer
    "lockstep_waits",  # feed (replay): frames it waited on strategy and broker for
    # broker: the fill simulator
    "resting",  # orders that rested in the book (did not fill in full on arrival)
    "cancels",  # orders cancelled (cancel command, IOC remainder, shutdown)
    "expired",  # GTD orders that expired
    "maker_fills",  # fills of resting orders
    "book_rebuilds",  # the broker was lapped on md.events: books rebuilt from the seqlock snapshots
    # strategy: orders denied by pre-trade risk, by reason (hft.risk.engine.RISK_REASON_NAMES)
    "risk_kill_switch",
    "risk_max_position",
    "risk_max_order_size",
    "risk_max_notional",
    "risk_order_rate",
    "risk_stale_data",
    "risk_max_drawdown",
    "risk_reject_storm",
    "risk_invalid_order",
    "risk_cancel_rate",  # strategy: cancels denied by the cancel-rate bucket
    "cancel_requests",  # strategy: CANCEL / CANCEL_ALL commands published
    "strategy_faults",  # strategy: a user callback raised (the instance is halted, its orders cancelled)
    "post_only_rejects",  # broker: post-only orders that would have crossed (their own kind: not a storm)
    "cancel_rejects",  # broker: cancels whose target had already ended or never existed (a cancel race)
    "bbo_updates",  # strategy: bookTicker updates taken (broker: applied to its touch)
    "action_errors",  # strategy: actions the API refused itself (unknown order, cancel pending, table full ...)
    "too_deep",  # feed: frames or snapshot bodies nested too deep to parse safely, refused before decoding
    "no_data_reconnects",  # feed: connections closed by the watchdog after source.no_data_timeout_s of silence
    "snapshot_failures",  # feed: REST snapshots that failed (HTTP error, network, stale): retried after a backoff
    "snapshot_throttled",  # feed: pauses the venue asked for (HTTP 429/418, request weight near the limit)
    "stuck_books",  # feed: synced books that stopped advancing (update ids ran far ahead): resynced
    "outliers",  # feed: frames outside the sanity bounds (price band, size cap, venue-time drift): dropped
    # persistence with a database server: the local spool while the server is away
    "store_failovers",  # persistence: times the server was lost (writes then go to the spool)
    "spooled",  # persistence: batches written to the spool
    "spool_replayed",  # persistence: spooled batches replayed into the server
    "spool_pending",  # persistence: batches waiting in the spool now (a gauge)
    "spool_age_ms",  # persistence: age of the oldest batch waiting in the spool (a gauge; 0: empty)
    "metrics_skipped",  # persistence: performance samples and snapshots skipped while the server was away
)
# counters that are levels, not totals: exported to Prometheus as gauges
GAUGE_COUNTERS = frozenset({"spool_pending", "spool_age_ms"})
assert len(COUNTER_NAMES) <= N_COUNTERS
C = {name: index for index, name in enumerate(COUNTER_NAMES)}
C_STORE_FAILOVERS = C["store_failovers"]
C_SPOOLED = C["spooled"]
C_SPOOL_REPLAYED = C["spool_replayed"]
C_SPOOL_PENDING = C["spool_pending"]
C_SPOOL_AGE_MS = C["spool_age_ms"]
C_METRICS_SKIPPED = C["metrics_skipped"]
C_MSGS_IN = C["msgs_in"]
C_MSGS_OUT = C["msgs_out"]
C_OVERRUNS = C["overruns"]
C_LOST = C["lost"]
C_BACKPRESSURE_WAITS = C["backpressure_waits"]
C_SEQLOCK_READS = C["seqlock_reads"]
C_SEQLOCK_RETRIES = C["seqlock_retries"]
C_ERRORS = C["errors"]
C_FRAMES = C["frames"]
C_BOOK_EVENTS = C["book_events"]
C_RESYNCS = C["resyncs"]
C_MALFORMED = C["malformed"]
C_NO_DATA_RECONNECTS = C["no_data_reconnects"]
C_SNAPSHOT_FAILURES = C["snapshot_failures"]
C_SNAPSHOT_THROTTLED = C["snapshot_throttled"]
C_TICKS = C["ticks"]
C_SIGNALS = C["signals"]
C_ORDERS = C["orders"]
C_RISK_REJECTS = C["risk_rejects"]
C_FILLS = C["fills"]
C_REJECTS = C["rejects"]
C_ROWS_ORDERS = C["rows_orders"]
C_ROWS_TRADES = C["rows_trades"]
C_COMMITS = C["commits"]
C_RECONNECTS = C["reconnects"]
C_SNAPSHOTS_PUBLISHED = C["snapshots_published"]
C_STALE_READS = C["stale_reads"]
C_LOCKSTEP_WAITS = C["lockstep_waits"]
C_RESTING = C["resting"]
C_CANCELS = C["cancels"]
C_EXPIRED = C["expired"]
C_MAKER_FILLS = C["maker_fills"]
C_BOOK_REBUILDS = C["book_rebuilds"]
C_CANCEL_REQUESTS = C["cancel_requests"]
C_STRATEGY_FAULTS = C["strategy_faults"]
C_POST_ONLY_REJECTS = C["post_only_rejects"]
C_CANCEL_REJECTS = C["cancel_rejects"]
C_BBO_UPDATES = C["bbo_updates"]
C_ACTION_ERRORS = C["action_errors"]

# word indices inside one PROCESS_BLOCK viewed as int64
W_HEARTBEAT = word_index(PROCESS_BLOCK, "heartbeat_ns")
W_PID = word_index(PROCESS_BLOCK, "pid")
W_STATE = word_index(PROCESS_BLOCK, "state")
W_RESTARTS = word_index(PROCESS_BLOCK, "restarts")  # written by the supervisor when it restarts the process
W_COUNTERS = word_index(PROCESS_BLOCK, "counters")
W_HISTOGRAMS = word_index(PROCESS_BLOCK, "histograms")
HIST_ROW_WORDS = HIST_HEADER_WORDS + HIST_BUCKETS
H_COUNT, H_SUM, H_MIN, H_MAX = 0, 1, 2, 3
PROCESS_WORDS = PROCESS_BLOCK.itemsize // 8
assert N_HISTOGRAMS * HIST_ROW_WORDS + W_HISTOGRAMS == PROCESS_WORDS

# process states (PROCESS_BLOCK.state)
PSTATE_STOPPED = 0
PSTATE_STARTING = 1
PSTATE_RUNNING = 2
PSTATE_STOPPING = 3
# written by the supervisor into a dead worker's block (the worker itself can no longer write it)
PSTATE_DEAD = 4  # died; the supervisor decides what next
PSTATE_RESTARTING = 5  # waiting out its restart backoff
PSTATE_FAILED = 6  # not restarted (fatal exit, budget spent, or not restartable): the run stops
PSTATES_DOWN = (PSTATE_DEAD, PSTATE_RESTARTING, PSTATE_FAILED)  # the process is gone (for now)
PSTATE_NAMES = {PSTATE_STOPPED: "stopped", PSTATE_STARTING: "starting", PSTATE_RUNNING: "running",
                PSTATE_STOPPING: "stopping", PSTATE_DEAD: "dead", PSTATE_RESTARTING: "restarting",
                PSTATE_FAILED: "failed"}


@njit(inline="always", cache=True)
def counter_add(block: np.ndarray, counter: int, amount: int) -> None:
    """Add to one of this process's counters (single writer: the owning process)."""
    index = W_COUNTERS + counter
    store_relaxed(block, index, block[index] + amount)


@njit(inline="always", cache=True)
def heartbeat(block: np.ndarray, now_ns: int) -> None:
    """Record that this process is alive; the supervisor and ``hft stats`` read its age."""
    store_relaxed(block, W_HEARTBEAT, now_ns)


@njit(inline="always", cache=True)
def bucket_of(value: int) -> int:
    """Map a non-negative value to its log-linear histogram bucket."""
    if value < 16:
        return value if value > 0 else 0
    exponent = 63 - count_leading_zeros(value)
    sub = (value >> (exponent - 3)) & 7
    return 16 + (exponent - 4) * 8 + sub


@njit(cache=True)
def bucket_lower_bound(bucket: int) -> int:
    """Return the smallest value that maps to ``bucket``."""
    if bucket < 16:
        return bucket
    exponent = (bucket - 16) // 8 + 4
    sub = (bucket - 16) % 8
    return (8 + sub) << (exponent - 3)


@njit(inline="always", cache=True)
def hist_record(block: np.ndarray, histogram: int, value: int) -> None:
    """Add one latency sample (ns) to this process's histogram (single writer)."""
    if value < 0:
        value = 0
    base = W_HISTOGRAMS + histogram * HIST_ROW_WORDS
    store_relaxed(block, base + H_COUNT, block[base + H_COUNT] + 1)
    store_relaxed(block, base + H_SUM, block[base + H_SUM] + value)
    if block[base + H_COUNT] == 1 or value < block[base + H_MIN]:
        store_relaxed(block, base + H_MIN, value)
    if value > block[base + H_MAX]:
        store_relaxed(block, base + H_MAX, value)
    slot = base + HIST_HEADER_WORDS + bucket_of(value)
    store_relaxed(block, slot, block[slot] + 1)


def hist_row(block: np.ndarray, histogram: int) -> np.ndarray:
    """Return a copy of one histogram row (header words then buckets)."""
    base = W_HISTOGRAMS + histogram * HIST_ROW_WORDS
    return np.array(block[base : base + HIST_ROW_WORDS], dtype=np.int64)


def _bucket_value(bucket: int) -> float:
    low = bucket_lower_bound(bucket)
    high = bucket_lower_bound(bucket + 1)
    return (low + high - 1) / 2.0 if bucket >= 16 else float(low)


def hist_summary(row: np.ndarray, quantiles: tuple[float, ...] = (0.5, 0.99, 0.999)) -> dict[str, float]:
    """Summarize a histogram row: count, mean, min, max and the requested quantiles (bucket midpoints, ns)."""
    count = int(row[H_COUNT])
    summary: dict[str, float] = {"count": count}
    if count == 0:
        summary.update({"mean": 0.0, "min": 0.0, "max": 0.0})
        summary.update({f"p{_q_label(q)}": 0.0 for q in quantiles})
        return summary
    buckets = row[HIST_HEADER_WORDS:]
    cumulative = np.cumsum(buckets)
    total = int(cumulative[-1])
    summary.update({"mean": row[H_SUM] / count, "min": float(row[H_MIN]), "max": float(row[H_MAX])})
    for q in quantiles:
        rank = max(1, int(np.ceil(q * total)))
        bucket = int(np.searchsorted(cumulative, rank))
        value = min(_bucket_value(bucket), float(row[H_MAX]))
        summary[f"p{_q_label(q)}"] = max(value, float(row[H_MIN]))
    return summary


def _q_label(q: float) -> str:
    return f"{q * 100:g}".replace(".", "")  # 0.5 -> "50", 0.99 -> "99", 0.999 -> "999"


def counters_dict(block: np.ndarray) -> dict[str, int]:
    """Return this block's named counters as plain ints."""
    return {name: int(block[W_COUNTERS + index]) for index, name in enumerate(COUNTER_NAMES)}
