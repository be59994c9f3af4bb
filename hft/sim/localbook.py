"""Reference Binance local-order-book client: the documented snapshot + diff procedure with exact integers.

It is deliberately small and dict-based so that tests (and anyone debugging the real feed) can check that a client
following Binance's procedure against the simulator ends up with exactly the simulator's book.

Procedure (Binance spot "How to manage a local order book correctly"): buffer diff events from the moment the
stream is open; fetch ``/api/v3/depth``; drop buffered events with ``u <= lastUpdateId``; the first applied event
must have ``U <= lastUpdateId + 1 <= u``; afterwards every event must have ``U == previous u + 1``. Quantities are
absolute and a quantity of zero removes the level.
"""

from __future__ import annotations

from typing import Any

from hft.validation import decimal_to_fixed

__all__ = ["BookGapError", "LocalBook", "parse_fixed"]


class BookGapError(Exception):
    """The diff stream skipped update ids: the local book is no longer trustworthy and must be resynced."""


def parse_fixed(text: str, decimals: int) -> int:
    """Parse a decimal string into an int scaled by ``10**decimals`` exactly; refuse digits that would be lost."""
    return decimal_to_fixed(text, decimals, "book level")


class LocalBook:
    """One symbol's book rebuilt from a REST snapshot and ``depthUpdate`` events (the ``data`` objects)."""

    def __init__(self, price_decimals: int, size_decimals: int) -> None:
        self.price_decimals = price_decimals
        self.size_decimals = size_decimals
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last_update_id: int | None = None  # None until the snapshot is applied
        self.applied = 0  # diff events applied
        self._buffer: list[dict[str, Any]] = []

    @property
    def synced(self) -> bool:
        """Whether the snapshot has been applied."""
        return self.last_update_id is not None

    def on_diff(self, data: dict[str, Any]) -> bool:
        """Buffer (before the snapshot) or apply one diff event; return whether it changed the book."""
        if self.last_update_id is None:
            self._buffer.append(data)
            return False
        first, last = int(data["U"]), int(data["u"])
        if last <= self.last_update_id:
            return False
        if self.applied == 0:
            if not first <= self.last_update_id + 1 <= last:
                raise BookGapError(
                    f"first event U={first} u={last} does not cover snapshot id {self.last_update_id} + 1"
                )
        elif first != self.last_update_id + 1:
            raise BookGapError(f"event U={first} does not follow previous u={self.last_update_id}")
        self._apply_side(self.bids, data["b"])
        self._apply_side(self.asks, data["a"])
        self.last_update_id = last
        self.applied += 1
        return True

    def on_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Load the REST snapshot and replay the buffered events that follow it.

        Raise ``BookGapError`` when the snapshot is older than the first buffered event (Binance says: fetch it
        again).
        """
        last_id = int(snapshot["lastUpdateId"])
        if self._buffer and last_id < int(self._buffer[0]["U"]) - 1:
            raise BookGapError(f"snapshot {last_id} is older than the first buffered event U={self._buffer[0]['U']}")
        self.bids = {}
        self.asks = {}
        self._apply_side(self.bids, snapshot["bids"])
        self._apply_side(self.asks, snapshot["asks"])
        self.last_update_id = last_id
        self.applied = 0
        buffered, self._buffer = self._buffer, []
        for data in buffered:
            self.on_diff(data)

    def touch(self) -> tuple[int, int, int, int]:
        """Return ``(bid_price, bid_size, ask_price, ask_size)`` in fixed point."""
        bid = max(self.bids)
        ask = min(self.asks)
        return bid, self.bids[bid], ask, self.asks[ask]

    def _apply_side(self, side: dict[int, int], levels: list[list[str]]) -> None:
        pd, sd = self.price_decimals, self.size_decimals
        for price_text, qty_text in levels:
            price = parse_fixed(price_text, pd)
            qty = parse_fixed(qty_text, sd)
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
