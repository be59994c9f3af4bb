"""``hft sweep``: one backtest per parameter set, on a local process pool or a Dask distributed cluster.

Every task is one ``run_backtest`` of the same config and inputs with its own parameters, written into a
database of its own on the worker (a temporary SQLite file), whose rows come back to the client and are merged
into the sweep's database: workers on other machines need the inputs and the strategy file at the same paths, not
the client's disk. Every parameter set is checked against the strategy's declared parameters before any task
starts (a typo fails the sweep at once); a task that fails at run time is reported with its parameters and the
others carry on.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from hft.backtest.run import BacktestError, run_backtest, with_params
from hft.config import Config, ConfigError, decode_config, encode_config

RESULT_TABLES = ("runs", "orders", "executions", "positions", "performance_metrics", "strategy_snapshots")


@dataclass
class TaskOutcome:
    """One parameter set's result: its run (rows in ``database``, bytes of a SQLite file) or its error."""

    params: dict
    result: dict | None = None
    error: str | None = None
    database: bytes | None = field(default=None, repr=False)
    seconds: float = 0.0


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
            return TaskOutcome(params, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - started)
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        return TaskOutcome(params, result=result.as_dict(), database=db.read_bytes(),
                           seconds=time.perf_counter() - started)


def prepare_database(target: str | os.PathLike[str], symbols: list[tuple[str, int, int]]) -> None:
    """Create the sweep's database with the schema (or check an existing one's version) before any task runs."""
    from hft.persistence.store import TradeStore

    TradeStore(target, symbols, register_run=False).close()


def merge_run(target: str | os.PathLike[str], outcome: TaskOutcome) -> None:
    """Copy one task's run into the sweep's database, in one transaction."""
    with tempfile.NamedTemporaryFile(suffix=".db", delete=False) as handle:
        handle.write(outcome.database or b"")
        source = handle.name
    try:
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("ATTACH DATABASE ? AS task", (source,))
        conn.execute("BEGIN IMMEDIATE")
        for table in RESULT_TABLES:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM task.{table}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE task")
        conn.close()
    finally:
        os.unlink(source)


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
              progress: Callable[[TaskOutcome], None] | None = None) -> SweepResult:
    """Backtest every parameter set of ``sets`` on ``inputs``; merge every run into ``db_path``."""
    if not sets:
        raise ConfigError("the sweep has no parameter sets")
    if not inputs:
        raise BacktestError("no input: give one or more recordings or event files")
    missing = [p for p in inputs if not Path(p).is_file()]
    if missing:
        raise BacktestError(f"no such input: {', '.join(missing)}")
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
    for outcome in stream:
        if outcome.error is None:
            merge_run(db_path, outcome)
            outcome.database = None
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    order = {msgspec.json.encode(params): k for k, params in enumerate(sets)}
    outcomes.sort(key=lambda o: order.get(msgspec.json.encode(o.params), 0))
    return SweepResult(outcomes, str(db_path), time.perf_counter() - started, workers, where)


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

