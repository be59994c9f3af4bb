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
* fee = |q| * p * fee_bps / 10_000 (rounded toward zero; negative for a maker rebate), subtracted from
  realized.

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
def fee_for(notional: int, fee_bps_x100: int) -> int:
    """Fee of a fill of ``notional`` money units at ``fee_bps_x100`` hundredths of a bp, rounded toward zero.

    Negative rates are maker rebates (a negative fee). Split so ``notional * rate`` cannot overflow int64.
    """
    rate = abs(fee_bps_x100)
    fee = notional // 1_000_000 * rate + notional % 1_000_000 * rate // 1_000_000
    return fee if fee_bps_x100 >= 0 else -fee


@njit(cache=True)
def apply_trade(account: np.ndarray, symbol: int, quantity: int, price: int) -> tuple[int, int]:
    """Apply one fill without its fee; return ``(realized PnL change, size closed)``."""
    position = account[symbol, K_POSITION]
    entry = account[symbol, K_ENTRY_NOTIONAL]
    size = abs(quantity)
    if position == 0 or (position > 0) == (quantity > 0):
        account[symbol, K_POSITION] = position + quantity
        account[symbol, K_ENTRY_NOTIONAL] = entry + size * price
        return 0, 0
    held = abs(position)
    closed = size if size < held else held
    # floor(entry * closed / held) without the 128-bit intermediate: entry * closed overflows int64 at
    # real magnitudes (0.5 BTC at 8 size decimals and 60,000.00: 3e14 * 5e7)
    whole, rest = divmod(entry, held)
    closed_cost = whole * closed + rest * closed // held
    direction = 1 if position > 0 else -1
    pnl = direction * (closed * price - closed_cost)
    account[symbol, K_REALIZED] += pnl
    remainder = size - closed
    if remainder > 0:
        account[symbol, K_POSITION] = remainder if quantity > 0 else -remainder
        account[symbol, K_ENTRY_NOTIONAL] = remainder * price
    else:
        account[symbol, K_POSITION] = position + quantity
        account[symbol, K_ENTRY_NOTIONAL] = entry - closed_cost
    return pnl, closed


@njit(cache=True)
def charge_fee(account: np.ndarray, symbol: int, fee: int) -> None:
    """Book a fee (negative: a rebate) against realized PnL."""
    account[symbol, K_REALIZED] -= fee
    account[symbol, K_FEES] += fee


@njit(cache=True)
def apply_fill(
    account: np.ndarray, symbol: int, quantity: int, price: int, fee_bps_x100: int
) -> tuple[int, int, int]:
    """Apply one fill (``quantity`` signed: + buy, - sell) with its fee; return ``(fee, realized PnL change
    after the fee, size closed)``."""
    pnl, closed = apply_trade(account, symbol, quantity, price)
    fee = fee_for(abs(quantity) * price, fee_bps_x100)
    charge_fee(account, symbol, fee)
    return fee, pnl - fee, closed


@njit(cache=True)
def unrealized(account: np.ndarray, symbol: int, mid_x2: int) -> int:
    """Unrealized PnL of the position marked to the mid (given doubled, exact), money units, rounded down."""
    position = account[symbol, K_POSITION]
    if position == 0 or mid_x2 <= 0:
        return 0
    value_x2 = abs(position) * mid_x2
    gain_x2 = value_x2 - 2 * account[symbol, K_ENTRY_NOTIONAL]
    return (gain_x2 if position > 0 else -gain_x2) // 2
