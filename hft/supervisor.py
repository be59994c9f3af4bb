"""The supervisor (``hft run``): the only creator and unlinker of shared memory; starts, pins and stops the
four workers (and the exchange simulator), then prints what the run did.

Lifecycle, in order:

1. refuse to start if a live pipeline already owns the instance's segments; remove segments a dead
   supervisor left behind (logged, by name);
2. create every region (``shm_layout.layout.Pipeline``), write the symbol table;
3. start the simulator (unless another source is configured) and wait until it listens;
4. spawn persistence, broker, strategy, feed (consumers before producers) and wait until each runs;
5. run until the duration ends, SIGINT/SIGTERM arrives, or a worker dies for good: a worker that dies
   (signal or crash) is restarted after a doubling backoff while its budget lasts (``[supervisor]``), and
   re-attaches and resumes from its cursors; each worker's state follows ``LIFECYCLE``;
6. stop in stages: raise ``stop_requested`` to each process's stage and wait for it to exit before the next,
   so everything in flight drains downstream (feed -> strategy -> broker -> persistence); a process that
   does not leave in time is terminated, and only then is ``abort_requested`` raised;
7. read the counters, unlink every segment (always, in ``finally``), print the summary.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from hft.config import Config, decode_config, encode_config, load_config
from hft.control import Event, LogLine, ReloadRisk, new_queue, receive, replay_log_line, send
from hft.process_utils import isolated_cores
from hft.validation import ConfigError, decimal_to_fixed
from shm_layout.atomics import store_release
from shm_layout.counters import (
    C_CANCEL_REJECTS,
    C_CANCEL_REQUESTS,
    C_FILLS,
    C_MSGS_OUT,
    C_ORDERS,
    C_POST_ONLY_REJECTS,
    C_REJECTS,
    C_RISK_REJECTS,
    C_ROWS_ORDERS,
    C_ROWS_TRADES,
    C_STRATEGY_FAULTS,
    C_TICKS,
    PSTATE_DEAD,
    PSTATE_FAILED,
    PSTATE_RESTARTING,
    PSTATE_RUNNING,
    W_COUNTERS,
    W_STATE,
    hist_row,
    hist_summary,
)
from shm_layout.layout import (
    EXECUTIONS,
    MD_EVENTS,
    ORDERS,
    PROC_BROKER,
    PROC_FEED,
    PROC_PERSISTENCE,
    PROC_STRATEGY,
    PROCESS_NAMES,
    PROCESS_STAGES,
    RUN_RUNNING,
    RUN_STOPPING,
    W_ABORT_REQUESTED,
    W_RUN_STATE,
    W_STARTED_NS,
    W_STOP_REQUESTED,
    W_STRATEGIES_READY,
    Pipeline,
)
from shm_layout.records import EXEC_REPORT, MD_EVENT, ORDER, SYMBOL_INFO
from shm_layout.region import find_segments, pid_alive, remove_segment

log = logging.getLogger("hft.supervisor")

START_TIMEOUT_S = 180.0  # a first start compiles the jitted loops (cached afterwards)
START_NOTE_S = 10.0  # while workers start, say every this often which ones are still compiling
STOP_TIMEOUT_S = 15.0
SIM_START_TIMEOUT_S = 30.0
WORKER_TARGETS = {
    PROC_FEED: "procs.feed",
    PROC_STRATEGY: "procs.strategy",
    PROC_BROKER: "procs.broker",
    PROC_PERSISTENCE: "procs.persistence",
}
START_ORDER = (PROC_PERSISTENCE, PROC_BROKER, PROC_STRATEGY, PROC_FEED)
# spawned before the strategies are compiled, to start (and compile their own code) meanwhile: none touches the
# database or the market before the run begins (strategy and persistence wait for W_STRATEGIES_READY), so a
# strategy that does not compile stops them with nothing done
EARLY_START = (PROC_BROKER, PROC_FEED, PROC_STRATEGY, PROC_PERSISTENCE)


# A worker's lifecycle, as the supervisor drives it: (state, event) -> next state. The worker writes
# starting / running / stopped into its own process block; the supervisor writes dead / restarting / failed
# there once the worker can no longer write anything (hft stats and the other workers read it).
LIFECYCLE = {
    ("starting", "ready"): "running",
    ("starting", "died"): "dead",
    ("running", "died"): "dead",
    ("dead", "backoff"): "restarting",
    ("dead", "give_up"): "failed",
    ("restarting", "spawned"): "starting",
    ("restarting", "stop"): "starting",  # a stop brings it back at once, to drain its inputs
    ("starting", "stop"): "stopping",
    ("running", "stop"): "stopping",
    ("stopping", "exited"): "stopped",
    ("stopping", "died"): "stopped",
}
SUPERVISOR_WRITTEN = {"dead": PSTATE_DEAD, "restarting": PSTATE_RESTARTING, "failed": PSTATE_FAILED}


class SupervisorError(RuntimeError):
    """The pipeline cannot start (already running, no shared memory, simulator failed)."""


@dataclass
class RunSummary:
    """What ``hft run`` prints at the end (and ``--json`` emits)."""

    duration_s: float
    ticks: int
    orders: int
    fills: int
    rejects: int
    realized_pnl: dict[str, float]
    fees: dict[str, float]
    tick_to_order_ns: dict[str, float]
    tick_to_exec_ns: dict[str, float]
    db_path: str
    db_orders: int
    db_trades: int
    persisted_orders: int
    persisted_trades: int
    placement: dict[str, int]
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    executions: int = 0  # execution reports the broker published
    db_executions: int = -1  # execution rows of this run in the database
    restarts: dict[str, int] = field(default_factory=dict)
    cancels: int = 0  # cancel commands the strategies sent
    cancel_rejects: int = 0  # cancels whose order had already ended (a fill won the race)
    post_only_rejects: int = 0  # post-only orders that would have crossed on arrival
    risk_denials: int = 0  # actions refused by pre-trade risk
    strategy_faults: int = 0  # instances halted because a callback raised


def symbol_table(config: Config) -> np.ndarray:
    """Build the shared-memory symbol table from the config."""
    table = np.zeros(len(config.symbols), SYMBOL_INFO)
    for index, symbol in enumerate(config.symbols):
        table[index]["name"] = symbol.name.encode()
        table[index]["symbol_id"] = index
        table[index]["price_decimals"] = symbol.price_decimals
        table[index]["size_decimals"] = symbol.size_decimals
        table[index]["tick_size"] = decimal_to_fixed(symbol.tick_size, symbol.price_decimals, "tick_size")
        table[index]["lot_size"] = decimal_to_fixed(symbol.lot_size, symbol.size_decimals, "lot_size")
    return table


def plan_cores(config: Config) -> tuple[dict[str, int], list[str]]:
    """Return the core each process will be pinned to and warnings (missing cores, shared cores)."""
    available = sorted(os.sched_getaffinity(0))
    placement: dict[str, int] = {}
    warnings: list[str] = []
    for name in PROCESS_NAMES:
        wanted = getattr(config.processes, name).core
        if wanted < 0:
            placement[name] = -1
            continue
        if wanted not in available:
            fallback = available[wanted % len(available)]
            warnings.append(f"{name}: core {wanted} is not available (have {available}); using core {fallback}")
            wanted = fallback
        placement[name] = wanted
    by_core: dict[int, list[str]] = {}
    for name, core in placement.items():
        if core >= 0:
            by_core.setdefault(core, []).append(name)
    shared = {core: names for core, names in by_core.items() if len(names) > 1}
    if shared:
        text = ", ".join(f"{'+'.join(names)} on core {core}" for core, names in sorted(shared.items()))
        warnings.append(
            f"{len(PROCESS_NAMES)} processes on {len(available)} available cores: sharing {text} "
            "(latency suffers when a spinning process shares a core; see deploy/)"
        )
    isolated = isolated_cores()
    exposed = sorted(core for core in by_core if core not in isolated)
    if exposed:
        warnings.append(
            f"pinned core{'s' if len(exposed) > 1 else ''} {', '.join(map(str, exposed))} not isolated "
            f"(isolcpus: {sorted(isolated) or 'none'}): the kernel also schedules other tasks and interrupts "
            "there (deploy/TUNING.md)"
        )
    for name in PROCESS_NAMES:
        process = getattr(config.processes, name)
        core = placement[name]
        if process.rt_priority > 0 and process.wait == "busy-spin" and (core < 0 or core not in isolated
                                                                         or len(by_core.get(core, [])) > 1):
            warnings.append(f"{name}: SCHED_FIFO with busy-spin on a shared or non-isolated core can starve "
                            "everything else on it, the kernel's per-CPU threads included")
    return placement, warnings


def clean_stale(instance: str) -> list[str]:
    """Remove this instance's segments whose creator is dead; raise if a live supervisor owns any."""
    segments = find_segments(instance)
    alive = [segment for segment in segments if segment.is_hft and segment.creator_alive]
    if alive:
        raise SupervisorError(
            f"pipeline instance {instance!r} is already running (supervisor pid {alive[0].creator_pid}); "
            "stop it first, or use another instance name"
        )
    removed = []
    for segment in segments:
        if remove_segment(segment.name):
            removed.append(segment.name)
    return removed


def _check_shm_space(bytes_needed: int) -> None:
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return
    if free < bytes_needed:
        raise SupervisorError(
            f"/dev/shm has {free / 2**20:.1f} MiB free, the pipeline needs {bytes_needed / 2**20:.1f} MiB "
            "(in Docker raise --shm-size)"
        )


def sim_config_for(config: Config, names: list[str] | None = None) -> object:
    """Return the simulator's ``SimConfig`` for the pipeline config (all symbols, or only ``names``)."""
    from hft.sim.config import SimConfig, SimSymbol

    symbols = [
        SimSymbol(name=s.name, start_price=s.sim_start_price, tick_size=s.tick_size, lot_size=s.lot_size,
                  price_decimals=s.price_decimals, size_decimals=s.size_decimals)
        for s in config.symbols if names is None or s.name in names
    ]
    return SimConfig.from_preset(config.source.sim_volatility, symbols=symbols, seed=config.source.sim_seed,
                                 events_per_second=config.source.sim_events_per_second)


def _sim_main(config_raw: bytes, port_queue: multiprocessing.Queue, supervisor_pid: int) -> None:
    """Spawn target: run the exchange simulator until SIGTERM or the supervisor's death, reporting its port once
    listening. Its parent is the forkserver, which lives as long as any child it forked does: the simulator must
    notice the supervisor's death itself."""
    from hft.sim.server import serve

    config = msgspec.json.decode(config_raw, type=Config)
    sim_config = sim_config_for(config)
    from hft.process_utils import set_parent_death_signal

    set_parent_death_signal()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch_supervisor() -> None:
        while not stop.wait(0.2):
            if not pid_alive(supervisor_pid):
                stop.set()

    threading.Thread(target=watch_supervisor, name="supervisor-watch", daemon=True).start()
    serve(sim_config, host="127.0.0.1", port=0, on_ready=port_queue.put, stop=stop)


# What the forkserver imports once, so that every worker (and the simulator) it forks starts with them loaded:
# a spawned worker imports numpy, numba and the project itself (~0.7 s of CPU each, four at a time on two
# cores), a forked one nothing.
FORKSERVER_PRELOAD = ["numpy", "numba", "msgspec", "hft.config", "hft.supervisor", "procs.common", "procs.feed",
                      "procs.broker", "procs.strategy", "procs.persistence", "hft.sim.server"]


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context workers start from: a forkserver that preloaded the project (started now, so
    it imports while the supervisor goes on). It is single-threaded, unlike the supervisor (log drain, metrics),
    so forking from it is safe; it exits when the supervisor does, and its children then get SIGTERM
    (``hft.process_utils.set_parent_death_signal``). ``HFT_START_METHOD=spawn`` starts fresh interpreters
    instead."""
    method = os.environ.get("HFT_START_METHOD", "forkserver")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return context


def _worker_entry(process: int, config_raw: bytes, parent_pid: int, up: object, down: object) -> None:
    """Spawn target of every worker: import its module there (keeps the supervisor free of jitted code)."""
    import importlib

    from procs.common import set_channels

    set_channels(up, down)
    importlib.import_module(WORKER_TARGETS[process]).main(config_raw, parent_pid)


class Supervisor:
    """Owns one pipeline run."""

    def __init__(self, config: Config, config_path: str | None = None) -> None:
        self.config = config
        self.config_path = config_path  # re-read on SIGHUP (``hft reload``) for new risk limits
        self.up = new_queue()  # every worker's logs and events
        self.down = {process: new_queue() for process in WORKER_TARGETS}  # control messages to each worker
        self.reload_signal = threading.Event()
        self.metrics = None  # hft.prometheus.MetricsServer while running
        self.draining = threading.Event()
        self.drain_thread = threading.Thread(target=self._drain, name="worker-logs", daemon=True)
        self.mp = worker_context()
        self.pipeline: Pipeline | None = None
        self.workers: dict[int, multiprocessing.process.BaseProcess] = {}
        self.sim: multiprocessing.process.BaseProcess | None = None
        self.stop_signal = threading.Event()
        self.placement: dict[str, int] = {}
        self.worker_config_raw = b""
        self.restart_at: dict[int, float] = {}  # process -> monotonic time of its scheduled restart
        self.lifecycle: dict[int, str] = {}  # process -> its LIFECYCLE state
        self.restart_times: dict[int, list[float]] = {}  # process -> when it was restarted (budget window)
        self.spawned_at: dict[int, float] = {}  # process -> when its current life began
        self.short_lives: dict[int, int] = {}  # process -> consecutive lives shorter than restart_stable_s

    # -- start ------------------------------------------------------------------------------------------
    def _resolve_source(self) -> Config:
        source = self.config.source
        if source.kind == "binance":
            resolved = msgspec.structs.replace(
                source, kind="url", ws_url="wss://stream.binance.com:9443", rest_url="https://api.binance.com"
            )
        elif source.kind == "sim":
            port_queue = self.mp.Queue()
            self.sim = self.mp.Process(
                target=_sim_main, args=(encode_config(self.config), port_queue, os.getpid()), name="hft-sim",
                daemon=False
            )
            self.sim.start()
            try:
                port = port_queue.get(timeout=SIM_START_TIMEOUT_S)
            except Exception as exc:
                raise SupervisorError("the exchange simulator did not start listening") from exc
            log.info("exchange simulator (pid %d) listening on 127.0.0.1:%d", self.sim.pid, port)
            resolved = msgspec.structs.replace(
                source, kind="url", ws_url=f"ws://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}"
            )
        else:
            resolved = source
        return msgspec.structs.replace(self.config, source=resolved)

    def start(self) -> None:
        config = self.config
        self.drain_thread.start()
        # every strategy is imported and checked here, before any process or segment exists (a missing file, a
        # misspelled callback, a wrong signature, a bad parameter: one clear error); it is compiled below, while
        # the feed and the broker compile theirs, and the strategy process finds its callbacks in numba's cache
        from hft.strategy.loader import StrategyError
        from hft.strategy.runtime import plan_instances

        try:
            strategies = plan_instances(config, log, compile=False)
        except StrategyError as exc:
            raise SupervisorError(str(exc)) from None
        removed = clean_stale(config.instance)
        if removed:
            log.warning("removed %d stale segments left by a supervisor that died: %s", len(removed),
                        ", ".join(removed))
        capacities = {MD_EVENTS: config.rings.md_events, ORDERS: config.rings.orders,
                      EXECUTIONS: config.rings.executions}
        _check_shm_space(config.rings.md_events * MD_EVENT.itemsize + config.rings.orders * ORDER.itemsize
                         + config.rings.executions * EXEC_REPORT.itemsize + 2**20)
        self.placement, warnings = plan_cores(config)
        for warning in warnings:
            log.warning("%s", warning)
        self.pipeline = Pipeline.create(config.instance, symbol_table(config), capacities)
        control = self.pipeline.control
        control.words[W_STARTED_NS] = time.monotonic_ns()
        self._start_metrics()
        worker_config = self._resolve_source()
        # the placement decided here is what the workers pin to
        processes = worker_config.processes
        for name, core in self.placement.items():
            processes = msgspec.structs.replace(
                processes, **{name: msgspec.structs.replace(getattr(processes, name), core=core)}
            )
        worker_config = msgspec.structs.replace(worker_config, processes=processes)
        self.worker_config_raw = encode_config(worker_config)
        for process in EARLY_START:  # they start (import, load or compile their code) meanwhile
            self._spawn(process)
        try:
            for spec in strategies:
                spec.strategy.compile(config.strategy.boundscheck, log)
                if spec.strategy.compiled:
                    log.info("strategy %s compiled (%s) in %.1f s", spec.strategy.name,
                             ", ".join(spec.strategy.compiled), spec.strategy.compile_seconds)
        except StrategyError as exc:  # nothing has traded: the early workers are stopped with the segments
            raise SupervisorError(str(exc)) from None
        # the strategy process loads the callbacks only now (from numba's cache): it never compiles them itself
        store_release(control.words, W_STRATEGIES_READY, 1)
        for process in START_ORDER:
            if process not in EARLY_START:
                self._spawn(process)
        spawned = time.monotonic()
        deadline = spawned + START_TIMEOUT_S
        next_note = spawned + START_NOTE_S
        for process in START_ORDER:
            block = control.process_words(process)
            while int(block[W_STATE]) != PSTATE_RUNNING:
                worker = self.workers[process]
                if not worker.is_alive():
                    raise SupervisorError(f"{PROCESS_NAMES[process]} exited with code {worker.exitcode} at start")
                now = time.monotonic()
                if now > deadline or self.stop_signal.is_set():
                    raise SupervisorError(f"{PROCESS_NAMES[process]} did not start in {START_TIMEOUT_S:.0f} s")
                if now >= next_note:  # a first run compiles for a while: say who, never a silent minute
                    waiting = [PROCESS_NAMES[p] for p in START_ORDER
                               if int(control.process_words(p)[W_STATE]) != PSTATE_RUNNING]
                    log.info("still starting after %.0f s: %s (compiling numba kernels on a first run or after "
                             "a source change; later runs load them from the cache)", now - spawned,
                             ", ".join(waiting))
                    next_note = now + START_NOTE_S
                time.sleep(0.01)
            self._transition(process, "ready")
        control.words[W_RUN_STATE] = RUN_RUNNING
        log.info("pipeline %r running: %s", config.instance,
                 ", ".join(f"{name} pid {self.workers[i].pid} core {self.placement[name]}"
                           for i, name in enumerate(PROCESS_NAMES)))

    # -- worker logs, events and control ----------------------------------------------------------------
    def _drain(self) -> None:
        """Print every worker's log lines and act on their events (a thread of the supervisor)."""
        while True:
            stopping = self.draining.is_set()
            for message in receive(self.up, timeout=0.0 if stopping else 0.1):
                if isinstance(message, LogLine):
                    replay_log_line(message)
                elif isinstance(message, Event):
                    log.info("%s: %s %s", message.process, message.kind, message.detail)
            if stopping:
                return

    def reload(self) -> bool:
        """Re-read the config file and hand its ``[risk]`` limits to the strategy (no restart). Other changed
        sections are reported and left as they run. Return True if limits were sent."""
        if self.config_path is None:
            log.error("reload: this run has no config file (started without --config): nothing to re-read")
            return False
        try:
            fresh = load_config(self.config_path)
        except (ConfigError, OSError) as exc:
            log.error("reload: %s: keeping the running limits", exc)
            return False
        changed = [name for name in ("symbols", "strategy", "broker", "persistence", "processes", "rings")
                   if getattr(fresh, name) != getattr(self.config, name)]
        if changed:
            log.warning("reload: only [risk] is applied while running; changes to %s need a restart",
                        ", ".join(changed))
        self.config = msgspec.structs.replace(self.config, risk=fresh.risk)
        worker = msgspec.structs.replace(decode_config(self.worker_config_raw), risk=fresh.risk)
        self.worker_config_raw = encode_config(worker)  # a restarted strategy starts with the new limits
        if not send(self.down[PROC_STRATEGY], ReloadRisk(risk=fresh.risk)):
            log.error("reload: the strategy's control queue is full")
            return False
        log.info("reload: new risk limits sent to the strategy")
        return True

    def _transition(self, process: int, event: str) -> str:
        """Move a worker along ``LIFECYCLE``; write the states only the supervisor can write."""
        current = self.lifecycle.get(process, "starting")
        following = LIFECYCLE.get((current, event))
        if following is None:
            log.debug("%s: no transition from %s on %s", PROCESS_NAMES[process], current, event)
            return current
        self.lifecycle[process] = following
        if following in SUPERVISOR_WRITTEN and self.pipeline is not None:
            self.pipeline.control.process_words(process)[W_STATE] = SUPERVISOR_WRITTEN[following]
        return following

    def _spawn(self, process: int) -> None:
        worker = self.mp.Process(
            target=_worker_entry,
            args=(process, self.worker_config_raw, os.getpid(), self.up, self.down[process]),
            name=f"hft-{PROCESS_NAMES[process]}",
        )
        worker.start()
        self.workers[process] = worker
        self.spawned_at[process] = time.monotonic()

    # -- restarts ---------------------------------------------------------------------------------------
    def _on_death(self, process: int, code: int | None) -> str | None:
        """Decide what a worker's death means: schedule its restart (None), or stop the run (the reason).

        Exit code 2 is a worker's clean fatal stop (bad database, bad recording): restarting would only
        repeat it, so the run stops. Signals and crashes restart while the budget lasts."""
        cfg = self.config.supervisor
        name = PROCESS_NAMES[process]
        self._transition(process, "died")
        if process == PROC_FEED and self.config.source.kind == "replay":
            self._transition(process, "give_up")
            log.error("the replaying feed died: a restart would replay the file from its start")
            return "worker-died"
        if name not in cfg.restart or code == 2:
            self._transition(process, "give_up")
            return "worker-died"
        now = time.monotonic()
        recent = [t for t in self.restart_times.get(process, []) if now - t < cfg.restart_window_s]
        self.restart_times[process] = recent
        if len(recent) >= cfg.restart_budget:
            self._transition(process, "give_up")
            log.error("%s died again (code %s): restart budget of %d per %d s spent, stopping the pipeline",
                      name, code, cfg.restart_budget, cfg.restart_window_s)
            return "restart-budget-spent"
        # a crash loop whose every cycle outlasts the window's share (a slow start, then death) never fills the
        # window: lives shorter than restart_stable_s count in a row, and a long enough life clears the count
        lived = now - self.spawned_at.get(process, now)
        self.short_lives[process] = self.short_lives.get(process, 0) + 1 if lived < cfg.restart_stable_s else 0
        if self.short_lives[process] > cfg.restart_budget:
            self._transition(process, "give_up")
            log.error("%s died again (code %s) %.1f s after its start: %d lives in a row shorter than %d s, a crash "
                      "loop; stopping the pipeline", name, code, lived, self.short_lives[process],
                      cfg.restart_stable_s)
            return "restart-budget-spent"
        backoff = min(cfg.restart_backoff_ms * 2 ** len(recent), cfg.restart_backoff_max_ms) / 1000.0
        log.error("%s (pid %d) died with code %s: restarting it in %.1f s (%d of %d restarts in %d s)", name,
                  self.workers[process].pid, code, backoff, len(recent) + 1, cfg.restart_budget,
                  cfg.restart_window_s)
        self.restart_at[process] = now + backoff
        self._transition(process, "backoff")
        return None

    def _restart_due(self) -> None:
        now = time.monotonic()
        for process, when in list(self.restart_at.items()):
            if now < when:
                continue
            del self.restart_at[process]
            self.restart_times.setdefault(process, []).append(now)
            record = self.pipeline.control.process_record(process)
            record["restarts"] += 1
            self._transition(process, "spawned")
            self._spawn(process)
            log.info("%s restarted (pid %d, restart %d)", PROCESS_NAMES[process], self.workers[process].pid,
                     int(record["restarts"]))

    # -- run --------------------------------------------------------------------------------------------
    def wait(self, duration_s: float | None) -> str:
        """Block until the duration passed, a stop signal came, or a worker died; return why."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while True:
            if self.stop_signal.wait(0.05):
                return "signal"
            if self.reload_signal.is_set():
                self.reload_signal.clear()
                self.reload()
            if deadline is not None and time.monotonic() >= deadline:
                return "duration"
            for process, worker in self.workers.items():
                if (process == PROC_FEED and worker.exitcode == 0
                        and self.config.source.kind == "replay"):
                    return "replay-finished"  # end of the recorded file: lock step left nothing in flight
                if not worker.is_alive() and process not in self.restart_at:
                    # its consumer slots stay active: producers back-pressure (counted) until it is back
                    why = self._on_death(process, worker.exitcode)
                    if why is not None:
                        log.error("%s (pid %d) exited unexpectedly with code %s: stopping the pipeline",
                                  PROCESS_NAMES[process], worker.pid, worker.exitcode)
                        self._release_consumer_slots(process)
                        return why
            self._restart_due()
            for process, state in list(self.lifecycle.items()):
                if state == "starting" and int(self.pipeline.control.process_words(process)[W_STATE]) == PSTATE_RUNNING:
                    self._transition(process, "ready")
                    log.info("%s is back (pid %d)", PROCESS_NAMES[process], self.workers[process].pid)
            if self.sim is not None and not self.sim.is_alive():
                log.error("the exchange simulator exited with code %s", self.sim.exitcode)
                return "sim-died"

    def _release_consumer_slots(self, process: int) -> None:
        """Stop block rings from gating on a dead consumer (its cursor stays, so nothing is skipped for it)."""
        for ring, index in self.pipeline.consumer_slots(PROCESS_NAMES[process]):
            ring.deactivate_consumer(index)

    # -- stop -------------------------------------------------------------------------------------------
    def stop(self) -> dict[str, int | None]:
        """Stop the workers stage by stage (see module docstring); return their exit codes."""
        codes: dict[str, int | None] = {}
        if self.pipeline is None:
            return codes
        words = self.pipeline.control.words
        words[W_RUN_STATE] = RUN_STOPPING
        for process in list(self.restart_at):
            self.restart_at[process] = 0.0  # a worker waiting for its restart comes back to drain its inputs
        self._restart_due()
        for process in (PROC_FEED, PROC_STRATEGY, PROC_BROKER, PROC_PERSISTENCE):
            words[W_STOP_REQUESTED] = PROCESS_STAGES[process]
            worker = self.workers.get(process)
            if worker is None:
                continue
            self._transition(process, "stop")
            worker.join(STOP_TIMEOUT_S)
            if worker.is_alive():
                log.error("%s did not stop in %.0f s: terminating it", PROCESS_NAMES[process], STOP_TIMEOUT_S)
                words[W_ABORT_REQUESTED] = 1
                worker.terminate()
                worker.join(5.0)
                if worker.is_alive():
                    worker.kill()
                    worker.join(5.0)
                self._release_consumer_slots(process)
            self._transition(process, "exited")
            codes[PROCESS_NAMES[process]] = worker.exitcode
        if self.sim is not None:
            self.sim.terminate()
            self.sim.join(10.0)
            if self.sim.is_alive():
                self.sim.kill()
                self.sim.join(5.0)
        return codes

    def summarize(self, duration_s: float, codes: dict[str, int | None]) -> RunSummary:
        from hft.persistence.store import summarize as summarize_db

        control = self.pipeline.control

        def counter(process: int, index: int) -> int:
            return int(control.process_words(process)[W_COUNTERS + index])

        persistence = self.config.persistence
        db_path = str(Path(persistence.db_path).resolve())
        realized: dict[str, float] = {}
        fees: dict[str, float] = {}
        db_orders = db_trades = db_executions = -1
        db = None
        if persistence.url:
            import psycopg

            from hft.persistence.pg import redacted, summarize_pg

            db_path = redacted(persistence.url)
            try:
                db = summarize_pg(persistence.url, persistence.host or socket.gethostname(), self.config.instance,
                                  control.generation)
            except (psycopg.Error, OSError) as exc:  # the summary says why it has no database part
                log.warning("run summary: %s unreadable (%s)", db_path, exc)
        elif Path(db_path).exists():
            db = summarize_db(db_path, run_id=control.generation)
        if db is not None:
            db_orders, db_trades = int(db["orders"]), int(db["trades"])
            db_executions = int(db["executions"])
            for symbol, row in db["symbols"].items():
                realized[symbol] = float(row["realized_pnl"])
                fees[symbol] = float(row["fees"] or 0.0)
        return RunSummary(
            duration_s=duration_s,
            ticks=counter(PROC_STRATEGY, C_TICKS),
            orders=counter(PROC_STRATEGY, C_ORDERS),
            fills=counter(PROC_BROKER, C_FILLS),
            rejects=counter(PROC_BROKER, C_REJECTS),
            cancels=counter(PROC_STRATEGY, C_CANCEL_REQUESTS),
            cancel_rejects=counter(PROC_BROKER, C_CANCEL_REJECTS),
            post_only_rejects=counter(PROC_BROKER, C_POST_ONLY_REJECTS),
            risk_denials=counter(PROC_STRATEGY, C_RISK_REJECTS),
            strategy_faults=counter(PROC_STRATEGY, C_STRATEGY_FAULTS),
            realized_pnl=realized,
            fees=fees,
            tick_to_order_ns=hist_summary(hist_row(control.process_words(PROC_STRATEGY), 0)),
            tick_to_exec_ns=hist_summary(hist_row(control.process_words(PROC_BROKER), 1)),
            db_path=db_path,
            db_orders=db_orders,
            db_trades=db_trades,
            persisted_orders=counter(PROC_PERSISTENCE, C_ROWS_ORDERS),
            persisted_trades=counter(PROC_PERSISTENCE, C_ROWS_TRADES),
            placement=self.placement,
            exit_codes=codes,
            executions=counter(PROC_BROKER, C_MSGS_OUT),
            db_executions=db_executions,
            restarts={name: int(control.process_record(i)["restarts"]) for i, name in enumerate(PROCESS_NAMES)},
        )

    def _start_metrics(self) -> None:
        """Serve the shared-memory counters to Prometheus from this process (the hot path never sees it)."""
        cfg = self.config.metrics
        if not cfg.enabled:
            return
        from hft.prometheus import MetricsError, MetricsServer

        self.metrics = MetricsServer(self.pipeline, cfg.host, cfg.port)
        try:
            port = self.metrics.start()
        except MetricsError as exc:
            log.warning("no Prometheus endpoint: %s", exc)
            self.metrics = None
            return
        log.info("Prometheus metrics on http://%s:%d/metrics", cfg.host, port)

    def close(self) -> None:
        """Unlink and unmap every segment (idempotent): runs in ``finally`` whatever happened."""
        if self.metrics is not None:
            self.metrics.stop()  # before unmapping: a scrape never reads memory that is gone
            self.metrics = None
        for worker in self.workers.values():
            if worker.is_alive():
                worker.kill()
                worker.join(5.0)
        if self.drain_thread.is_alive():
            self.draining.set()  # print what the workers logged last
            self.drain_thread.join(5.0)
        if self.sim is not None and self.sim.is_alive():
            self.sim.kill()
            self.sim.join(5.0)
        if self.pipeline is not None:
            self.pipeline.unlink()
            self.pipeline.close()
            self.pipeline = None


def run_pipeline(
    config: Config, duration_s: float | None, config_path: str | None = None
) -> tuple[RunSummary | None, str]:
    """Run one pipeline to the end; return its summary (None if it never started) and why it stopped."""
    supervisor = Supervisor(config, config_path)

    def _on_signal(signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            supervisor.reload_signal.set()
        else:
            supervisor.stop_signal.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        started = time.monotonic()
        supervisor.start()
        running_since = time.monotonic()
        reason = supervisor.wait(duration_s)
        log.info("stopping (%s) after %.1f s", reason, time.monotonic() - running_since)
        codes = supervisor.stop()
        summary = supervisor.summarize(time.monotonic() - running_since, codes)
        log.debug("total wall time %.1f s", time.monotonic() - started)
        return summary, reason
    finally:
        supervisor.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
