"""A market maker: a post-only bid and ask around the touch, re-quoted when the best bid/ask moves, skewed by
inventory within an inventory limit.

Every bookTicker (``on_bbo``) sets the quotes: ``half_spread_ticks`` outside the touch on each side, both shifted
down by ``skew_ticks`` per order size of long inventory (up when short), so a position leans the quotes toward
closing it. A side whose fill would take |position| past ``max_inventory`` is not quoted (its order is
cancelled). A quote more than ``requote_ticks`` away from its target is replaced (cancel + new). Post-only
orders that would cross (the touch moved before they arrived) come back rejected and are simply re-quoted.
"""

from hft.strategy.api import (
    ACKED, BUY, SELL, best_ask, best_bid, cancel, declare_params, declare_state, jit, position, post_only, replace,
    tick, to_size,
)

P = declare_params(
    order_size=0.001,  # base units per quote
    max_inventory=0.005,  # base units: no quote whose fill would take |position| beyond this
    half_spread_ticks=0.0,  # 0: join the best bid and ask
    skew_ticks=1.0,  # quotes move this many ticks per order_size of inventory
    requote_ticks=1.0,  # replace a quote once it is this many ticks from its target
)
S = declare_state(bid_id=0, bid_price=0, ask_id=0, ask_price=0, size=0, limit=0)


def on_start(ctx, symbol):
    ctx.ints[symbol, S.size] = to_size(ctx, symbol, ctx.params[P.order_size])
    ctx.ints[symbol, S.limit] = to_size(ctx, symbol, ctx.params[P.max_inventory])


@jit  # a helper the callbacks call: compiled like them
def quote(ctx, symbol, side, id_col, price_col, target, allowed):
    order_id = ctx.ints[symbol, id_col]
    if not allowed:
        if order_id > 0:
            cancel(ctx, order_id)  # the answer (CANCELLED) clears the id in on_execution
        return
    if order_id == 0:
        order_id = post_only(ctx, symbol, side, target, ctx.ints[symbol, S.size])
    elif abs(ctx.ints[symbol, price_col] - target) >= ctx.params[P.requote_ticks] * tick(ctx, symbol):
        order_id = replace(ctx, order_id, target, ctx.ints[symbol, S.size])
    else:
        return
    if order_id > 0:  # else a denial (rate, limits): keep the old order, try again on the next ticker
        ctx.ints[symbol, id_col] = order_id
        ctx.ints[symbol, price_col] = target


def on_bbo(ctx, symbol):
    bid, ask = best_bid(ctx, symbol), best_ask(ctx, symbol)
    if bid <= 0 or ask <= bid:
        return
    step = tick(ctx, symbol)
    held = position(ctx, symbol)
    size = ctx.ints[symbol, S.size]
    skew = int(ctx.params[P.skew_ticks] * held / size) * step if size > 0 else 0
    half = int(ctx.params[P.half_spread_ticks]) * step
    bid_target = min(bid - half - skew, ask - step)  # never priced to cross: post-only would be rejected
    ask_target = max(ask + half - skew, bid + step)
    limit = ctx.ints[symbol, S.limit]
    quote(ctx, symbol, BUY, S.bid_id, S.bid_price, bid_target, held + size <= limit)
    quote(ctx, symbol, SELL, S.ask_id, S.ask_price, ask_target, held - size >= -limit)


def on_execution(ctx, symbol):
    report = ctx.report[0]
    if report.leaves > 0 or report.status == ACKED:  # acked or partly filled: the quote still rests
        return
    if report.order_id == ctx.ints[symbol, S.bid_id]:
        ctx.ints[symbol, S.bid_id] = 0
    elif report.order_id == ctx.ints[symbol, S.ask_id]:
        ctx.ints[symbol, S.ask_id] = 0
