"""Benchmark persistence: execution reports per second into SQLite, and whether the broker ever waits for it.

Usage::

    python bench/persistence.py                    # 200,000 orders + reports, unpaced and paced runs
    python bench/persistence.py --reports 50000 --json-only > persistence.json

Three measurements, each into a fresh database in a temporary directory (WAL, the project's pragmas):

* ``store``: ``TradeStore.write_batch`` alone, batches of ``--batch`` orders with one report each (two thirds
  fills: an executions row, a trades row, the order's state update and the position upsert).
* ``ring, unpaced``: the real path. A producer process plays strategy and broker: it publishes an order on
  strategy.orders and its report on broker.executions as fast as the block rings accept them, timing every
  wait on a full ring (back-pressure: the broker would be stalled that long). This process runs the
  persistence loop of ``procs.persistence`` (peek reports and orders, cut at unread orders, one transaction
  with the ring cursors, release, and sleep ``flush_ms`` after a small batch when little waits), with the
  default ring capacities. Rate = reports committed / (last commit - first publish).
* ``ring, paced at R``: the same with the producer pacing itself at each ``--paced`` rate (10,000 and 50,000
  reports/s by default; the pipeline produces a few hundred at its busiest): the broker should never wait.

The target of issue 5: at least 100,000 rows/s sustained. "Rows" here counts execution reports, the
unit the broker produces; the SQL rows written per report (orders, executions, trades) are reported too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hft.config import Config
from hft.persistence.store import TradeStore
from hft.supervisor import symbol_table
from procs.persistence import BatchWriter
from shm_layout.layout import EXECUTIONS, MD_EVENTS, ORDERS, Pipeline
from shm_layout.records import (
    CMD_NEW,
    EXEC_REPORT,
    LIQUIDITY_TAKER,
    ORDER,
    ORDER_MARKET,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_FILLED,
    STATUS_REJECTED,
    TIF_IOC,
)

SYMBOLS = [("BTCUSDT", 2, 8), ("ETHUSDT", 2, 8)]


def make_records(start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` market orders (ids ``start`` ...) and one report each: two fills, then a rejection, repeating."""
    ids = np.arange(start, start + n, dtype=np.int64)
    orders = np.zeros(n, ORDER)
    orders["order_id"] = ids
    orders["symbol_id"] = ids % 2
    orders["side"] = np.where(ids % 2 == 0, SIDE_BUY, SIDE_SELL)
    orders["order_type"] = ORDER_MARKET
    orders["tif"] = TIF_IOC
    orders["command"] = CMD_NEW
    orders["price"] = 6_000_000 + ids % 100
    orders["size"] = 1_000_000
    orders["ts_exch"] = 1_723_075_200_000_000_000 + ids * 1_000_000
    reports = np.zeros(n, EXEC_REPORT)
    reports["exec_id"] = ids
    reports["order_id"] = ids
    reports["symbol_id"] = orders["symbol_id"]
    reports["side"] = orders["side"]
    filled = ids % 3 != 0
    reports["status"] = np.where(filled, STATUS_FILLED, STATUS_REJECTED)
    reports["price"] = np.where(filled, orders["price"], 0)
    reports["size"] = np.where(filled, orders["size"], 0)
    reports["cum_filled"] = reports["size"]
    reports["cum_notional"] = reports["size"] * reports["price"]
    reports["liquidity"] = np.where(filled, LIQUIDITY_TAKER, 0)
    reports["position"] = np.where(orders["side"] == SIDE_BUY, 1, -1) * reports["size"]
    reports["entry_notional"] = reports["cum_notional"]
    reports["mid_x2"] = 12_000_001
    reports["ts_exch"] = orders["ts_exch"]
    return orders, reports


def bench_store(db: Path, n: int, batch: int) -> dict[str, float]:
    store = TradeStore(db, SYMBOLS, run_id=1)
    started = time.perf_counter()
    for start in range(1, n + 1, batch):
        count = min(batch, n + 1 - start)
        orders, reports = make_records(start, count)
        store.write_batch(orders, reports, {ORDERS: start + count - 1, EXECUTIONS: start + count - 1})
    elapsed = time.perf_counter() - started
    store.close()
    return {"reports": n, "seconds": elapsed, "reports_per_s": n / elapsed}


def producer(instance: str, n: int, paced: float, ready: mp.Event, out: mp.Queue) -> None:
    """Strategy and broker in one: publish orders and reports, timing every wait on a full ring."""
    pipeline = Pipeline.attach(instance)
    orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
    chunk = 64
    waited_ns = 0
    waits = 0
    ready.wait()
    first = time.monotonic_ns()
    interval = 1e9 / paced if paced > 0 else 0.0
    for start in range(1, n + 1, chunk):
        count = min(chunk, n + 1 - start)
        if interval:
            due = first + (start - 1) * interval
            while (ahead := due - time.monotonic_ns()) > 0:
                if ahead > 200_000:
                    time.sleep(ahead / 2e9)  # the broker idles between orders: it does not own a core here
                else:
                    os.sched_yield()
        order_batch, report_batch = make_records(start, count)
        for ring, records in ((orders, order_batch), (executions, report_batch)):
            done = ring.try_publish(records)
            if done < count:
                waits += 1
                blocked = time.monotonic_ns()
                while done < count:
                    os.sched_yield()  # the broker's spin-yield wait: a spinning producer would starve the writer
                    done += ring.try_publish(records[done:])
                waited_ns += time.monotonic_ns() - blocked
    out.put({"first_publish_ns": first, "waited_ns": waited_ns, "waits": waits,
             "elapsed_ns": time.monotonic_ns() - first})
    pipeline.close()


def bench_ring(db: Path, n: int, batch: int, paced: float) -> dict[str, float]:
    config = Config()
    flush_s = config.persistence.flush_ms / 1000.0
    instance = f"pbench{os.getpid()}{secrets.token_hex(3)}"
    capacities = {MD_EVENTS: 1024, ORDERS: config.rings.orders, EXECUTIONS: config.rings.executions}
    pipeline = Pipeline.create(instance, symbol_table(config), capacities)
    ctx = mp.get_context("spawn")
    try:
        orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
        for ring in (orders, executions):
            ring.activate_consumer(ring.consumer_index("persistence"))
        # the broker consumer of strategy.orders and the strategy's of broker.executions are not running here
        orders.deactivate_consumer(orders.consumer_index("broker"))
        executions.deactivate_consumer(executions.consumer_index("strategy"))
        store = TradeStore(db, SYMBOLS, run_id=1)
        writer = BatchWriter(store, orders, executions, batch)  # the persistence process's own pass
        ready, results = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=producer, args=(instance, n, paced, ready, results))
        proc.start()
        time.sleep(1.0)  # the producer imports and attaches
        ready.set()
        committed_reports = 0
        commits = 0
        last_commit = 0
        while committed_reports < n:
            n_orders, n_execs, order_cursor = writer.peek()
            if n_orders == 0 and n_execs == 0:
                time.sleep(flush_s)
                continue
            writer.commit(n_orders, n_execs, order_cursor)
            committed_reports += n_execs
            commits += 1
            last_commit = time.monotonic_ns()
            if writer.should_pause(n_orders, n_execs):
                time.sleep(flush_s)  # as procs/persistence.py
        produced = results.get(timeout=60)
        proc.join(30)
        store.close()
    finally:
        pipeline.unlink()
        pipeline.close()
    seconds = (last_commit - produced["first_publish_ns"]) / 1e9
    return {"reports": n, "seconds": seconds, "reports_per_s": n / seconds, "commits": commits,
            "producer_waits": produced["waits"], "producer_blocked_s": produced["waited_ns"] / 1e9,
            "producer_blocked_share": produced["waited_ns"] / max(produced["elapsed_ns"], 1),
            "offered_per_s": paced or None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1024, help="persistence.batch_size")
    parser.add_argument("--paced", default="10000,50000", help="reports/s of the paced runs, comma-separated")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "batch": args.batch,
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["store"] = bench_store(Path(tmp) / "store.db", args.reports, args.batch)
        results["ring_unpaced"] = bench_ring(Path(tmp) / "ring.db", args.reports, args.batch, 0.0)
        for rate in [float(r) for r in args.paced.split(",") if r.strip()]:
            paced_n = min(args.reports, int(rate * 4))
            results[f"ring_paced_{rate:.0f}"] = bench_ring(Path(tmp) / f"paced{rate:.0f}.db", paced_n, args.batch,
                                                           rate)
    if not args.json_only:
        print(f"{'run':<22}{'reports':>10}{'reports/s':>14}{'broker blocked':>18}")
        for name in [k for k in results if k.startswith(("store", "ring"))]:
            r = results[name]
            blocked = f"{r['producer_blocked_share'] * 100:.1f} %" if "producer_blocked_share" in r else "-"
            print(f"{name:<22}{r['reports']:>10,}{r['reports_per_s']:>14,.0f}{blocked:>18}")
        print("(per report: one executions row (trades is a view of the fills), the order's row with its state)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
