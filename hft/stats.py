"""``hft stats``: read a running pipeline's counters through a READ-ONLY mapping.

The mapping is ``PROT_READ``: this tool cannot disturb the pipeline, whatever it does. It registers no ring
consumer (it reads cursors, it does not consume), takes no lock and never writes a byte.
"""

from __future__ import annotations

import time

from shm_layout.counters import (
    PSTATE_NAMES,
    W_HEARTBEAT,
    W_PID,
    W_RESTARTS,
    W_STATE,
    counters_dict,
    hist_row,
    hist_summary,
)
from shm_layout.layout import HISTOGRAM_NAMES, PROCESS_NAMES, W_KILL_SWITCH, W_RUN_STATE, W_SUPERVISOR_PID, Pipeline
from shm_layout.records import N_HISTOGRAMS
from shm_layout.region import pid_alive

RATE_COUNTERS = ("msgs_in", "msgs_out", "frames", "ticks", "orders", "fills", "rows_trades")


def collect(pipeline: Pipeline) -> dict[str, object]:
    """Take one reading of every ring, process block and histogram."""
    control = pipeline.control
    now = time.monotonic_ns()
    processes = {}
    for index, name in enumerate(PROCESS_NAMES):
        block = control.process_words(index)
        heartbeat = int(block[W_HEARTBEAT])
        processes[name] = {
            "pid": int(block[W_PID]),
            "state": PSTATE_NAMES.get(int(block[W_STATE]), "?"),
            "restarts": int(block[W_RESTARTS]),
            "heartbeat_age_ms": max(0.0, (now - heartbeat) / 1e6) if heartbeat else None,
            "counters": counters_dict(block),
            "latency_ns": {
                HISTOGRAM_NAMES[index][h]: hist_summary(hist_row(block, h)) for h in range(N_HISTOGRAMS)
            },
        }
    return {
        "instance": pipeline.instance,
        "supervisor_pid": int(control.words[W_SUPERVISOR_PID]),
        "run_state": int(control.words[W_RUN_STATE]),
        "kill_switch": bool(control.words[W_KILL_SWITCH]),
        "taken_ns": now,
        "rings": [ring.stats() for ring in pipeline.rings.values()],
        "processes": processes,
    }


def with_rates(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    """Add per-second rates of the main counters between two readings."""
    seconds = max(1e-9, (after["taken_ns"] - before["taken_ns"]) / 1e9)
    for name, process in after["processes"].items():
        old = before["processes"][name]["counters"]
        process["rates_per_s"] = {
            key: (process["counters"][key] - old[key]) / seconds
            for key in RATE_COUNTERS
            if process["counters"][key] or old[key]
        }
    return after


def attach_running(instance: str) -> Pipeline:
    """Attach read-only; raise ``LookupError`` with a clear message when no pipeline runs."""
    from shm_layout.region import RegionMissingError

    try:
        pipeline = Pipeline.attach(instance, readonly=True)
    except RegionMissingError:
        raise LookupError(f"no pipeline is running under instance {instance!r} (nothing in /dev/shm)") from None
    supervisor = int(pipeline.control.words[W_SUPERVISOR_PID])
    if not pid_alive(supervisor):
        pipeline.close()
        raise LookupError(
            f"instance {instance!r}: segments exist but their supervisor (pid {supervisor}) is dead; "
            "run `hft clean` to remove them"
        )
    return pipeline


def _us(value: float) -> str:
    return f"{value / 1000:.1f}"


def render(reading: dict[str, object]) -> str:
    """Format one reading as a terminal table."""
    lines = [
        f"pipeline {reading['instance']!r}  supervisor pid {reading['supervisor_pid']}  "
        f"kill switch {'ON' if reading['kill_switch'] else 'off'}",
        "",
        f"{'ring':<22}{'policy':<7}{'capacity':>9}{'head':>12}  {'consumer':<12}{'lag':>8}{'fill':>7}"
        f"{'overruns':>9}{'lost':>8}{'bp waits':>9}",
    ]
    for ring in reading["rings"]:
        name = ring["name"].split(".", 2)[2]
        for i, consumer in enumerate(ring["consumers"] or [{}]):
            prefix = (f"{name:<22}{ring['policy']:<7}{ring['capacity']:>9}{ring['head']:>12}  " if i == 0
                      else " " * 52)
            if consumer:
                lines.append(
                    f"{prefix}{consumer['name']:<12}{consumer['lag']:>8}{consumer['fill'] * 100:>6.1f}%"
                    f"{consumer['overruns']:>9}{consumer['lost']:>8}"
                    f"{ring['backpressure_waits'] if i == 0 else '':>9}"
                )
    lines += ["", f"{'process':<12}{'pid':>8}{'state':>11}{'restarts':>9}{'heartbeat':>11}  rates/s and counters"]
    for name, process in reading["processes"].items():
        age = process["heartbeat_age_ms"]
        age_text = f"{age:.0f} ms" if age is not None else "-"
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in process.get("rates_per_s", {}).items())
        counters = process["counters"]
        shown = {k: v for k, v in counters.items() if v and k not in RATE_COUNTERS}
        lines.append(f"{name:<12}{process['pid']:>8}{process['state']:>11}{process['restarts']:>9}{age_text:>11}"
                     f"  {rates}")
        if shown:
            lines.append(" " * 53 + ", ".join(f"{k} {v:,}" for k, v in shown.items()))
    lines += ["", f"{'latency (µs)':<30}{'count':>10}{'p50':>9}{'p99':>9}{'p99.9':>9}{'max':>10}"]
    for name, process in reading["processes"].items():
        for hist_name, summary in process["latency_ns"].items():
            if summary["count"]:
                lines.append(
                    f"{name + '.' + hist_name:<30}{summary['count']:>10}{_us(summary['p50']):>9}"
                    f"{_us(summary['p99']):>9}{_us(summary['p999']):>9}{_us(summary['max']):>10}"
                )
    return "\n".join(lines)
