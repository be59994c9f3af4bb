"""A jitted scanner for whole combined-stream frames: one call from Python per frame, no msgspec, no objects.

``frame_kernel`` validates the frame's bytes as JSON (a strict subset) and, when the frame has exactly the shape
Binance sends, hands the spans of its fields to the same cores the msgspec path uses
(``hft.feed.sync.depth_core``, ``bbo_emit``, ``trade_emit``). Anything else makes it decline with
``FAST_DECLINED`` without touching any state, and the caller falls back to the msgspec path, which stays the
reference for every unusual frame (and counts it). The contract, checked by a differential test: whenever this
kernel accepts a frame, the events, books, snapshots and counters are exactly those of the msgspec path.

Accepted shape: ``{"stream":"<symbol>@<channel>","data":{...}}`` in that key order, JSON whitespace allowed,
strings without escapes and pure ASCII, every ``data`` key at most once; ``data`` must carry the fields of its
channel with the types the msgspec Structs require (``E``/``U``/``u``/``t`` non-negative integers in range,
``m`` a boolean, ``e`` and ``s`` strings). Unknown keys may hold any (validated) JSON value.
"""

from __future__ import annotations

from numba import njit

from hft.feed.sync import (
    C_CONFIGURED,
    C_NAME,
    C_NAME_LEN,
    C_PRICE_DECIMALS,
    C_SIZE_DECIMALS,
    H_MAX_FRAME,
    STAT_FAST_FRAMES,
    STAT_FRAMES,
    STAT_HUGE_FRAME,
    arena_views,
    bbo_emit,
    combine_wire_status,
    depth_core,
    trade_emit,
    venue_clock,
)
from hft.feed.wire import WIRE_MALFORMED, scan_quoted_number, skip_ws

__all__ = ["FAST_DECLINED", "MAX_NESTING", "frame_kernel", "skip_json_value"]

FAST_DECLINED = -1
MAX_NESTING = 62  # containers deeper than this are declined (the nesting stack is one int64 bitmask)

INT64_MAX = 9223372036854775807
MS_TO_NS = 1_000_000
MAX_EVENT_MS = INT64_MAX // MS_TO_NS
_UINT_GUARD = INT64_MAX // 10  # 922337203685477580; INT64_MAX ends in 7

_QUOTE = 34
_COLON = 58
_COMMA = 44
_LBRACE = 123
_RBRACE = 125
_LBRACKET = 91
_RBRACKET = 93

_KIND_DEPTH = 1
_KIND_BBO = 2
_KIND_TRADE = 3

# data keys the cores need: bit positions in the "seen" mask
_K_E_TYPE = 0  # "e"
_K_E_TIME = 1  # "E"
_K_S = 2
_K_FIRST = 3  # "U"
_K_LAST = 4  # "u"
_K_T = 5  # "t"
_K_B = 6  # "b"
_K_A = 7  # "a"
_K_BQ = 8  # "B"
_K_AQ = 9  # "A"
_K_P = 10
_K_Q = 11
_K_M = 12


@njit(cache=True, nogil=True)
def _skip_string(buf, i: int, end: int) -> int:
    """``buf[i]`` is a quote: return the index after the closing quote, -1 for escapes, control or non-ASCII."""
    j = i + 1
    while j < end:
        c = buf[j]
        if c == _QUOTE:
            return j + 1
        if c == 92 or c < 32 or c >= 128:
            return -1
        j += 1
    return -1


@njit(cache=True, nogil=True)
def _skip_digits(buf, j: int, end: int) -> int:
    while j < end and 48 <= buf[j] <= 57:
        j += 1
    return j


@njit(cache=True, nogil=True)
def _skip_number(buf, i: int, end: int) -> int:
    """Validate a JSON number at ``i``; return the index after it or -1."""
    j = i
    if buf[j] == 45:  # '-'
        j += 1
    if j >= end:
        return -1
    c = buf[j]
    if c == 48:
        j += 1
    elif 49 <= c <= 57:
        j = _skip_digits(buf, j + 1, end)
    else:
        return -1
    if j < end and buf[j] == 46:  # '.'
        k = _skip_digits(buf, j + 1, end)
        if k == j + 1:
            return -1
        j = k
    if j < end and (buf[j] == 101 or buf[j] == 69):  # 'e' 'E'
        j += 1
        if j < end and (buf[j] == 43 or buf[j] == 45):
            j += 1
        k = _skip_digits(buf, j, end)
        if k == j:
            return -1
        j = k
    return j


@njit(cache=True, nogil=True)
def _match(buf, i: int, end: int, a: int, b: int, c: int, d: int, e: int, n: int) -> bool:
    """True when ``buf[i:i+n]`` equals the first ``n`` (<= 5) of the bytes a..e."""
    if i + n > end:
        return False
    if buf[i] != a:
        return False
    if n > 1 and buf[i + 1] != b:
        return False
    if n > 2 and buf[i + 2] != c:
        return False
    if n > 3 and buf[i + 3] != d:
        return False
    return not (n > 4 and buf[i + 4] != e)


@njit(cache=True, nogil=True)
def _skip_literal(buf, i: int, end: int) -> int:
    if _match(buf, i, end, 116, 114, 117, 101, 0, 4):  # true
        return i + 4
    if _match(buf, i, end, 102, 97, 108, 115, 101, 5):  # false
        return i + 5
    if _match(buf, i, end, 110, 117, 108, 108, 0, 4):  # null
        return i + 4
    return -1


@njit(cache=True, nogil=True)
def _skip_key(buf, i: int, end: int) -> int:
    """A member name and its colon at ``i`` (whitespace allowed): return the index after the colon or -1."""
    i = skip_ws(buf, i, end)
    if i >= end or buf[i] != _QUOTE:
        return -1
    i = _skip_string(buf, i, end)
    if i < 0:
        return -1
    i = skip_ws(buf, i, end)
    if i >= end or buf[i] != _COLON:
        return -1
    return i + 1


@njit(cache=True, nogil=True)
def skip_json_value(buf, i: int, end: int) -> int:
    """Validate the JSON value starting at or after ``i``; return the index just after it, or -1.

    Iterative (a bitmask is the container stack: 1 = object), no allocation; strings must be plain ASCII.
    """
    stack = 0
    depth = 0
    while True:
        i = skip_ws(buf, i, end)
        if i >= end:
            return -1
        c = buf[i]
        if c in (_LBRACE, _LBRACKET):
            if depth >= MAX_NESTING:
                return -1
            is_object = c == _LBRACE
            j = skip_ws(buf, i + 1, end)
            if j >= end:
                return -1
            if buf[j] == (_RBRACE if is_object else _RBRACKET):
                i = j + 1  # an empty container is a complete value
            else:
                depth += 1
                stack = (stack << 1) | (1 if is_object else 0)
                if is_object:
                    i = _skip_key(buf, j, end)
                    if i < 0:
                        return -1
                else:
                    i = j
                continue  # a value follows
        elif c == _QUOTE:
            i = _skip_string(buf, i, end)
        elif c == 45 or 48 <= c <= 57:
            i = _skip_number(buf, i, end)
        else:
            i = _skip_literal(buf, i, end)
        if i < 0:
            return -1
        # a value ended: close containers until a comma asks for the next value
        while True:
            if depth == 0:
                return i
            i = skip_ws(buf, i, end)
            if i >= end:
                return -1
            c = buf[i]
            in_object = (stack & 1) == 1
            if c == _COMMA:
                if in_object:
                    i = _skip_key(buf, i + 1, end)
                    if i < 0:
                        return -1
                else:
                    i += 1
                break
            if c == (_RBRACE if in_object else _RBRACKET):
                i += 1
                depth -= 1
                stack >>= 1
                continue
            return -1


@njit(cache=True, nogil=True)
def _parse_uint(buf, i: int, end: int) -> tuple[int, int]:
    """A non-negative JSON integer that fits int64 at ``i``: ``(value, next)``, or ``(-1, -1)``."""
    j = i
    if j >= end or buf[j] < 48 or buf[j] > 57:
        return -1, -1
    if buf[j] == 48 and j + 1 < end and 48 <= buf[j + 1] <= 57:
        return -1, -1  # leading zero: not JSON
    value = 0
    while j < end and 48 <= buf[j] <= 57:
        d = buf[j] - 48
        if value > _UINT_GUARD or (value == _UINT_GUARD and d > 7):  # value * 10 + d > INT64_MAX
            return -1, -1
        value = value * 10 + d
        j += 1
    if j < end and (buf[j] == 46 or buf[j] == 101 or buf[j] == 69):
        return -1, -1  # a float is not an int field
    return value, j


@njit(cache=True, nogil=True)
def _route(ctl, buf, s0: int, s1: int) -> tuple[int, int]:
    """Match the stream name ``buf[s0:s1]`` against the configured symbols: ``(sid, kind)`` or ``(-1, 0)``."""
    at = -1
    for k in range(s0, s1):
        if buf[k] == 64:  # '@'
            at = k
            break
    if at <= s0:
        return -1, 0
    n = at - s0
    c0 = at + 1
    m = s1 - c0
    kind = 0
    if (m == 5 and _match(buf, c0, s1, 100, 101, 112, 116, 104, 5)) or (
        m == 11
        and _match(buf, c0, s1, 100, 101, 112, 116, 104, 5)
        and _match(buf, c0 + 5, s1, 64, 49, 48, 48, 109, 5)  # @100m
        and buf[c0 + 10] == 115  # s
    ):  # depth
        kind = _KIND_DEPTH
    elif (
        m == 10
        and _match(buf, c0, s1, 98, 111, 111, 107, 84, 5)  # bookT
        and _match(buf, c0 + 5, s1, 105, 99, 107, 101, 114, 5)  # icker
    ):
        kind = _KIND_BBO
    elif m == 5 and _match(buf, c0, s1, 116, 114, 97, 100, 101, 5):  # trade
        kind = _KIND_TRADE
    if kind == 0:
        return -1, 0
    for sid in range(ctl.shape[0] - 1):
        if ctl[sid, C_CONFIGURED] == 0 or ctl[sid, C_NAME_LEN] != n:
            continue
        same = True
        for k in range(n):
            if buf[s0 + k] != ctl[sid, C_NAME + k]:
                same = False
                break
        if same:
            return sid, kind
    return -1, 0


@njit(cache=True, nogil=True)
def _is_symbol(ctl, sid: int, buf, s0: int, s1: int) -> bool:
    """``buf[s0:s1]`` is the symbol's venue name in upper case (``"BTCUSDT"``)."""
    n = ctl[sid, C_NAME_LEN]
    if s1 - s0 != n:
        return False
    for k in range(n):
        c = ctl[sid, C_NAME + k]
        upper = c - 32 if 97 <= c <= 122 else c
        if buf[s0 + k] != upper:
            return False
    return True


@njit(cache=True, nogil=True)
def _quoted_span(buf, start: int, end: int, decimals: int) -> tuple[int, int]:
    """Parse a span that must hold exactly one quoted decimal: ``(status, value)``."""
    st, value, nxt = scan_quoted_number(buf, start, end, decimals)
    if st == 0 and skip_ws(buf, nxt, end) != end:
        return WIRE_MALFORMED, 0
    return st, value


@njit(cache=True, nogil=True)
def frame_kernel(arena, buf, ts_recv: int, ts_local: int) -> int:
    """Decode and apply one combined-stream frame entirely in jitted code.

    Returns the number of events written (as ``FeedEngine.on_frame``), or ``FAST_DECLINED`` when the frame is
    not of the accepted shape; nothing is changed then. A frame longer than the arena's ``H_MAX_FRAME`` is not
    read at all: it is counted (``STAT_HUGE_FRAME``) and 0 is returned, as the msgspec path does. ``ts_local``
    is the receive clock the venue clock of bookTickers runs on (``hft.feed.sync.venue_clock``).
    """
    ctl, book, bufd, bufl, events, snapshots = arena_views(arena)
    end = len(buf)
    if end > arena[H_MAX_FRAME]:
        stats = ctl[ctl.shape[0] - 1]
        stats[STAT_FRAMES] += 1
        stats[STAT_HUGE_FRAME] += 1
        return 0
    # {"stream":"...","data":{
    i = skip_ws(buf, 0, end)
    if i >= end or buf[i] != _LBRACE:
        return FAST_DECLINED
    i = skip_ws(buf, i + 1, end)
    if not (_match(buf, i, end, _QUOTE, 115, 116, 114, 101, 5) and _match(buf, i + 5, end, 97, 109, _QUOTE, 0, 0, 3)):
        return FAST_DECLINED  # "stream"
    i = skip_ws(buf, i + 8, end)
    if i >= end or buf[i] != _COLON:
        return FAST_DECLINED
    i = skip_ws(buf, i + 1, end)
    if i >= end or buf[i] != _QUOTE:
        return FAST_DECLINED
    s0 = i + 1
    i = _skip_string(buf, i, end)
    if i < 0:
        return FAST_DECLINED
    s1 = i - 1
    i = skip_ws(buf, i, end)
    if i >= end or buf[i] != _COMMA:
        return FAST_DECLINED
    i = skip_ws(buf, i + 1, end)
    if not _match(buf, i, end, _QUOTE, 100, 97, 116, 97, 5) or not _match(buf, i + 5, end, _QUOTE, 0, 0, 0, 0, 1):
        return FAST_DECLINED  # "data"
    i = skip_ws(buf, i + 6, end)
    if i >= end or buf[i] != _COLON:
        return FAST_DECLINED
    i = skip_ws(buf, i + 1, end)
    if i >= end or buf[i] != _LBRACE:
        return FAST_DECLINED
    i += 1

    sid, kind = _route(ctl, buf, s0, s1)
    if sid < 0:
        return FAST_DECLINED

    seen = 0
    e0 = e1 = sy0 = sy1 = 0
    b0 = b1 = a0 = a1 = bq0 = bq1 = aq0 = aq1 = p0 = p1 = q0 = q1 = 0
    event_ms = first_u = last_u = trade_id = -1
    buyer_maker = False
    j = skip_ws(buf, i, end)
    if j < end and buf[j] == _RBRACE:
        return FAST_DECLINED  # empty data: let the reference path count it
    while True:
        i = skip_ws(buf, i, end)
        if i >= end or buf[i] != _QUOTE:
            return FAST_DECLINED
        k0 = i + 1
        i = _skip_string(buf, i, end)
        if i < 0:
            return FAST_DECLINED
        key = buf[k0] if i - k0 == 2 else 0  # single-letter keys only
        i = skip_ws(buf, i, end)
        if i >= end or buf[i] != _COLON:
            return FAST_DECLINED
        i = skip_ws(buf, i + 1, end)
        if i >= end:
            return FAST_DECLINED
        bit = -1
        v0 = i
        if key == 101 or key == 115:  # e, s: strings
            bit = _K_E_TYPE if key == 101 else _K_S
            if buf[i] != _QUOTE:
                return FAST_DECLINED
            i = _skip_string(buf, i, end)
            if i < 0:
                return FAST_DECLINED
            if key == 101:
                e0 = v0 + 1
                e1 = i - 1
            else:
                sy0 = v0 + 1
                sy1 = i - 1
        elif key == 69 or key == 85 or key == 117 or key == 116:  # E U u t: integers
            value, i = _parse_uint(buf, i, end)
            if i < 0:
                return FAST_DECLINED
            if key == 69:
                bit = _K_E_TIME
                if value > MAX_EVENT_MS:
                    return FAST_DECLINED
                event_ms = value
            elif key == 85:
                bit = _K_FIRST
                first_u = value
            elif key == 117:
                bit = _K_LAST
                last_u = value
            else:
                bit = _K_T
                trade_id = value
        elif key == 109:  # m: boolean
            bit = _K_M
            if _match(buf, i, end, 116, 114, 117, 101, 0, 4):
                buyer_maker = True
                i += 4
            elif _match(buf, i, end, 102, 97, 108, 115, 101, 5):
                buyer_maker = False
                i += 5
            else:
                return FAST_DECLINED
        else:
            i = skip_json_value(buf, i, end)
            if i < 0:
                return FAST_DECLINED
            if key == 98:
                bit = _K_B
                b0 = v0
                b1 = i
            elif key == 97:
                bit = _K_A
                a0 = v0
                a1 = i
            elif key == 66:
                bit = _K_BQ
                bq0 = v0
                bq1 = i
            elif key == 65:
                bit = _K_AQ
                aq0 = v0
                aq1 = i
            elif key == 112:
                bit = _K_P
                p0 = v0
                p1 = i
            elif key == 113:
                bit = _K_Q
                q0 = v0
                q1 = i
        if bit >= 0:
            if seen & (1 << bit):
                return FAST_DECLINED  # duplicate key
            seen |= 1 << bit
        i = skip_ws(buf, i, end)
        if i >= end:
            return FAST_DECLINED
        if buf[i] == _COMMA:
            i += 1
            continue
        if buf[i] == _RBRACE:
            i += 1
            break
        return FAST_DECLINED
    i = skip_ws(buf, i, end)
    if i >= end or buf[i] != _RBRACE:
        return FAST_DECLINED
    if skip_ws(buf, i + 1, end) != end:
        return FAST_DECLINED
    if not (seen & (1 << _K_S)) or not _is_symbol(ctl, sid, buf, sy0, sy1):
        return FAST_DECLINED

    stats = ctl[ctl.shape[0] - 1]
    if kind == _KIND_DEPTH:
        need = (1 << _K_E_TYPE) | (1 << _K_E_TIME) | (1 << _K_FIRST) | (1 << _K_LAST) | (1 << _K_B) | (1 << _K_A)
        if (seen & need) != need or e1 - e0 != 11:
            return FAST_DECLINED
        if not (
            _match(buf, e0, e1, 100, 101, 112, 116, 104, 5)  # depth
            and _match(buf, e0 + 5, e1, 85, 112, 100, 97, 116, 5)  # Updat
            and buf[e0 + 10] == 101  # e
        ):
            return FAST_DECLINED
        stats[STAT_FAST_FRAMES] += 1
        return depth_core(
            ctl, book, bufd, bufl, events, snapshots, buf, b0, b1, a0, a1, sid, first_u, last_u, event_ms, ts_recv,
            ts_local,
        )
    pdec = ctl[sid, C_PRICE_DECIMALS]
    sdec = ctl[sid, C_SIZE_DECIMALS]
    if kind == _KIND_BBO:
        need = (1 << _K_LAST) | (1 << _K_B) | (1 << _K_BQ) | (1 << _K_A) | (1 << _K_AQ)
        if (seen & need) != need:
            return FAST_DECLINED
        s1_, bid = _quoted_span(buf, b0, b1, pdec)
        s2_, bid_sz = _quoted_span(buf, bq0, bq1, sdec)
        s3_, ask = _quoted_span(buf, a0, a1, pdec)
        s4_, ask_sz = _quoted_span(buf, aq0, aq1, sdec)
        stats[STAT_FAST_FRAMES] += 1
        status = combine_wire_status(s1_, s2_, s3_, s4_)
        n = bbo_emit(ctl, events, sid, last_u, ts_recv, status, bid, bid_sz, ask, ask_sz)
        venue_clock(ctl, sid, events, n, ts_local)
        return n
    need = (1 << _K_E_TYPE) | (1 << _K_E_TIME) | (1 << _K_T) | (1 << _K_P) | (1 << _K_Q) | (1 << _K_M)
    if (seen & need) != need or not (e1 - e0 == 5 and _match(buf, e0, e1, 116, 114, 97, 100, 101, 5)):
        return FAST_DECLINED
    s1_, price = _quoted_span(buf, p0, p1, pdec)
    s2_, size = _quoted_span(buf, q0, q1, sdec)
    stats[STAT_FAST_FRAMES] += 1
    status = combine_wire_status(s1_, s2_, 0, 0)
    n = trade_emit(ctl, events, sid, trade_id, event_ms, buyer_maker, ts_recv, ts_local, status, price, size)
    venue_clock(ctl, sid, events, n, ts_local)
    return n
