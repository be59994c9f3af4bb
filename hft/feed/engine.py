"""The feed engine: Binance combined-stream frames and REST snapshots in, MD_EVENT records and books out.

Pure logic: no sockets, no processes, no shared memory, no clock (every call takes ``ts_recv``). The caller (a
process in ``procs/``, a replayer or a test) owns the loop::

    engine = FeedEngine([SymbolSpec("BTCUSDT", 0, 2, 8)])
    for raw, ts_recv in frames:
        n = engine.on_frame(raw, ts_recv)          # engine.events[:n] is this frame's records
        publish(engine.events[:n])
        for sid in np.flatnonzero(engine.dirty):   # books that changed: copy engine.snapshots[sid] out
            publish_snapshot(engine.snapshots[sid]); engine.dirty[sid] = 0
        for symbol in engine.needs_snapshot():     # fetch GET /api/v3/depth?symbol=...&limit=5000
            engine.on_snapshot(symbol, body, ts_recv)

Per frame, exactly one call into jitted code: ``hft.feed.fastpath.frame_kernel`` scans the raw bytes of a frame
of the usual shape, parses the decimal strings exactly, applies or buffers the diff, writes the events and the
snapshot and counts by reason. A frame it declines (any unusual shape; nothing is changed then) takes the
reference path: one msgspec decode into ``WireFrame`` (the union of the three payloads), a dict lookup of the
stream name, then one kernel of ``hft.feed.sync`` on the numeric spans. Both paths share the same cores, and a
differential test holds them to identical output. Nothing escapes ``on_frame``: every failure is a count in
``stats`` (``STAT_*``) and 0 events. All state (books, buffers, events, snapshots, counters) lives in one int64
arena so that each call unboxes a single array, and ``on_frame`` calls the kernel's compiled entry point for
``(arena, bytes, int)`` directly instead of through numba's dispatcher (its argument typing cost ~0.15 us).

Event encoding (``engine.events``, overwritten by every call; the last record of a call carries
``FLAG_LAST_IN_FRAME``; ``ts_init`` is 0 for the caller to stamp):

* depthUpdate on a synced book: one ``EV_BOOK_LEVEL`` per wire level, bids then asks, in wire order; ``side``,
  absolute ``size`` (0 removes), ``update_id`` = the diff's ``u``, ``ts_exch`` = ``E`` * 1e6.
  While buffering: nothing. When the book is thrown away (gap, bad number or level, off grid, crossed): one
  ``EV_BOOK_RESET``
  (``update_id`` = the book's last good id) and the snapshot's status becomes ``BOOK_RESYNCING``.
* snapshot applied (``on_snapshot``): ``EV_BOOK_RESET`` (``update_id`` = lastUpdateId), then every level we keep
  with ``FLAG_SNAPSHOT`` (bids best first, then asks), then the levels of the buffered diffs applied on top.
* bookTicker: two ``EV_BBO`` records, bid (``SIDE_BUY``, price ``b``, size ``B``) then ask (``SIDE_SELL``, ``a``,
  ``A``), ``update_id`` = ``u``, ``ts_exch`` = the symbol's venue clock: no event time on spot, so the latest
  depth/trade ``E`` plus the receive time elapsed since (``hft.feed.sync.venue_clock``; 0 before any ``E``).
* trade: one ``EV_TRADE``, ``side`` = aggressor (``m`` true: the buyer is the maker, so ``SIDE_SELL``),
  ``update_id`` = trade id ``t``, ``ts_exch`` = ``E`` * 1e6.

Book levels are only emitted for synced books; trades and bookTickers always.

Size limits: a frame longer than ``max_frame_bytes`` (1 MiB; a diff is a few KB) is counted as
``STAT_HUGE_FRAME`` and dropped without being read, so nobody can tell whether it was a diff. Nothing more is
done: if it was a diff of a synced book, the next diff does not continue the book's ``u`` and the book is
thrown away and resynced by the usual gap rule; if it was a trade or a bookTicker, the book lost nothing. A REST
snapshot body has its own limit, ``max_snapshot_bytes`` (8 MiB; a 5000-level body is ~200 KB): over it,
``on_snapshot`` returns ``SNAP_HUGE`` and the book keeps asking for a snapshot.

Grid: ``SymbolSpec.tick_size``/``lot_size`` are the venue's price and quantity steps in fixed-point units. A
level off the grid in a diff or a snapshot is counted as ``STAT_OFF_GRID`` and treated as a bad number (the
diff resyncs a synced book, the snapshot is rejected); an off-grid trade or bookTicker is counted and dropped.
Caution with the lot on depth: a level's size is the sum of resting orders, and orders placed under an older,
finer quantity step stay in the book. The recorded BTCUSDT session (6 minutes) has 3 diffs with such levels far
from the touch (asks at 74,000-200,000 USDT, e.g. ``25.42618900`` against today's step 0.00001); with that lot
each of them throws a synced book away. ``lot_size=1`` avoids it; the tick held on every recorded price.

Single writer: one thread drives an engine.
"""

from __future__ import annotations

import gc
import gzip
import os
import time
from collections.abc import Callable

import msgspec
import numpy as np
from numba import njit, typeof, types

from hft.feed.book import DEFAULT_DEPTH_CAPACITY, book_levels_best_first
from hft.feed.decimal import INT64_MAX, MAX_DECIMALS
from hft.feed.drain import drain_frames as _drain_frames
from hft.feed.fastpath import frame_kernel
from hft.feed.messages import (
    FRAME_DECODER,
    KIND_BOOK_TICKER,
    KIND_DEPTH,
    KIND_TRADE,
    SNAPSHOT_DECODER,
    decode_message,
    stream_channel_kind,
)
from hft.feed.sync import (
    C_BAND_PPM,
    C_BUF_DIFFS,
    C_CONFIGURED,
    C_DIRTY,
    C_LAST_U,
    C_LOT,
    C_MAX_DRIFT_NS,
    C_MAX_SIZE,
    C_N_ASKS,
    C_N_BIDS,
    C_NAME,
    C_NAME_LEN,
    C_NEED_SNAPSHOT,
    C_PRICE_DECIMALS,
    C_SIZE_DECIMALS,
    C_STATUS,
    C_SYMBOL_ID,
    C_TICK,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_SNAPSHOT_BYTES,
    MAX_NAME,
    N_STATS,
    REASON_STATS,
    SNAP_BAD_NUMBER,
    SNAP_CROSSED,
    SNAP_GAP,
    SNAP_HUGE,
    SNAP_IGNORED,
    SNAP_MALFORMED,
    SNAP_OFF_GRID,
    SNAP_OUTLIER,
    SNAP_OVERFLOW,
    SNAP_STALE,
    SNAP_UNKNOWN_SYMBOL,
    STAT_BAD_LEVEL,
    STAT_BAD_NUMBER,
    STAT_BBO,
    STAT_BUFFER_OVERFLOW,
    STAT_BUFFERED,
    STAT_CROSSED,
    STAT_DEPTH,
    STAT_DIFFS_APPLIED,
    STAT_DISCONNECTS,
    STAT_DROPPED_STALE,
    STAT_EVENTS_OVERFLOW,
    STAT_FAST_FRAMES,
    STAT_FRAMES,
    STAT_GAPS,
    STAT_HUGE_FRAME,
    STAT_MALFORMED,
    STAT_NAMES,
    STAT_OFF_GRID,
    STAT_RESYNCS,
    STAT_SNAPSHOTS,
    STAT_SNAPSHOTS_APPLIED,
    STAT_SNAPSHOTS_IGNORED,
    STAT_SNAPSHOTS_STALE,
    STAT_TOO_DEEP,
    STAT_TRADES,
    STAT_TRUNCATED,
    STAT_UNKNOWN_STREAM,
    STAT_UNKNOWN_SYMBOL,
    bbo_kernel,
    depth_kernel,
    disconnect_kernel,
    new_arena,
    numpy_views,
    snapshot_kernel,
    trade_kernel,
)
from hft.validation import require
from shm_layout.records import BOOK_EMPTY, BOOK_SYNCED, MAX_SYMBOLS, SIDE_BUY, SIDE_SELL

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "DEFAULT_MAX_SNAPSHOT_BYTES",
    "N_STATS",
    "REASON_STATS",
    "SNAP_BAD_NUMBER",
    "SNAP_CROSSED",
    "SNAP_GAP",
    "SNAP_HUGE",
    "SNAP_IGNORED",
    "SNAP_MALFORMED",
    "SNAP_OFF_GRID",
    "SNAP_OUTLIER",
    "SNAP_OVERFLOW",
    "SNAP_STALE",
    "SNAP_UNKNOWN_SYMBOL",
    "STAT_BAD_LEVEL",
    "STAT_BAD_NUMBER",
    "STAT_BBO",
    "STAT_BUFFERED",
    "STAT_BUFFER_OVERFLOW",
    "STAT_CROSSED",
    "STAT_DEPTH",
    "STAT_DIFFS_APPLIED",
    "STAT_DISCONNECTS",
    "STAT_DROPPED_STALE",
    "STAT_EVENTS_OVERFLOW",
    "STAT_FAST_FRAMES",
    "STAT_FRAMES",
    "STAT_GAPS",
    "STAT_HUGE_FRAME",
    "STAT_MALFORMED",
    "STAT_NAMES",
    "STAT_OFF_GRID",
    "STAT_RESYNCS",
    "STAT_SNAPSHOTS",
    "STAT_SNAPSHOTS_APPLIED",
    "STAT_SNAPSHOTS_IGNORED",
    "STAT_SNAPSHOTS_STALE",
    "STAT_TRADES",
    "STAT_TRUNCATED",
    "STAT_UNKNOWN_STREAM",
    "STAT_UNKNOWN_SYMBOL",
    "FeedEngine",
    "SymbolSpec",
    "measure_on_frame",
    "require",
]

_DECODE_ERRORS = (msgspec.DecodeError, TypeError, ValueError, OverflowError)
MAX_JSON_DEPTH = 32  # Binance's payloads nest 4 deep; a decoder recursing on 5,000 killed the feed


@njit(cache=True, nogil=True)
def json_too_deep(buf, limit: int) -> bool:
    """Whether the JSON text nests objects/arrays deeper than ``limit`` (brackets inside strings do not count):
    checked before a frame or snapshot reaches the recursive decoder, which would raise RecursionError."""
    depth = 0
    in_string = False
    escaped = False
    for k in range(len(buf)):
        c = buf[k]
        if in_string:
            if escaped:
                escaped = False
            elif c == 92:  # backslash
                escaped = True
            elif c == 34:  # closing quote
                in_string = False
        elif c == 34:
            in_string = True
        elif c == 123 or c == 91:  # { [
            depth += 1
            if depth > limit:
                return True
        elif c == 125 or c == 93:  # } ]
            depth -= 1
    return False


def _timestamp(ts: object) -> int:
    """Return ``ts`` as an int64-ranged ``int``; raise on anything else (a caller's bug: fail loudly)."""
    if type(ts) is not int:
        if isinstance(ts, bool) or not isinstance(ts, (int, np.integer)):
            raise TypeError(f"ts_recv must be an int of nanoseconds, got {type(ts).__name__}")
        ts = int(ts)
    if not -INT64_MAX - 1 <= ts <= INT64_MAX:
        raise ValueError(f"ts_recv {ts} does not fit in int64")
    return ts


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _as_bytes(data: object) -> bytes:
    """The bytes the nesting guard scans: text and buffers as bytes; anything else (the decoder will refuse it)
    as nothing."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    return b""


def _byte_length(data: object) -> int:
    """Length in bytes of a frame as the wire carried it (UTF-8 for ``str``); 0 for what is not a frame at all."""
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    if isinstance(data, memoryview):
        return data.nbytes
    if isinstance(data, str):
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    return 0


class SymbolSpec(msgspec.Struct, frozen=True):
    """One instrument: venue name (``"BTCUSDT"``), shared-memory id, fixed-point scales and grid.

    ``price_decimals``/``size_decimals`` must cover every decimal the venue sends with a non-zero digit, or
    those numbers are rejected (``STAT_BAD_NUMBER``) and the book resyncs.
    ``tick_size``/``lot_size`` are the venue's price and quantity steps in those fixed-point units (BTCUSDT at
    2 and 8 decimals: tick 0.01 -> 1, lot 0.00001 -> 1000); the default 1 accepts every number the decimals
    can express. Off-grid numbers are rejected (``STAT_OFF_GRID``) like bad numbers.

    Sanity bounds (0: off, the default here; the pipeline's config turns them on): ``price_band_ppm`` holds
    bookTicker and trade prices to that distance from the last good mid of the synced book (book levels to
    ``DEPTH_BAND`` times either way), ``max_size`` caps every size in size units, ``max_drift_ns`` holds the venue
    time E of diffs and trades to that distance from the local receive time ``ts_local`` (wall clock). Outliers
    are counted (``STAT_OUTLIERS``) and dropped (a diff: the book resyncs).
    """

    name: str
    symbol_id: int
    price_decimals: int
    size_decimals: int
    tick_size: int = 1
    lot_size: int = 1
    price_band_ppm: int = 0
    max_size: int = 0
    max_drift_ns: int = 0


class FeedEngine:
    """Keep one synchronised L2 book per symbol from Binance combined-stream frames and REST snapshots.

    Parameters
    ----------
    symbols
        The instruments; ``symbol_id`` values must be distinct, in ``0..MAX_SYMBOLS-1``.
    depth_capacity
        Levels kept per side; a full side keeps its best levels (``STAT_TRUNCATED`` counts the rest).
    max_events
        Size of ``events``; defaults to a full two-sided snapshot plus a full diff buffer plus margin, the most
        a single call can write.
    fast_path
        Try the jitted whole-frame scanner (``hft.feed.fastpath``) first; frames it declines, and every frame
        when False, go through msgspec. Results are identical either way.
    max_buffered_diffs, max_buffered_levels
        Per-symbol buffer for diffs that arrive before the snapshot (the oldest are dropped when full, counted
        in ``STAT_BUFFER_OVERFLOW``; a snapshot older than what is left is then refetched).
    max_frame_bytes
        Longest frame decoded; longer ones are counted (``STAT_HUGE_FRAME``) and dropped unread (see the module
        docstring for what that means for the book).
    max_snapshot_bytes
        Longest REST snapshot body decoded; longer ones are counted (``STAT_HUGE_FRAME``) and ``SNAP_HUGE``.

    Attributes
    ----------
    events : ndarray of MD_EVENT
        Output of the last ``on_frame``/``on_snapshot``/``on_disconnect``; records ``[:n]`` are valid.
    snapshots : ndarray of BOOK_SNAPSHOT, indexed by symbol_id
        Top of each book, rewritten after every successful update (``seq`` and ``ts_init`` are never touched).
    dirty : int64 view, indexed by symbol_id
        Set to 1 when ``snapshots[symbol_id]`` changed; the caller clears it after publishing.
    stats : int64 view of ``N_STATS`` counters, indexed by ``STAT_*``.
    """

    def __init__(
        self,
        symbols: list[SymbolSpec],
        depth_capacity: int = DEFAULT_DEPTH_CAPACITY,
        max_events: int | None = None,
        max_buffered_diffs: int = 1024,
        max_buffered_levels: int = 16384,
        fast_path: bool = True,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
    ) -> None:
        require(len(symbols) > 0, "at least one symbol")
        ids = [s.symbol_id for s in symbols]
        require(len(set(ids)) == len(ids), f"duplicate symbol_id in {ids}")
        names = [s.name.upper() for s in symbols]
        require(len(set(names)) == len(names), f"duplicate symbol name in {names}")
        for s in symbols:
            require(0 <= s.symbol_id < MAX_SYMBOLS, f"{s.name}: symbol_id {s.symbol_id} not in 0..{MAX_SYMBOLS - 1}")
            require(0 <= s.price_decimals <= MAX_DECIMALS, f"{s.name}: price_decimals out of range")
            require(0 <= s.size_decimals <= MAX_DECIMALS, f"{s.name}: size_decimals out of range")
            require(s.name.isascii() and s.name.isalnum(), f"{s.name!r}: not a venue symbol")
            require(len(s.name) <= MAX_NAME, f"{s.name!r}: longer than {MAX_NAME} characters")
            for field in ("tick_size", "lot_size"):
                step = getattr(s, field)
                require(
                    type(step) is int and 1 <= step <= INT64_MAX,
                    f"{s.name}: {field} must be an int >= 1 in fixed-point units, got {step!r}",
                )
            for field in ("price_band_ppm", "max_size", "max_drift_ns"):
                bound = getattr(s, field)
                require(type(bound) is int and 0 <= bound <= INT64_MAX, f"{s.name}: {field} must be an int >= 0")
        require(depth_capacity >= 1, "depth_capacity must be >= 1")
        require(1 <= max_frame_bytes <= INT64_MAX, "max_frame_bytes must be >= 1")
        require(max_snapshot_bytes >= 1, "max_snapshot_bytes must be >= 1")
        require(max_buffered_diffs >= 1 and max_buffered_levels >= 1, "buffer sizes must be >= 1")
        if max_events is None:
            max_events = 1 + 2 * max(depth_capacity, DEFAULT_DEPTH_CAPACITY) + max_buffered_levels + 64
        require(max_events >= 1 + 2 * depth_capacity, "max_events must hold a full snapshot")

        self.symbols = list(symbols)
        self.fast_path = bool(fast_path)
        self.depth_capacity = depth_capacity
        self.max_frame_bytes = int(max_frame_bytes)
        self.max_snapshot_bytes = int(max_snapshot_bytes)
        n_rows = max(ids) + 1
        self._n_rows = n_rows
        self._arena = new_arena(
            n_rows, depth_capacity, max_buffered_diffs, max_buffered_levels, max_events, self.max_frame_bytes
        )
        # The compiled frame scanner for exactly (arena, bytes, int64), called without the dispatcher, whose
        # typing of the arguments (a bytes argument takes its slow path) made a no-op kernel cost 0.31 us a call
        # instead of 0.16 us. The entry point does not check types: on_frame passes it only exactly those.
        self._frame_entry = frame_kernel.compile((typeof(self._arena), typeof(b""), types.int64, types.int64))
        # views of the arena for the Python side (the kernels build the same views from its header)
        self._ctl, self._book, self._bufd, self._bufl, self.events, self.snapshots = numpy_views(self._arena)
        self.stats = self._ctl[n_rows, :N_STATS]
        self.dirty = self._ctl[:n_rows, C_DIRTY]

        self._by_name: dict[str, int] = {}
        self._routes: dict[str, tuple[int, int, str]] = {}
        for s, name in zip(symbols, names, strict=True):
            sid = s.symbol_id
            row = self._ctl[sid]
            row[C_PRICE_DECIMALS] = s.price_decimals
            row[C_SIZE_DECIMALS] = s.size_decimals
            row[C_TICK] = s.tick_size
            row[C_LOT] = s.lot_size
            row[C_BAND_PPM] = s.price_band_ppm
            row[C_MAX_SIZE] = s.max_size
            row[C_MAX_DRIFT_NS] = s.max_drift_ns
            row[C_SYMBOL_ID] = sid
            row[C_CONFIGURED] = 1
            row[C_STATUS] = BOOK_EMPTY
            row[C_NEED_SNAPSHOT] = 1
            lower_bytes = name.lower().encode("ascii")
            row[C_NAME_LEN] = len(lower_bytes)
            row[C_NAME : C_NAME + len(lower_bytes)] = list(lower_bytes)
            self.snapshots["symbol_id"][sid] = sid
            self._by_name[name] = sid
            lower = name.lower()
            for channel, kind in (
                ("depth", KIND_DEPTH),
                ("depth@100ms", KIND_DEPTH),
                ("bookTicker", KIND_BOOK_TICKER),
                ("trade", KIND_TRADE),
            ):
                self._routes[f"{lower}@{channel}"] = (kind, sid, name)
        self._lower_names = {n.lower() for n in names}

    # ------------------------------------------------------------------ hot path
    def on_frame(self, raw: bytes, ts_recv: int, ts_local: int | None = None) -> int:
        """Decode one combined-stream frame and return the number of records written to ``events``.

        Never raises on bad input: malformed JSON, missing fields, unknown symbols or channels, bad numbers and
        crossed books are counted in ``stats`` and yield 0 records (or a single ``EV_BOOK_RESET``).
        ``ts_recv`` must be an ``int`` or a numpy integer in int64 range (nanoseconds): anything else is the
        caller's bug, not bad input, and raises ``TypeError``/``ValueError``.
        ``ts_local`` is the receive clock bookTickers are stamped on (``hft.feed.sync.venue_clock``): a replay
        passes the recording's receive time, so its stamps do not depend on this machine; default ``ts_recv``.
        Pass ``bytes`` (websocket-client: ``WebSocket.recv_data()`` rather than ``recv()``, which decodes text
        frames to ``str``): other types are handled, but only by the msgspec path.
        """
        if ts_local is None:
            ts_local = ts_recv
        if type(raw) is bytes and not raw.isascii() and not _valid_utf8(raw):
            # a text frame must be UTF-8 (the websocket's own check is off: ~30 us a frame in pure Python);
            # Binance sends ASCII, so only a non-ASCII frame pays for this, and invalid text is malformed even
            # inside a key nobody reads
            return self._reject(STAT_MALFORMED)
        if type(raw) is bytes and self.fast_path:
            if type(ts_recv) is not int:
                ts_recv = _timestamp(ts_recv)
            if type(ts_local) is not int:
                ts_local = _timestamp(ts_local)
            try:
                n = self._frame_entry(self._arena, raw, ts_recv, ts_local)
            except OverflowError:
                n = _timestamp(ts_recv) + _timestamp(ts_local)  # raises: a clock beyond int64
            if n >= 0:
                return n
        return self._on_frame_msgspec(raw, ts_recv, ts_local)

    def drain(self, buf: np.ndarray, cursor: np.ndarray, outlet: object, trace: np.ndarray) -> int:
        """Decode and publish every complete text frame of a receive buffer in one jitted call
        (``hft.feed.drain.drain_frames``; ``outlet`` is a ``hft.feed.publish.FeedOutlet``); return how many.
        Only the fast path runs there: it stops at the first frame it does not take, for ``on_frame``."""
        if not self.fast_path:
            return 0
        return _drain_frames(self._arena, outlet, buf, cursor, trace)

    def _on_frame_msgspec(self, raw: bytes, ts_recv: int, ts_local: int) -> int:
        """The reference path: msgspec decode, dispatch on the stream name, one kernel call."""
        ts_recv = _timestamp(ts_recv)
        ts_local = _timestamp(ts_local)
        if _byte_length(raw) > self.max_frame_bytes:
            return self._reject(STAT_HUGE_FRAME)
        if json_too_deep(_as_bytes(raw), MAX_JSON_DEPTH):
            return self._reject(STAT_TOO_DEEP)
        try:
            frame = FRAME_DECODER.decode(raw)
        except _DECODE_ERRORS:
            return self._reject(STAT_MALFORMED)
        route = self._routes.get(frame.stream)
        if route is None:
            return self._reject_stream(frame.stream)
        kind, sid, name = route
        d = frame.data
        if d.s != name:
            return self._reject(STAT_MALFORMED)
        try:
            if kind == KIND_DEPTH:
                b = d.b
                a = d.a
                if d.e != "depthUpdate" or not b or not a:
                    return self._reject(STAT_MALFORMED)
                return depth_kernel(
                    self._arena,
                    b"".join((b, a)),
                    len(b),
                    sid,
                    d.U,
                    d.u,
                    d.E,
                    ts_recv,
                    ts_local,
                )
            if kind == KIND_BOOK_TICKER:
                return bbo_kernel(
                    self._arena,
                    b"".join((d.b, d.B, d.a, d.A)),
                    sid,
                    d.u,
                    ts_recv,
                    ts_local,
                )
            m = d.m
            if d.e != "trade" or m is None:
                return self._reject(STAT_MALFORMED)
            return trade_kernel(self._arena, b"".join((d.p, d.q)), sid, d.t, d.E, m, ts_recv, ts_local)
        except (TypeError, ValueError, OverflowError):
            # a decoded field numba cannot convert: counted, never raised (ts_recv was checked above)
            return self._reject(STAT_MALFORMED)

    def on_snapshot(self, symbol: str, body: bytes, ts_recv: int) -> int:
        """Apply the REST depth snapshot ``body`` of ``symbol`` and the diffs buffered since the connect.

        Returns
        -------
        int
            The number of records written to ``events`` (``EV_BOOK_RESET``, the book with ``FLAG_SNAPSHOT``, the
            buffered diffs applied on top) when applied; ``SNAP_IGNORED`` (0) when the book did not need a
            snapshot; a negative ``SNAP_*`` status otherwise (``SNAP_STALE``: ``lastUpdateId`` is older than the
            first buffered diff, fetch again; ``SNAP_HUGE``: the body is over ``max_snapshot_bytes``, not read;
            ``SNAP_OFF_GRID``: a level off the tick/lot grid). Never raises on bad input.
        """
        sid = self._by_name.get(symbol.upper()) if isinstance(symbol, str) else None
        if sid is None:
            self.stats[STAT_SNAPSHOTS] += 1
            self.stats[STAT_UNKNOWN_SYMBOL] += 1
            return SNAP_UNKNOWN_SYMBOL
        if _byte_length(body) > self.max_snapshot_bytes:
            self.stats[STAT_SNAPSHOTS] += 1
            self.stats[STAT_HUGE_FRAME] += 1
            return SNAP_HUGE
        if type(body) is bytes and not body.isascii() and not _valid_utf8(body):
            self.stats[STAT_SNAPSHOTS] += 1
            self.stats[STAT_MALFORMED] += 1
            return SNAP_MALFORMED
        if json_too_deep(_as_bytes(body), MAX_JSON_DEPTH):
            self.stats[STAT_SNAPSHOTS] += 1
            self.stats[STAT_TOO_DEEP] += 1
            return SNAP_MALFORMED
        try:
            snap = SNAPSHOT_DECODER.decode(body)
            bids = snap.bids
            return snapshot_kernel(
                self._arena,
                b"".join((bids, snap.asks)),
                len(bids),
                sid,
                snap.last_update_id,
                ts_recv,
            )
        except _DECODE_ERRORS:
            self.stats[STAT_SNAPSHOTS] += 1
            self.stats[STAT_MALFORMED] += 1
            return SNAP_MALFORMED

    def on_disconnect(self, ts_recv: int) -> int:
        """Throw every book away after the stream broke (diffs were lost); return the ``EV_BOOK_RESET`` count."""
        return disconnect_kernel(self._arena, ts_recv)

    # ------------------------------------------------------------------ queries
    def needs_snapshot(self) -> list[str]:
        """Return the symbols whose book waits for a REST snapshot.

        A symbol is listed once at least one diff is buffered, so the snapshot is fetched after the stream
        started (Binance's step 2-3); it stays listed until a snapshot is applied.
        """
        ctl = self._ctl
        return [
            s.name for s in self.symbols if ctl[s.symbol_id, C_NEED_SNAPSHOT] != 0 and ctl[s.symbol_id, C_BUF_DIFFS] > 0
        ]

    def status(self, symbol: str) -> int:
        """Return the book status of ``symbol``: ``BOOK_EMPTY``, ``BOOK_SYNCED`` or ``BOOK_RESYNCING``."""
        return int(self._ctl[self._symbol_id(symbol), C_STATUS])

    def update_id(self, symbol: str) -> int:
        """Return the update id the book of ``symbol`` reflects (lastUpdateId, then the last applied ``u``)."""
        return int(self._ctl[self._symbol_id(symbol), C_LAST_U])

    def book(self, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return copies of ``(bid_prices, bid_sizes, ask_prices, ask_sizes)``, best first (tests, tools).

        The book is held best-last internally (``hft.feed.book``); these copies are in the venue's order.
        """
        sid = self._symbol_id(symbol)
        px = self._book[sid, 0]
        sz = self._book[sid, 1]
        counts = self._ctl[sid, C_N_BIDS : C_N_ASKS + 1]
        bid_px, bid_sz = book_levels_best_first(px, sz, counts, SIDE_BUY)
        ask_px, ask_sz = book_levels_best_first(px, sz, counts, SIDE_SELL)
        return bid_px, bid_sz, ask_px, ask_sz

    def stats_dict(self) -> dict[str, int]:
        """Return the counters by name."""
        return {name: int(v) for name, v in zip(STAT_NAMES, self.stats, strict=True)}

    # ------------------------------------------------------------------ internals
    def _symbol_id(self, symbol: str) -> int:
        sid = self._by_name.get(symbol.upper())
        if sid is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return sid

    def on_frame_too_large(self) -> int:
        """Count a frame the connection dropped while receiving it (over ``max_frame_bytes``): a huge frame,
        exactly as if it had been passed here."""
        return self._reject(STAT_HUGE_FRAME)

    def _reject(self, stat: int) -> int:
        stats = self.stats
        stats[STAT_FRAMES] += 1
        stats[stat] += 1
        return 0

    def _reject_stream(self, stream: object) -> int:
        if not isinstance(stream, str):
            return self._reject(STAT_MALFORMED)
        symbol, _ = stream_channel_kind(stream)
        if symbol in self._lower_names:
            return self._reject(STAT_UNKNOWN_STREAM)
        return self._reject(STAT_UNKNOWN_SYMBOL)


# ---------------------------------------------------------------------- measurement
def _read_recording(path: str | os.PathLike[str]) -> list[tuple[int, bytes]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    with opener(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if line:
                ts, _, js = line.partition(b" ")
                out.append((int(ts), js))
    return out


def measure_on_frame(
    path: str | os.PathLike[str],
    n_repeats: int = 5,
    spec: SymbolSpec | None = None,
    fast_path: bool = True,
    small_levels: int = 10,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> dict[str, np.ndarray]:
    """Replay a recording through fresh engines and return the latency of each ``on_frame`` call, by kind.

    For ``bench/feed.py`` (which warms nothing itself and prints what it gets): one unrecorded pass warms the
    JIT and the caches, then ``n_repeats`` passes, each on a new engine (update ids must start over), time every
    call with ``clock`` from bytes in to events and snapshot ready. Samples therefore include one clock read
    (~50 ns with ``perf_counter_ns``) and the Python call of ``on_frame``, as a caller sees it. The garbage
    collector is off during the timed passes.

    Parameters
    ----------
    path
        Lines ``<ns> <json>`` (gzip if the name ends in ``.gz``), as the hftbacktest Binance recordings: a
        combined-stream frame, or a bare REST body ``{"lastUpdateId":...}`` which is given to ``on_snapshot``.
    n_repeats
        Timed passes over the whole file.
    spec
        The file's instrument; by default the symbol of the first frame, at 8 price and 8 size decimals (what
        Binance prints), no grid.
    fast_path
        As ``FeedEngine``: False times the msgspec reference path.
    small_levels
        Threshold of the ``depth_le``/``depth_gt`` split.

    Returns
    -------
    dict of int64 arrays of nanoseconds, keys present only when they have samples:
        ``depth`` every diff applied to a synced book; ``depth_le{small_levels}`` and ``depth_gt{small_levels}``
        the same split by level count (bids + asks); ``depth_buffered`` diffs that arrived before the snapshot;
        ``bbo``; ``trade``; ``other`` (frames the typed decoder rejects); ``snapshot`` the ``on_snapshot`` calls.
    """
    require(n_repeats >= 1, "n_repeats must be >= 1")
    lines = _read_recording(path)
    kinds: list[str] = []
    symbol = spec.name if spec is not None else None
    for _, js in lines:
        if js.startswith(b'{"lastUpdateId"'):
            kinds.append("snapshot")
            continue
        status, kind, msg = decode_message(js)
        if status != 0 or msg is None:
            kinds.append("other")
        elif kind == KIND_DEPTH:
            small = len(msg.b) + len(msg.a) <= small_levels
            kinds.append(f"depth_le{small_levels}" if small else f"depth_gt{small_levels}")
        else:
            kinds.append("bbo" if kind == KIND_BOOK_TICKER else "trade")
        if symbol is None and msg is not None:
            symbol = msg.s
    require(symbol is not None, f"{path}: no frame names a symbol")
    if spec is None:
        spec = SymbolSpec(symbol, 0, 8, 8)
    samples: dict[str, list[int]] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rep in range(n_repeats + 1):
            engine = FeedEngine([spec], fast_path=fast_path)
            on_frame = engine.on_frame
            on_snapshot = engine.on_snapshot
            record = rep > 0
            for (ts, js), kind in zip(lines, kinds, strict=True):
                if kind == "snapshot":
                    t0 = clock()
                    on_snapshot(spec.name, js, ts)
                    t1 = clock()
                else:
                    synced = engine.status(spec.name) == BOOK_SYNCED if kind.startswith("depth") else True
                    t0 = clock()
                    on_frame(js, ts)
                    t1 = clock()
                    if not synced:
                        kind = "depth_buffered"
                if record:
                    samples.setdefault(kind, []).append(t1 - t0)
                    if kind.startswith("depth_") and kind != "depth_buffered":
                        samples.setdefault("depth", []).append(t1 - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {kind: np.asarray(values, dtype=np.int64) for kind, values in samples.items()}
