"""Exact decimal parsing: the Python wrapper and the jitted kernel against ``decimal.Decimal``."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hft.feed.decimal import (
    DEC_BAD_DECIMALS,
    DEC_EMPTY,
    DEC_OK,
    DEC_OVERFLOW,
    DEC_PRECISION,
    DEC_SIGN,
    DEC_SYNTAX,
    INT64_MAX,
    format_fixed,
    parse_fixed,
    parse_fixed_u8,
)

GRAMMAR = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def reference(s: str, decimals: int, signed: bool) -> int | None:
    """What the parser must return, computed with Decimal at a precision that never rounds; None: reject."""
    if not GRAMMAR.fullmatch(s):
        return None
    if s[0] in "+-" and not signed:
        return None
    with localcontext() as ctx:
        ctx.prec = 200
        scaled = Decimal(s) * (Decimal(10) ** decimals)
        if scaled != scaled.to_integral_value():
            return None
        value = int(scaled)
    if abs(value) > INT64_MAX:
        return None
    return value


digits = st.text(alphabet="0123456789", min_size=1, max_size=22)
plain_numbers = st.builds(
    lambda sign, whole, frac, zeros: sign + whole + (("." + frac + "0" * zeros) if frac is not None else ""),
    st.sampled_from(["", "", "-", "+"]),
    digits,
    st.none() | digits,
    st.integers(0, 12),
)
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=24)
decimals_st = st.integers(0, 18)


@settings(max_examples=400, deadline=None, database=None)
@given(s=plain_numbers | any_text, decimals=decimals_st, signed=st.booleans())
@example(s="60000.01000000", decimals=2, signed=False)
@example(s="9223372036854775807", decimals=0, signed=False)
@example(s="9223372036854775808", decimals=0, signed=False)
@example(s="-9223372036854775807", decimals=0, signed=True)
@example(s="922337203685477580.7", decimals=1, signed=False)
@example(s="922337203685477580.8", decimals=1, signed=False)
@example(s="0.000000000000000001", decimals=18, signed=False)
@example(s="NaN", decimals=2, signed=True)
@example(s="1e5", decimals=2, signed=False)
@example(s="١٢", decimals=0, signed=False)  # Arabic-Indic digits: int() would accept them
@example(s="1_000", decimals=0, signed=False)  # int() would accept this too
@example(s=" 1", decimals=0, signed=False)
def test_any_string_then_same_verdict_and_value_as_decimal(s: str, decimals: int, signed: bool) -> None:
    expected = reference(s, decimals, signed)
    if expected is None:
        with pytest.raises(ValueError):
            parse_fixed(s, decimals, signed=signed)
    else:
        assert parse_fixed(s, decimals, signed=signed) == expected
        assert parse_fixed(s.encode(), decimals, signed=signed) == expected


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.integers(-INT64_MAX, INT64_MAX), decimals=decimals_st, zeros=st.integers(0, 10))
def test_formatted_fixed_value_then_parses_back_exactly(value: int, decimals: int, zeros: int) -> None:
    text = format_fixed(value, decimals)
    if zeros and "." in text:
        text += "0" * zeros
    assert parse_fixed(text, decimals, signed=True) == value
    assert Decimal(text) == Decimal(value).scaleb(-decimals)


@settings(max_examples=200, deadline=None, database=None)
@given(
    s=plain_numbers,
    prefix=st.binary(max_size=8),
    suffix=st.binary(max_size=8),
    decimals=decimals_st,
)
def test_number_inside_a_larger_buffer_then_kernel_reads_only_its_slice(
    s: str, prefix: bytes, suffix: bytes, decimals: int
) -> None:
    buf = np.frombuffer(prefix + s.encode() + suffix, dtype=np.uint8)
    status, value = parse_fixed_u8(buf, len(prefix), len(prefix) + len(s), decimals, True)
    expected = reference(s, decimals, True)
    if expected is None:
        assert status < 0 and value == 0
    else:
        assert (status, value) == (DEC_OK, expected)


@pytest.mark.parametrize(
    ("text", "decimals", "signed", "status"),
    [
        ("", 2, False, DEC_EMPTY),
        ("NaN", 2, False, DEC_SYNTAX),
        ("nan", 2, True, DEC_SYNTAX),
        ("inf", 2, False, DEC_SYNTAX),
        ("-Infinity", 2, True, DEC_SYNTAX),
        ("1e3", 2, False, DEC_SYNTAX),
        ("1.", 2, False, DEC_SYNTAX),
        (".5", 2, False, DEC_SYNTAX),
        ("-", 2, True, DEC_SYNTAX),
        ("1.2.3", 2, False, DEC_SYNTAX),
        ("12 ", 2, False, DEC_SYNTAX),
        ("0x10", 2, False, DEC_SYNTAX),
        ("-1.00", 2, False, DEC_SIGN),
        ("+1.00", 2, False, DEC_SIGN),
        ("1.001", 2, False, DEC_PRECISION),
        ("0.00000001", 7, False, DEC_PRECISION),
        ("9223372036854775808", 0, False, DEC_OVERFLOW),
        ("92233720368547758.08", 2, False, DEC_OVERFLOW),
        ("100000000000", 8, False, DEC_OVERFLOW),
        ("1", -1, False, DEC_BAD_DECIMALS),
        ("1", 19, False, DEC_BAD_DECIMALS),
    ],
)
def test_invalid_number_then_kernel_status_and_wrapper_value_error(
    text: str, decimals: int, signed: bool, status: int
) -> None:
    buf = text.encode()
    assert parse_fixed_u8(buf, 0, len(buf), decimals, signed) == (status, 0)
    array = np.frombuffer(buf, dtype=np.uint8)  # the uint8-array form of the kernel
    assert parse_fixed_u8(array, 0, array.shape[0], decimals, signed) == (status, 0)
    with pytest.raises(ValueError):
        parse_fixed(text, decimals, signed=signed)


@pytest.mark.parametrize(
    ("text", "decimals", "value"),
    [
        ("60000.01000000", 2, 6000001),
        ("61837.63000000", 2, 6183763),
        ("0.00000000", 5, 0),
        ("3.78826000", 5, 378826),
        ("25.42618900", 8, 2542618900),
        ("200000.00000000", 2, 20000000),
        ("007", 0, 7),
        ("92233720368547758.07", 2, INT64_MAX),
    ],
)
def test_venue_style_strings_then_exact_fixed_point(text: str, decimals: int, value: int) -> None:
    assert parse_fixed(text, decimals) == value


def test_signed_values_then_negative_only_when_allowed() -> None:
    assert parse_fixed("-1.5", 1, signed=True) == -15
    assert parse_fixed("+1.5", 1, signed=True) == 15
    assert parse_fixed("-0", 3, signed=True) == 0


def test_wrong_argument_types_then_type_error() -> None:
    with pytest.raises(TypeError):
        parse_fixed(1.5, 2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse_fixed("1.5", 2.0)  # type: ignore[arg-type]
