"""CPU placement: isolated-core parsing, the --plan warnings, and priorities applied in a child process."""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

from hft.config import Config, ProcessConfig, ProcessesConfig
from hft.process_utils import apply_priority, isolated_cores
from hft.supervisor import plan_cores


def test_isolated_cores_when_sysfs_lists_ranges_then_every_core(tmp_path: Path) -> None:
    path = tmp_path / "isolated"
    path.write_text("2-4,7\n")
    assert isolated_cores(str(path)) == {2, 3, 4, 7}
    path.write_text("\n")
    assert isolated_cores(str(path)) == set()
    assert isolated_cores(str(tmp_path / "missing")) == set()


def test_plan_when_all_on_one_core_then_sharing_and_isolation_warnings() -> None:
    one = ProcessConfig(core=0, wait="busy-spin", rt_priority=50)
    config = Config(processes=ProcessesConfig(feed=one, strategy=one, broker=one, persistence=one))
    placement, warnings = plan_cores(config)
    assert set(placement.values()) == {0}
    text = "\n".join(warnings)
    assert "feed+strategy+broker+persistence on core 0" in text
    if 0 not in isolated_cores():
        assert "pinned core 0 not isolated" in text
    assert text.count("SCHED_FIFO with busy-spin") == 4


def test_plan_when_core_missing_then_falls_back_and_says_so() -> None:
    missing = max(os.sched_getaffinity(0)) + 64
    config = Config(processes=ProcessesConfig(strategy=ProcessConfig(core=missing)))
    placement, warnings = plan_cores(config)
    assert placement["strategy"] in os.sched_getaffinity(0)
    assert any(f"core {missing} is not available" in warning for warning in warnings)


def _apply_and_report(rt_priority: int, nice: int, out: multiprocessing.Queue) -> None:
    apply_priority(rt_priority, nice, logging.getLogger("test"))
    out.put((os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, os.getpriority(os.PRIO_PROCESS, 0)))


def test_apply_priority_when_asked_then_child_runs_fifo_and_niced() -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_apply_and_report, args=(0, 5, out))
    child.start()
    policy, _priority, nice = out.get(timeout=30)
    child.join(10)
    assert (policy, nice) == (os.SCHED_OTHER, 5)
    if os.geteuid() == 0:  # SCHED_FIFO needs CAP_SYS_NICE
        child = ctx.Process(target=_apply_and_report, args=(10, 0, out))
        child.start()
        policy, priority, _nice = out.get(timeout=30)
        child.join(10)
        assert (policy, priority) == (os.SCHED_FIFO, 10)
