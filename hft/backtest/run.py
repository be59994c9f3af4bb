"""``hft backtest``: one process, one jitted loop, the pipeline's own feed, strategy, risk and broker code.

``Backtest`` builds what the strategy and broker processes build (``StrategyRuntime`` over an order ring in this
process's memory, the broker's state and parameters as ``procs.broker`` makes them for a lock-step replay), then
drives ``hft.backtest.core`` over chunks of frames: decoded from recordings by the feed engine on the way
(``FrameSource``) or loaded from event files (``hft convert``). Orders, reports, positions and equity samples go to
the same schema as a pipeline run, as one run row whose config says it was a backtest and with which parameters,
so ``hft report`` reads it unchanged: a SQLite file, or a PostgreSQL database (``postgresql://`` URL) where the
run is registered as host (``persistence.host``, else this machine's name), instance ``backtest`` and a
generation of its start time in ns.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field

import msgspec
import numpy as np

from hft.backtest.core import (
    BT_DONE,
    BT_FLUSH,
    BT_NEED_MODEL,
    CHUNK_SIGNATURE,
    FINISH_SIGNATURE,
    N_W,
    S_ENTRY_NOTIONAL,
    S_FEES,
    S_MID_X2,
    S_POSITION,
    S_REALIZED,
    SAMPLE_FIELDS,
    W_BBO_REFUSED,
    W_BBO_TAKEN,
    W_FRAME,
    W_FRAMES,
    W_MD_BASE,
    W_N_ORDERS,
    W_N_REPORTS,
    W_N_SAMPLES,
    W_PHASE,
    W_REPORTS_WRITTEN,
    W_SAMPLE_NS,
    W_SNAP_K,
    W_STRATEGY_REPORT,
    backtest_chunk,
    backtest_finish,
    new_backtest,
)
from hft.backtest.events import (
    ChunkBuffer,
    EventsError,
    FrameSource,
    backtest_config,
    is_event_file,
    read_events,
)
from hft.broker.matching import P_CLOCK_FALLBACK, P_SEED, seed_random
from hft.broker.params import broker_params
from hft.broker.state import new_broker_state
from hft.config import Config
from hft.persistence.metrics import performance
from hft.persistence.store import StoreBase, StoreError, TradeStore, is_postgres
from hft.risk.config import build_limits
from hft.risk.engine import make_risk_state
from hft.strategy.api import DENIAL_NAMES
from hft.strategy.context import Outlet
from hft.strategy.runtime import StrategyRuntime, _entry, plan_instances, risk_reason_counters
from hft.validation import ConfigError, decimal_to_fixed
from shm_layout.records import BOOK_SNAPSHOT, EXEC_REPORT, ORDER, PROCESS_BLOCK
from shm_layout.ring import LocalRing

ORDER_RING = 1 << 16  # orders one frame's callbacks may send before the broker takes them
SINK = 1 << 16  # orders / reports held before they go to the database
SAMPLE_SINK = 4096
BACKTEST_INSTANCE = "backtest"  # the instance of a backtest's run in PostgreSQL
W_KILL = 0  # the backtest's control words (nobody raises the kill switch: it is there for the risk check)
W_ABORT = 1


class BacktestError(RuntimeError):
    """A backtest that cannot run: the message says why (bad input, a database that cannot be written)."""


@dataclass
class BacktestResult:
    """What one backtest did; ``run_id`` is its run in ``db_path``."""

    run_id: int
    db_path: str
    inputs: list[str]
    params: dict
    messages: int = 0
    frames: int = 0
    events: int = 0
    orders: int = 0
    reports: int = 0
    fills: int = 0
    maker_fills: int = 0
    rejects: int = 0
    post_only_rejects: int = 0
    cancel_rejects: int = 0
    samples: int = 0
    denials: dict[str, int] = field(default_factory=dict)
    strategy_faults: int = 0
    feed: dict[str, int] = field(default_factory=dict)
    realized_pnl: float = 0.0
    total_pnl: float = 0.0
    seconds: float = 0.0
    loop_seconds: float = 0.0  # of ``seconds``: the jitted loop (strategy, risk, broker)
    write_seconds: float = 0.0  # of ``seconds``: the database; the rest reads and decodes the inputs
    compile_seconds: float = 0.0

    @property
    def lines_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"lines_per_s": self.lines_per_s}


def with_params(config: Config, params: dict) -> Config:
    """The config with ``params`` laid over the strategy's parameters (``name`` for a single strategy,
    ``instance.name`` for one of several instances); unknown parameters fail when the strategy is loaded."""
    if not params:
        return config
    strategy = config.strategy
    if not strategy.instances:
        return msgspec.structs.replace(config, strategy=msgspec.structs.replace(
            strategy, params={**strategy.params, **params}))
    by_instance: dict[str, dict] = {}
    for key, value in params.items():
        instance, _, name = key.partition(".")
        if not name:
            raise ConfigError(f"parameter {key!r}: with several [[strategy.instances]], name it instance.param")
        by_instance.setdefault(instance, {})[name] = value
    known = {i.name for i in strategy.instances}
    for instance in by_instance:
        if instance not in known:
            raise ConfigError(f"parameter of unknown instance {instance!r} (instances: {', '.join(sorted(known))})")
    instances = [msgspec.structs.replace(i, params={**i.params, **by_instance.get(i.name, {})})
                 for i in strategy.instances]
    return msgspec.structs.replace(config, strategy=msgspec.structs.replace(strategy, instances=instances))


class Backtest:
    """The engine, the broker and the sinks of one backtest (the module docstring); ``run`` drives them."""

    def __init__(self, config: Config, log: logging.Logger, sample_interval_ms: int | None = None) -> None:
        self.config = config = backtest_config(config)
        self.log = log
        started = time.perf_counter()
        symbols = config.symbols
        n = len(symbols)
        self.instances = plan_instances(config, log)
        limits = build_limits(config.risk, [(s.price_decimals, s.size_decimals) for s in symbols])
        risk_state, risk_fstate = make_risk_state(limits)
        self.order_ring = LocalRing(ORDER, ORDER_RING, consumer_names=("broker",))
        self.control = np.zeros(8, np.int64)
        self.proc = np.zeros(PROCESS_BLOCK.itemsize // 8, np.int64)
        outlet = Outlet(self.order_ring.ctrl, self.order_ring.slots, self.control, self.proc, limits, risk_state,
                        risk_fstate, risk_reason_counters(), W_KILL, W_ABORT, 0, no_wait=True)
        self.snapshots = np.zeros(n, BOOK_SNAPSHOT)
        self.snapshots["symbol_id"] = np.arange(n)
        snap_words = self.snapshots.view(np.int64)
        self.runtime = StrategyRuntime(symbols, self.instances, outlet, snap_words, (limits, risk_state, risk_fstate),
                                       self.proc, config.strategy, False, log)
        params = broker_params(config)
        params[P_CLOCK_FALLBACK] = 0
        grid = np.array([[decimal_to_fixed(s.tick_size, s.price_decimals, "tick_size"),
                          decimal_to_fixed(s.lot_size, s.size_decimals, "lot_size")] for s in symbols], np.int64)
        self.book = new_broker_state(n, grid, params, config.broker.max_open_orders)
        seed_random(int(params[P_SEED]))
        self.words = np.zeros(N_W, np.int64)
        interval_ms = config.persistence.metrics_interval_ms if sample_interval_ms is None else sample_interval_ms
        if interval_ms <= 0:
            raise ConfigError("the equity sampling interval must be positive (ms)")
        self.words[W_SAMPLE_NS] = int(interval_ms) * 1_000_000
        self.orders = np.zeros(SINK, ORDER)
        self.reports = np.zeros(SINK, EXEC_REPORT)
        self.samples = np.zeros((SAMPLE_SINK, 1 + SAMPLE_FIELDS * n), np.int64)
        self.bt = new_backtest((self.words, snap_words, self.order_ring.ctrl, self.order_ring.slots, self.orders,
                                self.reports, self.samples))
        self.chunk_entry = _entry(backtest_chunk, CHUNK_SIGNATURE)
        self.finish_entry = _entry(backtest_finish, FINISH_SIGNATURE)
        self.compile_seconds = time.perf_counter() - started
        self.price_scale = np.array([10.0 ** -s.price_decimals for s in symbols])
        self.money_scale = np.array([10.0 ** -(s.price_decimals + s.size_decimals) for s in symbols])
        self.store: StoreBase | None = None
        # what the equity samples need of the fills: venue time and PnL of every closing fill, in order
        self.closing_ts: list[np.ndarray] = []
        self.closing_pnl: list[np.ndarray] = []
        self.equity_ts: list[int] = []
        self.equity: list[float] = []
        self.sample_id = 1
        self.peak = self.max_drawdown = 0.0
        self.loop_seconds = 0.0  # inside the jitted loop (strategy, risk and broker)
        self.write_seconds = 0.0  # writing the database
        self.counts: dict[str, int] = dict.fromkeys(("orders", "reports", "fills", "maker_fills", "rejects",
                                                     "post_only_rejects", "cancel_rejects"), 0)

    # -------------------------------------------------------------------------------------------- driving

    def _chunk(self, chunk: ChunkBuffer) -> None:
        w = self.words
        w[W_FRAME] = 0
        w[W_PHASE] = 0
        w[W_SNAP_K] = 0
        runtime, entry = self.runtime, self.chunk_entry
        eng, team, bk = runtime.engine.ref, runtime.strategies, self.book.ref
        while True:
            started = time.perf_counter()
            try:
                status = entry(self.bt, chunk.ref, eng, team, bk)
                self.loop_seconds += time.perf_counter() - started
            except Exception as exc:  # a strategy's callback raised: halt that instance, the rest carries on
                if not runtime.fault(exc):
                    raise
                continue
            if status == BT_NEED_MODEL:
                runtime.answer_models()
            elif status == BT_FLUSH:
                self._flush()
            elif status == BT_DONE:
                break
        w[W_MD_BASE] += chunk.n_events

    def _finish(self) -> None:
        while self.finish_entry(self.bt, self.book.ref) != BT_DONE:
            self._flush()
        self._flush()

    def _flush(self) -> None:
        """Orders, reports and samples out of the sinks into the database; the reports the strategy has not
        applied yet stay (at the front)."""
        started = time.perf_counter()
        self._write_sinks()
        self.write_seconds += time.perf_counter() - started

    def _write_sinks(self) -> None:
        w = self.words
        n_orders, n_reports, written = int(w[W_N_ORDERS]), int(w[W_N_REPORTS]), int(w[W_REPORTS_WRITTEN])
        orders = self.orders[:n_orders]
        reports = self.reports[written:n_reports]
        if n_orders or len(reports):
            try:
                self.store.write_batch(orders, reports, {})
            except StoreError as exc:
                raise BacktestError(str(exc)) from None
            self._count(orders, reports)
        w[W_N_ORDERS] = 0
        keep = int(w[W_STRATEGY_REPORT])
        left = n_reports - keep
        if keep > 0:
            self.reports[:left] = self.reports[keep:n_reports]
        w[W_N_REPORTS] = left
        w[W_STRATEGY_REPORT] = 0
        w[W_REPORTS_WRITTEN] = left
        n_samples = int(w[W_N_SAMPLES])
        if n_samples:
            self._write_samples(self.samples[:n_samples])
            w[W_N_SAMPLES] = 0

    def _count(self, orders: np.ndarray, reports: np.ndarray) -> None:
        from shm_layout.records import (
            LIQUIDITY_MAKER,
            REASON_POST_ONLY_WOULD_CROSS,
            STATUS_CANCEL_REJECTED,
            STATUS_REJECTED,
        )

        c = self.counts
        c["orders"] += len(orders)
        c["reports"] += len(reports)
        fills = reports["size"] > 0
        c["fills"] += int(np.count_nonzero(fills))
        c["maker_fills"] += int(np.count_nonzero(fills & (reports["liquidity"] == LIQUIDITY_MAKER)))
        rejected = reports["status"] == STATUS_REJECTED
        post_only = rejected & (reports["reason"] == REASON_POST_ONLY_WOULD_CROSS)
        c["post_only_rejects"] += int(np.count_nonzero(post_only))
        c["rejects"] += int(np.count_nonzero(rejected & ~post_only))
        c["cancel_rejects"] += int(np.count_nonzero(reports["status"] == STATUS_CANCEL_REJECTED))
        closing = fills & (reports["closed"] > 0)
        if np.any(closing):
            symbols = reports["symbol_id"][closing]
            self.closing_ts.append(reports["ts_exch"][closing].astype(np.int64))
            self.closing_pnl.append(reports["fill_pnl"][closing] * self.money_scale[symbols])

    def _write_samples(self, rows: np.ndarray) -> None:
        """performance_metrics rows: total, realized, unrealized PnL and fees at each sample; the drawdown and
        the closing-fill statistics so far; Sharpe on the last sample of the run only (it needs the whole curve)."""
        n = len(self.config.symbols)
        closing_ts = np.concatenate(self.closing_ts) if self.closing_ts else np.zeros(0, np.int64)
        closing_pnl = np.concatenate(self.closing_pnl) if self.closing_pnl else np.zeros(0)
        wins = np.cumsum(closing_pnl > 0)
        sums = np.cumsum(closing_pnl)
        batch = []
        for row in rows:
            ts = int(row[0])
            realized = unrealized = fees = 0.0
            for s in range(n):
                base = 1 + s * SAMPLE_FIELDS
                scale = self.money_scale[s]
                realized += row[base + S_REALIZED] * scale
                fees += row[base + S_FEES] * scale
                position, mid_x2 = int(row[base + S_POSITION]), int(row[base + S_MID_X2])
                if position and mid_x2 > 0:
                    value = abs(position) * mid_x2 / 2 - row[base + S_ENTRY_NOTIONAL]
                    unrealized += (value if position > 0 else -value) * scale
            self.equity_ts.append(ts)
            self.equity.append(realized + unrealized)
            count = int(np.searchsorted(closing_ts, ts, side="right"))
            values = {
                "total_pnl": realized + unrealized, "realized_pnl": realized, "unrealized_pnl": unrealized,
                "fees": fees, "sharpe": None,
                "max_drawdown": self._drawdown(realized + unrealized),
                "win_rate": float(wins[count - 1] / count) if count else None,
                "avg_trade_pnl": float(sums[count - 1] / count) if count else None,
                "trade_count": count,
            }
            batch.append((self.sample_id, ts, values))
            self.sample_id += 1
        self.store.write_metrics_many(batch)

    def _drawdown(self, equity: float) -> float:
        """The largest fall from the running peak so far (the peak starts at 0, as ``max_drawdown``'s)."""
        self.peak = max(self.peak, equity)
        self.max_drawdown = max(self.max_drawdown, self.peak - equity)
        return self.max_drawdown

    # -------------------------------------------------------------------------------------------- the run

    def run(self, inputs: list[str], db_path: str, params: dict | None = None) -> BacktestResult:
        """Backtest ``inputs`` (recordings, or event files of ``hft convert``, in time order) into ``db_path``."""
        if not inputs:
            raise BacktestError("no input: give one or more recordings or event files")
        kinds = {is_event_file(p) for p in inputs}
        if len(kinds) > 1:
            raise BacktestError("give recordings or event files, not both")
        run_config = {"kind": "backtest", "inputs": inputs, "params": params or {},
                      "config": msgspec.to_builtins(self.config)}
        try:
            self.store = open_run_store(db_path, [(s.name, s.price_decimals, s.size_decimals)
                                                  for s in self.config.symbols],
                                        json.dumps(run_config), self.config.persistence.host)
        except StoreError as exc:
            raise BacktestError(str(exc)) from None
        where = self.store.where if is_postgres(db_path) else str(db_path)  # a URL without its password
        result = BacktestResult(run_id=self.store.run_id, db_path=where, inputs=list(inputs), params=params or {},
                                compile_seconds=self.compile_seconds)
        started = time.perf_counter()
        try:
            self.runtime.start()
            if kinds == {True}:
                for path in inputs:
                    chunk, meta = read_events(path, self.config)
                    result.messages += int(meta["messages"])
                    for name, value in meta["feed"].items():
                        result.feed[name] = result.feed.get(name, 0) + int(value)
                    self._chunk(chunk)
            else:
                source = FrameSource(self.config, inputs, self.log)
                for chunk in source.chunks():
                    self._chunk(chunk)
                result.messages = source.counts.messages
                result.feed = source.counts.stats
            if result.feed.get("snapshots_applied", 0) == 0:
                raise BacktestError(f"{', '.join(inputs)}: no depth snapshot in the inputs, so no book was ever "
                                    "synced (a recording holds the REST snapshots it started from)")
            self._finish()
            self._final_metrics()
        except BaseException:
            self._discard_run()
            raise
        finally:
            self.store.close()
        result.seconds = time.perf_counter() - started
        result.loop_seconds, result.write_seconds = self.loop_seconds, self.write_seconds
        result.frames = int(self.words[W_FRAMES])
        result.events = int(self.words[W_MD_BASE])
        for name, value in self.counts.items():
            setattr(result, name, value)
        result.samples = self.sample_id - 1
        for context in self.runtime.contexts:
            for code, count in enumerate(context.denials.tolist()):
                if code and count:
                    result.denials[DENIAL_NAMES[code]] = result.denials.get(DENIAL_NAMES[code], 0) + int(count)
        result.strategy_faults = self.runtime.faults
        account = self.book.account
        result.realized_pnl = float(sum(account[s, 2] * self.money_scale[s] for s in range(len(account))))
        result.total_pnl = self.equity[-1] if self.equity else result.realized_pnl
        for line in feed_warnings(result.feed):
            self.log.warning("feed: %s", line)
        result.feed = result.feed | {"bbo_taken": int(self.words[W_BBO_TAKEN]),
                                     "bbo_refused": int(self.words[W_BBO_REFUSED])}
        return result

    def _discard_run(self) -> None:
        """A backtest that failed leaves nothing behind: a partial run would read as a result."""
        try:
            self.store.discard_run()
        except Exception as exc:  # the original error matters more; say this one in the log
            self.log.error("could not remove the failed run %d from the database: %s", self.store.run_id, exc)

    def _final_metrics(self) -> None:
        """Overwrite the last sample with the whole run's performance (Sharpe over the full curve)."""
        if not self.equity:
            return
        closing_pnl = np.concatenate(self.closing_pnl) if self.closing_pnl else np.zeros(0)
        equity = np.array(self.equity)
        last = self.equity[-1]
        try:
            realized, fees = self.store.sample_totals(self.sample_id - 1)
            result = performance(equity, np.array(self.equity_ts, np.int64), closing_pnl, realized, last - realized,
                                 fees)
            self.store.update_sample(self.sample_id - 1, msgspec.structs.asdict(result))
        except StoreError as exc:
            raise BacktestError(str(exc)) from None


def open_run_store(db_path: str, symbols: list[tuple[str, int, int]], config_json: str, host: str = "",
                   instance: str = BACKTEST_INSTANCE) -> StoreBase:
    """A new run in ``db_path``: a SQLite file (a random run id) or a ``postgresql://`` URL (the run registered as
    ``(host or this machine's name, instance, start time in ns)``, its id the database's)."""
    if is_postgres(db_path):
        try:
            from hft.persistence.pg import PgTradeStore
        except ImportError:
            raise StoreError("a postgresql:// database needs the psycopg driver: pip install 'hft[postgres]'") from None
        return PgTradeStore(db_path, symbols, host or socket.gethostname(), instance, time.time_ns(), config_json)
    return TradeStore(db_path, symbols, run_id=secrets.randbits(62) + 1, config_json=config_json)


def run_backtest(config: Config, inputs: list[str], db_path: str, params: dict | None = None,
                 log: logging.Logger | None = None, sample_interval_ms: int | None = None) -> BacktestResult:
    """One backtest of ``config`` (with ``params`` over its strategy parameters) on ``inputs``."""
    log = log or logging.getLogger("hft.backtest")
    try:
        backtest = Backtest(with_params(config, params or {}), log, sample_interval_ms)
        return backtest.run(inputs, db_path, params)
    except EventsError as exc:
        raise BacktestError(str(exc)) from None


FEED_WARNINGS = (
    ("gaps", "gap(s) in the update ids: the book was thrown away and waits for the next snapshot"),
    ("unknown_symbol", "message(s) of symbols the config does not trade: ignored"),
    ("malformed", "malformed message(s): skipped"),
    ("crossed", "crossed book(s): resynced"),
    ("bad_number", "message(s) with a bad number: skipped"),
    ("off_grid", "price(s) off the tick grid: skipped"),
)


def feed_warnings(feed: dict[str, int]) -> list[str]:
    """What the feed counted that a user must know about a backtest's input (every count is also logged)."""
    return [f"{feed[name]:,} {text}" for name, text in FEED_WARNINGS if feed.get(name, 0) > 0]


def format_result(result: BacktestResult) -> str:
    lines = [
        f"backtest run {result.run_id} -> {result.db_path}",
        f"  inputs         {', '.join(result.inputs)}",
        f"  messages       {result.messages:,} in {result.seconds:.2f} s ({result.lines_per_s:,.0f} lines/s; "
        f"compile/load {result.compile_seconds:.1f} s before)",
        f"  time           loop {result.loop_seconds:.3f} s, database {result.write_seconds:.3f} s, reading and "
        f"decoding {max(result.seconds - result.loop_seconds - result.write_seconds, 0.0):.3f} s",
        f"  frames/events  {result.frames:,} / {result.events:,}",
        f"  orders         {result.orders:,}",
        f"  fills          {result.fills:,} ({result.maker_fills:,} maker), rejected {result.rejects:,}, "
        f"post-only would cross {result.post_only_rejects:,}, cancels too late {result.cancel_rejects:,}",
        f"  risk denials   {sum(result.denials.values()):,} {result.denials if result.denials else ''}",
        f"  PnL            realized {result.realized_pnl:+.6f}, total {result.total_pnl:+.6f} "
        f"({result.samples:,} equity samples on the venue clock)",
    ]
    if result.strategy_faults:
        lines.append(f"  strategy       {result.strategy_faults} instance(s) halted: their callbacks raised (see log)")
    if result.params:
        lines.append(f"  params         {json.dumps(result.params)}")
    for line in feed_warnings(result.feed):
        lines.append(f"  feed           {line}")
    return "\n".join(lines)


