"""The fill simulator driven directly through its kernels, on crafted books and crafted md.events records.

Every scenario states the reports it expects field by field: the simulator is a pure function of the orders
and the market-data sequence, so each number below is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

from hft.broker.accounting import K_ENTRY_NOTIONAL, K_FEES, K_POSITION, K_REALIZED
from hft.broker.matching import (
    FILL_MODEL_QUEUE,
    FILL_MODEL_TOUCH,
    N_P,
    O_ORDER_ID,
    O_QUEUE_AHEAD,
    O_STATE,
    P_ADVERSE_X100,
    P_CANCEL_SHARE_PPM,
    P_FILL_MODEL,
    P_LATENCY_NS,
    P_MAKER_FEE,
    P_TAKER_FEE,
    P_TOUCH_PROB_PPM,
    ROW_FREE,
    ST_MD_POS,
    ST_N_OUT,
    ST_N_PENDING,
    ST_N_RESTING,
    ST_VENUE_NOW,
    accept,
    arrive_due,
    on_event,
    seed_random,
    shutdown,
)
from hft.broker.state import BrokerBook, new_broker_state
from hft.feed.book import book_clear, book_set_level, book_size_at
from shm_layout.records import (
    CMD_CANCEL,
    CMD_CANCEL_ALL,
    CMD_NEW,
    EV_BBO,
    EV_BOOK_LEVEL,
    EV_BOOK_RESET,
    EV_TRADE,
    EXEC_FIRST,
    FLAG_LAST_IN_FRAME,
    LIQUIDITY_MAKER,
    LIQUIDITY_TAKER,
    MD_EVENT,
    ORDER,
    ORDER_FOK,
    ORDER_IOC,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_POST_ONLY,
    REASON_BAD_ORDER,
    REASON_BAD_PRICE,
    REASON_BAD_SIZE,
    REASON_CANCEL_REQUESTED,
    REASON_EXPIRED,
    REASON_FOK_UNFILLABLE,
    REASON_GTD_EXPIRED,
    REASON_IOC_REMAINDER,
    REASON_NO_LIQUIDITY,
    REASON_NO_MARKET,
    REASON_NONE,
    REASON_OFF_LOT,
    REASON_OFF_TICK,
    REASON_POST_ONLY_WOULD_CROSS,
    REASON_SHUTDOWN,
    REASON_TOO_LATE_TO_CANCEL,
    REASON_TOO_MANY_ORDERS,
    REASON_UNKNOWN_ORDER,
    REASON_UNKNOWN_SYMBOL,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCEL_REJECTED,
    STATUS_CANCELLED,
    STATUS_DONE,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    TIF_FOK,
    TIF_GTC,
    TIF_GTD,
    TIF_IOC,
)

EV_NONE = 0  # not a market-data kind: the broker does nothing with it but let time pass
DEPTH = 32
T0 = 1_000_000  # venue time (ns) of the harness's first event
STEP = 100  # venue time between events unless a test says otherwise
GRID = ((1, 1), (5, 10))  # (tick, lot): symbol 0 trades any integer, symbol 1 only multiples of 5 and 10
TAKER_10BP = 1_000  # fee rates are hundredths of a bp: 1,000 = 10 bps

# the book most scenarios start from (best first)
BIDS = [(10_000, 3), (9_999, 4), (9_997, 10)]
ASKS = [(10_001, 3), (10_002, 4), (10_004, 10)]
MID_X2 = 10_000 + 10_001


class Sim:
    """The simulator's state bundle plus a fake strategy (orders) and a fake feed (md.events), all in one thread.

    The bundle's arrays are attributes (``sim.table``, ``sim.state``, ``sim.prices`` ...) for the assertions."""

    def __init__(
        self,
        *,
        max_orders: int = 16,
        latency_ns: int = 0,
        taker: int = 0,
        maker: int = 0,
        adverse: int = 0,
        cancel_share: float = 1.0,
        fill_model: int = FILL_MODEL_QUEUE,
        touch_probability: float = 0.0,
        n_symbols: int = 2,
        report_capacity: int | None = None,
    ) -> None:
        params = np.zeros(N_P, np.int64)
        params[P_LATENCY_NS] = latency_ns
        params[P_TAKER_FEE] = taker
        params[P_MAKER_FEE] = maker
        params[P_ADVERSE_X100] = adverse
        params[P_CANCEL_SHARE_PPM] = round(cancel_share * 1_000_000)
        params[P_FILL_MODEL] = fill_model
        params[P_TOUCH_PROB_PPM] = round(touch_probability * 1_000_000)
        self.bk: BrokerBook = new_broker_state(n_symbols, np.array(GRID[:n_symbols], np.int64), params, max_orders,
                                               DEPTH, report_capacity)
        b = self.bk
        self.table, self.state, self.out, self.params, self.account = b.table, b.state, b.out, b.params, b.account
        self.prices, self.sizes, self.counts, self.touch = b.prices, b.sizes, b.counts, b.touch
        self.now = T0  # venue time of the last event (the time a new order is decided at)
        self.seq = 0  # position on strategy.orders
        self.next_id = 1

    # --- market ---
    def book(self, bids: list[tuple[int, int]] = BIDS, asks: list[tuple[int, int]] = ASKS, symbol: int = 0) -> None:
        """Set a symbol's book directly (no event: nothing arrives, nothing fills)."""
        p, s, c = self.prices[symbol], self.sizes[symbol], self.counts[symbol]
        book_clear(p, s, c)
        for price, size in bids:
            book_set_level(p, s, c, SIDE_BUY, price, size)
        for price, size in asks:
            book_set_level(p, s, c, SIDE_SELL, price, size)

    def event(self, kind: int, side: int = 0, price: int = 0, size: int = 0, *, symbol: int = 0,
              ts: int | None = None, u: int = 0, flags: int = 0) -> np.ndarray:
        """Apply one md.events record (default: ``STEP`` ns after the last); return the reports it caused."""
        self.now = self.now + STEP if ts is None else ts
        event = np.zeros(1, MD_EVENT)
        event["ts_exch"], event["kind"], event["side"] = self.now, kind, side
        event["price"], event["size"], event["symbol_id"] = price, size, symbol
        event["update_id"], event["flags"] = u, flags
        on_event(self.bk.ref, event[0])
        return self.reports()

    def level(self, side: int, price: int, size: int, **kw: int) -> np.ndarray:
        return self.event(EV_BOOK_LEVEL, side, price, size, **kw)

    def trade(self, aggressor: int, price: int, size: int, **kw: int) -> np.ndarray:
        return self.event(EV_TRADE, aggressor, price, size, **kw)

    def tick(self, **kw: int) -> np.ndarray:
        """An event that changes nothing (a kind the broker ignores): time passes, due orders arrive."""
        return self.event(EV_NONE, **kw)

    def ticker(self, bid: int, bid_size: int, ask: int, ask_size: int, u: int, *, symbol: int = 0,
               ts: int | None = None) -> np.ndarray:
        """A bookTicker as the feed sends it: the bid record, then the ask flagged last in its frame, one venue
        time; return the reports of both."""
        first = self.event(EV_BBO, SIDE_BUY, bid, bid_size, symbol=symbol, ts=ts, u=u)
        second = self.event(EV_BBO, SIDE_SELL, ask, ask_size, symbol=symbol, ts=self.now, u=u,
                            flags=FLAG_LAST_IN_FRAME)
        return np.concatenate([first, second])

    # --- orders ---
    def send(self, side: int = SIDE_BUY, size: int = 1, order_type: int = ORDER_LIMIT, price: int = 0,
             tif: int = TIF_GTC, *, symbol: int = 0, command: int = CMD_NEW, target: int = 0, expire_ts: int = 0,
             strategy: int = 1, ts: int | None = None, cursor: int | None = None) -> int:
        """Hand one order to ``accept`` (decided now, on every event applied so far); return its order id."""
        order = np.zeros(1, ORDER)
        order_id = self.next_id
        self.next_id += 1
        order["order_id"], order["command"], order["symbol_id"], order["strategy_id"] = (
            order_id, command, symbol, strategy)
        order["side"], order["order_type"], order["tif"], order["price"], order["size"] = (
            side, order_type, tif, price, size)
        order["target_order_id"], order["expire_ts"] = target, expire_ts
        order["ts_exch"] = self.now if ts is None else ts
        order["md_cursor"] = self.state[ST_MD_POS] if cursor is None else cursor
        order["ts_init"], order["ts_tick_recv"] = 7, 5
        accept(self.bk.ref, order[0], self.seq)
        self.seq += 1
        return order_id

    def cancel(self, target: int, **kw: int) -> int:
        return self.send(command=CMD_CANCEL, target=target, **kw)

    def cancel_all(self, strategy: int, symbol: int, **kw: int) -> int:
        return self.send(command=CMD_CANCEL_ALL, strategy=strategy, symbol=symbol, **kw)

    def arrive(self) -> np.ndarray:
        """Let every order decided on the events applied so far arrive (the next event is far away)."""
        arrive_due(self.bk.ref, self.state[ST_MD_POS], 1 << 62, 0, 0)
        return self.reports()

    def shutdown(self) -> int:
        return int(shutdown(self.bk.ref))

    # --- inspection ---
    def reports(self) -> np.ndarray:
        """Return (a copy of) the reports waiting in ``out`` and clear it, as publishing would."""
        n = int(self.state[ST_N_OUT])
        reports = self.out[:n].copy()
        self.state[ST_N_OUT] = 0
        return reports

    def row(self, order_id: int) -> int:
        rows = [r for r in range(self.table.shape[0])
                if self.table[r, O_STATE] != ROW_FREE and self.table[r, O_ORDER_ID] == order_id]
        assert len(rows) == 1, f"order {order_id} is not held"
        return rows[0]

    def queue_ahead(self, order_id: int) -> int:
        return int(self.table[self.row(order_id), O_QUEUE_AHEAD])

    def position(self, symbol: int = 0) -> int:
        return int(self.account[symbol, K_POSITION])


def check(report: np.void, **expected: int) -> None:
    """Assert the named fields of one EXEC_REPORT (the dict comparison shows every difference at once)."""
    got = {name: int(report[name]) for name in expected}
    assert got == expected


def statuses(reports: np.ndarray) -> list[tuple[int, int, int]]:
    return [(int(r["order_id"]), int(r["status"]), int(r["reason"])) for r in reports]


@pytest.fixture
def sim() -> Sim:
    s = Sim(taker=TAKER_10BP)
    s.book()
    return s


# ------------------------------------------------------------------------------------------------ market orders


@pytest.mark.parametrize(
    ("side", "size", "notional", "average", "fee"),
    [
        (SIDE_BUY, 3, 3 * 10_001, 10_001, 30),  # one level
        (SIDE_BUY, 8, 3 * 10_001 + 4 * 10_002 + 10_004, 10_002, 80),  # 10,001.875
        (SIDE_BUY, 6, 3 * 10_001 + 3 * 10_002, 10_002, 60),  # 10,001.5: half up
        (SIDE_SELL, 8, 3 * 10_000 + 4 * 9_999 + 9_997, 9_999, 79),  # 9,999.125
        (SIDE_SELL, 6, 3 * 10_000 + 3 * 9_999, 10_000, 59),  # 9,999.5: half up
    ],
)
def test_market_when_walking_levels_then_one_report_at_the_rounded_average_with_taker_fee(
    sim: Sim, side: int, size: int, notional: int, average: int, fee: int
) -> None:
    order_id = sim.send(side, size, ORDER_MARKET)
    assert sim.reports().size == 0  # held until it arrives
    (report,) = sim.arrive()
    check(report, order_id=order_id, status=STATUS_FILLED, reason=REASON_NONE, price=average, size=size, leaves=0,
          cum_filled=size, cum_notional=notional, fee=fee, liquidity=LIQUIDITY_TAKER, position=side * size,
          entry_notional=notional, realized_pnl=-fee, fill_pnl=-fee, closed=0, flags=EXEC_FIRST, mid_x2=MID_X2,
          order_type=ORDER_MARKET, tif=TIF_IOC, side=side, strategy_id=1, symbol_id=0, ts_exch=T0,
          ts_order_init=7, ts_tick_recv=5)
    assert sim.state[ST_N_PENDING] == 0 and sim.state[ST_N_RESTING] == 0
    assert sim.account[0, K_FEES] == fee
    # no market impact: the walk leaves the simulated book as the venue last described it
    assert book_size_at(sim.prices[0], sim.sizes[0], sim.counts[0], -side, 10_001 if side == SIDE_BUY else 10_000) == 3


@pytest.mark.parametrize(
    ("side", "notional", "average"),
    [
        (SIDE_BUY, 3 * 10_001 + 4 * 10_002 + 10 * 10_004, 10_003),
        (SIDE_SELL, 3 * 10_000 + 4 * 9_999 + 10 * 9_997, 9_998),
    ],
)
def test_market_when_book_too_thin_then_partially_filled_then_cancelled_ioc_remainder(
    sim: Sim, side: int, notional: int, average: int
) -> None:
    order_id = sim.send(side, 20, ORDER_MARKET)
    fill, cancel = sim.arrive()
    check(fill, order_id=order_id, status=STATUS_PARTIALLY_FILLED, price=average, size=17, leaves=3, cum_filled=17,
          cum_notional=notional, fee=notional * TAKER_10BP // 1_000_000, liquidity=LIQUIDITY_TAKER,
          position=side * 17, flags=EXEC_FIRST)
    check(cancel, order_id=order_id, status=STATUS_CANCELLED, reason=REASON_IOC_REMAINDER, price=0, size=0,
          leaves=0, cum_filled=17, cum_notional=notional, fee=0, liquidity=0, position=side * 17, flags=0)


@pytest.mark.parametrize("side", [SIDE_BUY, SIDE_SELL])
def test_market_when_opposite_side_empty_then_rejected_no_liquidity(side: int) -> None:
    sim = Sim()
    sim.book(bids=[] if side == SIDE_SELL else BIDS, asks=[] if side == SIDE_BUY else ASKS)
    order_id = sim.send(side, 1, ORDER_MARKET)
    (report,) = sim.arrive()
    check(report, order_id=order_id, status=STATUS_REJECTED, reason=REASON_NO_LIQUIDITY, size=0, leaves=0,
          cum_filled=0, position=0, flags=EXEC_FIRST, mid_x2=0)


@pytest.mark.parametrize(("order_type", "price"), [(ORDER_MARKET, 0), (ORDER_LIMIT, 10_000), (ORDER_POST_ONLY, 9_000)])
def test_order_when_symbol_has_no_book_then_rejected_no_market(order_type: int, price: int) -> None:
    sim = Sim()
    order_id = sim.send(SIDE_BUY, 1, order_type, price)
    (report,) = sim.arrive()
    check(report, order_id=order_id, status=STATUS_REJECTED, reason=REASON_NO_MARKET, leaves=0, flags=EXEC_FIRST)
    assert sim.state[ST_N_PENDING] == 0 and sim.state[ST_N_RESTING] == 0


@pytest.mark.parametrize(("size", "status", "reason"), [(17, STATUS_FILLED, REASON_NONE),
                                                        (18, STATUS_REJECTED, REASON_FOK_UNFILLABLE)])
def test_market_fok_when_visible_book_decides_then_filled_in_full_or_rejected(
    sim: Sim, size: int, status: int, reason: int
) -> None:
    sim.send(SIDE_BUY, size, ORDER_MARKET, tif=TIF_FOK)
    (report,) = sim.arrive()
    filled = size if status == STATUS_FILLED else 0
    check(report, status=status, reason=reason, size=filled, cum_filled=filled, leaves=0, position=filled,
          tif=TIF_FOK)


# ------------------------------------------------------------------------------------------------ limit orders


def test_limit_gtc_when_crossing_partially_then_takes_within_limit_and_rests_the_rest_as_maker(sim: Sim) -> None:
    order_id = sim.send(SIDE_BUY, 10, ORDER_LIMIT, 10_002)
    (take,) = sim.arrive()
    taken = 3 * 10_001 + 4 * 10_002
    check(take, order_id=order_id, status=STATUS_PARTIALLY_FILLED, price=10_002, size=7, leaves=3, cum_filled=7,
          cum_notional=taken, fee=70, liquidity=LIQUIDITY_TAKER, position=7, flags=EXEC_FIRST, tif=TIF_GTC)
    assert sim.state[ST_N_RESTING] == 1 and sim.queue_ahead(order_id) == 0  # nobody bids 10,002
    # the venue removes the levels the strategy took (no report: nothing reaches our bid)
    assert sim.level(SIDE_SELL, 10_001, 0).size == 0
    assert sim.level(SIDE_SELL, 10_002, 0).size == 0
    (maker,) = sim.trade(SIDE_SELL, 10_002, 1)
    check(maker, order_id=order_id, status=STATUS_PARTIALLY_FILLED, price=10_002, size=1, leaves=2, cum_filled=8,
          cum_notional=taken + 10_002, fee=0, liquidity=LIQUIDITY_MAKER, position=8, flags=0)
    (last,) = sim.level(SIDE_SELL, 10_002, 5)  # offered at our price again: it traded with us first
    check(last, order_id=order_id, status=STATUS_FILLED, price=10_002, size=2, leaves=0, cum_filled=10,
          cum_notional=taken + 3 * 10_002, liquidity=LIQUIDITY_MAKER, position=10, flags=0)
    assert sim.state[ST_N_RESTING] == 0


@pytest.mark.parametrize(("side", "price", "ahead"), [(SIDE_BUY, 10_000, 3), (SIDE_BUY, 9_998, 0),
                                                      (SIDE_SELL, 10_004, 10)])
def test_limit_when_not_crossing_then_new_ack_and_rests_at_the_back_of_its_level(
    sim: Sim, side: int, price: int, ahead: int
) -> None:
    order_id = sim.send(side, 5, ORDER_LIMIT, price)
    (ack,) = sim.arrive()
    check(ack, order_id=order_id, status=STATUS_NEW, reason=REASON_NONE, price=0, size=0, leaves=5, cum_filled=0,
          fee=0, liquidity=0, position=0, flags=EXEC_FIRST, order_type=ORDER_LIMIT, tif=TIF_GTC)
    assert sim.state[ST_N_RESTING] == 1 and sim.queue_ahead(order_id) == ahead


@pytest.mark.parametrize(("order_type", "tif"), [(ORDER_IOC, TIF_GTC), (ORDER_IOC, TIF_GTD), (ORDER_LIMIT, TIF_IOC)])
def test_ioc_when_crossing_then_fills_within_limit_and_remainder_cancelled(
    sim: Sim, order_type: int, tif: int
) -> None:
    order_id = sim.send(SIDE_BUY, 10, order_type, 10_002, tif, expire_ts=1)
    fill, cancel = sim.arrive()
    check(fill, order_id=order_id, status=STATUS_PARTIALLY_FILLED, price=10_002, size=7, leaves=3,
          cum_notional=3 * 10_001 + 4 * 10_002, liquidity=LIQUIDITY_TAKER, tif=TIF_IOC, flags=EXEC_FIRST)
    check(cancel, order_id=order_id, status=STATUS_CANCELLED, reason=REASON_IOC_REMAINDER, size=0, leaves=0,
          cum_filled=7, position=7, tif=TIF_IOC, flags=0)
    assert sim.state[ST_N_RESTING] == 0


def test_ioc_when_not_crossing_then_cancelled_without_fill(sim: Sim) -> None:
    order_id = sim.send(SIDE_SELL, 2, ORDER_IOC, 10_001)
    (report,) = sim.arrive()
    check(report, order_id=order_id, status=STATUS_CANCELLED, reason=REASON_IOC_REMAINDER, cum_filled=0, position=0,
          flags=EXEC_FIRST)


@pytest.mark.parametrize(("order_type", "tif"), [(ORDER_FOK, TIF_GTC), (ORDER_LIMIT, TIF_FOK)])
@pytest.mark.parametrize(
    ("size", "price", "status", "reason"),
    [
        (7, 10_002, STATUS_FILLED, REASON_NONE),  # exactly what the book offers up to the limit
        (8, 10_002, STATUS_REJECTED, REASON_FOK_UNFILLABLE),
        (1, 10_000, STATUS_REJECTED, REASON_FOK_UNFILLABLE),  # not crossing at all
    ],
)
def test_fok_when_arriving_then_filled_in_full_or_rejected_with_nothing_filled(
    sim: Sim, order_type: int, tif: int, size: int, price: int, status: int, reason: int
) -> None:
    sim.send(SIDE_BUY, size, order_type, price, tif)
    (report,) = sim.arrive()
    if status == STATUS_FILLED:
        check(report, status=status, reason=reason, size=size, price=10_002, leaves=0, cum_filled=size,
              cum_notional=3 * 10_001 + 4 * 10_002, position=size, tif=TIF_FOK)
    else:
        check(report, status=status, reason=reason, size=0, leaves=0, cum_filled=0, cum_notional=0, position=0,
              realized_pnl=0, fee=0, tif=TIF_FOK)
        assert not sim.account.any()


@pytest.mark.parametrize(
    ("side", "price", "status", "reason"),
    [
        (SIDE_BUY, 10_001, STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS),  # at the ask
        (SIDE_BUY, 10_003, STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS),
        (SIDE_BUY, 10_000, STATUS_NEW, REASON_NONE),
        (SIDE_SELL, 10_000, STATUS_REJECTED, REASON_POST_ONLY_WOULD_CROSS),  # at the bid
        (SIDE_SELL, 10_001, STATUS_NEW, REASON_NONE),
    ],
)
def test_post_only_when_arriving_then_rejected_if_it_would_cross_else_rests(
    sim: Sim, side: int, price: int, status: int, reason: int
) -> None:
    sim.send(side, 2, ORDER_POST_ONLY, price)
    (report,) = sim.arrive()
    check(report, status=status, reason=reason, size=0, cum_filled=0, position=0, flags=EXEC_FIRST,
          leaves=2 if status == STATUS_NEW else 0)
    assert sim.state[ST_N_RESTING] == (1 if status == STATUS_NEW else 0)


@pytest.mark.parametrize("tif", [TIF_IOC, TIF_FOK])
def test_post_only_when_tif_cannot_rest_then_rejected_bad_order_at_once(sim: Sim, tif: int) -> None:
    order_id = sim.send(SIDE_BUY, 1, ORDER_POST_ONLY, 9_000, tif)
    (report,) = sim.reports()
    check(report, order_id=order_id, status=STATUS_REJECTED, reason=REASON_BAD_ORDER, flags=EXEC_FIRST)
    assert sim.state[ST_N_PENDING] == 0


# ------------------------------------------------------------------------------------------------ GTD


def test_gtd_when_event_reaches_expiry_then_expired_at_that_event(sim: Sim) -> None:
    order_id = sim.send(SIDE_BUY, 2, ORDER_LIMIT, 9_000, TIF_GTD, expire_ts=T0 + 250)
    (ack,) = sim.tick(ts=T0 + 100)
    check(ack, order_id=order_id, status=STATUS_NEW, ts_exch=T0, leaves=2)
    assert sim.tick(ts=T0 + 249).size == 0
    (expired,) = sim.tick(ts=T0 + 250)
    check(expired, order_id=order_id, status=STATUS_EXPIRED, reason=REASON_EXPIRED, ts_exch=T0 + 250, leaves=0,
          size=0, flags=0, tif=TIF_GTD)
    assert sim.state[ST_N_RESTING] == 0


@pytest.mark.parametrize(("expire_after", "status", "reason"), [(49, STATUS_REJECTED, REASON_GTD_EXPIRED),
                                                                (50, STATUS_REJECTED, REASON_GTD_EXPIRED),
                                                                (51, STATUS_NEW, REASON_NONE)])
def test_gtd_when_expiry_not_after_arrival_then_rejected_gtd_expired_else_rests(expire_after: int, status: int,
                                                                       reason: int) -> None:
    sim = Sim(latency_ns=50)
    sim.book()
    sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000, TIF_GTD, expire_ts=T0 + expire_after)
    (report,) = sim.arrive()
    check(report, status=status, reason=reason, ts_exch=T0 + 50, flags=EXEC_FIRST)


def test_cancel_when_arriving_after_gtd_expiry_then_order_expired_first_and_cancel_too_late(sim: Sim) -> None:
    order_id = sim.send(SIDE_BUY, 2, ORDER_LIMIT, 9_000, TIF_GTD, expire_ts=T0 + 150)
    sim.tick(ts=T0 + 100)  # the order rests
    cancel_id = sim.cancel(order_id, ts=T0 + 200)  # decided after the expiry, before the next event
    expired, rejected = sim.tick(ts=T0 + 300)
    check(expired, order_id=order_id, status=STATUS_EXPIRED, reason=REASON_EXPIRED)
    check(rejected, order_id=cancel_id, status=STATUS_CANCEL_REJECTED, reason=REASON_TOO_LATE_TO_CANCEL,
          target_order_id=order_id)


# ------------------------------------------------------------------------------------------------ static rejections


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"symbol": 2}, REASON_UNKNOWN_SYMBOL),
        ({"symbol": -1}, REASON_UNKNOWN_SYMBOL),
        ({"side": 0}, REASON_BAD_ORDER),
        ({"side": 2}, REASON_BAD_ORDER),
        ({"size": 0}, REASON_BAD_SIZE),
        ({"size": -5}, REASON_BAD_SIZE),
        ({"symbol": 1, "size": 15, "price": 10_000}, REASON_OFF_LOT),
        ({"symbol": 1, "size": 10, "price": 10_002}, REASON_OFF_TICK),
        ({"price": 0}, REASON_BAD_PRICE),
        ({"price": -10_000}, REASON_BAD_PRICE),
        ({"order_type": 0}, REASON_BAD_ORDER),
        ({"order_type": 6}, REASON_BAD_ORDER),
        ({"tif": 0}, REASON_BAD_ORDER),
        ({"tif": 5}, REASON_BAD_ORDER),
        ({"tif": TIF_GTD, "expire_ts": 0}, REASON_BAD_ORDER),
        ({"command": 9}, REASON_BAD_ORDER),
        ({"command": CMD_CANCEL_ALL, "symbol": 2}, REASON_UNKNOWN_SYMBOL),
    ],
)
def test_order_when_statically_invalid_then_rejected_at_once_with_reason(sim: Sim, fields: dict[str, int],
                                                                          reason: int) -> None:
    order = {"side": SIDE_BUY, "size": 1, "order_type": ORDER_LIMIT, "price": 10_000} | fields
    order_id = sim.send(**order)
    (report,) = sim.reports()
    check(report, order_id=order_id, status=STATUS_REJECTED, reason=reason, size=0, leaves=0, cum_filled=0,
          flags=EXEC_FIRST, symbol_id=order.get("symbol", 0), position=0)
    assert sim.state[ST_N_PENDING] == 0 and sim.arrive().size == 0


@pytest.mark.parametrize(("order_type", "price"), [(ORDER_MARKET, 0), (ORDER_MARKET, 7)])
def test_market_when_price_is_anything_then_accepted(sim: Sim, order_type: int, price: int) -> None:
    sim.send(SIDE_BUY, 1, order_type, price)
    assert sim.reports().size == 0 and sim.state[ST_N_PENDING] == 1


def test_order_when_table_full_then_rejected_too_many_orders_until_a_row_frees() -> None:
    sim = Sim(max_orders=2)
    sim.book()
    first = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000)
    sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_001)
    assert [r["status"] for r in sim.arrive()] == [STATUS_NEW, STATUS_NEW]
    third = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_002)
    (report,) = sim.reports()
    check(report, order_id=third, status=STATUS_REJECTED, reason=REASON_TOO_MANY_ORDERS, flags=EXEC_FIRST)
    cancel = sim.send(command=CMD_CANCEL, target=first)  # also needs a row: the table is still full
    assert statuses(sim.reports()) == [(cancel, STATUS_REJECTED, REASON_TOO_MANY_ORDERS)]
    sim.shutdown()
    sim.reports()
    assert sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_003) > 0 and sim.reports().size == 0


# ------------------------------------------------------------------------------------------------ cancels


def test_cancel_when_order_rests_then_target_cancelled_then_cancel_done_naming_it(sim: Sim) -> None:
    order_id = sim.send(SIDE_BUY, 10, ORDER_LIMIT, 10_002)  # takes 7, rests 3
    sim.arrive()
    cancel_id = sim.cancel(order_id)
    cancelled, done = sim.arrive()
    check(cancelled, order_id=order_id, status=STATUS_CANCELLED, reason=REASON_CANCEL_REQUESTED, size=0, leaves=0,
          cum_filled=7, position=7, flags=0, target_order_id=0)
    # the command's own report: no fill, no side or type, the symbol's account, the order it named
    check(done, order_id=cancel_id, status=STATUS_DONE, reason=REASON_NONE, target_order_id=order_id,
          flags=EXEC_FIRST, size=0, price=0, leaves=0, cum_filled=0, side=0, order_type=0, tif=0, symbol_id=0,
          strategy_id=1, position=7, entry_notional=3 * 10_001 + 4 * 10_002, mid_x2=MID_X2, ts_exch=T0,
          ts_order_init=7, ts_tick_recv=5)
    assert sim.state[ST_N_RESTING] == 0 and sim.state[ST_N_PENDING] == 0


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("never_sent", REASON_UNKNOWN_ORDER),  # an id the ring has not reached: not a race
        ("filled", REASON_TOO_LATE_TO_CANCEL),
        ("cancelled", REASON_TOO_LATE_TO_CANCEL),
        ("rejected", REASON_TOO_LATE_TO_CANCEL),
        ("zero", REASON_UNKNOWN_ORDER),
    ],
)
def test_cancel_when_target_unknown_or_finished_then_cancel_rejected_with_its_own_id_and_the_target(
    sim: Sim, target: str, reason: int
) -> None:
    target_id = {"never_sent": 999, "zero": 0}.get(target, 0)
    if target == "filled":
        target_id = sim.send(SIDE_BUY, 1, ORDER_MARKET)
    elif target == "cancelled":
        target_id = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000)
        sim.arrive()
        sim.cancel(target_id)
    elif target == "rejected":
        target_id = sim.send(SIDE_BUY, 0, ORDER_LIMIT, 9_000)
    sim.arrive()
    position = sim.position()
    cancel_id = sim.cancel(target_id)
    (report,) = sim.arrive()
    check(report, order_id=cancel_id, status=STATUS_CANCEL_REJECTED, reason=reason, target_order_id=target_id,
          flags=EXEC_FIRST, leaves=0, size=0, side=0, order_type=0, position=position)


@pytest.mark.parametrize(("symbol", "cancelled"), [(0, ["a"]), (1, ["b"]), (-1, ["a", "b"])])
def test_cancel_all_when_arriving_then_cancels_the_strategy_orders_in_symbol_sent_before_it(
    sim: Sim, symbol: int, cancelled: list[str]
) -> None:
    sim.book(bids=[(10_000, 10)], asks=[(10_005, 10)], symbol=1)
    ids = {
        "a": sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000, strategy=1, symbol=0),
        "b": sim.send(SIDE_SELL, 10, ORDER_LIMIT, 11_000, strategy=1, symbol=1),
        "c": sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_000, strategy=2, symbol=0),  # another strategy's
    }
    assert [r["status"] for r in sim.arrive()] == [STATUS_NEW] * 3
    cancel_all = sim.cancel_all(strategy=1, symbol=symbol)
    # sent after the cancel: still pending in the table when the cancel arrives, yet untouched
    ids["d"] = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_200, strategy=1, symbol=0)
    names = {order_id: name for name, order_id in ids.items()} | {cancel_all: "cancel_all"}
    reports = sim.arrive()
    got = [(names[int(r["order_id"])], int(r["status"]), int(r["reason"])) for r in reports]
    assert got == [(name, STATUS_CANCELLED, REASON_CANCEL_REQUESTED) for name in cancelled] + [
        ("cancel_all", STATUS_DONE, REASON_NONE), ("d", STATUS_NEW, REASON_NONE)]
    check(reports[len(cancelled)], target_order_id=0, symbol_id=symbol, flags=EXEC_FIRST, side=0, size=0,
          position=sim.position(symbol) if symbol >= 0 else 0, mid_x2=0 if symbol < 0 else (MID_X2, 20_005)[symbol])
    assert sim.state[ST_N_RESTING] == 4 - len(cancelled)


# ------------------------------------------------------------------------------------------------ entry latency


@pytest.mark.parametrize(("second_ts", "arrives_at_event", "price"), [(T0 + 100, 2, 10_004), (T0 + 101, 1, 10_002)])
def test_order_when_latency_then_arrives_before_the_first_event_later_than_its_arrival(
    second_ts: int, arrives_at_event: int, price: int
) -> None:
    sim = Sim(latency_ns=100)
    sim.book()
    order_id = sim.send(SIDE_BUY, 1, ORDER_MARKET)  # decided at T0: arrives at T0 + 100
    events = [(T0 + 50, 10_001), (second_ts, 10_002), (second_ts + 1, 10_003)]
    for k, (ts, ask) in enumerate(events):
        # remove the two best asks one by one, then offer a new best at 10,003
        reports = sim.level(SIDE_SELL, ask, 1 if ask == 10_003 else 0, ts=ts)
        if k != arrives_at_event:
            assert reports.size == 0, f"arrived before event {k}"
            continue
        (report,) = reports  # events up to its arrival time applied first, this one after
        check(report, order_id=order_id, status=STATUS_FILLED, price=price, ts_exch=T0 + 100)


def test_order_when_cursor_ahead_of_the_broker_then_never_meets_earlier_events() -> None:
    sim = Sim()
    sim.book()
    # the strategy had consumed two events the broker has not applied yet; its arrival time is earlier than all
    order_id = sim.send(SIDE_BUY, 1, ORDER_MARKET, cursor=2)
    assert sim.arrive().size == 0
    assert sim.level(SIDE_SELL, 10_001, 0).size == 0
    assert sim.arrive().size == 0
    assert sim.level(SIDE_SELL, 10_002, 0).size == 0
    (report,) = sim.level(SIDE_SELL, 10_003, 1)  # position 2: it arrives before this one
    check(report, order_id=order_id, status=STATUS_FILLED, price=10_004)


def test_order_when_arrival_equals_event_time_then_event_applied_first() -> None:
    sim = Sim(latency_ns=100)
    sim.book()
    sim.send(SIDE_BUY, 1, ORDER_MARKET)
    assert sim.level(SIDE_SELL, 10_001, 0, ts=T0 + 100).size == 0
    (report,) = sim.tick(ts=T0 + 100 + 1)
    check(report, price=10_002, ts_exch=T0 + 100)


def test_book_reset_event_when_applied_then_orders_meet_an_empty_book(sim: Sim) -> None:
    sim.event(EV_BOOK_RESET)
    sim.send(SIDE_BUY, 1, ORDER_MARKET)
    (report,) = sim.tick()
    check(report, status=STATUS_REJECTED, reason=REASON_NO_MARKET)


def _scenario(sim: Sim) -> np.ndarray:
    """Orders and market data interleaved: arrivals between events, queue fills, cancels, expiry, shutdown."""
    sim.book(bids=[(10_000, 10), (9_999, 5)], asks=[(10_002, 10), (10_003, 5)])
    reports = []
    a = sim.send(SIDE_BUY, 4, ORDER_LIMIT, 10_000)
    sim.send(SIDE_SELL, 5, ORDER_LIMIT, 10_002, TIF_GTD, expire_ts=T0 + 900)
    sim.send(SIDE_SELL, 3, ORDER_MARKET)
    for k in range(12):
        if k % 3 == 0:
            reports.append(sim.trade(SIDE_SELL, 10_000, 3 + k))
        elif k % 3 == 1:
            reports.append(sim.level(SIDE_BUY, 10_000, 20 - k))
        else:
            reports.append(sim.trade(SIDE_BUY, 10_002, 2 + k))
        if k == 4:
            sim.cancel(a)
            sim.send(SIDE_BUY, 2, ORDER_LIMIT, 10_001)
    sim.shutdown()
    reports.append(sim.reports())
    return np.concatenate(reports)


@pytest.mark.parametrize("fill_model", [FILL_MODEL_QUEUE, FILL_MODEL_TOUCH])
def test_simulator_when_same_inputs_twice_then_identical_reports(fill_model: int) -> None:
    runs = []
    for _ in range(2):
        seed_random(11)
        sim = Sim(latency_ns=150, taker=TAKER_10BP, maker=-100, adverse=50, cancel_share=0.5, fill_model=fill_model,
                  touch_probability=0.5)
        runs.append(_scenario(sim))
    assert len(runs[0]) >= 6
    assert runs[0].tobytes() == runs[1].tobytes()


# ------------------------------------------------------------------------------------------------ queue position

QUEUE_BIDS = [(10_000, 10), (9_999, 5)]
QUEUE_ASKS = [(10_002, 10), (10_003, 5)]
# (our side, our price with 10 ahead of us, a price through it)
SIDES = [(SIDE_BUY, 10_000, 9_999), (SIDE_SELL, 10_002, 10_003)]


def _resting(sim: Sim, side: int, price: int, size: int = 4) -> int:
    sim.book(QUEUE_BIDS, QUEUE_ASKS)
    order_id = sim.send(side, size, ORDER_LIMIT, price)
    (ack,) = sim.arrive()
    assert ack["status"] == STATUS_NEW
    return order_id


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
@pytest.mark.parametrize(
    ("trades", "fills"),
    [
        ([6, 4, 3, 5], [0, 0, 3, 1]),  # the queue of 10 goes first; exactly 10 traded is not yet us
        ([12], [2]),  # the excess over the queue
        ([10, 4], [0, 4]),
        ([9, 1, 1], [0, 0, 1]),
    ],
)
def test_queue_when_trades_at_our_price_then_fill_only_what_prints_past_the_queue(
    side: int, price: int, through: int, trades: list[int], fills: list[int]
) -> None:
    sim = Sim()
    order_id = _resting(sim, side, price)
    assert sim.queue_ahead(order_id) == 10
    cum = 0
    for traded, filled in zip(trades, fills, strict=True):
        reports = sim.trade(-side, price, traded)
        if filled == 0:
            assert reports.size == 0
            continue
        cum += filled
        (report,) = reports
        check(report, order_id=order_id, status=STATUS_FILLED if cum == 4 else STATUS_PARTIALLY_FILLED,
              price=price, size=filled, leaves=4 - cum, cum_filled=cum, cum_notional=cum * price,
              liquidity=LIQUIDITY_MAKER, position=side * cum, flags=0)
    assert cum == sum(fills)


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
@pytest.mark.parametrize(("share", "ahead"), [(0.0, 10), (0.5, 7), (1.0, 4)])
def test_queue_when_level_shrinks_unexplained_then_share_of_it_was_ahead(
    side: int, price: int, through: int, share: float, ahead: int
) -> None:
    sim = Sim(cancel_share=share)
    order_id = _resting(sim, side, price)
    sim.level(side, price, 20)  # 10 join behind us
    assert sim.queue_ahead(order_id) == 10
    sim.level(side, price, 14)  # 6 cancelled, nothing traded
    assert sim.queue_ahead(order_id) == ahead
    assert sim.trade(-side, price, ahead).size == 0
    (report,) = sim.trade(-side, price, 1)
    check(report, order_id=order_id, size=1, price=price, status=STATUS_PARTIALLY_FILLED)


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
@pytest.mark.parametrize(("levels", "aheads"), [([6, 4], [6, 4]), ([3], [3]), ([7, 6], [6, 6])])
def test_queue_when_level_shrinks_after_trades_then_traded_size_not_counted_twice(
    side: int, price: int, through: int, levels: list[int], aheads: list[int]
) -> None:
    sim = Sim(cancel_share=1.0)
    order_id = _resting(sim, side, price)
    assert sim.trade(-side, price, 4).size == 0
    assert sim.queue_ahead(order_id) == 6
    for size, ahead in zip(levels, aheads, strict=True):
        sim.level(side, price, size)  # the first 4 of the decrease are the trade, the rest cancellations
        assert sim.queue_ahead(order_id) == ahead


def test_queue_when_level_shrinks_below_our_queue_then_queue_is_the_whole_level() -> None:
    sim = Sim(cancel_share=0.0)
    order_id = _resting(sim, SIDE_BUY, 10_000)
    sim.level(SIDE_BUY, 10_000, 2)
    assert sim.queue_ahead(order_id) == 2  # what is ahead of us is part of the visible level
    (report,) = sim.trade(SIDE_SELL, 10_000, 3)
    check(report, size=1)


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
def test_queue_when_level_grows_then_we_keep_our_place(side: int, price: int, through: int) -> None:
    sim = Sim()
    order_id = _resting(sim, side, price)
    sim.level(side, price, 50)
    assert sim.queue_ahead(order_id) == 10
    (report,) = sim.trade(-side, price, 11)
    check(report, size=1, price=price)


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
def test_queue_when_trade_prints_through_our_price_then_filled_in_full_at_our_price(
    side: int, price: int, through: int
) -> None:
    sim = Sim()
    order_id = _resting(sim, side, price)
    (report,) = sim.trade(-side, through, 1)
    check(report, order_id=order_id, status=STATUS_FILLED, price=price, size=4, leaves=0, cum_filled=4,
          liquidity=LIQUIDITY_MAKER, position=side * 4)
    assert sim.state[ST_N_RESTING] == 0


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
def test_queue_when_trade_aggressor_is_on_our_side_then_nothing_happens(side: int, price: int, through: int) -> None:
    sim = Sim()
    order_id = _resting(sim, side, price)
    assert sim.trade(side, price, 100).size == 0
    assert sim.trade(side, through, 100).size == 0
    assert sim.queue_ahead(order_id) == 10


@pytest.mark.parametrize(("side", "price", "through"), SIDES)
@pytest.mark.parametrize(("offset", "fills"), [(0, True), (1, True), (-1, False)])
def test_queue_when_opposite_side_reaches_our_price_then_filled_in_full(
    side: int, price: int, through: int, offset: int, fills: bool
) -> None:
    sim = Sim()
    order_id = _resting(sim, side, price)
    reports = sim.level(-side, price - side * offset, 1)  # 0: at our price, 1: through it, -1: one tick short
    if not fills:
        assert reports.size == 0
        return
    (report,) = reports
    check(report, order_id=order_id, status=STATUS_FILLED, price=price, size=4, liquidity=LIQUIDITY_MAKER)


# ------------------------------------------------------------------------------------------------ touch model


@pytest.mark.parametrize(("price", "traded"), [(10_001, 1), (10_000, 10)])
def test_touch_when_probability_one_at_queue_front_then_trade_at_our_price_fills_in_full(price: int,
                                                                                        traded: int) -> None:
    sim = Sim(fill_model=FILL_MODEL_TOUCH, touch_probability=1.0)
    order_id = _resting(sim, SIDE_BUY, price)  # 10,001: alone at a new level; 10,000: behind 10
    (report,) = sim.trade(SIDE_SELL, price, traded)  # the queue in front is gone
    check(report, order_id=order_id, status=STATUS_FILLED, size=4, price=price, liquidity=LIQUIDITY_MAKER)


def test_touch_when_probability_zero_then_never_at_our_price_but_through_trades_fill() -> None:
    sim = Sim(fill_model=FILL_MODEL_TOUCH, touch_probability=0.0)
    order_id = _resting(sim, SIDE_BUY, 10_001)
    for _ in range(5):
        assert sim.trade(SIDE_SELL, 10_001, 100).size == 0
    (report,) = sim.trade(SIDE_SELL, 10_000, 1)
    check(report, order_id=order_id, status=STATUS_FILLED, size=4, price=10_001)


def _touch_fills(seed: int) -> list[int]:
    seed_random(seed)
    sim = Sim(fill_model=FILL_MODEL_TOUCH, touch_probability=0.5, max_orders=16)
    sim.book(QUEUE_BIDS, QUEUE_ASKS)
    for _ in range(12):
        sim.send(SIDE_BUY, 1, ORDER_LIMIT, 10_001)
    sim.arrive()
    return [int(r["order_id"]) for r in sim.trade(SIDE_SELL, 10_001, 1)]


def test_touch_when_same_seed_then_same_fills() -> None:
    first = _touch_fills(1234)
    assert 0 < len(first) < 12  # a coin per order
    assert _touch_fills(1234) == first


# ------------------------------------------------------------------------------------------------ fees and prices


@pytest.mark.parametrize(("maker", "fee"), [(-200, -20), (0, 0), (150, 15)])
def test_maker_fill_when_fee_rate_set_then_fee_on_notional_and_rebate_raises_pnl(maker: int, fee: int) -> None:
    sim = Sim(maker=maker)
    order_id = _resting(sim, SIDE_BUY, 10_000, size=10)
    (report,) = sim.trade(SIDE_SELL, 9_999, 1)
    check(report, order_id=order_id, status=STATUS_FILLED, price=10_000, size=10, cum_notional=100_000, fee=fee,
          fill_pnl=-fee, realized_pnl=-fee, liquidity=LIQUIDITY_MAKER)
    assert sim.account[0, K_FEES] == fee and sim.account[0, K_REALIZED] == -fee


@pytest.mark.parametrize(
    ("side", "price", "adverse", "fill_price"),
    [
        (SIDE_BUY, 10_000, 150, 10_002),  # 1.5 bps of 10,000 = 1.5: rounded up to 2, paid higher
        (SIDE_SELL, 10_002, 150, 10_000),  # 1.5003: 2, received lower
        (SIDE_BUY, 10_000, 100, 10_001),  # exactly 1
        (SIDE_SELL, 10_002, 100, 10_000),  # 1.0002: 2
        (SIDE_BUY, 10_000, 0, 10_000),
    ],
)
def test_maker_fill_when_adverse_selection_then_price_worse_by_ceil_bps(
    side: int, price: int, adverse: int, fill_price: int
) -> None:
    sim = Sim(adverse=adverse)
    order_id = _resting(sim, side, price, size=3)
    through = price - side
    (report,) = sim.trade(-side, through, 1)
    check(report, order_id=order_id, price=fill_price, size=3, cum_notional=3 * fill_price,
          entry_notional=3 * fill_price, position=3 * side)


# ------------------------------------------------------------------------------------------------ positions and PnL


def test_positions_when_long_then_sell_more_then_flip_short_with_exact_realized_pnl(sim: Sim) -> None:
    buy = sim.send(SIDE_BUY, 5, ORDER_MARKET)  # 3 @ 10,001 + 2 @ 10,002 = 50,007
    (report,) = sim.arrive()
    check(report, order_id=buy, price=10_001, size=5, cum_notional=50_007, fee=50, position=5, entry_notional=50_007,
          realized_pnl=-50, fill_pnl=-50, closed=0, flags=EXEC_FIRST)
    # 3 @ 10,000 + 4 @ 9,999 + 1 @ 9,997 = 79,993: closes 5 (paid 50,007, got 49,998: -9), opens 3 short
    sell = sim.send(SIDE_SELL, 8, ORDER_MARKET)
    (report,) = sim.arrive()
    check(report, order_id=sell, price=9_999, size=8, cum_notional=79_993, fee=79, position=-3,
          entry_notional=2 * 9_999 + 9_997, realized_pnl=-50 - 9 - 79, fill_pnl=-9 - 79, closed=5, flags=EXEC_FIRST)
    cover = sim.send(SIDE_BUY, 3, ORDER_MARKET)  # 30,003 against an entry of 29,995
    (report,) = sim.arrive()
    check(report, order_id=cover, price=10_001, size=3, fee=30, position=0, entry_notional=0,
          realized_pnl=-50 - 88 - 8 - 30, fill_pnl=-8 - 30, closed=3, flags=EXEC_FIRST)
    assert sim.account[0, K_ENTRY_NOTIONAL] == 0 and sim.account[0, K_FEES] == 50 + 79 + 30


def test_positions_when_symbols_differ_then_accounts_are_separate(sim: Sim) -> None:
    sim.book(bids=[(10_000, 100)], asks=[(10_005, 100)], symbol=1)
    sim.send(SIDE_BUY, 2, ORDER_MARKET)
    sim.send(SIDE_SELL, 20, ORDER_MARKET, symbol=1)
    first, second = sim.arrive()
    check(first, symbol_id=0, position=2)
    check(second, symbol_id=1, position=-20, price=10_000, cum_notional=200_000, mid_x2=20_005)
    assert sim.position(0) == 2 and sim.position(1) == -20


# ------------------------------------------------------------------------------------------------ shutdown


def test_shutdown_when_orders_pending_and_resting_then_pending_arrive_and_resting_cancelled() -> None:
    sim = Sim(latency_ns=1_000)
    sim.book()
    resting = sim.send(SIDE_BUY, 2, ORDER_LIMIT, 9_000)
    (ack,) = sim.tick(ts=T0 + 2_000)
    check(ack, order_id=resting, status=STATUS_NEW, ts_exch=T0 + 1_000)
    sim.level(SIDE_SELL, 10_001, 0, ts=T0 + 2_100)  # the final book: best ask 4 @ 10,002
    market = sim.send(SIDE_BUY, 2, ORDER_MARKET)  # both arrive at T0 + 3,100, after the last event
    limit = sim.send(SIDE_BUY, 1, ORDER_LIMIT, 9_500)
    assert sim.shutdown() == 0
    reports = sim.reports()
    assert statuses(reports) == [
        (market, STATUS_FILLED, REASON_NONE),
        (limit, STATUS_NEW, REASON_NONE),
        (resting, STATUS_CANCELLED, REASON_SHUTDOWN),
        (limit, STATUS_CANCELLED, REASON_SHUTDOWN),
    ]
    check(reports[0], price=10_002, size=2, ts_exch=T0 + 3_100)
    check(reports[2], leaves=0, ts_exch=T0 + 2_100, flags=0)
    check(reports[3], leaves=0, ts_exch=T0 + 3_100, flags=0)  # never before its own ack
    assert sim.state[ST_N_PENDING] == 0 and sim.state[ST_N_RESTING] == 0
    assert sim.state[ST_VENUE_NOW] == T0 + 2_100


def test_shutdown_when_reports_overflow_out_then_returns_pending_and_finishes_on_the_next_call() -> None:
    sim = Sim(max_orders=64, report_capacity=100)  # smaller than the default: room for a part of the arrivals
    sim.book()
    for _ in range(64):
        sim.send(SIDE_BUY, 20, ORDER_MARKET)  # 17 visible: a fill and a cancel each
    left = sim.shutdown()
    first = sim.reports()
    assert 0 < left < 64 and len(first) == 2 * (64 - left) <= 100
    assert sim.shutdown() == 0
    reports = np.concatenate([first, sim.reports()])
    assert len(reports) == 128
    assert [int(r["status"]) for r in reports] == [STATUS_PARTIALLY_FILLED, STATUS_CANCELLED] * 64
    assert np.array_equal(reports["order_id"][::2], np.arange(1, 65))


@pytest.mark.parametrize("buffered", [0, 1, 30, 55, 59])
def test_arrivals_when_out_already_holds_reports_then_same_fills(buffered: int) -> None:
    # the loop publishes in batches: how many reports wait in ``out`` must not change what an event does
    sim = Sim(max_orders=4)
    sim.book()
    assert len(sim.out) - 2 * 4 - 8 == 56  # the loop calls on_event with fewer than that in out
    first = sim.send(SIDE_BUY, 3, ORDER_MARKET)
    second = sim.send(SIDE_BUY, 3, ORDER_MARKET)
    sim.state[ST_N_OUT] = buffered
    on_event_reports = sim.level(SIDE_SELL, 10_001, 0)  # both are due before this event
    got = [(int(r["order_id"]), int(r["price"])) for r in on_event_reports[buffered:]]
    assert got == [(first, 10_001), (second, 10_001)]


@pytest.mark.parametrize(("side", "price", "size"), [(0, 9_500, 5), (2, 9_500, 5), (SIDE_SELL, 0, 5),
                                                     (SIDE_SELL, 8_000, -1)])
def test_level_event_when_malformed_then_book_and_resting_orders_untouched(side: int, price: int, size: int) -> None:
    sim = Sim()
    sim.book()
    order_id = sim.send(SIDE_BUY, 2, ORDER_LIMIT, 9_000)
    sim.arrive()
    before = (sim.prices.copy(), sim.sizes.copy(), sim.counts.copy())
    assert sim.level(side, price, size).size == 0
    assert sim.trade(side, price, size).size == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, (sim.prices, sim.sizes, sim.counts), strict=True))
    assert sim.queue_ahead(order_id) == 0 and sim.state[ST_N_RESTING] == 1


def test_queue_when_trades_past_us_are_off_lot_then_partial_fills_are_whole_lots() -> None:
    """A recording's trade sizes need not be multiples of the configured lot; our fills are, so the position they
    leave can always be closed (the old broker filled 0.0221555 BTC and every flatten after it was OFF_LOT)."""
    sim = Sim()
    sim.book([(10_000, 30)], [(10_010, 30)], symbol=1)  # symbol 1: tick 5, lot 10
    order_id = sim.send(SIDE_BUY, 40, ORDER_LIMIT, 10_000, symbol=1)
    (ack,) = sim.arrive()
    assert ack["status"] == STATUS_NEW
    assert sim.trade(SIDE_SELL, 10_000, 37, symbol=1).size == 0  # 30 ahead, 7 past us: less than a lot
    (fill,) = sim.trade(SIDE_SELL, 10_000, 25, symbol=1)  # 25 past us: two lots
    check(fill, order_id=order_id, status=STATUS_PARTIALLY_FILLED, price=10_000, size=20, leaves=20, cum_filled=20,
          liquidity=LIQUIDITY_MAKER, position=20)
    (last,) = sim.trade(SIDE_SELL, 10_000, 99, symbol=1)  # more than we have left: the rest, a whole number of lots
    check(last, order_id=order_id, status=STATUS_FILLED, size=20, leaves=0, cum_filled=40, position=40)


def test_take_when_book_offers_off_lot_size_then_partial_fill_is_whole_lots() -> None:
    """An IOC that empties what the book offers within its limit fills whole lots only, like a maker fill."""
    sim = Sim()
    sim.book([(10_000, 30)], [(10_010, 13), (10_015, 4), (10_020, 50)], symbol=1)  # symbol 1: tick 5, lot 10
    order_id = sim.send(SIDE_BUY, 40, ORDER_LIMIT, 10_015, TIF_IOC, symbol=1)
    fill, expired = sim.arrive()
    check(fill, order_id=order_id, status=STATUS_PARTIALLY_FILLED, size=10, leaves=30, cum_filled=10,
          cum_notional=10 * 10_010, liquidity=LIQUIDITY_TAKER, position=10)
    assert expired["status"] in (STATUS_EXPIRED, STATUS_CANCELLED) and expired["leaves"] == 0
