"""Feed benchmark: frame in -> snapshot and events published, on recorded Binance data.

Measures, in one run, on ``hftbacktest_spot_btcusdt_20240808.gz`` (real frames) by default:

1. **Latency per frame** of the feed's hot path, exactly what the feed process does per frame after
   ``recv``: ``FeedEngine.on_frame`` (decode, exact parse, book update, top-N snapshot) then ``publish_frame``
   (seqlock write of the changed snapshot, events onto the md.events ring in shared memory). p50/p99/p99.9 per
   kind: ``depthUpdate`` (all, and those with at most 10 levels), ``bookTicker``, ``trade``.
2. **Sustained rate**: the whole file replayed back to back through the same path (no consumer gating: the
   ring is lossy) -> frames/s and events/s of one feed process.
3. **Baselines in the same run**: the default path with its sanity bounds off (price band, size cap and
   venue-time drift, on in the pipeline's default config: their cost is the difference), the engine with its
   jitted byte scanner switched off (msgspec typed decode
   + jitted parse), and a plain-Python feed (``json.loads``, ``Decimal``, dict book, best bid/ask by ``max``/``min``)
   for scale.

Output: a readable table, then JSON (``--json-only`` for JSON alone). The JIT is warmed by a full pass first.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hft.feed.engine import STAT_NAMES, FeedEngine, SymbolSpec
from hft.feed.publish import publish_frame
from hft.recording.formats import FRAME, open_recording
from shm_layout.atomics import monotonic_ns
from shm_layout.layout import EXECUTIONS, MD_EVENTS, ORDERS, PROC_FEED, Pipeline
from shm_layout.records import SYMBOL_INFO
from shm_layout.seqlock import SLOT_WORDS

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-spot" / (
    "hftbacktest_spot_btcusdt_20240808.gz"
)
TARGET_DEPTH10_P50_NS = 5_000


def load(path: Path) -> tuple[list[tuple[int, str | None, bytes, int]], str]:
    """Read the recording into memory: (kind, symbol, payload, receive time); return it and the file's symbol."""
    records = [(r.kind, r.symbol, r.payload, r.ts_ns) for r in open_recording(path)]
    symbols = {s for kind, s, _, _ in records if kind != FRAME and s}
    if len(symbols) != 1:
        raise SystemExit(f"{path}: expected a single-symbol recording, found snapshots for {sorted(symbols)}")
    return records, symbols.pop()


def classify(payload: bytes) -> str:
    if b"@depth" in payload[:64]:
        levels = payload.count(b'["')  # every price level opens with ["
        return "depth<=10" if levels <= 10 else "depth>10"
    if b"@bookTicker" in payload[:64]:
        return "bookTicker"
    if b"@trade" in payload[:64]:
        return "trade"
    return "other"


class FeedPath:
    """The feed process's per-frame path on a real pipeline in shared memory."""

    def __init__(self, symbol: str, fast_path: bool, bounds: bool) -> None:
        table = np.zeros(1, SYMBOL_INFO)
        table[0]["name"] = symbol.encode()
        self.pipeline = Pipeline.create(
            f"feedbench{os.getpid()}x{uuid.uuid4().hex[:6]}", table, {MD_EVENTS: 65536, ORDERS: 64, EXECUTIONS: 64}
        )
        # the pipeline's default bounds: 10 % band, 10,000 BTC, 60 s of drift (checked against the recording's
        # receive time, as a replay does)
        spec = (SymbolSpec(symbol, 0, 2, 8, price_band_ppm=100_000, max_size=10_000 * 10**8, max_drift_ns=60 * 10**9)
                if bounds else SymbolSpec(symbol, 0, 2, 8))
        self.engine = FeedEngine([spec], fast_path=fast_path)
        self.rows = self.engine.snapshots.view(np.int64).reshape(1, SLOT_WORDS)
        self.md = self.pipeline.rings[MD_EVENTS]
        self.proc = self.pipeline.control.process_words(PROC_FEED)

    def frame(self, kind: int, symbol: str | None, payload: bytes, ts_local: int) -> int:
        ts_recv = monotonic_ns()
        if kind == FRAME:
            n = self.engine.on_frame(payload, ts_recv, ts_local)
        else:
            n = max(0, self.engine.on_snapshot(symbol, payload, ts_recv))
        publish_frame(self.engine.events, n, self.rows, self.engine.dirty, self.pipeline.snapshots.words,
                      self.md.ctrl, self.md.slots, self.proc, ts_recv, ts_recv)
        return n

    def close(self) -> None:
        self.pipeline.unlink()
        self.pipeline.close()


def time_frames(path: FeedPath, records: list, kinds: list[str]) -> dict[str, np.ndarray]:
    """Time every frame (ns) from before on_frame to after publish_frame, grouped by kind."""
    samples: dict[str, list[int]] = {}
    for (kind, symbol, payload, ts_local), label in zip(records, kinds, strict=True):
        started = time.perf_counter_ns()
        path.frame(kind, symbol, payload, ts_local)
        elapsed = time.perf_counter_ns() - started
        if kind == FRAME:
            samples.setdefault(label, []).append(elapsed)
    return {label: np.array(values) for label, values in samples.items()}


def sustained(path: FeedPath, records: list, repeats: int) -> tuple[float, float]:
    """Replay everything back to back ``repeats`` times; return (frames/s, events/s)."""
    events = frames = 0
    started = time.perf_counter()
    for _ in range(repeats):
        path.engine.on_disconnect(monotonic_ns())  # a fresh sync each pass, exactly as the file expects
        for kind, symbol, payload, ts_local in records:
            events += path.frame(kind, symbol, payload, ts_local)
            frames += 1
    elapsed = time.perf_counter() - started
    return frames / elapsed, events / elapsed


def python_baseline(records: list) -> dict[str, np.ndarray]:
    """A plain-Python feed: json.loads, exact Decimal parsing, dict book, touch by max/min."""
    bids: dict[Decimal, Decimal] = {}
    asks: dict[Decimal, Decimal] = {}
    samples: dict[str, list[int]] = {}
    for kind, _symbol, payload, _ts in records:
        started = time.perf_counter_ns()
        message = json.loads(payload)
        if kind != FRAME:
            bids = {Decimal(p): Decimal(q) for p, q in message["bids"]}
            asks = {Decimal(p): Decimal(q) for p, q in message["asks"]}
            continue
        data = message["data"]
        if data.get("e") == "depthUpdate":
            for side, levels in ((bids, data["b"]), (asks, data["a"])):
                for price, size in levels:
                    p, q = Decimal(price), Decimal(size)
                    if q == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
            if bids and asks:
                _touch = (max(bids), min(asks))
        elif "b" in data:
            _touch = (Decimal(data["b"]), Decimal(data["a"]))
        else:
            _trade = (Decimal(data["p"]), Decimal(data["q"]))
        samples.setdefault(classify(payload), []).append(time.perf_counter_ns() - started)
    return {label: np.array(values) for label, values in samples.items()}


def summary(values: np.ndarray) -> dict[str, float]:
    return {
        "n": int(values.size),
        "p50_us": float(np.percentile(values, 50)) / 1000,
        "p99_us": float(np.percentile(values, 99)) / 1000,
        "p999_us": float(np.percentile(values, 99.9)) / 1000,
        "mean_us": float(values.mean()) / 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="single-symbol recording")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the file for the sustained rate")
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"recording {args.file} not found (pass --file)", file=sys.stderr)
        return 2
    records, symbol = load(args.file)
    kinds = [classify(payload) for _, _, payload, _ in records]
    result: dict[str, object] = {
        "benchmark": "feed",
        "file": str(args.file),
        "frames": len(records),
        "machine": {
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "affinity": sorted(os.sched_getaffinity(0)), "loadavg": os.getloadavg(),
        },
        "latency": {}, "sustained": {},
    }
    gc.disable()
    try:
        for name, fast, bounds in (("jitted scanner (default)", True, True),
                                   ("jitted scanner, sanity bounds off", True, False),
                                   ("msgspec typed decode", False, True)):
            path = FeedPath(symbol, fast, bounds)
            try:
                time_frames(path, records, kinds)  # warm the JIT and the caches
                path.engine.on_disconnect(monotonic_ns())
                latency = time_frames(path, records, kinds)
                result["latency"][name] = {label: summary(values) for label, values in sorted(latency.items())}
                frames_s, events_s = sustained(path, records, args.repeats)
                result["sustained"][name] = {"frames_per_s": frames_s, "events_per_s": events_s,
                                             "outliers": int(path.engine.stats[STAT_NAMES.index("outliers")])}
            finally:
                path.close()
        baseline = python_baseline(records)
        result["latency"]["plain Python (json + Decimal + dict)"] = {
            label: summary(values) for label, values in sorted(baseline.items())
        }
    finally:
        gc.enable()
    depth10 = result["latency"]["jitted scanner (default)"].get("depth<=10", {}).get("p50_us", float("nan"))
    result["target"] = {"depth<=10 p50 < 5 us": depth10 * 1000 < TARGET_DEPTH10_P50_NS, "measured_us": depth10}
    if not args.json_only:
        print(f"feed benchmark on {args.file.name}: {len(records):,} messages, {platform.platform()}")
        print(f"{'path':<40}{'kind':<12}{'n':>8}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}")
        for name, kinds_summary in result["latency"].items():
            for label, row in kinds_summary.items():
                print(f"{name:<40}{label:<12}{row['n']:>8}{row['p50_us']:>9.2f}{row['p99_us']:>9.2f}"
                      f"{row['p999_us']:>10.2f}")
        for name, row in result["sustained"].items():
            print(f"sustained, {name:<30} {row['frames_per_s']:>12,.0f} frames/s {row['events_per_s']:>14,.0f} "
                  f"events/s")
        met = "MET" if result["target"]["depth<=10 p50 < 5 us"] else "NOT MET"
        print(f"target depthUpdate (<= 10 levels) p50 < 5 µs: {met} ({depth10:.2f} µs)")
        print()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
