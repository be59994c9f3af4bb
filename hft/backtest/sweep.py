"""``hft sweep``: one backtest per parameter set, on a local process pool or a Dask distributed cluster.

Every task is one ``run_backtest`` of the same config and inputs with its own parameters, written into a
database of its own on the worker (a temporary SQLite file), whose rows come back to the client and are merged
into the sweep's database: workers on other machines need the inputs and the strategy file at the same paths, not
the client's disk. The sweep's database is a SQLite file or a PostgreSQL database (``postgresql://`` URL): there
each run is registered as the host that ran it (``persistence.host``, else the worker's machine name), the
sweep's name as instance (``--name``, default ``sweep``) and a generation of the time it was merged in ns, so the
sweeps of many machines land in one place, apart.

Every parameter set is checked against the strategy's declared parameters before any task starts (a typo fails
the sweep at once); a task that fails at run time is reported with its parameters and the others carry on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from hft.backtest.run import BacktestError, open_run_store, run_backtest, with_params
from hft.config import Config, ConfigError, decode_config, encode_config
from hft.persistence.store import SCHEMA_VERSION, StoreError, connect_postgres, is_postgres

RESULT_TABLES = ("runs", "orders", "executions", "positions", "performance_metrics", "strategy_snapshots")


@dataclass
class TaskOutcome:
    """One parameter set's result: its run (rows in ``database``, bytes of a SQLite file) or its error; ``host``
    is the machine that ran it."""

    params: dict
    result: dict | None = None
    error: str | None = None
    database: bytes | None = field(default=None, repr=False)
    seconds: float = 0.0
    host: str = ""


@dataclass
class SweepResult:
    outcomes: list[TaskOutcome]
    db_path: str
    seconds: float
    workers: int
    where: str

    @property
    def failed(self) -> list[TaskOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def grid(axes: dict[str, list]) -> list[dict]:
    """Every combination of the axes' values, in order (the last axis varies fastest)."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(axes[n] for n in names))]


def check_params(config: Config, sets: list[dict]) -> None:
    """Raise ``StrategyError``/``ConfigError`` naming the first parameter set the strategy would refuse."""
    from hft.strategy.runtime import plan_instances

    for params in sets:
        try:
            plan_instances(with_params(config, params), compile=False)
        except Exception as exc:
            raise type(exc)(f"parameter set {params}: {exc}") from None


def run_task(config_raw: bytes, inputs: list[str], params: dict, sample_interval_ms: int | None) -> TaskOutcome:
    """One backtest in a worker process (local or Dask): its run in a temporary database, returned as bytes."""
    logging.basicConfig(level=logging.WARNING)
    config = decode_config(config_raw)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hft-sweep-") as tmp:
        db = Path(tmp) / "run.db"
        try:
            result = run_backtest(config, inputs, str(db), params, logging.getLogger("hft.sweep"), sample_interval_ms)
        except Exception as exc:  # reported with its parameters; the other tasks carry on
            return TaskOutcome(params, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - started,
                               host=socket.gethostname())
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        return TaskOutcome(params, result=result.as_dict(), database=db.read_bytes(),
                           seconds=time.perf_counter() - started, host=socket.gethostname())


def prepare_database(target: str | os.PathLike[str], symbols: list[tuple[str, int, int]]) -> None:
    """Create the sweep's database with the schema (or check an existing one's version) before any task runs; a
    PostgreSQL server is reached and its schema version checked (the first merged run creates the schema)."""
    if is_postgres(target):
        check_postgres(str(target))
        return
    from hft.persistence.store import TradeStore

    TradeStore(target, symbols, register_run=False).close()


def check_postgres(url: str) -> None:
    """Raise ``StoreError`` (one line, no password) when ``url`` cannot be reached or holds another schema version."""
    from hft.persistence.pg import redacted

    db = connect_postgres(url)
    try:
        exists = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        versions = {row[0] for row in db.execute("SELECT version FROM schema_version")} if exists else set()
    except Exception as exc:  # psycopg.Error: the driver is imported only for a URL
        raise StoreError(f"cannot read {redacted(url)}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        db.close()
    if versions and SCHEMA_VERSION not in versions:
        raise StoreError(f"{redacted(url)} has schema version {max(versions)}, this build writes {SCHEMA_VERSION}: "
                         "use another database")


def merge_run(target: str | os.PathLike[str], outcome: TaskOutcome, name: str = "sweep", host: str = "") -> int:
    """Copy one task's run into the sweep's database, in one transaction; return its run id there (a PostgreSQL
    database gives it a new one: the run is registered as ``(host or the task's machine, name, now in ns)``)."""
    with tempfile.NamedTemporaryFile(suffix=".db", delete=False) as handle:
        handle.write(outcome.database or b"")
        source = handle.name
    try:
        if is_postgres(target):
            return _merge_into_postgres(str(target), source, name, host or outcome.host or socket.gethostname())
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("ATTACH DATABASE ? AS task", (source,))
        conn.execute("BEGIN IMMEDIATE")
        for table in RESULT_TABLES:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM task.{table}")
        conn.execute("COMMIT")
        (run_id,) = conn.execute("SELECT run_id FROM task.runs").fetchone()
        conn.execute("DETACH DATABASE task")
        conn.close()
        return int(run_id)
    finally:
        os.unlink(source)


MERGE_CHUNK = 10_000  # rows read from the task's database and sent to the server at a time


def _merge_into_postgres(url: str, source: str, instance: str, host: str) -> int:
    """The task's run (the one run of the SQLite file ``source``) as a new run of the PostgreSQL database."""
    task = sqlite3.connect(source)
    try:
        (task_run, started_at, config_json) = task.execute("SELECT run_id, started_at, config FROM runs").fetchone()
        store = open_run_store(url, [], config_json, host, instance)
        try:
            def rows() -> Iterator[tuple[str, list[tuple]]]:
                for table in RESULT_TABLES:
                    if table == "runs":  # the store registered its own
                        continue
                    cursor = task.execute(f"SELECT * FROM {table} WHERE run_id = ?", (task_run,))
                    while chunk := cursor.fetchmany(MERGE_CHUNK):
                        yield table, chunk

            store.import_rows(rows(), started_at)
        except BaseException:
            with contextlib.suppress(StoreError):  # the merge's own error says more
                store.discard_run()  # a half-merged run must not read as a result
            raise
        finally:
            store.close()
        return store.run_id
    finally:
        task.close()


def _local(config_raw: bytes, inputs: list[str], sets: list[dict], workers: int,
           sample_interval_ms: int | None) -> Iterator[TaskOutcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_task, config_raw, inputs, params, sample_interval_ms): params for params in sets}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # the worker process itself died
                yield TaskOutcome(futures[future], error=f"worker failed: {type(exc).__name__}: {exc}")


def _dask(scheduler: str, config_raw: bytes, inputs: list[str], sets: list[dict],
          sample_interval_ms: int | None) -> tuple[Iterator[TaskOutcome], int]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    workers = max(1, len(client.scheduler_info().get("workers", {})))

    def outcomes() -> Iterator[TaskOutcome]:
        try:
            futures = {client.submit(run_task, config_raw, inputs, params, sample_interval_ms, pure=False): i
                       for i, params in enumerate(sets)}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died or the task could not be unpickled there
                    yield TaskOutcome(sets[futures[future]], error=f"worker failed: {type(exc).__name__}: {exc}")
        finally:
            client.close()

    return outcomes(), workers


def run_sweep(config: Config, inputs: list[str], sets: list[dict], db_path: str, workers: int | None = None,
              scheduler: str | None = None, sample_interval_ms: int | None = None,
              progress: Callable[[TaskOutcome], None] | None = None, name: str = "sweep") -> SweepResult:
    """Backtest every parameter set of ``sets`` on ``inputs``; merge every run into ``db_path`` (over PostgreSQL
    under the instance ``name``)."""
    if not sets:
        raise ConfigError("the sweep has no parameter sets")
    if not inputs:
        raise BacktestError("no input: give one or more recordings or event files")
    missing = [p for p in inputs if not Path(p).is_file()]
    if missing:
        raise BacktestError(f"no such input: {', '.join(missing)}")
    if not name.strip():
        raise ConfigError("the sweep's name (--name) must not be empty")
    check_params(config, sets)
    inputs = [os.path.abspath(p) for p in inputs]
    config_raw = encode_config(config)
    prepare_database(db_path, [(s.name, s.price_decimals, s.size_decimals) for s in config.symbols])
    started = time.perf_counter()
    if scheduler:
        stream, workers = _dask(scheduler, config_raw, inputs, sets, sample_interval_ms)
        where = f"Dask {scheduler}"
    else:
        workers = max(1, min(workers or os.cpu_count() or 1, len(sets)))
        stream = _local(config_raw, inputs, sets, workers, sample_interval_ms)
        where = "local pool"
    outcomes = []
    db_name = str(db_path)
    if is_postgres(db_path):
        from hft.persistence.pg import redacted

        db_name = redacted(db_path)
    for outcome in stream:
        if outcome.error is None:  # the run's id and database are the sweep's now, not the task's temporary file's
            run_id = merge_run(db_path, outcome, name, config.persistence.host)
            outcome.result = {**outcome.result, "run_id": run_id, "db_path": db_name}
            outcome.database = None
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    order = {msgspec.json.encode(params): k for k, params in enumerate(sets)}
    outcomes.sort(key=lambda o: order.get(msgspec.json.encode(o.params), 0))
    return SweepResult(outcomes, db_name, time.perf_counter() - started, workers, where)


def format_sweep(sweep: SweepResult) -> str:
    lines = [f"sweep of {len(sweep.outcomes)} parameter sets on {sweep.where} ({sweep.workers} workers) in "
             f"{sweep.seconds:.1f} s -> {sweep.db_path}"]
    header = f"{'run':>20}  {'total PnL':>12}  {'fills':>6}  {'orders':>7}  {'seconds':>7}  params"
    lines.append(header)
    for outcome in sweep.outcomes:
        if outcome.error is not None:
            lines.append(f"{'FAILED':>20}  {'':>12}  {'':>6}  {'':>7}  {outcome.seconds:>7.1f}  "
                         f"{msgspec.json.encode(outcome.params).decode()}: {outcome.error}")
            continue
        r = outcome.result
        lines.append(f"{r['run_id']:>20}  {r['total_pnl']:>+12.4f}  {r['fills']:>6}  {r['orders']:>7}  "
                     f"{outcome.seconds:>7.1f}  {msgspec.json.encode(outcome.params).decode()}")
    if sweep.failed:
        lines.append(f"{len(sweep.failed)} of {len(sweep.outcomes)} parameter sets failed (their runs are not in "
                     "the database); the others completed")
    lines.append(f"compare them: hft report {sweep.db_path} --compare RUN RUN ...")
    return "\n".join(lines)

