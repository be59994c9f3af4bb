"""Faults on demand: commands that change what the simulator *sends*, never what the model generates.

Each fault is a frozen ``msgspec`` struct tagged by ``kind`` so that the same type decodes from the HTTP control
endpoint (a JSON body or query parameters), from ``SimConfig.faults`` (a scheduled fault) and from the CLI's
``--fault`` option, and is validated the same way everywhere: unknown kinds, unknown fields and out-of-range values
are refused with a message that names them.

``client`` fields take the ids listed by ``GET /sim/stats`` (1, 2, ... in connection order); a fault without
``client`` affects every client (for ``malformed``, every client open when it is injected). Kinds (fields and
defaults are on each struct):

``drop_connection``
    Close every open WebSocket (or the one with id ``client``): ``mode="abort"`` closes the TCP connection without
    a close frame, ``"reset"`` also sends a TCP RST (``SO_LINGER`` 0), ``"close"`` sends a normal close frame
    1001 "going away". A client must reconnect, resubscribe and resync its books.
``skip_updates``
    Withhold the next ``frames`` ``depthUpdate`` frames of ``symbol`` (of each symbol when omitted) from every
    client, or only from ``client`` (which must subscribe to that depth stream): the next frame such a client sees
    has ``U > previous u + 1``.
``malformed``
    Give every client open now (or only ``client``) ``count`` malformed frames, each inserted just before one of
    its next normal frames (a corrupted copy of that frame), so that malformed and normal frames interleave and no
    normal frame is lost. The copies are taken from the client's depth streams (of ``symbol`` when given) or, when
    it has none, from any stream it subscribed to. ``variant`` is one of :data:`MALFORMED_VARIANTS`; ``"mixed"``
    cycles through all of them in that order.
``stale_snapshot``
    Answer the next ``requests`` ``GET /api/v3/depth`` requests (of ``symbol`` when given) with the book as it was
    at least ``age_ms`` ago (from a short history the server keeps), so ``lastUpdateId`` is older than what a
    freshly connected client has buffered and it must fetch again.
``stall``
    Stop writing to every client (or only to ``client``) for ``ms`` milliseconds; frames keep being generated and
    queued, and arrive as one burst afterwards (a client whose backlog exceeds ``max_pending`` is still dropped).
``slow_rest``
    Delay the next ``requests`` ``GET /api/v3/depth`` responses by ``ms``; the snapshot is taken when the request
    arrives and delivered late, like a response stuck in transit.
``rest_error``
    Answer the next ``requests`` ``GET /api/v3/depth`` requests with HTTP ``status`` (500 by default; 429 and 418
    are Binance's "too many requests" and "banned"), with ``Retry-After: retry_after_s`` when it is > 0.

Malformed variants (:func:`corrupt` applies them to a frame exactly as the client would have received it):

``truncated``     the first half of the frame: invalid JSON.
``number_price``  the first price (or first decimal field) as a JSON number instead of a string.
``nan_price``     the first price as the string ``"nan"`` (which ``float`` and ``Decimal`` both accept).
``nan_token``     the first price as the bare token ``NaN`` (not JSON; Python's ``json`` accepts it).
``negative_size`` the first size negative, e.g. ``"-0.01200000"``.
``unknown_symbol`` the frame relabelled to a symbol (and stream) the exchange does not list.
``huge``          the frame padded with an extra string field to ``huge_bytes`` (2 MiB by default): valid JSON,
                  larger than a careful client accepts (websockets' default ``max_size`` is 1 MiB).
``deep``          an extra field nesting 5,000 arrays (10 KB): valid JSON that a recursive decoder cannot parse.

Outlier variants (valid frames with values no venue sends; not part of ``"mixed"``), for the feed's sanity bounds:

``far_price``     the first price replaced by ``99999999999.99`` (in a depth diff: of the first level that is not a
                  removal, so the copy adds a level rather than failing to remove one).
``huge_size``     the first size replaced by ``60000.00000000``.
``future_time``   the event time ``E`` set to 2200-01-01.
``crossed``       a bookTicker's bid and ask prices swapped (needs ``channel = "bookTicker"``).

``channel`` chooses the streams the corrupted copies are taken from (``depth``, ``bookTicker``, ``trade``);
by default the client's depth streams. A copy of a depth diff carries the update ids of the diff it precedes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

__all__ = [
    "FAULT_KINDS",
    "MALFORMED_VARIANTS",
    "DropConnection",
    "Fault",
    "FaultError",
    "Malformed",
    "ScheduledFault",
    "SkipUpdates",
    "SlowRest",
    "StaleSnapshot",
    "Stall",
    "corrupt",
    "decode_fault",
    "fault_from_params",
    "fault_from_spec",
    "fault_to_dict",
]

MALFORMED_VARIANTS = (
    "truncated",
    "number_price",
    "nan_price",
    "nan_token",
    "negative_size",
    "unknown_symbol",
    "huge",
    "deep",
)
OUTLIER_VARIANTS = ("far_price", "huge_size", "future_time", "crossed")
FAR_PRICE = b'"99999999999.99"'
HUGE_SIZE = b'"60000.00000000"'
FUTURE_E = b'"E":7258118400000'  # 2200-01-01T00:00:00Z
DEEP_NESTING = 5_000  # the "deep" variant's arrays, one inside the other
MAX_STALL_MS = 60_000
MAX_SLOW_REST_MS = 9_000  # the whole HTTP exchange must finish within websockets' open_timeout (10 s)
MAX_STALE_AGE_MS = 10_000  # the server keeps this much book history
MAX_COUNT = 1_000_000
MAX_HUGE_BYTES = 64 * 1024 * 1024
DEFAULT_HUGE_BYTES = 2 * 1024 * 1024

_DECIMAL_STR_RE = re.compile(rb'"(\d+\.\d+)"')
_SYMBOL_FIELD_RE = re.compile(rb'"s":"([A-Z0-9]+)"')
_EVENT_TIME_RE = re.compile(rb'"E":\d+')
_LEVEL_RE = re.compile(rb'\["(\d+\.\d+)","(\d+\.\d+)"\]')
_TICKER_PRICES_RE = re.compile(rb'"b":("[^"]*")(,"B":"[^"]*",)"a":("[^"]*")')


class FaultError(ValueError):
    """A fault request that cannot be applied: unknown kind or field, bad value, unknown client or symbol."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise FaultError(message)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
        f"{name} must be an int in {low}..{high}, got {value!r}",
    )


def _check_client(value: object) -> None:
    _require(
        value is None or (isinstance(value, int) and value >= 1), f"client must be a client id >= 1, got {value!r}"
    )


def _check_symbol(value: object) -> None:
    _require(
        value is None or (isinstance(value, str) and re.fullmatch(r"[A-Z0-9]{2,20}", value) is not None),
        f"symbol must be an upper-case symbol like 'BTCUSDT', got {value!r}",
    )


class _FaultBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", forbid_unknown_fields=True):
    """Common base: the ``kind`` tag names the fault; unknown fields are refused."""


class DropConnection(_FaultBase, tag="drop_connection"):
    """Close WebSocket connections from the server side (see the module docstring)."""

    mode: Literal["abort", "reset", "close"] = "abort"
    client: int | None = None

    def __post_init__(self) -> None:
        _require(self.mode in ("abort", "reset", "close"), f"mode must be abort, reset or close, got {self.mode!r}")
        _check_client(self.client)


class SkipUpdates(_FaultBase, tag="skip_updates"):
    """Withhold the next ``frames`` depth frames per symbol, leaving a hole in the client's U/u chain."""

    symbol: str | None = None
    frames: int = 1
    client: int | None = None

    def __post_init__(self) -> None:
        _check_symbol(self.symbol)
        _check_int("frames", self.frames, 1, MAX_COUNT)
        _check_client(self.client)


class Malformed(_FaultBase, tag="malformed"):
    """Insert ``count`` corrupted copies of normal frames into each targeted client's stream."""

    count: int = 1
    variant: Literal[
        "truncated", "number_price", "nan_price", "nan_token", "negative_size", "unknown_symbol", "huge", "deep",
        "far_price", "huge_size", "future_time", "crossed", "mixed"
    ] = "mixed"
    symbol: str | None = None
    client: int | None = None
    huge_bytes: int = DEFAULT_HUGE_BYTES
    channel: Literal["depth", "bookTicker", "trade"] | None = None

    def __post_init__(self) -> None:
        _check_int("count", self.count, 1, MAX_COUNT)
        variants = (*MALFORMED_VARIANTS, *OUTLIER_VARIANTS, "mixed")
        _require(self.variant in variants, f"variant must be one of {', '.join(variants)}, got {self.variant!r}")
        _require(self.variant != "crossed" or self.channel == "bookTicker",
                 'variant "crossed" swaps a bookTicker\'s prices: it needs channel = "bookTicker"')
        _check_symbol(self.symbol)
        _check_client(self.client)
        _check_int("huge_bytes", self.huge_bytes, 1024, MAX_HUGE_BYTES)

    def variant_at(self, index: int) -> str:
        """Return the variant of the ``index``-th malformed frame (``"mixed"`` cycles through all variants)."""
        if self.variant == "mixed":
            return MALFORMED_VARIANTS[index % len(MALFORMED_VARIANTS)]
        return self.variant


class StaleSnapshot(_FaultBase, tag="stale_snapshot"):
    """Serve the next ``requests`` REST depth snapshots from the book as it was ``age_ms`` ago."""

    requests: int = 1
    age_ms: int = 2000
    symbol: str | None = None

    def __post_init__(self) -> None:
        _check_int("requests", self.requests, 1, MAX_COUNT)
        _check_int("age_ms", self.age_ms, 1, MAX_STALE_AGE_MS)
        _check_symbol(self.symbol)


class Stall(_FaultBase, tag="stall"):
    """Pause writing to clients for ``ms``; the backlog arrives as a burst afterwards."""

    ms: int
    client: int | None = None

    def __post_init__(self) -> None:
        _check_int("ms", self.ms, 1, MAX_STALL_MS)
        _check_client(self.client)


class SlowRest(_FaultBase, tag="slow_rest"):
    """Delay the next ``requests`` REST depth responses by ``ms``."""

    ms: int
    requests: int = 1

    def __post_init__(self) -> None:
        _check_int("ms", self.ms, 1, MAX_SLOW_REST_MS)
        _check_int("requests", self.requests, 1, MAX_COUNT)


class RestError(_FaultBase, tag="rest_error"):
    """Answer the next ``requests`` REST depth requests with HTTP ``status`` (418 and 429 with ``Retry-After:
    retry_after_s`` when it is > 0, as Binance does when a client ignores its limits)."""

    status: int = 500
    requests: int = 1
    retry_after_s: int = 0

    def __post_init__(self) -> None:
        if self.status not in REST_ERROR_STATUSES:
            raise FaultError(f"status must be one of {', '.join(map(str, REST_ERROR_STATUSES))}, got {self.status}")
        _check_int("requests", self.requests, 1, MAX_COUNT)
        _check_int("retry_after_s", self.retry_after_s, 0, 3600)


REST_ERROR_STATUSES = (400, 403, 418, 429, 500, 502, 503, 504)
Fault = DropConnection | SkipUpdates | Malformed | StaleSnapshot | Stall | SlowRest | RestError
FAULT_TYPES: tuple[type[_FaultBase], ...] = (DropConnection, SkipUpdates, Malformed, StaleSnapshot, Stall, SlowRest,
                                             RestError)
FAULT_KINDS: tuple[str, ...] = tuple(str(t.__struct_config__.tag) for t in FAULT_TYPES)


class ScheduledFault(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A fault the server injects by itself ``at_s`` seconds after it starts listening (``SimConfig.faults``)."""

    at_s: float
    fault: Fault

    def __post_init__(self) -> None:
        _require(
            isinstance(self.at_s, int | float) and 0 <= self.at_s <= 86_400,
            f"at_s must be in [0, 86400] seconds, got {self.at_s!r}",
        )


def _explain(exc: msgspec.MsgspecError) -> FaultError:
    """Turn msgspec's message into one that lists the valid kinds when the kind is what is wrong."""
    text = str(exc)
    if "`$.kind`" in text or "field `kind`" in text:
        return FaultError(f"{text}; fault kinds are {', '.join(FAULT_KINDS)}")
    return FaultError(text)


def decode_fault(body: bytes | str) -> Fault:
    """Decode one fault from JSON such as ``{"kind":"stall","ms":300}``; raise :class:`FaultError` if invalid."""
    try:
        return msgspec.json.decode(body, type=Fault)  # type: ignore[arg-type]
    except msgspec.MsgspecError as exc:
        raise _explain(exc) from None


def fault_from_params(params: dict[str, Any]) -> Fault:
    """Build a fault from string parameters (query string, CLI spec): numbers given as text are converted."""
    try:
        return msgspec.convert(params, type=Fault, strict=False)  # type: ignore[arg-type]
    except msgspec.MsgspecError as exc:
        raise _explain(exc) from None


def fault_from_spec(spec: str) -> ScheduledFault:
    """Parse the CLI form ``AT_S:KIND[,key=value...]``, e.g. ``2.5:stall,ms=300`` or ``4:drop_connection``."""
    at_text, sep, rest = spec.partition(":")
    _require(bool(sep) and bool(rest), f"fault spec must look like 'AT_S:KIND[,key=value...]', got {spec!r}")
    try:
        at_s = float(at_text)
    except ValueError:
        raise FaultError(f"fault spec {spec!r}: {at_text!r} is not a number of seconds") from None
    kind, *pairs = rest.split(",")
    params: dict[str, Any] = {"kind": kind.strip()}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        _require(bool(eq) and bool(key.strip()), f"fault spec {spec!r}: expected key=value, got {pair!r}")
        params[key.strip()] = value.strip()
    return ScheduledFault(at_s=at_s, fault=fault_from_params(params))


def fault_to_dict(fault: Fault) -> dict[str, Any]:
    """Return the fault as the JSON object the control endpoint accepts (``kind`` first)."""
    out: dict[str, Any] = msgspec.to_builtins(fault)
    return out


def _data_start(frame: bytes) -> int:
    """Index of the payload object: after ``"data":`` in a combined frame, 0 in a raw frame."""
    if frame.startswith(b'{"stream":'):
        index = frame.find(b'"data":')
        if index >= 0:
            return index + 7
    return 0


def corrupt(
    frame: bytes, variant: str, *, unknown_symbol: str = "ZZZUSDT", huge_bytes: int = DEFAULT_HUGE_BYTES
) -> bytes:
    """Return a malformed copy of ``frame`` (a text frame as the client receives it) for one ``variant``.

    Every variant keeps the frame valid UTF-8 (the frames are ASCII), so it still travels as a text frame.
    """
    if variant == "truncated":
        return frame[: max(1, len(frame) // 2)]
    if variant in ("number_price", "nan_price", "nan_token", "negative_size"):
        matches = list(_DECIMAL_STR_RE.finditer(frame, _data_start(frame)))
        if not matches:  # no decimal field to spoil: fall back to invalid JSON
            return frame[: max(1, len(frame) // 2)]
        if variant == "negative_size":
            m = matches[1] if len(matches) > 1 else matches[0]
            return frame[: m.start(1)] + b"-" + frame[m.start(1) :]
        m = matches[0]
        new = {"number_price": m.group(1), "nan_price": b'"nan"', "nan_token": b"NaN"}[variant]
        return frame[: m.start()] + new + frame[m.end() :]
    if variant == "unknown_symbol":
        m = _SYMBOL_FIELD_RE.search(frame)
        if m is None:
            return frame[: max(1, len(frame) // 2)]
        symbol = m.group(1)
        out = frame[: m.start(1)] + unknown_symbol.encode() + frame[m.end(1) :]
        label = b'{"stream":"' + symbol.lower() + b"@"
        if out.startswith(label):
            out = b'{"stream":"' + unknown_symbol.lower().encode() + b"@" + out[len(label) :]
        return out
    if variant == "huge":
        start = _data_start(frame) + 1  # just inside the payload's opening brace
        pad = max(0, huge_bytes - len(frame) - 10)  # 10 = len('"_pad":"') + len('",')
        return frame[:start] + b'"_pad":"' + b"x" * pad + b'",' + frame[start:]
    if variant == "deep":
        start = _data_start(frame) + 1
        return frame[:start] + b'"_deep":' + b"[" * DEEP_NESTING + b"]" * DEEP_NESTING + b"," + frame[start:]
    if variant in ("far_price", "huge_size"):
        matches = list(_DECIMAL_STR_RE.finditer(frame, _data_start(frame)))
        if len(matches) < 2:  # no price and size: unchanged
            return frame
        m = matches[0] if variant == "far_price" else matches[1]
        if variant == "far_price":
            level = next((x for x in _LEVEL_RE.finditer(frame) if x.group(2).strip(b"0.")), None)
            if level is not None:  # a depth diff: a level with a size (a removal far away changes nothing)
                return frame[: level.start(1) - 1] + FAR_PRICE + frame[level.end(1) + 1 :]
        return frame[: m.start()] + (FAR_PRICE if variant == "far_price" else HUGE_SIZE) + frame[m.end() :]
    if variant == "future_time":
        return _EVENT_TIME_RE.sub(FUTURE_E, frame, count=1)
    if variant == "crossed":
        return _TICKER_PRICES_RE.sub(rb'"b":\3\2"a":\1', frame, count=1)
    raise FaultError(f"unknown malformed variant {variant!r}; variants are {', '.join(MALFORMED_VARIANTS)}")
