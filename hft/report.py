"""``hft report``: one run's performance, per-symbol table and equity plot, read from either store; over
PostgreSQL, where pipelines of many hosts meet, an overview per host, per instance, per strategy and in total.

The database is opened READ-ONLY (SQLite ``mode=ro``; PostgreSQL a read-only REPEATABLE READ transaction, one
snapshot for the whole report): a report can run beside live pipelines and never changes a byte. Every query is
written once, in the stores' common SQL with ``?`` placeholders, and runs through a ``Reader`` of either store
(as ``summarize_run`` does).

The figures are computed here with ``hft.persistence.metrics`` from the fills and positions, not copied from
the last ``performance_metrics`` row, so a report of a run whose persistence process died between samples is
still complete; when the last sample disagrees with the fills, the report says so.

Equity curve: the run's ``performance_metrics`` samples (total PnL, marked to mid) when it has any;
otherwise the cumulative realized PnL of its fills, which cannot see the drawdown of an open position (the
report notes it). Money is in the quote currency (USDT for the default symbols).
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np

from hft.persistence.metrics import Performance, drawdown_series, performance, trade_stats
from hft.persistence.store import SCHEMA_VERSION, StoreError, connect_postgres, is_postgres

EQUITY_FROM_METRICS = "performance_metrics"
EQUITY_FROM_TRADES = "trades"
# Tables this reader needs: a database without them was not written by ``hft run`` at this schema.
REQUIRED_TABLES = frozenset({"schema_version", "runs", "orders", "trades", "positions", "performance_metrics"})
# The last metrics sample and the fills may differ by float rounding of many small fills, not more.
_AGREEMENT_TOLERANCE = 1e-6


class ReportError(RuntimeError):
    """The report cannot be made (no database, not an hft database, unknown run): the message says what to do."""


class SymbolSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol's fills in a run; ``maker_share`` is the fraction of fills that rested (None: no fills)."""

    symbol: str
    fills: int
    buys: int
    sells: int
    volume: float
    notional: float
    maker_share: float | None
    realized_pnl: float
    unrealized_pnl: float | None
    fees: float
    position: float
    closing_trades: int
    win_rate: float | None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``hft report`` shows about one run; ``equity`` and ``drawdown`` are sampled at ``equity_ts_ns``."""

    db_path: str
    run_id: int
    started_at: str
    equity_source: str
    equity_ts_ns: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    performance: Performance
    fills: int
    orders_by_status: dict[str, int]
    cancel_requests: int
    first_ts_ns: int | None
    last_ts_ns: int | None
    symbols: list[SymbolSummary]
    notes: list[str]
    host: str | None = None  # PostgreSQL: the pipeline's host and instance
    instance: str | None = None

    @property
    def duration_s(self) -> float:
        """Venue time from the run's first to its last event (0 without events)."""
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return 0.0
        return (self.last_ts_ns - self.first_ts_ns) / 1e9


class Reader:
    """A read-only connection to either store. ``fetch(sql, params)`` takes the stores' SQL (``?`` placeholders):
    every query of the report is written once for both. Use it as a context manager (it closes)."""

    where: str  # the file, or the URL without its password: for messages
    hosts: bool  # runs carry host and instance (PostgreSQL: the pipelines of many hosts)
    run_order: str  # the column after started_at that orders runs as they were registered
    error: type[Exception]  # the driver's error
    hint: str  # how to name the right database

    def fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_schema(self, tables: set[str]) -> None:
        """Refuse (closing) a database this reader cannot read: tables missing, another schema version."""
        missing = REQUIRED_TABLES - tables
        if missing:
            self.close()
            raise ReportError(f"{self.where} is not an hft database (no table {', '.join(sorted(missing))}): "
                              f"{self.hint}")
        versions = {row[0] for row in self.fetch("SELECT version FROM schema_version")}
        if SCHEMA_VERSION not in versions:
            self.close()
            found = max(versions) if versions else "none"
            raise ReportError(f"{self.where} has schema version {found}, this hft reads version {SCHEMA_VERSION}: "
                              f"report it with the hft version that wrote it")


class SqliteReader(Reader):
    hosts = False
    run_order = "rowid"
    error = sqlite3.Error
    hint = "pass the file `hft run` wrote (persistence.db_path)"

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        if not path.is_file():
            raise ReportError(f"no database at {path}: run `hft run` first, or pass the database's path")
        try:
            self.db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
            tables = {row[0] for row in self.fetch("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        except sqlite3.Error as exc:
            raise ReportError(f"{path} is not an hft database ({exc}): {self.hint}") from None
        self._check_schema(tables)

    def fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        self.db.close()


class PgReader(Reader):
    hosts = True
    run_order = "run_id"
    hint = "pass the database the pipelines write (persistence.url)"

    def __init__(self, url: str) -> None:
        from hft.persistence.pg import redacted

        self.where = redacted(url)
        try:
            self.db = connect_postgres(url, read_only=True)
        except StoreError as exc:
            raise ReportError(str(exc)) from None
        import psycopg

        self.error = psycopg.Error
        try:
            tables = {row[0] for row in self.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
        except psycopg.Error as exc:
            self.close()
            raise ReportError(f"cannot read {self.where}: {str(exc).strip().splitlines()[0]}") from None
        self._check_schema(tables)

    def fetch(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.db.execute(sql.replace("?", "%s"), params).fetchall()

    def close(self) -> None:
        self.db.close()  # the read-only transaction ends with it


def open_reader(db: str | Path) -> Reader:
    """A ``Reader`` of the database ``db``: a SQLite path or a ``postgresql://`` URL."""
    if is_postgres(db):
        return PgReader(str(db))
    if "://" in str(db):
        raise ReportError(f"{db}: pass a SQLite file or a postgresql:// URL")
    return SqliteReader(Path(db))


def _choose_run(reader: Reader, run_id: int | None) -> tuple[int, str]:
    runs = reader.fetch(f"SELECT run_id, started_at FROM runs ORDER BY started_at, {reader.run_order}")
    if not runs:
        raise ReportError(f"{reader.where} holds no runs yet: run `hft run` first")
    if run_id is None:
        return runs[-1]
    for known, started_at in runs:
        if known == run_id:
            return known, started_at
    listed = ", ".join(str(known) for known, _ in runs[-10:])
    raise ReportError(f"{reader.where} has no run {run_id}: pass --run with one of its runs ({listed})")


def _event_span(reader: Reader, run_id: int) -> tuple[int | None, int | None]:
    """Return the first and last venue time of any row of the run (0 marks a locally made row: skipped)."""
    firsts, lasts = [], []
    for table in ("orders", "executions", "trades", "performance_metrics"):
        first, last = reader.fetch(
            f"SELECT MIN(ts_exch), MAX(ts_exch) FROM {table} WHERE run_id = ? AND ts_exch > 0", (run_id,)
        )[0]
        if first is not None:
            firsts.append(first)
            lasts.append(last)
    return (min(firsts), max(lasts)) if firsts else (None, None)


def _symbol_summaries(
    trades: list[tuple], positions: dict[str, tuple[float, float, float]]
) -> list[SymbolSummary]:
    """Summarize fills per symbol; ``trades`` rows are (exec_id, symbol, side, liquidity, price, size, fee, pnl,
    closed, position, realized_pnl, ts_exch) in venue-time order; cumulative fields come from the highest
    exec id, the broker's own order of events."""
    by_symbol: dict[str, list[tuple]] = {}
    for row in trades:
        by_symbol.setdefault(row[1], []).append(row)
    summaries = []
    for symbol in sorted(set(by_symbol) | set(positions)):
        rows = by_symbol.get(symbol, [])
        held = positions.get(symbol)
        last = max(rows, key=lambda row: row[0]) if rows else None
        closing = np.array([row[7] for row in rows if row[8] > 0], dtype=np.float64)
        win_rate, _, closing_count = trade_stats(closing)
        summaries.append(SymbolSummary(
            symbol=symbol,
            fills=len(rows),
            buys=sum(1 for row in rows if row[2] == "BUY"),
            sells=sum(1 for row in rows if row[2] == "SELL"),
            volume=math.fsum(row[5] for row in rows),
            notional=math.fsum(row[4] * row[5] for row in rows),
            maker_share=sum(1 for row in rows if row[3] == "MAKER") / len(rows) if rows else None,
            realized_pnl=last[10] if last else (held[1] if held else 0.0),
            unrealized_pnl=held[2] if held else None,
            fees=math.fsum(row[6] for row in rows),
            position=held[0] if held else (last[9] if last else 0.0),
            closing_trades=closing_count,
            win_rate=win_rate,
        ))
    return summaries


UNREALIZED_FROM_SAMPLE = "sample"  # the run's last metrics sample, newer than its last fill
UNREALIZED_FROM_MARKS = "positions"  # the positions rows: each symbol marked at its last report
UNREALIZED_FROM_SAMPLE_COLUMN = "sample-unrealized"  # no positions rows: the last sample's own column
UNREALIZED_NONE = "none"


def _unrealized(last_sample: tuple | None, last_fill_ts: int, any_fills: bool, realized: float,
                marks: float | None) -> tuple[float, str]:
    """A run's unrealized PnL and where it comes from; ``last_sample`` is ``(ts_exch, total_pnl, unrealized_pnl)``,
    ``marks`` the positions rows' unrealized PnL (None: the run has no positions rows). The one rule of both the
    run's report and the overview of many runs."""
    if last_sample is not None and last_sample[0] > last_fill_ts and (marks is not None or not any_fills):
        # the run's last sample marks every position at the end of the run; the positions rows carry the
        # mark of each symbol's last fill, which is older (no fill since: the sample's realized is ours)
        return last_sample[1] - realized, UNREALIZED_FROM_SAMPLE
    if marks is not None:
        return marks, UNREALIZED_FROM_MARKS
    if last_sample is not None:
        return last_sample[2], UNREALIZED_FROM_SAMPLE_COLUMN
    return 0.0, UNREALIZED_NONE


def load_report(db_path: str | Path, run_id: int | None = None) -> Report:
    """Read one run (default: the latest) from the database READ-ONLY and compute its report."""
    with open_reader(db_path) as reader:
        return _load_report(reader, run_id)


def _load_report(reader: Reader, run_id: int | None) -> Report:
    run_id, started_at = _choose_run(reader, run_id)
    try:
        trades = reader.fetch(
            "SELECT exec_id, symbol, side, liquidity, price, size, fee, pnl, closed, position, realized_pnl, "
            "ts_exch FROM trades WHERE run_id = ? ORDER BY ts_exch, exec_id", (run_id,)
        )
        positions = {
            symbol: (position, realized, unrealized)
            for symbol, position, realized, unrealized in reader.fetch(
                "SELECT symbol, position, realized_pnl, unrealized_pnl FROM positions WHERE run_id = ?", (run_id,)
            )
        }
        samples = reader.fetch(
            "SELECT ts_exch, total_pnl, unrealized_pnl FROM performance_metrics WHERE run_id = ? "
            "ORDER BY ts_exch, sample_id", (run_id,)
        )
        orders_by_status = dict(reader.fetch(
            "SELECT status, COUNT(*) FROM orders WHERE run_id = ? AND command = 'NEW' GROUP BY status "
            "ORDER BY status", (run_id,)
        ))
        cancel_requests = reader.fetch(
            "SELECT COUNT(*) FROM orders WHERE run_id = ? AND command != 'NEW'", (run_id,)
        )[0][0]
        first_ts, last_ts = _event_span(reader, run_id)
        pipeline = reader.fetch("SELECT host, instance FROM runs WHERE run_id = ?", (run_id,))[0] if reader.hosts \
            else None
    except reader.error as exc:
        raise ReportError(f"cannot read run {run_id} from {reader.where}: {exc}") from None

    notes = []
    symbols = _symbol_summaries(trades, positions)
    realized = math.fsum(s.realized_pnl for s in symbols)
    last_fill_ts = max((row[11] for row in trades), default=0)
    marks = math.fsum(s.unrealized_pnl or 0.0 for s in symbols) if positions else None
    unrealized, source = _unrealized(samples[-1] if samples else None, last_fill_ts, bool(trades), realized, marks)
    if source == UNREALIZED_FROM_SAMPLE_COLUMN:
        notes.append("unrealized PnL from the last metrics sample (the run has no positions rows)")
    elif source == UNREALIZED_NONE and any(s.position != 0.0 for s in symbols):
        notes.append("open positions but no marks in the database: unrealized PnL counted as 0")

    if samples:
        source = EQUITY_FROM_METRICS
        equity_ts = np.array([row[0] for row in samples], dtype=np.int64)
        equity = np.array([row[1] for row in samples], dtype=np.float64)
    else:
        source = EQUITY_FROM_TRADES
        equity_ts = np.array([row[11] for row in trades], dtype=np.int64)
        equity = np.cumsum(np.array([row[7] for row in trades], dtype=np.float64))
        if trades:
            notes.append("equity curve: cumulative realized PnL of the fills (the run has no performance_metrics "
                         "rows), blind to the drawdown of open positions; Sharpe over fill times is indicative")
    closing = np.array([row[7] for row in trades if row[8] > 0], dtype=np.float64)
    fees = math.fsum(row[6] for row in trades)
    result = performance(equity, equity_ts, closing, realized, unrealized, fees)
    if samples and abs(samples[-1][1] - result.total_pnl) > _AGREEMENT_TOLERANCE * max(1.0, abs(result.total_pnl)):
        notes.append(f"the last metrics sample shows total PnL {samples[-1][1]:+.6f}, the fills and positions give "
                     f"{result.total_pnl:+.6f}: the sample predates the last fills or marks")
    if not trades:
        notes.append("no fills")
    return Report(
        db_path=reader.where, run_id=run_id, started_at=started_at, equity_source=source, equity_ts_ns=equity_ts,
        equity=equity, drawdown=drawdown_series(equity), performance=result, fills=len(trades),
        orders_by_status=orders_by_status, cancel_requests=cancel_requests, first_ts_ns=first_ts,
        last_ts_ns=last_ts, symbols=symbols, notes=notes, host=pipeline[0] if pipeline else None,
        instance=pipeline[1] if pipeline else None,
    )


def report_json(report: Report) -> dict[str, object]:
    """Return the report as plain JSON-ready values (the equity curve is left out: see the PNG)."""
    pipeline = {} if report.host is None else {"host": report.host, "instance": report.instance}
    return {
        "db_path": report.db_path,
        "run_id": report.run_id,
        **pipeline,
        "started_at": report.started_at,
        "first_ts_ns": report.first_ts_ns,
        "last_ts_ns": report.last_ts_ns,
        "duration_s": report.duration_s,
        "equity_source": report.equity_source,
        "equity_samples": len(report.equity),
        "fills": report.fills,
        "orders_by_status": dict(report.orders_by_status),
        "cancel_requests": report.cancel_requests,
        "performance": msgspec.structs.asdict(report.performance),
        "symbols": [msgspec.structs.asdict(symbol) for symbol in report.symbols],
        "notes": list(report.notes),
    }


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.4f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m {secs:04.1f}s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h {minutes:02d}m {secs:02.0f}s"


def _utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Align columns: the first to the left, the (numeric) others to the right."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for cells in [headers, *rows]:
        first, *rest = cells
        lines.append("  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]))
    return lines


def render_text(report: Report) -> str:
    """Return the report as aligned text for a terminal."""
    perf = report.performance
    span = "no events"
    if report.first_ts_ns is not None and report.last_ts_ns is not None:
        span = f"{_duration(report.duration_s)}  ({_utc(report.first_ts_ns)} to {_utc(report.last_ts_ns)} UTC)"
    orders = ", ".join(f"{status} {count}" for status, count in report.orders_by_status.items()) or "none"
    if report.cancel_requests:
        orders += f"  (+{report.cancel_requests} cancel requests)"
    if perf.win_rate is None:
        wins = "-"
    else:
        wins = f"{_percent(perf.win_rate)}  ({round(perf.win_rate * perf.trade_count)} of {perf.trade_count})"
    if report.equity_source == EQUITY_FROM_METRICS:
        equity = f"{len(report.equity)} performance_metrics samples (total PnL)"
    elif len(report.equity) == 0:
        equity = "flat (no performance_metrics samples, no fills)"
    else:
        equity = f"{len(report.equity)} fills (realized PnL only)"
    money = [
        ("total PnL", _money(perf.total_pnl)),
        ("realized PnL", _money(perf.realized_pnl)),
        ("unrealized PnL", _money(perf.unrealized_pnl)),
        ("fees paid", f"{perf.fees:,.4f}"),
        ("max drawdown", f"{perf.max_drawdown:,.4f}"),
        ("avg trade PnL", _money(perf.avg_trade_pnl)),
    ]
    width = max(len(value) for _, value in money)
    sharpe = "-" if perf.sharpe is None else f"{perf.sharpe:.2f}"
    lines = [
        f"run {report.run_id} of {report.db_path}  ("
        + ("" if report.host is None else f"host {report.host}, instance {report.instance}, ")
        + f"started {report.started_at})",
        f"  duration        {span}",
        f"  fills           {report.fills}" + ("" if report.fills else "  (no fills)"),
        f"  orders          {orders}",
        f"  equity curve    {equity}",
        "",
        *(f"  {label:<16}{value:>{width}}" for label, value in money),
        "                  (money in the quote currency; realized PnL is net of fees)",
        f"  Sharpe          {sharpe}  (annualized, of the equity curve's PnL increments; no capital, "
        "no risk-free rate)",
        f"  trades          {perf.trade_count} closing fills, win rate {wins}",
    ]
    if report.symbols:
        lines.append("")
        rows = [
            [s.symbol, str(s.fills), f"{s.buys}/{s.sells}", f"{s.volume:,.6g}", f"{s.notional:,.2f}",
             _percent(s.maker_share), _money(s.realized_pnl), _money(s.unrealized_pnl), f"{s.fees:,.4f}",
             f"{s.position:,.6g}", str(s.closing_trades), _percent(s.win_rate)]
            for s in report.symbols
        ]
        headers = ["symbol", "fills", "buys/sells", "volume", "notional", "maker", "realized", "unrealized", "fees",
                   "position", "closing", "win rate"]
        lines.extend("  " + line for line in _table(headers, rows))
    for note in report.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def default_png_path(report: Report) -> Path:
    """Return ``<db dir>/<db stem>-run<run_id>.png``: next to the database, one file per run."""
    db = Path(report.db_path)
    return db.with_name(f"{db.stem}-run{report.run_id}.png")


def write_plot(report: Report, png_path: str | Path | None = None) -> Path:
    """Draw the equity curve over its drawdown into a PNG (default: ``default_png_path``); return its path.

    Renders with the Agg canvas on a bare ``Figure``: no display, no pyplot global state, and matplotlib is
    imported only here so ``import hft.report`` stays cheap.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("matplotlib is not installed: `pip install matplotlib`, or pass --no-plot") from None

    path = Path(png_path) if png_path is not None else default_png_path(report)
    start = report.first_ts_ns if report.first_ts_ns is not None else 0
    end_s = max(report.duration_s, 1.0)
    scale, unit = (1.0, "s") if end_s <= 600 else (60.0, "min") if end_s <= 6 * 3600 else (3600.0, "h")
    # the run starts flat: equity 0 at its first event, and (fills only) flat after its last fill
    ts = (report.equity_ts_ns - start) / 1e9
    times = np.concatenate(([0.0], ts))
    equity = np.concatenate(([0.0], report.equity))
    if report.equity_source == EQUITY_FROM_TRADES or len(report.equity) == 0:
        times = np.append(times, max(end_s, times[-1]))
        equity = np.append(equity, equity[-1])
    step = "post" if report.equity_source == EQUITY_FROM_TRADES else None
    drawdown = drawdown_series(equity)
    times = times / scale

    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    perf = report.performance
    fig.suptitle(f"run {report.run_id}: total PnL {perf.total_pnl:+,.4f}, max drawdown {perf.max_drawdown:,.4f} "
                 f"(quote currency)")
    label = "total PnL (performance_metrics)" if step is None else "realized PnL of the fills"
    if step:
        top.step(times, equity, where=step, color="tab:blue", label=label)
    else:
        top.plot(times, equity, color="tab:blue", label=label)
    top.axhline(0.0, color="grey", linewidth=0.8)
    top.set_ylabel("PnL")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    if report.fills == 0:
        top.text(0.5, 0.75, "no fills", transform=top.transAxes, ha="center", va="center", fontsize=16,
                 color="grey")
    bottom.fill_between(times, -drawdown, 0.0, step=step, color="tab:red", alpha=0.35, linewidth=0)
    bottom.plot(times, -drawdown, color="tab:red", linewidth=0.8, drawstyle="steps-post" if step else "default")
    bottom.set_ylabel("drawdown")
    bottom.set_xlabel(f"time since the run's first event ({unit})")
    bottom.grid(alpha=0.3)
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise ReportError(
            f"cannot write the plot to {path}: {exc.strerror or exc}: pass --png PATH or --no-plot"
        ) from None
    return path


# ------------------------------------------------------------------------------------------------ comparison

COMPARE_COLUMNS = ("run_id", "kind", "params", "total_pnl", "realized_pnl", "sharpe", "max_drawdown", "fills",
                   "fees", "maker_share", "win_rate", "closing_trades", "orders", "duration_s")
# over PostgreSQL every row also says whose run it is
PIPELINE_COLUMNS = ("host", "instance")


def _run_config(reader: Reader, run_id: int) -> dict:
    """The run's configuration as its runs row holds it ({} when unreadable)."""
    rows = reader.fetch("SELECT config FROM runs WHERE run_id = ?", (run_id,))
    try:
        config = json.loads(rows[0][0]) if rows else {}
    except ValueError:
        config = {}
    return config if isinstance(config, dict) else {}


def _run_meta(reader: Reader, run_id: int) -> tuple[str, str]:
    """(kind, params as JSON) of a run from its runs row: a backtest's parameters, a pipeline's strategy params."""
    config = _run_config(reader, run_id)
    if config.get("kind") == "backtest":
        return "backtest", json.dumps(config.get("params", {}), sort_keys=True)
    strategy = config.get("strategy", {})
    return "pipeline", json.dumps(strategy.get("params", {}), sort_keys=True)


def compare_rows(db_path: str | Path, run_ids: list[int]) -> list[dict[str, object]]:
    """One row per run (``COMPARE_COLUMNS``, after ``run_id`` the ``PIPELINE_COLUMNS`` over PostgreSQL): PnL,
    Sharpe, drawdown, fills, fees, maker share, win rate."""
    rows = []
    with open_reader(db_path) as reader:
        for run_id in run_ids:
            report = _load_report(reader, run_id)
            try:
                kind, params = _run_meta(reader, report.run_id)
            except reader.error as exc:
                raise ReportError(f"cannot read run {run_id} from {reader.where}: {exc}") from None
            fills = sum(s.fills for s in report.symbols)
            makers = sum((s.maker_share or 0.0) * s.fills for s in report.symbols)
            perf = report.performance
            pipeline = {} if report.host is None else {"host": report.host, "instance": report.instance}
            rows.append({
                "run_id": report.run_id, **pipeline, "kind": kind, "params": params, "total_pnl": perf.total_pnl,
                "realized_pnl": perf.realized_pnl, "sharpe": perf.sharpe, "max_drawdown": perf.max_drawdown,
                "fills": fills, "fees": perf.fees, "maker_share": makers / fills if fills else None,
                "win_rate": perf.win_rate, "closing_trades": perf.trade_count,
                "orders": sum(report.orders_by_status.values()), "duration_s": report.duration_s,
            })
    return rows


def all_run_ids(db_path: str | Path) -> list[int]:
    """Every run of the database, in the order they started."""
    with open_reader(db_path) as reader:
        return [row[0] for row in reader.fetch(f"SELECT run_id FROM runs ORDER BY started_at, {reader.run_order}")]


def _compare_columns(rows: list[dict[str, object]]) -> tuple[str, ...]:
    if rows and "host" in rows[0]:
        return (COMPARE_COLUMNS[0], *PIPELINE_COLUMNS, *COMPARE_COLUMNS[1:])
    return COMPARE_COLUMNS


def render_compare(rows: list[dict[str, object]]) -> str:
    pipelines = rows and "host" in rows[0]
    headers = ["run", *(["host", "instance"] if pipelines else []), "kind", "total PnL", "realized", "Sharpe",
               "max DD", "fills", "fees", "maker", "win rate", "orders", "params"]
    table = [[str(r["run_id"]), *([str(r["host"]), str(r["instance"])] if pipelines else []), str(r["kind"]),
              f"{r['total_pnl']:+.4f}", f"{r['realized_pnl']:+.4f}",
              f"{r['sharpe']:.2f}" if r["sharpe"] is not None else "-", f"{r['max_drawdown']:.4f}", str(r["fills"]),
              f"{r['fees']:.4f}", _percent(r["maker_share"]), _percent(r["win_rate"]), str(r["orders"]),
              str(r["params"])] for r in rows]
    return "\n".join(_table(headers, table))


def export_compare(rows: list[dict[str, object]], path: str | Path) -> Path:
    """Write the comparison as CSV (``.csv``) or Parquet (``.parquet``, needs pyarrow)."""
    path = Path(path)
    if path.suffix == ".csv":
        import csv

        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_compare_columns(rows))
            writer.writeheader()
            writer.writerows(rows)
        return path
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ReportError("Parquet export needs pyarrow: pip install 'hft[parquet]' (or export .csv)") from None
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    raise ReportError(f"{path}: export to a .csv or a .parquet file")


# ------------------------------------------------------------------------------------------------ overview

UNKNOWN_STRATEGY = ("?", "?")  # fills of a strategy id the run's config does not list
FILLS_BY_STRATEGY = (
    "SELECT t.run_id, o.strategy_id, t.symbol, COUNT(*), SUM(CASE WHEN t.liquidity = 'MAKER' THEN 1 ELSE 0 END), "
    "SUM(t.price * t.size), SUM(t.fee), SUM(t.pnl), SUM(CASE WHEN t.closed > 0 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN t.closed > 0 AND t.pnl > 0 THEN 1 ELSE 0 END), MAX(t.ts_exch) "
    "FROM trades t LEFT JOIN orders o ON o.run_id = t.run_id AND o.order_id = t.order_id "
    "GROUP BY t.run_id, o.strategy_id, t.symbol"
)
ORDERS_BY_STRATEGY = ("SELECT run_id, strategy_id, COUNT(*) FROM orders WHERE command = 'NEW' "
                      "GROUP BY run_id, strategy_id")
# every run's last sample in (ts_exch, sample_id) order, as the run's report takes it: the rows at each run's
# latest ts_exch, the highest sample id last
LAST_SAMPLES = (
    "SELECT m.run_id, m.ts_exch, m.total_pnl, m.unrealized_pnl FROM performance_metrics m JOIN "
    "(SELECT run_id, MAX(ts_exch) AS ts FROM performance_metrics GROUP BY run_id) last "
    "ON last.run_id = m.run_id AND last.ts = m.ts_exch ORDER BY m.run_id, m.sample_id"
)


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the overview: a host, an instance of a host, a strategy (by instance name and module, on every
    host) or the total. Money in the quote currency; realized PnL is net of fees."""

    host: str | None = None
    instance: str | None = None
    strategy: str | None = None
    module: str | None = None
    runs: int
    orders: int
    fills: int
    maker_share: float | None
    notional: float
    fees: float
    realized_pnl: float
    unrealized_pnl: float
    total_pnl: float
    closing_trades: int
    win_rate: float | None


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """What ``hft report`` shows of a PostgreSQL database: every run, per host, per instance, per strategy, total."""

    db_path: str
    runs: int
    backtests: int
    first_started: str | None
    last_started: str | None
    hosts: list[Figures]
    instances: list[Figures]
    strategies: list[Figures]
    total: Figures
    notes: list[str]


class _Tally:
    """The sums of one line while the overview adds up (one cell per run and strategy first)."""

    def __init__(self) -> None:
        self.runs: set[int] = set()
        self.orders = self.fills = self.makers = self.closing = self.wins = 0
        self.notional = self.fees = self.realized = self.unrealized = 0.0

    def add(self, other: _Tally) -> None:
        self.runs |= other.runs
        self.orders += other.orders
        self.fills += other.fills
        self.makers += other.makers
        self.closing += other.closing
        self.wins += other.wins
        self.notional += other.notional
        self.fees += other.fees
        self.realized += other.realized
        self.unrealized += other.unrealized

    def figures(self, **key: str) -> Figures:
        return Figures(
            **key, runs=len(self.runs), orders=self.orders, fills=self.fills,
            maker_share=self.makers / self.fills if self.fills else None, notional=self.notional, fees=self.fees,
            realized_pnl=self.realized, unrealized_pnl=self.unrealized, total_pnl=self.realized + self.unrealized,
            closing_trades=self.closing, win_rate=self.wins / self.closing if self.closing else None,
        )


def run_strategies(config: dict) -> list[tuple[str, str, list[str]]]:
    """``(name, module, symbols)`` of a run's strategy instances in ``strategy_id`` order (1-based), from the config
    its runs row holds (a backtest's under ``config``), as ``StrategyConfig.effective_instances`` makes them."""
    if config.get("kind") == "backtest":
        config = config.get("config") or {}
    strategy = config.get("strategy")
    if not isinstance(strategy, dict):
        return [("main", "?", [])]
    instances = strategy.get("instances") or []
    if instances:
        return [(str(i.get("name", "?")), str(i.get("module", "?")), list(i.get("symbols") or [])) for i in instances]
    return [("main", str(strategy.get("module", "?")), [])]


def _module_label(module: str) -> str:
    """A strategy file by its name (hosts keep it at different paths), a built-in or dotted module as it is."""
    return Path(module).stem if module.endswith(".py") else module


def load_overview(db_path: str | Path) -> Overview:
    """Every run of a PostgreSQL database, per host, per instance, per strategy and in total (READ-ONLY, one
    snapshot)."""
    with open_reader(db_path) as reader:
        if not reader.hosts:
            raise ReportError(f"{reader.where}: the overview of many pipelines reads a postgresql:// database; "
                              "pass --run N or --compare for a SQLite file")
        try:
            runs = reader.fetch("SELECT run_id, host, instance, started_at, config FROM runs "
                                f"ORDER BY started_at, {reader.run_order}")
            fills = reader.fetch(FILLS_BY_STRATEGY)
            orders = reader.fetch(ORDERS_BY_STRATEGY)
            positions = reader.fetch("SELECT run_id, symbol, realized_pnl, unrealized_pnl FROM positions")
            samples = reader.fetch(LAST_SAMPLES)
        except reader.error as exc:
            raise ReportError(f"cannot read {reader.where}: {exc}") from None
        where = reader.where
    if not runs:
        raise ReportError(f"{where} holds no runs yet: run `hft run` first")
    return overview_of(where, runs, fills, orders, positions, samples)


def overview_of(where: str, runs: list[tuple], fills: list[tuple], orders: list[tuple], positions: list[tuple],
                samples: list[tuple]) -> Overview:
    """Add the rows of ``load_overview``'s queries up: one cell per run and strategy, then the lines.

    A run's unrealized PnL follows the run's report (``_unrealized``: its last metrics sample when that is newer
    than its last fill). The samples are the whole run's, so a run of several strategies gives each strategy the
    marks of its own symbols' positions rows instead, and a note says when the two differ."""
    meta: dict[int, tuple[str, str, list[tuple[str, str]]]] = {}
    owner: dict[tuple[int, str], int] = {}  # (run, symbol) -> strategy id
    backtests = 0
    cells: dict[int, dict[int, _Tally]] = {}

    def cell(run_id: int, strategy_id: int | None) -> _Tally:
        by_strategy = cells.setdefault(run_id, {})
        if strategy_id is None:
            strategy_id = 0
        if strategy_id not in by_strategy:
            by_strategy[strategy_id] = tally = _Tally()
            tally.runs.add(run_id)
        return by_strategy[strategy_id]

    for run_id, host, instance, _, config_text in runs:
        try:
            config = json.loads(config_text)
        except (TypeError, ValueError):
            config = {}
        config = config if isinstance(config, dict) else {}
        backtests += config.get("kind") == "backtest"
        strategies = run_strategies(config)
        meta[run_id] = (host, instance, [(name, module) for name, module, _ in strategies])
        for number, (_, _, symbols) in enumerate(strategies, start=1):
            cell(run_id, number)
            for symbol in symbols:
                owner[(run_id, symbol)] = number
    last_fill: dict[int, int] = {}
    filled: set[tuple[int, str]] = set()
    for run_id, strategy_id, symbol, count, makers, notional, fees, pnl, closing, wins, last_ts in fills:
        if run_id not in meta:
            continue
        tally = cell(run_id, strategy_id)
        tally.fills += int(count)
        tally.makers += int(makers)
        tally.notional += float(notional)
        tally.fees += float(fees)
        tally.realized += float(pnl)
        tally.closing += int(closing)
        tally.wins += int(wins)
        filled.add((run_id, symbol))
        owner.setdefault((run_id, symbol), strategy_id or 0)
        last_fill[run_id] = max(last_fill.get(run_id, 0), int(last_ts))
    for run_id, strategy_id, count in orders:
        if run_id in meta:
            cell(run_id, strategy_id).orders += int(count)
    marks: dict[int, float] = {}
    for run_id, symbol, realized, unrealized in positions:
        if run_id not in meta:
            continue
        tally = cell(run_id, owner.get((run_id, symbol), 1 if len(meta[run_id][2]) == 1 else 0))
        tally.unrealized += float(unrealized or 0.0)
        marks[run_id] = marks.get(run_id, 0.0) + float(unrealized or 0.0)
        if (run_id, symbol) not in filled:  # as the run's report: a symbol's realized PnL without fills
            tally.realized += float(realized)
    last_sample = {run_id: (ts, total, unrealized) for run_id, ts, total, unrealized in samples}

    notes = []
    for run_id, by_strategy in cells.items():
        realized = sum(t.realized for t in by_strategy.values())
        unrealized, _ = _unrealized(last_sample.get(run_id), last_fill.get(run_id, 0), run_id in last_fill,
                                    realized, marks.get(run_id))
        if len(by_strategy) == 1:
            next(iter(by_strategy.values())).unrealized = unrealized
            continue
        marked = sum(t.unrealized for t in by_strategy.values())
        if abs(unrealized - marked) > _AGREEMENT_TOLERANCE * max(1.0, abs(unrealized)):
            notes.append(f"run {run_id} ({meta[run_id][0]}/{meta[run_id][1]}): its strategies' open positions are "
                         f"marked at their last reports, {marked:+.4f} unrealized; its last metrics sample (the "
                         f"whole run, later) gives {unrealized:+.4f}")

    hosts: dict[str, _Tally] = {}
    instances: dict[tuple[str, str], _Tally] = {}
    strategies: dict[tuple[str, str], _Tally] = {}
    total = _Tally()
    for run_id, by_strategy in cells.items():
        host, instance, listed = meta[run_id]
        for strategy_id, tally in by_strategy.items():
            name, module = listed[strategy_id - 1] if 1 <= strategy_id <= len(listed) else UNKNOWN_STRATEGY
            hosts.setdefault(host, _Tally()).add(tally)
            instances.setdefault((host, instance), _Tally()).add(tally)
            strategies.setdefault((name, _module_label(module)), _Tally()).add(tally)
            total.add(tally)
    if backtests and backtests < len(runs):
        notes.append(f"{backtests} of the {len(runs)} runs are backtests: the lines add them to the pipelines' runs "
                     "(their instance, backtest or a sweep's name, shows them apart)")
    started = [row[3] for row in runs]
    return Overview(
        db_path=where, runs=len(runs), backtests=backtests, first_started=min(started), last_started=max(started),
        hosts=[hosts[h].figures(host=h) for h in sorted(hosts)],
        instances=[instances[k].figures(host=k[0], instance=k[1]) for k in sorted(instances)],
        strategies=[strategies[k].figures(strategy=k[0], module=k[1]) for k in sorted(strategies)],
        total=total.figures(), notes=notes,
    )


def _count(n: int, stem: str, one: str = "", many: str = "s") -> str:
    return f"{n} {stem}{one if n == 1 else many}"


def overview_json(overview: Overview) -> dict[str, object]:
    """The overview as plain JSON-ready values (a line's key fields that do not apply are left out)."""
    def line(figures: Figures) -> dict[str, object]:
        return {k: v for k, v in msgspec.structs.asdict(figures).items()
                if not (k in ("host", "instance", "strategy", "module") and v is None)}

    return {
        "db_path": overview.db_path, "runs": overview.runs, "backtests": overview.backtests,
        "first_started": overview.first_started, "last_started": overview.last_started,
        "hosts": [line(f) for f in overview.hosts], "instances": [line(f) for f in overview.instances],
        "strategies": [line(f) for f in overview.strategies], "total": line(overview.total),
        "notes": list(overview.notes),
    }


def render_overview(overview: Overview) -> str:
    """The overview as aligned text: a section per host, instance and strategy, then the total."""
    headers = ["", "runs", "orders", "fills", "maker", "notional", "fees", "realized", "unrealized", "total PnL",
               "closing", "win rate"]

    def cells(label: str, f: Figures) -> list[str]:
        return [label, str(f.runs), str(f.orders), str(f.fills), _percent(f.maker_share), f"{f.notional:,.2f}",
                f"{f.fees:,.4f}", _money(f.realized_pnl), _money(f.unrealized_pnl), _money(f.total_pnl),
                str(f.closing_trades), _percent(f.win_rate)]

    blank = [""] * (len(headers) - 1)
    rows = [["host", *blank], *(cells(f"  {f.host}", f) for f in overview.hosts),
            ["instance", *blank], *(cells(f"  {f.host}/{f.instance}", f) for f in overview.instances),
            ["strategy", *blank], *(cells(f"  {f.strategy} ({f.module})", f) for f in overview.strategies),
            cells("total", overview.total)]
    backtests = f", {overview.backtests} of them backtests" if overview.backtests else ""
    lines = [
        f"{_count(overview.runs, 'run')} in {overview.db_path}{backtests}  (started {overview.first_started} to "
        f"{overview.last_started})",
        f"  {_count(len(overview.hosts), 'host')}, {_count(len(overview.instances), 'instance')}, "
        f"{_count(len(overview.strategies), 'strateg', 'y', 'ies')}",
        "",
        *("  " + line.rstrip() for line in _table(headers, rows)),
        "  (money in the quote currency; realized PnL is net of fees; unrealized PnL as `hft report --run N` takes it;",
        "   a strategy is its instance name and module on every host)",
    ]
    lines.extend(f"note: {note}" for note in overview.notes)
    return "\n".join(lines)
