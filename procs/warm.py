"""``hft warm``: compile every jitted path of a pipeline ahead of its first run, in parallel.

A first run (a fresh clone, or after a change to the project's sources) compiles the feed, the broker and
the strategy engine for a minute on two cores, and each process compiles while the others wait for it.
``warm`` does the same work through the same code, without market data or a database: it creates a throwaway
pipeline in shared memory and starts the feed, broker and strategy processes in a mode that returns once their
code is compiled (``procs.common.WARM_ONLY_ENV``), while it compiles the configured strategies itself. Every
later ``hft run`` (and the tests) then loads the code from numba's caches.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import uuid
from pathlib import Path

import msgspec

from hft.config import Config, encode_config
from procs.common import WARM_ONLY_ENV

log = logging.getLogger("hft.warm")


def _warm_worker(process: int, config_raw: bytes, parent_pid: int) -> None:
    os.environ[WARM_ONLY_ENV] = "1"
    import importlib

    from hft.supervisor import WORKER_TARGETS

    importlib.import_module(WORKER_TARGETS[process]).main(config_raw, parent_pid)


def warm(config: Config, backtest: bool = True, ready_file: str | None = None) -> float:
    """Compile everything ``config`` runs (and, with ``backtest``, the single-process backtest's loop); return the
    seconds it took; ``ready_file`` is created once the pipeline's own code is compiled. Raise ``StrategyError``
    for a strategy that does not load or compile, ``RuntimeError`` if a process failed."""
    from hft.strategy.runtime import plan_instances
    from hft.supervisor import symbol_table
    from shm_layout.atomics import store_release
    from shm_layout.layout import (
        EXECUTIONS,
        MD_EVENTS,
        ORDERS,
        PROC_BROKER,
        PROC_FEED,
        PROC_STRATEGY,
        PROCESS_NAMES,
        W_STRATEGIES_READY,
        Pipeline,
    )

    started = time.monotonic()
    unpinned = {name: msgspec.structs.replace(getattr(config.processes, name), core=-1, rt_priority=0, nice=0)
                for name in ("feed", "strategy", "broker", "persistence")}
    config = msgspec.structs.replace(
        config, instance=f"warm{os.getpid()}{uuid.uuid4().hex[:6]}",
        processes=msgspec.structs.replace(config.processes, **unpinned),
        source=msgspec.structs.replace(config.source, kind="replay", replay_path="-"),  # no venue to ask
    )
    plan = plan_instances(config, log, compile=False)  # a bad strategy: refused before anything starts
    pipeline = Pipeline.create(config.instance, symbol_table(config), {MD_EVENTS: 1024, ORDERS: 1024,
                                                                       EXECUTIONS: 1024})
    context = multiprocessing.get_context("spawn")
    workers = []
    try:
        for process in (PROC_BROKER, PROC_FEED, PROC_STRATEGY):
            worker = context.Process(target=_warm_worker, args=(process, encode_config(config), os.getpid()),
                                     name=f"warm-{PROCESS_NAMES[process]}")
            worker.start()
            workers.append(worker)
        for spec in plan:
            spec.strategy.compile(config.strategy.boundscheck, log)
        store_release(pipeline.control.words, W_STRATEGIES_READY, 1)
        for worker in workers:
            worker.join()
        failed = [f"{w.name} (exit code {w.exitcode})" for w in workers if w.exitcode != 0]
        if failed:
            raise RuntimeError(f"warming failed in {', '.join(failed)}: see the log above")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        pipeline.unlink()
        pipeline.close()
    if ready_file:
        Path(ready_file).touch()  # the pipeline is compiled: whoever waits for it may start
    if backtest:
        # after the processes, with no shared memory left to leak if this is killed: the backtest's loop calls
        # their kernels and loads them from the cache
        from hft.backtest.events import compile_backtest

        compiled = time.monotonic()
        compile_backtest()
        log.info("backtest loop compiled in %.1f s", time.monotonic() - compiled)
    return time.monotonic() - started
