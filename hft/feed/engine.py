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
arena so that each call unboxes a single array.

Event encoding (``engine.events``, overwritten by every call; the last record of a call carries
``FLAG_LAST_IN_FRAME``; ``ts_init`` is 0 for the caller to stamp):

* depthUpdate on a synced book: one ``EV_BOOK_LEVEL`` per wire level, bids then asks, in wire order; ``side``,
  absolute ``size`` (0 removes), ``update_id`` = the diff's ``u``, ``ts_exch`` = ``E`` * 1e6.
  While buffering: nothing. When the book is thrown away (gap, bad number, crossed): one ``EV_BOOK_RESET``
  (``update_id`` = the book's last good id) and the snapshot's status becomes ``BOOK_RESYNCING``.
* snapshot applied (``on_snapshot``): ``EV_BOOK_RESET`` (``update_id`` = lastUpdateId), then every level we keep
  with ``FLAG_SNAPSHOT`` (bids best first, then asks), then the levels of the buffered diffs applied on top.
* bookTicker: two ``EV_BBO`` records, bid (``SIDE_BUY``, price ``b``, size ``B``) then ask (``SIDE_SELL``, ``a``,
  ``A``), ``update_id`` = ``u``, ``ts_exch`` = 0 (no event time on spot).
* trade: one ``EV_TRADE``, ``side`` = aggressor (``m`` true: the buyer is the maker, so ``SIDE_SELL``),
  ``update_id`` = trade id ``t``, ``ts_exch`` = ``E`` * 1e6.

Book levels are only emitted for synced books; trades and bookTickers always.
Single writer: one thread drives an engine.
"""

from __future__ import annotations

import msgspec
import numpy as np

from hft.feed.book import ASK_ROW, BID_ROW, DEFAULT_DEPTH_CAPACITY
from hft.feed.decimal import MAX_DECIMALS
from hft.feed.fastpath import frame_kernel
from hft.feed.messages import (
    FRAME_DECODER,
    KIND_BOOK_TICKER,
    KIND_DEPTH,
    KIND_TRADE,
    SNAPSHOT_DECODER,
    stream_channel_kind,
)
from hft.feed.sync import (
    C_BUF_DIFFS,
    C_CONFIGURED,
    C_DIRTY,
    C_LAST_U,
    C_N_ASKS,
    C_N_BIDS,
    C_NAME,
    C_NAME_LEN,
    C_NEED_SNAPSHOT,
    C_PRICE_DECIMALS,
    C_SIZE_DECIMALS,
    C_STATUS,
    C_SYMBOL_ID,
    MAX_NAME,
    N_STATS,
    SNAP_BAD_NUMBER,
    SNAP_CROSSED,
    SNAP_GAP,
    SNAP_IGNORED,
    SNAP_MALFORMED,
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
    STAT_MALFORMED,
    STAT_NAMES,
    STAT_RESYNCS,
    STAT_SNAPSHOTS,
    STAT_SNAPSHOTS_APPLIED,
    STAT_SNAPSHOTS_IGNORED,
    STAT_SNAPSHOTS_STALE,
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
from shm_layout.records import BOOK_EMPTY, MAX_SYMBOLS

__all__ = [
    "N_STATS",
    "SNAP_BAD_NUMBER",
    "SNAP_CROSSED",
    "SNAP_GAP",
    "SNAP_IGNORED",
    "SNAP_MALFORMED",
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
    "STAT_MALFORMED",
    "STAT_NAMES",
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
    "require",
]

_DECODE_ERRORS = (msgspec.DecodeError, TypeError, ValueError, OverflowError)


class SymbolSpec(msgspec.Struct, frozen=True):
    """One instrument: venue name (``"BTCUSDT"``), shared-memory id and fixed-point scales.

    ``price_decimals``/``size_decimals`` must cover every decimal the venue sends with a non-zero digit, or
    those numbers are rejected (``STAT_BAD_NUMBER``) and the book resyncs.
    """

    name: str
    symbol_id: int
    price_decimals: int
    size_decimals: int


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``: validation at the edge, never inside kernels."""
    if not condition:
        raise ValueError(message)


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
        require(depth_capacity >= 1, "depth_capacity must be >= 1")
        require(max_buffered_diffs >= 1 and max_buffered_levels >= 1, "buffer sizes must be >= 1")
        if max_events is None:
            max_events = 1 + 2 * max(depth_capacity, DEFAULT_DEPTH_CAPACITY) + max_buffered_levels + 64
        require(max_events >= 1 + 2 * depth_capacity, "max_events must hold a full snapshot")

        self.symbols = list(symbols)
        self.fast_path = bool(fast_path)
        self.depth_capacity = depth_capacity
        n_rows = max(ids) + 1
        self._n_rows = n_rows
        self._arena = new_arena(n_rows, depth_capacity, max_buffered_diffs, max_buffered_levels, max_events)
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
    def on_frame(self, raw: bytes, ts_recv: int) -> int:
        """Decode one combined-stream frame and return the number of records written to ``events``.

        Never raises on bad input: malformed JSON, missing fields, unknown symbols or channels, bad numbers and
        crossed books are counted in ``stats`` and yield 0 records (or a single ``EV_BOOK_RESET``).
        ``ts_recv`` must be an ``int`` (nanoseconds; other types make numba compile another specialization).
        Pass ``bytes`` (websocket-client: ``WebSocket.recv_data()`` rather than ``recv()``, which decodes text
        frames to ``str``): other types are handled, but only by the msgspec path.
        """
        if self.fast_path and type(raw) is bytes:
            n = frame_kernel(self._arena, raw, ts_recv)
            if n >= 0:
                return n
        return self._on_frame_msgspec(raw, ts_recv)

    def _on_frame_msgspec(self, raw: bytes, ts_recv: int) -> int:
        """The reference path: msgspec decode, dispatch on the stream name, one kernel call."""
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
                )
            if kind == KIND_BOOK_TICKER:
                return bbo_kernel(
                    self._arena,
                    b"".join((d.b, d.B, d.a, d.A)),
                    sid,
                    d.u,
                    ts_recv,
                )
            m = d.m
            if d.e != "trade" or m is None:
                return self._reject(STAT_MALFORMED)
            return trade_kernel(self._arena, b"".join((d.p, d.q)), sid, d.t, d.E, m, ts_recv)
        except (TypeError, ValueError, OverflowError):
            # an argument numba cannot convert (e.g. a ts_recv that is not an int): counted, never raised
            return self._reject(STAT_MALFORMED)

    def on_snapshot(self, symbol: str, body: bytes, ts_recv: int) -> int:
        """Apply the REST depth snapshot ``body`` of ``symbol`` and the diffs buffered since the connect.

        Returns
        -------
        int
            The number of records written to ``events`` (``EV_BOOK_RESET``, the book with ``FLAG_SNAPSHOT``, the
            buffered diffs applied on top) when applied; ``SNAP_IGNORED`` (0) when the book did not need a
            snapshot; a negative ``SNAP_*`` status otherwise (``SNAP_STALE``: ``lastUpdateId`` is older than the
            first buffered diff, fetch again). Never raises on bad input.
        """
        sid = self._by_name.get(symbol.upper()) if isinstance(symbol, str) else None
        if sid is None:
            self.stats[STAT_SNAPSHOTS] += 1
            self.stats[STAT_UNKNOWN_SYMBOL] += 1
            return SNAP_UNKNOWN_SYMBOL
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
        """Return copies of ``(bid_prices, bid_sizes, ask_prices, ask_sizes)``, best first (tests, tools)."""
        sid = self._symbol_id(symbol)
        nb = int(self._ctl[sid, C_N_BIDS])
        na = int(self._ctl[sid, C_N_ASKS])
        px = self._book[sid, 0]
        sz = self._book[sid, 1]
        return px[BID_ROW, :nb].copy(), sz[BID_ROW, :nb].copy(), px[ASK_ROW, :na].copy(), sz[ASK_ROW, :na].copy()

    def stats_dict(self) -> dict[str, int]:
        """Return the counters by name."""
        return {name: int(v) for name, v in zip(STAT_NAMES, self.stats, strict=True)}

    # ------------------------------------------------------------------ internals
    def _symbol_id(self, symbol: str) -> int:
        sid = self._by_name.get(symbol.upper())
        if sid is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return sid

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
