"""The pipeline's strategy loop (hft.strategy.engine.strategy_loop) on process-local rings: batches, executions
before market data, resuming after a model hand-off or a raising callback, and timers on a quiet market."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hft.runtime import LOOP_NEED_MODEL, LOOP_TIMEOUT
from hft.strategy.engine import E_CLOCK, E_CLOCK_FALLBACK, new_io
from hft.strategy.testing import StrategyHarness
from shm_layout.records import EV_BBO, EXEC_REPORT, FLAG_LAST_IN_FRAME, MD_EVENT, SIDE_BUY, SIDE_SELL, STATUS_NEW
from shm_layout.ring import POLICY_BLOCK, POLICY_LOSSY, LocalRing, ring_tail, ring_try_publish
from tests.unit.strategy.strategies import probe

PROBE = str(Path(probe.__file__))
P, S = probe.P, probe.S
MS = 1_000_000
BTC = 0


class Loop:
    """A harness whose strategy runs in the real pipeline loop, fed through local md and execution rings."""

    def __init__(self, clock_fallback: bool = False, **kw) -> None:
        self.h = StrategyHarness(PROBE, **kw)
        self.h.runtime.engine.words[E_CLOCK_FALLBACK] = 1 if clock_fallback else 0
        self.md = LocalRing(MD_EVENT, 1024, POLICY_LOSSY, ("strategy",))
        self.execs = LocalRing(EXEC_REPORT, 256, POLICY_BLOCK, ("strategy",))
        self.control = np.zeros(8, np.int64)
        self.io = new_io(self.md, self.execs, 0, 0, self.control, self.h.proc, 3, 9, 0)
        self.entry = self.h.runtime.loop_entry()
        self.ts = 1_700_000_000_000_000_000
        self.update = 100

    def ticker(self, count: int = 1) -> None:
        events = np.zeros(2 * count, MD_EVENT)
        for k in range(count):
            self.ts += MS
            self.update += 1
            for j, (side, price) in enumerate(((SIDE_BUY, 6_000_000), (SIDE_SELL, 6_000_010))):
                event = events[2 * k + j]
                event["kind"], event["side"], event["price"], event["size"] = EV_BBO, side, price, 100_000_000
                event["ts_exch"], event["update_id"], event["ts_recv"] = self.ts, self.update, 1
                event["flags"] = FLAG_LAST_IN_FRAME if side == SIDE_SELL else 0
        assert ring_try_publish(self.md.ctrl, self.md.slots, events, 0, len(events)) == len(events)

    def report(self, order_id: int, status: int) -> None:
        report = np.zeros(1, EXEC_REPORT)
        report["order_id"], report["status"], report["strategy_id"], report["side"] = order_id, status, 1, SIDE_BUY
        assert ring_try_publish(self.execs.ctrl, self.execs.slots, report, 0, 1) == 1

    def run(self, max_run_ns: int = 0) -> int:
        runtime = self.h.runtime
        return self.entry(runtime.engine.ref, self.io.ref, runtime.strategies, max_run_ns)

    def state(self, column: int) -> int:
        return int(self.h.context.ints[BTC, column])


def test_loop_when_batch_arrives_then_every_event_once_and_cursor_released_after_processing() -> None:
    loop = Loop()
    loop.ticker(50)
    assert loop.run() == LOOP_TIMEOUT
    assert loop.state(S.bbos) == 50
    assert ring_tail(loop.md.ctrl, 0) == 100  # released only once processed: lock step and the broker wait on it


def test_loop_when_report_and_ticker_arrive_together_then_report_applied_first() -> None:
    loop = Loop()
    loop.h.context.params[P.action] = probe.QUOTE
    loop.ticker()
    loop.run()
    bid_id = loop.state(S.bid_id)
    loop.h.context.params[P.action] = probe.CANCEL_BID  # needs the ack to have been seen: the order is open
    loop.report(bid_id, STATUS_NEW)
    loop.ticker()
    loop.run()
    assert loop.state(S.last_status) == STATUS_NEW and loop.state(S.result) > 0


def test_loop_when_model_requested_mid_batch_then_hands_over_and_resumes_with_the_next_event() -> None:
    loop = Loop(params={"with_model": True})
    loop.h.context.params[P.action] = probe.MODEL
    loop.ticker(10)
    assert loop.run() == LOOP_NEED_MODEL
    assert loop.state(S.bbos) == 1  # stopped right after the requesting event
    loop.h.runtime.answer_models()
    assert loop.state(S.models) == 1
    assert loop.run() == LOOP_TIMEOUT
    assert loop.state(S.bbos) == 10 and ring_tail(loop.md.ctrl, 0) == 20


def test_loop_when_callback_raises_mid_batch_then_instance_halted_and_batch_consumed() -> None:
    loop = Loop()
    loop.h.context.params[P.action] = probe.RAISE
    loop.ticker(10)
    try:
        loop.run()
        raised = None
    except IndexError as exc:
        raised = exc
    assert raised is not None and loop.h.runtime.fault(raised)
    assert loop.h.halted
    assert loop.run() == LOOP_TIMEOUT  # the rest of the batch is consumed, no callback runs any more
    assert loop.state(S.bbos) == 1 and ring_tail(loop.md.ctrl, 0) == 20


def test_loop_when_market_quiet_then_timers_follow_the_machine_clock_without_running_ahead() -> None:
    loop = Loop(clock_fallback=True, params={"timer_ms": 10.0})
    loop.ticker()
    loop.run()
    start = loop.h.runtime.engine.words[E_CLOCK]
    fired = loop.state(S.timers)
    assert loop.run(200 * MS) == LOOP_TIMEOUT  # 200 ms of wall time with no market data
    ran = loop.h.runtime.engine.words[E_CLOCK] - start
    assert 150 * MS <= ran <= 260 * MS  # the venue clock moved with the wall clock, no faster
    assert 12 <= loop.state(S.timers) - fired <= 26
