"""Train the small imbalance MLP on recorded (or simulated) order books and export it to ONNX.

Pipeline, deterministic for given inputs and ``--seed``:

1. **Data.** ``--source replay`` (default): each recording (default: the BTCUSDT and ETHUSDT hftbacktest
   sessions in ``../shared/data/binance-spot``) is replayed through ``hft.feed.engine.FeedEngine`` exactly as the
   feed process does (``open_recording``; frames to ``on_frame``, REST bodies to ``on_snapshot``). ``--source sim``:
   the seeded ``hft.sim.model.OrderFlowModel`` (BTCUSDT and ETHUSDT) for ``--sim-seconds`` virtual seconds,
   through the same engine, the REST snapshot taken from the model when the engine asks for one.
2. **Samples.** One row each time a synced book changes (the engine's ``dirty`` flag: what the strategy
   evaluates), on the venue clock (``ts_exch``, the depth diff's ``E``). Features, named as in the feature
   library (``hft.strategy.model.FEATURE_NAMES``), computed by the strategy's own kernels
   (``hft.strategy.kernels.on_book`` / ``on_trade``, formulas in that module): the model sees in production
   exactly the numbers it was trained on. ``imbalance``, ``spread_bps``, ``momentum`` (exponentially weighted
   log return, percent), ``volatility`` (percent), ``depth_ratio`` (log ratio of top-10 sizes), ``trade_flow``.

3. **Labels** (per sample at time t, mid as of a time = the last book at or before it):
   ``sign``   = sign(mid(t + H) - mid(t)) in {-1, 0, +1}, H = ``--horizon-ms`` (1000), exact on the integer mid;
   ``move``   = 1e4 x log(mid(t + H) / mid(t)) in bps (the magnitude; used for the metrics);
   ``hold``   = the time in (0, 3H] at which the mid's move in the direction ``sign`` peaks (first time of the
                maximum), clipped to [50 ms, 3H]; H when ``sign`` is 0 or the move never turns favourable.
   Samples without 3H of data after them are dropped.
4. **Split by time**, per symbol: the first ``--train-fraction`` of the session trains, the rest validates;
   training samples whose 3H label window reaches into the validation period are dropped (no look-ahead).
   The normalizer (mean/std) is fitted on the training rows only; z-scores are clipped to +-``--clip`` (5).
5. **Model**: z -> Dense(16) -> ReLU -> three heads: ``direction = tanh`` (squared error against ``sign``, so it
   estimates P(up) - P(down)), ``confidence = sigmoid`` (cross-entropy against "the realized sign equals the sign
   of the direction head", the head's own prediction taken as a constant), ``holding_period = 1000 x (softplus +
   0.01)`` ms (squared error against ``hold`` in seconds). Full-batch Adam (600 steps, lr 0.01), fixed seed, L2 0.03
   on the weights: the 6-minute sessions change regime between train and validation (momentum predicts the
   sign in the first 70 % and not after), so the model is kept simple rather than fitted hard.
6. **Export**: ONNX opset 17 built with ``onnx.helper`` (MatMul, Add, Relu, Tanh, Sigmoid, Softplus), input
   ``features`` float32 [1, N], outputs ``direction``/``confidence``/``holding_period`` float32 [1, 1], metadata
   ``feature_names`` (JSON), ``format_version`` and provenance; ``onnx.checker`` on it; then every validation row
   goes through ``hft.strategy.model.OnnxSignal.predict`` (the strategy's path: z-scoring, onnxruntime) and is
   compared with the numpy forward pass (max abs error < 1e-5 for direction and confidence,
   and for holding_period in seconds, i.e. relative to its 1000x scale). Writes ``<out-dir>/<name>.onnx`` and
   ``<out-dir>/<name>.norm.json``.

Needs ``onnx`` (a training/dev dependency: ``pip install onnx``); the strategy needs only onnxruntime.

Usage::

    python -m hft.strategy.train_model                       # both recordings -> models/
    python -m hft.strategy.train_model --max-lines 5000 --out-dir /tmp/m   # a quick slice
    python -m hft.strategy.train_model --source sim          # 120 virtual seconds of the simulator, ~10 s
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository
sys.path.insert(0, str(ROOT))

from hft.feed.engine import FeedEngine, SymbolSpec  # noqa: E402
from hft.recording.formats import FRAME, open_recording  # noqa: E402
from hft.strategy.kernels import FEATURE_NAMES as KERNEL_FEATURE_NAMES  # noqa: E402
from hft.strategy.kernels import configure_symbol, make_features, make_kernel_params, make_kernel_state  # noqa: E402
from hft.strategy.kernels import on_book as kernel_on_book  # noqa: E402
from hft.strategy.kernels import on_trade as kernel_on_trade  # noqa: E402
from hft.strategy.model import (  # noqa: E402
    FEATURE_NAMES,
    INPUT_NAME,
    NORM_FORMAT_VERSION,
    OUTPUT_CONFIDENCE,
    OUTPUT_DIRECTION,
    OUTPUT_HOLDING,
    Normalizer,
    OnnxSignal,
    save_normalizer,
)
from shm_layout.records import BOOK_SYNCED, EV_TRADE  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data" / "binance-spot"
DEFAULT_FILES = [
    DATA_DIR / "hftbacktest_spot_btcusdt_20240808.gz",
    DATA_DIR / "hftbacktest_spot_ethusdt_20240808.gz",
]
MODEL_NAME = "imbalance_mlp"
OPSET = 17
IR_VERSION = 8  # the IR of opset 17: loadable by every onnxruntime the project allows (>= 1.17)
HIDDEN = 16
HOLD_FLOOR_S = 0.01  # holding_period = 1000 * (softplus(z) + HOLD_FLOOR_S) ms: strictly positive
HOLD_MIN_MS = 50.0
PERCENT = 100.0
PARITY_TOLERANCE = 1e-5


class Series(NamedTuple):
    """The samples of one symbol, in time order."""

    symbol: str
    ts_ns: np.ndarray  # int64, venue clock
    mid_x2: np.ndarray  # int64, bid + ask (exact)
    features: np.ndarray  # float64 [n, len(FEATURE_NAMES)]


# ---------------------------------------------------------------------------------------------- features
class FeatureBuilder:
    """Per-symbol features from ``hft.strategy.kernels``: exactly what the strategy process computes live.

    The model's inputs are a subset of the kernels' rows (``FEATURE_NAMES``), taken at every changed two-sided
    synced book, so a model trained here sees in production the very numbers it was trained on.
    """

    def __init__(self, n_symbols: int, window_ms: int, bucket_volume: int = 100_000_000) -> None:
        self.params = make_kernel_params(n_symbols)
        for sid in range(n_symbols):
            configure_symbol(self.params, sid, window_ns=window_ms * 1_000_000, bucket_volume=bucket_volume)
        self.state = tuple(make_kernel_state(n_symbols))
        self.features = make_features(n_symbols)
        self.columns = [KERNEL_FEATURE_NAMES.index(name) for name in FEATURE_NAMES]
        self.rows: list[list[tuple[int, int, list[float]]]] = [[] for _ in range(n_symbols)]

    def on_trade(self, sid: int, ts_ns: int, price: int, size: int, side: int) -> None:
        kernel_on_trade(sid, ts_ns, price, size, side, self.params, *self.state, self.features)

    def on_book(self, sid: int, snap: np.void) -> None:
        ts = int(snap["ts_exch"])
        bid, ask = int(snap["bid_price"]), int(snap["ask_price"])
        if snap["status"] != BOOK_SYNCED or ts <= 0 or bid <= 0 or ask <= bid:
            return
        kernel_on_book(sid, snap, self.params, *self.state, self.features)
        row = [float(self.features[sid, column]) for column in self.columns]
        self.rows[sid].append((ts, int(snap["mid_x2"]), row))

    def series(self, names: list[str]) -> list[Series]:
        out = []
        for sid, name in enumerate(names):
            rows = self.rows[sid]
            if not rows:
                continue
            out.append(Series(
                name,
                np.array([r[0] for r in rows], np.int64),
                np.array([r[1] for r in rows], np.int64),
                np.array([r[2] for r in rows], np.float64).reshape(len(rows), len(FEATURE_NAMES)),
            ))
        return out


def _drain(engine: FeedEngine, n: int, builder: FeatureBuilder, size_scales: list[float]) -> None:
    """Pass this call's trades and every changed book to the feature builder (clearing ``dirty``)."""
    events = engine.events
    for k in range(n):
        ev = events[k]
        if ev["kind"] == EV_TRADE:
            builder.on_trade(int(ev["symbol_id"]), int(ev["ts_exch"]), int(ev["price"]), int(ev["size"]),
                             int(ev["side"]))
    for sid in np.flatnonzero(engine.dirty):
        engine.dirty[sid] = 0
        builder.on_book(int(sid), engine.snapshots[sid])


def replay_file(path: Path, window_ms: int, max_lines: int | None) -> list[Series]:
    """Replay one single-symbol recording through a FeedEngine and return its samples."""
    records = []
    for number, record in enumerate(open_recording(path)):
        if max_lines is not None and number >= max_lines:
            break
        records.append(record)
    symbols = sorted({r.symbol for r in records if r.kind != FRAME and r.symbol})
    if len(symbols) != 1:
        raise SystemExit(f"{path}: expected one symbol with a REST snapshot in the slice read, found {symbols}")
    symbol = symbols[0]
    # as bench/feed.py: prices at 2 decimals, sizes at 8; no lot grid (old finer-lot levels far from the touch
    # would otherwise reset the book, see hft.feed.engine)
    engine = FeedEngine([SymbolSpec(symbol, 0, 2, 8)])
    builder = FeatureBuilder(1, window_ms)
    scales = [1e-8]
    for record in records:
        if record.kind == FRAME:
            n = engine.on_frame(record.payload, record.ts_ns)
        else:
            n = max(0, engine.on_snapshot(record.symbol, record.payload, record.ts_ns))
        _drain(engine, n, builder, scales)
    return builder.series([symbol])


def simulate(seconds: float, seed: int, window_ms: int) -> list[Series]:
    """Run the seeded simulator for ``seconds`` of virtual time through a FeedEngine; return the samples."""
    from hft.sim.config import SimConfig
    from hft.sim.model import OrderFlowModel

    config = SimConfig(seed=seed)
    model = OrderFlowModel(config)
    specs = [
        SymbolSpec(s.name, k, s.price_decimals, s.size_decimals, s.tick_int, s.lot_int)
        for k, s in enumerate(config.symbols)
    ]
    engine = FeedEngine(specs)
    builder = FeatureBuilder(len(specs), window_ms)
    scales = [10.0 ** -s.size_decimals for s in config.symbols]
    step_ns = 10_000_000
    for _ in range(int(seconds * 1e9) // step_ns):
        for frame in model.advance(step_ns):
            n = engine.on_frame(frame, model.now_ns)
            _drain(engine, n, builder, scales)
        for symbol in engine.needs_snapshot():
            n = max(0, engine.on_snapshot(symbol, model.depth_snapshot(symbol, 1000), model.now_ns))
            _drain(engine, n, builder, scales)
    return builder.series([s.name for s in config.symbols])


# ---------------------------------------------------------------------------------------------- labels
def label_series(s: Series, horizon_ms: int) -> tuple[np.ndarray, ...]:
    """Return ``(keep, sign, move_bps, hold_s)`` for every sample of ``s`` (see the module docstring)."""
    h_ns = horizon_ms * 1_000_000
    hmax_ns = 3 * h_ns
    ts, mid = s.ts_ns, s.mid_x2
    n = len(ts)
    keep = ts + hmax_ns <= ts[-1] if n else np.zeros(0, bool)
    at_h = np.searchsorted(ts, ts + h_ns, side="right") - 1
    at_max = np.searchsorted(ts, ts + hmax_ns, side="right") - 1
    sign = np.sign(mid[at_h] - mid).astype(np.float64)
    move = 1e4 * np.log(mid[at_h].astype(np.float64) / mid.astype(np.float64))
    hold = np.full(n, horizon_ms / 1000.0)
    for i in np.flatnonzero(keep & (sign != 0)):
        window = sign[i] * (mid[i + 1 : at_max[i] + 1] - mid[i])
        if window.size and window.max() > 0:
            k = int(np.argmax(window))
            hold[i] = (ts[i + 1 + k] - ts[i]) / 1e9
    hold = np.clip(hold, HOLD_MIN_MS / 1000.0, 3 * horizon_ms / 1000.0)
    return keep, sign, move, hold


class Dataset(NamedTuple):
    x: np.ndarray
    sign: np.ndarray
    move: np.ndarray
    hold: np.ndarray
    symbol: np.ndarray


def build_datasets(series: list[Series], horizon_ms: int, train_fraction: float) -> tuple[Dataset, Dataset]:
    """Label every series, split each by time, drop training rows whose label window reaches validation."""
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {"train": [], "val": []}
    hmax_ns = 3 * horizon_ms * 1_000_000
    for s in series:
        keep, sign, move, hold = label_series(s, horizon_ms)
        if not keep.any():
            continue
        ts = s.ts_ns
        cut = ts[0] + int(train_fraction * (ts[keep][-1] - ts[0]))
        train = keep & (ts + hmax_ns < cut)
        val = keep & (ts >= cut)
        for part, mask in (("train", train), ("val", val)):
            parts[part].append((s.features[mask], sign[mask], move[mask], hold[mask],
                                np.full(int(mask.sum()), s.symbol)))
    empty = (np.zeros((0, len(FEATURE_NAMES))), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, str))
    train_set, val_set = (
        Dataset(*(np.concatenate(column) for column in zip(empty, *parts[part], strict=True)))
        for part in ("train", "val")
    )
    return train_set, val_set


# ---------------------------------------------------------------------------------------------- model
def softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def init_params(n_in: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0.0, math.sqrt(2.0 / n_in), (n_in, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "wd": rng.normal(0.0, math.sqrt(1.0 / HIDDEN), (HIDDEN, 1)),
        "bd": np.zeros(1),
        "wc": rng.normal(0.0, math.sqrt(1.0 / HIDDEN), (HIDDEN, 1)),
        "bc": np.zeros(1),
        "wh": rng.normal(0.0, math.sqrt(1.0 / HIDDEN), (HIDDEN, 1)),
        "bh": np.zeros(1),
    }


def forward(p: dict[str, np.ndarray], z: np.ndarray) -> dict[str, np.ndarray]:
    """The numpy forward pass: the reference the ONNX graph must reproduce (``hold_ms`` in milliseconds)."""
    pre = z @ p["w1"] + p["b1"]
    h = np.maximum(pre, 0.0)
    zd = h @ p["wd"] + p["bd"]
    zc = h @ p["wc"] + p["bc"]
    zh = h @ p["wh"] + p["bh"]
    hold_s = softplus(zh) + HOLD_FLOOR_S
    return {"pre": pre, "h": h, "zh": zh, "direction": np.tanh(zd), "confidence": sigmoid(zc),
            "hold_s": hold_s, "hold_ms": 1000.0 * hold_s}


def train(z: np.ndarray, data: Dataset, steps: int, lr: float, l2: float, seed: int) -> dict[str, np.ndarray]:
    """Full-batch Adam on the three losses (module docstring); returns float64 parameters."""
    p = init_params(z.shape[1], seed)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    y = data.sign[:, None]
    hold_t = data.hold[:, None]
    n = len(z)
    for step in range(1, steps + 1):
        f = forward(p, z)
        d, c = f["direction"], f["confidence"]
        hit = (np.sign(d) == y) & (y != 0)
        g_zd = 2.0 * (d - y) * (1.0 - d * d) / n
        g_zc = (c - hit) / n
        g_zh = 2.0 * (f["hold_s"] - hold_t) * sigmoid(f["zh"]) / n
        h = f["h"]
        grads = {
            "wd": h.T @ g_zd, "bd": g_zd.sum(0),
            "wc": h.T @ g_zc, "bc": g_zc.sum(0),
            "wh": h.T @ g_zh, "bh": g_zh.sum(0),
        }
        g_h = g_zd @ p["wd"].T + g_zc @ p["wc"].T + g_zh @ p["wh"].T
        g_pre = g_h * (f["pre"] > 0)
        grads["w1"] = z.T @ g_pre
        grads["b1"] = g_pre.sum(0)
        for k in p:
            g = grads[k] + (l2 * p[k] if k.startswith("w") else 0.0)
            m[k] = beta1 * m[k] + (1 - beta1) * g
            v[k] = beta2 * v[k] + (1 - beta2) * g * g
            p[k] -= lr * (m[k] / (1 - beta1**step)) / (np.sqrt(v[k] / (1 - beta2**step)) + eps)
    return p


def metrics(p: dict[str, np.ndarray], z: np.ndarray, data: Dataset, dead_band: float) -> dict[str, float]:
    """Validation metrics of the direction, confidence and holding heads, with simple baselines."""
    f = forward(p, z)
    d = f["direction"][:, 0]
    c = f["confidence"][:, 0]
    y = data.sign
    fired = np.abs(d) >= dead_band
    side = np.sign(d)
    hit = (side == y) & (y != 0)
    imb = np.sign(data.x[:, FEATURE_NAMES.index("imbalance")])
    imb_fired = np.abs(data.x[:, FEATURE_NAMES.index("imbalance")]) >= 0.3  # the seed rule's threshold
    moving = y != 0
    majority = 1.0 if (y > 0).sum() >= (y < 0).sum() else -1.0
    out = {
        "n": float(len(y)),
        "share_up": float((y > 0).mean()), "share_flat": float((y == 0).mean()), "share_down": float((y < 0).mean()),
        "direction_mse": float(np.mean((d - y) ** 2)),
        "direction_mse_const0": float(np.mean(y**2)),
        "corr_direction_move": float(np.corrcoef(d, data.move)[0, 1]) if d.std() > 0 else 0.0,
        "coverage": float(fired.mean()),
        "hit_rate_fired": float(hit[fired].mean()) if fired.any() else float("nan"),
        "hit_rate_fired_moving": float(hit[fired & moving].mean()) if (fired & moving).any() else float("nan"),
        "mean_signed_move_bps_fired": float((side * data.move)[fired].mean()) if fired.any() else float("nan"),
        "baseline_majority_hit_rate_moving": float((y[moving] == majority).mean()) if moving.any() else float("nan"),
        "baseline_imbalance_hit_rate_moving": float(((imb == y) & moving)[imb_fired & moving].mean())
        if (imb_fired & moving).any() else float("nan"),
        "baseline_imbalance_coverage": float(imb_fired.mean()),
        "baseline_imbalance_mean_signed_move_bps": float((imb * data.move)[imb_fired].mean())
        if imb_fired.any() else float("nan"),
        "confidence_mean": float(c.mean()),
        "confidence_brier": float(np.mean((c - hit) ** 2)),
        "confidence_brier_const": float(np.mean((hit.mean() - hit) ** 2)),
        "hit_rate_top_confidence_quartile": float(hit[c >= np.quantile(c, 0.75)].mean()),
        "holding_rmse_ms": float(np.sqrt(np.mean((f["hold_ms"][:, 0] - 1000 * data.hold) ** 2))),
        "holding_rmse_ms_const_mean": float(1000 * data.hold.std()),
        "holding_mae_ms": float(np.mean(np.abs(f["hold_ms"][:, 0] - 1000 * data.hold))),
        "holding_mae_ms_const_median": float(np.mean(np.abs(1000 * (np.median(data.hold) - data.hold)))),
        "holding_ms_min": float(f["hold_ms"].min()), "holding_ms_max": float(f["hold_ms"].max()),
    }
    return out


# ---------------------------------------------------------------------------------------------- ONNX
def export_onnx(p: dict[str, np.ndarray], feature_names: list[str], path: Path, meta: dict[str, str]) -> None:
    """Write the MLP as an ONNX graph (opset 17) with the contract's names and shapes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = len(feature_names)

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    inits = [
        const("w1", p["w1"]), const("b1", p["b1"]),
        const("wd", p["wd"]), const("bd", p["bd"]),
        const("wc", p["wc"]), const("bc", p["bc"]),
        const("wh", p["wh"]), const("bh", p["bh"]),
        const("hold_floor_s", np.array([HOLD_FLOOR_S])),
        const("s_to_ms", np.array([[1000.0]])),
    ]
    node = helper.make_node
    nodes = [
        node("MatMul", [INPUT_NAME, "w1"], ["h_mm"]),
        node("Add", ["h_mm", "b1"], ["h_pre"]),
        node("Relu", ["h_pre"], ["h"]),
        node("MatMul", ["h", "wd"], ["d_mm"]),
        node("Add", ["d_mm", "bd"], ["d_z"]),
        node("Tanh", ["d_z"], [OUTPUT_DIRECTION]),
        node("MatMul", ["h", "wc"], ["c_mm"]),
        node("Add", ["c_mm", "bc"], ["c_z"]),
        node("Sigmoid", ["c_z"], [OUTPUT_CONFIDENCE]),
        node("MatMul", ["h", "wh"], ["hp_mm"]),
        node("Add", ["hp_mm", "bh"], ["hp_z"]),
        node("Softplus", ["hp_z"], ["hp_sp"]),
        node("Add", ["hp_sp", "hold_floor_s"], ["hp_s"]),
        node("MatMul", ["hp_s", "s_to_ms"], [OUTPUT_HOLDING]),
    ]
    graph = helper.make_graph(
        nodes,
        MODEL_NAME,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1])
         for name in (OUTPUT_DIRECTION, OUTPUT_CONFIDENCE, OUTPUT_HOLDING)],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="hft hft/strategy/train_model.py",
        doc_string="imbalance MLP: z-scored features [1,N] -> direction (tanh), confidence (sigmoid), "
        "holding_period (ms)",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"feature_names": json.dumps(feature_names),
                                   "format_version": str(NORM_FORMAT_VERSION), **meta})
    onnx.checker.check_model(model, full_check=True)
    path.write_bytes(model.SerializeToString())


def check_parity(model_path: Path, norm_path: Path, p32: dict[str, np.ndarray], x_val: np.ndarray,
                 norm: Normalizer) -> dict[str, float]:
    """Run onnxruntime on every validation row (through OnnxSignal) and compare with the numpy forward pass."""
    signal = OnnxSignal(model_path, norm_path, list(norm.feature_names))
    z = norm.apply(x_val)
    ref = forward({k: v.astype(np.float64) for k, v in p32.items()}, z.astype(np.float64))
    err = {"direction": 0.0, "confidence": 0.0, "holding_period_s": 0.0, "holding_period_ms": 0.0}
    for i, row in enumerate(x_val):
        _, d, c, h = signal.predict(row)
        err["direction"] = max(err["direction"], abs(d - ref["direction"][i, 0]))
        err["confidence"] = max(err["confidence"], abs(c - ref["confidence"][i, 0]))
        err["holding_period_ms"] = max(err["holding_period_ms"], abs(h - ref["hold_ms"][i, 0]))
        err["holding_period_s"] = max(err["holding_period_s"], abs(h / 1000.0 - ref["hold_s"][i, 0]))
    bad = {k: v for k, v in err.items() if k != "holding_period_ms" and not v < PARITY_TOLERANCE}
    if bad:
        raise SystemExit(f"ONNX and numpy disagree beyond {PARITY_TOLERANCE}: {bad}")
    return err


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=("replay", "sim"), default="replay")
    parser.add_argument("--files", type=Path, nargs="+", default=DEFAULT_FILES, help="recordings (replay)")
    parser.add_argument("--max-lines", type=int, default=None, help="read at most this many records per file")
    parser.add_argument("--sim-seconds", type=float, default=120.0, help="virtual seconds to simulate (sim)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed and weight-init seed")
    parser.add_argument("--horizon-ms", type=int, default=1000)
    parser.add_argument("--window-ms", type=int, default=1000, help="momentum/volatility/trade-flow window")
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--steps", type=int, default=600, help="full-batch Adam steps")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--l2", type=float, default=0.03, help="L2 penalty on the weights (not the biases)")
    parser.add_argument("--clip", type=float, default=5.0, help="clip z-scores to +-clip (0: off)")
    parser.add_argument("--dead-band", type=float, default=0.1)
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent / "models")
    parser.add_argument("--name", default=MODEL_NAME)
    args = parser.parse_args(argv)
    started = time.perf_counter()

    if args.source == "replay":
        missing = [str(f) for f in args.files if not f.is_file()]
        if missing:
            print(f"recording(s) not found: {missing} (pass --files or --source sim)", file=sys.stderr)
            return 2
        series = [s for f in args.files for s in replay_file(f, args.window_ms, args.max_lines)]
        source = "replay: " + ", ".join(f.name for f in args.files)
    else:
        series = simulate(args.sim_seconds, args.seed, args.window_ms)
        source = f"sim: seed {args.seed}, {args.sim_seconds:g} s"
    t_data = time.perf_counter() - started
    train_set, val_set = build_datasets(series, args.horizon_ms, args.train_fraction)
    if len(train_set.sign) < 50 or len(val_set.sign) < 20:
        print(f"too few samples: {len(train_set.sign)} train, {len(val_set.sign)} validation "
              "(read more data: --max-lines, --sim-seconds)", file=sys.stderr)
        return 2

    feature_names = list(FEATURE_NAMES)
    norm = Normalizer(
        format_version=NORM_FORMAT_VERSION,
        feature_names=feature_names,
        mean=[float(v) for v in train_set.x.mean(0)],
        std=[float(v) for v in train_set.x.std(0)],
        clip=args.clip,
        horizon_ms=args.horizon_ms,
        model=args.name,
    )
    norm.validate()
    z_train = norm.apply(train_set.x).astype(np.float64)
    z_val = norm.apply(val_set.x).astype(np.float64)
    params = train(z_train, train_set, args.steps, args.lr, args.l2, args.seed)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    t_train = time.perf_counter() - started - t_data

    args.out_dir.mkdir(parents=True, exist_ok=True)
    model_path = args.out_dir / f"{args.name}.onnx"
    norm_path = args.out_dir / f"{args.name}.norm.json"
    val_metrics = metrics(params, z_val, val_set, args.dead_band)
    train_metrics = metrics(params, z_train, train_set, args.dead_band)
    export_onnx(p32, feature_names, model_path, {
        "horizon_ms": str(args.horizon_ms),
        "trained_on": source,
        "samples": json.dumps({"train": len(train_set.sign), "validation": len(val_set.sign)}),
        "validation_hit_rate_fired": f"{val_metrics['hit_rate_fired']:.4f}",
    })
    save_normalizer(norm_path, norm)
    parity = check_parity(model_path, norm_path, p32, val_set.x, norm)

    print(f"data: {source}")
    for s in series:
        print(f"  {s.symbol}: {len(s.ts_ns)} book samples over {(s.ts_ns[-1] - s.ts_ns[0]) / 1e9:.1f} s")
    print(f"samples: train {len(train_set.sign)}, validation {len(val_set.sign)} (split by time per symbol, "
          f"{args.train_fraction:.0%} / rest, label horizon {args.horizon_ms} ms)")
    print(f"features: {feature_names}")
    print(f"{'metric':<38}{'train':>12}{'validation':>12}")
    for key in val_metrics:
        print(f"{key:<38}{train_metrics[key]:>12.4f}{val_metrics[key]:>12.4f}")
    print("onnx vs numpy, max abs error over the validation set: "
          + ", ".join(f"{k} {v:.2e}" for k, v in parity.items()))
    print(f"wrote {model_path} ({model_path.stat().st_size} bytes) and {norm_path} ({norm_path.stat().st_size} bytes)")
    print(f"time: data {t_data:.1f} s, training {t_train:.1f} s, total {time.perf_counter() - started:.1f} s")
    print(json.dumps({"validation": val_metrics, "train": train_metrics, "parity": parity,
                      "samples": {"train": len(train_set.sign), "validation": len(val_set.sign)}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
