"""A market maker: a post-only bid and ask around the touch, re-quoted when the best bid/ask moves, skewed by
inventory within an inventory limit.

Every bookTicker (``on_bbo``) sets the quotes: ``half_spread_ticks`` outside the touch on each side, both shifted
down by ``skew_ticks`` per order size of long inventory (up when short), so a position leans the quotes toward
closing it. A side whose fills could take |position| past ``max_inventory`` (counting every open quote of
that side, those being replaced too) is not quoted, and its resting quote is cancelled. A quote
``requote_ticks`` or more from its target is replaced (cancel + new). A post-only order that would have
crossed (the touch moved before it arrived) comes back rejected and is quoted again.
"""

from hft.strategy import api

P = api.declare_params(
    order_size=0.001,  # base units per quote
    max_inventory=0.005,  # base units: no quote whose fill would take |position| beyond this
    half_spread_ticks=0.0,  # 0: join the best bid and ask
    skew_ticks=1.0,  # quotes move this many ticks per order_size of inventory
    requote_ticks=1.0,  # replace a quote once it is this many ticks from its target
)
S = api.declare_state(bid_id=0, bid_price=0, ask_id=0, ask_price=0, size=0, limit=0)


def on_start(ctx, symbol):
    ctx.ints[symbol, S.size] = api.to_size(ctx, symbol, ctx.params[P.order_size])
    ctx.ints[symbol, S.limit] = api.to_size(ctx, symbol, ctx.params[P.max_inventory])


@api.jit  # a helper the callbacks call: compiled like them
def quote(ctx, symbol, side, id_col, price_col, target, can_keep, can_add):
    """Keep one quote of ``side`` at ``target``: place it, move it (replace: old and new both count until the
    cancel is confirmed, so it needs room for both), or cancel it when even it alone is too much."""
    order_id = ctx.ints[symbol, id_col]
    if order_id > 0 and not can_keep:
        api.cancel(ctx, order_id)  # its CANCELLED report clears the id in on_execution
        return
    if order_id == 0 and can_add:
        order_id = api.post_only(ctx, symbol, side, target, ctx.ints[symbol, S.size])
    elif order_id > 0 and can_add and abs(ctx.ints[symbol, price_col] - target) >= \
            ctx.params[P.requote_ticks] * api.tick(ctx, symbol):
        order_id = api.replace(ctx, order_id, target, ctx.ints[symbol, S.size])
    else:
        return
    if order_id > 0:  # else a denial (rate, limits, a cancel already on its way): try again on the next ticker
        ctx.ints[symbol, id_col] = order_id
        ctx.ints[symbol, price_col] = target


def on_bbo(ctx, symbol):
    bid, ask = api.best_bid(ctx, symbol), api.best_ask(ctx, symbol)
    if bid <= 0 or ask <= bid:
        return
    step = api.tick(ctx, symbol)
    held = api.position(ctx, symbol)
    size = ctx.ints[symbol, S.size]
    skew = int(ctx.params[P.skew_ticks] * held / size) * step if size > 0 else 0
    half = int(ctx.params[P.half_spread_ticks]) * step
    bid_target = min(bid - half - skew, ask - step)  # never priced to cross: post-only would be rejected
    ask_target = max(ask + half - skew, bid + step)
    limit = ctx.ints[symbol, S.limit]
    # the worst case: every open quote fills, those being replaced included (a cancel can lose the race)
    bids, asks = api.open_leaves(ctx, symbol, api.BUY), api.open_leaves(ctx, symbol, api.SELL)
    quote(ctx, symbol, api.BUY, S.bid_id, S.bid_price, bid_target, held + bids <= limit,
          held + bids + size <= limit)
    quote(ctx, symbol, api.SELL, S.ask_id, S.ask_price, ask_target, held - asks >= -limit,
          held - asks - size >= -limit)


def on_execution(ctx, symbol):
    report = ctx.report[0]
    if report.leaves > 0 or report.status == api.ACKED:  # acked or partly filled: the quote still rests
        return
    if report.order_id == ctx.ints[symbol, S.bid_id]:
        ctx.ints[symbol, S.bid_id] = 0
    elif report.order_id == ctx.ints[symbol, S.ask_id]:
        ctx.ints[symbol, S.ask_id] = 0
