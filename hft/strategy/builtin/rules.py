"""Rules from the config over the feature kernels' outputs, on the public API.

``rules`` are ``"<condition> -> buy|sell|flat"`` texts over the feature names (``hft.strategy.rules`` has the
grammar), compiled once by ``prepare`` into flat arrays the callbacks read from ``ctx.data_i``/``ctx.data_f``.
On every book change the first rule that holds decides: buy or sell opens (or reverses) for
``rule_holding_ms``, flat closes now; ``hft.strategy.builtin.directional.act`` places the order.

Data layout (``prepare``): ``data_i = [order kind, n_instructions, n_rules, program (2 per instruction),
rule_starts (n_rules + 1), actions (n_rules)]``; ``data_f = [consts..., evaluation stack (max_stack)]``, the
stack's offset being ``data_i[D_STACK_AT]``. The stack is scratch space: one evaluation at a time, which the
engine guarantees (callbacks never run concurrently).
"""

from __future__ import annotations

import numpy as np

from hft.strategy.api import FEATURE_NAMES, book_ok, declare_params
from hft.strategy.builtin.directional import N_D, S, act, in_flight, on_execution, order_kind_data, size_orders
from hft.strategy.rules import ACTION_FLAT, RuleError, compile_rules, evaluate_rules, rule_signal

P = declare_params(
    rules=["imbalance > 0.3 and spread_bps < 5 -> buy", "imbalance < -0.3 and spread_bps < 5 -> sell"],
    rule_holding_ms=1_000.0,  # holding period of a position a rule opened
    max_position=1.0,  # base units per symbol: order size = order_fraction * max_position
    order_fraction=0.5,
    order_type="market",  # market | ioc | limit | post_only (see hft.strategy.builtin.directional)
    order_ttl_ms=1_000.0,
)
D_N_INSTRUCTIONS = N_D
D_N_RULES = N_D + 1
D_STACK_AT = N_D + 2
D_PROGRAM = N_D + 3

__all__ = ["P", "S", "on_book", "on_execution", "on_start", "prepare"]


def prepare(setup):
    try:
        compiled = compile_rules(setup.params["rules"], FEATURE_NAMES)
    except RuleError as exc:
        raise ValueError(f"parameter rules: {exc}") from None
    n = compiled.program.shape[0]
    n_rules = compiled.actions.shape[0]
    setup.data_i = np.concatenate([
        np.array([*order_kind_data(setup.params["order_type"]), n, n_rules, compiled.consts.shape[0]], np.int64),
        compiled.program.ravel(), compiled.rule_starts, compiled.actions,
    ])
    setup.data_f = np.concatenate([compiled.consts, compiled.make_stack()])


def on_start(ctx, symbol):
    size_orders(ctx, symbol, ctx.params[P.max_position], ctx.params[P.order_fraction], ctx.params[P.order_ttl_ms])


def on_book(ctx, symbol):
    if not book_ok(ctx, symbol) or in_flight(ctx, symbol):
        return
    n = ctx.data_i[D_N_INSTRUCTIONS]
    n_rules = ctx.data_i[D_N_RULES]
    stack_at = ctx.data_i[D_STACK_AT]
    program = ctx.data_i[D_PROGRAM:D_PROGRAM + 2 * n].reshape((n, 2))
    starts = ctx.data_i[D_PROGRAM + 2 * n:D_PROGRAM + 2 * n + n_rules + 1]
    actions = ctx.data_i[D_PROGRAM + 2 * n + n_rules + 1:D_PROGRAM + 2 * n + 2 * n_rules + 1]
    action = evaluate_rules(program, ctx.data_f[:stack_at], starts, actions, ctx.features[symbol],
                            ctx.data_f[stack_at:])
    direction, _strength, _confidence, holding_ms = rule_signal(action, ctx.params[P.rule_holding_ms])
    act(ctx, symbol, direction, holding_ms, action == ACTION_FLAT)
