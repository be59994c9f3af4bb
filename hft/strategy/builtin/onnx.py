"""A signal from an ONNX model (``hft.strategy.model``), on the public API.

The model runs in Python (onnxruntime): on a book change ``on_book`` copies the symbol's 14 features into
``ctx.model_in`` and calls ``request_model``; the engine hands over to Python when the callback returns, the
hook below runs the model, and ``on_model`` gets ``(direction, strength, confidence, holding_ms)`` in
``ctx.model_out``. ``hft.strategy.builtin.directional.act`` places the order.
"""

from __future__ import annotations

import os

import numpy as np

from hft.strategy.api import FEATURE_NAMES, book_ok, declare_params, request_model
from hft.strategy.builtin.directional import S, act, in_flight, on_execution, order_kind_data, size_orders

P = declare_params(
    model_path="",  # "": the shipped models/imbalance_mlp.onnx (retrain: python -m hft.strategy.train_model)
    model_norm_path="",  # "": the normalizer beside the model (<model>.norm.json)
    max_position=1.0,  # base units per symbol: order size = order_fraction * max_position
    order_fraction=0.5,
    order_type="market",  # market | ioc | limit | post_only (see hft.strategy.builtin.directional)
    order_ttl_ms=1_000.0,
)
M_DIRECTION = 0  # ctx.model_out
M_STRENGTH = 1
M_CONFIDENCE = 2
M_HOLDING_MS = 3
N_M = 4

__all__ = ["P", "S", "on_book", "on_execution", "on_model", "on_start", "prepare"]


def prepare(setup):
    from hft.strategy.model import DEFAULT_MODEL_PATH, DEFAULT_NORM_PATH, OnnxSignal

    setup.data_i = order_kind_data(setup.params["order_type"])
    model_path = setup.params["model_path"] or str(DEFAULT_MODEL_PATH)
    norm_path = setup.params["model_norm_path"] or (
        str(DEFAULT_NORM_PATH) if not setup.params["model_path"] else model_path.removesuffix(".onnx") + ".norm.json")
    for key, path in (("model_path", model_path), ("model_norm_path", norm_path)):
        if not os.path.isfile(path):
            raise ValueError(f"parameter {key}: no such file {path!r}")
    signal = OnnxSignal(model_path, norm_path, FEATURE_NAMES)
    setup.log.info("onnx model %s loaded", model_path)

    def model(inputs, outputs):
        outputs[:N_M] = signal.predict(inputs)

    model(np.zeros(len(FEATURE_NAMES)), np.zeros(N_M))  # warm the session before the loop runs
    setup.model = model
    setup.model_inputs = len(FEATURE_NAMES)
    setup.model_outputs = N_M


def on_start(ctx, symbol):
    size_orders(ctx, symbol, ctx.params[P.max_position], ctx.params[P.order_fraction], ctx.params[P.order_ttl_ms])


def on_book(ctx, symbol):
    if not book_ok(ctx, symbol) or in_flight(ctx, symbol):
        return
    ctx.model_in[:] = ctx.features[symbol]
    request_model(ctx, symbol)


def on_model(ctx, symbol):
    act(ctx, symbol, int(ctx.model_out[M_DIRECTION]), ctx.model_out[M_HOLDING_MS], False)
