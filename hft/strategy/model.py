"""A signal from an ONNX model: features in, ``(direction, strength, confidence, holding_ms)`` out.

Model contract (what ``hft/strategy/train_model.py`` writes and :class:`OnnxSignal` checks before it trades):

* one input ``features``: float32 ``[1, N]``, the ``N`` features in the order of the normalizer's
  ``feature_names``, already z-scored (:class:`OnnxSignal` does that; see below);
* three outputs, each float32 ``[1, 1]``:

  - ``direction`` in ``[-1, 1]`` (``tanh``): the expected sign of the mid move over the model's horizon,
    i.e. an estimate of ``P(up) - P(down)`` (the shipped model is trained by squared error against the
    ternary label -1/0/+1, whose conditional mean is exactly that);
  - ``confidence`` in ``[0, 1]`` (``sigmoid``): the estimated probability that the realized move over the
    horizon has the sign of ``direction`` (a flat mid counts as a miss);
  - ``holding_period`` in milliseconds, positive (``softplus`` plus a floor): the expected time until the move
    in the predicted direction peaks (see the training script for the exact label).

  Other outputs are allowed and ignored. A symbolic first dimension (batch) is accepted in place of 1.
* Optional ONNX metadata: ``feature_names`` (a JSON list) and ``format_version``; when present they must agree
  with the normalizer, so a model cannot be paired with another model's normalizer unnoticed.

Normalizer (``<model>.norm.json`` beside the model, msgspec JSON, :class:`Normalizer`): ``format_version``,
``feature_names``, per-feature ``mean`` and ``std``, and ``clip``; the model sees ``(x - mean) / std`` with a
``std`` of 0 read as 1 (a constant feature then passes as ``x - mean``), then clipped to ``[-clip, clip]`` when
``clip > 0`` (the shipped model: 5), so a feature far outside anything seen in training (a spread blow-out)
cannot drive the ReLU layer, and through it the unbounded holding period, arbitrarily far.

Feature names are stable lower-case names shared with the feature library (``imbalance``, ``spread_bps``,
``momentum``, ``volatility``, ``depth_ratio``, ``trade_flow``). The strategy says which features it provides and
in which order (``feature_names_available``); every feature the model needs must be among them, extras are
ignored, and :meth:`OnnxSignal.predict` takes a row in the strategy's order.

Latency: the session runs on one thread, sequentially, with every graph optimization, and the input and output
buffers are allocated once. ``predict`` makes one jitted call (``_prepare_input``: gather the row into the
model's order, z-score, clip, into the preallocated float32 input) and runs the session through an ``IOBinding``
bound to those buffers. Measured on this 2-core machine with the shipped model, 10,000 calls: p50 4.6 us,
p99 5.7 us with ``IOBinding``; p50 9.1 us, p99 11.3 us with ``InferenceSession.run`` and the same preallocated
input (it allocates its outputs on every call); the ``run`` path stays selectable with ``io_binding=False``.
``predict`` is Python, not numba: the jitted strategy loop would have to return to Python to call it.

Single thread: one ``OnnxSignal`` must not be used by two threads at once (it reuses its buffers).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
from numba import njit

__all__ = [
    "DEFAULT_DEAD_BAND",
    "DEFAULT_MODEL_PATH",
    "DEFAULT_NORM_PATH",
    "FEATURE_NAMES",
    "INPUT_NAME",
    "NORM_FORMAT_VERSION",
    "OUTPUT_NAMES",
    "ModelError",
    "Normalizer",
    "OnnxSignal",
    "decode_normalizer",
    "encode_normalizer",
    "load_normalizer",
    "measure_predict_latency",
    "save_normalizer",
]

NORM_FORMAT_VERSION = 1
INPUT_NAME = "features"
OUTPUT_DIRECTION = "direction"
OUTPUT_CONFIDENCE = "confidence"
OUTPUT_HOLDING = "holding_period"
OUTPUT_NAMES = (OUTPUT_DIRECTION, OUTPUT_CONFIDENCE, OUTPUT_HOLDING)
DEFAULT_DEAD_BAND = 0.1  # |direction| below this is no signal
# The features the shipped model uses, in its input order (the training script's list).
FEATURE_NAMES = ("imbalance", "spread_bps", "momentum", "volatility", "depth_ratio", "trade_flow")

MODELS_DIR = Path(__file__).resolve().parent / "models"  # shipped with the package
DEFAULT_MODEL_PATH = MODELS_DIR / "imbalance_mlp.onnx"
DEFAULT_NORM_PATH = MODELS_DIR / "imbalance_mlp.norm.json"

_FLOAT_TENSOR = "tensor(float)"


class ModelError(ValueError):
    """The model or its normalizer does not fit the contract or the strategy; the message names the mismatch."""


class Normalizer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-feature z-score parameters, stored as JSON beside the model.

    Attributes
    ----------
    format_version:
        ``NORM_FORMAT_VERSION`` of the writer; a reader refuses any other.
    feature_names:
        The model's input order; unique, non-empty names.
    mean, std:
        One finite value per feature; ``std >= 0``, and 0 is read as 1.
    clip:
        The z-scores are clipped to ``[-clip, clip]``; 0 disables clipping.
    horizon_ms:
        The label horizon the model was trained for (informational; 0 when unknown).
    model:
        Free text naming the model the normalizer belongs to (informational).
    """

    format_version: int
    feature_names: list[str]
    mean: list[float]
    std: list[float]
    clip: float = 0.0
    horizon_ms: int = 0
    model: str = ""

    def validate(self) -> None:
        """Raise ``ModelError`` unless the fields are consistent (the reader calls it; writers should too)."""
        if self.format_version != NORM_FORMAT_VERSION:
            raise ModelError(
                f"normalizer format_version {self.format_version} is not supported (expected {NORM_FORMAT_VERSION})"
            )
        n = len(self.feature_names)
        if n == 0:
            raise ModelError("normalizer has no feature_names")
        if not all(self.feature_names):
            raise ModelError("normalizer feature_names must be non-empty strings")
        duplicates = sorted({name for name in self.feature_names if self.feature_names.count(name) > 1})
        if duplicates:
            raise ModelError(f"normalizer feature_names has duplicates: {duplicates}")
        if len(self.mean) != n or len(self.std) != n:
            raise ModelError(
                f"normalizer has {n} feature_names but {len(self.mean)} means and {len(self.std)} stds"
            )
        for name, m, s in zip(self.feature_names, self.mean, self.std, strict=True):
            if not (math.isfinite(m) and math.isfinite(s) and s >= 0.0):
                raise ModelError(f"normalizer feature {name!r}: mean {m} / std {s} must be finite with std >= 0")
        if not (math.isfinite(self.clip) and self.clip >= 0.0):
            raise ModelError(f"normalizer clip {self.clip} must be finite and >= 0 (0: no clipping)")

    def scale(self) -> np.ndarray:
        """Return the divisor per feature as float64: ``std`` with 0 replaced by 1."""
        std = np.asarray(self.std, np.float64)
        return np.where(std == 0.0, 1.0, std)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Return ``(x - mean) / scale``, clipped when ``clip > 0``, for rows ``x`` (``[..., N]``), as float32.

        Computed in float32 in the same order as :meth:`OnnxSignal.predict`, so both give the same bits.
        """
        z = np.asarray(x, np.float32) - np.asarray(self.mean, np.float32)
        z *= (1.0 / self.scale()).astype(np.float32)
        if self.clip > 0.0:
            np.clip(z, np.float32(-self.clip), np.float32(self.clip), out=z)
        return z


_NORM_DECODER = msgspec.json.Decoder(Normalizer)


def encode_normalizer(norm: Normalizer) -> bytes:
    """Return the JSON bytes of ``norm`` (validated first: an inconsistent normalizer is never written)."""
    norm.validate()
    return msgspec.json.format(msgspec.json.encode(norm), indent=2) + b"\n"


def decode_normalizer(data: bytes | str, source: str = "normalizer") -> Normalizer:
    """Parse and validate normalizer JSON; raise ``ModelError`` naming ``source`` and the problem."""
    try:
        norm = _NORM_DECODER.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise ModelError(f"{source}: not a valid normalizer: {exc}") from None
    try:
        norm.validate()
    except ModelError as exc:
        raise ModelError(f"{source}: {exc}") from None
    return norm


def save_normalizer(path: str | os.PathLike[str], norm: Normalizer) -> None:
    """Write ``norm`` to ``path`` as JSON."""
    Path(path).write_bytes(encode_normalizer(norm))


def load_normalizer(path: str | os.PathLike[str]) -> Normalizer:
    """Read and validate the normalizer at ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read normalizer {path}: {exc}") from None
    return decode_normalizer(data, str(path))


def _shape_text(shape: Sequence[object]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _check_dims(what: str, shape: Sequence[object] | None, expected: tuple[int, int]) -> None:
    """Require a rank-2 shape equal to ``expected``; a symbolic first dimension (batch) is accepted."""
    if shape is None or len(shape) != 2:
        raise ModelError(f"{what}: expected shape {list(expected)}, the model declares {shape!r}")
    first, second = shape
    first_ok = first == expected[0] or not isinstance(first, int)
    if not first_ok or second != expected[1]:
        raise ModelError(f"{what}: expected shape {list(expected)}, the model declares {_shape_text(shape)}")


def _session_options() -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no thread pool spinning: with one thread there is no pool to spin, and a strategy shares its core
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


@njit(cache=True)
def _prepare_input(
    row: np.ndarray, index: np.ndarray, x: np.ndarray, mean: np.ndarray, inv_scale: np.ndarray, clip: float
) -> None:
    """Write ``clip((float32(row[index]) - mean) * inv_scale)`` into ``x``: one call instead of four ufuncs.

    float32 arithmetic in the same order as ``Normalizer.apply``, so both give the same bits; NaN passes through.
    """
    for i in range(x.shape[0]):
        v = (np.float32(row[index[i]]) - mean[i]) * inv_scale[i]
        if clip > 0.0:
            if v > clip:
                v = np.float32(clip)
            elif v < -clip:
                v = np.float32(-clip)
        x[i] = v


class OnnxSignal:
    """Load an ONNX signal model and its normalizer, check them against the strategy's features, predict.

    Parameters
    ----------
    model_path, norm_path
        The ``.onnx`` file and its ``.norm.json``.
    feature_names_available
        The features the strategy computes, in the order of the rows it will pass to :meth:`predict`.
    dead_band
        ``|direction|`` below this gives direction 0 (no signal).
    io_binding
        Run through an ``IOBinding`` on preallocated buffers (default, faster) or ``InferenceSession.run``.

    Raises
    ------
    ModelError
        Unreadable or invalid files; a model feature the strategy does not provide; an input that is not
        ``features`` float32 ``[1, N]`` with ``N`` the normalizer's feature count; a missing, non-float or
        non-``[1, 1]`` output; ONNX metadata that disagrees with the normalizer.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        norm_path: str | os.PathLike[str],
        feature_names_available: Sequence[str],
        *,
        dead_band: float = DEFAULT_DEAD_BAND,
        io_binding: bool = True,
    ) -> None:
        import onnxruntime as ort

        if not 0.0 <= dead_band < 1.0:
            raise ModelError(f"dead_band must be in [0, 1), got {dead_band}")
        self.dead_band = float(dead_band)
        self.model_path = Path(model_path)
        self.norm_path = Path(norm_path)
        self.normalizer = norm = load_normalizer(norm_path)
        available = [str(name) for name in feature_names_available]
        if len(set(available)) != len(available):
            raise ModelError(f"feature_names_available has duplicates: {available}")
        missing = [name for name in norm.feature_names if name not in available]
        if missing:
            raise ModelError(
                f"the model needs features the strategy does not provide: {missing} "
                f"(model: {norm.feature_names}, available: {available})"
            )
        self.feature_names = list(norm.feature_names)
        self.feature_names_available = available
        n = len(self.feature_names)

        if not self.model_path.is_file():
            raise ModelError(f"model file {self.model_path} not found")
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), sess_options=_session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for invalid models
            raise ModelError(f"{self.model_path}: onnxruntime cannot load the model: {exc}") from None
        self._check_contract(n)

        # the row is gathered into the model's order, z-scored and clipped into the preallocated input
        self._index = np.array([available.index(name) for name in self.feature_names], np.int64)
        self._n_available = len(available)
        self._x = np.zeros((1, n), np.float32)
        self._x_row = self._x[0]
        self._mean = np.asarray(norm.mean, np.float32)
        self._inv_scale = (1.0 / norm.scale()).astype(np.float32)
        self._clip = float(norm.clip)
        self._outputs = {name: np.zeros((1, 1), np.float32) for name in OUTPUT_NAMES}
        self._out_direction = self._outputs[OUTPUT_DIRECTION].reshape(1)  # views: read without 2-d indexing
        self._out_confidence = self._outputs[OUTPUT_CONFIDENCE].reshape(1)
        self._out_holding = self._outputs[OUTPUT_HOLDING].reshape(1)
        self._feeds = {INPUT_NAME: self._x}
        self._output_names = list(OUTPUT_NAMES)
        self.io_binding = bool(io_binding)
        if self.io_binding:
            binding = self.session.io_binding()
            # OrtValues over the numpy buffers (CPU): no copy, the session reads and writes them in place
            self._ort_input = ort.OrtValue.ortvalue_from_numpy(self._x)
            binding.bind_ortvalue_input(INPUT_NAME, self._ort_input)
            self._ort_outputs = [ort.OrtValue.ortvalue_from_numpy(self._outputs[name]) for name in OUTPUT_NAMES]
            for name, value in zip(OUTPUT_NAMES, self._ort_outputs, strict=True):
                binding.bind_ortvalue_output(name, value)
            self._binding = binding
            self._run_options = ort.RunOptions()
            # InferenceSession.run_with_iobinding is a thin wrapper over the C++ session's method of the same
            # name; calling that directly saves ~1.3 us a call. Fall back to the wrapper if the private
            # attributes ever disappear.
            inner = getattr(self.session, "_sess", None)
            raw_binding = getattr(binding, "_iobinding", None)
            if inner is not None and raw_binding is not None and hasattr(inner, "run_with_iobinding"):
                self._run_args = (raw_binding, self._run_options)
                self._run = inner.run_with_iobinding
            else:
                self._run_args = (binding, self._run_options)
                self._run = self.session.run_with_iobinding
        self.predict(np.zeros(self._n_available))  # compiles the prep kernel, lets onnxruntime allocate once

    # ------------------------------------------------------------------ validation
    def _check_contract(self, n: int) -> None:
        session = self.session
        inputs = session.get_inputs()
        names = [i.name for i in inputs]
        if names != [INPUT_NAME]:
            raise ModelError(f"{self.model_path}: expected exactly one input named {INPUT_NAME!r}, got {names}")
        feat = inputs[0]
        if feat.type != _FLOAT_TENSOR:
            raise ModelError(f"{self.model_path}: input {INPUT_NAME!r} is {feat.type}, expected {_FLOAT_TENSOR}")
        _check_dims(
            f"{self.model_path}: input {INPUT_NAME!r} ({n} features in the normalizer {self.norm_path.name})",
            feat.shape,
            (1, n),
        )
        outputs = {o.name: o for o in session.get_outputs()}
        missing = [name for name in OUTPUT_NAMES if name not in outputs]
        if missing:
            raise ModelError(
                f"{self.model_path}: missing output(s) {missing}; the model has {sorted(outputs)}, "
                f"the contract needs {list(OUTPUT_NAMES)}"
            )
        for name in OUTPUT_NAMES:
            out = outputs[name]
            if out.type != _FLOAT_TENSOR:
                raise ModelError(f"{self.model_path}: output {name!r} is {out.type}, expected {_FLOAT_TENSOR}")
            _check_dims(f"{self.model_path}: output {name!r}", out.shape, (1, 1))
        meta = session.get_modelmeta().custom_metadata_map
        if "feature_names" in meta:
            try:
                model_names = json.loads(meta["feature_names"])
            except ValueError:
                raise ModelError(f"{self.model_path}: metadata feature_names is not JSON") from None
            if model_names != self.feature_names:
                raise ModelError(
                    f"{self.model_path}: the model was trained on features {model_names} but the normalizer "
                    f"{self.norm_path.name} lists {self.feature_names}"
                )
        if "format_version" in meta and meta["format_version"] != str(NORM_FORMAT_VERSION):
            raise ModelError(
                f"{self.model_path}: metadata format_version {meta['format_version']} is not {NORM_FORMAT_VERSION}"
            )

    # ------------------------------------------------------------------ hot path
    def predict(self, features_row: np.ndarray) -> tuple[int, float, float, float]:
        """Return ``(direction, strength, confidence, holding_ms)`` for one row of features.

        ``features_row`` is a 1-d array of the raw (not normalized) values in the order of
        ``feature_names_available``. ``direction`` is -1, 0 or +1 (0 inside the dead band); ``strength`` is the
        model's ``direction`` output in ``[-1, 1]`` (signed, given inside the dead band too); ``confidence`` in
        ``[0, 1]``; ``holding_ms`` > 0. A NaN anywhere in the outputs (a NaN feature) gives
        ``(0, 0.0, 0.0, 0.0)``.
        """
        if features_row.shape[0] != self._n_available:
            raise ModelError(
                f"expected a row of {self._n_available} features {self.feature_names_available}, "
                f"got shape {features_row.shape}"
            )
        _prepare_input(features_row, self._index, self._x_row, self._mean, self._inv_scale, self._clip)
        if self.io_binding:
            self._run(*self._run_args)
            d = float(self._out_direction[0])
            c = float(self._out_confidence[0])
            h = float(self._out_holding[0])
        else:
            d_arr, c_arr, h_arr = self.session.run(self._output_names, self._feeds)
            d = float(d_arr[0, 0])
            c = float(c_arr[0, 0])
            h = float(h_arr[0, 0])
        if d != d or c != c or h != h:
            return 0, 0.0, 0.0, 0.0
        if d >= self.dead_band:
            return 1, d, c, h
        if d <= -self.dead_band:
            return -1, d, c, h
        return 0, d, c, h


def measure_predict_latency(signal: OnnxSignal, rows: np.ndarray, n_calls: int = 10_000) -> dict[str, float]:
    """Time ``n_calls`` calls of ``signal.predict`` cycling over ``rows``; return p50/p99/p99.9/mean in µs.

    Each sample is one call as the strategy would make it (plus one ``perf_counter_ns`` read, ~50 ns). The
    first pass over ``rows`` warms the caches and is not recorded.
    """
    rows = np.ascontiguousarray(rows, np.float64)
    predict = signal.predict
    clock = time.perf_counter_ns
    for row in rows[: min(len(rows), 1000)]:
        predict(row)
    samples = np.empty(n_calls, np.int64)
    m = len(rows)
    for k in range(n_calls):
        row = rows[k % m]
        started = clock()
        predict(row)
        samples[k] = clock() - started
    return {
        "n": float(n_calls),
        "p50_us": float(np.percentile(samples, 50)) / 1000,
        "p99_us": float(np.percentile(samples, 99)) / 1000,
        "p999_us": float(np.percentile(samples, 99.9)) / 1000,
        "mean_us": float(samples.mean()) / 1000,
    }
