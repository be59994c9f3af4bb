"""Shared fixtures: unique shared-memory instance names (cleaned up afterwards) and spawned child processes."""

from __future__ import annotations

import _posixshmem
import multiprocessing as mp
import os
import queue as queue_module
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.pg import pg_database, pg_server  # noqa: F401 (fixtures: one real PostgreSQL server per session)

# A property test's examples are derived from its name, the same in every run, so CI never fails on an example
# nobody has seen before (a random run found a subnormal equity curve once); `HYPOTHESIS_RANDOM=1 python -m
# pytest` explores fresh examples, and what it finds becomes a fix and, where it matters, a narrower strategy.
# 30 examples each (hypothesis's default is 100): the suite must stay under 10 minutes on 2 cores.
settings.register_profile("repeatable", derandomize=True, max_examples=30)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_RANDOM") == "1" else "repeatable")

SHM_DIR = "/dev/shm"
WARM_TIMEOUT_S = 900
# the strategies most pipeline tests run, compiled with the rest by the background `hft warm`
WARM_CONFIG = """
[[strategy.instances]]
name = "seed"
module = "imbalance"
symbols = ["BTCUSDT"]
[[strategy.instances]]
name = "maker"
module = "{maker}"
symbols = ["ETHUSDT"]
"""
_warming: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start `hft warm` in the background: the unit tests run on one core while the pipeline compiles on the
    other, and the tests that start pipelines (``warm_pipeline``) find it compiled instead of each compiling it
    under a start timeout. ``HFT_TEST_NO_WARM=1`` skips it."""
    if os.environ.get("HFT_TEST_NO_WARM") == "1":
        return
    repo = Path(__file__).resolve().parent.parent
    config = Path(tempfile.mkdtemp(prefix="hft-warm-")) / "warm.toml"
    config.write_text(WARM_CONFIG.format(maker=repo / "examples" / "market_maker.py"))
    log = open(config.with_suffix(".log"), "w")  # noqa: SIM115 (read when the warm is waited for)
    _warming["ready"] = config.with_suffix(".ready")
    _warming["proc"] = subprocess.Popen([sys.executable, "-m", "hft.cli", "warm", "--config", str(config),
                                         "--ready-file", str(_warming["ready"])],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=repo)
    _warming["log"] = config.with_suffix(".log")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A session shorter than the warm kills it; the throwaway pipeline it was compiling in (instance
    ``warm<pid>...``) would be left in /dev/shm, so its segments are removed here."""
    proc = _warming.get("proc")
    if isinstance(proc, subprocess.Popen) and proc.poll() is None:
        proc.kill()
        proc.wait(30)
        _unlink_matching(f"hft.warm{proc.pid}")


@pytest.fixture(scope="session")
def warm_pipeline() -> None:
    """Wait for the background `hft warm` (if any) to have compiled the pipeline (it goes on with the
    backtest's loop meanwhile: ``warm_backtest``)."""
    proc = _warming.get("proc")
    if not isinstance(proc, subprocess.Popen):
        return
    ready = Path(str(_warming["ready"]))
    deadline = time.monotonic() + WARM_TIMEOUT_S
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not ready.exists():
        _warm_failed(proc)


@pytest.fixture(scope="session")
def warm_backtest(warm_pipeline: None) -> None:
    """Wait for the background `hft warm` (if any) to have compiled the backtest's loop too."""
    proc = _warming.get("proc")
    if isinstance(proc, subprocess.Popen) and proc.wait(WARM_TIMEOUT_S) != 0:
        _warm_failed(proc)


def _warm_failed(proc: subprocess.Popen) -> None:
    pytest.fail(f"hft warm failed ({proc.poll()}): {Path(str(_warming['log'])).read_text()[-3000:]}")


def _unlink_matching(token: str) -> list[str]:
    removed = []
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return removed
    for entry in entries:
        if token in entry:
            try:
                _posixshmem.shm_unlink("/" + entry)
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


@pytest.fixture
def instance() -> Iterator[str]:
    """Yield a fresh instance name; afterwards unlink ``hft.<instance>.*`` and every segment naming it."""
    name = f"t{os.getpid()}x{uuid.uuid4().hex[:10]}"
    yield name
    _unlink_matching(name)


class Children:
    """Spawned child processes (start method ``spawn``) with a result queue; killed at teardown if alive."""

    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.procs: list[Any] = []

    def start(self, target: Callable[..., None], *args: Any) -> Any:
        """Start ``target(*args, queue)`` in a spawned process."""
        proc = self.ctx.Process(target=target, args=(*args, self.queue), daemon=True)
        proc.start()
        self.procs.append(proc)
        return proc

    def results(self, count: int, timeout: float) -> list[Any]:
        """Collect ``count`` items the children put on the queue; fail fast if a child dies without one."""
        deadline = time.monotonic() + timeout
        items: list[Any] = []
        while len(items) < count:
            try:
                items.append(self.queue.get(timeout=0.05))
                continue
            except queue_module.Empty:
                pass
            crashed = [p for p in self.procs if p.exitcode not in (None, 0)]
            if crashed:
                pytest.fail(f"child process(es) died: {[(p.name, p.exitcode) for p in crashed]}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for child results ({len(items)}/{count})")
        return items

    def join(self, timeout: float) -> None:
        """Wait for every child to exit with status 0."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        alive = [p.name for p in self.procs if p.is_alive()]
        if alive:
            self.kill_all()
            pytest.fail(f"child process(es) did not exit within {timeout} s: {alive}")
        failed = [(p.name, p.exitcode) for p in self.procs if p.exitcode != 0]
        assert not failed, f"child process(es) failed: {failed}"

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)


@pytest.fixture
def children() -> Iterator[Children]:
    """Yield a ``Children`` helper; any child still running at teardown is killed (by its own pid)."""
    helper = Children()
    yield helper
    helper.kill_all()
    helper.queue.close()
    helper.queue.join_thread()
