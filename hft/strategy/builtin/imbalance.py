"""The seed's order-book-imbalance strategy, on the public API.

On every book change (``on_book``): the touch imbalance, momentum and volatility (the feature kernels'
``F_MOMENTUM``/``F_VOLATILITY``, percent) go through ``hft.strategy.signal.imbalance_signal``; a signal that
persists in one direction decays with its age (``signal_decay_ms`` half-life) and stops opening positions
below ``min_strength`` (a reversal is never decayed away). ``hft.strategy.builtin.directional.act`` turns the
direction into one order at a time per symbol.
"""

from __future__ import annotations

from hft.strategy.api import F_MOMENTUM, F_VOLATILITY, book_ok, declare_params, position
from hft.strategy.builtin.directional import S, act, in_flight, on_execution, order_kind_data, size_orders
from hft.strategy.signal import (
    N_PARAMS,
    P_DECAY_MS,
    P_HOLD_MAX_MS,
    P_HOLD_MIN_MS,
    P_MIN_CONFIDENCE,
    P_MIN_STRENGTH,
    P_MOMENTUM_SCALE,
    P_THRESHOLD,
    P_VOLATILITY_FLOOR,
    P_VOLATILITY_SCALE,
    decayed_direction,
    imbalance_signal,
)

# the first nine, in this order, are exactly hft.strategy.signal's parameter vector: ctx.params is passed as is
P = declare_params(
    imbalance_threshold=0.3,  # |touch imbalance| at or above which a signal fires
    min_confidence=0.7,  # confidence = mean(min(|momentum| / momentum_scale, 1),
    momentum_scale=0.01,  #                  min(volatility_scale / max(volatility, floor), 1))
    volatility_scale=0.01,
    volatility_floor=0.001,
    holding_min_ms=100.0,  # holding period = clamp(1000 / |imbalance|, min, max) ms
    holding_max_ms=10_000.0,
    signal_decay_ms=2_000.0,  # half-life of a persisting signal's strength (0: no decay) ...
    min_strength=0.5,  # ... below which it opens no new position
    max_position=1.0,  # base units per symbol: order size = order_fraction * max_position
    order_fraction=0.5,
    order_type="market",  # market | ioc (limit at the far touch) | limit | post_only (join our touch, GTD)
    order_ttl_ms=1_000.0,  # limit and post-only orders expire this long after the decision
)
assert (P.imbalance_threshold, P.min_confidence, P.momentum_scale, P.volatility_scale, P.volatility_floor,
        P.holding_min_ms, P.holding_max_ms, P.signal_decay_ms, P.min_strength) == (
    P_THRESHOLD, P_MIN_CONFIDENCE, P_MOMENTUM_SCALE, P_VOLATILITY_SCALE, P_VOLATILITY_FLOOR, P_HOLD_MIN_MS,
    P_HOLD_MAX_MS, P_DECAY_MS, P_MIN_STRENGTH) == tuple(range(N_PARAMS))

__all__ = ["P", "S", "on_book", "on_execution", "on_start", "prepare"]


def prepare(setup):
    setup.data_i = order_kind_data(setup.params["order_type"])


def on_start(ctx, symbol):
    size_orders(ctx, symbol, ctx.params[P.max_position], ctx.params[P.order_fraction], ctx.params[P.order_ttl_ms])


def on_book(ctx, symbol):
    if not book_ok(ctx, symbol) or in_flight(ctx, symbol):
        return  # one order in flight per symbol: wait for its report
    book = ctx.book[symbol]
    direction, strength, _confidence, holding_ms = imbalance_signal(
        book.imbalance, ctx.features[symbol, F_MOMENTUM], ctx.features[symbol, F_VOLATILITY], ctx.params)
    if direction != ctx.ints[symbol, S.signal_direction]:
        ctx.ints[symbol, S.signal_direction] = direction
        ctx.ints[symbol, S.signal_since] = book.ts_exch
    held = position(ctx, symbol)
    if held == 0 or (held > 0) == (direction > 0):  # a reversal is never decayed away
        age_ms = (book.ts_exch - ctx.ints[symbol, S.signal_since]) / 1e6
        direction = decayed_direction(direction, strength, age_ms, ctx.params)
    act(ctx, symbol, direction, holding_ms, False)
