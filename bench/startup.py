"""Start-up benchmark: from `hft run` to the first order on the ring, cold, warm and after a strategy edit.

The edit-run loop of a user who writes strategies: ``hft run --config`` of a copy of the example market maker
(``examples/market_maker.py`` and ``.toml``) against the simulator, timed from the command's start until the
strategy's ``orders`` counter (shared memory, read from this process) is non-zero, then stopped with SIGTERM.
Three starts, in order:

* ``cold``: empty numba caches (a fresh ``XDG_CACHE_HOME``): what a fresh clone's first run costs;
* ``warm``: the same again: everything loads from the caches;
* ``edited``: after a one-line change of the strategy (a constant in ``on_bbo``): only its callbacks recompile.

Each run's own log says which process compiled what and for how long; the per-process lines are reported.
``python bench/startup.py [--runs N] [--json-only]`` (N: repetitions of the warm and edited starts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shm_layout.counters import C_ORDERS, W_COUNTERS  # noqa: E402
from shm_layout.layout import PROC_STRATEGY, Pipeline  # noqa: E402
from shm_layout.region import LayoutMismatchError, RegionMissingError  # noqa: E402

TARGETS_S = {"warm": 3.0, "edited": 15.0, "cold": 45.0}
TIMEOUT_S = 400.0
READY = re.compile(r"hft\.(\w+) INFO (.+) ready in ([0-9.]+) s")


def first_order(config: Path, cache_home: Path) -> dict:
    """Start `hft run`, return the seconds to its first order and what each process said it compiled."""
    instance = f"su{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("HFT_STRATEGY_CACHE_DIR", None)
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read back after the run, closed at the end)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "hft.cli", "run", "--config", str(config), "--duration", "600",
                             "--instance", instance, "--db", str(cache_home / f"{instance}.db")],
                            stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=str(REPO))
    seconds = None
    pipeline = None
    try:
        while time.monotonic() - started < TIMEOUT_S and proc.poll() is None:
            if pipeline is None:
                try:
                    pipeline = Pipeline.attach(instance, readonly=True)
                except (RegionMissingError, LayoutMismatchError, FileNotFoundError, ValueError):  # not there yet
                    time.sleep(0.005)
                    continue
            if int(pipeline.control.process_words(PROC_STRATEGY)[W_COUNTERS + C_ORDERS]) > 0:
                seconds = time.monotonic() - started
                break
            time.sleep(0.002)
    finally:
        if pipeline is not None:
            pipeline.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.seek(0)
    text = log.read()
    log.close()
    ready = [{"process": m.group(1), "what": m.group(2), "seconds": float(m.group(3))} for m in READY.finditer(text)]
    compiled = re.findall(r"strategy (\S+) compiled \(([^)]*)\) in ([0-9.]+) s", text)
    return {"seconds": seconds, "ready": ready, "strategy_compiled": compiled,
            "error": None if seconds is not None else text[-2000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hft-startup-"))
    try:
        for name in ("market_maker.py", "market_maker.toml"):
            shutil.copy(REPO / "examples" / name, work / name)
        strategy = work / "market_maker.py"
        config = work / "market_maker.toml"
        cache = work / "cache"
        results: dict[str, list[dict]] = {"cold": [first_order(config, cache)], "warm": [], "edited": []}
        original = strategy.read_text()
        for run in range(args.runs):
            results["warm"].append(first_order(config, cache))  # whatever is in the file, compiled before
            edited = original.replace("    if bid <= 0 or ask <= bid:", f"    if bid <= {run + 1} or ask <= bid:", 1)
            assert edited != original, "the one-line edit did not apply"
            strategy.write_text(edited)
            results["edited"].append(first_order(config, cache))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document = {
        "benchmark": "startup",
        "machine": {"platform": platform.platform(), "cpus": sorted(os.sched_getaffinity(0)),
                    "loadavg": os.getloadavg()},
        "targets_s": TARGETS_S,
        "results": results,
        "summary": {kind: [r["seconds"] for r in runs] for kind, runs in results.items()},
    }
    if not args.json_only:
        print("hft run -> first order on the ring (examples/market_maker, simulator), seconds")
        for kind, runs in results.items():
            values = ", ".join(f"{r['seconds']:.1f}" if r["seconds"] is not None else "FAILED" for r in runs)
            print(f"  {kind:<8} {values:<30} target < {TARGETS_S[kind]:.0f} s")
            for row in runs[0]["ready"]:
                print(f"             {row['process']:<12} {row['what']:<34} {row['seconds']:.1f} s")
            for name, callbacks, seconds in runs[0]["strategy_compiled"]:
                print(f"             supervisor   strategy {name} ({callbacks}) compiled in {seconds} s")
        print()
    print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
