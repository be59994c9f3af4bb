"""The strategy process: wires ``hft.strategy.loop`` to md.snapshot, md.events, strategy.orders and
broker.executions, and returns to Python only every ``LOOP_SLICE_NS`` for housekeeping."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

import msgspec
import numpy as np

from hft.broker.recovery import latest_per_symbol
from hft.config import decimal_to_fixed
from hft.control import ReloadRisk
from hft.risk.config import build_limits
from hft.risk.engine import RISK_REASON_NAMES, make_risk_state, risk_mark_stale, risk_on_execution
from hft.runtime import LOOP_NEED_MODEL, LOOP_STOPPED
from hft.strategy.features import make_feature_state
from hft.strategy.kernels import FEATURE_NAMES, configure_symbol, make_features, make_kernel_params, make_kernel_state
from hft.strategy.loop import (
    GENERATORS,
    N_STATE,
    ORDER_KINDS,
    P_SYMBOL,
    S_MAX_POSITION,
    S_ORDER_KIND,
    S_ORDER_SIZE,
    S_ORDER_TTL_NS,
    S_POSITION,
    S_STRATEGY_ID,
    act_on_model,
    strategy_loop,
)
from hft.strategy.model import DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, OnnxSignal
from hft.strategy.rules import CompiledRules, compile_rules
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
)
from hft.strategy.snapshot import publish_snapshot, take_snapshot
from procs.common import LOOP_SLICE_NS, WorkerContext, worker_main
from shm_layout.atomics import monotonic_ns
from shm_layout.counters import (
    C_LOST,
    C_OVERRUNS,
    PSTATES_DOWN,
    W_COUNTERS,
    W_STATE,
    C,
)
from shm_layout.layout import EXECUTIONS, MD_EVENTS, ORDERS, PROC_FEED, PROC_STRATEGY, W_STRATEGY_STATE
from shm_layout.records import BOOK_SNAPSHOT, EXEC_REPORT, MD_EVENT, STATUS_FILLED, STRATEGY_STATE_BYTES

MD_BATCH = 1024
EXEC_BATCH = 256


def build_params(ctx: WorkerContext) -> tuple[np.ndarray, np.ndarray]:
    """Turn the config into the loop's float parameters and per-symbol integer state."""
    cfg = ctx.config.strategy
    params = np.zeros(N_PARAMS, np.float64)
    params[P_THRESHOLD] = cfg.imbalance_threshold
    params[P_MIN_CONFIDENCE] = cfg.min_confidence
    params[P_MOMENTUM_SCALE] = cfg.momentum_scale
    params[P_VOLATILITY_SCALE] = cfg.volatility_scale
    params[P_VOLATILITY_FLOOR] = cfg.volatility_floor
    params[P_HOLD_MIN_MS] = cfg.holding_min_ms
    params[P_HOLD_MAX_MS] = cfg.holding_max_ms
    params[P_DECAY_MS] = cfg.signal_decay_ms
    params[P_MIN_STRENGTH] = cfg.min_strength
    state = np.zeros((len(ctx.config.symbols), N_STATE), np.int64)
    for index, symbol in enumerate(ctx.config.symbols):
        max_position = Decimal(cfg.max_position).scaleb(symbol.size_decimals)
        lot = Decimal(symbol.lot_size).scaleb(symbol.size_decimals)
        order_size = (max_position * Decimal(str(cfg.order_fraction)) / lot).to_integral_value(rounding="ROUND_DOWN")
        state[index, S_MAX_POSITION] = int(max_position)
        state[index, S_ORDER_SIZE] = int(order_size * lot)
        state[index, S_ORDER_KIND] = ORDER_KINDS[cfg.order_type]
        state[index, S_ORDER_TTL_NS] = cfg.order_ttl_ms * 1_000_000
        if state[index, S_ORDER_SIZE] <= 0:
            raise ValueError(f"{symbol.name}: order size rounds to zero lots")
    return params, state


class InstancePlan(NamedTuple):
    """The strategy instances laid out per symbol for the jitted loop."""

    names: list[str]
    generators: np.ndarray  # int64[n_symbols]: GENERATOR_* of the instance trading the symbol, -1: none
    rules: CompiledRules  # every instance's rules, concatenated
    rule_ranges: np.ndarray  # int64[n_symbols, 2]: first and end rule of the symbol's instance
    rule_holding: np.ndarray  # float64[n_symbols]: holding period (ms) of a rule-opened position
    rule_stack: np.ndarray
    instance_of: list[int]  # per symbol: index into the effective instances, -1: none


def plan_instances(ctx: WorkerContext, state: np.ndarray) -> InstancePlan:
    """Assign each symbol to its instance; compile all rules once; stamp each symbol's strategy id."""
    names = [s.name for s in ctx.config.symbols]
    instances = ctx.config.strategy.effective_instances()
    n = len(names)
    generators = np.full(n, -1, np.int64)
    rule_ranges = np.zeros((n, 2), np.int64)
    rule_holding = np.ones(n, np.float64)
    instance_of = [-1] * n
    all_rules: list[str] = []
    for number, instance in enumerate(instances):
        first = len(all_rules)
        all_rules.extend(instance.rules)
        for symbol in instance.symbols or names:
            sid = names.index(symbol)
            generators[sid] = GENERATORS[instance.generator]
            rule_ranges[sid] = (first, len(all_rules))
            rule_holding[sid] = instance.rule_holding_ms
            state[sid, S_STRATEGY_ID] = number + 1
            instance_of[sid] = number
        ctx.log.info("instance %d %r: %s on %s", number + 1, instance.name, instance.generator,
                     ", ".join(instance.symbols or names))
    rules = compile_rules(all_rules or ["imbalance > 2 -> flat"], FEATURE_NAMES)
    return InstancePlan([i.name for i in instances], generators, rules, rule_ranges, rule_holding,
                        rules.make_stack(), instance_of)


def load_models(ctx: WorkerContext, plan: InstancePlan) -> dict[int, OnnxSignal]:
    """Load each ONNX instance's model (default: the shipped one) once; return symbol -> model."""
    instances = ctx.config.strategy.effective_instances()
    by_instance: dict[int, OnnxSignal] = {}
    models: dict[int, OnnxSignal] = {}
    for sid, number in enumerate(plan.instance_of):
        if number < 0 or instances[number].generator != "onnx":
            continue
        if number not in by_instance:
            instance = instances[number]
            model_path = instance.model_path or str(DEFAULT_MODEL_PATH)
            norm_path = instance.model_norm_path or (
                str(DEFAULT_NORM_PATH) if not instance.model_path else model_path.removesuffix(".onnx") + ".norm.json"
            )
            by_instance[number] = OnnxSignal(model_path, norm_path, FEATURE_NAMES)
            ctx.log.info("onnx model %s loaded for %s", model_path, instance.name)
        models[sid] = by_instance[number]
    return models


def build_kernels(ctx: WorkerContext) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Allocate the feature kernels' parameters, state and output rows once, from the config."""
    cfg = ctx.config.strategy
    n = len(ctx.config.symbols)
    params = make_kernel_params(n)
    for index, symbol in enumerate(ctx.config.symbols):
        configure_symbol(
            params, index, window_ns=cfg.feature_window_ms * 1_000_000,
            bucket_volume=decimal_to_fixed(cfg.vpin_bucket_volume, symbol.size_decimals, "vpin_bucket_volume"),
            n_buckets=cfg.vpin_buckets,
            tick_size=decimal_to_fixed(symbol.tick_size, symbol.price_decimals, "tick_size"),
            surge_half_life_ns=cfg.surge_half_life_ms * 1_000_000,
        )
    return params, tuple(make_kernel_state(n)), make_features(n)


def risk_reason_counters() -> np.ndarray:
    """Map each risk reason code to the shared-memory counter that counts its denials."""
    counters = np.zeros(len(RISK_REASON_NAMES), np.int64)
    for code, name in enumerate(RISK_REASON_NAMES):
        counters[code] = C[f"risk_{name}"] if code else C["risk_rejects"]
    return counters


def apply_risk_reload(ctx: WorkerContext, message: ReloadRisk, risk_limits: np.ndarray) -> None:
    """New [risk] limits, in place: the jitted loop reads the same array on its next order."""
    fresh = build_limits(message.risk, [(s.price_decimals, s.size_decimals) for s in ctx.config.symbols])
    if fresh.shape != risk_limits.shape:
        ctx.log.error("reload: the new limits do not fit the running layout %s: ignored", risk_limits.shape)
        return
    risk_limits[:] = fresh
    ctx.log.info("risk limits reloaded: %s", msgspec.json.encode(message.risk).decode())
    ctx.send_event("risk-reloaded")


def restore_positions(ctx: WorkerContext, state: np.ndarray, risk_limits: np.ndarray, risk_state: np.ndarray,
                      risk_fstate: np.ndarray, clock: np.ndarray) -> list[str]:
    """A restarted strategy takes each symbol's position from the broker's newest report still in
    broker.executions (its truth), for its own view and for risk. A first start finds none."""
    reports = ctx.pipeline.rings[EXECUTIONS].history("exec_id")
    restored = []
    for symbol, report in latest_per_symbol(reports, state.shape[0]).items():
        state[symbol, S_POSITION] = report["position"]
        clock[0] = max(int(clock[0]), int(report["ts_exch"]))
        risk_on_execution(risk_limits, risk_state, risk_fstate, symbol, STATUS_FILLED, 0, int(report["price"]),
                          int(report["position"]), int(report["entry_notional"]), int(report["realized_pnl"]),
                          int(clock[0]))
        restored.append(ctx.config.symbols[symbol].name)
    return restored


def run(ctx: WorkerContext) -> int:
    pipeline = ctx.pipeline
    md, orders, executions = (pipeline.rings[name] for name in (MD_EVENTS, ORDERS, EXECUTIONS))
    md_consumer = md.consumer_index("strategy")
    exec_consumer = executions.consumer_index("strategy")
    params, state = build_params(ctx)
    sample_ts, sample_logmid, cursor, accum = make_feature_state(len(ctx.config.symbols))
    md_batch = np.zeros(MD_BATCH, MD_EVENT)
    exec_batch = np.zeros(EXEC_BATCH, EXEC_REPORT)
    snapshot = np.zeros(1, BOOK_SNAPSHOT)
    window_ns = ctx.config.strategy.feature_window_ms * 1_000_000
    risk_limits = build_limits(ctx.config.risk, [(s.price_decimals, s.size_decimals) for s in ctx.config.symbols])
    risk_state, risk_fstate = make_risk_state(risk_limits)
    clock = np.zeros(1, np.int64)
    reason_counters = risk_reason_counters()
    kparams, kstate, features = build_kernels(ctx)
    plan = plan_instances(ctx, state)
    pending = np.zeros(4, np.int64)
    models = load_models(ctx, plan)
    for model in set(models.values()):  # compile and warm the hand-off before reporting ready (no order)
        model.predict(features[0])
        act_on_model(0, 0, 0.0, snapshot, pending, state, orders.ctrl, orders.slots, ctx.control_words,
                     ctx.kill_index, ctx.abort_index, ctx.proc_words, ctx.wait_strategy, risk_limits, risk_state,
                     risk_fstate, clock, reason_counters)
    restored = restore_positions(ctx, state, risk_limits, risk_state, risk_fstate, clock)
    if restored:
        ctx.log.warning("restarted: positions of %s restored from the broker's latest reports; the broker "
                        "cancelled the orders of the previous life", ", ".join(restored))
    feed_block = pipeline.control.process_words(PROC_FEED)
    feed_was_down = False
    ctx.log.info("strategy running: %d symbols, md consumer %d", len(ctx.config.symbols), md_consumer)
    names = [s.name for s in ctx.config.symbols]
    size_decimals = [s.size_decimals for s in ctx.config.symbols]
    instance_names = [plan.names[i] if i >= 0 else "" for i in plan.instance_of]
    snapshot_every_ns = ctx.config.strategy.snapshot_interval_ms * 1_000_000
    next_snapshot_ns = 0
    first_pass = True
    while not ctx.should_exit():
        if not first_pass:
            ctx.mark_running()
        status = strategy_loop(
            md.ctrl, md.slots, md_consumer, md_batch, pipeline.snapshots.words, snapshot, snapshot.view(np.int64),
            orders.ctrl, orders.slots, executions.ctrl, executions.slots, exec_consumer, exec_batch,
            ctx.control_words, ctx.stop_index, ctx.stage, ctx.kill_index, ctx.abort_index, ctx.proc_words, state,
            params, window_ns, sample_ts, sample_logmid, cursor, accum, ctx.wait_strategy,
            0 if first_pass else LOOP_SLICE_NS,  # the first pass only compiles (nothing flows before we run)
            risk_limits, risk_state, risk_fstate, clock, reason_counters, plan.generators, kparams, *kstate,
            features, plan.rules.program, plan.rules.consts, plan.rules.rule_starts, plan.rules.actions,
            plan.rule_stack, plan.rule_holding, plan.rule_ranges, pending,
        )
        if status == LOOP_NEED_MODEL:
            symbol = int(pending[P_SYMBOL])
            direction, _strength, _confidence, holding_ms = models[symbol].predict(features[symbol])
            act_on_model(symbol, direction, holding_ms, snapshot, pending, state, orders.ctrl, orders.slots,
                         ctx.control_words, ctx.kill_index, ctx.abort_index, ctx.proc_words, ctx.wait_strategy,
                         risk_limits, risk_state, risk_fstate, clock, reason_counters)
            continue
        first_pass = False
        for message in ctx.control_messages():
            if isinstance(message, ReloadRisk):
                apply_risk_reload(ctx, message, risk_limits)
        feed_down = int(feed_block[W_STATE]) in PSTATES_DOWN
        if feed_down and not feed_was_down:
            risk_mark_stale(risk_limits, risk_state)
            ctx.log.warning("the feed died: stale-data breaker tripped on every symbol until data flows again")
        feed_was_down = feed_down
        now = monotonic_ns()
        if now >= next_snapshot_ns or status == LOOP_STOPPED:
            next_snapshot_ns = now + snapshot_every_ns
            taken = take_snapshot(names, size_decimals, instance_names, state, features, int(clock[0]))
            if publish_snapshot(ctx.control_words, W_STRATEGY_STATE, taken) < 0:
                ctx.log.warning("strategy snapshot larger than %d bytes: not published", STRATEGY_STATE_BYTES)
        # mirror this consumer's overrun counts (kept by the ring) into the process counters for stats
        consumer = md.control[0]["consumers"][md_consumer]
        ctx.proc_words[W_COUNTERS + C_OVERRUNS] = consumer["overruns"]
        ctx.proc_words[W_COUNTERS + C_LOST] = consumer["lost"]
        if status == LOOP_STOPPED:
            break
    ctx.log.info("strategy stopped")
    return 0


def main(config_raw: bytes, parent_pid: int) -> None:
    worker_main(PROC_STRATEGY, config_raw, parent_pid, run)
