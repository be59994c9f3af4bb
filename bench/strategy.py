"""Strategy benchmark: tick -> order inside a real strategy process, per signal generator.

Two processes, pinned to different cores. The parent plays feed and broker in one jitted loop: it publishes a
book snapshot (seqlock) and a market-data event stamped ``ts_recv = monotonic_ns()`` at a fixed pace, with the
touch imbalance swinging between bid-heavy and ask-heavy so every generator keeps reversing, and it fills every
order at once (execution reports on the real ring). The child is the real strategy process code
(``procs.strategy.run``: snapshot read -> features -> signal -> risk -> order published), busy-spinning. The
ONNX generator hands each tick from the jitted loop to Python for onnxruntime and back: its figure includes that.

Reported per generator: the strategy's own histograms: ``tick_to_order`` (event stamped by the feed -> order on
the ring: one shared-memory hop plus all strategy work) and ``md_hop`` (the hop alone, the baseline measured in
the same run), p50/p99/p99.9 in µs. ``python bench/strategy.py [--ticks N] [--json-only]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import sys
import time
import uuid
from pathlib import Path

import msgspec
import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hft.config import Config, StrategyConfig
from hft.risk.config import RiskConfig
from hft.supervisor import symbol_table
from shm_layout.atomics import cpu_relax, monotonic_ns
from shm_layout.counters import PSTATE_RUNNING, W_STATE, hist_row, hist_summary
from shm_layout.layout import (
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_STRATEGY,
    STAGE_STRATEGY,
    W_STOP_REQUESTED,
    Pipeline,
)
from shm_layout.records import (
    BOOK_SNAPSHOT,
    BOOK_SYNCED,
    EV_BOOK_LEVEL,
    FLAG_LAST_IN_FRAME,
    STATUS_FILLED,
)
from shm_layout.ring import ring_available, ring_claim, ring_commit, ring_release, ring_tail
from shm_layout.seqlock import seqlock_write

RULES = ["imbalance > 0.3 and spread_bps < 5 -> buy", "imbalance < -0.3 and spread_bps < 5 -> sell"]
GENERATORS = {
    "imbalance": StrategyConfig(min_confidence=0.5, holding_min_ms=100, holding_max_ms=200),
    "rules": StrategyConfig(generator="rules", rules=RULES, rule_holding_ms=100),
    "onnx": StrategyConfig(generator="onnx"),  # the shipped model, run in Python by the strategy process
}


@njit(cache=True)
def feed_and_broker(snap_words, snapshot, md_ctrl, md_slots, order_ctrl, order_slots, exec_ctrl, exec_slots,
                    ticks, gap_ns, position):
    """Publish ``ticks`` book ticks ``gap_ns`` apart (venue clock 1 ms per tick); fill every order at once."""
    md_mask = md_slots.shape[0] - 1
    order_mask = order_slots.shape[0] - 1
    exec_mask = exec_slots.shape[0] - 1
    rows = snapshot.view(np.int64)
    book = snapshot[0]
    next_due = monotonic_ns()
    for tick in range(ticks):
        while monotonic_ns() < next_due:
            available = ring_available(order_ctrl, 0)
            if available > 0:  # broker: fill at the touch, report at once
                tail = ring_tail(order_ctrl, 0)
                seq = ring_claim(exec_ctrl, available)
                while seq < 0:
                    cpu_relax()
                    seq = ring_claim(exec_ctrl, available)
                for k in range(available):
                    order = order_slots[(tail + k) & order_mask]
                    position[0] += order.size * order.side
                    report = exec_slots[(seq + k) & exec_mask]
                    report.exec_id = seq + k + 1
                    report.order_id = order.order_id
                    report.symbol_id = order.symbol_id
                    report.side = order.side
                    report.size = order.size
                    report.price = order.price
                    report.status = STATUS_FILLED
                    report.position = position[0]
                    report.ts_init = monotonic_ns()
                ring_commit(exec_ctrl, seq + available)
                ring_release(order_ctrl, 0, tail + available)
            cpu_relax()
        next_due += gap_ns
        heavy_bid = (tick // 4) % 2 == 0
        book.status = BOOK_SYNCED
        book.bid_price = 6_000_000 + (tick // 4) * 30 * (1 if heavy_bid else -1)
        book.ask_price = book.bid_price + 1
        book.bid_size = 900 if heavy_bid else 100
        book.ask_size = 100 if heavy_bid else 900
        book.mid_x2 = book.bid_price + book.ask_price
        book.spread = 1
        book.imbalance = (book.bid_size - book.ask_size) / (book.bid_size + book.ask_size)
        book.ts_exch = 1_700_000_000_000_000_000 + tick * 1_000_000
        book.ts_recv = monotonic_ns()
        seqlock_write(snap_words, 0, rows)
        seq = ring_claim(md_ctrl, 1)
        event = md_slots[seq & md_mask]
        event.kind = EV_BOOK_LEVEL
        event.flags = FLAG_LAST_IN_FRAME
        event.symbol_id = 0
        event.ts_exch = book.ts_exch
        event.ts_recv = monotonic_ns()
        event.ts_init = event.ts_recv
        ring_commit(md_ctrl, seq + 1)
    return ticks


def strategy_child(config_raw: bytes, core: int) -> None:
    """The real strategy process code, without a supervisor."""
    from procs.common import WorkerContext
    from procs.strategy import run
    from shm_layout.wait import WAIT_NAMES

    os.sched_setaffinity(0, {core})
    config = msgspec.json.decode(config_raw, type=Config)
    pipeline = Pipeline.attach(config.instance)
    ctx = WorkerContext(process=PROC_STRATEGY, name="strategy", config=config, pipeline=pipeline,
                        log=logging.getLogger("bench.strategy"), parent_pid=os.getppid(),
                        wait_strategy=WAIT_NAMES["busy-spin"])
    run(ctx)
    pipeline.close()


def measure(generator: str, ticks: int, gap_ns: int, cores: tuple[int, int]) -> dict[str, dict[str, float]]:
    # risk limits that let every signal through: the benchmark times decisions, not denials (the venue clock
    # advances 1 ms per tick, so the default 20 orders/s would deny most)
    risk = RiskConfig(max_orders_per_second=1_000_000.0, order_burst=100_000, max_drawdown_usd=1e12,
                      max_notional_usd=1e12)
    config = Config(instance=f"stratbench{os.getpid()}x{uuid.uuid4().hex[:6]}", strategy=GENERATORS[generator],
                    risk=risk)
    config = msgspec.structs.replace(config, symbols=config.symbols[:1])
    pipeline = Pipeline.create(config.instance, symbol_table(config), {MD_EVENTS: 4096, ORDERS: 1024,
                                                                       EXECUTIONS: 1024})
    child = None
    try:
        for name in (ORDERS,):
            pipeline.rings[name].deactivate_consumer(1)  # no persistence consumer in this benchmark
        pipeline.rings[EXECUTIONS].deactivate_consumer(1)
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=strategy_child, args=(msgspec.json.encode(config), cores[1]))
        child.start()
        block = pipeline.control.process_words(PROC_STRATEGY)
        deadline = time.monotonic() + 180
        while int(block[W_STATE]) != PSTATE_RUNNING:
            if time.monotonic() > deadline or not child.is_alive():
                raise RuntimeError(f"strategy process did not start (exit code {child.exitcode})")
            time.sleep(0.01)
        snapshot = np.zeros(1, BOOK_SNAPSHOT)
        position = np.zeros(1, np.int64)
        rings = pipeline.rings
        args = (pipeline.snapshots.words, snapshot, rings[MD_EVENTS].ctrl, rings[MD_EVENTS].slots,
                rings[ORDERS].ctrl, rings[ORDERS].slots, rings[EXECUTIONS].ctrl, rings[EXECUTIONS].slots)
        feed_and_broker(*args, 200, gap_ns, position)  # warm-up: compiles, and the strategy warms its paths
        time.sleep(0.2)
        block[:] = np.where(np.arange(block.size) < 8, block, 0)  # fresh counters and histograms
        feed_and_broker(*args, ticks, gap_ns, position)
        time.sleep(0.2)
        result = {
            "tick_to_order": hist_summary(hist_row(block, 0)),
            "md_hop": hist_summary(hist_row(block, 1)),
        }
    finally:
        pipeline.control.words[W_STOP_REQUESTED] = STAGE_STRATEGY
        if child is not None:
            child.join(30)
            if child.is_alive():
                child.kill()
        pipeline.unlink()
        pipeline.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--gap-us", type=float, default=50.0, help="time between ticks")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    cores = (cpus[0], cpus[-1])
    os.sched_setaffinity(0, {cores[0]})
    results = {name: measure(name, args.ticks, int(args.gap_us * 1000), cores) for name in GENERATORS}
    document = {
        "benchmark": "strategy", "ticks": args.ticks, "gap_us": args.gap_us,
        "machine": {"platform": platform.platform(), "cpus": cpus, "pinned": cores, "loadavg": os.getloadavg()},
        "results": results,
    }
    if not args.json_only:
        print(f"strategy benchmark: {args.ticks} ticks every {args.gap_us} µs, feed+broker on core {cores[0]}, "
              f"strategy on core {cores[1]}")
        print(f"{'generator':<12}{'histogram':<16}{'count':>8}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}")
        for name, histograms in results.items():
            for hist, s in histograms.items():
                print(f"{name:<12}{hist:<16}{s['count']:>8}{s['p50'] / 1000:>9.2f}{s['p99'] / 1000:>9.2f}"
                      f"{s['p999'] / 1000:>10.2f}")
        print()
    print(json.dumps(document, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
