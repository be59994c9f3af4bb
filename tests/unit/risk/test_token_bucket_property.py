"""Property: in any interval [t_i, t_j], the token bucket lets at most ``burst + rate * (t_j - t_i)`` orders pass."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hft.risk.config import RiskConfig
from hft.risk.engine import G_TOKENS, RISK_OK, RISK_ORDER_RATE, TOKEN
from shm_layout.records import SIDE_BUY
from tests.unit.risk._desk import BTC, BTC_PRICE, Desk

NS_PER_S = 1_000_000_000

EARLIEST = -1  # wait exactly until the bucket holds one token: the greediest client, probing the boundary

gaps = st.one_of(
    st.just(EARLIEST),
    st.just(0),  # orders at the same instant
    st.integers(1, 1_000),
    st.integers(1, 100_000_000),  # up to 100 ms
    st.integers(1, 3 * NS_PER_S),
)


@settings(max_examples=150, deadline=None)
@given(
    rate_milli=st.integers(1, 2_000_000),  # 0.001 .. 2,000 orders per second
    burst=st.integers(1, 40),
    steps=st.lists(gaps, min_size=1, max_size=200),
)
def test_order_rate_when_orders_arrive_at_any_times_then_never_more_than_burst_plus_rate_times_elapsed(
    rate_milli: int, burst: int, steps: list[int]
) -> None:
    config = RiskConfig(max_orders_per_second=rate_milli / 1000, order_burst=burst, stale_after_ms=10**9)
    desk = Desk(config)
    desk.fresh()
    allowed: list[int] = []
    for gap in steps:
        if gap == EARLIEST:
            missing = TOKEN - int(desk.state[G_TOKENS])
            gap = max(0, -(-missing // rate_milli))  # ceil: the first ns at which a whole token is back
        desk.advance(gap)
        reason = desk.check(BTC, SIDE_BUY, 1, BTC_PRICE)
        assert reason in (RISK_OK, RISK_ORDER_RATE)
        assert 0 <= desk.state[G_TOKENS] <= burst * TOKEN  # never in debt when every send was allowed
        if reason == RISK_OK:
            assert desk.send() == RISK_OK  # what the check allowed, the send accounts without debt
            allowed.append(desk.now)
    # exact integer form of  count <= burst + rate * elapsed  (rate * 1000 pico-tokens per ns, TOKEN per order)
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            count = j - i + 1
            assert count * TOKEN <= burst * TOKEN + rate_milli * (allowed[j] - allowed[i]), (i, j, allowed)
    # and the bucket is not stingy: a full bucket's worth passes at once after a quiet period long enough to refill
    desk.advance(burst * TOKEN // rate_milli + 1)
    desk.fresh()
    passed = 0
    while desk.check(BTC, SIDE_BUY, 1, BTC_PRICE) == RISK_OK:
        desk.send()
        passed += 1
    assert passed == burst
