"""Tests of `lqbench.profiling`: peak memory above the baseline and wall time, in a subprocess."""
import pathlib
import subprocess
import sys

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


def test_memory_monitor_measures_only_its_windows():
    """What runs between ``pause()`` and ``resume()`` is not measured; the peak is the largest window's."""
    with profiling.MemoryMonitor(device="cpu") as monitor:
        first = np.ones(60 * MIB // 8)
        first[::512] += 1
        del first
        monitor.pause()
        outside = np.ones(200 * MIB // 8)
        outside[::512] += 1
        del outside
        assert monitor.current_peak_bytes() - monitor.baseline_bytes < 150 * MIB
        monitor.resume()
        second = np.ones(100 * MIB // 8)
        second[::512] += 1
        del second
    assert 95 * MIB <= monitor.training_bytes < 150 * MIB


def test_set_allocator_caches_or_returns_freed_memory():
    """``caching`` keeps a freed 16 MiB block resident (fast reuse), ``returning`` gives it back at once."""
    code = """
import numpy as np
from lqbench import profiling
MIB = 2**20
def freed_resident(mode):
    assert profiling.set_allocator(mode)
    before = profiling.rss_bytes()
    block = np.ones(16 * MIB // 8)
    del block
    return (profiling.rss_bytes() - before) / MIB
print(freed_resident("caching"), freed_resident("returning"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    cached, returned = map(float, out.stdout.split()[-2:])
    assert cached > 12 and returned < 4, (cached, returned)
    with pytest.raises(ValueError, match="allowed: returning, caching"):
        profiling.set_allocator("fast")
