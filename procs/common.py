"""What every worker process does around its loop: pin, attach, announce, watch its parent, leave cleanly.

Invariants a worker keeps:

* It pins itself to its core before starting any thread (``sched_setaffinity`` pins the calling thread only).
* It attaches to memory its supervisor created and never creates or unlinks a segment.
* It asks the kernel to SIGTERM it when the supervisor dies (``PR_SET_PDEATHSIG``) and also checks its
  parent pid between loop passes, so an orphan never keeps running against segments nobody owns.
* Ctrl-C in a terminal reaches the whole process group: workers ignore SIGINT and leave in the order the
  supervisor's stop stages dictate. SIGTERM sent to a worker directly makes it leave after the current pass.
* On the way out it marks its consumer slots inactive (a departed consumer must not stall a block ring's
  producer) and its state stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from hft.config import Config, decode_config
from hft.control import Event, QueueLogHandler, receive, send
from hft.process_utils import apply_priority, pin_to_core, set_parent_death_signal
from shm_layout.atomics import monotonic_ns
from shm_layout.counters import PSTATE_RUNNING, PSTATE_STARTING, PSTATE_STOPPED, W_PID, W_STATE
from shm_layout.layout import (
    PROCESS_NAMES,
    PROCESS_STAGES,
    W_ABORT_REQUESTED,
    W_KILL_SWITCH,
    W_STOP_REQUESTED,
    Pipeline,
)
from shm_layout.region import pid_alive
from shm_layout.wait import WAIT_NAMES

LOOP_SLICE_NS = 100_000_000  # jitted loops come back to Python this often for housekeeping
WARM_ONLY_ENV = "HFT_WARM_ONLY"  # set by procs.warm: a worker compiles (or loads) its jitted code, then leaves
COMPILED_AFTER_S = 3.0  # a warm-up longer than this compiled (loading from numba's cache takes well under it)

# the supervisor's queues (hft.control), handed over by the spawn target before main() runs
_channels: list[object] = [None, None]


def set_channels(up: object, down: object) -> None:
    """Called by the supervisor's spawn target: logs and events go up, control messages come down."""
    _channels[0], _channels[1] = up, down


class ProcessWatch:
    """Whether a process (not our parent, so no SIGCHLD) has exited, cheaply: a pidfd turns readable when it
    exits (zombies included); where pidfds are missing (Linux < 5.3) it falls back to reading /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.poller: select.poll | None = None
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return  # no pidfd here, or the process is gone already: gone() reads /proc
        self.fd = fd
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def gone(self) -> bool:
        if self.poller is None:
            return not pid_alive(self.pid)
        return bool(self.poller.poll(0))


@dataclass
class WorkerContext:
    """Everything a process module needs: its memory, its config and its identity."""

    process: int
    name: str
    config: Config
    pipeline: Pipeline
    log: logging.Logger
    parent_pid: int
    wait_strategy: int
    terminate: list[bool] = field(default_factory=lambda: [False])
    started_under: int = field(default_factory=os.getppid)  # the parent at start: the supervisor or its forkserver
    warm_only: bool = field(default_factory=lambda: os.environ.get(WARM_ONLY_ENV) == "1")  # procs.warm
    supervisor_watch: ProcessWatch = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor_watch = ProcessWatch(self.parent_pid)
    @property
    def control_words(self) -> np.ndarray:
        return self.pipeline.control.words

    @property
    def proc_words(self) -> np.ndarray:
        return self.pipeline.control.process_words(self.process)

    @property
    def stage(self) -> int:
        return PROCESS_STAGES[self.process]

    stop_index = W_STOP_REQUESTED
    kill_index = W_KILL_SWITCH
    abort_index = W_ABORT_REQUESTED

    @contextlib.contextmanager
    def warming(self, what: str) -> Iterator[None]:
        """Say what this process compiles (or loads from numba's cache) and how long it took: a first run
        compiles for a while, and the log then shows who, never a silent minute."""
        started = time.perf_counter()
        self.log.info("%s: loading its compiled code (compiled on a first run or after a source change)", what)
        yield
        seconds = time.perf_counter() - started
        self.log.info("%s ready in %.1f s%s", what, seconds, " (compiled)" if seconds > COMPILED_AFTER_S else "")

    def mark_running(self) -> None:
        """Tell the supervisor this process is ready: call after warming the JIT, before the first real pass."""
        self.proc_words[W_STATE] = PSTATE_RUNNING

    def should_exit(self) -> bool:
        """True if told to terminate by signal, or the supervisor is gone (this process's parent changed: the
        supervisor itself, or the forkserver it started, which exits with it; or the supervisor's pid is gone).

        Called between every loop slice, so it must be cheap: it polls a pidfd of the supervisor (~1 µs) rather
        than reading ``/proc/<pid>/stat`` (~140 µs, during which market data waits)."""
        return self.terminate[0] or os.getppid() != self.started_under or self.supervisor_watch.gone()

    def stop_reached(self) -> bool:
        return int(self.control_words[W_STOP_REQUESTED]) >= self.stage

    def control_messages(self) -> list[object]:
        """Messages the supervisor sent this worker since the last call (between loop slices only)."""
        return receive(_channels[1]) if _channels[1] is not None else []

    def send_event(self, kind: str, detail: str = "") -> None:
        if _channels[0] is not None:
            send(_channels[0], Event(process=self.name, kind=kind, detail=detail))


def setup_logging(name: str) -> logging.Logger:
    """Log to the supervisor through the up queue (it prints every worker's lines); to stderr without one."""
    logging.basicConfig(
        level=os.environ.get("HFT_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if _channels[0] is not None:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(QueueLogHandler(_channels[0], name, os.getpid()))
    return logging.getLogger(f"hft.{name}")


def worker_main(process: int, config_raw: bytes, parent_pid: int, run: Callable[[WorkerContext], int]) -> None:
    """Entry point of every worker (a spawn target): bootstrap, ``run(ctx)``, leave cleanly, exit its code."""
    set_parent_death_signal()
    name = PROCESS_NAMES[process]
    config = decode_config(config_raw)
    placement = getattr(config.processes, name)
    log = setup_logging(name)
    pin_to_core(placement.core, log)
    apply_priority(placement.rt_priority, placement.nice, log)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminate = [False]

    def _on_sigterm(signum: int, frame: object) -> None:
        terminate[0] = True

    signal.signal(signal.SIGTERM, _on_sigterm)
    if not pid_alive(parent_pid):
        log.error("supervisor %d is gone before start: exiting", parent_pid)
        sys.exit(3)
    pipeline = Pipeline.attach(config.instance)
    ctx = WorkerContext(
        process=process, name=name, config=config, pipeline=pipeline, log=log, parent_pid=parent_pid,
        wait_strategy=WAIT_NAMES[placement.wait], terminate=terminate,
    )
    block = ctx.proc_words
    block[W_PID] = os.getpid()
    block[W_STATE] = PSTATE_STARTING
    record = pipeline.control.process_record(process)
    record["started_ns"] = monotonic_ns()
    record["core"] = placement.core
    for ring, index in pipeline.consumer_slots(name):
        ring.claim_consumer(index)
        missed = ring.activate_consumer(index)
        if missed:
            log.error("%s: lapped while inactive, %d records were overwritten before this start",
                      ring.region.name, missed)
    code = 1
    try:
        code = run(ctx)  # run() warms its jitted code, then calls ctx.mark_running()
    except Exception:
        log.exception("%s failed", name)
        code = 1
    finally:
        for ring, index in pipeline.consumer_slots(name):
            ring.deactivate_consumer(index)
        block[W_STATE] = PSTATE_STOPPED
        pipeline.close()
        logging.shutdown()
    sys.exit(code)


def sleep_briefly(seconds: float = 0.001) -> None:
    time.sleep(seconds)
