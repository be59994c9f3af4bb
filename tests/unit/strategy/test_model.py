"""The ONNX signal model: the shipped files, the contract checks, predict, the training script end to end.

Parts that build or read ONNX protobufs need the ``onnx`` package (a training/dev dependency) and skip without
it; the runtime path needs only onnxruntime. The training-script test needs the recorded data in
``../shared/data/binance-spot`` and skips without it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from hft.strategy.model import (
    DEFAULT_MODEL_PATH,
    DEFAULT_NORM_PATH,
    FEATURE_NAMES,
    INPUT_NAME,
    NORM_FORMAT_VERSION,
    OUTPUT_NAMES,
    ModelError,
    Normalizer,
    OnnxSignal,
    decode_normalizer,
    encode_normalizer,
    load_normalizer,
    measure_predict_latency,
    save_normalizer,
)

ROOT = Path(__file__).resolve().parents[3]
DATA_DIR = ROOT.parent / "shared" / "data" / "binance-spot"
SCRIPT = ROOT / "hft" / "strategy" / "train_model.py"
NAMES = list(FEATURE_NAMES)


def shipped() -> OnnxSignal:
    return OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, NAMES)


def plausible_rows(n: int, seed: int = 0) -> np.ndarray:
    """Raw feature rows in the ranges the recorded sessions show (imbalance in [-1, 1], spread ~0.02 bps...)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([
        rng.uniform(-1, 1, n),  # imbalance
        np.abs(rng.normal(0.02, 0.03, n)),  # spread_bps
        rng.normal(0, 0.01, n),  # momentum, percent
        np.abs(rng.normal(0.001, 0.002, n)),  # volatility, percent
        rng.uniform(-1, 1, n),  # depth_ratio
        rng.uniform(-1, 1, n),  # trade_flow
    ])


# ------------------------------------------------------------------------------------------ numpy reference
def onnx_reference(model_path: Path, z: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate the graph in numpy from its initializers, node by node (float64): an independent forward pass.

    Supports exactly the ops the contract's MLP uses; any other op fails the test.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    values: dict[str, np.ndarray] = {
        init.name: numpy_helper.to_array(init).astype(np.float64) for init in model.graph.initializer
    }
    values[INPUT_NAME] = z.astype(np.float64)
    ops = {
        "MatMul": lambda a, b: a @ b,
        "Add": lambda a, b: a + b,
        "Relu": lambda a: np.maximum(a, 0.0),
        "Tanh": np.tanh,
        "Sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
        "Softplus": lambda a: np.logaddexp(0.0, a),
    }
    for node in model.graph.node:
        assert node.op_type in ops, f"unexpected op {node.op_type} in the shipped model"
        values[node.output[0]] = ops[node.op_type](*(values[name] for name in node.input))
    return {name: values[name] for name in OUTPUT_NAMES}


# ------------------------------------------------------------------------------------------ tiny models
def tiny_model(
    path: Path,
    n_in: int,
    *,
    input_name: str = INPUT_NAME,
    outputs: tuple[str, ...] = OUTPUT_NAMES,
    output_shape: tuple[int, int] = (1, 1),
    input_width: int | None = None,
    feature_names: list[str] | None = None,
) -> Path:
    """Write a small valid ONNX model (one weight vector, the contract's activations) with knobs to break it."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    width = n_in if input_width is None else input_width
    w = np.linspace(-1.0, 1.0, width * output_shape[1], dtype=np.float32).reshape(width, output_shape[1])
    activation = {OUTPUT_NAMES[0]: "Tanh", OUTPUT_NAMES[1]: "Sigmoid", OUTPUT_NAMES[2]: "Softplus"}
    nodes = [helper.make_node("MatMul", [input_name, "w"], ["z"])]
    nodes += [helper.make_node(activation.get(name, "Relu"), ["z"], [name]) for name in outputs]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(output_shape)) for name in outputs],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if feature_names is not None:
        helper.set_model_props(model, {"feature_names": json.dumps(feature_names)})
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def tiny_norm(path: Path, names: list[str], std: list[float] | None = None, clip: float = 0.0) -> Path:
    save_normalizer(path, Normalizer(
        format_version=NORM_FORMAT_VERSION,
        feature_names=names,
        mean=[0.1 * k for k in range(len(names))],
        std=std if std is not None else [1.0 + k for k in range(len(names))],
        clip=clip,
    ))
    return path


# ------------------------------------------------------------------------------------------ shipped model
def test_shipped_model_when_loaded_then_contract_holds_and_warm_predict_is_sane() -> None:
    signal = shipped()
    assert signal.feature_names == NAMES
    assert [i.name for i in signal.session.get_inputs()] == [INPUT_NAME]
    assert signal.session.get_inputs()[0].shape == [1, len(NAMES)]
    assert [o.name for o in signal.session.get_outputs()] == list(OUTPUT_NAMES)
    meta = signal.session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["feature_names"]) == NAMES
    assert signal.normalizer.horizon_ms == 1000
    direction, strength, confidence, holding = signal.predict(np.zeros(len(NAMES)))
    assert direction in (-1, 0, 1) and -1 <= strength <= 1 and 0 <= confidence <= 1 and holding > 0


def test_shipped_model_when_evaluated_in_numpy_from_initializers_then_onnxruntime_agrees() -> None:
    signal = shipped()
    rows = np.vstack([plausible_rows(300), np.zeros((1, len(NAMES))), np.full((1, len(NAMES)), 50.0)])
    reference = onnx_reference(DEFAULT_MODEL_PATH, signal.normalizer.apply(rows))
    got = np.array([signal.predict(row)[1:] for row in rows])
    assert np.abs(got[:, 0] - reference["direction"][:, 0]).max() < 1e-5
    assert np.abs(got[:, 1] - reference["confidence"][:, 0]).max() < 1e-5
    # holding_period is in ms (~1000): float32 resolves ~6e-5 there, so compare in seconds
    assert np.abs(got[:, 2] - reference["holding_period"][:, 0]).max() / 1000.0 < 1e-5


def test_predict_when_io_binding_or_run_then_identical_outputs() -> None:
    fast, plain = shipped(), OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, NAMES, io_binding=False)
    for row in plausible_rows(200, seed=1):
        assert fast.predict(row) == plain.predict(row)


def test_predict_when_crafted_inputs_then_ranges_and_dead_band_hold() -> None:
    signal = shipped()
    bid_heavy = np.array([0.95, 0.02, 0.0, 0.001, 0.8, 0.9])
    ask_heavy = np.array([-0.95, 0.02, 0.0, 0.001, -0.8, -0.9])
    up, down = signal.predict(bid_heavy), signal.predict(ask_heavy)
    assert up[1] > down[1]  # the imbalance model leans with the book
    assert up[0] == 1 and down[0] == -1
    extremes = [np.full(6, v) for v in (1e9, -1e9, 0.0)] + [bid_heavy * 1e6]
    for row in [*plausible_rows(500, seed=2), *extremes]:
        direction, strength, confidence, holding = signal.predict(row)
        assert direction in (-1, 0, 1)
        assert -1.0 <= strength <= 1.0 and 0.0 <= confidence <= 1.0
        assert 0.0 < holding < 60_000.0 and math.isfinite(holding)  # z-scores are clipped: bounded holding
        assert (direction == 0) == (abs(strength) < signal.dead_band)
        assert direction == 0 or direction == np.sign(strength)


def test_predict_when_nan_feature_then_no_signal() -> None:
    row = np.zeros(6)
    row[2] = np.nan
    assert shipped().predict(row) == (0, 0.0, 0.0, 0.0)


def test_predict_when_row_has_wrong_length_then_model_error() -> None:
    with pytest.raises(ModelError, match="expected a row of 6 features"):
        shipped().predict(np.zeros(5))


def test_predict_when_strategy_order_differs_and_has_extras_then_rows_are_gathered() -> None:
    available = ["mid_price", *reversed(NAMES), "queue_position"]
    reordered = OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, available)
    signal = shipped()
    for row in plausible_rows(50, seed=3):
        strategy_row = np.array([123.0, *row[::-1], -7.0])
        assert reordered.predict(strategy_row) == signal.predict(row)


def test_dead_band_when_widened_then_fewer_signals() -> None:
    rows = plausible_rows(300, seed=4)
    narrow = shipped()
    wide = OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, NAMES, dead_band=0.5)
    fired_narrow = sum(narrow.predict(r)[0] != 0 for r in rows)
    fired_wide = sum(wide.predict(r)[0] != 0 for r in rows)
    assert fired_wide <= fired_narrow
    with pytest.raises(ModelError, match="dead_band"):
        OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, NAMES, dead_band=1.5)


# ------------------------------------------------------------------------------------------ normalizer
def test_normalizer_when_encoded_and_decoded_then_round_trips(tmp_path: Path) -> None:
    norm = load_normalizer(DEFAULT_NORM_PATH)
    assert norm.feature_names == NAMES and norm.format_version == NORM_FORMAT_VERSION
    assert decode_normalizer(encode_normalizer(norm)) == norm
    save_normalizer(tmp_path / "n.json", norm)
    assert load_normalizer(tmp_path / "n.json") == norm
    assert msgspec.json.decode((tmp_path / "n.json").read_bytes())["feature_names"] == NAMES


def test_normalizer_when_std_is_zero_then_scale_is_one() -> None:
    norm = Normalizer(format_version=1, feature_names=["a", "b"], mean=[1.0, 2.0], std=[0.0, 4.0])
    assert norm.scale().tolist() == [1.0, 4.0]
    assert norm.apply(np.array([[3.0, 10.0]])).tolist() == [[2.0, 2.0]]


def test_predict_when_std_is_zero_then_feature_passes_centered(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    names = ["imbalance", "spread_bps"]
    model = tiny_model(tmp_path / "m.onnx", 2)
    norm = tiny_norm(tmp_path / "m.norm.json", names, std=[0.0, 2.0])
    signal = OnnxSignal(model, norm, names)
    row = np.array([0.7, 3.0])
    z = np.array([[0.7 - 0.0, (3.0 - 0.1) / 2.0]])
    expected = onnx_reference(model, z)
    _, d, c, h = signal.predict(row)
    assert d == pytest.approx(expected["direction"][0, 0], abs=1e-6)
    assert c == pytest.approx(expected["confidence"][0, 0], abs=1e-6)
    assert h == pytest.approx(expected["holding_period"][0, 0], abs=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"mean": [0.0]}, "2 feature_names but 1 means"),
        ({"std": [1.0, -1.0]}, "std >= 0"),
        ({"feature_names": ["a", "a"]}, "duplicates"),
        ({"feature_names": []}, "no feature_names"),
        ({"clip": -1.0}, "clip"),
        ({"extra_field": 1}, "not a valid normalizer"),
        ({"mean": "zero"}, "not a valid normalizer"),
    ],
)
def test_normalizer_when_invalid_then_model_error_names_the_problem(change: dict, message: str) -> None:
    raw = {"format_version": 1, "feature_names": ["a", "b"], "mean": [0.0, 0.0], "std": [1.0, 1.0], **change}
    with pytest.raises(ModelError, match=message):
        decode_normalizer(json.dumps(raw).encode(), "n.json")


def test_normalizer_when_file_missing_then_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read normalizer"):
        OnnxSignal(DEFAULT_MODEL_PATH, tmp_path / "absent.json", NAMES)


# ------------------------------------------------------------------------------------------ mismatches
def test_contract_when_tiny_model_is_valid_then_it_loads_and_predicts(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    names = ["imbalance", "depth_ratio", "trade_flow"]
    model = tiny_model(tmp_path / "m.onnx", 3, outputs=(*OUTPUT_NAMES, "logits"))  # extra outputs are ignored
    signal = OnnxSignal(model, tiny_norm(tmp_path / "n.json", names), names)
    direction, strength, confidence, holding = signal.predict(np.array([0.5, 0.1, -0.2]))
    assert direction in (-1, 0, 1) and -1 <= strength <= 1 and 0 <= confidence <= 1 and holding > 0


def test_contract_when_strategy_lacks_a_model_feature_then_error_names_it(tmp_path: Path) -> None:
    available = ["imbalance", "spread_bps", "momentum", "volatility", "depth_ratio"]
    with pytest.raises(ModelError, match=r"does not provide: \['trade_flow'\]"):
        OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, available)


def test_contract_when_normalizer_names_differ_from_model_metadata_then_error(tmp_path: Path) -> None:
    norm = load_normalizer(DEFAULT_NORM_PATH)
    swapped = [NAMES[1], NAMES[0], *NAMES[2:]]
    save_normalizer(tmp_path / "n.json", msgspec.structs.replace(norm, feature_names=swapped))
    with pytest.raises(ModelError, match="trained on features"):
        OnnxSignal(DEFAULT_MODEL_PATH, tmp_path / "n.json", NAMES)


def test_contract_when_output_missing_then_error_names_it(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = tiny_model(tmp_path / "m.onnx", 2, outputs=OUTPUT_NAMES[:2])
    with pytest.raises(ModelError, match=r"missing output\(s\) \['holding_period'\]"):
        OnnxSignal(model, tiny_norm(tmp_path / "n.json", NAMES[:2]), NAMES)


def test_contract_when_input_width_differs_from_normalizer_then_error(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = tiny_model(tmp_path / "m.onnx", 6, input_width=5)
    with pytest.raises(ModelError, match=r"input 'features' \(6 features.*expected shape \[1, 6\].*\[1, 5\]"):
        OnnxSignal(model, tiny_norm(tmp_path / "n.json", NAMES), NAMES)


def test_contract_when_input_is_misnamed_then_error(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = tiny_model(tmp_path / "m.onnx", 2, input_name="x")
    with pytest.raises(ModelError, match=r"one input named 'features', got \['x'\]"):
        OnnxSignal(model, tiny_norm(tmp_path / "n.json", NAMES[:2]), NAMES)


def test_contract_when_output_shape_is_wrong_then_error(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = tiny_model(tmp_path / "m.onnx", 2, output_shape=(1, 3))
    with pytest.raises(ModelError, match=r"output 'direction': expected shape \[1, 1\].*\[1, 3\]"):
        OnnxSignal(model, tiny_norm(tmp_path / "n.json", NAMES[:2]), NAMES)


def test_contract_when_metadata_names_disagree_on_tiny_model_then_error(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    model = tiny_model(tmp_path / "m.onnx", 2, feature_names=["imbalance", "momentum"])
    with pytest.raises(ModelError, match="trained on features"):
        OnnxSignal(model, tiny_norm(tmp_path / "n.json", ["imbalance", "spread_bps"]), NAMES)


def test_contract_when_file_is_not_onnx_then_error(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        OnnxSignal(tmp_path / "m.onnx", DEFAULT_NORM_PATH, NAMES)
    with pytest.raises(ModelError, match="not found"):
        OnnxSignal(tmp_path / "absent.onnx", DEFAULT_NORM_PATH, NAMES)


# ------------------------------------------------------------------------------------------ training script
@pytest.fixture(scope="module")
def train_script() -> object:
    """Import ``hft/strategy/train_model.py`` as a module and warm the JIT it uses (feed kernels, features, predict).

    numba's on-disk cache is keyed on every source file of the project (``shm_layout.numba_cache``): after any
    edit under ``hft/`` the first run recompiles the feed kernels, 15-30 s on two shared cores. That one-time
    cost is paid here, in this process, so that the timed run below measures the script, not the compiler.
    """
    pytest.importorskip("onnx")
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_model", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    btc = DATA_DIR / "hftbacktest_spot_btcusdt_20240808.gz"
    if btc.is_file():
        module.replay_file(btc, 1000, 400)  # a snapshot, diffs, trades and tickers: every kernel the replay uses
    shipped().predict(np.zeros(len(NAMES)))
    return module


def test_training_script_when_run_on_a_slice_then_writes_a_loadable_model(
    tmp_path: Path, train_script: object
) -> None:
    if not (DATA_DIR / "hftbacktest_spot_btcusdt_20240808.gz").is_file():
        pytest.skip(f"recorded data not found in {DATA_DIR}")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-lines", "5000", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert elapsed < 30.0, f"training on a slice took {elapsed:.1f} s"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["samples"]["train"] >= 50 and summary["samples"]["validation"] >= 20
    assert max(summary["parity"]["direction"], summary["parity"]["confidence"]) < 1e-5
    signal = OnnxSignal(tmp_path / "imbalance_mlp.onnx", tmp_path / "imbalance_mlp.norm.json", NAMES)
    direction, strength, confidence, holding = signal.predict(plausible_rows(1)[0])
    assert direction in (-1, 0, 1) and -1 <= strength <= 1 and 0 <= confidence <= 1 and holding > 0


def test_training_script_when_source_is_sim_then_writes_a_loadable_model(
    tmp_path: Path, train_script: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_script.main(["--source", "sim", "--sim-seconds", "15", "--out-dir", str(tmp_path)]) == 0
    assert "sim: seed 7, 15 s" in capsys.readouterr().out
    OnnxSignal(tmp_path / "imbalance_mlp.onnx", tmp_path / "imbalance_mlp.norm.json", NAMES)


def test_training_script_when_data_is_too_short_then_exits_with_a_message(
    tmp_path: Path, train_script: object, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (DATA_DIR / "hftbacktest_spot_btcusdt_20240808.gz").is_file():
        pytest.skip(f"recorded data not found in {DATA_DIR}")
    assert train_script.main(["--max-lines", "300", "--out-dir", str(tmp_path)]) == 2
    assert "too few samples" in capsys.readouterr().err
    assert not (tmp_path / "imbalance_mlp.onnx").exists()


# ------------------------------------------------------------------------------------------ latency
def test_predict_latency_is_measured(record_property: pytest.RecordProperty) -> None:
    """Measure, not assert: p50/p99 of 10,000 predict calls, IOBinding and plain run (see the module docs)."""
    rows = plausible_rows(1000, seed=5)
    for label, io_binding in (("iobinding", True), ("run", False)):
        signal = OnnxSignal(DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, NAMES, io_binding=io_binding)
        stats = measure_predict_latency(signal, rows, 10_000)
        record_property(f"predict_{label}", stats)
        print(f"\npredict latency ({label}): p50 {stats['p50_us']:.2f} us, p99 {stats['p99_us']:.2f} us, "
              f"p99.9 {stats['p999_us']:.2f} us, mean {stats['mean_us']:.2f} us over {int(stats['n'])} calls")
        assert stats["n"] == 10_000 and stats["p50_us"] > 0
