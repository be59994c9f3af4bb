"""What the three built-in strategies share: turning a direction into one order at a time per symbol.

The built-ins (``imbalance``, ``rules``, ``onnx``) are ordinary strategies on the public API
(``hft.strategy.api``): each decides a direction on every book change (``on_book``) and hands it to ``act``,
which keeps the seed's trading rules:

* one order in flight per symbol: nothing is decided until the last one ended (filled, cancelled, rejected,
  expired: ``on_execution`` below frees the symbol);
* a signal opens a position of ``order_size`` in its direction, or closes and reverses an opposite one; a
  signal in the direction already held changes nothing but restarts the holding period;
* without a signal, a position is flattened once its holding period is over, or when a rule said ``flat``;
* with the kill switch on, a reversal becomes a flattening order (risk passes reductions only);
* ``order_type`` chooses how the order meets the market: ``market``, ``ioc`` (a limit at the far touch),
  ``limit`` or ``post_only`` (a GTD order joining our touch for ``order_ttl_ms``), priced from the book the
  decision was made on.

Each built-in declares these parameters too and calls ``size_orders`` from ``on_start``; the shared state
columns are ``S`` (every built-in uses this declaration).
"""

from __future__ import annotations

from numba import njit

from hft.strategy.api import (
    ACKED,
    BUY,
    GTD,
    LIMIT,
    POST_ONLY,
    SELL,
    count_signal,
    declare_state,
    ioc,
    kill_switch_on,
    lot,
    market,
    position,
    submit,
    to_size,
)

ORDER_KIND_MARKET = 0  # MARKET: walks the book
ORDER_KIND_IOC = 1  # IOC limit at the far touch: takes what the touch offers, never worse
ORDER_KIND_LIMIT = 2  # GTD limit joining our own touch: rests and fills by queue position
ORDER_KIND_POST_ONLY = 3  # the same, but rejected rather than taking liquidity
ORDER_KINDS = {"market": ORDER_KIND_MARKET, "ioc": ORDER_KIND_IOC, "limit": ORDER_KIND_LIMIT,
               "post_only": ORDER_KIND_POST_ONLY}
D_ORDER_KIND = 0  # ctx.data_i[D_*]: written by each built-in's prepare (order_kind_data)
N_D = 1

S = declare_state(
    open_id=0,  # the order in flight (0: none)
    pending=0,  # its signed size
    hold_until=0,  # venue ns: flatten a position after this
    signal_direction=0,  # the persisting signal's direction (imbalance decay)
    signal_since=0,  # venue ns it first fired in that direction
    order_size=0,  # size units per order
    order_ttl=0,  # ns: lifetime of limit and post-only orders
)


def order_kind_data(order_type: str) -> list[int]:
    """``ctx.data_i`` of a built-in: the order kind (``prepare`` calls this; a bad name is a start-up error)."""
    if order_type not in ORDER_KINDS:
        raise ValueError(f"parameter 'order_type' must be one of {', '.join(ORDER_KINDS)}, got {order_type!r}")
    return [ORDER_KINDS[order_type]]


@njit(cache=True)
def size_orders(ctx, symbol: int, max_position: float, order_fraction: float, order_ttl_ms: float) -> None:
    """Set the symbol's order size (``order_fraction`` of ``max_position`` base units, down to the lot) and the
    lifetime of resting orders. A size that rounds to no lot leaves 0: the built-in then never orders."""
    size = to_size(ctx, symbol, max_position * order_fraction)
    ctx.ints[symbol, S.order_size] = size if size >= lot(ctx, symbol) else 0
    ctx.ints[symbol, S.order_ttl] = int(order_ttl_ms * 1e6)


@njit(cache=True)
def in_flight(ctx, symbol: int) -> bool:
    """An order of this symbol has not ended yet: decide nothing."""
    return ctx.ints[symbol, S.open_id] != 0


@njit(cache=True)
def act(ctx, symbol: int, direction: int, holding_ms: float, flatten: bool) -> int:
    """Turn a generator's decision on the book just received into an order; return its id, 0 if none was
    needed, or the API's negative code."""
    held = position(ctx, symbol)
    now = ctx.now  # the venue's clock: a replay decides exactly as the live run did
    quantity = 0
    if direction != 0:
        count_signal(ctx)
        target = direction * ctx.ints[symbol, S.order_size]
        if held == 0 or (held > 0) != (direction > 0):
            quantity = target - held  # open, or close and reverse
        ctx.ints[symbol, S.hold_until] = now + int(holding_ms * 1e6)
    elif held != 0 and (flatten or now >= ctx.ints[symbol, S.hold_until]):
        quantity = -held  # a "flat" rule fired, or the holding period is over
    if quantity == 0:
        return 0
    if kill_switch_on(ctx) and held != 0 and (held > 0) != (quantity > 0) and abs(quantity) > abs(held):
        quantity = -held  # the kill switch is reduce-only: a reversal becomes a flattening order
    side = BUY if quantity > 0 else SELL
    size = abs(quantity)
    book = ctx.book[symbol]
    kind = ctx.data_i[D_ORDER_KIND]
    if kind == ORDER_KIND_MARKET:
        order_id = market(ctx, symbol, side, size)
    elif kind == ORDER_KIND_IOC:
        order_id = ioc(ctx, symbol, side, book.ask_price if side == BUY else book.bid_price, size)
    else:
        near = book.bid_price if side == BUY else book.ask_price
        order_type = LIMIT if kind == ORDER_KIND_LIMIT else POST_ONLY
        order_id = submit(ctx, symbol, side, order_type, near, size, GTD, now + ctx.ints[symbol, S.order_ttl])
    if order_id > 0:
        ctx.ints[symbol, S.open_id] = order_id
        ctx.ints[symbol, S.pending] = quantity
    return order_id


def on_execution(ctx, symbol):
    """The order in flight ended (filled, cancelled, rejected, expired): the symbol is free again."""
    report = ctx.report[0]
    if symbol < 0 or report.order_id != ctx.ints[symbol, S.open_id]:
        return  # a report of an earlier life of the process: the account already has the position
    if report.size > 0:
        ctx.ints[symbol, S.pending] -= report.size * report.side
    if report.status != ACKED and report.leaves == 0:
        ctx.ints[symbol, S.open_id] = 0
        ctx.ints[symbol, S.pending] = 0
