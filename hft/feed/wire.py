"""Jitted scanners for the two JSON shapes that carry numbers on the Binance wire.

msgspec checks a frame's structure and hands the numeric parts over untouched as ``msgspec.Raw`` byte spans;
these kernels turn those spans into fixed-point integers without creating a Python object per number:

* a level array ``[["61837.63000000","3.78826000"], ...]`` (``b``/``a`` of a depthUpdate, ``bids``/``asks`` of
  the REST snapshot), written straight into ``MD_EVENT`` records;
* a run of quoted numbers ``"61837.63000000""3.78826000"...`` (the bookTicker and trade fields, concatenated by
  the caller).

Both accept any JSON whitespace between tokens and nothing else: strings must be plain (a backslash escape is
rejected as malformed rather than decoded), each level has exactly two elements. Prices must be ``> 0`` and sizes
``>= 0``, otherwise the status is ``WIRE_BAD_LEVEL``. Kernels allocate nothing and return status codes.
"""

from __future__ import annotations

from numba import njit

from hft.feed.decimal import DEC_OK, parse_fixed_u8
from shm_layout.records import EV_BOOK_LEVEL

__all__ = [
    "WIRE_BAD_LEVEL",
    "WIRE_BAD_NUMBER",
    "WIRE_FULL",
    "WIRE_MALFORMED",
    "WIRE_OK",
    "scan_levels",
    "scan_quoted",
    "scan_quoted_number",
    "skip_ws",
]

WIRE_OK = 0
WIRE_MALFORMED = -1  # the bytes are not the expected JSON shape
WIRE_BAD_NUMBER = -2  # a string that is not an exact decimal at the symbol's precision
WIRE_BAD_LEVEL = -3  # a price <= 0 or a negative size
WIRE_FULL = -4  # the output records are full

_QUOTE = 34
_BACKSLASH = 92
_COMMA = 44
_LBRACKET = 91
_RBRACKET = 93


@njit(cache=True, nogil=True)
def skip_ws(buf, i: int, end: int) -> int:
    """Return the index of the first non-whitespace byte at or after ``i`` (``end`` if none)."""
    while i < end:
        c = buf[i]
        if c != 32 and c != 10 and c != 13 and c != 9:
            return i
        i += 1
    return end


@njit(cache=True, nogil=True)
def scan_quoted(buf, i: int, end: int) -> tuple[int, int, int]:
    """Find the plain JSON string starting at ``buf[i] == '"'``.

    Returns
    -------
    (status, content_end, next_index)
        The content is ``buf[i + 1:content_end]``; ``next_index`` is just past the closing quote.
    """
    if i >= end or buf[i] != _QUOTE:
        return WIRE_MALFORMED, 0, i
    j = i + 1
    while j < end:
        c = buf[j]
        if c == _QUOTE:
            return WIRE_OK, j, j + 1
        if c == _BACKSLASH or c < 32:
            return WIRE_MALFORMED, 0, j
        j += 1
    return WIRE_MALFORMED, 0, j


@njit(cache=True, nogil=True)
def scan_quoted_number(buf, i: int, end: int, decimals: int) -> tuple[int, int, int]:
    """Parse one quoted decimal (whitespace before it allowed).

    A sign is accepted here so that the caller can tell a negative size (a bad level, counted as such) from a
    string that is not a number at all.

    Returns
    -------
    (status, value, next_index)
    """
    i = skip_ws(buf, i, end)
    st, content_end, nxt = scan_quoted(buf, i, end)
    if st != WIRE_OK:
        return st, 0, nxt
    dst, value = parse_fixed_u8(buf, i + 1, content_end, decimals, True)
    if dst != DEC_OK:
        return WIRE_BAD_NUMBER, 0, nxt
    return WIRE_OK, value, nxt


@njit(cache=True, nogil=True)
def scan_levels(
    buf,
    start: int,
    end: int,
    price_decimals: int,
    size_decimals: int,
    side: int,
    events,
    n: int,
    update_id: int,
    ts_exch: int,
    ts_recv: int,
    symbol_id: int,
    flags: int,
) -> tuple[int, int]:
    """Parse the level array in ``buf[start:end]`` into ``EV_BOOK_LEVEL`` records from ``events[n]`` on.

    The span must hold exactly one JSON array (surrounding whitespace allowed). Every field of each written
    record is set (``ts_init`` to 0). On error the records already written are garbage to the caller.

    Returns
    -------
    (status, n_after)
        ``WIRE_OK`` and the index after the last record written, or a negative ``WIRE_*`` status.
    """
    cap = events.shape[0]
    i = skip_ws(buf, start, end)
    if i >= end or buf[i] != _LBRACKET:
        return WIRE_MALFORMED, n
    i = skip_ws(buf, i + 1, end)
    if i < end and buf[i] == _RBRACKET:
        i = skip_ws(buf, i + 1, end)
        return (WIRE_OK if i == end else WIRE_MALFORMED), n
    while True:
        if i >= end or buf[i] != _LBRACKET:
            return WIRE_MALFORMED, n
        st, price, i = scan_quoted_number(buf, i + 1, end, price_decimals)
        if st != WIRE_OK:
            return st, n
        i = skip_ws(buf, i, end)
        if i >= end or buf[i] != _COMMA:
            return WIRE_MALFORMED, n
        st, size, i = scan_quoted_number(buf, i + 1, end, size_decimals)
        if st != WIRE_OK:
            return st, n
        i = skip_ws(buf, i, end)
        if i >= end or buf[i] != _RBRACKET:
            return WIRE_MALFORMED, n
        if price <= 0 or size < 0:
            return WIRE_BAD_LEVEL, n
        if n >= cap:
            return WIRE_FULL, n
        ev = events[n]
        ev.ts_exch = ts_exch
        ev.ts_recv = ts_recv
        ev.ts_init = 0
        ev.price = price
        ev.size = size
        ev.update_id = update_id
        ev.symbol_id = symbol_id
        ev.kind = EV_BOOK_LEVEL
        ev.side = side
        ev.flags = flags
        n += 1
        i = skip_ws(buf, i + 1, end)
        if i >= end:
            return WIRE_MALFORMED, n
        c = buf[i]
        if c == _RBRACKET:
            i = skip_ws(buf, i + 1, end)
            return (WIRE_OK if i == end else WIRE_MALFORMED), n
        if c != _COMMA:
            return WIRE_MALFORMED, n
        i = skip_ws(buf, i + 1, end)
