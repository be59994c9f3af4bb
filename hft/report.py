"""``hft report``: one run's performance, per-symbol table and equity plot, read from the SQLite database.

The database is opened READ-ONLY (``mode=ro``): a report can run beside a live pipeline and never changes
a byte. The figures are computed here with ``hft.persistence.metrics`` from the fills and positions, not
copied from the last ``performance_metrics`` row, so a report of a run whose persistence process died
between samples is still complete; when the last sample disagrees with the fills, the report says so.

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
from hft.persistence.store import SCHEMA_VERSION

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

    @property
    def duration_s(self) -> float:
        """Venue time from the run's first to its last event (0 without events)."""
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return 0.0
        return (self.last_ts_ns - self.first_ts_ns) / 1e9


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise ReportError(f"no database at {path}: run `hft run` first, or pass the database's path")
    try:
        db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    except sqlite3.Error as exc:
        raise ReportError(f"{path} is not an hft database ({exc}): pass the file `hft run` wrote "
                          f"(persistence.db_path)") from None
    missing = REQUIRED_TABLES - tables
    if missing:
        db.close()
        raise ReportError(f"{path} is not an hft database (no table {', '.join(sorted(missing))}): pass the file "
                          f"`hft run` wrote (persistence.db_path)")
    versions = {row[0] for row in db.execute("SELECT version FROM schema_version")}
    if SCHEMA_VERSION not in versions:
        db.close()
        found = max(versions) if versions else "none"
        raise ReportError(f"{path} has schema version {found}, this hft reads version {SCHEMA_VERSION}: "
                          f"report it with the hft version that wrote it")
    return db


def _choose_run(db: sqlite3.Connection, path: Path, run_id: int | None) -> tuple[int, str]:
    runs = db.execute("SELECT run_id, started_at FROM runs ORDER BY started_at, rowid").fetchall()
    if not runs:
        raise ReportError(f"{path} holds no runs yet: run `hft run` first")
    if run_id is None:
        return runs[-1]
    for known, started_at in runs:
        if known == run_id:
            return known, started_at
    listed = ", ".join(str(known) for known, _ in runs[-10:])
    raise ReportError(f"{path} has no run {run_id}: pass --run with one of its runs ({listed})")


def _event_span(db: sqlite3.Connection, run_id: int) -> tuple[int | None, int | None]:
    """Return the first and last venue time of any row of the run (0 marks a locally made row: skipped)."""
    firsts, lasts = [], []
    for table in ("orders", "executions", "trades", "performance_metrics"):
        first, last = db.execute(
            f"SELECT MIN(ts_exch), MAX(ts_exch) FROM {table} WHERE run_id = ? AND ts_exch > 0", (run_id,)
        ).fetchone()
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


def load_report(db_path: str | Path, run_id: int | None = None) -> Report:
    """Read one run (default: the latest) from the database READ-ONLY and compute its report."""
    path = Path(db_path)
    db = _open_read_only(path)
    try:
        run_id, started_at = _choose_run(db, path, run_id)
        trades = db.execute(
            "SELECT exec_id, symbol, side, liquidity, price, size, fee, pnl, closed, position, realized_pnl, "
            "ts_exch FROM trades WHERE run_id = ? ORDER BY ts_exch, exec_id", (run_id,)
        ).fetchall()
        positions = {
            symbol: (position, realized, unrealized)
            for symbol, position, realized, unrealized in db.execute(
                "SELECT symbol, position, realized_pnl, unrealized_pnl FROM positions WHERE run_id = ?", (run_id,)
            )
        }
        samples = db.execute(
            "SELECT ts_exch, total_pnl, unrealized_pnl FROM performance_metrics WHERE run_id = ? "
            "ORDER BY ts_exch, sample_id", (run_id,)
        ).fetchall()
        orders_by_status = dict(db.execute(
            "SELECT status, COUNT(*) FROM orders WHERE run_id = ? AND command = 'NEW' GROUP BY status "
            "ORDER BY status", (run_id,)
        ).fetchall())
        cancel_requests = db.execute(
            "SELECT COUNT(*) FROM orders WHERE run_id = ? AND command != 'NEW'", (run_id,)
        ).fetchone()[0]
        first_ts, last_ts = _event_span(db, run_id)
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read run {run_id} from {path}: {exc}") from None
    finally:
        db.close()

    notes = []
    symbols = _symbol_summaries(trades, positions)
    realized = math.fsum(s.realized_pnl for s in symbols)
    last_fill_ts = max((row[11] for row in trades), default=0)
    if samples and samples[-1][0] > last_fill_ts and (positions or not trades):
        # the run's last sample marks every position at the end of the run; the positions rows carry the
        # mark of each symbol's last fill, which is older (no fill since: the sample's realized is ours)
        unrealized = samples[-1][1] - realized
    elif positions:
        unrealized = math.fsum(s.unrealized_pnl or 0.0 for s in symbols)
    elif samples:
        unrealized = samples[-1][2]
        notes.append("unrealized PnL from the last metrics sample (the run has no positions rows)")
    else:
        unrealized = 0.0
        if any(s.position != 0.0 for s in symbols):
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
        db_path=str(path), run_id=run_id, started_at=started_at, equity_source=source, equity_ts_ns=equity_ts,
        equity=equity, drawdown=drawdown_series(equity), performance=result, fills=len(trades),
        orders_by_status=orders_by_status, cancel_requests=cancel_requests, first_ts_ns=first_ts,
        last_ts_ns=last_ts, symbols=symbols, notes=notes,
    )


def report_json(report: Report) -> dict[str, object]:
    """Return the report as plain JSON-ready values (the equity curve is left out: see the PNG)."""
    return {
        "db_path": report.db_path,
        "run_id": report.run_id,
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
        f"run {report.run_id} of {report.db_path}  (started {report.started_at})",
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


def _run_meta(db_path: str | Path, run_id: int) -> tuple[str, str]:
    """(kind, params as JSON) of a run from its runs row: a backtest's parameters, a pipeline's strategy params."""
    db = _open_read_only(Path(db_path))
    try:
        row = db.execute("SELECT config FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        db.close()
    try:
        config = json.loads(row[0]) if row else {}
    except ValueError:
        config = {}
    if config.get("kind") == "backtest":
        return "backtest", json.dumps(config.get("params", {}), sort_keys=True)
    strategy = config.get("strategy", {})
    return "pipeline", json.dumps(strategy.get("params", {}), sort_keys=True)


def compare_rows(db_path: str | Path, run_ids: list[int]) -> list[dict[str, object]]:
    """One row per run (``COMPARE_COLUMNS``): PnL, Sharpe, drawdown, fills, fees, maker share, win rate."""
    rows = []
    for run_id in run_ids:
        report = load_report(db_path, run_id)
        kind, params = _run_meta(db_path, report.run_id)
        fills = sum(s.fills for s in report.symbols)
        makers = sum((s.maker_share or 0.0) * s.fills for s in report.symbols)
        perf = report.performance
        rows.append({
            "run_id": report.run_id, "kind": kind, "params": params, "total_pnl": perf.total_pnl,
            "realized_pnl": perf.realized_pnl, "sharpe": perf.sharpe, "max_drawdown": perf.max_drawdown,
            "fills": fills, "fees": perf.fees, "maker_share": makers / fills if fills else None,
            "win_rate": perf.win_rate, "closing_trades": perf.trade_count,
            "orders": sum(report.orders_by_status.values()), "duration_s": report.duration_s,
        })
    return rows


def all_run_ids(db_path: str | Path) -> list[int]:
    db = _open_read_only(Path(db_path))
    try:
        return [row[0] for row in db.execute("SELECT run_id FROM runs ORDER BY started_at, rowid")]
    finally:
        db.close()


def render_compare(rows: list[dict[str, object]]) -> str:
    headers = ["run", "kind", "total PnL", "realized", "Sharpe", "max DD", "fills", "fees", "maker", "win rate",
               "orders", "params"]
    table = [[str(r["run_id"]), str(r["kind"]), f"{r['total_pnl']:+.4f}", f"{r['realized_pnl']:+.4f}",
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
            writer = csv.DictWriter(handle, fieldnames=COMPARE_COLUMNS)
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
