"""Tests of `lqbench.profiling`: peak memory above the baseline and wall time, in a subprocess."""
import pathlib

import lqbench  # noqa: F401  (selects tf-keras before TensorFlow)

import numpy as np
import pytest

from lqbench import profiling

MIB = 2**20
TARGETS = str(pathlib.Path(__file__).with_name("_profiling_targets.py"))


def test_measure_counts_training_allocations_not_the_baseline():
    p = profiling.measure(f"{TARGETS}:allocating_setup", baseline_mib=150, peak_mib=100, sleep_s=0.3, epochs=3)
    assert p.device == "cpu" and p.peak_source in ("VmHWM", "ru_maxrss")
    assert p.baseline_bytes > 150 * MIB
    assert 95 * MIB <= p.training_bytes <= 115 * MIB, p.training_bytes / MIB
    assert p.wall_time_s >= 0.3 and p.epochs == 3
    assert p.time_per_epoch_s == pytest.approx(p.wall_time_s / 3)
    assert p.result["checksum"] > 0
    assert p.to_dict()["training_bytes"] == p.training_bytes


def test_measure_sets_the_allocator_environment():
    q = profiling.measure(f"{TARGETS}:env_setup", timeout=120)
    assert q.result["MALLOC_MMAP_THRESHOLD_"] == "65536" and q.result["MALLOC_TRIM_THRESHOLD_"] == "0"
    r = profiling.measure(f"{TARGETS}:env_setup", allocator_env=False, env={"MALLOC_TRIM_THRESHOLD_": "7"}, timeout=120)
    assert r.result["MALLOC_TRIM_THRESHOLD_"] == "7"


def test_measure_reports_failures_and_bad_targets():
    with pytest.raises(RuntimeError, match="setup exploded on purpose"):
        profiling.measure(f"{TARGETS}:failing_setup", timeout=120)
    with pytest.raises(ValueError, match="module:function"):
        profiling.measure("not_a_target")
    with pytest.raises(ValueError, match="not an importable"):
        profiling.measure(lambda: None)


def test_memory_monitor_in_process():
    with profiling.MemoryMonitor(device="cpu") as monitor:
        buffer = np.ones(80 * MIB // 8)
        buffer[::512] += 1
    assert monitor.training_bytes >= 75 * MIB
    assert monitor.wall_time_s > 0
