"""Jitted scanners for the two JSON shapes that carry numbers on the Binance wire.

msgspec checks a frame's structure and hands the numeric parts over untouched as ``msgspec.Raw`` byte spans;
these kernels turn those spans into fixed-point integers without creating a Python object per number:

* a level array ``[["61837.63000000","3.78826000"], ...]`` (``b``/``a`` of a depthUpdate, ``bids``/``asks`` of
  the REST snapshot), written straight into ``MD_EVENT`` records;
* a run of quoted numbers ``"61837.63000000""3.78826000"...`` (the bookTicker and trade fields, concatenated by
  the caller).

Both accept any JSON whitespace between tokens and nothing else: strings must be plain (a backslash escape is
rejected as malformed rather than decoded), each level has exactly two elements. Prices must be ``> 0`` and sizes
``>= 0``, otherwise the status is ``WIRE_BAD_LEVEL``; a price that is not a multiple of the symbol's tick or a
size that is not a multiple of its lot (0 is a multiple of every lot: removals are on the grid) is
``WIRE_OFF_GRID``. Kernels allocate nothing and return status codes.
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
    "WIRE_OFF_GRID",
    "WIRE_OK",
    "off_grid",
    "quoted_decimal_fast",
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
WIRE_OFF_GRID = -5  # a price off the tick grid or a size off the lot grid

_QUOTE = 34
_BACKSLASH = 92
_COMMA = 44
_LBRACKET = 91
_RBRACKET = 93


@njit(cache=True, nogil=True, inline="always")
def off_grid(price: int, size: int, tick: int, lot: int) -> bool:
    """True when ``price`` is not a multiple of ``tick`` or ``size`` not a multiple of ``lot``.

    A step of 1 (or less: an unconfigured row) is no grid and costs a compare, no division (an int64 division
    is tens of cycles).
    """
    return (tick > 1 and price % tick != 0) or (lot > 1 and size % lot != 0)


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


_FAST_DIGITS = 18  # 10**18 - 1 < 2**63: a value of at most this many digits cannot overflow int64


@njit(cache=True, nogil=True)
def quoted_decimal_fast(buf, i: int, end: int, decimals: int) -> tuple[bool, int, int]:
    """One pass over the usual venue number ``"<digits>[.<digits>]"`` at ``buf[i] == '"'``.

    Returns ``(True, value, next_index)`` exactly as ``scan_quoted`` followed by ``parse_fixed_u8`` would, or
    ``(False, 0, i)`` to say "not the simple case, use the general path": a sign, any other byte, a missing
    digit, a non-zero digit beyond ``decimals``, more than ``_FAST_DIGITS`` digits in the scaled value, a missing
    closing quote. Declining is always safe; accepting is only for strings the general path accepts with the
    same value (checked by a property test). Why: the general path walks each number twice (find the closing
    quote, then parse), which was a third of the time spent on a depth diff's numbers.
    """
    if decimals < 0 or decimals > _FAST_DIGITS:
        return False, 0, i
    j = i + 1
    value = 0
    n_int = 0
    while j < end:
        c = buf[j]
        if c < 48 or c > 57:
            break
        if n_int + decimals >= _FAST_DIGITS:
            return False, 0, i  # could overflow: the general path checks every digit
        value = value * 10 + (c - 48)
        n_int += 1
        j += 1
    if n_int == 0:
        return False, 0, i
    used = 0
    if j < end and buf[j] == 46:  # '.'
        j += 1
        n_frac = 0
        while j < end:
            c = buf[j]
            if c < 48 or c > 57:
                break
            if used < decimals:
                value = value * 10 + (c - 48)
                used += 1
            elif c != 48:
                return False, 0, i  # a significant digit beyond decimals: the general path names it
            n_frac += 1
            j += 1
        if n_frac == 0:
            return False, 0, i
    if j >= end or buf[j] != _QUOTE:
        return False, 0, i
    while used < decimals:
        value *= 10
        used += 1
    return True, value, j + 1


@njit(cache=True, nogil=True)
def scan_quoted_number(buf, i: int, end: int, decimals: int) -> tuple[int, int, int]:
    """Parse one quoted decimal (whitespace before it allowed).

    A sign is accepted here so that the caller can tell a negative size (a bad level, counted as such) from a
    string that is not a number at all. The common shape is parsed in one pass (``quoted_decimal_fast``);
    everything else by ``scan_quoted`` and the exact parser.

    Returns
    -------
    (status, value, next_index)
    """
    i = skip_ws(buf, i, end)
    if i < end and buf[i] == _QUOTE:
        ok, value, nxt = quoted_decimal_fast(buf, i, end, decimals)
        if ok:
            return WIRE_OK, value, nxt
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
    tick: int,
    lot: int,
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

    ``tick`` and ``lot`` (>= 1, in price and size units) are the symbol's grid; pass 1 and 1 for none.

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
        if off_grid(price, size, tick, lot):
            return WIRE_OFF_GRID, n
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
