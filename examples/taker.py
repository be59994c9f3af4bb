"""A taker that reacts to every bookTicker update and every trade.

``on_trade`` keeps an exponentially decaying sum of signed trade volume (buyers' prints add, sellers' subtract;
half-life ``flow_half_life_ms``); ``on_bbo`` reads the touch's size imbalance. When both lean the same way past
their thresholds, it takes ``order_size`` with a market order (at most ``max_position`` held, one order per
``cooldown_ms``). A timer flattens a position held longer than ``hold_ms``.
"""

import math

from hft.strategy import api

P = api.declare_params(
    order_size=0.001,  # base units per order
    max_position=0.003,  # base units
    flow_threshold=0.5,  # base units of net aggressive volume (decayed)
    flow_half_life_ms=500.0,
    imbalance_threshold=0.3,  # (bid size - ask size) / (bid size + ask size) at the touch
    cooldown_ms=200.0,
    hold_ms=2_000.0,
)
S = api.declare_state(last_order=0, opened_at=0, flow_at=0, size=0, limit=0, flow=0.0)


def on_start(ctx, symbol):
    ctx.ints[symbol, S.size] = api.to_size(ctx, symbol, ctx.params[P.order_size])
    ctx.ints[symbol, S.limit] = api.to_size(ctx, symbol, ctx.params[P.max_position])
    api.set_timer(ctx, symbol, 100_000_000)  # every 100 ms of venue time: is a position held too long?


@api.jit
def decayed_flow(ctx, symbol):
    age_ms = (ctx.now - ctx.ints[symbol, S.flow_at]) / 1e6
    return ctx.floats[symbol, S.flow] * math.pow(2.0, -age_ms / ctx.params[P.flow_half_life_ms])


def on_trade(ctx, symbol):
    signed = ctx.last_trade[symbol, api.LT_SIDE] * api.size_of(ctx, symbol, ctx.last_trade[symbol, api.LT_SIZE])
    ctx.floats[symbol, S.flow] = decayed_flow(ctx, symbol) + signed
    ctx.ints[symbol, S.flow_at] = ctx.now


def on_bbo(ctx, symbol):
    if ctx.now - ctx.ints[symbol, S.last_order] < ctx.params[P.cooldown_ms] * 1e6:
        return
    if api.open_count(ctx, symbol, 0) > 0:
        return  # one order at a time: the position it changes is only known from its report
    bid_size, ask_size = api.best_bid_size(ctx, symbol), api.best_ask_size(ctx, symbol)
    if bid_size + ask_size <= 0:
        return
    imbalance = (bid_size - ask_size) / (bid_size + ask_size)
    flow = decayed_flow(ctx, symbol)
    held, size, limit = api.position(ctx, symbol), ctx.ints[symbol, S.size], ctx.ints[symbol, S.limit]
    side = 0
    if flow > ctx.params[P.flow_threshold] and imbalance > ctx.params[P.imbalance_threshold] and held + size <= limit:
        side = api.BUY
    elif flow < -ctx.params[P.flow_threshold] and imbalance < -ctx.params[P.imbalance_threshold] \
            and held - size >= -limit:
        side = api.SELL
    if side != 0 and api.market(ctx, symbol, side, size) > 0:
        ctx.ints[symbol, S.last_order] = ctx.now
        if held == 0:
            ctx.ints[symbol, S.opened_at] = ctx.now


def on_timer(ctx, symbol):
    held = api.position(ctx, symbol)
    if held == 0 or ctx.now - ctx.ints[symbol, S.opened_at] < ctx.params[P.hold_ms] * 1e6:
        return
    if api.open_count(ctx, symbol, 0) > 0:
        return  # an order is still on its way: flatten what it leaves on the next tick
    if api.market(ctx, symbol, api.SELL if held > 0 else api.BUY, abs(held)) > 0:
        ctx.ints[symbol, S.opened_at] = ctx.now  # a flattening order in flight: do not send another
