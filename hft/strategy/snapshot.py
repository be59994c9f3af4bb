"""The strategies' state as a msgspec message: written to shared memory between loop slices, stored by persistence.

Taken outside the jitted loop (the strategy process's Python side, every ``strategy.snapshot_interval_ms``), so
the hot path never encodes anything. Decode with ``msgspec.msgpack.decode(blob, type=StrategySnapshot)``.
"""

from __future__ import annotations

import msgspec
import numpy as np

from hft.strategy.api import DENIAL_NAMES
from hft.strategy.context import (
    ACC_POSITION,
    OO_CANCEL_ID,
    OO_ID,
    OO_LEAVES,
    OO_PRICE,
    OO_SIDE,
    OO_STATE,
    OO_SYMBOL,
)
from hft.strategy.kernels import FEATURE_NAMES
from shm_layout.atomics import monotonic_ns
from shm_layout.records import STRATEGY_STATE_BYTES
from shm_layout.seqlock import blob_write

ORDER_STATE_NAMES = ("", "SENT", "OPEN", "PARTIAL")


class OpenOrder(msgspec.Struct, frozen=True):
    order_id: int
    symbol: str
    side: int
    price: float
    leaves: float
    state: str
    cancel_pending: bool


class SymbolState(msgspec.Struct, frozen=True):
    symbol: str
    instance: str
    position: float  # base units, as the strategy sees it (the broker's reports)
    features: dict[str, float]
    state: dict[str, float]  # the instance's declared per-symbol state (ints and floats)


class InstanceState(msgspec.Struct, frozen=True):
    name: str
    strategy: str
    halted: bool
    open_orders: list[OpenOrder]
    denials: dict[str, int]  # actions refused, by reason


class StrategySnapshot(msgspec.Struct, frozen=True):
    ts_exch: int  # the engine's venue clock (ns)
    taken_ns: int  # CLOCK_MONOTONIC when taken
    symbols: list[SymbolState]
    instances: list[InstanceState] = []


def take_snapshot(runtime) -> StrategySnapshot:
    """Build the message from a ``hft.strategy.runtime.StrategyRuntime``'s arrays."""
    names = runtime.names
    scales = [10.0 ** -s.size_decimals for s in runtime.symbols]
    prices = [10.0 ** -s.price_decimals for s in runtime.symbols]
    owner = runtime.engine.owner
    symbols = []
    for sid, name in enumerate(names):
        number = int(owner[sid])
        state: dict[str, float] = {}
        instance = ""
        if number >= 0:
            spec = runtime.instances[number]
            context = runtime.contexts[number]
            instance = spec.name
            state = {key: float(context.ints[sid, k]) for k, (key, _) in enumerate(spec.strategy.ints)}
            state |= {key: float(context.floats[sid, k]) for k, (key, _) in enumerate(spec.strategy.floats)}
        features = runtime.market.features[sid]
        symbols.append(SymbolState(
            symbol=name, instance=instance, position=float(runtime.market.account[sid, ACC_POSITION]) * scales[sid],
            features={f: float(v) for f, v in zip(FEATURE_NAMES, features.tolist(), strict=False) if v == v},
            state=state,
        ))
    instances = []
    for number, spec in enumerate(runtime.instances):
        context = runtime.contexts[number]
        orders = [
            OpenOrder(order_id=int(row[OO_ID]), symbol=names[int(row[OO_SYMBOL])], side=int(row[OO_SIDE]),
                      price=float(row[OO_PRICE]) * prices[int(row[OO_SYMBOL])],
                      leaves=float(row[OO_LEAVES]) * scales[int(row[OO_SYMBOL])],
                      state=ORDER_STATE_NAMES[int(row[OO_STATE])], cancel_pending=bool(row[OO_CANCEL_ID]))
            for row in context.open_orders()
        ]
        denials = {DENIAL_NAMES[k]: int(v) for k, v in enumerate(context.denials[:len(DENIAL_NAMES)].tolist()) if v}
        instances.append(InstanceState(name=spec.name, strategy=spec.strategy.name, halted=context.halted,
                                       open_orders=orders, denials=denials))
    return StrategySnapshot(ts_exch=runtime.clock, taken_ns=monotonic_ns(), symbols=symbols, instances=instances)


def publish_snapshot(control_words: np.ndarray, base: int, snapshot: StrategySnapshot) -> int:
    """Encode and publish into the control region's strategy_state blob; return its size, or -1 if too big."""
    data = msgspec.msgpack.encode(snapshot)
    if len(data) > STRATEGY_STATE_BYTES:
        return -1
    payload = np.frombuffer(data + b"\0" * (-len(data) % 8), np.int64)
    return len(data) if blob_write(control_words, base, STRATEGY_STATE_BYTES // 8, payload, len(data),
                                   snapshot.ts_exch) > 0 else -1
