"""Backtest benchmark: recorded data -> results, side by side in one run, on the recorded BTCUSDT file.

Five measurements, the same config (the example market maker: post-only quotes at the touch, cancel/replace on
every move; ``--config`` to change it):

1. ``raw``: ``hft backtest`` on the recording (``run_backtest``: the feed engine decodes every line, the jitted
   loop runs strategy, risk and broker, every order, report and equity sample goes to SQLite), best of
   ``--repeats``; split into the loop, the database and the reading/decoding.
2. ``converted``: the same on the event file ``hft convert`` writes once (conversion timed apart).
3. ``lockstep``: the four-process lock-step replay of the same file and config (``hft run --source replay``),
   its own "replay finished: N messages in S s" and the command's wall time.
4. ``hftbacktest``: hftbacktest's backtest loop on the same file with an equivalent quoting strategy
   (``bench/hftbacktest_ref.py``; an optional bench dependency: skipped, and said so, when it is not installed).
5. ``sweep``: ``hft sweep`` of ``--sets`` parameter sets on 1 and on 2 local workers: the speed-up.

Targets (issue 11): raw -> results >= 200 k lines/s; converted -> results at least as fast as hftbacktest's loop
(aim 2x); a sweep on N workers >= 0.8 x N times one worker.

``python bench/backtest.py [--repeats N] [--sets N] [--json-only]``: a table, then the JSON document.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from hft.backtest.events import write_events  # noqa: E402
from hft.backtest.run import run_backtest  # noqa: E402
from hft.config import load_config, resolve_module_paths  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "binance-spot" / "hftbacktest_spot_btcusdt_20240808.gz"
CONFIG = REPO / "examples" / "market_maker.toml"
TARGET_RAW_LINES_PER_S = 200_000
LOG = logging.getLogger("bench.backtest")


def _best(runs: list) -> object:
    return min(runs, key=lambda r: r.seconds)


def _row(result: object, all_seconds: list[float]) -> dict:
    return {"seconds": result.seconds, "all_seconds": all_seconds, "lines": result.messages,
            "lines_per_s": result.messages / result.seconds, "loop_s": result.loop_seconds,
            "db_s": result.write_seconds,
            "decode_s": max(result.seconds - result.loop_seconds - result.write_seconds, 0.0),
            "loop_lines_per_s": result.messages / result.loop_seconds if result.loop_seconds else None,
            "orders": result.orders, "fills": result.fills, "realized_pnl": result.realized_pnl}


def backtests(config_path: Path, data: Path, repeats: int, tmp: Path) -> dict:
    config = resolve_module_paths(load_config(str(config_path)), str(config_path))
    run_backtest(config, [str(data)], str(tmp / "warm.db"), log=LOG)  # compile or load, not timed
    raw = [run_backtest(config, [str(data)], str(tmp / f"raw{k}.db"), log=LOG) for k in range(repeats)]
    started = time.perf_counter()
    events = tmp / "events.npz"
    write_events(config, [str(data)], events, LOG)
    convert_s = time.perf_counter() - started
    converted = [run_backtest(config, [str(events)], str(tmp / f"conv{k}.db"), log=LOG) for k in range(repeats)]
    same = {(r.orders, r.fills, r.realized_pnl) for r in raw + converted}
    return {"raw": _row(_best(raw), [r.seconds for r in raw]),
            "converted": _row(_best(converted), [r.seconds for r in converted]) | {
                "convert_s": convert_s, "file_bytes": events.stat().st_size},
            "identical_results": len(same) == 1}


def lockstep(config_path: Path, data: Path, tmp: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "hft.cli", "run", "--config", str(config_path), "--source", "replay", str(data),
         "--instance", f"bb{uuid.uuid4().hex[:8]}", "--db", str(tmp / "lockstep.db"), "--json"],
        capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        return {"error": result.stderr[-2000:]}
    found = re.search(r"replay finished: (\d+) messages in ([\d.]+) s", result.stderr)
    lines, seconds = int(found.group(1)), float(found.group(2))
    summary = json.loads(result.stdout)
    return {"lines": lines, "replay_s": seconds, "lines_per_s": lines / seconds, "wall_s": wall,
            "orders": summary["orders"], "fills": summary["fills"]}


def hftbacktest(data: Path, repeats: int) -> dict:
    try:
        import hftbacktest_ref
    except ImportError as exc:
        return {"skipped": f"bench/hftbacktest_ref.py not importable: {exc}"}
    if not hftbacktest_ref.available():
        return {"skipped": "hftbacktest is not installed (pip install hftbacktest): an optional bench dependency"}
    return hftbacktest_ref.run(str(data), repeats)


def sweep(config_path: Path, data: Path, n_sets: int, tmp: Path) -> dict:
    sets = [{"half_spread_ticks": float(k % 4), "skew_ticks": 1.0 + k // 4} for k in range(n_sets)]
    (tmp / "sets.json").write_text(json.dumps(sets))
    out = {}
    for workers in (1, 2):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "hft.cli", "sweep", str(data), "--config", str(config_path), "--sets",
             str(tmp / "sets.json"), "--workers", str(workers), "--db", str(tmp / f"sweep{workers}.db"), "--json"],
            capture_output=True, text=True, timeout=1800, check=False)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            return {"error": result.stderr[-2000:]}
        document = json.loads(result.stdout)
        out[f"workers_{workers}"] = {"seconds": document["seconds"], "wall_s": wall,
                                     "runs_per_s": n_sets / document["seconds"]}
    out["sets"] = n_sets
    out["speedup"] = out["workers_1"]["seconds"] / out["workers_2"]["seconds"]
    out["speedup_per_worker"] = out["speedup"] / 2
    return out


def format_table(document: dict) -> str:
    lines = [f"backtest benchmark on {document['machine']['platform']}, cpus {document['machine']['cpus']}, "
             f"{document['lines']:,} lines of {Path(document['data']).name}"]
    lines.append(f"{'path':<34}{'seconds':>9}{'lines/s':>12}   split")
    for name, label in (("raw", "backtest, recording -> results"), ("converted", "backtest, event file -> results")):
        row = document[name]
        lines.append(f"{label:<34}{row['seconds']:>9.3f}{row['lines_per_s']:>12,.0f}   loop {row['loop_s']:.3f} s "
                     f"({row['loop_lines_per_s']:,.0f} lines/s), database {row['db_s']:.3f} s, "
                     f"read+decode {row['decode_s']:.3f} s")
    lock = document["lockstep"]
    if "replay_s" not in lock:
        lines.append(f"{'lock-step replay, 4 processes':<34}{lock.get('skipped') or lock.get('error', '')[-200:]}")
    else:
        lines.append(f"{'lock-step replay, 4 processes':<34}{lock['replay_s']:>9.3f}{lock['lines_per_s']:>12,.0f}   "
                     f"command wall {lock['wall_s']:.1f} s")
    ref = document["hftbacktest"]
    if "loop_s_best" in ref:
        lines.append(f"{'hftbacktest ' + str(ref.get('version', '')) + ' loop':<34}{ref['loop_s_best']:>9.3f}"
                     f"{ref['lines_per_s']:>12,.0f}   its conversion {ref.get('convert_s', 0):.2f} s")
        conv = document["converted"]
        lines.append(f"ratios: converted->results / hftbacktest loop = {ref['loop_s_best'] / conv['seconds']:.2f}x "
                     f"speed; our loop alone / hftbacktest loop = {ref['loop_s_best'] / conv['loop_s']:.2f}x speed")
    else:
        lines.append(f"{'hftbacktest':<34}{ref.get('skipped') or ref.get('error')}")
    sw = document["sweep"]
    if "error" in sw:
        lines.append(f"sweep: error: {sw['error'][-300:]}")
    else:
        lines.append(f"sweep of {sw['sets']} sets: 1 worker {sw['workers_1']['seconds']:.1f} s, 2 workers "
                     f"{sw['workers_2']['seconds']:.1f} s: speed-up {sw['speedup']:.2f}x "
                     f"({sw['speedup_per_worker']:.2f} x N; target >= 0.8 x N)")
    lines.append(f"target raw >= {TARGET_RAW_LINES_PER_S:,} lines/s: "
                 f"{'met' if document['raw']['lines_per_s'] >= TARGET_RAW_LINES_PER_S else 'NOT met'}; "
                 f"identical orders and fills in every backtest: {document['identical_results']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sets", type=int, default=12, help="parameter sets of the sweep section (0: skip)")
    parser.add_argument("--no-lockstep", action="store_true")
    parser.add_argument("--no-hftbacktest", action="store_true")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    data, config = Path(args.data), Path(args.config)
    if not data.is_file():
        print(f"bench/backtest.py: no data at {data}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hft-bench-backtest-") as folder:
        tmp = Path(folder)
        document = {"benchmark": "backtest", "data": str(data), "config": str(config),
                    "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                "loadavg": os.getloadavg()}}
        document |= backtests(config, data, args.repeats, tmp)
        document["lines"] = document["raw"]["lines"]
        document["lockstep"] = {"skipped": "--no-lockstep"} if args.no_lockstep else lockstep(config, data, tmp)
        document["hftbacktest"] = ({"skipped": "--no-hftbacktest"} if args.no_hftbacktest
                                   else hftbacktest(data, args.repeats))
        document["sweep"] = sweep(config, data, args.sets, tmp) if args.sets > 0 else {"error": "skipped (--sets 0)"}
    document["machine"]["loadavg_end"] = os.getloadavg()
    if not args.json_only:
        print(format_table(document))
        print()
    print(json.dumps(document, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
