"""Exact decimal strings to ``int64`` fixed point, never through a float.

The venue sends prices and quantities as decimal strings (``"61837.63000000"``). A float round trip would make
``0.1 + 0.2``-style errors part of the book, so both parsers here work digit by digit on the bytes.

Accepted grammar (ASCII only, nothing else: no spaces, exponents, underscores, ``NaN``, ``inf``)::

    number := [sign] digit+ ["." digit+]        sign := "-" | "+"   (only when ``signed``)

The value is ``number * 10**decimals`` and must be an integer: fractional digits beyond ``decimals`` are allowed
only when they are zeros (``"60000.01000000"`` at 2 decimals is ``6000001``). The magnitude must fit in
``int64`` (``|value| <= 2**63 - 1``).

``parse_fixed_u8`` is the jitted kernel (status codes, allocates nothing); ``parse_fixed`` is the Python wrapper
that raises ``ValueError``. Both run the same code.
"""

from __future__ import annotations

from numba import njit

__all__ = [
    "DEC_BAD_DECIMALS",
    "DEC_EMPTY",
    "DEC_OK",
    "DEC_OVERFLOW",
    "DEC_PRECISION",
    "DEC_SIGN",
    "DEC_SYNTAX",
    "INT64_MAX",
    "MAX_DECIMALS",
    "format_fixed",
    "parse_fixed",
    "parse_fixed_u8",
]

DEC_OK = 0
DEC_EMPTY = -1  # nothing between start and end
DEC_SYNTAX = -2  # a byte outside the grammar (also NaN, inf, exponents, "1.", ".5")
DEC_SIGN = -3  # a sign where none is allowed
DEC_PRECISION = -4  # a non-zero digit beyond ``decimals``
DEC_OVERFLOW = -5  # the scaled value does not fit in int64
DEC_BAD_DECIMALS = -6  # ``decimals`` outside 0..MAX_DECIMALS

MAX_DECIMALS = 18
INT64_MAX = 9223372036854775807
_OVERFLOW_GUARD = INT64_MAX // 10  # value * 10 + digit cannot overflow while value <= this (checked exactly below)

_MESSAGES = {
    DEC_EMPTY: "empty number",
    DEC_SYNTAX: "not a plain decimal number",
    DEC_SIGN: "sign not allowed",
    DEC_PRECISION: "more significant fractional digits than decimals",
    DEC_OVERFLOW: "value does not fit in int64",
    DEC_BAD_DECIMALS: "decimals out of range",
}


@njit(cache=True, nogil=True)
def parse_fixed_u8(buf, start: int, end: int, decimals: int, signed: bool) -> tuple[int, int]:
    """Parse ``buf[start:end]`` (``bytes`` or a uint8 array) as a fixed-point number with ``decimals`` decimals.

    Returns
    -------
    (status, value)
        ``status`` is ``DEC_OK`` (0) or a negative ``DEC_*`` code; ``value`` is 0 unless the status is OK.
    """
    if decimals < 0 or decimals > MAX_DECIMALS:
        return DEC_BAD_DECIMALS, 0
    if start >= end:
        return DEC_EMPTY, 0
    i = start
    negative = False
    c = buf[i]
    if c == 45 or c == 43:  # '-' '+'
        if not signed:
            return DEC_SIGN, 0
        negative = c == 45
        i += 1
        if i >= end:
            return DEC_SYNTAX, 0
    value = 0
    n_int = 0
    while i < end:
        c = buf[i]
        if c < 48 or c > 57:
            break
        d = c - 48
        if value > _OVERFLOW_GUARD or (value == _OVERFLOW_GUARD and d > 7):
            return DEC_OVERFLOW, 0
        value = value * 10 + d
        n_int += 1
        i += 1
    if n_int == 0:
        return DEC_SYNTAX, 0
    n_frac = 0
    if i < end:
        if buf[i] != 46:  # '.'
            return DEC_SYNTAX, 0
        i += 1
        if i >= end:
            return DEC_SYNTAX, 0
        while i < end:
            c = buf[i]
            if c < 48 or c > 57:
                return DEC_SYNTAX, 0
            d = c - 48
            if n_frac < decimals:
                if value > _OVERFLOW_GUARD or (value == _OVERFLOW_GUARD and d > 7):
                    return DEC_OVERFLOW, 0
                value = value * 10 + d
            elif d != 0:
                # keep scanning so that a syntax error later in the string wins over precision
                n_frac += 1
                i += 1
                while i < end:
                    c = buf[i]
                    if c < 48 or c > 57:
                        return DEC_SYNTAX, 0
                    i += 1
                return DEC_PRECISION, 0
            n_frac += 1
            i += 1
    while n_frac < decimals:
        if value > _OVERFLOW_GUARD:
            return DEC_OVERFLOW, 0
        value *= 10
        n_frac += 1
    if negative:
        value = -value
    return DEC_OK, value


def parse_fixed(s: bytes | str, decimals: int, signed: bool = False) -> int:
    """Return ``s * 10**decimals`` as an exact ``int``; raise ``ValueError`` when ``s`` is not such a number.

    Use it off the hot path (configuration, REST answers, tests); jitted code calls ``parse_fixed_u8``.

    Parameters
    ----------
    s
        The decimal string, ``str`` or ASCII ``bytes``.
    decimals
        Fixed-point scale, 0..18.
    signed
        Allow a leading ``-`` or ``+``; prices and quantities from the venue are never signed.
    """
    if isinstance(s, str):
        if not s.isascii():
            raise ValueError(f"not a plain decimal number: {s!r}")
        data = s.encode("ascii")
    elif isinstance(s, (bytes, bytearray, memoryview)):
        data = bytes(s)
    else:
        raise TypeError(f"expected str or bytes, got {type(s).__name__}")
    if not isinstance(decimals, int) or isinstance(decimals, bool):
        raise TypeError("decimals must be an int")
    status, value = parse_fixed_u8(data, 0, len(data), decimals, bool(signed))
    if status != DEC_OK:
        raise ValueError(f"{_MESSAGES.get(status, 'bad number')}: {s!r} (decimals={decimals}, signed={signed})")
    return int(value)


def format_fixed(value: int, decimals: int) -> str:
    """Render a fixed-point ``int`` back to its shortest exact decimal string (for logs and tests)."""
    if decimals < 0 or decimals > MAX_DECIMALS:
        raise ValueError("decimals out of range")
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(int(value)), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"
