"""Long/short position accounting in exact fixed point.

Per symbol (``book[sym, K_*]``, int64): signed position (size units), entry notional (money units =
price units * size units: ``|position| * average entry price``), cumulative realized PnL net of fees, and
cumulative fees.

A fill of signed quantity ``q`` at price ``p``:

* same direction as the position (or flat): position += q; entry += |q| * p
* against the position: ``closed = min(|q|, |position|)``; the closed part's entry cost is
  ``entry * closed / |position|`` (integer division: the rounding stays in the remaining entry, so the sum of
  realized PnL over a round trip is exact); realized += sign(position) * (closed * p - that cost);
  a remainder beyond the position flips it: position = sign(q) * remainder, entry = remainder * p.
* fee = |q| * p * fee_bps / 10_000 (rounded down), subtracted from realized.

Magnitudes: BTCUSDT at 2 price and 8 size decimals puts 1 BTC at 60,000 in 6e14 money units; every product
here is arranged so no intermediate exceeds int64 (9.2e18) below 10,000 BTC of position.
"""

from __future__ import annotations

import numpy as np
from numba import njit

K_POSITION = 0
K_ENTRY_NOTIONAL = 1
K_REALIZED = 2
K_FEES = 3
N_ACCOUNT = 4


@njit(cache=True)
def apply_fill(account: np.ndarray, symbol: int, quantity: int, price: int, fee_bps_x100: int) -> int:
    """Apply one fill (``quantity`` signed: + buy, - sell) and return its fee in money units."""
    position = account[symbol, K_POSITION]
    entry = account[symbol, K_ENTRY_NOTIONAL]
    size = abs(quantity)
    if position == 0 or (position > 0) == (quantity > 0):
        account[symbol, K_POSITION] = position + quantity
        account[symbol, K_ENTRY_NOTIONAL] = entry + size * price
    else:
        held = abs(position)
        closed = size if size < held else held
        # floor(entry * closed / held) without the 128-bit intermediate: entry * closed overflows int64 at
        # real magnitudes (0.5 BTC at 8 size decimals and 60,000.00: 3e14 * 5e7)
        whole, rest = divmod(entry, held)
        closed_cost = whole * closed + rest * closed // held
        direction = 1 if position > 0 else -1
        account[symbol, K_REALIZED] += direction * (closed * price - closed_cost)
        remainder = size - closed
        if remainder > 0:
            account[symbol, K_POSITION] = remainder if quantity > 0 else -remainder
            account[symbol, K_ENTRY_NOTIONAL] = remainder * price
        else:
            account[symbol, K_POSITION] = position + quantity
            account[symbol, K_ENTRY_NOTIONAL] = entry - closed_cost
    notional = size * price
    fee = notional // 1_000_000 * fee_bps_x100 + notional % 1_000_000 * fee_bps_x100 // 1_000_000
    account[symbol, K_REALIZED] -= fee
    account[symbol, K_FEES] += fee
    return fee
