"""Benchmark persistence: execution reports per second into SQLite and PostgreSQL, and whether the broker waits.

Usage::

    python bench/persistence.py                    # 200,000 orders + reports, unpaced and paced runs, both stores
    python bench/persistence.py --pg-url postgresql://hft@dbhost/hft   # PostgreSQL measured on that server
    python bench/persistence.py --pg-no-secondary-indexes              # + the proposal measured (below)
    python bench/persistence.py --reports 50000 --json-only > persistence.json

Both stores, side by side in one run (SQLite first, then PostgreSQL), the same measurements on the same batches:

* ``store``: ``write_batch`` alone, batches of ``--batch`` orders with one report each (two thirds fills: an
  executions row, the order's row with its final state, the position upsert, the ring cursors). Where the time
  goes: this process's CPU per report (row building, encoding, the driver) and, on the bench's own PostgreSQL
  server, the server backend's (parsing, heap and index inserts, WAL).
* ``ring, unpaced``: the real path. A producer process plays strategy and broker: it publishes an order on
  strategy.orders and its report on broker.executions as fast as the block rings accept them, timing every
  wait on a full ring (back-pressure: the broker would be stalled that long). This process runs the
  persistence loop of ``procs.persistence`` (peek reports and orders, cut at unread orders, one transaction
  with the ring cursors, release, and sleep ``flush_ms`` after a small batch when little waits), with the
  default ring capacities. Rate = reports committed / (last commit - first publish).
* ``ring, paced at R``: the same with the producer pacing itself at each ``--paced`` rate (10,000 and 50,000
  reports/s by default; the pipeline produces a few hundred at its busiest) for ``--paced-seconds`` (4 s, at most
  ``--reports``): the broker should never wait. A wait means one commit outlasted what the rings hold (4,096
  records: 410 ms at 10,000/s; ``--rings`` sets another capacity), so the longest commit is reported too, with
  the longest gap between two passes of the persistence loop and how far the producer ever fell behind its pace
  (a producer descheduled that long publishes the missed reports in one burst, which a ring may not hold).

SQLite writes into a fresh database in a temporary directory (WAL, the project's pragmas). PostgreSQL
(``PgTradeStore``, psycopg 3) writes into the server of ``--pg-url``, each measurement as a run of its own that is
deleted afterwards; without ``--pg-url`` the bench starts a throwaway server on loopback (``tests/pg.py``'s
``PgServer``, but with PostgreSQL's default durability: fsync, full_page_writes and synchronous_commit on), a
fresh database per measurement, and removes the server at the end. Without the server binaries
(``.ci/postgres.sh`` installs them) the PostgreSQL part is skipped, saying why (``--no-pg`` skips it always).

``--pg-no-secondary-indexes`` (the bench's own server only) also measures the store on a database without the
three secondary indexes every report writes to (orders (run_id, symbol, ts_init), executions (run_id, order_id) and
(run_id, symbol, ts_exch); the primary keys stay): a proposal for ``hft/persistence/pg.py``, not what ships.

Targets: issue 5, at least 100,000 reports/s into SQLite; issue 13, at least 100,000 reports/s into PostgreSQL
and the broker never blocked at 10,000 reports/s (no wait on a full ring at all). "Reports" counts execution
reports, the unit the broker produces; each writes two SQL rows (executions, orders).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/persistence.py` without PYTHONPATH; tests.pg lives in the repository
    sys.path.insert(0, str(REPO))

from hft.config import Config  # noqa: E402
from hft.persistence.store import RUN_TABLES, StoreBase, StoreError, TradeStore, connect_postgres  # noqa: E402
from hft.supervisor import symbol_table  # noqa: E402
from procs.persistence import BatchWriter  # noqa: E402
from shm_layout.layout import EXECUTIONS, MD_EVENTS, ORDERS, Pipeline  # noqa: E402
from shm_layout.records import (  # noqa: E402
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
TARGET_REPORTS_PER_S = 100_000
TARGET_PACED = 10_000  # reports/s at which the broker must never wait on PostgreSQL
# the bench's own server: tests/pg.py's throwaway settings, but durable as PostgreSQL's defaults (a commit waits for
# its WAL on disk) and PostgreSQL's default shared_buffers: what a production server does at the least
DURABLE_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on", "shared_buffers": "'128MB'"}
REPORTED_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level")
SECONDARY_INDEXES = ("idx_orders_symbol_ts", "idx_executions_order", "idx_executions_symbol_ts")  # per report

StoreFactory = Callable[[], StoreBase]


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


def bench_store(open_store: StoreFactory, n: int, batch: int,
                server_cpu: Callable[[StoreBase], float | None] | None = None) -> dict[str, float]:
    """``write_batch`` alone; with ``server_cpu`` (seconds of CPU the store's server side has used) the CPU per
    report on either side too."""
    store = open_store()
    try:
        server_before = server_cpu(store) if server_cpu else None
        cpu_before = time.process_time()
        started = time.perf_counter()
        for start in range(1, n + 1, batch):
            count = min(batch, n + 1 - start)
            orders, reports = make_records(start, count)
            store.write_batch(orders, reports, {ORDERS: start + count - 1, EXECUTIONS: start + count - 1})
        elapsed = time.perf_counter() - started
        client = time.process_time() - cpu_before
        server_after = server_cpu(store) if server_cpu else None
    finally:
        store.close()
    out = {"reports": n, "seconds": elapsed, "reports_per_s": n / elapsed,
           "client_cpu_us_per_report": client / n * 1e6}
    if server_before is not None and server_after is not None:
        out["server_cpu_us_per_report"] = (server_after - server_before) / n * 1e6
    return out


def producer(instance: str, n: int, paced: float, ready: mp.Event, out: mp.Queue) -> None:
    """Strategy and broker in one: publish orders and reports, timing every wait on a full ring."""
    pipeline = Pipeline.attach(instance)
    orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
    chunk = 64
    waited_ns = 0
    waits = 0
    behind_ns = 0  # how far the producer fell behind its pace (descheduled): it then publishes a burst
    for ring, records in zip((orders, executions), make_records(1, 0), strict=True):
        ring.try_publish(records)  # loads the jitted publish now (~0.3 s), not 0.3 s behind the pace at 10,000/s
    ready.wait()
    first = time.monotonic_ns()
    interval = 1e9 / paced if paced > 0 else 0.0
    for start in range(1, n + 1, chunk):
        count = min(chunk, n + 1 - start)
        if interval:
            due = first + (start - 1) * interval
            behind_ns = max(behind_ns, int(time.monotonic_ns() - due))
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
    out.put({"first_publish_ns": first, "waited_ns": waited_ns, "waits": waits, "behind_ns": behind_ns,
             "elapsed_ns": time.monotonic_ns() - first})
    pipeline.close()


def bench_ring(open_store: StoreFactory, n: int, batch: int, paced: float, capacity: int = 0) -> dict[str, float]:
    """The persistence loop against a producer; ``capacity`` (0: the default) of both block rings."""
    config = Config()
    flush_s = config.persistence.flush_ms / 1000.0
    instance = f"pbench{os.getpid()}{secrets.token_hex(3)}"
    capacities = {MD_EVENTS: 1024, ORDERS: capacity or config.rings.orders,
                  EXECUTIONS: capacity or config.rings.executions}
    pipeline = Pipeline.create(instance, symbol_table(config), capacities)
    ctx = mp.get_context("spawn")
    proc = None
    try:
        orders, executions = pipeline.rings[ORDERS], pipeline.rings[EXECUTIONS]
        for ring in (orders, executions):
            ring.activate_consumer(ring.consumer_index("persistence"))
        # the broker consumer of strategy.orders and the strategy's of broker.executions are not running here
        orders.deactivate_consumer(orders.consumer_index("broker"))
        executions.deactivate_consumer(executions.consumer_index("strategy"))
        store = open_store()
        try:
            writer = BatchWriter(store, orders, executions, batch)  # the persistence process's own pass
            ready, results = ctx.Event(), ctx.Queue()
            proc = ctx.Process(target=producer, args=(instance, n, paced, ready, results))
            proc.start()
            time.sleep(1.0)  # the producer imports and attaches
            ready.set()
            committed_reports = 0
            commits = 0
            last_commit = 0
            commit_ns = []  # each write_batch + release: a long one is what stalls the broker
            gap_ns = 0  # the longest time between two peeks (commit, sleep, this process descheduled)
            last_peek = 0
            while committed_reports < n:
                n_orders, n_execs, order_cursor = writer.peek()
                now = time.monotonic_ns()
                gap_ns = max(gap_ns, now - last_peek) if committed_reports else 0
                last_peek = now
                if n_orders == 0 and n_execs == 0:
                    time.sleep(flush_s)
                    continue
                began = time.monotonic_ns()
                writer.commit(n_orders, n_execs, order_cursor)
                last_commit = time.monotonic_ns()
                commit_ns.append(last_commit - began)
                committed_reports += n_execs
                commits += 1
                if writer.should_pause(n_orders, n_execs):
                    time.sleep(flush_s)  # as procs/persistence.py
            produced = results.get(timeout=60)
            proc.join(30)
        finally:
            store.close()
    finally:
        if proc is not None and proc.is_alive():  # a failed write: the producer waits on a full ring forever
            proc.kill()
            proc.join(10)
        pipeline.unlink()
        pipeline.close()
    seconds = (last_commit - produced["first_publish_ns"]) / 1e9
    commit_ms = np.array(commit_ns) / 1e6
    return {"reports": n, "seconds": seconds, "reports_per_s": n / seconds, "commits": commits,
            "ring_capacity": capacities[EXECUTIONS],
            "commit_ms": {"p50": float(np.percentile(commit_ms, 50)), "p99": float(np.percentile(commit_ms, 99)),
                          "max": float(commit_ms.max())},
            "producer_waits": produced["waits"], "producer_blocked_s": produced["waited_ns"] / 1e9,
            "producer_blocked_share": produced["waited_ns"] / max(produced["elapsed_ns"], 1),
            "producer_max_behind_ms": produced["behind_ns"] / 1e6, "persistence_max_gap_ms": gap_ns / 1e6,
            "offered_per_s": paced or None}


# ------------------------------------------------------------------------------------------------ PostgreSQL


class PgTarget:
    """Where the PostgreSQL measurements write: the server of ``url``, or a throwaway server started here.

    On a given server every store is a run of its own, ``(this host, a unique instance, a generation)``, whose rows
    are deleted when the bench is done with it; the bench needs only the rights persistence needs plus DELETE. On
    its own server every store gets a fresh database, and ``close`` stops the server and removes its directory.
    """

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.server = None
        self.run_ids: list[int] = []  # the bench's runs on a given server, deleted at the end
        self.description: dict[str, object] = {}

    def start(self) -> None:
        """Start the throwaway server when no URL was given (raise ``PgUnavailableError`` without binaries)."""
        if self.url is not None:
            return
        from tests.pg import PgServer  # imported here: the producer processes this module spawns do not need it

        class DurableServer(PgServer):
            def _write_settings(self) -> None:
                super()._write_settings()
                with open(self.datadir / "postgresql.auto.conf", "a") as conf:  # the last setting of a name wins
                    conf.write("# bench/persistence.py: durable\n")
                    conf.write("".join(f"{key} = {value}\n" for key, value in DURABLE_SETTINGS.items()))

        self.server = DurableServer.create()
        try:
            self.server.start()
        except BaseException:
            self.server.destroy()
            self.server = None
            raise

    def describe(self) -> dict[str, object]:
        """The server the figures belong to: version and the settings that decide what a commit costs."""
        with connect_postgres(self.url or self.server.url) as db:  # StoreError, one line, when unreachable
            version = db.execute("SHOW server_version").fetchone()[0]
            settings = {name: db.execute(f"SHOW {name}").fetchone()[0] for name in REPORTED_SETTINGS}
        return {"server": "given (--pg-url)" if self.url else "throwaway, on loopback", "version": version,
                "settings": settings}

    def factory(self, label: str, drop_indexes: tuple[str, ...] = ()) -> StoreFactory:
        """A function that opens a ``PgTradeStore`` on a run nobody else writes (on the bench's own server, in a
        database without ``drop_indexes``)."""
        from hft.persistence.pg import PgTradeStore

        if self.server is not None:
            url = self.server.url_for(self.server.create_database(f"pbench_{label}"))
        else:
            url = self.url
            if drop_indexes:
                raise ValueError("indexes are dropped only on the bench's own server, never on --pg-url's")

        def open_store() -> StoreBase:
            instance = f"pbench-{label}-{os.getpid()}-{secrets.token_hex(3)}"
            store = PgTradeStore(url, SYMBOLS, socket.gethostname(), instance, time.time_ns())
            if self.server is None:
                self.run_ids.append(store.run_id)
            for index in drop_indexes:
                store.db.execute(f"DROP INDEX {index}")
            store.db.commit()
            return store

        return open_store

    def server_cpu(self) -> Callable[[StoreBase], float | None] | None:
        """CPU seconds the store's server backend has used, read from /proc: only for the bench's own server
        (a remote backend's process id means nothing here)."""
        if self.server is None:
            return None
        ticks = os.sysconf("SC_CLK_TCK")

        def read(store: StoreBase) -> float | None:
            try:
                with open(f"/proc/{store.db.info.backend_pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:  # the backend has exited
                return None
            return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

        return read

    def close(self) -> None:
        """Delete the bench's runs from a given server; stop and remove the throwaway one."""
        if self.run_ids:
            with connect_postgres(self.url) as db, db.transaction():
                for table in RUN_TABLES:  # the runs row last
                    db.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", (self.run_ids,))
            self.run_ids.clear()
        if self.server is not None:
            self.server.destroy()
            self.server = None


def open_pg_target(args: argparse.Namespace) -> PgTarget | str:
    """The PostgreSQL server to measure, connected and described; or why PostgreSQL is skipped. An unreachable
    ``--pg-url`` raises ``StoreError`` (one line, before anything is measured)."""
    if args.no_pg:
        return "--no-pg"
    try:
        import psycopg  # noqa: F401

        from tests.pg import PgUnavailableError
    except ImportError as exc:
        return f"{exc} (pip install -e '.[dev]')"
    target = PgTarget(args.pg_url)
    try:
        target.start()
        target.description = target.describe()
    except PgUnavailableError as exc:
        return str(exc)
    except BaseException:
        target.close()
        raise
    return target


def bench_postgres(target: PgTarget, args: argparse.Namespace, results: dict[str, object], rates: list[float]) -> None:
    """The PostgreSQL half: the same measurements as SQLite's, into ``results`` under ``pg_*`` keys."""
    results["postgres"] = target.description
    results["pg_store"] = bench_store(target.factory("store"), args.reports, args.batch, target.server_cpu())
    if args.pg_no_secondary_indexes:
        results["pg_store_no_secondary_indexes"] = bench_store(
            target.factory("noidx", drop_indexes=SECONDARY_INDEXES), args.reports, args.batch, target.server_cpu())
    results["pg_ring_unpaced"] = bench_ring(target.factory("ring"), args.reports, args.batch, 0.0, args.rings)
    for rate in rates:
        results[f"pg_ring_paced_{rate:.0f}"] = bench_ring(target.factory(f"paced{rate:.0f}"), paced_reports(args, rate),
                                                          args.batch, rate, args.rings)


def paced_reports(args: argparse.Namespace, rate: float) -> int:
    """Reports of a paced run: ``--paced-seconds`` at ``rate``, at most ``--reports`` unless longer was asked."""
    wanted = int(rate * args.paced_seconds)
    return wanted if args.paced_seconds_given else min(args.reports, wanted)


def targets(results: dict[str, object]) -> dict[str, object]:
    """Each target with what was measured and whether it is met (None: not measured in this run)."""
    out: dict[str, object] = {}
    for store, key in (("sqlite", "store"), ("postgresql", "pg_store")):
        rate = results[key]["reports_per_s"] if key in results else None
        out[f"{store}: >= {TARGET_REPORTS_PER_S:,} reports/s (store)"] = {
            "measured": rate, "met": None if rate is None else rate >= TARGET_REPORTS_PER_S}
    paced = results.get(f"pg_ring_paced_{TARGET_PACED}")
    out[f"postgresql: broker never blocked at {TARGET_PACED:,} reports/s"] = {
        "measured_waits": paced["producer_waits"] if paced else None,
        "met": None if paced is None else paced["producer_waits"] == 0}
    return out


@contextlib.contextmanager
def load_recorded(results: dict[str, object]) -> Iterator[None]:
    """Record the load average before and after: the figures depend on what else the machine runs."""
    before = os.getloadavg()
    yield
    results["machine"]["load_average"] = {"before": [round(v, 2) for v in before],
                                          "after": [round(v, 2) for v in os.getloadavg()]}


def print_table(results: dict[str, object]) -> None:
    print(f"{'run':<30}{'store':<12}{'reports':>10}{'reports/s':>12}{'broker blocked':>16}{'waits':>7}"
          f"{'longest commit':>16}{'cpu us/report (this process, server)':>38}")
    for name, r in results.items():
        if not isinstance(r, dict) or "reports_per_s" not in r:
            continue
        store = "postgresql" if name.startswith("pg_") else "sqlite"
        run = name.removeprefix("pg_")
        blocked = f"{r['producer_blocked_share'] * 100:.1f} %" if "producer_blocked_share" in r else "-"
        waits = f"{r['producer_waits']:,}" if "producer_waits" in r else "-"
        cpu = "-"
        if "client_cpu_us_per_report" in r:
            server = r.get("server_cpu_us_per_report")
            cpu = f"{r['client_cpu_us_per_report']:.1f}, " + (f"{server:.1f}" if server is not None else "-")
        longest = f"{r['commit_ms']['max']:.0f} ms" if "commit_ms" in r else "-"
        print(f"{run:<30}{store:<12}{r['reports']:>10,}{r['reports_per_s']:>12,.0f}{blocked:>16}{waits:>7}"
              f"{longest:>16}{cpu:>38}")
    for name, r in results.items():
        if isinstance(r, dict) and r.get("producer_waits") and r.get("offered_per_s"):
            print(f"{name}: {r['producer_waits']} waits; longest commit {r['commit_ms']['max']:.0f} ms, longest gap "
                  f"between persistence passes {r['persistence_max_gap_ms']:.0f} ms, producer up to "
                  f"{r['producer_max_behind_ms']:.0f} ms behind its pace")
    pg = results.get("postgres", {})
    if "skipped" in pg:
        print(f"postgresql: skipped: {pg['skipped']}")
    elif pg:
        settings = ", ".join(f"{k}={v}" for k, v in pg["settings"].items())
        print(f"postgresql {pg['version']} ({pg['server']}): {settings}")
    print("(per report: one executions row (trades is a view of the fills), the order's row with its state)")
    for name, target in results["targets"].items():
        met = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        measured = {k: v for k, v in target.items() if k != "met"}
        print(f"target {name}: {met} {measured}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1024, help="persistence.batch_size")
    parser.add_argument("--paced", default="10000,50000", help="reports/s of the paced runs, comma-separated")
    parser.add_argument("--paced-seconds", type=float, default=None,
                        help="length of each paced run (default 4 s, capped at --reports)")
    parser.add_argument("--rings", type=int, default=0,
                        help="capacity of strategy.orders and broker.executions (default: [rings] defaults)")
    parser.add_argument("--pg-url", default=None,
                        help="measure PostgreSQL on this server (default: start a throwaway one on loopback)")
    parser.add_argument("--no-pg", action="store_true", help="measure SQLite only")
    parser.add_argument("--pg-no-secondary-indexes", action="store_true",
                        help="also measure PostgreSQL without the secondary indexes written per report (a proposal)")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()
    args.paced_seconds_given = args.paced_seconds is not None
    args.paced_seconds = args.paced_seconds if args.paced_seconds_given else 4.0
    if args.pg_no_secondary_indexes and args.pg_url:
        parser.error("--pg-no-secondary-indexes drops indexes: only on the bench's own server, not with --pg-url")
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "batch": args.batch,
    }
    rates = [float(r) for r in args.paced.split(",") if r.strip()]
    try:
        pg = open_pg_target(args)  # first: a wrong --pg-url fails before minutes of measuring
    except StoreError as exc:
        print(f"persistence.py: {exc}", file=sys.stderr)
        return 2
    try:
        measure(args, results, rates, pg)
    finally:
        if isinstance(pg, PgTarget):
            pg.close()
    results["targets"] = targets(results)
    if not args.json_only:
        print_table(results)
    print(json.dumps(results))
    return 0


def measure(args: argparse.Namespace, results: dict[str, object], rates: list[float], pg: PgTarget | str) -> None:
    """SQLite, then PostgreSQL (``pg``, or why it is skipped)."""
    with load_recorded(results):
        with tempfile.TemporaryDirectory() as tmp:
            results["store"] = bench_store(lambda: TradeStore(Path(tmp) / "store.db", SYMBOLS, run_id=1),
                                           args.reports, args.batch)
            results["ring_unpaced"] = bench_ring(lambda: TradeStore(Path(tmp) / "ring.db", SYMBOLS, run_id=1),
                                                 args.reports, args.batch, 0.0, args.rings)
            for rate in rates:
                db = Path(tmp) / f"paced{rate:.0f}.db"
                results[f"ring_paced_{rate:.0f}"] = bench_ring(lambda db=db: TradeStore(db, SYMBOLS, run_id=1),
                                                               paced_reports(args, rate), args.batch, rate, args.rings)
        if isinstance(pg, str):
            results["postgres"] = {"skipped": pg}
        else:
            bench_postgres(pg, args, results, rates)


if __name__ == "__main__":
    sys.exit(main())
