"""The strategy's state as a msgspec message: written to shared memory between loop slices, stored by persistence.

Taken outside the jitted loop (the strategy process's Python side, every ``strategy.snapshot_interval_ms``), so
the hot path never encodes anything. Decode with ``msgspec.msgpack.decode(blob, type=StrategySnapshot)``.
"""

from __future__ import annotations

import msgspec
import numpy as np

from hft.strategy.kernels import FEATURE_NAMES
from hft.strategy.loop import S_OPEN_ORDER_ID, S_PENDING, S_POSITION, S_SIGNAL_DIRECTION
from shm_layout.atomics import monotonic_ns
from shm_layout.records import STRATEGY_STATE_BYTES
from shm_layout.seqlock import blob_write


class SymbolState(msgspec.Struct, frozen=True):
    symbol: str
    instance: str
    position: float  # base units, as the strategy believes it (follows the broker's reports)
    pending: float  # size of the order in flight, signed
    open_order_id: int
    signal_direction: int
    features: dict[str, float]


class StrategySnapshot(msgspec.Struct, frozen=True):
    ts_exch: int  # the strategy's decision clock (venue time, ns)
    taken_ns: int  # CLOCK_MONOTONIC when taken
    symbols: list[SymbolState]


def take_snapshot(
    names: list[str], size_decimals: list[int], instances: list[str], state: np.ndarray, features: np.ndarray,
    clock: int,
) -> StrategySnapshot:
    """Build the message from the loop's arrays (``instances[i]``: the instance trading symbol ``i``)."""
    symbols = []
    for i, name in enumerate(names):
        scale = 10.0 ** -size_decimals[i]
        symbols.append(SymbolState(
            symbol=name, instance=instances[i], position=float(state[i, S_POSITION]) * scale,
            pending=float(state[i, S_PENDING]) * scale, open_order_id=int(state[i, S_OPEN_ORDER_ID]),
            signal_direction=int(state[i, S_SIGNAL_DIRECTION]),
            features={f: float(v) for f, v in zip(FEATURE_NAMES, features[i].tolist(), strict=False) if v == v},
        ))
    return StrategySnapshot(ts_exch=int(clock), taken_ns=monotonic_ns(), symbols=symbols)


def publish_snapshot(control_words: np.ndarray, base: int, snapshot: StrategySnapshot) -> int:
    """Encode and publish into the control region's strategy_state blob; return its size, or -1 if too big."""
    data = msgspec.msgpack.encode(snapshot)
    if len(data) > STRATEGY_STATE_BYTES:
        return -1
    payload = np.frombuffer(data + b"\0" * (-len(data) % 8), np.int64)
    return len(data) if blob_write(control_words, base, STRATEGY_STATE_BYTES // 8, payload, len(data),
                                   snapshot.ts_exch) > 0 else -1

