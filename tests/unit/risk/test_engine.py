"""Every pre-trade rule, its boundary and its reset, on a hand-driven clock."""

from __future__ import annotations

import pytest

from hft.risk.config import RiskConfig
from hft.risk.engine import (
    G_DRAWDOWN_LATCHED,
    G_STORM_TRIPS,
    G_TOKENS,
    N_RISK_REASONS,
    RISK_BAD_SYMBOL,
    RISK_CANCEL_RATE,
    RISK_INVALID_ORDER,
    RISK_KILL_SWITCH,
    RISK_MAX_DRAWDOWN,
    RISK_MAX_NOTIONAL,
    RISK_MAX_ORDER_SIZE,
    RISK_MAX_POSITION,
    RISK_OK,
    RISK_ORDER_RATE,
    RISK_REASON_NAMES,
    RISK_REJECT_STORM,
    RISK_STALE_DATA,
    S_LAST_MD_NS,
    S_MARK,
    S_POSITION,
    TOKEN,
    risk_on_execution,
    risk_reset_drawdown,
    symbol_word,
)
from shm_layout.records import REASON_POST_ONLY_WOULD_CROSS, SIDE_BUY, SIDE_SELL, STATUS_CANCELLED
from tests.unit.risk._desk import BTC, BTC_PRICE, ETH, ETH_PRICE, MS, ONE, Desk, usd

HALF = ONE // 2


@pytest.fixture
def desk() -> Desk:
    desk = Desk()
    desk.fresh()
    return desk


# --- reasons ---


def test_reason_names_when_indexed_by_code_then_each_code_has_its_unique_name() -> None:
    codes = {
        "ok": RISK_OK, "kill_switch": RISK_KILL_SWITCH, "max_position": RISK_MAX_POSITION,
        "max_order_size": RISK_MAX_ORDER_SIZE, "max_notional": RISK_MAX_NOTIONAL, "order_rate": RISK_ORDER_RATE,
        "stale_data": RISK_STALE_DATA, "max_drawdown": RISK_MAX_DRAWDOWN, "reject_storm": RISK_REJECT_STORM,
        "invalid_order": RISK_INVALID_ORDER, "cancel_rate": RISK_CANCEL_RATE,
    }
    assert len(RISK_REASON_NAMES) == N_RISK_REASONS == len(set(RISK_REASON_NAMES)) == len(codes)
    assert all(RISK_REASON_NAMES[code] == name for name, code in codes.items())
    assert RISK_OK == 0 and all(code > 0 for code in codes.values() if code != RISK_OK)


def test_check_when_every_limit_holds_then_ok(desk: Desk) -> None:
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK
    assert desk.check(ETH, SIDE_SELL, ONE, ETH_PRICE) == RISK_OK


# --- invalid orders ---


@pytest.mark.parametrize(
    ("symbol", "side", "size", "price"),
    [(-1, SIDE_BUY, 1, BTC_PRICE), (2, SIDE_BUY, 1, BTC_PRICE), (BTC, 0, 1, BTC_PRICE), (BTC, 2, 1, BTC_PRICE),
     (BTC, SIDE_BUY, 0, BTC_PRICE), (BTC, SIDE_SELL, -5, BTC_PRICE), (BTC, SIDE_BUY, 1, 0), (BTC, SIDE_BUY, 1, -1)],
)
def test_invalid_order_when_field_out_of_range_then_denied(
    desk: Desk, symbol: int, side: int, size: int, price: int
) -> None:
    assert desk.check(symbol, side, size, price) == RISK_INVALID_ORDER


def test_updates_when_symbol_out_of_range_then_bad_symbol_and_nothing_recorded(desk: Desk) -> None:
    before = desk.state.copy()
    assert desk.market(2, BTC_PRICE) == RISK_BAD_SYMBOL
    assert desk.fill(-1, ONE, ONE * BTC_PRICE) == RISK_BAD_SYMBOL
    assert (desk.state == before).all()


# --- kill switch ---


def test_kill_switch_when_on_and_order_opens_then_denied(desk: Desk) -> None:
    desk.kill = 1
    assert desk.check(BTC, SIDE_BUY, HALF, position=0) == RISK_KILL_SWITCH
    assert desk.check(BTC, SIDE_BUY, HALF, position=HALF) == RISK_KILL_SWITCH


def test_kill_switch_when_on_and_order_reduces_then_passes(desk: Desk) -> None:
    desk.kill = 1
    assert desk.check(BTC, SIDE_SELL, HALF, position=ONE) == RISK_OK
    assert desk.check(BTC, SIDE_SELL, ONE, position=ONE) == RISK_OK  # flatten
    assert desk.check(BTC, SIDE_BUY, HALF, position=-HALF) == RISK_OK


def test_kill_switch_when_on_and_order_reverses_then_denied(desk: Desk) -> None:
    desk.kill = 1
    assert desk.check(BTC, SIDE_SELL, ONE, position=HALF) == RISK_KILL_SWITCH
    assert desk.check(BTC, SIDE_BUY, ONE + 1, position=-ONE) == RISK_KILL_SWITCH


def test_kill_switch_when_turned_off_then_opening_orders_pass(desk: Desk) -> None:
    desk.kill = 1
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_KILL_SWITCH
    desk.kill = 0
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


# --- max position ---


def test_max_position_when_position_after_exceeds_limit_then_denied(desk: Desk) -> None:
    assert desk.check(BTC, SIDE_BUY, HALF + 1, position=HALF) == RISK_MAX_POSITION
    assert desk.check(BTC, SIDE_SELL, HALF + 1, position=-HALF) == RISK_MAX_POSITION


def test_max_position_when_position_after_equals_limit_then_passes(desk: Desk) -> None:
    assert desk.check(BTC, SIDE_BUY, HALF, position=HALF) == RISK_OK
    assert desk.check(BTC, SIDE_SELL, ONE, position=0) == RISK_OK


def test_max_position_when_reversal_overshoots_then_denied() -> None:
    desk = Desk(RiskConfig(max_order_size="3.0"))
    desk.fresh()
    assert desk.check(BTC, SIDE_SELL, 2 * ONE, position=ONE) == RISK_OK  # +1 -> -1: at the limit
    assert desk.check(BTC, SIDE_SELL, 2 * ONE + 1, position=ONE) == RISK_MAX_POSITION  # +1 -> -1.00000001


def test_max_position_when_over_limit_and_order_reduces_then_passes() -> None:
    desk = Desk(RiskConfig(max_order_size="5.0"))
    desk.fresh()
    assert desk.check(BTC, SIDE_SELL, ONE, position=3 * ONE) == RISK_OK  # 3 -> 2, still above 1: reducing


def test_max_position_when_symbols_have_different_size_decimals_then_limit_is_per_symbol() -> None:
    desk = Desk(decimals=((2, 8), (2, 4)))  # ETH sized in 10**-4: 1.0 ETH = 10_000 units
    desk.fresh()
    assert desk.check(ETH, SIDE_BUY, 10_000, ETH_PRICE) == RISK_OK
    assert desk.check(ETH, SIDE_BUY, 10_001, ETH_PRICE) == RISK_MAX_ORDER_SIZE
    assert desk.check(ETH, SIDE_BUY, 1, ETH_PRICE, position=10_000) == RISK_MAX_POSITION
    assert desk.check(BTC, SIDE_BUY, 10_001) == RISK_OK  # 0.00010001 BTC


# --- max order size ---


def test_max_order_size_when_size_exceeds_limit_then_denied(desk: Desk) -> None:
    assert desk.check(BTC, SIDE_BUY, ONE + 1) == RISK_MAX_ORDER_SIZE


def test_max_order_size_when_size_equals_limit_then_passes(desk: Desk) -> None:
    assert desk.check(BTC, SIDE_BUY, ONE) == RISK_OK


def test_max_order_size_when_reducing_order_exceeds_limit_then_denied(desk: Desk) -> None:
    assert desk.check(BTC, SIDE_SELL, 2 * ONE, position=2 * ONE) == RISK_MAX_ORDER_SIZE


# --- max notional ---


def big_desk(max_notional_usd: float) -> Desk:
    desk = Desk(RiskConfig(max_position="100000", max_order_size="100000", max_notional_usd=max_notional_usd))
    desk.fresh()
    return desk


def test_max_notional_when_gross_exposure_after_exceeds_limit_then_denied() -> None:
    desk = big_desk(100_000.0)
    desk.fill(BTC, ONE, ONE * BTC_PRICE)  # 60,000 USD of BTC
    assert desk.check(ETH, SIDE_BUY, 16 * ONE, ETH_PRICE) == RISK_OK  # + 40,000 = 100,000: at the limit
    assert desk.check(ETH, SIDE_BUY, 16 * ONE + 1, ETH_PRICE) == RISK_MAX_NOTIONAL
    assert desk.check(ETH, SIDE_SELL, 16 * ONE + 1, ETH_PRICE) == RISK_MAX_NOTIONAL  # gross: shorts count too


def test_max_notional_when_other_symbol_mark_rises_then_denied() -> None:
    desk = big_desk(100_000.0)
    desk.fill(BTC, ONE, ONE * BTC_PRICE)
    assert desk.check(ETH, SIDE_BUY, 10 * ONE, ETH_PRICE) == RISK_OK  # 60,000 + 25,000
    desk.market(BTC, 8_000_000)  # BTC marked at 80,000
    assert desk.check(ETH, SIDE_BUY, 10 * ONE, ETH_PRICE) == RISK_MAX_NOTIONAL  # 80,000 + 25,000


def test_max_notional_when_order_price_is_higher_than_mark_then_order_price_counts() -> None:
    desk = big_desk(100_000.0)
    assert desk.check(BTC, SIDE_BUY, ONE, 10_000_000) == RISK_OK  # 100,000 at the order price
    assert desk.check(BTC, SIDE_BUY, ONE, 10_000_001) == RISK_MAX_NOTIONAL


def test_max_notional_when_over_limit_and_order_reduces_then_passes() -> None:
    desk = big_desk(50_000.0)
    desk.fill(BTC, ONE, ONE * BTC_PRICE)
    assert desk.check(BTC, SIDE_SELL, HALF, position=ONE) == RISK_OK


def test_max_notional_when_money_units_overflow_int64_then_still_denied() -> None:
    desk = big_desk(1e9)
    # 20,000 BTC at 60,000: 2e12 size units * 6e6 price units = 1.2e19 money units, beyond int64 (9.2e18).
    # A wrapped int64 product would be negative and pass; in float64 it is 1.2e9 USD.
    assert desk.check(BTC, SIDE_BUY, 20_000 * ONE) == RISK_MAX_NOTIONAL
    assert desk.check(BTC, SIDE_BUY, 16_000 * ONE) == RISK_OK  # 9.6e8 USD


def test_max_notional_when_other_position_is_huge_then_summed_without_overflow() -> None:
    desk = big_desk(1e9)
    desk.fill(BTC, 16_000 * ONE, 16_000 * ONE * (BTC_PRICE // 10))  # entered at 6,000; marked at 60,000
    # 16,000 BTC at the 60,000 mark: 9.6e18 money units (beyond int64 as a product), 9.6e8 USD
    assert desk.check(ETH, SIDE_BUY, 16 * ONE, ETH_PRICE) == RISK_OK  # + 40,000
    assert desk.check(ETH, SIDE_BUY, 20_000 * ONE, ETH_PRICE) == RISK_MAX_NOTIONAL  # + 5e7


# --- order rate (token bucket) ---


def burst(desk: Desk, count: int) -> list[int]:
    reasons = []
    for _ in range(count):
        reason = desk.check(BTC, SIDE_BUY, HALF)
        reasons.append(reason)
        if reason == RISK_OK:
            desk.send()
    return reasons


def test_order_rate_when_burst_used_up_then_denied(desk: Desk) -> None:
    assert burst(desk, 21) == [RISK_OK] * 20 + [RISK_ORDER_RATE]


def test_order_rate_when_time_passes_then_tokens_refill_at_rate(desk: Desk) -> None:
    burst(desk, 20)
    desk.advance(50 * MS - 1)  # 20 per second: one token every 50 ms
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_ORDER_RATE
    desk.advance(1)
    assert burst(desk, 2) == [RISK_OK, RISK_ORDER_RATE]
    desk.advance(150 * MS)
    assert burst(desk, 4) == [RISK_OK] * 3 + [RISK_ORDER_RATE]


def test_order_rate_when_idle_for_long_then_capped_at_burst(desk: Desk) -> None:
    burst(desk, 20)
    desk.advance(3_600_000 * MS)
    desk.fresh()
    assert burst(desk, 21) == [RISK_OK] * 20 + [RISK_ORDER_RATE]


def test_order_rate_when_sent_without_allowance_then_reported_and_bucket_in_debt(desk: Desk) -> None:
    assert [desk.send() for _ in range(21)] == [RISK_OK] * 20 + [RISK_ORDER_RATE]
    assert desk.state[G_TOKENS] == -TOKEN
    desk.advance(50 * MS)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_ORDER_RATE  # the debt is paid back first
    desk.advance(50 * MS)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


def test_order_rate_when_clock_steps_back_then_nothing_refilled(desk: Desk) -> None:
    burst(desk, 20)
    desk.advance(-1_000 * MS)
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_ORDER_RATE
    desk.advance(1_000 * MS + 50 * MS)  # refill counts from the latest time seen, not the stepped-back one
    assert burst(desk, 2) == [RISK_OK, RISK_ORDER_RATE]


def test_order_rate_when_fractional_rate_then_refill_is_exact() -> None:
    desk = Desk(RiskConfig(max_orders_per_second=0.5, order_burst=1))
    desk.fresh()
    assert burst(desk, 2) == [RISK_OK, RISK_ORDER_RATE]
    desk.advance(2_000 * MS - 1)
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_ORDER_RATE
    desk.advance(1)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


# --- stale data ---


def test_stale_data_when_symbol_never_had_data_then_denied() -> None:
    desk = Desk()
    desk.market(BTC, BTC_PRICE)
    assert desk.check(ETH, SIDE_BUY, ONE, ETH_PRICE) == RISK_STALE_DATA
    assert desk.check(BTC, SIDE_BUY, ONE) == RISK_OK


def test_stale_data_when_data_older_than_limit_then_denied(desk: Desk) -> None:
    desk.advance(5_000 * MS)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK  # exactly 5 s: not more than the limit
    desk.advance(1)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_STALE_DATA


def test_stale_data_when_stale_and_order_reduces_then_still_denied(desk: Desk) -> None:
    desk.advance(5_001 * MS)
    assert desk.check(BTC, SIDE_SELL, HALF, position=ONE) == RISK_STALE_DATA


def test_stale_data_when_data_flows_again_then_breaker_resets(desk: Desk) -> None:
    desk.advance(60_000 * MS)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_STALE_DATA
    assert desk.market(BTC, 0) == RISK_OK  # a time-only update (no mark) counts as data
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK
    assert desk.state[symbol_word(BTC, S_MARK)] == BTC_PRICE  # and keeps the previous mark


def test_stale_data_when_other_symbol_is_stale_then_this_symbol_unaffected(desk: Desk) -> None:
    desk.advance(6_000 * MS)
    desk.market(BTC, BTC_PRICE)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK
    assert desk.check(ETH, SIDE_BUY, HALF, ETH_PRICE) == RISK_STALE_DATA


def test_stale_data_when_market_time_steps_back_then_latest_time_kept(desk: Desk) -> None:
    latest = desk.now
    desk.advance(-1_000 * MS)
    desk.market(BTC, BTC_PRICE)
    assert desk.state[symbol_word(BTC, S_LAST_MD_NS)] == latest


# --- max drawdown ---


def long_one_btc(desk: Desk) -> None:
    assert desk.fill(BTC, ONE, ONE * BTC_PRICE) == RISK_OK  # long 1 BTC entered at 60,000.00


def test_max_drawdown_when_loss_equals_limit_then_not_tripped(desk: Desk) -> None:
    long_one_btc(desk)
    assert desk.market(BTC, 5_900_000) == RISK_OK  # 59,000.00: -1,000.00 USD exactly
    assert desk.equity == -1_000.0 and desk.drawdown == 1_000.0
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


def test_max_drawdown_when_loss_exceeds_limit_then_latched_and_new_exposure_denied(desk: Desk) -> None:
    long_one_btc(desk)
    assert desk.market(BTC, 5_899_999) == RISK_MAX_DRAWDOWN  # -1,000.01: the call that trips says so
    assert desk.state[G_DRAWDOWN_LATCHED] == 1
    assert desk.check(BTC, SIDE_BUY, HALF, position=ONE) == RISK_MAX_DRAWDOWN
    assert desk.check(ETH, SIDE_BUY, HALF, ETH_PRICE) == RISK_MAX_DRAWDOWN  # the breaker is account-wide


def test_max_drawdown_when_latched_and_order_reduces_then_passes(desk: Desk) -> None:
    long_one_btc(desk)
    desk.market(BTC, 5_000_000)
    assert desk.check(BTC, SIDE_SELL, ONE, position=ONE) == RISK_OK


def test_max_drawdown_when_equity_recovers_then_stays_latched(desk: Desk) -> None:
    long_one_btc(desk)
    desk.market(BTC, 5_800_000)
    assert desk.market(BTC, 7_000_000) == RISK_OK  # the call does not trip again
    assert desk.equity == pytest.approx(10_000.0)
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_MAX_DRAWDOWN


def test_max_drawdown_when_operator_resets_then_orders_pass_and_peak_restarts_at_equity(desk: Desk) -> None:
    long_one_btc(desk)
    desk.market(BTC, 5_800_000)  # -2,000
    assert risk_reset_drawdown(desk.state, desk.fstate) == RISK_OK
    assert desk.state[G_DRAWDOWN_LATCHED] == 0 and desk.peak == -2_000.0
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK
    assert desk.market(BTC, 5_700_000) == RISK_OK  # -3,000: 1,000 below the new peak, not more
    assert desk.market(BTC, 5_699_999) == RISK_MAX_DRAWDOWN


def test_max_drawdown_when_measured_then_from_peak_not_from_zero(desk: Desk) -> None:
    long_one_btc(desk)
    assert desk.market(BTC, 6_050_000) == RISK_OK  # +500: the new peak
    assert desk.market(BTC, 5_950_000) == RISK_OK  # -500: 1,000 below the peak
    assert desk.peak == 500.0
    assert desk.market(BTC, 5_949_999) == RISK_MAX_DRAWDOWN


def test_max_drawdown_when_realized_loss_reported_then_tripped_by_the_execution(desk: Desk) -> None:
    long_one_btc(desk)
    assert desk.fill(BTC, 0, 0, realized=-usd(1_000.01), price=5_899_999) == RISK_MAX_DRAWDOWN
    assert desk.equity == pytest.approx(-1_000.01)
    assert desk.state[symbol_word(BTC, S_POSITION)] == 0


def test_max_drawdown_when_short_loses_then_counted(desk: Desk) -> None:
    assert desk.fill(BTC, -ONE, ONE * BTC_PRICE) == RISK_OK  # short 1 BTC at 60,000
    assert desk.market(BTC, 6_100_000) == RISK_OK  # -1,000
    assert desk.market(BTC, 6_100_001) == RISK_MAX_DRAWDOWN


def test_max_drawdown_when_losses_spread_over_symbols_then_summed(desk: Desk) -> None:
    long_one_btc(desk)
    desk.fill(ETH, 10 * ONE, 10 * ONE * ETH_PRICE, price=ETH_PRICE)  # long 10 ETH at 2,500.00
    assert desk.market(BTC, 5_940_000) == RISK_OK  # BTC -600
    assert desk.market(ETH, 246_000) == RISK_OK  # ETH -400: -1,000 in all, not more than the limit
    assert desk.equity == -1_000.0
    assert desk.market(ETH, 245_999) == RISK_MAX_DRAWDOWN  # ETH -400.10


def test_max_drawdown_when_fees_and_realized_pnl_then_equity_is_realized_plus_unrealized(desk: Desk) -> None:
    # long 1 BTC at 60,000, 0.5 sold at 61,000 with a fee of 3.05: realized 496.95, 0.5 left marked at 61,000
    desk.fill(BTC, HALF, HALF * BTC_PRICE, realized=usd(496.95), price=6_100_000)
    desk.market(BTC, 6_100_000)
    assert desk.equity == pytest.approx(496.95 + 500.0)


def test_max_drawdown_when_position_has_no_mark_yet_then_first_fill_price_is_the_mark() -> None:
    desk = Desk()
    assert desk.fill(BTC, ONE, ONE * BTC_PRICE) == RISK_OK
    assert desk.state[symbol_word(BTC, S_MARK)] == BTC_PRICE and desk.equity == 0.0


def test_execution_when_cancelled_then_nothing_changes(desk: Desk) -> None:
    before = desk.state.copy()
    assert risk_on_execution(desk.limits, desk.state, desk.fstate, BTC, STATUS_CANCELLED, 0, 0, ONE, 1, 1,
                             desk.now) == RISK_OK
    assert (desk.state == before).all()


# --- reject storm ---


def test_reject_storm_when_n_rejections_within_window_then_not_tripped(desk: Desk) -> None:
    assert [desk.reject() for _ in range(10)] == [RISK_OK] * 10
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


def test_reject_storm_when_more_than_n_rejections_within_window_then_tripped(desk: Desk) -> None:
    for _ in range(10):
        desk.reject()
        desk.advance(500 * MS)  # the 11th comes exactly 5,000 ms after the first: within the window
    assert desk.reject() == RISK_REJECT_STORM
    assert desk.state[G_STORM_TRIPS] == 1
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_REJECT_STORM
    assert desk.check(BTC, SIDE_SELL, HALF, position=ONE) == RISK_REJECT_STORM  # reductions too


def test_reject_storm_when_rejections_spread_wider_than_window_then_not_tripped(desk: Desk) -> None:
    for _ in range(30):
        assert desk.reject() == RISK_OK
        desk.advance(500 * MS + 1)  # 11 consecutive rejections always span more than 5,000 ms
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


def test_reject_storm_when_rejected_order_had_unknown_symbol_then_still_counted(desk: Desk) -> None:
    assert [desk.reject(symbol=99) for _ in range(11)][-1] == RISK_REJECT_STORM


def test_reject_storm_when_cooldown_elapsed_then_orders_pass(desk: Desk) -> None:
    for _ in range(11):
        desk.reject()
    desk.advance(30_000 * MS - 1)
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_REJECT_STORM
    desk.advance(1)
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK


def test_reject_storm_when_tripped_then_earlier_rejections_do_not_count_again(desk: Desk) -> None:
    for _ in range(11):
        desk.reject()
    desk.advance(1 * MS)
    assert [desk.reject() for _ in range(10)] == [RISK_OK] * 10  # a fresh window of its own
    assert desk.reject() == RISK_REJECT_STORM  # 11 more: trips again and restarts the cool-down
    assert desk.state[G_STORM_TRIPS] == 2
    desk.advance(30_000 * MS - 1)
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_REJECT_STORM


def test_reject_storm_when_rejections_are_post_only_crosses_then_never_tripped(desk: Desk) -> None:
    assert [desk.reject(reason=REASON_POST_ONLY_WOULD_CROSS) for _ in range(50)] == [RISK_OK] * 50
    desk.fresh()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_OK
    assert [desk.reject() for _ in range(11)][-1] == RISK_REJECT_STORM  # other reasons still count


# --- cancels ---


def test_cancel_when_bucket_empty_then_denied_by_cancel_rate_and_refills_at_its_rate() -> None:
    desk = Desk(RiskConfig(max_cancels_per_second=10.0, cancel_burst=3))
    assert [desk.cancel() for _ in range(4)] == [RISK_OK] * 3 + [RISK_CANCEL_RATE]
    desk.advance(100 * MS - 1)
    assert desk.cancel() == RISK_CANCEL_RATE
    desk.advance(1)  # 100 ms at 10 per second: exactly one token
    assert desk.cancel() == RISK_OK


def test_cancel_when_kill_switch_and_breakers_on_then_still_allowed(desk: Desk) -> None:
    desk.kill = 1
    for _ in range(11):
        desk.reject()
    assert desk.check(BTC, SIDE_BUY, HALF) != RISK_OK
    assert desk.cancel() == RISK_OK


def test_cancel_bucket_when_orders_spend_theirs_then_cancels_are_not_affected() -> None:
    desk = Desk(RiskConfig(max_orders_per_second=1.0, order_burst=1))
    desk.fresh()
    desk.send()
    assert desk.check(BTC, SIDE_BUY, HALF) == RISK_ORDER_RATE
    assert desk.cancel() == RISK_OK


# --- precedence ---


def test_check_when_several_rules_fail_then_first_in_documented_order_is_reported() -> None:
    desk = Desk()  # no market data: stale
    desk.kill = 1
    assert desk.check(BTC, SIDE_BUY, 5 * ONE) == RISK_KILL_SWITCH
    desk.kill = 0
    for _ in range(11):
        desk.reject()
    assert desk.check(BTC, SIDE_BUY, 5 * ONE) == RISK_REJECT_STORM
    desk.advance(30_000 * MS)
    assert desk.check(BTC, SIDE_BUY, 5 * ONE) == RISK_STALE_DATA
    desk.fresh()
    long_one_btc(desk)
    desk.market(BTC, 5_000_000)
    assert desk.check(BTC, SIDE_BUY, 5 * ONE) == RISK_MAX_DRAWDOWN
    risk_reset_drawdown(desk.state, desk.fstate)
    assert desk.check(BTC, SIDE_BUY, 5 * ONE) == RISK_MAX_ORDER_SIZE
    assert desk.check(BTC, SIDE_BUY, ONE, position=ONE) == RISK_MAX_POSITION
