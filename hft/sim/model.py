"""Seeded order-flow model: an exact integer L2 book per symbol and the Binance messages it produces.

The model is pure: no I/O and no wall clock. The caller drives a virtual clock with :meth:`OrderFlowModel.advance`;
event times are a Poisson process drawn from one ``numpy.random.Generator(PCG64(seed))`` stream and depth frames are
cut at fixed virtual boundaries, so the output depends only on the seed, the config and the total virtual time
(not on how the caller slices it).

Price dynamics: each symbol has a latent log fair price. It follows a calm random walk with weak mean reversion and,
at a configurable hazard rate, a trending burst: a *build* phase in which the touch becomes imbalanced in the
direction of the coming move (bid-heavy before an up-move), then a *move* phase in which the fair price drifts by
tens of bps per second. Passive orders are placed around the fair price on a sparse grid; whenever the fair price
crosses the touch a market order sweeps the levels in between, printing trades.

Invariants (asserted by the tests): the book never crosses, every price is a positive multiple of the tick, every
size a positive multiple of the lot, each side keeps at least ``MIN_LEVELS`` and at most ``book_levels`` levels,
and every level change increments the symbol's ``update_id`` by one, so consecutive depth frames satisfy
``U == previous u + 1``.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from hft.sim.config import SimConfig, SimSymbol

__all__ = ["MAX_SNAPSHOT_LIMIT", "MIN_LEVELS", "BookState", "OrderFlowModel", "format_fixed"]

MIN_LEVELS = 5  # market orders never empty a side below this many levels
MAX_SNAPSHOT_LIMIT = 5000  # Binance truncates larger REST depth limits to this
_CALM, _BUILD, _MOVE = 0, 1, 2
_NS = 1_000_000_000
_BLOCK = 4096  # random numbers drawn from the generator at a time
_UNLIMITED = 1 << 62


def format_fixed(value: int, decimals: int) -> str:
    """Format a non-negative fixed-point int with ``decimals`` decimals the way Binance does (8 decimals).

    With more than 8 decimals the digits beyond the 8th must be zero (ticks and lots have at most 8 decimals).
    """
    return _formatter(decimals)(value)


def _formatter(decimals: int) -> Callable[[int], str]:
    """Return a fast formatter for one fixed-point scale: called for every price and size on the wire."""
    if decimals <= 8:
        mul = 10 ** (8 - decimals)

        def fmt(value: int) -> str:
            q, r = divmod(value * mul, 100_000_000)
            return f"{q}.{r:08d}"

        return fmt
    div = 10 ** (decimals - 8)

    def fmt_coarse(value: int) -> str:
        q, r = divmod(value // div, 100_000_000)
        return f"{q}.{r:08d}"

    return fmt_coarse


class BookState(NamedTuple):
    """A copy of one symbol's book: fixed-point ``{price: size}`` per side and the update id it reflects."""

    update_id: int
    bids: dict[int, int]
    asks: dict[int, int]


class _Randoms:
    """Sequential uniform and normal draws, fetched from the generator in blocks because scalar calls are slow.

    The consumption order alone determines the values, so the output does not depend on how time is sliced.
    """

    __slots__ = ("_gen", "_n", "_ni", "_u", "_ui")

    def __init__(self, gen: np.random.Generator) -> None:
        self._gen = gen
        self._u: list[float] = []
        self._ui = 0
        self._n: list[float] = []
        self._ni = 0

    def u(self) -> float:
        i = self._ui
        if i == len(self._u):
            self._u = self._gen.random(_BLOCK).tolist()
            i = 0
        self._ui = i + 1
        return self._u[i]

    def n(self) -> float:
        i = self._ni
        if i == len(self._n):
            self._n = self._gen.standard_normal(_BLOCK).tolist()
            i = 0
        self._ni = i + 1
        return self._n[i]


class _Sym:
    """Mutable per-symbol state; only the model touches it."""

    __slots__ = (
        "ask_px",
        "asks",
        "base_lots",
        "bid_px",
        "bids",
        "depth_head",
        "depth_stream",
        "direction",
        "fmt_p",
        "fmt_q",
        "grid",
        "last_ns",
        "last_touch",
        "log_anchor",
        "log_fair",
        "lot",
        "lower",
        "name",
        "pend_asks",
        "pend_bids",
        "pend_first",
        "regime",
        "regime_end",
        "spec",
        "speed",
        "tick",
        "ticker_head",
        "ticker_stream",
        "trade_head",
        "trade_id",
        "trade_stream",
        "update_id",
    )

    def __init__(self, spec: SimSymbol, config: SimConfig, depth_suffix: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.lower = spec.name.lower()
        self.tick = spec.tick_int
        self.lot = spec.lot_int
        start = spec.start_price_int
        grid_ticks = max(1, round(start * config.level_spacing_bps * 1e-4 / self.tick))
        self.grid = grid_ticks * self.tick
        price_value = start / 10**spec.price_decimals
        lot_value = self.lot / 10**spec.size_decimals
        self.base_lots = max(1.0, config.order_notional / price_value / lot_value)
        self.fmt_p = _formatter(spec.price_decimals)
        self.fmt_q = _formatter(spec.size_decimals)
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid_px: list[int] = []  # ascending; best bid is the last element
        self.ask_px: list[int] = []  # ascending; best ask is the first element
        self.update_id = 0
        self.trade_id = 0
        self.pend_bids: dict[int, int] = {}
        self.pend_asks: dict[int, int] = {}
        self.pend_first = 0  # first update id not yet published in a depth frame (0: none pending)
        self.last_touch: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.log_fair = math.log(start)
        self.log_anchor = self.log_fair
        self.last_ns = 0
        self.regime = _CALM
        self.direction = 0
        self.regime_end = 0
        self.speed = 0.0  # log-price drift per second in the move phase
        self.depth_stream = f"{self.lower}@depth{depth_suffix}"
        self.ticker_stream = f"{self.lower}@bookTicker"
        self.trade_stream = f"{self.lower}@trade"
        self.depth_head = f'{{"stream":"{self.depth_stream}","data":{{"e":"depthUpdate","E":'
        self.ticker_head = f'{{"stream":"{self.lower}@bookTicker","data":{{"u":'
        self.trade_head = f'{{"stream":"{self.lower}@trade","data":{{"e":"trade","E":'


class OrderFlowModel:
    """Generate a seeded stream of Binance combined-stream messages and keep the books they describe.

    Call from one thread only. ``advance`` is the only mutator; ``depth_snapshot`` and the accessors read the
    current state, which already includes level changes not yet published in a depth frame (exactly like a
    Binance REST snapshot taken between two ``@depth@100ms`` frames).
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._rnd = _Randoms(np.random.Generator(np.random.PCG64(config.seed)))
        self._interval_ns = config.depth_interval_ms * 1_000_000
        suffix = "@100ms" if config.depth_interval_ms == 100 else ""
        self._syms = [_Sym(spec, config, suffix) for spec in config.symbols]
        self._by_name = {s.name: s for s in self._syms}
        self._by_stream: dict[str, tuple[str, str]] = {}
        for s in self._syms:
            for kind in ("depth", "depth@100ms", "bookTicker", "trade"):
                canonical = s.depth_stream if kind.startswith("depth") else f"{s.lower}@{kind}"
                self._by_stream[f"{s.lower}@{kind}"] = (canonical, s.name)
        self._rate_per_ns = config.events_per_second / _NS
        self._sigma = config.volatility_bps * 1e-4
        self._kappa = config.mean_reversion_per_s
        self._ratio = (1 + config.trend_imbalance) / (1 - config.trend_imbalance)
        self._now = 0
        self._events = 0
        self._next_flush = self._interval_ns
        for s in self._syms:
            s.update_id = 1_000_000_000 + int(self._rnd.u() * 1_000_000_000)
            s.trade_id = 100_000_000 + int(self._rnd.u() * 100_000_000)
            self._seed_book(s)
            s.last_touch = self._touch(s)
            s.regime_end = self._calm_ns()
        self._next_event = self._gap()

    # ------------------------------------------------------------------ public API

    @property
    def now_ns(self) -> int:
        """Virtual nanoseconds since the model started."""
        return self._now

    @property
    def now_ms(self) -> int:
        """Virtual exchange time in epoch ms (what ``E`` fields carry)."""
        return self.config.epoch_ms + self._now // 1_000_000

    @property
    def events(self) -> int:
        """Order-flow events generated so far (for rate measurements; not part of the output)."""
        return self._events

    @property
    def symbols(self) -> list[str]:
        """Configured symbol names, upper-case, in config order."""
        return [s.name for s in self._syms]

    def canonical_stream(self, stream: str) -> tuple[str, str] | None:
        """Map a client stream name to ``(canonical stream, SYMBOL)``; ``None`` when the stream does not exist.

        Both ``<sym>@depth`` and ``<sym>@depth@100ms`` map to the one depth stream the model produces (at
        ``depth_interval_ms`` cadence), so a feed may subscribe under either name.
        """
        return self._by_stream.get(stream)

    def advance(self, dt_ns: int) -> list[bytes]:
        """Run ``dt_ns`` virtual nanoseconds and return the combined-stream frames they produced, in time order."""
        return [frame for _, frame in self.advance_streams(dt_ns)]

    def advance_streams(self, dt_ns: int) -> list[tuple[str, bytes]]:
        """Like :meth:`advance` but pair each frame with its canonical stream name, for routing to subscribers."""
        if dt_ns < 0:
            raise ValueError(f"dt_ns must be >= 0, got {dt_ns}")
        target = self._now + dt_ns
        out: list[tuple[str, bytes]] = []
        interval = self._interval_ns
        while True:
            t_event = self._next_event
            if interval and self._next_flush < t_event:
                t_flush = self._next_flush
                if t_flush > target:
                    break
                ms = self.config.epoch_ms + t_flush // 1_000_000
                for s in self._syms:
                    if s.pend_first:
                        self._flush(s, ms, out)
                self._next_flush = t_flush + interval
            else:
                if t_event > target:
                    break
                self._event(t_event, out)
                self._events += 1
                self._next_event = t_event + self._gap()
        self._now = target
        return out

    def depth_snapshot(self, symbol: str, limit: int = 100) -> bytes:
        """Return the body of ``GET /api/v3/depth?symbol=...&limit=...`` for the current book.

        ``limit`` above 5000 is truncated to 5000 like Binance does; below 1 is a ``ValueError``; an unknown symbol
        is a ``KeyError``.
        """
        s = self._by_name[symbol]
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        limit = min(limit, MAX_SNAPSHOT_LIMIT)
        return self._render_snapshot(s, s.update_id, s.bids, s.asks, s.bid_px[-limit:][::-1], s.ask_px[:limit])

    def depth_snapshot_of(self, symbol: str, state: BookState, limit: int = 100) -> bytes:
        """Format an earlier :meth:`book` copy of ``symbol`` exactly like :meth:`depth_snapshot` would have then.

        The server keeps a short history of such copies to serve deliberately stale snapshots (a fault).
        """
        s = self._by_name[symbol]
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        limit = min(limit, MAX_SNAPSHOT_LIMIT)
        bid_px = sorted(state.bids, reverse=True)[:limit]
        ask_px = sorted(state.asks)[:limit]
        return self._render_snapshot(s, state.update_id, state.bids, state.asks, bid_px, ask_px)

    @staticmethod
    def _render_snapshot(
        s: _Sym, update_id: int, bids: dict[int, int], asks: dict[int, int], bid_px: list[int], ask_px: list[int]
    ) -> bytes:
        """Format a REST depth body: bids best (highest) first, asks best (lowest) first."""
        fp, fq = s.fmt_p, s.fmt_q
        b = ",".join(f'["{fp(p)}","{fq(bids[p])}"]' for p in bid_px)
        a = ",".join(f'["{fp(p)}","{fq(asks[p])}"]' for p in ask_px)
        return f'{{"lastUpdateId":{update_id},"bids":[{b}],"asks":[{a}]}}'.encode()

    def book(self, symbol: str) -> BookState:
        """Return a copy of ``symbol``'s book (fixed-point ints) and its update id."""
        s = self._by_name[symbol]
        return BookState(s.update_id, dict(s.bids), dict(s.asks))

    def touch(self, symbol: str) -> tuple[int, int, int, int]:
        """Return ``(bid_price, bid_size, ask_price, ask_size)`` of ``symbol`` in fixed point."""
        return self._touch(self._by_name[symbol])

    def fair_price(self, symbol: str) -> float:
        """Return the latent fair price in fixed-point price units (diagnostics and tests only)."""
        return math.exp(self._by_name[symbol].log_fair)

    def trend(self, symbol: str) -> tuple[str, int]:
        """Return the regime phase (``"calm"``, ``"build"``, ``"move"``) and direction (+1 up, -1 down, 0 calm)."""
        s = self._by_name[symbol]
        return ("calm", "build", "move")[s.regime], s.direction

    # ------------------------------------------------------------------ internals

    def _gap(self) -> int:
        """Draw the next inter-event gap of the Poisson order flow, in ns (at least 1)."""
        return int(-math.log(1.0 - self._rnd.u()) / self._rate_per_ns) + 1

    def _calm_ns(self) -> int:
        """Draw the length of a calm spell: Gamma(4) with mean ``1 / trend_probability`` s, regular enough that
        every 20 s window sees several trends, random enough that their timing cannot be predicted."""
        rate = self.config.trend_probability
        if rate <= 0:
            return _UNLIMITED
        rnd = self._rnd
        total = sum(-math.log(1.0 - rnd.u()) for _ in range(4))
        return int(total / (4.0 * rate) * _NS)

    def _lots(self, s: _Sym, scale: float) -> int:
        """Draw a log-normal order size around ``scale`` lots, returned in fixed-point size units."""
        return max(1, int(scale * math.exp(0.8 * self._rnd.n() - 0.32))) * s.lot

    def _seed_book(self, s: _Sym) -> None:
        """Build the initial book silently: it is what the first REST snapshot shows."""
        start = s.spec.start_price_int
        grid = s.grid
        best_bid = (start - 1) // grid * grid
        target = max(MIN_LEVELS, int(self.config.book_levels * 0.75))
        px = best_bid
        while len(s.bid_px) < target and px > 0:
            if self._rnd.u() < 0.7:
                s.bids[px] = self._lots(s, s.base_lots)
                s.bid_px.append(px)
            px -= grid
        s.bid_px.sort()
        px = best_bid + grid
        while len(s.ask_px) < target:
            if self._rnd.u() < 0.7:
                s.asks[px] = self._lots(s, s.base_lots)
                s.ask_px.append(px)
            px += grid

    @staticmethod
    def _touch(s: _Sym) -> tuple[int, int, int, int]:
        bp = s.bid_px[-1]
        ap = s.ask_px[0]
        return (bp, s.bids[bp], ap, s.asks[ap])

    def _set_level(self, s: _Sym, side: int, px: int, qty: int) -> None:
        """Apply one level change (absolute size, 0 removes) and record it for the next depth frame."""
        s.update_id += 1
        if side > 0:
            levels, plist, pending = s.bids, s.bid_px, s.pend_bids
        else:
            levels, plist, pending = s.asks, s.ask_px, s.pend_asks
        if qty:
            if px not in levels:
                insort(plist, px)
            levels[px] = qty
        else:
            del levels[px]
            del plist[bisect_left(plist, px)]
        pending[px] = qty
        if not s.pend_first:
            s.pend_first = s.update_id

    def _flush(self, s: _Sym, ms: int, out: list[tuple[str, bytes]]) -> None:
        """Emit one depthUpdate frame with every level changed since the previous frame."""
        fp, fq = s.fmt_p, s.fmt_q
        b = ",".join(f'["{fp(p)}","{fq(q)}"]' for p, q in sorted(s.pend_bids.items(), reverse=True))
        a = ",".join(f'["{fp(p)}","{fq(q)}"]' for p, q in sorted(s.pend_asks.items()))
        text = f'{s.depth_head}{ms},"s":"{s.name}","U":{s.pend_first},"u":{s.update_id},"b":[{b}],"a":[{a}]}}}}'
        out.append((s.depth_stream, text.encode()))
        s.pend_bids.clear()
        s.pend_asks.clear()
        s.pend_first = 0

    def _trade(self, s: _Sym, px: int, qty: int, buyer_maker: bool, ms: int, out: list[tuple[str, bytes]]) -> None:
        s.trade_id += 1
        m = "true" if buyer_maker else "false"
        text = (
            f'{s.trade_head}{ms},"s":"{s.name}","t":{s.trade_id},"p":"{s.fmt_p(px)}","q":"{s.fmt_q(qty)}",'
            f'"T":{ms},"m":{m},"M":true}}}}'
        )
        out.append((s.trade_stream, text.encode()))

    def _take(self, s: _Sym, side: int, qty: int, limit: int | None, ms: int, out: list[tuple[str, bytes]]) -> None:
        """Execute an aggressive order of ``side`` for up to ``qty`` at prices no worse than ``limit``.

        One trade is printed per level touched (each level acts as one maker order); a side is never emptied
        below ``MIN_LEVELS`` so the book stays two-sided.
        """
        if side > 0:
            levels, plist = s.asks, s.ask_px
            while qty > 0 and len(plist) > MIN_LEVELS:
                px = plist[0]
                if limit is not None and px > limit:
                    break
                have = levels[px]
                fill = have if have <= qty else qty
                self._trade(s, px, fill, False, ms, out)
                self._set_level(s, -1, px, have - fill)
                qty -= fill
        else:
            levels, plist = s.bids, s.bid_px
            while qty > 0 and len(plist) > MIN_LEVELS:
                px = plist[-1]
                if limit is not None and px < limit:
                    break
                have = levels[px]
                fill = have if have <= qty else qty
                self._trade(s, px, fill, True, ms, out)
                self._set_level(s, 1, px, have - fill)
                qty -= fill

    def _add(self, s: _Sym, side: int, fair: float) -> None:
        """Place a passive order around the fair price on the grid; trim the far end when the side is full."""
        rnd = self._rnd
        near = rnd.u() < 0.4
        dist = -math.log(1.0 - rnd.u()) * (1.0 if near else self.config.depth_bps) * 1e-4
        grid = s.grid
        max_levels = self.config.book_levels
        if side > 0:
            px = math.floor(fair * (1.0 - dist) / grid) * grid
            best_ask = s.ask_px[0]
            if px >= best_ask:
                px = best_ask - s.tick
            if px <= 0 or (len(s.bid_px) >= max_levels and px < s.bid_px[0]):
                return
            self._set_level(s, 1, px, s.bids.get(px, 0) + self._lots(s, s.base_lots))
            if len(s.bid_px) > max_levels:
                self._set_level(s, 1, s.bid_px[0], 0)
        else:
            px = math.ceil(fair * (1.0 + dist) / grid) * grid
            best_bid = s.bid_px[-1]
            if px <= best_bid:
                px = best_bid + s.tick
            if len(s.ask_px) >= max_levels and px > s.ask_px[-1]:
                return
            self._set_level(s, -1, px, s.asks.get(px, 0) + self._lots(s, s.base_lots))
            if len(s.ask_px) > max_levels:
                self._set_level(s, -1, s.ask_px[-1], 0)

    def _cancel(self, s: _Sym, side: int) -> None:
        """Cancel a random level entirely or in part (never below ``MIN_LEVELS`` levels)."""
        rnd = self._rnd
        plist, levels = (s.bid_px, s.bids) if side > 0 else (s.ask_px, s.asks)
        n = len(plist)
        # 30 % hit the touch (reverting the sizes that trends leave behind), the rest a uniformly chosen level
        touch = plist[-1] if side > 0 else plist[0]
        px = touch if rnd.u() < 0.3 else plist[min(n - 1, int(rnd.u() * n))]
        have = levels[px]
        if rnd.u() < 0.5 or have <= s.lot:
            if n > MIN_LEVELS:
                self._set_level(s, side, px, 0)
        else:
            keep = max(1, int(have // s.lot * rnd.u())) * s.lot
            self._set_level(s, side, px, keep)

    def _pressure(self, s: _Sym, ms: int, out: list[tuple[str, bytes]]) -> None:
        """Push the touch towards the trend: size up the near touch, thin out the far touch."""
        rnd = self._rnd
        bp, bq, ap, aq = self._touch(s)
        up = s.direction > 0
        near_q, far_q = (bq, aq) if up else (aq, bq)
        target = self._ratio * far_q
        if near_q < target:
            want = min((target - near_q) / s.lot * (1.0 + 0.5 * rnd.u()), 20.0 * s.base_lots)
            add = max(1, int(want)) * s.lot
            if up:
                self._set_level(s, 1, bp, bq + add)
            else:
                self._set_level(s, -1, ap, aq + add)
        elif rnd.u() < 0.5:
            # aggressive orders in the trend's direction eat part of the far touch
            qty = max(1, int(far_q // s.lot * (0.2 + 0.6 * rnd.u()))) * s.lot
            self._take(s, s.direction, qty, None, ms, out)
        else:
            keep = int(far_q // s.lot * 0.5 * rnd.u()) * s.lot
            side = -1 if up else 1
            n = len(s.ask_px) if up else len(s.bid_px)
            if keep or n > MIN_LEVELS:
                self._set_level(s, side, ap if up else bp, keep)

    def _evolve(self, s: _Sym, t: int) -> None:
        """Advance the symbol's regime and log fair price to virtual time ``t``."""
        rnd = self._rnd
        cfg = self.config
        dt = (t - s.last_ns) * 1e-9
        s.last_ns = t
        if t >= s.regime_end:
            if s.regime == _CALM:
                s.regime = _BUILD
                # lean against the distance from the start price so that long runs stay in range
                p_up = min(0.9, max(0.1, 0.5 - 10.0 * (s.log_fair - s.log_anchor)))
                s.direction = 1 if rnd.u() < p_up else -1
                s.regime_end = t + cfg.trend_build_ms * 1_000_000
            elif s.regime == _BUILD:
                s.regime = _MOVE
                s.speed = s.direction * cfg.trend_speed_bps * 1e-4 * (0.8 + 0.7 * rnd.u())
                s.regime_end = t + int(cfg.trend_duration_ms * 1_000_000 * (0.6 + 0.8 * rnd.u()))
            else:
                s.regime = _CALM
                s.direction = 0
                s.speed = 0.0
                s.regime_end = t + self._calm_ns()
        drift = s.speed if s.regime == _MOVE else 0.0
        s.log_fair += (drift - self._kappa * (s.log_fair - s.log_anchor)) * dt + self._sigma * math.sqrt(dt) * rnd.n()

    def _event(self, t: int, out: list[tuple[str, bytes]]) -> None:
        """Run one order-flow event at virtual time ``t`` and append the messages it causes."""
        rnd = self._rnd
        cfg = self.config
        syms = self._syms
        s = syms[min(len(syms) - 1, int(rnd.u() * len(syms)))]
        self._evolve(s, t)
        ms = cfg.epoch_ms + t // 1_000_000
        fair = math.exp(s.log_fair)
        if fair > s.ask_px[0] and len(s.ask_px) > MIN_LEVELS:
            self._take(s, 1, _UNLIMITED, int(fair), ms, out)
        elif fair < s.bid_px[-1] and len(s.bid_px) > MIN_LEVELS:
            self._take(s, -1, _UNLIMITED, math.ceil(fair), ms, out)
        elif s.regime != _CALM and rnd.u() < cfg.trend_pressure_share:
            self._pressure(s, ms, out)
        else:
            r = rnd.u()
            if r < cfg.market_order_share:
                if s.regime != _CALM:
                    side = s.direction if rnd.u() < 0.8 else -s.direction
                else:
                    side = 1 if rnd.u() < 0.5 else -1
                self._take(s, side, self._lots(s, s.base_lots), None, ms, out)
            elif r < cfg.market_order_share + cfg.cancel_share:
                self._cancel(s, 1 if rnd.u() < 0.5 else -1)
            else:
                self._add(s, 1 if rnd.u() < 0.5 else -1, fair)
        touch = self._touch(s)
        if touch != s.last_touch:
            s.last_touch = touch
            text = (
                f'{s.ticker_head}{s.update_id},"s":"{s.name}","b":"{s.fmt_p(touch[0])}","B":"{s.fmt_q(touch[1])}",'
                f'"a":"{s.fmt_p(touch[2])}","A":"{s.fmt_q(touch[3])}"}}}}'
            )
            out.append((s.ticker_stream, text.encode()))
        if not self._interval_ns and s.pend_first:
            self._flush(s, ms, out)
