"""Validation at the edges, in one leaf module: the error every user-facing check raises, ``require``, and the
exact decimal-string -> fixed-point conversion.

Why a leaf: config, risk, strategy, feed and simulator all validate with these; when they lived in
``hft.config``, ``hft.config`` -> ``hft.risk.config`` -> ``hft.config`` (and ``hft.strategy.kernels``) imported each
other in a circle and had to import lazily. This module imports nothing of the project.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["ConfigError", "decimal_to_fixed", "parse_decimal", "require"]


class ConfigError(ValueError):
    """A configuration or an input value is missing or wrong; the message says which key and why. The CLI prints
    it as one line and exits 2, never a traceback."""


def require(condition: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``condition`` holds: validation at the edges, never in kernels."""
    if not condition:
        raise ConfigError(message)


def parse_decimal(text: object, what: str) -> Decimal:
    """``text`` (a decimal string: floats are refused, they cannot hold a tick exactly) as a finite ``Decimal``."""
    require(isinstance(text, str), f"{what}: must be a decimal string like '0.01', got {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{what}: {text!r} is not a decimal string like '0.01'") from None
    require(value.is_finite(), f"{what}: {text!r} is not finite")
    return value


def decimal_to_fixed(text: str | Decimal, decimals: int, what: str) -> int:
    """``text * 10**decimals`` as an int, exactly; a value off the ``10**-decimals`` grid is refused."""
    value = text if isinstance(text, Decimal) else parse_decimal(text, what)
    scaled = value.scaleb(decimals)
    require(scaled == scaled.to_integral_value(), f"{what}: {value} has more than {decimals} decimals")
    return int(scaled)
