"""msgspec Structs for the Binance spot market-data messages the feed understands.

Two sets of types describe the same JSON:

* Typed messages (``DepthUpdate``, ``BookTicker``, ``Trade``, ``DepthSnapshot``, inside a ``CombinedStream``
  envelope): every field required and typed, numbers as the venue's decimal strings. ``decode_message`` returns
  ``(status, kind, message)`` and never raises. Use them off the hot path, in tools and as the reference the fast
  path is tested against.
* Wire messages (``WireFrame``/``WireData``, ``WireSnapshot``): what ``FeedEngine`` decodes with msgspec, for
  every REST snapshot and for the frames the jitted scanner (``hft.feed.fastpath``) declines.
  A bookTicker has no ``"e"`` field, so no tagged union can tell the three payloads apart; rather than decoding
  the envelope with ``data: msgspec.Raw`` and then the payload again (two decoder calls), one Struct holds the
  union of all payload fields with sentinel defaults, the engine dispatches on the stream name and checks that the
  fields of that kind are present. Numeric strings stay ``msgspec.Raw`` spans (level arrays and quoted
  decimals) and are parsed exactly by the jitted scanners of ``hft.feed.wire``: no Python object per number.

Combined-stream envelope: ``{"stream": "<symbol>@<channel>", "data": {...}}`` with channel ``depth`` or
``depth@100ms`` (``depthUpdate``), ``bookTicker`` and ``trade``.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Raw, Struct

from hft.feed.decimal import INT64_MAX

__all__ = [
    "FRAME_DECODER",
    "KIND_BOOK_TICKER",
    "KIND_DEPTH",
    "KIND_TRADE",
    "MSG_MALFORMED",
    "MSG_OK",
    "MSG_UNKNOWN_STREAM",
    "SNAPSHOT_DECODER",
    "BookTicker",
    "CombinedStream",
    "DepthSnapshot",
    "DepthUpdate",
    "PriceLevel",
    "Trade",
    "WireData",
    "WireFrame",
    "WireSnapshot",
    "decode_message",
    "decode_snapshot",
    "stream_channel_kind",
]

KIND_DEPTH = 1
KIND_BOOK_TICKER = 2
KIND_TRADE = 3

MSG_OK = 0
MSG_MALFORMED = -1  # not JSON, or a required field missing or of the wrong type
MSG_UNKNOWN_STREAM = -2  # a channel this feed does not handle

_CHANNELS = {
    "depth": KIND_DEPTH,
    "depth@100ms": KIND_DEPTH,
    "bookTicker": KIND_BOOK_TICKER,
    "trade": KIND_TRADE,
}

# Ids and exchange times must fit int64 (times in ms must still fit after the * 1e6 to ns).
UpdateId = Annotated[int, Meta(ge=0, le=INT64_MAX)]
EventTimeMs = Annotated[int, Meta(ge=0, le=INT64_MAX // 1_000_000)]
PriceLevel = tuple[str, str]  # [price, quantity] as decimal strings


class DepthUpdate(Struct, frozen=True):
    """A diff of the order book (``<symbol>@depth[@100ms]``): absolute quantities, "0" removes a level."""

    e: str  # "depthUpdate"
    E: EventTimeMs  # event time, ms since epoch
    s: str  # symbol, upper case
    U: UpdateId  # first update id in the event
    u: UpdateId  # last update id in the event
    b: list[PriceLevel]
    a: list[PriceLevel]


class BookTicker(Struct, frozen=True):
    """Best bid and ask (``<symbol>@bookTicker``): no event type and no event time on spot."""

    u: UpdateId  # the order book update id this touch reflects
    s: str
    b: str
    B: str
    a: str
    A: str


class Trade(Struct, frozen=True):
    """One print (``<symbol>@trade``); ``m`` true means the buyer was the maker, i.e. a seller aggressed."""

    e: str  # "trade"
    E: EventTimeMs
    s: str
    t: UpdateId  # trade id
    p: str
    q: str
    T: EventTimeMs  # trade time, ms
    m: bool


class DepthSnapshot(Struct, frozen=True):
    """The REST ``GET /api/v3/depth`` answer."""

    last_update_id: UpdateId = msgspec.field(name="lastUpdateId")
    bids: list[PriceLevel]
    asks: list[PriceLevel]


class CombinedStream(Struct, frozen=True):
    """The envelope of every combined-stream frame; ``data`` is decoded once the stream name is known."""

    stream: str
    data: Raw


class WireData(Struct):
    """The union of the payload fields of all three channels; sentinels (-1, "", empty Raw, None) mean absent."""

    e: str = ""
    E: EventTimeMs = -1
    s: str = ""
    U: UpdateId = -1
    u: UpdateId = -1
    t: UpdateId = -1
    b: Raw = Raw()  # depth: level array; bookTicker: quoted price
    a: Raw = Raw()
    B: Raw = Raw()  # bookTicker: quoted sizes
    A: Raw = Raw()
    p: Raw = Raw()  # trade: quoted price and quantity
    q: Raw = Raw()
    m: bool | None = None


class WireFrame(Struct):
    """The hot-path decode target of a combined-stream frame."""

    stream: str
    data: WireData


class WireSnapshot(Struct):
    """The hot-path decode target of the REST depth snapshot."""

    last_update_id: UpdateId = msgspec.field(name="lastUpdateId")
    bids: Raw
    asks: Raw


FRAME_DECODER = msgspec.json.Decoder(WireFrame)
SNAPSHOT_DECODER = msgspec.json.Decoder(WireSnapshot)

_ENVELOPE_DECODER = msgspec.json.Decoder(CombinedStream)
_TYPED_DECODERS = {
    KIND_DEPTH: msgspec.json.Decoder(DepthUpdate),
    KIND_BOOK_TICKER: msgspec.json.Decoder(BookTicker),
    KIND_TRADE: msgspec.json.Decoder(Trade),
}
_TYPED_SNAPSHOT_DECODER = msgspec.json.Decoder(DepthSnapshot)


def stream_channel_kind(stream: str) -> tuple[str, int]:
    """Split ``"btcusdt@depth@100ms"`` into ``("btcusdt", KIND_DEPTH)``; kind 0 for a channel we do not handle."""
    symbol, _, channel = stream.partition("@")
    return symbol, _CHANNELS.get(channel, 0)


def decode_message(raw: bytes | str) -> tuple[int, int, DepthUpdate | BookTicker | Trade | None]:
    """Decode a combined-stream frame into a typed message without raising.

    Returns
    -------
    (status, kind, message)
        ``MSG_OK`` with ``KIND_*`` and the message, or a negative ``MSG_*`` status, kind 0 and None.
    """
    try:
        envelope = _ENVELOPE_DECODER.decode(raw)
    except msgspec.DecodeError:
        return MSG_MALFORMED, 0, None
    _, kind = stream_channel_kind(envelope.stream)
    if kind == 0:
        return MSG_UNKNOWN_STREAM, 0, None
    try:
        message = _TYPED_DECODERS[kind].decode(envelope.data)
    except msgspec.DecodeError:
        return MSG_MALFORMED, 0, None
    if kind == KIND_DEPTH and (message.e != "depthUpdate" or message.u < message.U):
        return MSG_MALFORMED, 0, None
    if kind == KIND_TRADE and message.e != "trade":
        return MSG_MALFORMED, 0, None
    return MSG_OK, kind, message


def decode_snapshot(body: bytes | str) -> tuple[int, DepthSnapshot | None]:
    """Decode a REST depth snapshot into a typed message without raising: ``(status, snapshot | None)``."""
    try:
        return MSG_OK, _TYPED_SNAPSHOT_DECODER.decode(body)
    except msgspec.DecodeError:
        return MSG_MALFORMED, None
