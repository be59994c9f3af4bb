"""The strategies shipped with hft, written on the public API like any user's (``hft.strategy.api``).

``[strategy] module = "imbalance"`` (the default), ``"rules"`` or ``"onnx"`` selects one; each lists its
parameters (``[strategy.params]``) at the top of its module.
"""
