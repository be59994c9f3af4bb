"""The ``hft`` command: run, stats, report, backtest, convert, clean, kill/resume, warm, sim-exchange."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from hft.config import ConfigError, load_config


def _instance(args: argparse.Namespace) -> str:
    instance = args.instance or (load_config(args.config).instance if args.config else "default")
    if not instance.isidentifier():  # as the config requires: the name goes into /dev/shm segment names
        raise ConfigError(f"--instance {instance!r}: a simple name (letters, digits, underscores)")
    return instance


def _duration(value: str) -> float:
    """``--duration``: seconds, finite and positive (nan, inf, 0 and negatives would never or at once end)."""
    import math

    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: a finite number of seconds > 0")
    return seconds


def cmd_run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hft.config import resolve_module_paths
    from hft.supervisor import SupervisorError, plan_cores, run_pipeline, worker_context

    if not args.plan:
        worker_context()  # the forkserver preloads the project while the config is read and checked

    config = resolve_module_paths(load_config(args.config), args.config)
    if args.instance:
        import msgspec

        config = msgspec.structs.replace(config, instance=_instance(args))
    if args.db:
        import msgspec

        config = msgspec.structs.replace(
            config, persistence=msgspec.structs.replace(config.persistence, db_path=args.db)
        )
    if args.source:
        import msgspec

        source = config.source
        if args.source[0] == "replay":
            if len(args.source) < 2:
                raise ConfigError("--source replay needs the recording: --source replay FILE [FILE ...]")
            source = msgspec.structs.replace(source, kind="replay", replay_path=args.source[1],
                                             replay_more=list(args.source[2:]))
        elif args.source[0] in ("sim", "binance") and len(args.source) == 1:
            source = msgspec.structs.replace(source, kind=args.source[0])
        elif args.source[0] == "url" and len(args.source) == 3:
            source = msgspec.structs.replace(source, kind="url", ws_url=args.source[1], rest_url=args.source[2])
        else:
            raise ConfigError("--source takes: sim | binance | replay FILE [FILE ...] | url WS_URL REST_URL")
        if args.speed is not None:
            source = msgspec.structs.replace(source, replay_speed=args.speed)
        config = msgspec.structs.replace(config, source=source)
        if source.kind == "replay" and not args.config:
            config = msgspec.structs.replace(config, symbols=recordings_symbols(source.replay_files()))
        config.source.__post_init__()
    if args.plan:
        placement, warnings = plan_cores(config)
        for name, core in placement.items():
            process = getattr(config.processes, name)
            priority = f"SCHED_FIFO {process.rt_priority}" if process.rt_priority else "normal"
            print(f"{name:<12} core {core if core >= 0 else 'any':<4} wait {process.wait:<11} "
                  f"priority {priority}  nice {process.nice}")
        for warning in warnings:
            print(f"warning: {warning}")
        return 0
    try:
        summary, reason = run_pipeline(config, args.duration, args.config)
    except SupervisorError as exc:
        print(f"hft run: {exc}", file=sys.stderr)
        return 2
    if summary is None:
        return 2
    if args.json:
        print(json.dumps(asdict(summary) | {"stop_reason": reason}, indent=2, default=float))
    else:
        print(format_summary(summary, reason))
    failed = [name for name, code in summary.exit_codes.items() if code not in (0, None)]
    if reason in ("worker-died", "sim-died") or failed:
        return 1
    return 0


def replay_symbols(path: str) -> list:
    """Configure the symbols a recording streams (no config given): price decimals from its snapshots."""
    from hft.config import SymbolConfig
    from hft.recording.formats import RecordingError, survey_symbols

    try:
        surveyed = survey_symbols(path)
    except (RecordingError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    if not surveyed:
        raise ConfigError(f"{path}: no market-data streams in the recording")
    return [
        SymbolConfig(name=name, price_decimals=decimals, size_decimals=8, tick_size=f"{10.0 ** -decimals:.{decimals}f}",
                     lot_size="0.00000001", sim_start_price="1")
        for name, decimals in sorted(surveyed.items())
    ][:16]


def parse_params(pairs: list[str] | None) -> dict:
    """``name=value`` pairs (``--param``): a value is read as JSON when it parses (numbers, true, "text"), else
    taken as text."""
    import msgspec

    params: dict = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {pair!r}: expected name=value")
        try:
            value = msgspec.json.decode(text.encode())
        except msgspec.DecodeError:
            value = text
        params[name.strip()] = value
    return params


def backtest_base_config(args: argparse.Namespace):
    """The config a backtest or conversion runs with: ``--config`` (strategy paths resolved), or for
    recordings without one the recording's own symbols, for event files the symbols they were converted with."""
    import msgspec

    from hft.config import Config, SymbolConfig, resolve_module_paths

    if args.config:
        return resolve_module_paths(load_config(args.config), args.config)
    first = args.inputs[0]
    if first.endswith(".npz"):
        from hft.backtest.events import EventsError, event_file_symbols

        try:
            symbols = [SymbolConfig(**s, sim_start_price="1") for s in event_file_symbols(first)]
        except EventsError as exc:
            raise ConfigError(str(exc)) from None
        return msgspec.structs.replace(Config(), symbols=symbols)
    return msgspec.structs.replace(Config(), symbols=recordings_symbols(args.inputs))


def cmd_backtest(args: argparse.Namespace) -> int:
    from hft.backtest.run import BacktestError, format_result, run_backtest
    from hft.strategy.loader import StrategyError

    config = backtest_base_config(args)
    db_path = args.db or config.persistence.url or config.persistence.db_path
    try:
        result = run_backtest(config, args.inputs, db_path, parse_params(args.param),
                              logging.getLogger("hft.backtest"), args.sample_ms)
    except (BacktestError, StrategyError) as exc:
        print(f"hft backtest: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=float))
    else:
        print(format_result(result))
    return 0


def parse_grid(axes: list[str] | None, sets_file: str | None) -> list[dict]:
    """``--grid name=v1,v2,...`` axes (every combination) or ``--sets FILE`` (a JSON list of objects)."""
    import msgspec

    from hft.backtest.sweep import grid

    if sets_file:
        try:
            sets = msgspec.json.decode(open(sets_file, "rb").read())  # noqa: SIM115
        except (OSError, msgspec.DecodeError) as exc:
            raise ConfigError(f"--sets {sets_file}: {exc}") from None
        if not isinstance(sets, list) or not all(isinstance(s, dict) for s in sets):
            raise ConfigError(f"--sets {sets_file}: expected a JSON list of objects (parameter sets)")
        return sets
    parsed: dict[str, list] = {}
    for axis in axes or []:
        name, sep, values = axis.partition("=")
        if not sep or not name.strip() or not values:
            raise ConfigError(f"--grid {axis!r}: expected name=value1,value2,...")
        parsed[name.strip()] = [parse_params([f"v={v}"])["v"] for v in values.split(",")]
    if not parsed:
        raise ConfigError("give the parameters to sweep: --grid name=v1,v2 ... or --sets FILE.json")
    return grid(parsed)


def cmd_sweep(args: argparse.Namespace) -> int:
    from hft.backtest.run import BacktestError
    from hft.backtest.sweep import format_sweep, run_sweep
    from hft.persistence.store import StoreError
    from hft.strategy.loader import StrategyError

    config = backtest_base_config(args)
    sets = parse_grid(args.grid, args.sets)
    db_path = args.db or config.persistence.url or config.persistence.db_path
    bar = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=len(sets), unit="run", desc="sweep", file=sys.stderr)

    def progress(outcome) -> None:
        if bar is not None:
            bar.update(1)
            if outcome.error is not None:
                bar.write(f"failed: {outcome.params}: {outcome.error}", file=sys.stderr)

    try:
        sweep = run_sweep(config, args.inputs, sets, db_path, args.workers, args.scheduler, args.sample_ms,
                          progress, args.name)
    except (BacktestError, StrategyError, StoreError) as exc:
        print(f"hft sweep: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps({"db": sweep.db_path, "seconds": sweep.seconds, "workers": sweep.workers,
                          "where": sweep.where,
                          "runs": [{"params": o.params, "result": o.result, "error": o.error, "seconds": o.seconds}
                                   for o in sweep.outcomes]}, indent=2, default=float))
    else:
        print(format_sweep(sweep))
    return 1 if sweep.failed else 0


def cmd_convert(args: argparse.Namespace) -> int:
    from hft.backtest.events import EventsError, write_events

    config = backtest_base_config(args)
    started = time.perf_counter()
    try:
        meta = write_events(config, args.inputs, args.out, logging.getLogger("hft.convert"))
    except EventsError as exc:
        print(f"hft convert: {exc}", file=sys.stderr)
        return 2
    size = os.path.getsize(args.out)
    print(f"{args.out}: {meta['messages']:,} messages -> {meta['frames']:,} frames, {meta['events']:,} events "
          f"({size / 1e6:.1f} MB) in {time.perf_counter() - started:.2f} s")
    return 0


def recordings_symbols(paths: list[str]) -> list:
    """The symbols of every recording (consecutive files may add symbols), as ``replay_symbols`` configures them."""
    symbols: dict[str, object] = {}
    for path in paths:
        for symbol in replay_symbols(path):
            symbols.setdefault(symbol.name, symbol)
    return sorted(symbols.values(), key=lambda s: s.name)[:16]


def format_summary(summary: object, reason: str) -> str:
    t2o = summary.tick_to_order_ns
    t2e = summary.tick_to_exec_ns
    pnl = ", ".join(f"{s} {v:+.4f}" for s, v in summary.realized_pnl.items()) or "0"
    fees = ", ".join(f"{s} {v:.4f}" for s, v in summary.fees.items()) or "0"
    match = (
        "match" if (summary.db_orders, summary.db_trades, summary.db_executions)
        == (summary.orders, summary.fills, summary.executions) else "MISMATCH"
    )
    restarts = ", ".join(f"{n} {c}" for n, c in summary.restarts.items() if c) or "none"
    return "\n".join(
        [
            f"run finished ({reason}) after {summary.duration_s:.1f} s",
            f"  ticks          {summary.ticks:,}",
            f"  orders         {summary.orders:,}",
            f"  fills          {summary.fills:,}  (rejected {summary.rejects:,})",
            f"  cancels        {summary.cancels:,} sent, {summary.cancel_rejects:,} too late (a fill won the race); "
            f"{summary.post_only_rejects:,} post-only orders would have crossed",
            f"  risk           {summary.risk_denials:,} actions denied (hft stats: by reason)"
            + (f"; {summary.strategy_faults} strategy instance(s) halted: a callback raised (see the log)"
               if summary.strategy_faults else ""),
            f"  realized PnL   {pnl}  (quote currency, net of fees; fees paid: {fees})",
            f"  tick-to-trade  p50 {t2o['p50'] / 1000:.1f} µs  p99 {t2o['p99'] / 1000:.1f} µs  "
            f"max {t2o['max'] / 1000:.1f} µs  (frame received by feed -> order on the ring, n={t2o['count']})",
            f"  tick-to-exec   p50 {t2e['p50'] / 1000:.1f} µs  p99 {t2e['p99'] / 1000:.1f} µs  "
            f"(-> the order's first report on the ring; includes the simulated entry latency)",
            f"  database       {summary.db_path}",
            f"                 {summary.db_orders} order rows, {summary.db_trades} trade rows, "
            f"{summary.db_executions} execution rows ({match} strategy orders / broker fills / broker reports)",
            f"  restarts       {restarts}",
            "  placement      " + ", ".join(f"{n}:{c}" for n, c in summary.placement.items()),
        ]
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from hft.stats import attach_running, collect, render, with_rates
    from shm_layout.region import LayoutMismatchError

    instance = _instance(args)
    try:
        pipeline = attach_running(instance)
    except (LookupError, LayoutMismatchError) as exc:
        print(f"hft stats: {exc}", file=sys.stderr)
        return 1
    try:
        before = collect(pipeline)
        while True:
            time.sleep(args.interval)
            reading = with_rates(before, collect(pipeline))
            if args.json:
                print(json.dumps(reading, default=float), flush=True)
            else:
                if args.watch:
                    print("\033[2J\033[H", end="")
                print(render(reading), flush=True)
            if not args.watch:
                return 0
            before = reading
    except KeyboardInterrupt:
        return 0
    finally:
        pipeline.close()


def cmd_clean(args: argparse.Namespace) -> int:
    from shm_layout.region import find_segments, remove_segment

    segments = find_segments(_instance(args) if args.instance else None)
    removed = kept = 0
    for segment in segments:
        if not segment.is_hft:
            print(f"skipping {segment.name}: not an hft region (bad header)")
            kept += 1
        elif segment.creator_alive and not args.force:
            print(f"keeping {segment.name}: its supervisor (pid {segment.creator_pid}) is running")
            kept += 1
        elif remove_segment(segment.name):
            print(f"removed {segment.name} (creator pid {segment.creator_pid})")
            removed += 1
    print(f"{removed} stale segment(s) removed, {kept} kept")
    return 0


def cmd_kill_switch(args: argparse.Namespace, value: int) -> int:
    from shm_layout.layout import W_KILL_SWITCH, Pipeline
    from shm_layout.region import RegionMissingError

    try:
        pipeline = Pipeline.attach(_instance(args))
    except RegionMissingError as exc:
        print(f"hft: {exc}", file=sys.stderr)
        return 1
    pipeline.control.words[W_KILL_SWITCH] = value
    print(f"kill switch {'ON: no new exposure' if value else 'off'}")
    pipeline.close()
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask a running supervisor (SIGHUP) to re-read its config file and apply the new [risk] limits."""
    import signal

    from shm_layout.layout import W_SUPERVISOR_PID, Pipeline
    from shm_layout.region import RegionMissingError, pid_alive

    try:
        pipeline = Pipeline.attach(_instance(args), readonly=True)
    except RegionMissingError as exc:
        print(f"hft: {exc}", file=sys.stderr)
        return 1
    pid = int(pipeline.control.words[W_SUPERVISOR_PID])
    pipeline.close()
    if not pid_alive(pid):
        print(f"hft: the supervisor (pid {pid}) is not running: run `hft clean`", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGHUP)
    print(f"asked supervisor {pid} to reload its config file's [risk] limits (its log says what changed)")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    import signal
    import threading

    from hft.recording.recorder import record

    config = load_config(args.config)
    symbols = [s.name for s in config.symbols]
    if args.symbols:
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    server = None
    kind = args.source[0] if args.source else "sim"
    if kind == "sim":
        from hft.sim.server import start_in_thread
        from hft.supervisor import sim_config_for

        server = start_in_thread(sim_config_for(config, symbols))
        ws_base, rest_base = server.ws_url.removesuffix("/stream"), server.http_url
    elif kind == "binance":
        ws_base, rest_base = "wss://stream.binance.com:9443", "https://api.binance.com"
    elif kind == "url" and len(args.source) == 3:
        ws_base, rest_base = args.source[1], args.source[2]
    else:
        raise ConfigError("--source takes: sim | binance | url WS_URL REST_URL")
    try:
        result = record(ws_base, rest_base, symbols, args.out, args.duration, stop, config.source.depth_limit)
    finally:
        if server is not None:
            server.stop()
    print(f"recorded {result.frames} frames and {result.snapshots} snapshots in {result.seconds:.1f} s "
          f"to {result.path} ({result.reconnects} reconnects)")
    return 0 if result.frames > 0 else 1


def cmd_report(args: argparse.Namespace) -> int:
    from hft.persistence.store import is_postgres
    from hft.report import (
        ReportError,
        load_overview,
        load_report,
        overview_json,
        render_overview,
        render_text,
        report_json,
        write_plot,
    )

    if args.db:
        db_path = args.db
    else:  # the config's database: its PostgreSQL URL when it has one, else its SQLite file
        persistence = load_config(args.config).persistence
        db_path = persistence.url or persistence.db_path
    if args.compare is not None:
        return cmd_compare(args, db_path)
    try:
        if is_postgres(db_path) and args.run is None:
            if args.png:
                raise ReportError("--png draws one run's equity curve: pass --run N with it")
            overview = load_overview(db_path)
            print(json.dumps(overview_json(overview), indent=2) if args.json else render_overview(overview))
            return 0
        report = load_report(db_path, args.run)
        # over PostgreSQL there is no directory of the database to put the plot in: only where --png says
        plot = None if args.no_plot or (is_postgres(db_path) and not args.png) else write_plot(report, args.png)
    except ReportError as exc:
        print(f"hft report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report_json(report) | {"plot": str(plot) if plot else None}, indent=2))
    else:
        print(render_text(report))
        if plot:
            print(f"plot: {plot}")
    return 0


def cmd_compare(args: argparse.Namespace, db_path: str) -> int:
    """``hft report --compare [RUN ...]``: runs side by side (all of the database's when none is named)."""
    from hft.report import ReportError, all_run_ids, compare_rows, export_compare, render_compare

    try:
        run_ids = [int(run) for run in args.compare] if args.compare else all_run_ids(db_path)
        rows = compare_rows(db_path, run_ids)
        exported = export_compare(rows, args.export) if args.export else None
    except ValueError as exc:
        print(f"hft report: --compare takes run ids ({exc})", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"hft report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
    else:
        print(render_compare(rows))
    if exported:
        print(f"exported: {exported}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_warm(args: argparse.Namespace) -> int:
    """Compile everything a run of this config needs, ahead of its first run (``procs.warm``)."""
    import importlib

    from hft.config import resolve_module_paths
    from hft.strategy.loader import StrategyError

    config = resolve_module_paths(load_config(args.config), args.config)
    try:
        seconds = importlib.import_module("procs.warm").warm(config, not args.no_backtest, args.ready_file)
    except (StrategyError, RuntimeError) as exc:
        print(f"hft warm: {exc}", file=sys.stderr)
        return 2
    print(f"compiled (or found in the cache) in {seconds:.1f} s: `hft run` starts at once now")
    return 0


def cmd_sim(argv: list[str]) -> int:
    from hft.sim.server import main as sim_main

    return sim_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hft", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the pipeline (simulator by default) and print a summary at the end")
    run.add_argument("--config", help="TOML config file (default: built-in defaults)")
    run.add_argument("--duration", type=_duration, default=None, help="seconds to run (default: until Ctrl-C)")
    run.add_argument("--instance", help="shared-memory instance name (default: from config)")
    run.add_argument("--db", help="SQLite path (default: from config, runs/hft.db)")
    run.add_argument("--source", nargs="+", metavar="KIND",
                     help="sim (default) | binance | replay FILE [FILE ...] | url WS_URL REST_URL")
    run.add_argument("--speed", type=float, default=None,
                     help="replay pace: 0 = as fast as possible (default), 1 = recorded pace, 10 = ten times faster")
    run.add_argument("--plan", action="store_true", help="print which process runs on which core, and exit")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    stats = sub.add_parser("stats", help="read a running pipeline's counters (read-only)")
    stats.add_argument("--config")
    stats.add_argument("--instance")
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--watch", action="store_true", help="refresh every --interval seconds")
    stats.add_argument("--interval", type=float, default=1.0)
    stats.set_defaults(func=cmd_stats)

    report = sub.add_parser("report", help="one run's PnL, Sharpe, drawdown and per-symbol table, plus an equity plot")
    report.add_argument("db", nargs="?", metavar="DB",
                        help="SQLite file or postgresql:// URL (default: the config's persistence.url, else its "
                             "db_path); over PostgreSQL, without --run: every run per host, instance and strategy")
    report.add_argument("--config", help="TOML config file naming the database (default: built-in defaults)")
    report.add_argument("--run", type=int, default=None, metavar="N", help="run id (default: the latest run)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--png", metavar="PATH", help="plot file (default: <db stem>-run<N>.png next to the database; "
                                                      "over PostgreSQL only with --png)")
    report.add_argument("--no-plot", action="store_true", help="do not write the plot")
    report.add_argument("--compare", nargs="*", metavar="RUN", default=None,
                        help="runs side by side: PnL, Sharpe, drawdown, fills, fees, maker share (no RUN: every run)")
    report.add_argument("--export", metavar="PATH", help="with --compare: also write the table (.csv or .parquet)")
    report.set_defaults(func=cmd_report)

    rec = sub.add_parser("record", help="record raw frames and REST snapshots of a source to a gzip file")
    rec.add_argument("--out", required=True, help="output file (gzip, '<ns> <json>' lines)")
    rec.add_argument("--duration", type=_duration, default=60.0, help="seconds to record (default 60)")
    rec.add_argument("--source", nargs="+", metavar="KIND", help="sim (default) | binance | url WS_URL REST_URL")
    rec.add_argument("--symbols", help="comma-separated symbols (default: the config's)")
    rec.add_argument("--config")
    rec.set_defaults(func=cmd_record)

    clean = sub.add_parser("clean", help="remove shared-memory segments left by a dead supervisor")
    clean.add_argument("--instance", help="only this instance (default: all hft instances)")
    clean.add_argument("--force", action="store_true", help="also remove segments of a live supervisor")
    clean.set_defaults(func=cmd_clean)

    for name, value in (("kill", 1), ("resume", 0)):
        command = sub.add_parser(name, help=f"{'raise' if value else 'lower'} the kill switch")
        command.add_argument("--config")
        command.add_argument("--instance")
        command.set_defaults(func=lambda args, value=value: cmd_kill_switch(args, value))

    reload = sub.add_parser("reload", help="apply the config file's [risk] limits to a running pipeline")
    reload.add_argument("--config")
    reload.add_argument("--instance")
    reload.set_defaults(func=cmd_reload)

    backtest = sub.add_parser("backtest", help="run a strategy over recordings in one process (the pipeline's own "
                                               "code, in lock step) and write the run to the database")
    backtest.add_argument("inputs", nargs="+", metavar="INPUT",
                          help="recordings (hft record, hftbacktest, cryptofeed) or event files (hft convert), "
                               "in time order; consecutive recordings continue one book")
    backtest.add_argument("--config", help="TOML config file (default: the recording's symbols, imbalance)")
    backtest.add_argument("--db", help="SQLite path or postgresql:// URL (default: the config's persistence.url, "
                                       "else its db_path, runs/hft.db)")
    backtest.add_argument("--param", action="append", metavar="NAME=VALUE",
                          help="a strategy parameter over the config's (instance.name with several instances)")
    backtest.add_argument("--sample-ms", type=int, default=None,
                          help="equity sample interval on the venue clock (default: persistence.metrics_interval_ms)")
    backtest.add_argument("--json", action="store_true", help="print the result as JSON")
    backtest.set_defaults(func=cmd_backtest)

    sweep = sub.add_parser("sweep", help="backtest a grid (or a list) of strategy parameter sets, on a local "
                                         "process pool or a Dask cluster, every run into one database")
    sweep.add_argument("inputs", nargs="+", metavar="INPUT", help="recordings or event files, in time order")
    sweep.add_argument("--config", help="TOML config file (default: the recording's symbols, imbalance)")
    sweep.add_argument("--grid", action="append", metavar="NAME=V1,V2,...",
                       help="one axis of the grid (repeat for more: every combination runs)")
    sweep.add_argument("--sets", metavar="FILE", help="a JSON list of parameter sets instead of --grid")
    sweep.add_argument("--workers", type=int, default=None, help="local pool size (default: the CPU count)")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:8786",
                       help="run on this Dask distributed scheduler's workers instead of a local pool")
    sweep.add_argument("--db", help="SQLite path or postgresql:// URL every run is merged into (default: the "
                                    "config's persistence.url, else its db_path)")
    sweep.add_argument("--name", default="sweep",
                       help="over PostgreSQL: the instance name the runs carry (default: sweep)")
    sweep.add_argument("--sample-ms", type=int, default=None, help="equity sample interval on the venue clock")
    sweep.add_argument("--json", action="store_true", help="print the results as JSON (no progress bar)")
    sweep.set_defaults(func=cmd_sweep)

    convert = sub.add_parser("convert", help="decode recordings once into an event file that hft backtest reads "
                                             "without JSON")
    convert.add_argument("inputs", nargs="+", metavar="INPUT", help="recordings, in time order")
    convert.add_argument("--out", required=True, help="event file to write (.npz)")
    convert.add_argument("--config", help="TOML config file naming the symbols (default: the recording's)")
    convert.set_defaults(func=cmd_convert)

    warm = sub.add_parser("warm", help="compile the jitted code a run needs ahead of the first run (about a "
                                       "minute on two cores; later runs start in seconds)")
    warm.add_argument("--config", help="TOML config file (its strategies are compiled too)")
    warm.add_argument("--no-backtest", action="store_true", help="skip the single-process backtest's loop")
    warm.add_argument("--ready-file", help=argparse.SUPPRESS)  # touched once the pipeline is compiled (tests)
    warm.set_defaults(func=cmd_warm)

    sub.add_parser("sim-exchange", help="run the Binance-compatible exchange simulator (see --help)",
                   add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=os.environ.get("HFT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if argv and argv[0] == "sim-exchange":
        return cmd_sim(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"hft: bad config: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
