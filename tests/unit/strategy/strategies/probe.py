"""A test strategy: counts every callback, keeps the last report, and performs the action the test puts in
``ctx.params[P.action]`` on the next book or ticker, keeping the action's result."""

from hft.strategy.api import (
    BUY,
    GTD,
    LIMIT,
    SELL,
    best_ask,
    best_bid,
    cancel,
    cancel_all,
    declare_params,
    declare_state,
    jit,
    market,
    post_only,
    replace,
    request_model,
    set_timer,
    submit,
    tick,
    to_size,
)

P = declare_params(action=0, size=0.001, timer_ms=0.0, with_model=False)
S = declare_state(starts=0, books=0, bbos=0, trades=0, executions=0, timers=0, models=0, last_status=0,
                  last_reason=0, last_order=0, last_target=0, last_filled=0, result=0, bid_id=0, ask_id=0,
                  model_answer=0.0)
NONE, QUOTE, CANCEL_BID, CANCEL_ALL, REPLACE_BID, MARKET_BUY, MODEL, RAISE, OFF_TICK, LIMIT_GTD, FLOOD = range(11)


def prepare(setup):
    if setup.params["with_model"]:
        def model(inputs, outputs):
            outputs[0] = inputs[0] * 2.0

        setup.model = model
        setup.model_inputs = 1
        setup.model_outputs = 1


def on_start(ctx, symbol):
    ctx.ints[symbol, S.starts] += 1
    if ctx.params[P.timer_ms] > 0:
        set_timer(ctx, symbol, int(ctx.params[P.timer_ms] * 1e6))


@jit
def act(ctx, symbol):
    action = int(ctx.params[P.action])
    size = to_size(ctx, symbol, ctx.params[P.size])
    result = 0
    if action == QUOTE:
        ctx.ints[symbol, S.bid_id] = post_only(ctx, symbol, BUY, best_bid(ctx, symbol), size)
        ctx.ints[symbol, S.ask_id] = post_only(ctx, symbol, SELL, best_ask(ctx, symbol), size)
        result = min(ctx.ints[symbol, S.bid_id], ctx.ints[symbol, S.ask_id])
    elif action == CANCEL_BID:
        result = cancel(ctx, ctx.ints[symbol, S.bid_id])
    elif action == CANCEL_ALL:
        result = cancel_all(ctx, symbol)
    elif action == REPLACE_BID:
        result = replace(ctx, ctx.ints[symbol, S.bid_id], best_bid(ctx, symbol) - tick(ctx, symbol), size)
        if result > 0:
            ctx.ints[symbol, S.bid_id] = result
    elif action == MARKET_BUY:
        result = market(ctx, symbol, BUY, size)
    elif action == MODEL:
        ctx.model_in[0] = 21.0
        result = request_model(ctx, symbol)
    elif action == RAISE:
        result = ctx.ints[symbol, 1000]  # past the state array: boundscheck raises IndexError
    elif action == OFF_TICK:
        result = post_only(ctx, symbol, BUY, best_bid(ctx, symbol) + 1 if tick(ctx, symbol) > 1 else 0, size)
    elif action == LIMIT_GTD:
        result = submit(ctx, symbol, BUY, LIMIT, best_bid(ctx, symbol), size, GTD, ctx.now + 1_000_000_000)
    elif action == FLOOD:
        for _ in range(100):
            result = market(ctx, symbol, BUY, size)
            if result < 0:
                break
    ctx.ints[symbol, S.result] = result
    ctx.params[P.action] = NONE  # once


def on_book(ctx, symbol):
    ctx.ints[symbol, S.books] += 1
    act(ctx, symbol)


def on_bbo(ctx, symbol):
    ctx.ints[symbol, S.bbos] += 1
    act(ctx, symbol)


def on_trade(ctx, symbol):
    ctx.ints[symbol, S.trades] += 1


def on_execution(ctx, symbol):
    report = ctx.report[0]
    ctx.ints[symbol, S.executions] += 1
    ctx.ints[symbol, S.last_status] = report.status
    ctx.ints[symbol, S.last_reason] = report.reason
    ctx.ints[symbol, S.last_order] = report.order_id
    ctx.ints[symbol, S.last_target] = report.target_order_id
    ctx.ints[symbol, S.last_filled] = report.cum_filled


def on_timer(ctx, symbol):
    ctx.ints[symbol, S.timers] += 1


def on_model(ctx, symbol):
    ctx.ints[symbol, S.models] += 1
    ctx.floats[symbol, S.model_answer] = ctx.model_out[0]

